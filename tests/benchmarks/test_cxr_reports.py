"""Tests of the cxr-reports benchmark data layer (IU / Open-i chest X-ray reports -> cxr_anatomic_v1 labels)."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.benchmarks.cxr_reports import _data as cr


def _has_distribution() -> bool:
    try:
        metadata.distribution("torchxrayvision")
    except metadata.PackageNotFoundError:
        return False
    return True


# Skip only when torchxrayvision's distribution is absent; a present distribution without the archive must fail.
needs_archive = pytest.mark.skipif(not _has_distribution(), reason="torchxrayvision (medlens[data]) not installed")


def _taxonomy_json() -> dict:
    text = resources.files("medlens.taxonomy").joinpath("data", "cxr_anatomic_v1.json").read_text(encoding="utf-8")
    return json.loads(text)


@pytest.fixture(scope="module")
def taxonomy():
    from medlens.taxonomy import load_taxonomy

    return load_taxonomy("cxr_anatomic_v1")


@pytest.fixture(scope="module")
def bench() -> cr.CxrReports:
    if not _has_distribution():
        pytest.skip("torchxrayvision (medlens[data]) not installed")
    return cr.load_cxr_reports()


@pytest.fixture(scope="module")
def reports():
    if not _has_distribution():
        pytest.skip("torchxrayvision (medlens[data]) not installed")
    return cr.read_reports()


# ------------------------------------------------------------------------------------------------- taxonomy
def test_taxonomy_has_the_design_note_tree(taxonomy):
    required = {
        "root": {"Normal", "Lung", "Pleura", "Cardiomediastinal", "Musculoskeletal", "Devices"},
        "Normal": {"No Finding"},
        "Lung": {"Lung Opacity", "Lung Lesion", "Emphysema", "Fibrosis"},
        "Lung Opacity": {"Consolidation", "Edema", "Atelectasis", "Infiltration"},
        "Consolidation": {"Pneumonia"},
        "Lung Lesion": {"Mass", "Nodule"},
        "Pleura": {"Pleural Effusion", "Pneumothorax", "Pleural Other"},
        "Pleural Other": {"Pleural Thickening"},
        "Cardiomediastinal": {"Enlarged Cardiomediastinum", "Hernia"},
        "Enlarged Cardiomediastinum": {"Cardiomegaly"},
        "Musculoskeletal": {"Fracture"},
        "Devices": {"Support Devices"},
    }
    children = _taxonomy_json()["children"]
    for parent, kids in required.items():
        assert kids <= set(children[parent]), parent
    assert set(children["root"]) == required["root"], "no new top-level branches"
    assert taxonomy.is_tree
    assert taxonomy.summary()["branches"] == [
        "Normal",
        "Lung",
        "Pleura",
        "Cardiomediastinal",
        "Musculoskeletal",
        "Devices",
    ]
    assert len(taxonomy) <= 40


def test_taxonomy_prompts_descriptions_and_labels(taxonomy):
    data = _taxonomy_json()
    non_root = [n for n in taxonomy.nodes if n != data["root"]]
    for node in non_root:
        prompts = data["prompts"].get(node, [])
        assert 3 <= len(prompts) <= 5, node
        assert all(p[0].isupper() and p.rstrip().endswith(".") for p in prompts), node
        assert data["descriptions"].get(node), node
    for spelling, node in [
        ("Effusion", "Pleural Effusion"),
        ("Infiltrate", "Infiltration"),
        ("Pleural_Thickening", "Pleural Thickening"),
        ("Hernia, Hiatal", "Hernia"),
        ("Nodule/Mass", "Lung Lesion"),
        ("Airspace Disease", "Lung Opacity"),
    ]:
        assert taxonomy.map_label(spelling) == node


def test_taxonomy_synonyms_do_not_collide(taxonomy):
    # Taxonomy.map_label resolves node ids first, then synonyms in file order; a synonym whose normalised form is
    # already taken by another node would silently map elsewhere.
    for node, synonyms in _taxonomy_json()["labels"].items():
        for synonym in synonyms:
            assert taxonomy.map_label(synonym) == node, (synonym, node)


# ------------------------------------------------------------------------------------------- mapping table
def test_mesh_map_table_is_clean(taxonomy):
    path = Path(str(resources.files("medlens.benchmarks.cxr_reports").joinpath("data", "cxr_reports_mesh_map.tsv")))
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0].split("\t") == ["mesh_head", "node", "note"]
    keys = [ln.split("\t")[0].strip().lower() for ln in lines[1:]]
    assert len(keys) == len(set(keys)), "duplicate mesh_head keys"
    assert all(len(ln.split("\t")) == 3 for ln in lines[1:])
    mesh_map = cr.load_mesh_map()
    assert len(mesh_map) == len(keys)
    for node in mesh_map.values():
        assert node == cr.IGNORE or node in taxonomy, node
    assert mesh_map["normal"] == "No Finding"


def test_load_mesh_map_rejects_bad_tables(tmp_path):
    header = "# comment\nmesh_head\tnode\tnote\n"
    dup = tmp_path / "dup.tsv"
    dup.write_text(header + "Cardiomegaly\tCardiomegaly\t\ncardiomegaly \tCardiomegaly\t\n", encoding="utf-8")
    with pytest.raises(InputError, match="repeats line"):
        cr.load_mesh_map(dup)
    unknown = tmp_path / "unknown.tsv"
    unknown.write_text(header + "Cardiomegaly\tBig Heart\t\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a node"):
        cr.load_mesh_map(unknown)
    no_header = tmp_path / "noheader.tsv"
    no_header.write_text("Cardiomegaly\tCardiomegaly\n", encoding="utf-8")
    with pytest.raises(InputError, match="header"):
        cr.load_mesh_map(no_header)
    with pytest.raises(InputError, match="does not exist"):
        cr.load_mesh_map(tmp_path / "missing.tsv")


def test_map_headings_hand_checked():
    mesh_map = cr.load_mesh_map()
    # 1. qualifier keys beat the bare head, in any position; IU's normal study heading.
    assert cr.map_headings(["Lung/bilateral/hyperdistention/mild", "Lung/hypoinflation", "normal"], mesh_map) == (
        ["Hyperinflation", "Hypoinflation", "No Finding"],
        [],
        [],
    )
    # 2. location decides: aortic calcification vs calcified hilar nodes; technical quality is ignored.
    assert cr.map_headings(
        [
            "Calcinosis/aorta/mild",
            "Calcinosis/lung/hilum/lymph nodes/right",
            "Technical Quality of Image Unsatisfactory ",
        ],
        mesh_map,
    ) == (["Aortic Calcification", "Granuloma"], [], ["Technical Quality of Image Unsatisfactory "])
    # 3. case and whitespace insensitive heads; unknown heads come back unmapped, as given.
    assert cr.map_headings(
        [
            "Thoracic vertebrae/degenerative/mild",
            "Subcutaneous  Emphysema/right",
            "Pleural Effusion/left/small",
            "Costophrenic Angle/left/obscured",
            "Quux/left",
        ],
        mesh_map,
    ) == (
        ["Degenerative Changes", "Musculoskeletal", "Pleural Effusion"],
        ["Quux/left"],
        ["Costophrenic Angle/left/obscured"],
    )


def test_map_headings_specificity_and_ties():
    table = {"a": "IGNORE", "a/x": "X", "a/y": "Y", "a/x/y": "XY"}
    assert cr.map_headings(["A/y/x/z"], table)[0] == ["XY"]
    assert cr.map_headings(["A/z/x"], table)[0] == ["X"]
    assert cr.map_headings(["A/z"], table) == ([], [], ["A/z"])
    tie = {"a/x": "X", "a/y": "Y"}
    assert cr.map_headings(["a/x/y"], tie)[0] == ["X"]  # first listed wins
    with pytest.raises(TypeError):
        cr.map_headings("a/x", tie)


# -------------------------------------------------------------------------------------- archive and parsing
def test_locate_archive_missing_distribution(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cr.metadata, "distribution", missing)
    with pytest.raises(ImportError) as info:
        cr.locate_archive()
    assert str(info.value) == (
        "the cxr-reports benchmark requires 'torchxrayvision' data files, which are not installed. "
        'Install it with: pip install "medlens[data]"'
    )


def _tiny_archive(path: Path) -> Path:
    docs = {
        "ecgen-radiology/2.xml": (
            '<eCitation><uId id="CXR2"/><MedlineCitation><Article><Abstract>'
            '<AbstractText Label="FINDINGS">Heart is   enlarged.&lt;BR&gt;No effusion.</AbstractText>'
            '<AbstractText Label="IMPRESSION">Cardiomegaly.</AbstractText></Abstract></Article></MedlineCitation>'
            "<MeSH><major>Cardiomegaly/mild</major><major>Technical Quality of Image Unsatisfactory </major>"
            "<automatic>Heart</automatic></MeSH></eCitation>"
        ),
        "ecgen-radiology/10.xml": (
            '<eCitation><MedlineCitation><Article><Abstract><AbstractText Label="FINDINGS"/>'
            '<AbstractText Label="IMPRESSION">No active disease.</AbstractText></Abstract></Article>'
            "</MedlineCitation><MeSH><major>normal</major></MeSH></eCitation>"
        ),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in docs.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_read_reports_parses_a_small_archive(tmp_path):
    frame = cr.read_reports(_tiny_archive(tmp_path / "tiny.tgz"))
    assert list(frame.columns) == ["id", "findings", "impression", "text", "mesh_major"]
    assert frame["id"].tolist() == ["CXR2", "CXR10"]  # ordered by file number; uId or CXR + file stem
    first, second = frame.iloc[0], frame.iloc[1]
    assert first.findings == "Heart is enlarged. No effusion."
    assert first.text == "Heart is enlarged. No effusion. Cardiomegaly."
    assert first.mesh_major == ["Cardiomegaly/mild", "Technical Quality of Image Unsatisfactory"]
    assert second.findings == ""
    assert second.text == "No active disease."
    assert second.mesh_major == ["normal"]


def test_read_reports_bad_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        cr.read_reports(tmp_path / "nope.tgz")
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not a tar file")
    with pytest.raises(InputError, match="tar archive"):
        cr.read_reports(junk)


@needs_archive
def test_archive_found():
    path = cr.locate_archive()
    assert path.is_file()
    assert path.name == "NLMCXR_reports.tgz"


@needs_archive
def test_read_all_reports(reports):
    assert len(reports) == 3955
    assert reports["id"].is_unique
    assert reports["id"].str.fullmatch(r"CXR\d+").all()
    assert all(isinstance(h, list) for h in reports["mesh_major"])
    assert (reports["text"] != "").sum() == 3955 - 28


# ------------------------------------------------------------------------------------------- the benchmark
@needs_archive
def test_benchmark_frame_and_labels(bench, taxonomy):
    frame, stats = bench.frame, bench.stats
    assert list(frame.columns) == ["id", "text", "labels", "split"]
    assert frame["id"].is_unique
    assert frame["id"].tolist() == sorted(frame["id"])
    assert (frame["text"].str.len() > 0).all()
    parents = cr._taxonomy_parents()
    for labels in frame["labels"]:
        assert labels
        assert labels == sorted(set(labels))
        for node in labels:
            assert node in taxonomy
            assert node != "root"
            assert not cr._ancestors(node, parents) & set(labels), labels  # most specific only
        assert "No Finding" not in labels or labels == ["No Finding"]
    assert stats["n_reports_total"] == 3955
    assert (
        stats["n_used"]
        == len(frame)
        == (stats["n_reports_total"] - stats["n_without_text"] - stats["n_without_mapped_label"])
    )
    assert sum(stats["label_counts"].values()) == sum(len(x) for x in frame["labels"])
    assert stats["taxonomy"] == "cxr_anatomic_v1"
    assert len(stats["archive_sha256"]) == 64
    counts = list(stats["ignored_heading_counts"].values())
    assert counts == sorted(counts, reverse=True)


@needs_archive
def test_multilabel_share(bench):
    share = bench.stats["share_multilabel"]
    print(f"cxr-reports: {bench.stats['n_used']} reports, multi-label share {share:.3f}")
    assert share > 0.3
    assert bench.stats["n_multilabel"] == sum(len(x) > 1 for x in bench.frame["labels"])


@needs_archive
def test_no_mapping_ties_in_the_archive(reports):
    # The table's tie rule (first listed wins) must not decide any heading that occurs in the shipped reports.
    index = cr._build_index(cr.load_mesh_map())
    ties = []
    for headings in reports["mesh_major"]:
        for heading in headings:
            head, quals = cr._split_heading(heading)
            hits = [(len(q), node) for q, node in index.get(head, ()) if q <= quals]
            if len(hits) > 1 and hits[0][0] == hits[1][0] and hits[0][1] != hits[1][1]:
                ties.append(heading)
    assert ties == []


@needs_archive
def test_frequent_heads_are_mapped(reports):
    index = cr._build_index(cr.load_mesh_map())
    heads = Counter(cr._split_heading(h)[0] for hs in reports["mesh_major"] for h in hs)
    missing = [h for h, n in heads.items() if n >= 3 and h not in index]
    assert missing == []


@needs_archive
def test_split_sizes_and_determinism(bench):
    n = bench.stats["n_used"]
    sizes = bench.stats["split_sizes"]
    assert sum(sizes.values()) == n
    assert abs(sizes["train"] - n / 2) <= 1
    assert abs(sizes["calibration"] - n / 4) <= 1
    assert abs(sizes["test"] - n / 4) <= 1
    again = cr.load_cxr_reports(seed=0)
    assert again.frame["split"].tolist() == bench.frame["split"].tolist()
    assert again.stats["split_sha256"] == bench.stats["split_sha256"]
    other = cr._split_assignment(bench.frame["id"].tolist(), seed=1)
    assert [other[i] for i in bench.frame["id"]] != bench.frame["split"].tolist()
    assert len(bench.subset("test")) == sizes["test"]
    with pytest.raises(InputError, match="unknown split"):
        bench.subset("validation")


def test_split_rule_and_rng_stream():
    # The split depends only on the sorted ids and the seed (not on input order) ...
    ids = [f"CXR{i}" for i in range(1, 11)]
    assert cr._split_assignment(ids, 0) == cr._split_assignment(ids[::-1], 0)
    assert Counter(cr._split_assignment(ids, 0).values()) == {"train": 5, "calibration": 2, "test": 3}
    # ... and on numpy's PCG64 stream, pinned here so a change of numpy cannot move the shared split silently.
    assert np.random.default_rng(0).permutation(10).tolist() == [4, 6, 2, 7, 3, 5, 9, 0, 8, 1]


def test_seed_validation():
    with pytest.raises(TypeError):
        cr.load_cxr_reports(seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        cr.load_cxr_reports(seed=-1)
