"""The ``stitch-reports`` benchmark: latent-space stitching between two genuinely different text encoders.

On the ``cxr-reports`` split (3,800 Indiana University reports, seeded 50/25/25; the calibration quarter is not
used here) the same report sentences are embedded by

* the packaged all-MiniLM-L6-v2 (384-d, the "target": it has the trained head and the prompt space), and
* an LSA encoder — TF-IDF of words and a truncated SVD to ``lsa_dim`` dimensions, fitted on the
  train-split sentences only (the "source": a different architecture that never saw MiniLM).

A report's feature is the normalised mean of its sentence embeddings. Anchors are train-split items seen by
both encoders, class-stratified for reports; the test split is never an anchor.

(i) **Head transfer.** A per-node logistic-regression head (C = 1) is trained on MiniLM train features and applied to
LSA test features translated into MiniLM's space (``method``, ``anchors`` reports) — against the naive
absolute baseline (LSA zero-padded, no translation), the MiniLM features themselves, and the upper bound for
LSA (a head trained on LSA features).

(ii) **Zero-shot through a translation.** LSA has no prompt space shared with MiniLM. Translate LSA sentence
embeddings into MiniLM's space (``anchors`` train sentences) and score them with MiniLM-encoded node prompts,
exactly as ``cxr-reports`` scores MiniLM (highest sentence–prompt cosine, negated sentences ignored for
findings, per-node Platt scaling on train — solved exactly, see ``PlattScaler(solver="newton")`` — threshold 0.5), evaluated with hF, CAE rate and macro-AUROC.

(iii) **Anchor sweep.** Macro-AUROC of (i) and (ii) for 16–1,024 anchors (one anchor draw per count; 10 seeds
with CIs under ``full``), for Procrustes, least squares (underdetermined below ``lsa_dim + 1`` anchors) and ridge.

Zero-shot macro-AUROC is computed on the raw similarities (no fitted parameter can change it); the per-node
Platt calibration fitted on train labels only sets the probabilities thresholded at 0.5 for hF, CAE and coverage,
as in ``cxr-reports``. Sentence anchors come from train reports and never occur in a test report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medlens._progress import progress_bar
from medlens._provenance import config_hash, provenance, stamp
from medlens.benchmarks._spec import BenchmarkSpec

log = logging.getLogger(__name__)

__all__ = ["SPEC", "LsaEncoder", "report_section", "run"]

SWEEP_ANCHORS = (16, 64, 256, 1024)
SWEEP_METHODS = ("ortho", "linear", "ridge")
TABLE_METHODS = ("absolute", "ortho", "sim", "linear", "lortho", "ridge", "affine")
THRESHOLD = 0.5


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class LsaEncoder:
    """TF-IDF (words, sublinear tf, min_df 2) + truncated SVD; L2-normalised outputs."""

    def __init__(self, texts: Sequence[str], *, dim: int = 128, seed: int = 0) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2)
        x = self.tfidf.fit_transform(list(texts))
        self.svd = TruncatedSVD(n_components=dim, random_state=seed).fit(x)
        self.dim = dim
        self.vocabulary_size = len(self.tfidf.vocabulary_)
        self.explained_variance = float(self.svd.explained_variance_ratio_.sum())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(self.svd.transform(self.tfidf.transform(list(texts))))


def _macro_auroc(probs: np.ndarray, closed: np.ndarray) -> float:
    from medlens.metrics import macro_auroc

    return macro_auroc(closed, probs)


def _doc_means(rs: Any, emb: np.ndarray) -> np.ndarray:
    """Normalised mean of each text's sentence embeddings (occurrences counted)."""
    out = np.zeros((rs.n_texts, emb.shape[1]))
    np.add.at(out, rs.occurrence_text, emb[rs.occurrence_sentence])
    return _unit(out)


