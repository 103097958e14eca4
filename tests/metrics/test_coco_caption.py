"""The coco-caption mode by hand: PTB tokens, pycocoevalcap's BLEU (closest length, its epsilons), ROUGE-L with
beta 1.2 (best precision and best recall taken separately), CIDEr-D, the METEOR skip, and the two modes' keys."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.metrics import CAPTION_KEYS, CaptionOptions, caption_report, ptb_tokenize, ptb_tokenize_many
from medlens.metrics import _coco_caption as cc

LEXICAL = CaptionOptions(meteor=None, bertscore=None)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("The patient's heart is normal.", "the patient 's heart is normal"),
        (
            "Cannot exclude (small) effusion; see [prior].",
            "can not exclude -lrb- small -rrb- effusion see -lsb- prior -rsb-",
        ),
        ("Called Dr. Smith at 3 p.m. on 2/3.", "called dr. smith at 3 p.m. on 2/3"),
        ("Stable on recent chest CT. No pneumothorax.", "stable on recent chest ct. no pneumothorax"),
        (
            "Left-sided T2-weighted and/or 3.5 cm, 1,000 - 2., mild",
            "left-sided t2-weighted and/or 3.5 cm 1,000 2. mild",
        ),
        ('They\'re "quoted" ... -- normal.There', "they 're quoted normal.there"),
        ("Ratio 16.2 / 24.7 &gt; 50 %", "ratio 16.2 / 24.7 > 50 %"),
    ],
)
def test_ptb_tokens_by_hand(text, tokens):
    assert ptb_tokenize(text) == tokens


def test_ptb_context_crosses_lines_as_in_one_java_run():
    # "I." before a line starting with "The" is "I" + "." (the stop dropped); at the very end it stays "i."
    assert ptb_tokenize_many(["Grade I.", "The heart"]) == ["grade i", "the heart"]
    assert ptb_tokenize("Grade I.") == "grade i."
    assert ptb_tokenize_many([]) == []
    assert ptb_tokenize("a\nb\rc") == "a b c"


def test_bleu_by_hand():
    stats = cc.coco_bleu([["a b c e"]], ["a b c d"])
    assert stats.tolist() == [[4, 4, 4, 3, 2, 1, 3, 2, 1, 0]]
    b = cc.coco_bleu_from_stats(stats)
    assert b[0] == pytest.approx(3 / 4, abs=1e-9)
    assert b[1] == pytest.approx(math.sqrt(3 / 4 * 2 / 3), abs=1e-9)
    assert b[3] == pytest.approx((3 / 4 * 2 / 3 * 1 / 2 * 1e-15) ** 0.25, rel=1e-6)  # 0 matches: the 1e-15 epsilon


def test_bleu_closest_reference_length_prefers_the_shorter_on_a_tie():
    stats = cc.coco_bleu([["a b", "a b c d"]], ["a b c"])
    assert stats[0, 1] == 2  # |2-3| == |4-3|: the shorter
    assert cc.coco_bleu([["a b c d e"]], ["a b"])[0, 1] == 5
    b1 = cc.coco_bleu_from_stats(cc.coco_bleu([["a b c d"]], ["a b"]))[0]
    assert b1 == pytest.approx(math.exp(1 - 4 / 2), abs=1e-9)  # precision 1, brevity penalty exp(1 - 4/2)


def test_rouge_l_beta_and_separate_maxima():
    p, r = 1.0, 0.5
    assert cc.coco_rouge_l([["a b c d"]], ["a b"])[0] == pytest.approx((1 + 1.44) * p * r / (r + 1.44 * p))
    # best precision (1, from the long reference) and best recall (1, from the short one) combine to 1
    assert cc.coco_rouge_l([["a c", "a b c d e f"]], ["a b c d"])[0] == pytest.approx(1.0)
    assert cc.coco_rouge_l([["x y"]], ["a b"])[0] == 0.0


def test_report_coco_mode_by_hand():
    refs = ["a lesion in the left frontal lobe", "a cyst in the cerebellum"]
    cands = ["A lesion in the left frontal lobe.", "a tumour in the pons"]
    rep = caption_report(refs, cands, options=LEXICAL, mode="coco-caption")
    assert rep.mode == "coco-caption"
    assert rep.to_dict()["mode"] == "coco-caption"
    assert rep.per_sample["cider"].round(6).tolist() == [10.0, 0.0]
    assert rep.per_sample["rouge_l"][0] == 1.0
    assert rep.per_sample["bleu4"][0] == pytest.approx(1.0, abs=1e-8)
    assert set(rep.scores) == set(CAPTION_KEYS)
    grouped = caption_report(refs, cands, options=LEXICAL, mode="coco-caption", groups=["x", "y"])
    assert grouped.groups["x"]["bleu1"] == pytest.approx(rep.per_sample["bleu1"][0])


def test_sacrebleu_mode_exposes_bleu1_to_4():
    sacrebleu = pytest.importorskip("sacrebleu")
    ref, cand = "a small lesion in the left frontal lobe", "a small lesion in the right frontal lobe"
    rep = caption_report([ref], [cand], options=LEXICAL)
    assert rep.mode == "sacrebleu"
    for k in range(1, 5):
        peer = sacrebleu.BLEU(max_ngram_order=k).corpus_score([cand], [[ref]]).score
        assert rep.scores[f"bleu{k}"] == pytest.approx(peer, abs=1e-12)


def test_meteor_skipped_without_java(monkeypatch):
    monkeypatch.setattr(cc.shutil, "which", lambda name: None)
    rep = caption_report(["a b"], ["a b"], options=CaptionOptions(bertscore=None), mode="coco-caption")
    assert rep.scores["meteor"] is None
    assert np.isnan(rep.per_sample["meteor"]).all()
    assert "METEOR 1.5 skipped" in rep.skipped["meteor"]


def test_bad_mode():
    with pytest.raises(InputError, match="mode"):
        caption_report(["a"], ["a"], options=LEXICAL, mode="coco")
