"""Tests of the Taxonomy value object: construction, queries on trees and DAGs, validation, export."""

from __future__ import annotations

import re

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.taxonomy import Taxonomy

TOY_CHILDREN = {"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]}


# --------------------------------------------------------------------------- construction and round trips
def test_from_edges_equals_from_children(toy_tree):
    edges = [("root", "Lung"), ("root", "Pleura"), ("Lung", "Pneumonia"), ("Lung", "Edema"), ("Pleura", "Effusion")]
    tax = Taxonomy.from_edges(edges, name="toy_tree")
    assert tax == toy_tree
    assert tax.nodes == ("root", "Lung", "Pleura", "Pneumonia", "Edema", "Effusion")


def test_from_edges_rejects_a_bad_edge():
    with pytest.raises(InputError, match=r"each edge must be a \(parent, child\) pair; got \('root',\)"):
        Taxonomy.from_edges([("root",)])


def test_to_dict_from_dict_round_trip():
    data = {
        "name": "toy",
        "root": "root",
        "version": "2",
        "provenance": {"source": "hand-written"},
        "children": TOY_CHILDREN,
        "labels": {"Effusion": ["pleural effusion"]},
        "prompts": {"Pneumonia": ["chest X-ray showing {}"]},
        "descriptions": {"Lung": "lung parenchyma"},
    }
    tax = Taxonomy.from_dict(data)
    assert tax.to_dict() == data
    again = Taxonomy.from_dict(tax.to_dict())
    assert again == tax
    assert again.to_dict() == data
    assert (again.name, again.version, again.labels, again.prompts) == ("toy", "2", tax.labels, tax.prompts)


def test_dag_round_trip_keeps_both_parents(toy_dag):
    again = Taxonomy.from_dict(toy_dag.to_dict())
    assert again == toy_dag
    assert again.parents("Pneumonia") == ["Opacity", "LRTI"]


def test_from_dict_errors():
    with pytest.raises(InputError, match=r"a taxonomy definition must be a mapping; got list"):
        Taxonomy.from_dict([("root", "A")])
    with pytest.raises(InputError, match=r"needs a 'children' mapping .*found keys \['name', 'root'\]"):
        Taxonomy.from_dict({"name": "x", "root": "root"})
    with pytest.raises(InputError, match=r"unknown taxonomy field\(s\) \['colour'\]"):
        Taxonomy.from_dict({"children": TOY_CHILDREN, "colour": "red"})
    with pytest.raises(InputError, match=r"children of 'root' must be a list of node ids; got 'Lung'"):
        Taxonomy.from_dict({"children": {"root": "Lung"}})


def test_content_hash_ignores_labels_and_names(toy_tree):
    relabelled = Taxonomy(TOY_CHILDREN, name="other", labels={"Effusion": ["PE"]})
    assert relabelled == toy_tree
    assert hash(relabelled) == hash(toy_tree)
    assert Taxonomy({"root": ["Lung"]}) != toy_tree


def test_summary_and_repr(toy_tree, toy_dag):
    s = toy_dag.summary()
    assert s["n_nodes"] == 11
    assert s["n_leaves"] == 5
    assert s["height"] == 3
    assert s["is_tree"] is False
    assert s["n_multi_parent"] == 2  # Pneumonia and Aspiration
    assert s["branches"] == ["Lung", "Infection", "Heart"]
    assert repr(toy_tree) == "Taxonomy(name='toy_tree', version='1', 6 nodes, height 2, tree)"
    assert len(toy_tree) == 6
    assert "Edema" in toy_tree
    assert "Heart" not in toy_tree


# --------------------------------------------------------------------------- queries on a tree
def test_tree_ancestors_and_descendants(toy_tree):
    assert toy_tree.ancestors("Pneumonia") == ["Lung"]
    assert toy_tree.ancestors("Pneumonia", include_self=True, include_root=True) == ["root", "Lung", "Pneumonia"]
    assert toy_tree.ancestors("root") == []
    assert toy_tree.descendants("Lung") == ["Pneumonia", "Edema"]
    assert toy_tree.descendants("root") == ["Lung", "Pleura", "Pneumonia", "Edema", "Effusion"]
    assert toy_tree.descendants("Effusion") == []
    assert toy_tree.descendants("Effusion", include_self=True) == ["Effusion"]


def test_tree_depth_height_leaves(toy_tree):
    assert [toy_tree.depth(n) for n in toy_tree.nodes] == [0, 1, 1, 2, 2, 2]
    assert toy_tree.height == 2
    assert toy_tree.leaves == ("Pneumonia", "Edema", "Effusion")
    assert toy_tree.leaf_mask.tolist() == [False, False, False, True, True, True]
    assert toy_tree.is_tree
    assert toy_tree.parents("Edema") == ["Lung"]
    assert toy_tree.children("Pleura") == ["Effusion"]


def test_tree_branch(toy_tree):
    assert toy_tree.branch("Pneumonia") == frozenset({"Lung"})
    assert toy_tree.branch("Lung", 1) == frozenset({"Lung"})  # a depth-k node is its own branch
    assert toy_tree.branch("Pneumonia", 2) == frozenset({"Pneumonia"})
    assert toy_tree.branch("Lung", 2) == frozenset()  # shallower than k: no branch
    assert toy_tree.branch("root") == frozenset()


def test_branch_depth_is_validated(toy_tree):
    with pytest.raises(InputError, match=r"branch depth k must be an integer >= 1; got 0"):
        toy_tree.branch("Pneumonia", 0)
    with pytest.raises(InputError, match=r"branch depth k=3 is deeper than taxonomy 'toy_tree' \(height 2\); use 1..2"):
        toy_tree.branch("Pneumonia", 3)


def test_tree_lca_distance_lca_height_path(toy_tree):
    assert toy_tree.lca("Pneumonia", "Edema") == "Lung"
    assert toy_tree.lca("Pneumonia", "Effusion") == "root"
    assert toy_tree.lca("Pneumonia", "Lung") == "Lung"  # ancestor-or-self
    assert toy_tree.lca("Edema", "Edema") == "Edema"
    # tree formula d(u) + d(v) - 2 d(lca)
    assert toy_tree.distance("Pneumonia", "Edema") == 2  # 2 + 2 - 2*1
    assert toy_tree.distance("Pneumonia", "Effusion") == 4  # 2 + 2 - 2*0
    assert toy_tree.distance("Pneumonia", "Lung") == 1  # 2 + 1 - 2*1
    assert toy_tree.distance("Lung", "Pleura") == 2  # 1 + 1 - 0
    assert toy_tree.distance("Edema", "Edema") == 0
    # height(G) - d(lca)
    assert toy_tree.lca_height("Pneumonia", "Edema") == 1  # 2 - 1
    assert toy_tree.lca_height("Pneumonia", "Effusion") == 2  # 2 - 0
    assert toy_tree.lca_height("Pneumonia", "Pneumonia") == 0  # 2 - 2
    assert toy_tree.path("Pneumonia") == ["Lung", "Pneumonia"]
    assert toy_tree.path("Pleura") == ["Pleura"]
    assert toy_tree.path("root") == []


# --------------------------------------------------------------------------- queries on a DAG
def test_dag_ancestors_descendants(toy_dag):
    assert not toy_dag.is_tree
    assert toy_dag.parents("Aspiration") == ["Opacity", "LRTI"]
    # ordered by depth, then node order
    assert toy_dag.ancestors("Aspiration") == ["Lung", "Infection", "Opacity", "LRTI"]
    assert toy_dag.descendants("Infection") == ["LRTI", "Sepsis", "Pneumonia", "Aspiration"]
    assert toy_dag.leaves == ("Sepsis", "Cardiomegaly", "Pneumonia", "Edema", "Aspiration")
    assert toy_dag.height == 3


def test_dag_depth_is_the_shortest_path_from_the_root():
    # C hangs under B (depth 3 that way) and directly under the root (depth 1)
    tax = Taxonomy({"root": ["A", "C"], "A": ["B"], "B": ["C"], "C": ["D"]})
    assert tax.depth("C") == 1
    assert tax.depth("D") == 2
    # branch_1(C) = C's ancestors-or-self at depth 1 = {A, C}
    assert tax.branch("C", 1) == frozenset({"A", "C"})
    assert tax.branch("D", 1) == frozenset({"A", "C"})
    assert tax.branch("D", 2) == frozenset({"B", "D"})


def test_dag_branch_sets(toy_dag):
    assert toy_dag.branch("Pneumonia") == frozenset({"Lung", "Infection"})
    assert toy_dag.branch("Edema") == frozenset({"Lung"})
    assert toy_dag.branch("Aspiration", 2) == frozenset({"Opacity", "LRTI"})
    assert toy_dag.branch("Sepsis", 3) == frozenset()


def test_dag_lca_is_deepest_with_ties_broken_by_node_id(toy_dag):
    assert toy_dag.lca("Pneumonia", "Edema") == "Opacity"
    assert toy_dag.lca("Pneumonia", "Sepsis") == "Infection"
    assert toy_dag.lca("Opacity", "LRTI") == "root"
    # common ancestors of Pneumonia and Aspiration at depth 2: Opacity and LRTI -> "LRTI" < "Opacity"
    # (node order would have picked Opacity, which comes first)
    assert toy_dag.lca("Pneumonia", "Aspiration") == "LRTI"
    assert toy_dag.lca("Aspiration", "Pneumonia") == "LRTI"


def test_dag_distance_is_the_shortest_undirected_path(toy_dag):
    # Opacity - Pneumonia - LRTI: 2 edges, although the LCA is the root (tree formula: 2 + 2 - 0 = 4)
    assert toy_dag.distance("Opacity", "LRTI") == 2
    assert toy_dag.distance("Edema", "Aspiration") == 2  # siblings under Opacity
    assert toy_dag.distance("Pneumonia", "Sepsis") == 3  # Pneumonia - LRTI - Infection - Sepsis
    assert toy_dag.distance("Edema", "Sepsis") == 5  # Edema - Opacity - Pneumonia - LRTI - Infection - Sepsis
    assert toy_dag.distance("Cardiomegaly", "Edema") == 5  # via the root: 2 + 3
    assert toy_dag.distance("Sepsis", "Sepsis") == 0
    # lca_height in a DAG: height 3 - depth(lca)
    assert toy_dag.lca_height("Pneumonia", "Edema") == 1  # lca Opacity at depth 2
    assert toy_dag.lca_height("Opacity", "LRTI") == 3  # lca root


def test_dag_path_follows_the_first_parent(toy_dag):
    # parents of Aspiration: Opacity (index 4) and LRTI (index 5), both at depth 2 -> Opacity
    assert toy_dag.path("Aspiration") == ["Lung", "Opacity", "Aspiration"]
    assert toy_dag.path("Sepsis") == ["Infection", "Sepsis"]


# --------------------------------------------------------------------------- validation
def test_cycle_through_the_root_component_is_rejected():
    with pytest.raises(InputError, match=r"taxonomy 'cyc' has a cycle through \['A', 'B'\]"):
        Taxonomy({"root": ["A"], "A": ["B"], "B": ["A"]}, name="cyc")


def test_detached_cycle_is_rejected():
    with pytest.raises(InputError, match=r"has a cycle not reachable from 'root': \['B', 'C'\]"):
        Taxonomy({"root": ["A"], "B": ["C"], "C": ["B"]})


def test_self_loop_is_rejected():
    with pytest.raises(InputError, match=r"node 'A' is its own parent \(a cycle\)"):
        Taxonomy({"root": ["A"], "A": ["A"]})


def test_several_roots_are_rejected():
    with pytest.raises(InputError, match=r"has several roots: 'root' and \['X'\]"):
        Taxonomy({"root": ["A"], "X": ["Y"]})


def test_root_with_a_parent_is_rejected():
    with pytest.raises(InputError, match=r"the root 'root' cannot have a parent \('A'\)"):
        Taxonomy({"root": ["A"], "A": ["root"]})


def test_unknown_nodes_in_labels_or_prompts_are_rejected():
    with pytest.raises(InputError, match=re.escape("'labels'/'prompts' name unknown node(s) ['Pnemonia']")):
        Taxonomy(TOY_CHILDREN, labels={"Pnemonia": ["pneumonia"]})
    with pytest.raises(InputError, match=re.escape("name unknown node(s) ['Heart']")):
        Taxonomy(TOY_CHILDREN, prompts={"Heart": ["a photo of {}"]})


def test_unknown_node_lookup_suggests_close_ids(toy_tree):
    msg = r"unknown node 'Pnemonia' in taxonomy 'toy_tree'\. Did you mean: 'Pneumonia'\?"
    for query in (toy_tree.depth, toy_tree.ancestors, toy_tree.branch, toy_tree.path, toy_tree.check_node):
        with pytest.raises(InputError, match=msg):
            query("Pnemonia")
    with pytest.raises(InputError, match=msg):
        toy_tree.lca("Edema", "Pnemonia")
    with pytest.raises(InputError, match=r"unknown node 'Heart' in taxonomy 'toy_tree'\. Use one of its 6 node ids"):
        toy_tree.distance("Heart", "Edema")


def test_node_indices_names_the_row(toy_tree):
    assert toy_tree.node_indices(["Effusion", "root"]).tolist() == [5, 0]
    with pytest.raises(
        InputError, match=r"unknown label 'Edma' at row 1 for taxonomy 'toy_tree'\. Did you mean: 'Edema'\?"
    ):
        toy_tree.node_indices(["Lung", "Edma"])


def test_multi_parent_option(toy_dag):
    children = toy_dag.to_dict()["children"]
    first = Taxonomy(children, multi_parent="first")
    assert first.is_tree
    assert first.parents("Pneumonia") == ["Opacity"]  # the first edge listed wins
    assert first.parents("Aspiration") == ["Opacity"]
    assert first.children("LRTI") == []
    assert first.summary()["n_multi_parent"] == 0
    with pytest.raises(
        InputError, match=r"node 'Pneumonia' has several parents \('Opacity', 'LRTI'\) but multi_parent='error'"
    ):
        Taxonomy(children, multi_parent="error")
    with pytest.raises(InputError, match=r"multi_parent must be 'union', 'first' or 'error'; got 'all'"):
        Taxonomy(children, multi_parent="all")
    # a tree passes multi_parent="error"; repeated edges are not several parents
    assert Taxonomy({"root": ["A", "A"], "A": ["a"]}, multi_parent="error").parents("A") == ["root"]


# --------------------------------------------------------------------------- label mapping
def test_map_label_by_id_normalisation_and_synonyms():
    tax = Taxonomy(
        {"root": ["Lung", "Pleura"], "Lung": ["Pneumonia"], "Pleura": ["Pleural Effusion"]},
        labels={"Pleural Effusion": ["effusion", "PE"], "Pneumonia": ["consolidation/infection"]},
    )
    assert tax.map_label("Pleural Effusion") == "Pleural Effusion"  # exact id
    assert tax.map_label("pleural_effusion") == "Pleural Effusion"  # normalised id
    assert tax.map_label("  PLEURAL-EFFUSION ") == "Pleural Effusion"
    assert tax.map_label("Effusion") == "Pleural Effusion"  # synonym, case-insensitive
    assert tax.map_label("pe") == "Pleural Effusion"
    assert tax.map_label("Consolidation Infection") == "Pneumonia"  # '/' normalises to a space
    assert tax.map_labels(["effusion", "Lung", "X"], mapping={"X": "Pneumonia"}) == [
        "Pleural Effusion",
        "Lung",
        "Pneumonia",
    ]
    with pytest.raises(
        InputError,
        match=r"label 'efusion' matches no node or synonym of taxonomy 'custom'\. Did you mean: 'Pleural Effusion'\?",
    ):
        tax.map_label("efusion")
    with pytest.raises(InputError, match=r"unknown node 'Heart'"):
        tax.map_labels(["X"], mapping={"X": "Heart"})


def test_node_ids_win_over_synonyms():
    # "Lung" is both a node id and (carelessly) a synonym of Pneumonia: the id wins
    tax = Taxonomy({"root": ["Lung"], "Lung": ["Pneumonia"]}, labels={"Pneumonia": ["lung"]})
    assert tax.map_label("lung") == "Lung"


def test_a_label_naming_two_nodes_raises_instead_of_picking_one():
    # Regression: "MASS" resolved silently to whichever of "Mass"/"mass" came first, "a-b" to one of "a b"/"a_b".
    tax = Taxonomy(
        {"root": ["Mass", "mass", "a b", "a_b", "Lung"], "Lung": ["Nodule", "Pneumonia"]},
        labels={"Nodule": ["lesion"], "Pneumonia": ["Lesion", "consolidation"], "Mass": ["lung"]},
    )
    assert [tax.map_label(x) for x in ("Mass", "mass", "a b", "a_b")] == ["Mass", "mass", "a b", "a_b"]  # exact ids
    assert tax.map_label("CONSOLIDATION") == "Pneumonia"
    assert tax.map_label("LUNG") == "Lung"  # one node id wins over another node's synonym
    with pytest.raises(
        InputError,
        match=r"label 'MASS' is ambiguous in taxonomy 'custom': it normalises to the ids of 2 nodes \('Mass', 'mass'\)\. Use the exact node id",
    ):
        tax.map_label("MASS")
    with pytest.raises(InputError, match=r"label 'A-B' is ambiguous .* the ids of 2 nodes \('a b', 'a_b'\)"):
        tax.map_label("A-B")
    with pytest.raises(
        InputError, match=r"label 'lesion' is ambiguous .* a synonym of 2 nodes \('Nodule', 'Pneumonia'\)"
    ):
        tax.map_label("lesion")
    assert tax.map_labels(["lesion"], mapping={"lesion": "Nodule"}) == ["Nodule"]  # the explicit way out
    with pytest.raises(
        InputError,
        match=r"2 label\(s\) are ambiguous in taxonomy 'custom': 'MASS' -> \['Mass', 'mass'\]; 'lesion' -> \['Nodule', 'Pneumonia'\]",
    ):
        tax.validate(["Mass", "MASS", "lesion", "consolidation"])


# --------------------------------------------------------------------------- hiclass export
def test_to_paths_single_label(toy_tree):
    paths = toy_tree.to_paths(["Pneumonia", "Pleura", "Effusion"])
    assert paths.shape == (3, 2)
    assert paths.tolist() == [["Lung", "Pneumonia"], ["Pleura", ""], ["Pleura", "Effusion"]]


def test_to_paths_multi_label(toy_tree):
    paths = toy_tree.to_paths([["Pneumonia", "Effusion"], ["Edema"]])
    assert paths.shape == (2, 2, 2)  # (n_samples, widest label set, height)
    assert paths.tolist() == [
        [["Lung", "Pneumonia"], ["Pleura", "Effusion"]],
        [["Lung", "Edema"], ["", ""]],
    ]


def test_to_paths_width_and_pair(toy_tree):
    wide = toy_tree.to_paths([["Pneumonia"], ["Edema"]], width=3)
    assert wide.shape == (2, 3, 2)
    assert wide.tolist() == [
        [["Lung", "Pneumonia"], ["", ""], ["", ""]],
        [["Lung", "Edema"], ["", ""], ["", ""]],
    ]
    assert toy_tree.to_paths(["Pneumonia", "Pleura"], width=1).tolist() == [[["Lung", "Pneumonia"]], [["Pleura", ""]]]
    with pytest.raises(
        InputError, match=r"width=1 is smaller than the label set of row 1 \(2 labels\); use width >= 2"
    ):
        toy_tree.to_paths([["Pneumonia"], ["Edema", "Effusion"]], width=1)
    for bad in (0, True, 1.5):
        with pytest.raises(InputError, match=r"width must be a positive integer"):
            toy_tree.to_paths([["Pneumonia"]], width=bad)
    # the pair: 2-D for single labels on both sides, else both 3-D with one width
    t, p = toy_tree.to_paths_pair(["Pneumonia", "Edema"], ["Edema", "Lung"])
    assert t.shape == p.shape == (2, 2)
    t, p = toy_tree.to_paths_pair([["Pneumonia"], ["Edema"]], [("Edema", "Effusion", "Lung"), iter([])])
    assert t.shape == p.shape == (2, 3, 2)
    assert p[1].tolist() == [["", ""]] * 3
    with pytest.raises(InputError, match=r"same number of samples; got 2 and 1"):
        toy_tree.to_paths_pair(["Pneumonia", "Edema"], ["Edema"])


def test_to_paths_in_a_dag_uses_the_first_parent_path(toy_dag):
    paths = toy_dag.to_paths(np.array(["Aspiration", "Sepsis"]))
    assert paths.tolist() == [["Lung", "Opacity", "Aspiration"], ["Infection", "Sepsis", ""]]


def test_validate_reports_every_unmapped_label(toy_tree):
    assert toy_tree.validate(["Pneumonia", "pneumonia", "Lung"]) is toy_tree
    with pytest.raises(InputError, match=r"2 label\(s\) map to no node of taxonomy 'toy_tree': \['Heart', 'Bone'\]"):
        toy_tree.validate(["Pneumonia", "Heart", "Bone", "Heart"])
