"""Zero-shot node probabilities for images or texts from an (image-)text encoder and a taxonomy's prompts.

Each scored node has a prompt ensemble (:mod:`medlens.hierarchy._prompts`); an input's cosine similarity
to every ensemble becomes a probability by one of three rules, recorded by :meth:`ZeroShotScorer.method_info`:

* ``softmax`` (CLIP convention): ``P(leaf) = softmax_leaves(scale · cos)``; internal nodes by aggregating
  their leaves (``sum`` is exact when the leaves are mutually exclusive, ``max`` and ``noisy_or`` also work);
* ``sigmoid`` (SigLIP convention): ``P(v) = σ(scale · cos + bias)`` per node; internal nodes by their own
  prompts (``internal="prompt"``) or by aggregating their leaves;
* ``platt``: ``P(v) = σ(a_v · cos + b_v)`` with ``a_v, b_v`` fitted per node on labelled data
  (:class:`~medlens.hierarchy._zeroshot.PlattScaler`), internal nodes as for ``sigmoid``;
* ``contrast`` (CheXzero convention): every node also has a negative prompt ensemble ("There is no {}.") and
  ``P(v) = softmax(scale · [cos⁺, cos⁻])₀ = σ(scale · (cos⁺ − cos⁻))``; internal nodes as for ``sigmoid``.
  Its "similarity" (what :meth:`ZeroShotScorer.similarity_texts` returns and ``platt`` would calibrate) is the
  contrast ``cos⁺ − cos⁻``.

``scale`` is, in order: ``1 / temperature`` when given, the encoder's ``logit_scale`` attribute (the
multiplier, i.e. already exponentiated: about 100 for CLIP) when it is not ``None``, else 100. ``bias`` is
the given value, else the encoder's ``logit_bias`` when not ``None``, else 0.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from medlens._validation import InputError, check_interval, check_option
from medlens.hierarchy._aggregate import complete_node_scores, node_scores_from_leaves
from medlens.hierarchy._prompts import (
    DEFAULT_TEMPLATES,
    PromptSource,
    PromptTable,
    build_prompt_table,
    ensemble_embeddings,
)
from medlens.hierarchy._zeroshot import PlattScaler
from medlens.taxonomy import Taxonomy

__all__ = ["DEFAULT_LOGIT_SCALE", "INTERNAL_RULES", "SCORING_METHODS", "ZeroShotScorer"]

log = logging.getLogger(__name__)

DEFAULT_LOGIT_SCALE = 100.0
SCORING_METHODS = ("softmax", "sigmoid", "platt", "contrast")
DEFAULT_NEGATIVE_TEMPLATES = ("There is no {}.", "No {}.")
INTERNAL_RULES = ("prompt", "sum", "max", "noisy_or")
Method = Literal["softmax", "sigmoid", "platt", "contrast"]
Internal = Literal["prompt", "sum", "max", "noisy_or"]
InputKind = Literal["similarity", "texts", "images"]

_FORMULAS = {
    "softmax": "P(leaf) = softmax over leaves of (scale * cos); internal nodes aggregate their leaves ({internal})",
    "sigmoid": "P(node) = sigmoid(scale * cos + bias); internal nodes {internal_how}",
    "platt": "P(node) = sigmoid(a_node * cos + b_node), a and b fitted per node; internal nodes {internal_how}",
    "contrast": "P(node) = sigmoid(scale * (cos_positive - cos_negative)) (CheXzero); internal nodes {internal_how}",
}


def _encoder_number(encoder: Any, attr: str) -> float | None:
    value = getattr(encoder, attr, None)
    if value is None:
        return None
    try:
        x = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        raise InputError(f"the encoder's {attr} must be a number or None; got {value!r}.") from None
    if not math.isfinite(x):
        raise InputError(f"the encoder's {attr} must be finite; got {x}.")
    return x


class ZeroShotScorer:
    """Score images or texts on every node of a taxonomy with prompt ensembles.

    Parameters
    ----------
    encoder : Encoder
        Has ``config`` (an :class:`~medlens.encoders.EncoderConfig`), ``encode_texts`` and, to score images,
        ``encode_images``; optional ``logit_scale`` / ``logit_bias`` attributes (``None`` when absent).
    taxonomy : Taxonomy
    templates : sequence of str, optional
        Prompt templates with one ``{}``; default :data:`~medlens.hierarchy._prompts.DEFAULT_TEMPLATES`.
    prompts : mapping of str to list of str, optional
        ``{node: [prompt, ...]}`` overrides.
    prompt_source : {"auto", "taxonomy", "templates", "both"}
        Where node prompts come from (see :func:`~medlens.hierarchy.build_prompt_table`).
    synonyms : bool
        Fill templates with the taxonomy's ``labels`` synonyms as well as the node id.
    internal : {"prompt", "sum", "max", "noisy_or"}, optional
        How internal nodes are scored; default ``"sum"`` for ``softmax`` and ``"prompt"`` otherwise. With
        ``sigmoid``/``platt`` the leaves are not exclusive, so a ``sum`` is clipped at 1 (prefer ``noisy_or``).
    method : {"softmax", "sigmoid", "platt", "contrast"}
    negative_templates : sequence of str, optional
        Templates with one ``{}`` for the negative prompts of ``contrast`` (filled with the node id and, with
        ``synonyms``, its labels); default :data:`DEFAULT_NEGATIVE_TEMPLATES`.
    temperature : float, optional
        ``scale = 1 / temperature`` (overrides the encoder's ``logit_scale``); not used by ``platt``.
    bias : float, optional
        Logit bias of ``sigmoid`` (overrides the encoder's ``logit_bias``).
    batch_size : int
        Inputs per encoder batch.
    progress : bool
        Show the encoder's progress bar.
    platt_C : float
        Inverse regularisation strength of the Platt fit.

    Examples
    --------
    >>> from medlens.encoders import EncoderConfig
    >>> class Toy:  # two orthogonal "concepts"; prompts mentioning 'heart' point one way, the rest the other
    ...     config = EncoderConfig(name="toy", source="-", modality="text", embedding_dim=2)
    ...     logit_scale = 10.0
    ...     def encode_texts(self, texts, **kw):
    ...         return np.array([[1.0, 0.0] if "heart" in t.lower() else [0.0, 1.0] for t in texts])
    >>> tax = Taxonomy({"root": ["Heart", "Lung"]})
    >>> s = ZeroShotScorer(Toy(), tax, templates=["{}"], prompt_source="templates")
    >>> s.score_texts(["big heart"]).round(5).tolist()  # softmax(10 * [1, 0]) over the two leaves
    [[1.0, 0.99995, 5e-05]]
    """

    def __init__(
        self,
        encoder: Any,
        taxonomy: Taxonomy,
        *,
        templates: Sequence[str] | None = None,
        prompts: Mapping[str, Sequence[str]] | None = None,
        prompt_source: PromptSource = "auto",
        synonyms: bool = True,
        internal: Internal | None = None,
        method: Method = "softmax",
        temperature: float | None = None,
        bias: float | None = None,
        batch_size: int = 32,
        progress: bool = False,
        platt_C: float = 100.0,
        negative_templates: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(taxonomy, Taxonomy):
            raise TypeError(f"taxonomy must be a Taxonomy (medlens.taxonomy.load_taxonomy); got {type(taxonomy)}.")
        check_option(method, SCORING_METHODS, name="method")
        internal = internal if internal is not None else ("sum" if method == "softmax" else "prompt")
        check_option(internal, INTERNAL_RULES, name="internal")
        if method == "softmax" and internal == "prompt":
            raise InputError(
                "method 'softmax' is a distribution over the leaves, so internal nodes come from their leaves: use "
                "internal 'sum' (exact for mutually exclusive leaves), 'max' or 'noisy_or'; or use method 'sigmoid' "
                "or 'platt' to score internal nodes with their own prompts."
            )
        if method == "platt" and (temperature is not None or bias is not None):
            raise InputError(
                "temperature and bias do not apply to method 'platt': the Platt fit learns a scale and a bias per node."
            )
        if method in ("softmax", "contrast") and bias is not None:
            raise InputError(f"a bias has no effect on method {method!r} (softmax is shift-invariant); drop it.")
        if negative_templates is not None and method != "contrast":
            raise InputError(f"negative templates apply to method 'contrast' only; got method {method!r}.")
        if temperature is not None:
            check_interval(temperature, name="temperature", low=0, closed="right")
        if bias is not None:
            check_interval(bias, name="bias")
        check_interval(batch_size, name="batch_size", low=1)
        self._check_encoder(encoder)
        self.encoder = encoder
        self.taxonomy = taxonomy
        self.method = method
        self.internal = internal
        self.batch_size = int(batch_size)
        self.progress = progress
        self.templates = tuple(DEFAULT_TEMPLATES if templates is None else templates)
        self.prompt_source = prompt_source
        self.synonyms = synonyms
        scored = list(taxonomy.nodes[1:]) if (method != "softmax" and internal == "prompt") else list(taxonomy.leaves)
        if scored == [taxonomy.root]:
            raise InputError(f"taxonomy {taxonomy.name!r} has only a root; there is nothing to score.")
        self.prompt_table: PromptTable = build_prompt_table(
            taxonomy,
            nodes=scored,
            templates=self.templates,
            source=prompt_source,
            synonyms=synonyms,
            overrides={k: v for k, v in (prompts or {}).items() if k in scored},
        )
        if templates is not None and not any(v in ("templates", "both") for v in self.prompt_table.sources.values()):
            log.warning(
                "the given templates are not used: every scored node has its own taxonomy prompts or an override "
                "(prompt source %r); use prompt source 'templates' or 'both' to use them.",
                prompt_source,
            )
        extra = sorted(set(prompts or {}) - set(scored))
        for node in extra:
            taxonomy.check_node(node)
        if extra:
            log.warning(
                "prompt overrides for %s are not used: with method %r and internal %r only %s are scored by prompts.",
                extra[:5],
                method,
                internal,
                "the leaves" if scored == list(taxonomy.leaves) else "the non-root nodes",
            )
        self.scored_nodes: tuple[str, ...] = self.prompt_table.nodes
        self.negative_table: PromptTable | None = None
        if method == "contrast":
            self.negative_table = build_prompt_table(
                taxonomy,
                nodes=self.scored_nodes,
                templates=tuple(DEFAULT_NEGATIVE_TEMPLATES if negative_templates is None else negative_templates),
                source="templates",
                synonyms=synonyms,
            )
        self._negative_embeddings: np.ndarray | None = None
        self._resolve_scale(temperature, bias)
        self.platt_C = float(platt_C)
        self.scaler: PlattScaler | None = None
        self._platt_fit_info: dict[str, Any] | None = None
        self._prompt_embeddings: np.ndarray | None = None

    # ------------------------------------------------------------------ configuration
    @staticmethod
    def _check_encoder(encoder: Any) -> None:
        cfg = getattr(encoder, "config", None)
        if cfg is None or not hasattr(cfg, "modalities") or not callable(getattr(encoder, "encode_texts", None)):
            raise TypeError(
                f"encoder must follow the medlens Encoder protocol (config, encode_texts, encode_images); got "
                f"{type(encoder).__name__}. Load one with medlens.encoders.load_encoder."
            )
        if "text" not in cfg.modalities:
            raise InputError(
                f"encoder {cfg.name!r} encodes {cfg.modality} only, but zero-shot scoring embeds text prompts; use an "
                "image-text (CLIP-like) encoder for images or a text encoder for texts."
            )

    def _resolve_scale(self, temperature: float | None, bias: float | None) -> None:
        enc_scale = _encoder_number(self.encoder, "logit_scale")
        enc_bias = _encoder_number(self.encoder, "logit_bias")
        if self.method == "platt":
            self.scale = self.bias = None
            self.scale_source = self.bias_source = None
            return
        if temperature is not None:
            self.scale, self.scale_source = 1.0 / float(temperature), "temperature"
        elif enc_scale is not None:
            if enc_scale <= 0:
                raise InputError(f"the encoder's logit_scale must be positive; got {enc_scale}. Pass a temperature.")
            self.scale, self.scale_source = enc_scale, "encoder"
        else:
            self.scale, self.scale_source = DEFAULT_LOGIT_SCALE, "default"
        if self.method in ("softmax", "contrast"):
            self.bias, self.bias_source = None, None
        elif bias is not None:
            self.bias, self.bias_source = float(bias), "user"
        elif enc_bias is not None:
            self.bias, self.bias_source = enc_bias, "encoder"
        else:
            self.bias, self.bias_source = 0.0, "default"
            log.warning(
                "method 'sigmoid' without a logit bias (the encoder has no logit_bias and none was given): "
                "probabilities are sigmoid(%g * cos), which saturate for softmax-trained (CLIP) encoders; pass a bias, "
                "or use method 'softmax' or 'platt'.",
                self.scale,
            )

    # ------------------------------------------------------------------ embeddings and similarities
    def _ensembles(self, table: PromptTable) -> np.ndarray:
        texts, owner = table.flat()
        e = self.encoder.encode_texts(texts, batch_size=self.batch_size, progress=self.progress)
        e = np.asarray(e, dtype=np.float64)
        if e.ndim != 2 or len(e) != len(texts):
            raise InputError(f"the encoder returned shape {e.shape} for {len(texts)} prompts; expected (n, dim).")
        return ensemble_embeddings(e, owner, len(self.scored_nodes), names=self.scored_nodes)

    def prompt_embeddings(self) -> np.ndarray:
        """Unit prompt-ensemble embedding of every scored node, shape (n_scored_nodes, dim), computed once."""
        if self._prompt_embeddings is None:
            self._prompt_embeddings = self._ensembles(self.prompt_table)
        return self._prompt_embeddings

    def negative_embeddings(self) -> np.ndarray:
        """Unit negative-prompt ensembles of method ``contrast``, shape (n_scored_nodes, dim), computed once."""
        if self.negative_table is None:
            raise InputError(f"method {self.method!r} has no negative prompts; use method 'contrast'.")
        if self._negative_embeddings is None:
            self._negative_embeddings = self._ensembles(self.negative_table)
        return self._negative_embeddings

    def _cosine(self, emb: Any, what: str) -> np.ndarray:
        x = np.asarray(emb, dtype=np.float64)
        c = self.prompt_embeddings()
        if x.ndim != 2 or x.shape[1] != c.shape[1]:
            raise InputError(
                f"the {what} embeddings have shape {x.shape} but the prompt embeddings have {c.shape[1]} "
                "dimensions; zero-shot scoring needs a joint image-text embedding space (a CLIP-like encoder), or "
                "features translated into the text encoder's space with `medlens stitch`."
            )
        if not np.isfinite(x).all():
            raise InputError(f"the {what} embeddings hold NaN or infinite values.")
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if (norms == 0).any():
            raise InputError(f"the {what} embedding of row {int(np.flatnonzero(norms == 0)[0])} is the zero vector.")
        x = x / norms
        if self.method == "contrast":
            return x @ c.T - x @ self.negative_embeddings().T
        return x @ c.T

    def similarity_embeddings(self, embeddings: Any) -> np.ndarray:
        """Similarity of precomputed embeddings (in the encoder's text space) to each scored node's prompts.

        For features that live in the text space without coming from the encoder, e.g. image features
        translated with :class:`medlens.stitching.Translator`. Shape (n, len(scored_nodes)).
        """
        return self._cosine(embeddings, "input")

    def similarity_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each text to each scored node's prompt ensemble, shape (n, len(scored_nodes))."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of strings (one per sample); got a single string or non-strings.")
        emb = self.encoder.encode_texts(list(texts), batch_size=self.batch_size, progress=self.progress)
        return self._cosine(emb, "text")

    def check_image_encoder(self) -> None:
        """Refuse an encoder that cannot embed images (a text-only model)."""
        cfg = self.encoder.config
        if "image" not in cfg.modalities or not callable(getattr(self.encoder, "encode_images", None)):
            raise InputError(
                f"encoder {cfg.name!r} encodes {cfg.modality} only, not images; score images with an image-text "
                "(CLIP-like) encoder, or score texts with this one."
            )

    def similarity_images(self, images: Sequence[Any]) -> np.ndarray:
        """Cosine similarity of each image to each scored node's prompt ensemble, shape (n, len(scored_nodes))."""
        self.check_image_encoder()
        if isinstance(images, str | os.PathLike):
            raise TypeError("images must be a list (paths, PIL images or arrays); got a single path.")
        emb = self.encoder.encode_images(list(images), batch_size=self.batch_size, progress=self.progress)
        return self._cosine(emb, "image")

    # ------------------------------------------------------------------ probabilities
    def probabilities(self, similarity: np.ndarray) -> np.ndarray:
        """Node probabilities (n, len(taxonomy)) in ``taxonomy.nodes`` order (root = 1) from similarities."""
        s = np.asarray(similarity, dtype=np.float64)
        if s.ndim != 2 or s.shape[1] != len(self.scored_nodes):
            raise InputError(
                f"similarities must have shape (n, {len(self.scored_nodes)}) (one column per scored node); got {s.shape}."
            )
        if not np.isfinite(s).all():
            raise InputError("similarities must be finite numbers.")
        from scipy.special import expit, softmax

        if self.method == "softmax":
            p = softmax(self.scale * s, axis=1)
        elif self.method == "sigmoid":
            p = expit(self.scale * s + self.bias)
        elif self.method == "contrast":
            p = expit(self.scale * s)
        else:
            if self.scaler is None:
                raise InputError(
                    "method 'platt' needs a fit on labelled data first: scorer.fit(texts_images_or_similarities, "
                    "labels) (CLI: --calibration-truth TRUTH.csv)."
                )
            p = self.scaler.transform(s)
        if len(s) == 0:
            return np.ones((0, len(self.taxonomy)))
        if self.internal == "prompt":
            return complete_node_scores(p, taxonomy=self.taxonomy, nodes=self.scored_nodes)
        return node_scores_from_leaves(p, taxonomy=self.taxonomy, leaves=self.scored_nodes, aggregator=self.internal)

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Node probabilities of texts, shape (n, len(taxonomy)), ``taxonomy.nodes`` order, root column = 1."""
        return self.probabilities(self.similarity_texts(texts))

    def score_images(self, images: Sequence[Any]) -> np.ndarray:
        """Node probabilities of images, shape (n, len(taxonomy)), ``taxonomy.nodes`` order, root column = 1."""
        return self.probabilities(self.similarity_images(images))

    # ------------------------------------------------------------------ Platt calibration
    def fit(self, x: Any, labels: Any, *, kind: InputKind | None = None) -> ZeroShotScorer:
        """Fit the per-node Platt calibration of ``method="platt"`` on labelled inputs.

        Parameters
        ----------
        x : texts, images, or array of shape (n, len(scored_nodes))
            Inputs to embed, or similarities from :meth:`similarity_texts` / :meth:`similarity_images`.
        labels : node ids, label sets, a 0/1 node array or EncodedLabels
            The truth of each input; a node counts as positive when it or a descendant is labelled.
        kind : {"similarity", "texts", "images"}, optional
            What ``x`` is. By default a numeric 2-D array is similarities, path objects / PIL images / arrays
            are images, and strings are texts when the encoder encodes text only (say ``kind`` otherwise).
        """
        from medlens.hierarchy._encode import encode_labels

        if self.method != "platt":
            raise InputError(f"fit() calibrates method 'platt'; this scorer uses {self.method!r}, which needs no fit.")
        kind = (
            self._input_kind(x) if kind is None else check_option(kind, ("similarity", "texts", "images"), name="kind")
        )
        if kind == "similarity":
            sim = np.asarray(x, dtype=np.float64)
            if sim.ndim != 2 or sim.shape[1] != len(self.scored_nodes):
                raise InputError(
                    f"similarities must have shape (n, {len(self.scored_nodes)}) (one column per scored node); "
                    f"got {sim.shape}."
                )
        elif kind == "texts":
            sim = self.similarity_texts(x)
        else:
            sim = self.similarity_images(x)
        y = encode_labels(labels, self.taxonomy, name="calibration labels")
        if y.n != len(sim):
            raise InputError(f"calibration inputs and labels must have the same length; got {len(sim)} and {y.n}.")
        if y.n < 2:
            raise InputError(f"the Platt fit needs at least 2 labelled samples; got {y.n}.")
        cols = self.taxonomy.node_indices(list(self.scored_nodes))
        closed = y.closure[:, cols].toarray()
        self.scaler = PlattScaler(C=self.platt_C).fit(sim, closed)
        pos = closed.sum(axis=0)
        constant = [n for n, k in zip(self.scored_nodes, pos, strict=True) if k in (0, len(closed))]
        if constant:
            log.warning(
                "Platt fit: %d node(s) have a single class in the %d calibration samples (e.g. %s); they get the "
                "smoothed prevalence as a constant probability.",
                len(constant),
                len(closed),
                constant[:3],
            )
        self._platt_fit_info = {
            "n_samples": int(len(closed)),
            "positives": {n: int(k) for n, k in zip(self.scored_nodes, pos, strict=True)},
            "constant_nodes": constant,
        }
        return self

    def _input_kind(self, x: Any) -> InputKind:
        if isinstance(x, np.ndarray) and x.ndim == 2 and np.issubdtype(x.dtype, np.number):
            return "similarity"
        if isinstance(x, str):
            raise TypeError("inputs must be a list (of texts or images), not a single string.")
        items = list(x)
        if items and all(isinstance(i, str) for i in items):
            if self.encoder.config.modalities == frozenset({"text"}):
                return "texts"
            raise InputError(
                "strings can be texts or image paths for an image-text encoder; say kind='texts' or kind='images'."
            )
        return "images"

    # ------------------------------------------------------------------ provenance
    def method_info(self) -> dict[str, Any]:
        """The similarity → probability rule and its parameters (written into score files' metadata)."""
        internal_how = (
            "by their own prompts" if self.internal == "prompt" else f"aggregate their leaves ({self.internal})"
        )
        info: dict[str, Any] = {
            "method": self.method,
            "internal": self.internal,
            "formula": _FORMULAS[self.method].format(internal=self.internal, internal_how=internal_how),
            "similarity": "cosine between the L2-normalised input embedding and the node's prompt ensemble",
            "ensemble": "mean of L2-normalised prompt embeddings, renormalised",
            "scale": self.scale,
            "scale_source": self.scale_source,
            "temperature": None if self.scale is None else 1.0 / self.scale,
            "bias": self.bias,
            "bias_source": self.bias_source,
            "scored_nodes": list(self.scored_nodes),
            "prompt_source": self.prompt_source,
            "templates": list(self.templates),
            "synonyms": self.synonyms,
            "prompt_sources": dict(self.prompt_table.sources),
            "n_prompts": len(self.prompt_table),
            "prompts_sha256": self.prompt_table.sha256(),
        }
        if self.negative_table is not None:
            info["similarity"] = "cos(input, positive prompt ensemble) - cos(input, negative prompt ensemble)"
            info["negative_prompts_sha256"] = self.negative_table.sha256()
            info["n_negative_prompts"] = len(self.negative_table)
        if self.method == "platt":
            fitted = self.scaler is not None
            info["platt"] = {"C": self.platt_C, "fitted": fitted}
            if fitted:
                info["platt"].update(self._platt_fit_info or {})
                info["platt"]["coef"] = dict(zip(self.scored_nodes, self.scaler.coef_.tolist(), strict=True))
                info["platt"]["intercept"] = dict(zip(self.scored_nodes, self.scaler.intercept_.tolist(), strict=True))
        return info

    def __repr__(self) -> str:
        return (
            f"ZeroShotScorer(encoder={self.encoder.config.name!r}, taxonomy={self.taxonomy.name!r}, "
            f"method={self.method!r}, internal={self.internal!r}, {len(self.scored_nodes)} scored nodes, "
            f"{len(self.prompt_table)} prompts)"
        )
