"""The HTML report: header (definition, readings, provenance), sections that name their data and model, one
boolean style, and the figures' axes, titles, legends and colorbars."""

from __future__ import annotations

import re

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.report import CAE_DEFINITION, Section, render_report, table_html, yes_no


def test_booleans_read_yes_no_everywhere():
    assert [yes_no(True), yes_no(False), yes_no(None)] == ["yes", "no", "–"]
    html = table_html(["rule", "feasible", "≤ α"], [["crc", True, False], ["ltt", np.bool_(True), None]])
    cells = re.findall(r"<td>(.*?)</td>", html)
    assert cells == ["crc", "yes", "no", "ltt", "yes", "–"]


def test_numbers_are_right_aligned_and_text_left_aligned():
    html = table_html(["a", "b"], [["x", 0.5], ["y", "0.0252 ± 0.0051"], ["z", "0.305 [0.245, 0.370]"], ["w", 3]])
    assert re.findall(r"<td class='num'>(.*?)</td>", html) == ["0.5000", "0.0252 ± 0.0051", "0.305 [0.245, 0.370]", "3"]
    assert re.findall(r"<td>(.*?)</td>", html) == ["x", "y", "z", "w"]
    text = table_html(["finding", "size"], [["atelectasis", "median 1.9% of the image area"]])
    assert "class='num'" not in text


def test_report_opens_with_definition_readings_and_provenance():
    prov = [
        {
            "benchmark": "cxr-reports",
            "medlens_version": "9.9.9",
            "config_hash": "a" * 64,
            "seed": 0,
            "data_hashes": {"archive": "b" * 64},
            "models": {"text_encoder": "sentence-transformers/all-MiniLM-L6-v2"},
            "date": "2026-12-07 10:00",
        }
    ]
    s = Section("cxr-reports: a section", data="IU reports", model="MiniLM", name="cxr-reports").paragraph("x < y")
    doc = render_report(
        "medlens report", [s], provenance=prov, notes=["crc λ̂=0.9: test CAE 0.03 above α"], generated="2026-12-07"
    )
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in doc
    assert "Content-Security-Policy" in doc
    assert "default-src 'none'" in doc
    head, body = doc.split("<section", 1)
    for line in CAE_DEFINITION:  # the definition and the readings come before any section
        assert line.replace("'", "&#x27;") in head
    assert "crc λ̂=0.9: test CAE 0.03 above α" in head
    assert "a" * 12 in head
    assert "title='" + "a" * 64 + "'" in head
    assert "b" * 12 in head
    assert "9.9.9" in head
    assert "2026-12-07 10:00" in head
    assert "all-MiniLM-L6-v2" in head
    assert "generated 2026-12-07" in head
    assert "id='cxr-reports'" in body
    assert "<b>Data:</b> IU reports" in body
    assert "<b>Model:</b> MiniLM" in body
    assert "x &lt; y" in body


def test_a_section_without_data_or_model_says_so_and_ids_are_unique_slugs():
    doc = render_report("r", [Section("A b: c"), Section("Second one")], definitions=None)
    assert "id='a-b--c'" in doc
    assert "id='second-one'" in doc
    assert doc.count("not recorded") == 4
    assert "Reading the numbers" not in doc
    assert "<nav>" in doc  # a contents list when there are several sections
    twice = render_report("r", [Section("x", name="toy"), Section("y", name="toy")])
    assert re.findall(r"<section id='([^']+)'", twice) == ["toy", "toy-2"]


def test_cae_definition_is_three_lines_with_an_example_on_the_builtin_taxonomy():
    from medlens.taxonomy import load_taxonomy

    assert len(CAE_DEFINITION) == 3
    assert CAE_DEFINITION[2].startswith("Example")
    tax = load_taxonomy("cxr_anatomic_v1")  # the example's facts hold on the taxonomy it names
    assert tax.branch("Pneumothorax", 1) != tax.branch("Cardiomegaly", 1)
    assert tax.branch("Pneumonia", 1) == tax.branch("Lung Opacity", 1)


@pytest.fixture
def plt():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_risk_plot_uses_a_log_axis_around_alpha_titles_the_rule_and_legends_alpha(plt):
    from medlens.report import risk_coverage_figure

    lam = np.linspace(0, 1, 11)
    risk = np.array([0.3, 0.2, 0.1, 0.06, 0.04, 0.03, 0.02, 0.015, 0.01, 0.005, 0.0])
    cov = np.linspace(1, 0, 11)
    fig = risk_coverage_figure(
        [{"label": "calibration", "lambda": lam, "risk": risk, "coverage": cov, "lambda_hat": 0.6}],
        alpha=0.02,
        rule="multilabel",
    )
    ax1, ax2 = fig.axes[0], fig.axes[1]
    for ax in (ax1, ax2):
        assert ax.get_yscale() == "log"
        lo, hi = ax.get_ylim()
        assert lo < 0.002
        assert hi > 0.3
        assert "multilabel" in ax.get_title()
        labels = ax.get_legend().get_texts()
        assert "target α = 0.02" in [t.get_text() for t in labels]
    assert "coverage" in fig.axes[2].get_ylabel()  # the twin axis of the left panel
    legend = [t.get_text() for t in ax1.get_legend().get_texts()]
    assert {"CAE rate (calibration)", "coverage (calibration)", "λ̂ = 0.600"} <= set(legend)


def test_branch_confusion_row_normalised_with_a_labelled_colorbar(plt):
    from medlens.report import branch_confusion_figure

    counts = [[8, 2], [1, 3]]
    fig = branch_confusion_figure(["Lung", "Pleura"], ["Lung", "(none)"], counts, normalize="row")
    ax, cbar = fig.axes
    img = ax.get_images()[0].get_array()
    np.testing.assert_allclose(np.asarray(img), [[0.8, 0.2], [0.25, 0.75]])
    assert cbar.get_ylabel() == "share of the true branch's reports"
    assert [t.get_text() for t in ax.texts] == ["0.80\n(8)", "0.20\n(2)", "0.25\n(1)", "0.75\n(3)"]
    fig2 = branch_confusion_figure(["Lung", "Pleura"], ["Lung", "(none)"], [[0, 0], [1, 3]])
    assert fig2.axes[1].get_ylabel() == "reports (count)"
    assert [t.get_text() for t in fig2.axes[0].texts] == ["0", "0", "1", "3"]
    zero = branch_confusion_figure(["Lung"], ["Lung"], [[0]], normalize="row")  # an empty row stays 0, not nan
    assert np.asarray(zero.axes[0].get_images()[0].get_array()).tolist() == [[0.0]]
    with pytest.raises(InputError, match="normalize"):
        branch_confusion_figure(["Lung"], ["Lung"], [[1]], normalize="column")


def test_report_links_only_to_itself():
    doc = render_report("r", [Section("s", data="d", model="m"), Section("t")])
    assert re.findall(r"""(?:src|href)=["']([^"']*)""", doc) == ["#s", "#t"]
