"""``nova_run`` / ``medlens nova run``: prompts per task and setting, prediction rows that ``nova evaluate`` reads,
parse failures counted, resume after an interruption, configuration checks, the response cache, remote refusal.

Scripted replies are consumed in data order (see ``FILENAMES`` in conftest) and every expected metric is
worked out by hand next to its reply.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from tests.benchmarks.conftest import CASES, FILENAMES, IMAGES

from medlens.benchmarks.nova import load_nova, nova_evaluate
from medlens.benchmarks.nova._prompts import PromptTemplate, builtin_template, load_template
from medlens.benchmarks.nova._run import nova_run
from medlens.llm import CallableClient, LLMConnectionError

NO_MODELS = {"bertscore_model": None, "meteor_wordnet": False}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    for var in ("MEDLENS_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


class Script:
    """A CallableClient function: pops scripted replies in order and records what it was asked."""

    def __init__(self, *replies: str, fail_at: int | None = None) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict]] = []
        self.fail_at = fail_at

    def __call__(self, messages, **params):
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise LLMConnectionError("could not reach the scripted endpoint")
        self.calls.append(messages)
        return self.replies.pop(0)

    def user_text(self, i: int) -> str:
        content = self.calls[i][-1]["content"]
        return content if isinstance(content, str) else " ".join(p["text"] for p in content if p["type"] == "text")

    def image_sizes(self, i: int) -> list[tuple[int, int]]:
        from PIL import Image

        content = self.calls[i][-1]["content"]
        if isinstance(content, str):
            return []
        urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
        return [Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))).size for u in urls]


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def norm1000(box_xywh, size):
    x, y, w, h = box_xywh
    return [x / size[0] * 1000, y / size[1] * 1000, (x + w) / size[0] * 1000, (y + h) / size[1] * 1000]


# ============================================================================================ localization
LOC_REPLIES = [
    # case0001_001 (64x48): the gold box exactly, in 0-1000 coordinates -> AP 1
    json.dumps({"boxes": [norm1000(IMAGES[0]["gold"][0], (64, 48))], "scores": [0.9]}),
    # case0001_002: fenced, with a trailing comma (tolerant parse), no scores -> AP 1
    "```json\n" + json.dumps({"boxes": [norm1000(IMAGES[1]["gold"][0], (64, 48))]})[:-1] + ",}\n```",
    # case0002_001: nothing found -> AP 0 on 2 gold boxes
    '{"boxes": [], "scores": []}',
    # case0003_001 (no gold): prose, then prose again after the repair request -> parse failure, not scored
    "I cannot see any abnormality.",
    "Still no boxes, sorry.",
    # case0004_001: valid JSON but x1 > x2 -> parse failure -> no boxes -> AP 0
    '{"boxes": [[900, 10, 100, 500]], "scores": [1]}',
]


def test_localization_rows_parse_failures_and_evaluate(nova, tmp_path):
    script = Script(*LOC_REPLIES)
    out = tmp_path / "loc"
    summary = nova_run(nova, CallableClient(script, model="scripted"), out, task="localization")
    assert summary["status"] == "complete"
    assert summary["counts"] == {
        "n_items": 5,
        "done": 5,
        "parse_failures": 2,
        "request_failures": 0,
        "repaired": 1,
        "cached": 0,
        "remaining": 0,
    }
    rows = rows_of(out)
    assert [r["filename"] for r in rows] == FILENAMES
    assert all(r["task"] == "localization" and r["box_format"] == "xyxy_norm1000" for r in rows)
    assert rows[0]["scores"] == [0.9]
    assert rows[1]["scores"] is None
    assert rows[1]["parse_error"] is None
    assert rows[3]["parse_error"]
    assert rows[3]["boxes"] == []
    assert rows[3]["repaired"] is True
    assert rows[3]["raw_first"] == "I cannot see any abnormality."
    assert rows[3]["raw"] == "Still no boxes, sorry."
    assert rows[4]["parse_error"] == "box 0 [900, 10, 100, 500] has x1 > x2 or y1 > y2"
    # the image went along, once per request, and the prompt states the frame
    assert script.image_sizes(0) == [(64, 48)]
    assert script.image_sizes(2) == [(80, 60)]
    assert "integers from 0 to 1000" in script.user_text(0)
    assert "Clinical history" not in script.user_text(0)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["parse_failures"] == 2
    assert manifest["status"] == "complete"
    assert manifest["config"]["box_format"] == "xyxy_norm1000"
    assert manifest["template"]["sha256"] == builtin_template("localization", "image").sha256
    assert manifest["provenance"]["medlens_version"]
    # nova evaluate reads these rows as they are
    res = nova_evaluate(nova, out / "predictions.jsonl", human_ceiling=False)
    loc = res["localization"]
    assert loc["n_predicted"] == 5
    assert loc["map50"] == pytest.approx(0.5)  # (1 + 1 + 0 + 0) / 4 images with gold
    assert loc["map30"] == pytest.approx(0.5)
    assert loc["map50_95"] == pytest.approx(0.5)
    assert loc["box_formats"] == {"xyxy_norm1000": 5}


def test_pixel_frame_states_the_image_size(nova, tmp_path):
    script = Script(*(['{"boxes": [[10, 8, 30, 24]]}'] * 5))
    nova_run(nova, CallableClient(script), tmp_path / "px", task="localization", box_format="xyxy_pixel", limit=2)
    rows = rows_of(tmp_path / "px")
    assert [r["box_format"] for r in rows] == ["xyxy_pixel"] * 2
    assert "in pixels of this 64x48 image" in script.user_text(0)
    res = nova_evaluate(nova, rows, human_ceiling=False)
    assert res["localization"]["map50"] == pytest.approx(0.5)  # exact on the first image, IoU 0 on the second


# ================================================================================================ diagnosis
DX_REPLIES = [
    '{"primary": "Vestibular schwannoma", "differentials": ["Meningioma", "Epidermoid cyst"]}',  # hit
    '{"primary": "acoustic neuroma", "differentials": []}',  # synonym hit
    '{"primary": "Meningioma", "differentials": ["GBM", "Metastasis", "Abscess", "Lymphoma", "Tuberculoma"]}',
    "no idea",  # parse failure (repair answer below is no better) -> miss
    '{"diagnosis": "cyst"}',
    '{"primary": "Septo-optic dysplasia", "differentials": ["septo-optic dysplasia", "Schizencephaly"]}',  # hit
]


@pytest.mark.parametrize("setting", ["image", "image+history", "text"])
def test_diagnosis_every_setting(nova, tmp_path, setting):
    script = Script(*DX_REPLIES)
    out = tmp_path / setting
    summary = nova_run(nova, CallableClient(script), out, task="diagnosis", setting=setting)
    assert summary["counts"]["parse_failures"] == 1
    rows = rows_of(out)
    assert rows[0]["diagnoses"] == ["Vestibular schwannoma", "Meningioma", "Epidermoid cyst"]
    assert rows[2]["diagnoses"] == ["Meningioma", "GBM", "Metastasis", "Abscess", "Lymphoma"]  # 5 names at most
    assert rows[2]["warnings"] == ["kept the first 5 of 6 names"]
    assert rows[3]["diagnoses"] == []
    assert rows[3]["parse_error"]
    assert rows[4]["diagnoses"] == ["Septo-optic dysplasia", "Schizencephaly"]
    assert all(r["setting"] == setting for r in rows)
    history, _ = CASES["case01"]
    caption = IMAGES[0]["caption"]
    first = script.user_text(0)
    assert (history in first) == (setting != "image")
    assert (caption in first) == (setting == "text")  # the gold caption is an input only in the text setting
    assert script.image_sizes(0) == ([] if setting == "text" else [(64, 48)])
    res = nova_evaluate(nova, out / "predictions.jsonl")
    dx = res["diagnosis"]
    assert dx["top1"] == pytest.approx(3 / 5)  # images 1, 2 and 5
    assert dx["top5"] == pytest.approx(4 / 5)  # + GBM at rank 2 for glioblastoma
    assert dx["input_settings"] == {setting: 5}


# ================================================================================================= captions
def test_caption_rows_and_empty_replies(nova, tmp_path):
    replies = [
        "<think>T2, CPA.</think>\n" + IMAGES[0]["caption"],
        "Coronal T1 shows an enhancing mass.",
        "",
        "<think>never closed",
        "Coronal T2 image shows absence of the septum pellucidum.",
    ]
    script = Script(*replies)
    out = tmp_path / "cap"
    summary = nova_run(nova, CallableClient(script), out, task="caption", setting="image+history")
    assert summary["counts"]["parse_failures"] == 2
    rows = rows_of(out)
    assert rows[0]["caption"] == IMAGES[0]["caption"]
    assert [r["caption"] is None for r in rows] == [False, False, True, True, False]
    assert rows[3]["parse_error"] == "the reply stops inside its <think> block (no caption)"
    assert CASES["case01"][0] in script.user_text(0)
    res = nova_evaluate(nova, out / "predictions.jsonl", caption_options=NO_MODELS, details=True)
    cap = res["caption"]
    assert (cap["n_scored"], cap["n_empty"], cap["n_predicted"]) == (3, 2, 5)
    per = {p["id"]: p for p in cap["per_sample"]}
    assert per["case0001_001.png"]["bleu4"] == pytest.approx(1.0)  # coco-caption scale
    assert per["case0004_001.png"]["bleu4"] == pytest.approx(1.0)


# ============================================================================================ resume / config
def test_resume_after_interruption_skips_done_items(nova, tmp_path):
    out = tmp_path / "run"
    first = Script(*DX_REPLIES, fail_at=2)
    with pytest.raises(LLMConnectionError):
        nova_run(nova, CallableClient(first), out, task="diagnosis")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["counts"]["done"] == 2
    assert manifest["counts"]["remaining"] == 3
    assert len(rows_of(out)) == 2
    with (out / "predictions.jsonl").open("a") as fh:  # a process killed mid-write leaves half a line
        fh.write('{"filename": "case0002_001.png", "task": "diag')
    second = Script(*DX_REPLIES[2:])
    summary = nova_run(nova, CallableClient(second), out, task="diagnosis")
    assert len(second.calls) == 4  # 3 images + 1 repair; the two done images were not asked again
    assert summary["status"] == "complete"
    assert summary["counts"]["done"] == 5
    assert [r["filename"] for r in rows_of(out)] == FILENAMES
    # a third run has nothing to do
    third = Script()
    assert nova_run(nova, CallableClient(third), out, task="diagnosis")["counts"]["remaining"] == 0
    assert third.calls == []


def test_a_refused_request_fails_one_item_and_the_run_goes_on(nova, tmp_path):
    from medlens.llm import LLMHTTPError

    replies = iter(DX_REPLIES[:3])

    def fn(messages, **params):
        if fn.calls == 1:  # the second image: the server says its prompt is too long
            fn.calls += 1
            raise LLMHTTPError("HTTP 400", status=400, server_message="maximum context length exceeded")
        fn.calls += 1
        return next(replies)

    fn.calls = 0
    out = tmp_path / "run"
    summary = nova_run(nova, CallableClient(fn), out, task="diagnosis", limit=3)
    assert summary["status"] == "complete"
    assert summary["counts"]["request_failures"] == 1
    assert summary["counts"]["parse_failures"] == 0
    row = rows_of(out)[1]
    assert row["request_failed"] is True
    assert row["diagnoses"] == []
    assert row["parse_error"] == "request failed: HTTP 400: maximum context length exceeded"
    # resuming re-counts it from the file
    again = nova_run(nova, CallableClient(Script()), out, task="diagnosis", limit=3)
    assert again["counts"]["request_failures"] == 1
    assert again["counts"]["parse_failures"] == 0


def test_limit_then_continue(nova, tmp_path):
    out = tmp_path / "run"
    nova_run(nova, CallableClient(Script(*DX_REPLIES)), out, task="diagnosis", limit=2)
    assert len(rows_of(out)) == 2
    s = Script(*DX_REPLIES[2:])
    nova_run(nova, CallableClient(s), out, task="diagnosis")
    assert len(rows_of(out)) == 5


def test_another_configuration_is_refused_unless_overwrite(nova, tmp_path):
    out = tmp_path / "run"
    nova_run(nova, CallableClient(Script(*DX_REPLIES)), out, task="diagnosis")
    for kwargs in ({"seed": 1}, {"setting": "text"}, {"task": "caption"}):
        with pytest.raises(ValueError, match="different configuration"):
            nova_run(nova, CallableClient(Script()), out, **{"task": "diagnosis", **kwargs})
    other = PromptTemplate("diagnosis", "image", "Name the disease: {n_differentials} alternatives, JSON.")
    with pytest.raises(ValueError, match="different configuration"):
        nova_run(nova, CallableClient(Script()), out, task="diagnosis", template=other)
    with pytest.raises(ValueError, match="different configuration"):
        nova_run(nova, CallableClient(Script(), model="another-model"), out, task="diagnosis")
    s = Script(*(['{"primary": "Glioma"}'] * 5))
    summary = nova_run(nova, CallableClient(s), out, task="diagnosis", template=other, overwrite=True)
    assert summary["counts"]["done"] == 5
    assert all(r["diagnoses"] == ["Glioma"] for r in rows_of(out))
    assert s.user_text(0) == "Name the disease: 4 alternatives, JSON."


def test_a_folder_another_run_holds_is_refused(nova, tmp_path):
    import os

    from medlens.io import RunFolder, RunFolderLocked

    out = tmp_path / "run"
    with RunFolder(out, {"running": True}), pytest.raises(RunFolderLocked, match=rf"PID {os.getpid()}"):
        nova_run(nova, CallableClient(Script()), out, task="diagnosis")
    assert not (out / "predictions.jsonl").exists()
    summary = nova_run(nova, CallableClient(Script(*DX_REPLIES)), out, task="diagnosis")
    assert summary["counts"]["done"] == 5
    # --overwrite with the same configuration starts again (the run-folder rule everywhere)
    again = nova_run(nova, CallableClient(Script(*DX_REPLIES)), out, task="diagnosis", overwrite=True)
    assert again["counts"]["done"] == 5
    assert len(rows_of(out)) == 5


def test_templates_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"placeholder \{caption\}.*only for task diagnosis, setting text"):
        PromptTemplate("caption", "image", "Repeat this: {caption}")
    with pytest.raises(ValueError, match=r"needs the placeholder\(s\) \{history\}"):
        PromptTemplate("diagnosis", "image+history", "What is it?")
    with pytest.raises(ValueError, match=r"needs the placeholder\(s\) \{caption\}, \{history\}"):
        PromptTemplate("diagnosis", "text", "What is it?")
    with pytest.raises(ValueError, match=r"placeholder \{patient_name\}"):
        PromptTemplate("diagnosis", "image", "Hello {patient_name}")
    with pytest.raises(ValueError, match="must be one of"):
        builtin_template("localization", "text")
    f = tmp_path / "t.yaml"
    f.write_text('name: mine\nuser: |\n  History: {history}\n  Boxes as JSON {"boxes": []}. {box_frame}\n')
    t = load_template(f, "localization", "image+history")
    assert t.name == "mine"
    assert t.system is None
    assert t.render({"history": "h", "box_frame": "F"}) == [
        {"role": "user", "content": 'History: h\nBoxes as JSON {"boxes": []}. F\n'}
    ]
    bad = tmp_path / "bad.json"
    bad.write_text('{"user": "x", "sytem": "y"}')
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sytem'\]"):
        load_template(bad, "caption", "image")


def test_image_settings_need_the_images(nova_dir, tmp_path):
    for p in (nova_dir / "images").iterdir():
        p.unlink()
    ds = load_nova(nova_dir, require_images=False)
    with pytest.raises(ValueError, match="5 of 5 image"):
        nova_run(ds, CallableClient(Script()), tmp_path / "x", task="caption")
    s = Script(*DX_REPLIES)
    nova_run(ds, CallableClient(s), tmp_path / "t", task="diagnosis", setting="text")  # no image needed
    assert len(rows_of(tmp_path / "t")) == 5


# =============================================================================== CLI, loopback server, cache
@pytest.fixture
def server():
    from tests.llm._server import ScriptedServer

    s = ScriptedServer()
    yield s
    s.close()


def _cli(capsys, *args):
    from medlens.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_cli_run_then_evaluate_end_to_end(nova_dir, tmp_path, server, capsys):
    from tests.llm._server import reply

    # the first two images are identical files of the same case: the second request is the first one again and is
    # answered from the response cache, so the server is asked 5 times (4 images + 1 repair)
    server.push(*(reply(r) for i, r in enumerate(DX_REPLIES) if i != 1))
    out = tmp_path / "dx"
    base = ["nova", "run", "--data", nova_dir, "--task", "diagnosis", "--setting", "image+history"]
    rc, stdout, err = _cli(capsys, *base, "--llm-url", server.url, "--model", "tiny-vlm", "--out", out, "--json")
    assert rc == 0, err
    doc = json.loads(stdout)
    assert doc["counts"]["done"] == 5
    assert doc["counts"]["parse_failures"] == 1
    assert doc["counts"]["cached"] == 1
    assert len(server.requests) == 5
    assert doc["provenance"]["command"] == "nova run"
    assert doc["model"] == {"kind": "openai", "model": "tiny-vlm", "base_url": server.url}
    assert "1 of 5 repl(ies) could not be parsed" in err
    body = server.requests[0]["body"]
    assert body["model"] == "tiny-vlm"
    assert body["temperature"] == 0.0
    parts = body["messages"][-1]["content"]
    assert parts[-1]["image_url"]["url"].startswith("data:image/png;base64,")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["model"]["base_url"] == server.url
    assert "api_key" not in json.dumps(manifest).lower()
    rc, stdout, err = _cli(
        capsys, "nova", "evaluate", "--data", nova_dir, "--predictions", out / "predictions.jsonl", "--json"
    )
    assert rc == 0, err
    dx = json.loads(stdout)["diagnosis"]
    assert (dx["top1"], dx["top5"]) == (pytest.approx(0.6), pytest.approx(0.8))
    # a rerun into a new folder is answered from the response cache: the server sees nothing new
    n = len(server.requests)
    rc, stdout, _ = _cli(
        capsys, *base, "--llm-url", server.url, "--model", "tiny-vlm", "--out", tmp_path / "again", "--json"
    )
    assert rc == 0
    assert len(server.requests) == n
    assert json.loads(stdout)["counts"]["cached"] == 5


def test_cli_refusals_exit_2(nova_dir, tmp_path, capsys):
    base = ["nova", "run", "--data", nova_dir, "--task", "diagnosis", "--out", tmp_path / "o"]
    rc, out, err = _cli(capsys, *base, "--llm-url", "http://llm.example.org/v1", "--model", "m")
    assert rc == 2
    assert "--allow-remote" in err
    assert len(err.splitlines()) == 1
    assert out == ""
    rc, _, err = _cli(capsys, *base)
    assert rc == 2
    assert "exactly one of --llm-url and --model-path" in err
    rc, _, err = _cli(capsys, *base, "--llm-url", "http://127.0.0.1:9/v1")
    assert rc == 2
    assert "--llm-url needs --model" in err
    rc, _, err = _cli(capsys, *base[:-2], "--setting", "text", "--task", "caption", "--out", tmp_path / "o")
    assert rc == 2
    assert "setting (for task caption)" in err
    assert not (tmp_path / "o").exists()


def test_cli_resume_into_another_configuration_exits_2(nova_dir, tmp_path, server, capsys):
    from tests.llm._server import reply

    server.push(*(reply(r) for r in DX_REPLIES))
    args = ["nova", "run", "--data", nova_dir, "--task", "diagnosis", "--llm-url", server.url, "--model", "m"]
    assert _cli(capsys, *args, "--out", tmp_path / "o")[0] == 0
    rc, _, err = _cli(capsys, *args, "--seed", "3", "--out", tmp_path / "o")
    assert rc == 2
    assert "different configuration" in err
    assert "--overwrite" in err


def test_cli_local_vlm_model_path(nova_dir, tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.llm._tiny_vlm import save_tiny_llava

    model = save_tiny_llava(tmp_path / "tiny-llava")
    out = tmp_path / "local"
    rc, stdout, err = _cli(
        capsys,
        *("nova", "run", "--data", nova_dir, "--task", "localization", "--model-path", model),
        *("--max-tokens", "4", "--limit", "2", "--out", out, "--json"),
    )
    assert rc == 0, err
    doc = json.loads(stdout)
    assert doc["model"]["kind"] == "transformers-vlm"
    assert doc["counts"]["done"] == 2
    assert doc["counts"]["parse_failures"] == 2  # random weights do not write JSON; counted, not fatal
    rows = rows_of(out)
    assert all(r["boxes"] == [] and r["parse_error"] and r["repaired"] for r in rows)
    res = nova_evaluate(load_nova(nova_dir), out / "predictions.jsonl", human_ceiling=False)
    assert res["localization"]["map50"] == 0.0


def test_cli_text_setting_with_a_local_causal_lm(nova_dir, tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.llm.test_transformers import _save_tiny_lm

    model = _save_tiny_lm(tmp_path / "tiny-gpt2", chat_template=None)
    out = tmp_path / "text"
    rc, stdout, err = _cli(
        capsys,
        *("nova", "run", "--data", nova_dir, "--task", "diagnosis", "--setting", "text", "--model-path", model),
        *("--max-tokens", "3", "--no-repair", "--limit", "1", "--out", out, "--json"),
    )
    assert rc == 0, err
    doc = json.loads(stdout)
    assert doc["model"]["kind"] == "transformers"  # a causal LM folder (no vision_config) runs text-only
    assert doc["counts"] == {
        "n_items": 1,
        "done": 1,
        "parse_failures": 1,
        "request_failures": 0,
        "repaired": 0,
        "cached": 0,
        "remaining": 0,
    }
    assert rows_of(out)[0]["diagnoses"] == []
    rc, _, err = _cli(
        capsys,
        *("nova", "run", "--data", nova_dir, "--task", "diagnosis", "--model-path", model, "--out", tmp_path / "img"),
    )
    assert rc == 2  # an image setting needs a vision-language model
    assert "could not load a vision-language model" in err


def test_concurrent_requests_give_the_same_rows_in_completion_order(nova, tmp_path, monkeypatch):
    import hashlib
    import threading
    import time

    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def by_content(messages, **params):  # the answer depends on the request only, never on arrival order
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        text = json.dumps(messages[-1]["content"], sort_keys=True)
        names = ["Meningioma", "Glioma", "Abscess", "Lymphoma"]
        k = int(hashlib.sha256(text.encode()).hexdigest(), 16)
        return json.dumps({"primary": names[k % 4], "differentials": [names[(k // 4) % 4]]})

    rows = {}
    for n in (1, 3):
        monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / f"cache{n}"))
        out = tmp_path / f"c{n}"
        summary = nova_run(nova, CallableClient(by_content), out, task="diagnosis", setting="text", workers=n)
        assert summary["status"] == "complete"
        rows[n] = sorted(rows_of(out), key=lambda r: r["filename"])
    assert state["peak"] == 3
    assert rows[1] == rows[3]
    with pytest.raises(ValueError, match="--workers must be an integer"):
        nova_run(nova, CallableClient(by_content), tmp_path / "bad", task="diagnosis", workers=0)
