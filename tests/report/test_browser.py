"""The demo's report in a real browser: headless Chromium renders a report built from recorded demo outputs
(tests/report/fixtures/demo, one metrics.json per quick-demo section), the DOM holds every section, the console
stays silent, nothing outside the file is loaded, and a screenshot is kept as a CI artefact under runs/.

`.ci/run` installs Debian's `chromium`; where it is missing or cannot start, the test skips and says why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from medlens.benchmarks import DEMO, build_report

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "demo"
ARTEFACTS = ROOT / "runs" / "browser-check"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
_CONSOLE = re.compile(r":CONSOLE[:(]")
_URL = re.compile(r"https?://(?!127\.0\.0\.1|localhost)[^\s'\"]+")
_EXTERNAL_ATTR = re.compile(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//""")


def _chromium() -> str:
    for name in (os.environ.get("MEDLENS_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        path = name and shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed: `.ci/run` installs Debian's chromium (apt-get, as root); set "
                "MEDLENS_CHROMIUM to another binary")  # fmt: skip


def _run(binary: str, tmp: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"  # a fresh user-data-dir for every run
    profile.mkdir()
    args = [binary, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish in 120 s: {' '.join(args)}")


def _problems(log: str) -> list[str]:
    """Console messages (the report has no script, so any is an error) and any external URL Chromium mentions."""
    return [line for line in log.splitlines() if _CONSOLE.search(line) or _URL.search(line)]


@pytest.fixture(scope="module")
def chromium(tmp_path_factory) -> str:
    binary = _chromium()
    tmp = tmp_path_factory.mktemp("smoke")
    blank = tmp / "blank.html"
    blank.write_text("<!doctype html><title>t</title><p id='ok'>ok</p>", encoding="utf-8")
    res = _run(binary, tmp, blank, "--dump-dom")
    if 'id="ok"' not in res.stdout:
        tail = " | ".join(res.stderr.strip().splitlines()[-3:])
        pytest.skip(f"{binary} cannot render a page here (exit {res.returncode}): {tail}")
    return binary


@pytest.mark.slow
def test_the_check_catches_an_external_url_and_a_console_error(chromium, tmp_path):
    from medlens.report import Section, render_report

    s = Section("bad", data="d", model="m").add("<img src='http://example.invalid/x.png'>")
    page = tmp_path / "bad.html"
    page.write_text(render_report("bad", [s]), encoding="utf-8")
    assert _EXTERNAL_ATTR.search(page.read_text(encoding="utf-8"))
    res = _run(chromium, tmp_path, page, "--dump-dom")
    problems = _problems(res.stderr)
    assert problems, res.stderr[-2000:]  # the report's CSP blocks the load and Chromium logs it on the console
    assert any("example.invalid" in p for p in problems)


@pytest.mark.slow
def test_demo_report_renders_every_section_without_errors_or_external_loads(chromium, tmp_path):
    run = tmp_path / "demo"
    shutil.copytree(FIXTURES, run)
    info = build_report(run)
    assert sorted(info["sections"]) == sorted(DEMO)
    page = Path(info["report"])
    html = page.read_text(encoding="utf-8")
    assert not _EXTERNAL_ATTR.search(html), "the report references an external URL"

    res = _run(chromium, tmp_path, page, "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert '<meta name="viewport"' in dom
    for part in ("report-header", "definitions", "notes"):
        assert f'id="{part}"' in dom, part
    assert "Provenance" in dom
    sections = re.findall(r'<section id="([^"]+)"', dom)
    assert sorted(sections) == sorted(DEMO)
    for name in DEMO:  # every section opens with its data and model
        body = dom.split(f'<section id="{name}"', 1)[1].split("</section>", 1)[0]
        assert "<b>Data:</b>" in body
        assert "<b>Model:</b>" in body
        assert "not recorded" not in body, name
    assert dom.count("<img ") == html.count("<img ") > 0  # the figures (inline PNGs) reach the DOM
    problems = _problems(res.stderr)
    assert not problems, "\n".join(problems)

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "report.png"
    shot.unlink(missing_ok=True)
    res = _run(chromium, tmp_path, page, "--window-size=1280,10000", f"--screenshot={shot}", "--hide-scrollbars")
    assert shot.is_file(), res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not _problems(res.stderr)
    shutil.copy2(page, ARTEFACTS / "report.html")
    print(f"browser check: screenshot {shot}")