def run(
    out_dir: str | Path,
    *,
    seed: int = 0,
    anchors: int = 1024,
    method: str = "ortho",
    lsa_dim: int = 128,
    seeds: int = 1,
    full: bool = False,
    branch_depth: int = 1,
    ci: float | None = 0.95,
    n_bootstrap: int = 500,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the benchmark into ``out_dir`` and return the ``metrics.json`` document (see the module docstring)."""
    from medlens._validation import check_interval, check_option
    from medlens.benchmarks.cxr_reports import load_cxr_reports
    from medlens.encoders import load_encoder
    from medlens.hierarchy import (
        PlattScaler,
        ReportSentences,
        encode_labels,
        evaluate,
        prompt_centroids,
        sentence_node_similarity,
    )
    from medlens.io import atomic_write_json, prepare_run_dir
    from medlens.risk import predict_labels
    from medlens.stitching import (
        METHODS,
        LogisticHead,
        Translator,
        linear_cka,
        sample_anchors,
        summarize_values,
        translation_report,
        underdetermined,
    )
    from medlens.taxonomy import load_taxonomy

    check_option(method, METHODS, name="method")
    check_interval(anchors, name="anchors", low=2)
    check_interval(lsa_dim, name="lsa_dim", low=2, high=1024)
    check_interval(seeds, name="seeds", low=1, high=100)
    n_seeds = max(seeds, 10) if full else seeds  # the quick demo draws one anchor set per count
    t0 = time.perf_counter()
    out = Path(out_dir)
    config = {
        "benchmark": "stitch-reports",
        "seed": seed,
        "anchors": anchors,
        "method": method,
        "lsa_dim": lsa_dim,
        "seeds": n_seeds,
        "branch_depth": branch_depth,
        "ci": ci,
        "n_bootstrap": n_bootstrap,
        "sweep_anchors": list(SWEEP_ANCHORS),
        "sweep_methods": list(SWEEP_METHODS),
    }
    prepare_run_dir(out, config, overwrite=overwrite)
    data = load_cxr_reports(seed=seed)
    tax = load_taxonomy(data.taxonomy)
    frame = data.frame
    split = frame["split"].to_numpy()
    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    labels = encode_labels([list(x) for x in frame["labels"]], tax, name="cxr-reports labels")
    closed = labels.closure[:, 1:].toarray()
    y_te = labels.subset(te)
    strata = ["|".join(x) for x in frame["labels"]]

    # -- the two encoders ----------------------------------------------------------------------------------
    rs = ReportSentences.from_texts(list(frame["text"]))
    sentence_texts = list(rs.sentences)
    train_sentence = np.zeros(len(sentence_texts), dtype=bool)
    train_sentence[rs.occurrence_sentence[np.isin(rs.occurrence_text, tr)]] = True
    t_enc = time.perf_counter()
    enc = load_encoder("minilm")

    def minilm(texts: list[str]) -> np.ndarray:
        return np.asarray(enc.encode_texts(texts, batch_size=64, progress=progress), dtype=np.float64)

    m_sent = _unit(minilm(sentence_texts))
    lsa = LsaEncoder(
        [s for s, keep in zip(sentence_texts, train_sentence, strict=True) if keep], dim=lsa_dim, seed=seed
    )
    l_sent = lsa.encode(sentence_texts)
    t_enc = time.perf_counter() - t_enc
    m_doc, l_doc = _doc_means(rs, m_sent), _doc_means(rs, l_sent)
    centroids, nodes = prompt_centroids(tax, minilm)

    def hier_eval(probs_te: np.ndarray, ranking_te: np.ndarray | None = None) -> dict[str, Any]:
        """hF, CAE and coverage at the threshold; macro-AUROC of ``ranking_te`` (default: the probabilities)."""
        scores = np.ones((len(te), len(tax)))
        scores[:, 1:] = probs_te
        pred = predict_labels(scores, tax, rule="multilabel", lam=THRESHOLD)
        rep = evaluate(
            y_te, pred, taxonomy=tax, branch_depth=branch_depth, ci=ci, n_bootstrap=n_bootstrap, seed=seed
        ).to_dict()
        out_ = {k: rep[k] for k in ("hF", "cae_rate", "coverage")}
        out_["macro_auroc"] = _macro_auroc(probs_te if ranking_te is None else ranking_te, closed[te])
        if rep.get("ci"):
            out_["ci"] = {k: rep["ci"][k] for k in ("hF", "cae_rate", "coverage") if k in rep["ci"]}
        return out_

    def pad(x: np.ndarray, d: int) -> np.ndarray:
        return _unit(np.pad(x, ((0, 0), (0, d - x.shape[1]))) if x.shape[1] < d else x[:, :d])

    # -- (i) head transfer ---------------------------------------------------------------------------------
    t_head = time.perf_counter()
    head_m = LogisticHead().fit(m_doc[tr], closed[tr])
    head_l = LogisticHead().fit(l_doc[tr], closed[tr])
    doc_rows = sample_anchors(min(anchors, len(tr)), pool=tr, strata=[strata[i] for i in tr], seed=seed)
    tr_doc = Translator(method, seed=seed).fit(l_doc[doc_rows], m_doc[doc_rows])
    z_te = tr_doc.transform(l_doc[te])
    head = {
        "minilm": hier_eval(head_m.predict_proba(m_doc[te])),
        "translated": hier_eval(head_m.predict_proba(z_te)),
        "absolute": hier_eval(head_m.predict_proba(pad(l_doc[te], m_doc.shape[1]))),
        "lsa_head": hier_eval(head_l.predict_proba(l_doc[te])),
    }
    head["translation"] = translation_report(z_te, m_doc[te]) | {"cka_test": linear_cka(l_doc[te], m_doc[te])}
    methods_table = []
    for m in TABLE_METHODS:
        if underdetermined(m, len(doc_rows), lsa_dim):
            methods_table.append({"method": m, "underdetermined": True})
            continue
        t = Translator(m, seed=seed).fit(l_doc[doc_rows], m_doc[doc_rows])
        z = t.transform(l_doc[te])
        methods_table.append(
            {"method": m, "underdetermined": False, "macro_auroc": _macro_auroc(head_m.predict_proba(z), closed[te])}
            | translation_report(z, m_doc[te])
        )
    t_head = time.perf_counter() - t_head

    # -- (ii) zero-shot through a translation ---------------------------------------------------------------
    t_zs = time.perf_counter()
    # sentence anchors: sentences of train reports that no test report contains (boilerplate such as "No acute
    # disease." occurs in both splits; anchoring on it would translate those test sentences in-sample)
    test_sentence = np.zeros(len(sentence_texts), dtype=bool)
    test_sentence[rs.occurrence_sentence[np.isin(rs.occurrence_text, te)]] = True
    pool_sent = np.flatnonzero(train_sentence & ~test_sentence)

    def raw_similarity(sent_emb: np.ndarray, cents: np.ndarray) -> np.ndarray:
        return sentence_node_similarity(rs, sent_emb, cents, taxonomy=tax)

    def zero_shot(sent_emb: np.ndarray, cents: np.ndarray) -> dict[str, Any]:
        """Raw similarities rank (macro-AUROC); Platt on train sets the probabilities for the 0.5 threshold."""
        sim = raw_similarity(sent_emb, cents)
        probs = PlattScaler(solver="newton").fit(sim[tr], closed[tr]).transform(sim[te])
        return hier_eval(probs, sim[te])

    sent_rows = sample_anchors(min(anchors, len(pool_sent)), pool=pool_sent, seed=seed)
    tr_sent = Translator(method, seed=seed).fit(l_sent[sent_rows], m_sent[sent_rows])
    lsa_centroids, _ = prompt_centroids(tax, lsa.encode)
    zs = {
        "minilm": zero_shot(m_sent, centroids),
        "translated": zero_shot(_unit(tr_sent.transform(l_sent)), centroids),
        "absolute": zero_shot(pad(l_sent, m_sent.shape[1]), centroids),
        "lsa_own_prompts": zero_shot(l_sent, lsa_centroids),
    }
    held = np.flatnonzero(test_sentence & ~train_sentence)
    zs["translation"] = translation_report(tr_sent.transform(l_sent[held]), m_sent[held])
    t_zs = time.perf_counter() - t_zs

    # -- (iii) anchor sweep ----------------------------------------------------------------------------------
    t_sw = time.perf_counter()
    counts = [c for c in SWEEP_ANCHORS if c <= len(tr)]
    cells: dict[str, dict[str, dict[int, list[float]]]] = {
        k: {m: {c: [] for c in counts} for m in SWEEP_METHODS} for k in ("head", "zero_shot")
    }
    label = f"stitch-reports: anchor sweep ({len(counts)} counts x {n_seeds} draws)"
    with progress_bar(len(counts) * n_seeds, progress, label, transient=True) as advance:
        for c in counts:
            for s in range(n_seeds):
                d_rows = sample_anchors(c, pool=tr, strata=[strata[i] for i in tr], seed=seed + 1 + s)
                s_rows = sample_anchors(c, pool=pool_sent, seed=seed + 1 + s)
                for m in SWEEP_METHODS:
                    if underdetermined(m, c, lsa_dim):
                        continue
                    t = Translator(m, seed=seed + s).fit(l_doc[d_rows], m_doc[d_rows])
                    cells["head"][m][c].append(_macro_auroc(head_m.predict_proba(t.transform(l_doc[te])), closed[te]))
                    t = Translator(m, seed=seed + s).fit(l_sent[s_rows], m_sent[s_rows])
                    sim = raw_similarity(_unit(t.transform(l_sent)), centroids)
                    cells["zero_shot"][m][c].append(_macro_auroc(sim[te], closed[te]))
                advance(1)
    sweep: dict[str, Any] = {"anchors": counts, "seeds": n_seeds, "methods": list(SWEEP_METHODS)}
    for k, per_method in cells.items():
        sweep[k] = {
            m: [
                {"anchors": c, "underdetermined": underdetermined(m, c, lsa_dim)}
                | summarize_values(vals, ci=ci or 0.95)
                for c, vals in per_c.items()
            ]
            for m, per_c in per_method.items()
        }
    t_sw = time.perf_counter() - t_sw

    prov = provenance(
        command="demo stitch-reports",
        config=config,
        seed=seed,
        taxonomy=tax,
        models={"target_encoder": enc.model_id, "source_encoder": f"lsa-tfidf-svd{lsa_dim} (fitted on train)"},
        extra={"archive_sha256": data.stats.get("archive_sha256"), "split_sha256": data.stats.get("split_sha256")},
    )
    doc = stamp(
        {
            "benchmark": "stitch-reports",
            "config_hash": config_hash(config),
            "splits": {"train": len(tr), "test": len(te)},
            "sentences": {
                "unique": len(sentence_texts),
                "train": int(train_sentence.sum()),
                "test": int(test_sentence.sum()),
                "in_both_splits": int((train_sentence & test_sentence).sum()),
                "anchor_pool": int(len(pool_sent)),
            },
            "encoders": {
                "target": {"name": enc.model_id, "dim": int(m_sent.shape[1])},
                "source": {
                    "name": "LSA: TF-IDF (words, sublinear tf, min_df 2) + truncated SVD, fitted on train sentences",
                    "dim": lsa_dim,
                    "vocabulary": lsa.vocabulary_size,
                    "explained_variance": lsa.explained_variance,
                },
            },
            "method": method,
            "anchors": {"reports": int(len(doc_rows)), "sentences": int(len(sent_rows))},
            "threshold": THRESHOLD,
            "branch_depth": branch_depth,
            "head_transfer": head,
            "methods_table": methods_table,
            "zero_shot": zs,
            "sweep": sweep,
            "timing_s": {
                "encode": round(t_enc, 2),
                "head": round(t_head, 2),
                "zero_shot": round(t_zs, 2),
                "sweep": round(t_sw, 2),
                "total": round(time.perf_counter() - t0, 2),
            },
        },
        prov,
    )
    atomic_write_json(out / "metrics.json", doc)
    return doc


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    h, z = doc["head_transfer"], doc["zero_shot"]
    return {
        "head_macro_auroc": {k: h[k]["macro_auroc"] for k in ("minilm", "translated", "absolute", "lsa_head")},
        "zero_shot": {
            k: {m: z[k][m] for m in ("macro_auroc", "hF", "cae_rate")} for k in ("minilm", "translated", "absolute")
        },
    }


def summary_lines(doc: dict[str, Any]) -> list[str]:
    h, z = doc["head_transfer"], doc["zero_shot"]
    n = doc["anchors"]
    return [
        f"head transfer ({doc['method']}, {n['reports']} anchors): macro-AUROC LSA→MiniLM "
        f"{h['translated']['macro_auroc']:.3f} vs absolute {h['absolute']['macro_auroc']:.3f} "
        f"(MiniLM {h['minilm']['macro_auroc']:.3f}, LSA's own head {h['lsa_head']['macro_auroc']:.3f})",
        f"zero-shot via translation ({n['sentences']} sentence anchors): hF {z['translated']['hF']:.3f}, CAE "
        f"{z['translated']['cae_rate']:.3f}, macro-AUROC {z['translated']['macro_auroc']:.3f} vs MiniLM hF "
        f"{z['minilm']['hF']:.3f}, CAE {z['minilm']['cae_rate']:.3f}, macro-AUROC {z['minilm']['macro_auroc']:.3f}",
    ]


def _fmt_ci(row: dict[str, Any], key: str) -> str:
    ci = (row.get("ci") or {}).get(key)
    return f"{row[key]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{row[key]:.3f}"


def _rows(block: dict[str, Any], labels: dict[str, str]) -> list[list[Any]]:
    return [
        [label, block[k]["macro_auroc"], _fmt_ci(block[k], "hF"), _fmt_ci(block[k], "cae_rate"), block[k]["coverage"]]
        for label, k in labels.items()
    ]


def _panel(sweep: dict[str, Any], key: str, title: str, refs: dict[str, float]) -> dict[str, Any]:
    lines: dict[str, dict[str, list]] = {}
    for m, cells in sweep[key].items():
        lines[m] = {
            "mean": [c["mean"] for c in cells],
            "ci_low": [c["ci"][0] if c.get("ci") else None for c in cells],
            "ci_high": [c["ci"][1] if c.get("ci") else None for c in cells],
        }
    return {
        "title": title,
        "ylabel": "test macro-AUROC",
        "anchors": sweep["anchors"],
        "lines": lines,
        "references": refs,
    }


def report_section(metrics: dict[str, Any]) -> Any:
    """The report section of a ``stitch-reports`` run."""
    from medlens.report import Section, figure_html, table_html

    enc = metrics["encoders"]
    n = metrics["anchors"]
    s = Section(
        "stitch-reports: reusing one encoder's head and prompts from another, with anchors",
        data=f"Indiana University chest X-ray reports (cxr-reports), {metrics['splits']['train']} train / "
        f"{metrics['splits']['test']} test",
        model=f"source {enc['source']['name']} → target {enc['target']['name']} by a {metrics['method']} "
        "translation; heads and prompts of the target",
    )
    s.paragraph(
        f"The same Indiana University reports ({metrics['splits']['train']} train / {metrics['splits']['test']} test) "
        f"embedded by two different encoders: the source is {enc['source']['name']} ({enc['source']['dim']}-d, "
        f"{enc['source']['vocabulary']} terms), the target is {enc['target']['name']} ({enc['target']['dim']}-d). "
        f"A {metrics['method']} translation fitted on {n['reports']} train reports (or {n['sentences']} train "
        "sentences that no test report contains) maps the source into the target space; no classifier is trained on "
        "the source for (i) or (ii)."
    )
    s.paragraph(
        "Absolute = the source vector zero-padded into the target space with no translation (naive stitching); "
        "it shows how different the two spaces are. The test split is never an anchor. hF, CAE rate and coverage "
        f"at threshold {metrics['threshold']} with bootstrap CIs; macro-AUROC over the taxonomy's nodes. Zero-shot "
        "macro-AUROC ranks the raw cosine similarities; only the probabilities behind hF/CAE come from a per-node "
        "Platt calibration (two parameters per node, fitted on train labels), as in cxr-reports.",
        cls="note",
    )
    h = metrics["head_transfer"]
    s.add(
        table_html(
            ["(i) head trained on MiniLM, applied to …", "macro-AUROC", "hF", "CAE rate", "coverage"],
            _rows(
                h,
                {
                    "MiniLM features (its own space)": "minilm",
                    "LSA translated into MiniLM's space": "translated",
                    "LSA zero-padded (absolute)": "absolute",
                    "upper bound for LSA: head trained on LSA": "lsa_head",
                },
            ),
            caption="Head transfer without training on the source",
        )
    )
    s.paragraph(
        "Translation keeps the ranking (macro-AUROC) but not the calibration: the head's probabilities on translated "
        "features are shifted, so the fixed 0.5 threshold predicts less (lower coverage and hF). Recalibrate on the "
        "target task, or choose thresholds with `hier calibrate`, before thresholding translated features.",
        cls="note",
    )
    z = metrics["zero_shot"]
    s.add(
        table_html(
            [
                "(ii) zero-shot with MiniLM's node prompts, sentences from …",
                "macro-AUROC",
                "hF",
                "CAE rate",
                "coverage",
            ],
            _rows(
                z,
                {
                    "MiniLM (the cxr-reports pipeline)": "minilm",
                    "LSA translated into MiniLM's space": "translated",
                    "LSA zero-padded (absolute)": "absolute",
                    "LSA with LSA-encoded prompts (its own lexical space)": "lsa_own_prompts",
                },
            ),
            caption="Zero-shot for an encoder without MiniLM's prompt space",
        )
    )
    s.paragraph(
        "The absolute row is above 0.5 for a reason unrelated to the embeddings: the pipeline ignores negated "
        "sentences for findings, so a report whose finding sentences are all negated scores −1 on every finding "
        "whatever the encoder. The gap between that row and the translated one is what the translation adds.",
        cls="note",
    )
    mt = metrics["methods_table"]
    s.add(
        table_html(
            ["method", "head macro-AUROC", "pair cosine", "retrieval top-1", "MRR"],
            [
                [r["method"], "underdetermined", "", "", ""]
                if r["underdetermined"]
                else [r["method"], r["macro_auroc"], r["pair_cosine"], r["top1"], r["mrr"]]
                for r in mt
            ],
            caption=f"All translators on {n['reports']} report anchors (test reports; retrieval among all test reports)",
        )
    )
    sw = metrics["sweep"]
    try:
        from medlens.report import anchor_sweep_figure

        fig = anchor_sweep_figure(
            [
                _panel(
                    sw,
                    "head",
                    "(i) MiniLM head on translated LSA",
                    {"MiniLM features": h["minilm"]["macro_auroc"], "absolute": h["absolute"]["macro_auroc"]},
                ),
                _panel(
                    sw,
                    "zero_shot",
                    "(ii) zero-shot via translation",
                    {"MiniLM zero-shot": z["minilm"]["macro_auroc"], "absolute": z["absolute"]["macro_auroc"]},
                ),
            ]
        )
        s.add(
            figure_html(
                fig,
                f"Test macro-AUROC against the number of anchors ({sw['seeds']} anchor draw(s) per count; "
                "t-intervals when there are several, as under demo --full). Least squares is underdetermined (no point) until the anchors outnumber the source "
                "dimensions; Procrustes and ridge work from a handful of anchors.",
            )
        )
    except ImportError as exc:
        s.paragraph(f"Plots skipped: {exc}", cls="warn")
    return s


SPEC = BenchmarkSpec(
    name="stitch-reports",
    description="Latent-space stitching LSA → MiniLM on cxr-reports: head transfer, zero-shot via translation, "
    "anchor sweep",
    run=run,
    report_section=report_section,
    extras=("hf", "data", "viz"),
    summarize=summarize,
    summary_lines=summary_lines,
)
