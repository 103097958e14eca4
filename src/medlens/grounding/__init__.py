"""Knowledge-decomposed abnormality grounding (K2Sight / AG-KD) with Florence-2-style models.

- :mod:`knowledge bases <medlens.grounding._kb>`: versioned YAML files of findings with structured visual
  attributes (``vindr-cxr``: 22 findings, ``padchest-gr``: 24), a loader and a validator;
- real box statistics from the NIH and VinDr-CXR tables of ``torchxrayvision`` (typical size and location,
  reader agreement);
- prompt renderers (name only, definition, attribute subsets) for ablations;
- the Florence-2 ``<loc_k>`` codec and output parser;
- local VinDr-CXR data: weighted box fusion of the readers, (image, finding) queries with negatives, a
  validation split carved from train, and the human ceiling (each reader against the others' fusion);
- a transformers-native Florence-2 grounder (:func:`load_grounder`, a tiny random one from
  :func:`write_tiny_florence`), masked-padding training with validation-split model selection (by the
  decoded predictions' F1@0.5 or by the loss, :func:`train_grounder`) and scored predictions;
- an honest evaluator (P/R/F1, Acc@0.5, mIoU, mAP with real scores only, negative queries, RoDeO, strata by
  seen/unseen, finding, box size and box count); COCO JSON input (:func:`coco_queries`);
- the documents behind ``medlens ground prompt | train | predict | evaluate``.
"""

from medlens.grounding._augment import Augment, affine_matrix, map_boxes
from medlens.grounding._coco import coco_queries
from medlens.grounding._data import (
    DATA_SPLITS,
    GroundingData,
    build_queries,
    fuse_readers,
    image_paths,
    image_sizes,
    load_grounding_data,
    read_split_file,
    reader_ceiling,
    split_queries,
    validation_split,
    weighted_box_fusion,
)
from medlens.grounding._documents import (
    ceiling_document,
    knowledge_list_document,
    knowledge_provenance,
    knowledge_show_document,
    knowledge_validate_document,
)
from medlens.grounding._evaluate import SCORE_STATUS, evaluate_grounding
from medlens.grounding._florence import (
    N_BINS,
    ParsedGrounding,
    build_target,
    decode_boxes,
    encode_boxes,
    loc_tokens,
    map_phrase,
    parse_grounding,
)
from medlens.grounding._kb import (
    ATTRIBUTES,
    BUILTIN_KNOWLEDGE,
    SPLITS,
    STATISTICS_LABELS,
    Finding,
    KnowledgeBase,
    load_knowledge,
    validate_knowledge,
)
from medlens.grounding._model import FlorenceGrounder, load_grounder, n_image_tokens, write_tiny_florence
from medlens.grounding._prompts import GROUNDING_TASK, PROMPT_MODES, parse_attributes, render_prompt, task_prompt
from medlens.grounding._rodeo import rodeo
from medlens.grounding._run import (
    evaluate_document,
    predict_document,
    prompt_document,
    read_predictions,
    run_ground_train,
    truth_queries,
)
from medlens.grounding._stats import (
    DERIVATION,
    DerivedAttributes,
    derive_attributes,
    fleiss_kappa_binary,
    locate_data_file,
    nih_box_statistics,
    read_nih_boxes,
    read_vindr_boxes,
    reader_agreement,
    vindr_box_statistics,
)
from medlens.grounding._train import LoraOptions, caption_for, train_grounder

__all__ = [
    "Augment",
    "LoraOptions",
    "affine_matrix",
    "map_boxes",
    "coco_queries",
    "evaluate_document",
    "predict_document",
    "prompt_document",
    "read_predictions",
    "rodeo",
    "run_ground_train",
    "truth_queries",
    "DATA_SPLITS",
    "GroundingData",
    "build_queries",
    "fuse_readers",
    "image_paths",
    "image_sizes",
    "FlorenceGrounder",
    "load_grounder",
    "n_image_tokens",
    "write_tiny_florence",
    "caption_for",
    "train_grounder",
    "load_grounding_data",
    "read_split_file",
    "reader_ceiling",
    "split_queries",
    "validation_split",
    "weighted_box_fusion",
    "ceiling_document",
    "knowledge_list_document",
    "knowledge_provenance",
    "knowledge_show_document",
    "knowledge_validate_document",
    "SCORE_STATUS",
    "evaluate_grounding",
    "N_BINS",
    "ParsedGrounding",
    "build_target",
    "decode_boxes",
    "encode_boxes",
    "loc_tokens",
    "map_phrase",
    "parse_grounding",
    "ATTRIBUTES",
    "BUILTIN_KNOWLEDGE",
    "DERIVATION",
    "GROUNDING_TASK",
    "PROMPT_MODES",
    "SPLITS",
    "STATISTICS_LABELS",
    "DerivedAttributes",
    "Finding",
    "KnowledgeBase",
    "derive_attributes",
    "fleiss_kappa_binary",
    "load_knowledge",
    "locate_data_file",
    "nih_box_statistics",
    "parse_attributes",
    "read_nih_boxes",
    "read_vindr_boxes",
    "reader_agreement",
    "render_prompt",
    "task_prompt",
    "validate_knowledge",
    "vindr_box_statistics",
]
