"""``medlens fair score`` and ``medlens fair report`` end to end (small files, in-process CLI)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from tests.cli.conftest import cli_runner
from tests.cli.test_cli import assert_user_error

from medlens.fairness import SmallGroupWarning, group_report
from medlens.metrics import CaptionOptions, caption_report


@pytest.fixture
def cli(capsys):
    return cli_runner(capsys)


@pytest.fixture
def files(tmp_path):
    langs = ["English"] * 40 + ["Spanish"] * 35 + ["Other"] * 5
    preds, refs = [], []
    for i, lang in enumerate(langs):
        ref = f"the optic disc shows {'mild' if i % 2 else 'severe'} cupping with {'no' if i % 3 else 'a'} hemorrhage"
        pred = ref if (lang == "English" and i % 4) else f"the disc looks {'normal' if i % 2 else 'cupped'}"
        preds.append({"id": f"s{i}", "prediction": pred, "language": lang})
        refs.append({"id": f"s{i}", "reference": ref, "race": ["Asian", "Black", "White"][i % 2]})
    p, r = tmp_path / "P.jsonl", tmp_path / "R.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in preds))
    r.write_text("".join(json.dumps(x) + "\n" for x in refs))
    return tmp_path, p, r, preds, refs


def test_score_writes_per_sample_values_of_one_global_run(cli, files):
    tmp, p, r, preds, refs = files
    out = tmp / "S.csv"
    res = cli(
        "fair", "score", "--predictions", p, "--references", r, "--metrics", "bleu4,cider", "--out", out, "--json"
    )
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["n"] == 80
    assert doc["attributes"] == ["race", "language"]
    assert doc["provenance"]["command"] == "fair score"
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["id", "bleu4", "cider", "race", "language"]
    rep = caption_report(
        [x["reference"] for x in refs],
        [x["prediction"] for x in preds],
        options=CaptionOptions(meteor=None, bertscore=None),
        mode="coco-caption",
    )
    assert np.allclose([float(x["cider"]) for x in rows], rep.per_sample["cider"])  # IDF over the whole set
    assert rows[3]["language"] == "English"
    assert rows[3]["race"] == "Black"


def test_report_json_layout_and_equal_to_the_library(cli, files):
    tmp, p, r, _, _ = files
    out = tmp / "S.csv"
    assert cli("fair", "score", "--predictions", p, "--references", r, "--out", out).rc == 0
    res = cli(
        "fair", "report", "--scores", out, "--attributes", "language,race", "--metric", "cider",
        "--bootstrap", "200", "--seed", "3", "--json",
    )  # fmt: skip
    assert res.rc == 0, res.err
    assert "group 'Other' has 5 sample(s)" in res.err
    doc = json.loads(res.out)
    lang = doc["results"]["cider"]["language"]
    assert [g["name"] for g in lang["groups"]] == ["English", "Other", "Spanish"]
    assert set(lang["groups"][0]) == {"name", "n", "score", "ci_low", "ci_high", "excluded"}
    assert lang["groups"][1]["excluded"] is True
    assert set(lang["fap"]) >= {"value", "performance", "dispersion", "lambda", "weights", "variants"}
    assert lang["worst_group"] == "Spanish"
    rows = list(csv.DictReader(out.open()))
    with pytest.warns(SmallGroupWarning):
        lib = group_report(
            [float(x["cider"]) for x in rows], {"language": [x["language"] for x in rows]}, n_bootstrap=200, seed=3
        )["language"]
    assert lang["fap"]["value"] == pytest.approx(lib.fap.value)
    assert lang["es"] == pytest.approx(lib.es)
    assert lang["gap_max_min"] == pytest.approx(lib.gap_max_min)
    assert doc["settings"]["seed"] == 3
    assert doc["provenance"]["seed"] == 3


def test_report_joins_groups_file_and_prints_a_table(cli, tmp_path):
    scores = tmp_path / "s.csv"
    groups = tmp_path / "g.csv"
    scores.write_text("id,score\n" + "".join(f"{i},{i % 3}\n" for i in range(60)))
    groups.write_text("id,sex\n" + "".join(f"{i},{'FM'[i % 2]}\n" for i in range(60)))
    res = cli("fair", "report", "--scores", scores, "--groups", groups, "--attributes", "sex", "--bootstrap", "50")
    assert res.rc == 0, res.err
    assert "score by sex" in res.out
    assert "FAP" in res.out


@pytest.mark.parametrize(
    ("content", "args", "words"),
    [
        ("id,score\n1,0.5\n2,0.7\n", ["--attributes", "race"], "attribute column 'race' is not in"),
        ("id,score,race\n1,0.5,a\n2,0.7,a\n", ["--attributes", "race"], "'race' has 1 distinct value"),
        ("id,score,race\n1,0.5,a\n2,high,b\n", ["--attributes", "race"], "row 3 (id '2') has 'high'"),
        ("id,score,race\n1,0.5,a\n2,0.7,b\n", ["--attributes", "race", "--metric", "cider"], "metric column 'cider'"),
        ("id,a,b,race\n1,0.5,1,x\n2,0.7,1,y\n", ["--attributes", "race"], "name the score column(s) with --metric"),
    ],
)
def test_report_bad_input_exits_2(cli, tmp_path, content, args, words):
    s = tmp_path / "s.csv"
    s.write_text(content)
    assert_user_error(cli("fair", "report", "--scores", s, "--min-group-size", "1", *args), words)


def test_score_bad_input_exits_2(cli, files):
    tmp, p, r, _, _ = files
    assert_user_error(
        cli("fair", "score", "--predictions", p, "--references", r, "--metrics", "cidr", "--out", tmp / "S.csv"),
        "Did you mean: 'cider'",
    )
    short = tmp / "R1.jsonl"
    short.write_text(r.read_text().splitlines()[0] + "\n")
    assert_user_error(
        cli("fair", "score", "--predictions", p, "--references", short, "--out", tmp / "S.csv"),
        "79 prediction id(s) have no reference",
    )


@pytest.fixture
def server():
    from tests.llm._server import ScriptedServer

    s = ScriptedServer()
    try:
        yield s
    finally:
        s.close()


def test_fair_vqa_then_run_then_report_through_an_endpoint(cli, tmp_path, server):
    from tests.llm._server import reply

    from medlens.fairness import write_synthetic_fairvlmed

    root = write_synthetic_fairvlmed(tmp_path / "fv", n=4, seed=3)
    pairs = {"pairs": [{"category": "diagnosis", "question": "Is there glaucoma?", "answer": "yes"}]}
    for _ in range(4):
        server.push(reply(json.dumps(pairs)), reply('{"keep": true}'))
    q = tmp_path / "Q.jsonl"
    llm = ("--llm-url", server.url, "--model", "m", "--no-cache")
    res = cli("fair", "vqa", "--data", root, "--out", q, *llm, "--json")
    assert res.rc == 0, res.err
    assert json.loads(res.out)["n_items"] == 4
    out = tmp_path / "run"
    res = cli("fair", "run", "--data", q, "--task", "vqa", "--out", out, *llm, "--metrics", "bleu1", "--json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["counts"]["done"] == 4
    assert doc["provenance"]["command"] == "fair run"
    sent = server.requests[-1]["body"]["messages"][-1]["content"]
    assert any(p["type"] == "image_url" for p in sent)  # the items' SLO images went with the questions
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert {"id", "bleu1", "race", "gender", "ethnicity", "language"} <= set(rows[0])
    res = cli("fair", "run", "--data", q, "--task", "vqa", "--out", out, *llm, "--metrics", "bleu1", "--json")
    assert json.loads(res.out)["counts"]["resumed"] == 4  # nothing asked again
    assert len(server.requests) == 12
    fanned = tmp_path / "run-fanned"  # the echo server answers by content: 3 workers give the same scores
    res = cli("fair", "run", "--data", q, "--task", "vqa", "--out", fanned, *llm, "--metrics", "bleu1",
              "--workers", "3", "--rate-limit", "100", "--json")  # fmt: skip
    assert res.rc == 0, res.err
    assert len(server.requests) == 16
    assert (fanned / "scores.csv").read_text() == (out / "scores.csv").read_text()
    res = cli("fair", "report", "--scores", out / "scores.csv", "--attributes", "gender", "--metric", "bleu1",
              "--min-group-size", "1",
              "--bootstrap", "0", "--json")  # fmt: skip
    assert res.rc == 0, res.err
    assert json.loads(res.out)["results"]["bleu1"]["gender"]["n"] == 4


def test_fair_judge_and_agreement_through_an_endpoint(cli, files, server):
    from tests.llm._server import reply

    tmp, p, r, preds, _ = files
    small_p, small_r = tmp / "p4.jsonl", tmp / "r4.jsonl"
    small_p.write_text("".join(p.read_text().splitlines(keepends=True)[:4]))
    small_r.write_text("".join(r.read_text().splitlines(keepends=True)[:4]))
    server.push(reply("Score: 5"), reply("I cannot tell."), reply('{"score": 2}'), reply("4/5"))
    llm = ("--llm-url", server.url, "--model", "judge", "--no-cache")
    res = cli(
        "fair", "judge", "--predictions", small_p, "--references", small_r, *llm, "--out", tmp / "J.csv", "--json"
    )
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["n_failed"] == 1
    assert "could not be read" in res.err
    rows = list(csv.DictReader((tmp / "J.csv").open()))
    assert [x["rubric"] for x in rows] == ["5.0", "", "2.0", "4.0"]
    assert rows[0]["language"] == "English"
    (tmp / "K.csv").write_text("id,other\ns0,5\ns1,3\ns2,1\ns3,4\n")
    res = cli("fair", "agreement", "--scores", tmp / "J.csv", "--scores", tmp / "K.csv", "--metric", "rubric,other",
              "--json")  # fmt: skip
    assert res.rc == 0, res.err
    pair = json.loads(res.out)["pairs"][0]
    assert pair["n"] == 3
    assert pair["exact_agreement"] == pytest.approx(2 / 3)
