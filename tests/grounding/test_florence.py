"""Florence-2 codec: loc-token round trip, border clamping, W != H, target strings and the output parser."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.grounding import (
    build_target,
    decode_boxes,
    encode_boxes,
    load_knowledge,
    loc_tokens,
    map_phrase,
    parse_grounding,
)

KB = load_knowledge("vindr")


@settings(max_examples=200, deadline=None)
@given(
    w=st.floats(1, 5000),
    h=st.floats(1, 5000),
    fx=st.lists(st.floats(0, 1), min_size=2, max_size=2),
    fy=st.lists(st.floats(0, 1), min_size=2, max_size=2),
)
def test_round_trip_within_half_a_bin(w, h, fx, fy):
    x1, x2 = sorted(min(f * w, w) for f in fx)
    y1, y2 = sorted(min(f * h, h) for f in fy)
    box = np.array([[x1, y1, x2, y2]])
    bins = encode_boxes(box, (w, h))
    assert bins.min() >= 0
    assert bins.max() <= 999
    err = np.abs(decode_boxes(bins, (w, h)) - box)[0]
    tol = 1e-9 * max(w, h)
    assert err[[0, 2]].max() <= w / 2000 + tol
    assert err[[1, 3]].max() <= h / 2000 + tol


def test_border_is_clamped_to_999_never_1000():
    bins = encode_boxes([[0, 0, 512, 512]], (512, 512))
    assert bins.tolist() == [[0, 0, 999, 999]]
    assert "<loc_1000>" not in build_target(["cardiomegaly"], [[0, 0, 512, 512]], (512, 512))
    # the last bin starts at 999/1000 of the width
    assert encode_boxes([[511.488, 0, 511.487, 0]][0:0], (512, 512)).shape == (0, 4)
    assert encode_boxes([[0, 0, 511.4879, 511.488]], (512, 512)).tolist() == [[0, 0, 998, 999]]


def test_width_and_height_are_not_swapped():
    # W=2000, H=1000: x uses W, y uses H
    assert encode_boxes([[1000, 500, 2000, 1000]], (2000, 1000)).tolist() == [[500, 500, 999, 999]]
    assert decode_boxes([[500, 500, 999, 999]], (2000, 1000)).tolist() == [[1001.0, 500.5, 1999.0, 999.5]]
    # passing (H, W) instead of (W, H) is caught: the box does not fit
    with pytest.raises(
        InputError, match=r"outside the image of \(width, height\) = \(1000, 2000\).*not \(height, width\)"
    ):
        encode_boxes([[1500, 100, 1900, 200]], (1000, 2000))


def test_bad_boxes_and_sizes_are_input_errors():
    with pytest.raises(InputError, match="x1 <= x2"):
        encode_boxes([[10, 0, 5, 5]], (100, 100))
    with pytest.raises(InputError, match="outside the image"):
        encode_boxes([[-1, 0, 5, 5]], (100, 100))
    with pytest.raises(InputError, match="two positive numbers"):
        encode_boxes([[0, 0, 5, 5]], (0, 100))
    with pytest.raises(InputError, match="0..999"):
        decode_boxes([[0, 0, 1000, 5]], (100, 100))
    with pytest.raises(InputError, match="one label per box"):
        build_target(["a"], [[0, 0, 1, 1], [0, 0, 2, 2]], (10, 10))


def test_targets():
    t = build_target(["pleural effusion"] * 2, [[0, 50, 25, 100], [75, 50, 100, 100]], (100, 200))
    assert t == "pleural effusion<loc_0><loc_250><loc_250><loc_500>pleural effusion<loc_750><loc_250><loc_999><loc_500>"
    assert build_target([], [], (10, 10)) == ""
    assert build_target([], [], (10, 10), negative_text="no finding") == "no finding"
    assert loc_tokens([[1, 2, 3, 4]]) == "<loc_1><loc_2><loc_3><loc_4>"


def test_parser_on_canned_outputs():
    text = (
        "</s><s>pleural effusion<loc_100><loc_600><loc_300><loc_900><loc_700><loc_600><loc_900><loc_900>"
        "Cardiomegally<loc_300><loc_500><loc_700><loc_800>the image<loc_0><loc_0><loc_999><loc_999>"
        "nodule<loc_1><loc_2>mass<loc_10><loc_10><loc_20><loc_1000></s><pad><pad>"
    )
    p = parse_grounding(text, KB, (1000, 500))
    assert p.labels == ["pleural effusion", "pleural effusion", "cardiomegaly"]
    assert p.boxes.tolist() == [
        [100.5, 300.25, 300.5, 450.25],
        [700.5, 300.25, 900.5, 450.25],
        [300.5, 250.25, 700.5, 400.25],
    ]
    assert p.unknown_phrases == ["the image"]
    assert p.n_unknown == 1
    assert p.n_malformed == 2  # the 2-token run after "nodule" and the <loc_1000> box
    assert p.box_scores is None
    assert p.sequence_score is None
    strict = parse_grounding(text, KB, (1000, 500), cutoff=1.0)
    assert strict.labels == ["pleural effusion", "pleural effusion"]
    assert strict.unknown_phrases == ["Cardiomegally", "the image"]
    assert parse_grounding("", KB, (10, 10)).boxes.shape == (0, 4)


def test_scores_from_transition_logprobs():
    tokens = [
        "<s>",
        "pneum",
        "othorax",
        "<loc_0>",
        "<loc_0>",
        "<loc_9>",
        "<loc_9>",
        "<loc_5>",
        "<loc_5>",
        "<loc_7>",
        "<loc_7>",
        "</s>",
        "<pad>",
    ]
    lp = [0.0, -0.2, -0.4, -0.1, -0.1, -0.1, -0.1, -1.0, -1.0, -1.0, -1.0, -0.3, -9.0]
    p = parse_grounding(tokens, KB, (1000, 1000), logprobs=lp)
    assert p.labels == ["pneumothorax", "pneumothorax"]
    # box score: exp(mean(phrase logps + its 4 loc logps)); the phrase is shared by both boxes
    assert p.box_scores.tolist() == pytest.approx([math.exp(-1.0 / 6), math.exp(-4.6 / 6)])
    total = sum(lp[:-1])  # <pad> excluded
    assert p.sequence_score == pytest.approx(math.exp(total / 12))
    assert parse_grounding(tokens, KB, (1000, 1000), logprobs=lp, length_penalty=0.0).sequence_score == pytest.approx(
        math.exp(total)
    )
    with pytest.raises(InputError, match="one value per generated token"):
        parse_grounding(tokens, KB, (10, 10), logprobs=lp[:3])


def test_map_phrase_cutoff():
    vocab = KB.vocabulary()
    assert map_phrase("Nodule/Mass", vocab) == "nodule or mass"
    assert map_phrase("pneumothorx", vocab) == "pneumothorax"
    assert map_phrase("pneumothorx", vocab, cutoff=1.0) is None
    assert map_phrase("   ", vocab) is None
