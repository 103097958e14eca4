"""Parity of ``caption_report(mode="coco-caption")`` with pycocoevalcap's full pipeline on real report pairs.

The pairs are Indiana University chest X-ray reports (torchxrayvision's ``NLMCXR_reports.tgz``): 400 pairs, half
with one reference (a report's impression scored against its findings), half with two to three references
(another report's findings against several sections). pycocoevalcap runs its Java PTBTokenizer once per batch
(references, candidates) and its Bleu, Rouge and Cider; ours must equal them to 1e-9 (they are computed in
the same floating-point order, so the differences are ~1e-16) and our pure-Python tokenizer must give the
Java tokenizer's string for every text, including a set of hard cases (abbreviations, clitics, brackets,
quotes, numbers, URLs) lexed by the Java tokenizer in the same session. METEOR 1.5 runs the same jar on both
sides (a slow JVM start each, ~20 s): it is checked on 60 pairs and marked slow.
Skips only when pycocoevalcap, Java or the IU reports are missing.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from medlens.metrics import CaptionOptions, caption_report, ptb_tokenize_many

pytestmark = pytest.mark.reference

pytest.importorskip("pycocoevalcap")
if shutil.which("java") is None:
    pytest.skip("no java on PATH: pycocoevalcap's PTBTokenizer and METEOR need it", allow_module_level=True)

from pycocoevalcap.bleu.bleu import Bleu  # noqa: E402
from pycocoevalcap.cider.cider import Cider  # noqa: E402
from pycocoevalcap.rouge.rouge import Rouge  # noqa: E402
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer  # noqa: E402

N_PAIRS = 400
HARD = [
    "The patient's heart (cardiac silhouette) cannot be assessed; see Dr. Smith's CT.",
    "They're stable. I. The 2., mild [prior] {x} \"quoted\" 'single' ``latex'' 3.5 1,000 02/03/2014 1 1/2 ½ 10% $5",
    "e.g. i.e. etc. vs. U.S. The Jan. Mass. mass. No. 5 Fig. 3 ca. 5 T2-weighted and/or x-ray -- --- ... . . .",
    "&amp; &lt; &gt; AT&T C++ C# http://x.org/a www.nih.gov a@b.com @user #tag :) ;-) O'Neil rock'n'roll '90s",
    "'twas gonna wanna <br> naïve café œdema µm °C 2×3 x² → — – “smart” ‘s’ Pty. Ltd. Ph.D. Inc. I'm won't",
    "XXXX-XXXX XXXX. bilateral.There 555-1234 (555) 123-4567 +1 555 123 4567 y'all ma'am o'clock 'em 'til it's",
    "Heart size normal.&gt;] Lung volumes are low. p.m. There a.m. CT. No pneumothorax. U.S. the Ill. ill.",
]


def iu_pairs(n: int):
    cxr = pytest.importorskip("medlens.benchmarks.cxr_reports._data")
    try:
        df = cxr.read_reports()
    except ImportError as exc:
        pytest.skip(f"IU reports not installed: {exc}")
    df = df[(df.findings != "") & (df.impression != "")].reset_index(drop=True)
    refs, cands = [], []
    for i in range(n):
        if i % 2 == 0:
            refs.append(df.findings[i])
            cands.append(df.impression[i])
        else:
            refs.append([df.findings[i], df.impression[i + 1], df.findings[i + 2]][: 2 + i % 2 * (i % 3 == 0)])
            cands.append(df.findings[i + 1])
    return refs, cands


def peer(refs, cands, *, meteor: bool = False):
    gts = {i: [{"caption": r} for r in ([rs] if isinstance(rs, str) else rs)] for i, rs in enumerate(refs)}
    res = {i: [{"caption": c}] for i, c in enumerate(cands)}
    tok = PTBTokenizer()
    g, r = tok.tokenize(gts), tok.tokenize(res)
    out = {"tokens": (g, r)}
    b, bl = Bleu(4).compute_score(g, r, verbose=0)
    for k in range(4):
        out[f"bleu{k + 1}"] = (b[k], np.array(bl[k]))
    out["rouge_l"] = Rouge().compute_score(g, r)
    out["cider"] = Cider().compute_score(g, r)
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        m, ml = Meteor().compute_score(g, r)
        out["meteor"] = (m, np.array(ml))
    return out


@pytest.fixture(scope="module")
def pairs():
    return iu_pairs(N_PAIRS)


@pytest.fixture(scope="module")
def peer_result(pairs):
    return peer(*pairs)


def test_pairs_have_single_and_multiple_references(pairs):
    refs, _ = pairs
    sizes = {1 if isinstance(r, str) else len(r) for r in refs}
    assert sizes == {1, 2, 3}


def test_tokenizer_equals_java_on_every_text(pairs, peer_result):
    refs, cands = pairs
    g, r = peer_result["tokens"]
    flat = [x for rs in refs for x in ([rs] if isinstance(rs, str) else rs)]
    ours_refs = ptb_tokenize_many(flat)
    java_refs = [t for i in range(len(refs)) for t in g[i]]
    assert ours_refs == java_refs
    assert ptb_tokenize_many(cands) == [r[i][0] for i in range(len(cands))]


def test_tokenizer_equals_java_on_hard_cases():
    java = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(HARD)})
    assert ptb_tokenize_many(HARD) == [java[i][0] for i in range(len(HARD))]  # one batch: cross-line context too


def test_bleu_rouge_cider_equal_pycocoevalcap(pairs, peer_result):
    refs, cands = pairs
    rep = caption_report(refs, cands, options=CaptionOptions(meteor=None, bertscore=None), mode="coco-caption")
    assert rep.mode == "coco-caption"
    for key in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider"):
        score, per = peer_result[key]
        assert rep.scores[key] == pytest.approx(score, abs=1e-9), key
        np.testing.assert_allclose(rep.per_sample[key], per, rtol=0, atol=1e-9, err_msg=key)
    assert rep.skipped["meteor"].startswith("METEOR disabled")


@pytest.mark.slow
def test_meteor_equals_pycocoevalcap():
    refs, cands = iu_pairs(60)
    rep = caption_report(refs, cands, options=CaptionOptions(bertscore=None), mode="coco-caption")
    score, per = peer(refs, cands, meteor=True)["meteor"]
    assert rep.scores["meteor"] == pytest.approx(score, abs=1e-9)
    np.testing.assert_allclose(rep.per_sample["meteor"], per, rtol=0, atol=1e-9)
    assert rep.settings["meteor"]["implementation"].startswith("METEOR 1.5")
