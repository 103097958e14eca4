"""Taxonomies: the :class:`Taxonomy` DAG value object, file formats, OBO ontologies and built-ins."""

from medlens.taxonomy._documents import taxonomy_list_document, taxonomy_show_document, taxonomy_validate_document
from medlens.taxonomy._io import TAXONOMIES, from_obo, hpo_taxonomy, list_taxonomies, load_taxonomy, read_taxonomy_file
from medlens.taxonomy._taxonomy import Taxonomy

__all__ = [
    "Taxonomy",
    "TAXONOMIES",
    "from_obo",
    "hpo_taxonomy",
    "list_taxonomies",
    "load_taxonomy",
    "read_taxonomy_file",
    "taxonomy_list_document",
    "taxonomy_show_document",
    "taxonomy_validate_document",
]
