"""Runner of the ``fair-reports`` benchmark: impression generation on IU reports, disaggregated by real age.

Steps (each recorded in ``metrics.json``):

1. The IU reports of ``cxr-reports`` with its seeded train / calibration / test split, kept when they have both a
   FINDINGS and an IMPRESSION section, joined with each report's real patient age (DICOM birth and study dates,
   :func:`medlens.benchmarks.fair_reports.load_report_ages`) and cut into age groups ``<40``, ``40-59``, ``>=60``.
2. A nearest-neighbour baseline writes each test report's impression: the packaged MiniLM embeds the findings; the
   most similar train-split findings (cosine) lend their impression. A constant baseline (the most frequent train
   impression, for everyone) shows how much of a group difference the case mix alone explains.
3. Every test impression is scored once against the radiologist's with pycocoevalcap's BLEU-4, ROUGE-L and CIDEr-D
   (IDF over the whole test set), then :func:`medlens.fairness.group_report` gives per-age-group means with
   bootstrap CIs, gaps, ES-metric, FAP with its parts and the worst group.

What it can show: how a report-writing system's text similarity to the radiologist differs across real age groups
of one hospital's patients, with honest intervals. What it cannot: sex, race or language (not in the data), other
sites, or a vision-language model (the baseline reads the findings text, not the image); lexical metrics are not
clinical correctness, and older patients have more abnormal, more varied reports, so a gap is not by itself bias.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import config_hash, provenance, stamp
from medlens.benchmarks._spec import BenchmarkSpec
from medlens.io import atomic_write_json, atomic_write_text, prepare_run_dir

__all__ = ["METRICS", "SPEC", "explain", "report_section", "run"]

METRICS = ("bleu4", "rouge_l", "cider")
"""Per-sample text metrics of the demo (coco-caption mode)."""


def _order(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from medlens.benchmarks.fair_reports._data import AGE_GROUPS

    rank = {g: i for i, g in enumerate(AGE_GROUPS)}
    return sorted(groups, key=lambda g: rank.get(g["name"], len(rank)))


def run(
    out_dir: str | Path,
    *,
    seed: int = 0,
    encoder: str = "minilm",
    n_bootstrap: int = 1000,
    min_group_size: int = 30,
    lam: float = 1.0,
    classifier_run: str = "auto",
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the benchmark into ``out_dir`` (``metrics.json``, ``scores.csv``) and return the ``metrics.json`` document.

    ``classifier_run`` is the ``cxr-reports`` run folder whose test-split classifier is disaggregated by age
    (part a): ``"auto"`` uses ``out_dir/../cxr-reports`` when it is there (``medlens demo`` writes it first),
    ``"none"`` skips the part, a path must hold that run's files.
    """
    from medlens.benchmarks.cxr_reports import load_cxr_reports, read_reports
    from medlens.benchmarks.fair_reports._data import age_group, load_report_ages
    from medlens.encoders import load_encoder
    from medlens.fairness import SmallGroupWarning, group_report
    from medlens.metrics import CaptionOptions, caption_report

    t0 = time.perf_counter()
    out = Path(out_dir)
    config = {
        "benchmark": "fair-reports",
        "seed": seed,
        "encoder": encoder,
        "n_bootstrap": n_bootstrap,
        "min_group_size": min_group_size,
        "lambda": lam,
        "metrics": list(METRICS),
        "classifier_run": classifier_run,
    }
    prepare_run_dir(out, config, overwrite=overwrite)
    classifier_dir = _classifier_dir(out, classifier_run)
    from medlens._progress import progress_bar

    # step bars around the phases that take seconds warm; the embedding (its own bar when not cached) sits between
    reading = progress_bar(2, progress, "fair-reports: reading reports and ages, loading the encoder", transient=True)
    bar = reading.__enter__()
    try:
        bench = load_cxr_reports(seed=seed)
        reports = read_reports().set_index("id")
        ages = load_report_ages().set_index("id")
        bar(1)
        enc = load_encoder(encoder)
        bar(1)
    finally:
        reading.__exit__(None, None, None)
    frame = bench.frame[["id", "split"]].copy()
    frame["findings"] = frame["id"].map(reports["findings"]).fillna("")
    frame["impression"] = frame["id"].map(reports["impression"]).fillna("")
    frame["age"] = frame["id"].map(ages["age"])
    n_split = len(frame)
    has_text = (frame["findings"].str.strip() != "") & (frame["impression"].str.strip() != "")
    frame = frame[has_text].reset_index(drop=True)
    train = frame[frame["split"] == "train"].reset_index(drop=True)
    test = frame[frame["split"] == "test"].reset_index(drop=True)

    t_enc = time.perf_counter()
    emb_train = np.asarray(enc.encode_texts(list(train["findings"]), batch_size=64, progress=progress), float)
    emb_test = np.asarray(enc.encode_texts(list(test["findings"]), batch_size=64, progress=progress), float)
    t_enc = time.perf_counter() - t_enc
    emb_train /= np.maximum(np.linalg.norm(emb_train, axis=1, keepdims=True), 1e-12)
    emb_test /= np.maximum(np.linalg.norm(emb_test, axis=1, keepdims=True), 1e-12)
    nn = np.argmax(emb_test @ emb_train.T, axis=1)
    retrieved = [train["impression"].iloc[j] for j in nn]
    constant = Counter(train["impression"]).most_common(1)[0][0]

    refs, ids = list(test["impression"]), list(test["id"])
    groups = age_group(test["age"].to_numpy())
    opts = CaptionOptions(meteor=None, bertscore=None)
    systems = {"nearest-neighbour": retrieved, "constant": [constant] * len(refs)}
    results: dict[str, Any] = {}
    per_sample: dict[str, dict[str, np.ndarray]] = {}
    notes: list[str] = []
    scoring = progress_bar(
        len(systems) + (classifier_dir is not None),
        progress,
        "fair-reports: caption metrics by age (bootstrap), classifier by age",
        transient=True,
    )
    bar = scoring.__enter__()
    try:
        for name, cands in systems.items():
            bar(0)
            rep = caption_report(refs, cands, ids=ids, options=opts, mode="coco-caption")
            per_sample[name] = {m: rep.per_sample[m] for m in METRICS}
            results[name] = {"corpus": {m: rep.scores[m] for m in METRICS}, "by_age": {}}
            for m in METRICS:
                import warnings

                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", SmallGroupWarning)
                    g = group_report(
                        rep.per_sample[m],
                        {"age_group": groups},
                        n_bootstrap=n_bootstrap,
                        seed=seed,
                        min_group_size=min_group_size,
                        lam=lam,
                    )["age_group"].to_dict()
                notes += [str(w.message) for w in caught]
                g["groups"] = _order(g["groups"])
                results[name]["by_age"][m] = g
            bar(1)

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "age", "age_group", *(f"{m}" for m in METRICS), *(f"constant_{m}" for m in METRICS)])
        for i, sid in enumerate(ids):
            age = test["age"].iloc[i]
            w.writerow(
                [sid, "" if np.isnan(age) else f"{age:.2f}", groups[i] or ""]
                + [repr(float(per_sample["nearest-neighbour"][m][i])) for m in METRICS]
                + [repr(float(per_sample["constant"][m][i])) for m in METRICS]
            )
        atomic_write_text(out / "scores.csv", buf.getvalue())

        classifier: dict[str, Any] | None = None
        if classifier_dir is not None:
            from medlens.benchmarks.fair_reports._classifier import classifier_by_age

            classifier = classifier_by_age(
                classifier_dir,
                ages["age"].to_dict(),
                seed=seed,
                n_bootstrap=n_bootstrap,
                min_group_size=min_group_size,
                lam=lam,
            )
            bar(1)
    finally:
        scoring.__exit__(None, None, None)
    counts = Counter(g for g in groups if g is not None)
    ages_test = test["age"].to_numpy(dtype=float)
    prov = provenance(
        command="demo fair-reports",
        config=config,
        seed=seed,
        models={"text_encoder": enc.model_id},
        extra={"archive_sha256": bench.stats.get("archive_sha256")},
    )
    doc = stamp(
        {
            "benchmark": "fair-reports",
            "config_hash": config_hash(config),
            "dataset": {
                "n_reports_in_split": n_split,
                "n_with_findings_and_impression": len(frame),
                "n_train": len(train),
                "n_test": len(test),
                "n_test_without_age": int(np.isnan(ages_test).sum()),
                "age_group_counts": {k: int(counts.get(k, 0)) for k in ("<40", "40-59", ">=60")},
                "age_median": float(np.nanmedian(ages_test)),
                "age_range": [float(np.nanmin(ages_test)), float(np.nanmax(ages_test))],
                "seed": seed,
            },
            "method": {
                "task": "impression generation from the FINDINGS section (test split)",
                "nearest-neighbour": "MiniLM embedding of the findings; the impression of the most similar "
                "train-split findings (cosine) is returned",
                "constant": f"the most frequent train impression for every report: {constant!r}",
                "scoring": "pycocoevalcap BLEU-4, ROUGE-L and CIDEr-D per sample over the whole test set "
                "(global IDF), then group means",
                "fairness": f"group_report: percentile bootstrap ({n_bootstrap} resamples), min_group_size "
                f"{min_group_size}, FAP λ={lam} (size weights, MAD), ES α=1",
                "limits": "one hospital, ages only (sex is empty in the metadata), a retrieval baseline rather "
                "than a vision-language model; lexical metrics are not clinical correctness, and older patients' "
                "reports are more often abnormal, so a gap mixes case mix with system behaviour",
            },
            "results": results,
            "classifier": classifier,
            "warnings": list(dict.fromkeys(notes)),
            "timing_s": {"encode": round(t_enc, 2), "total": round(time.perf_counter() - t0, 2)},
        },
        prov,
    )
    atomic_write_json(out / "metrics.json", doc)
    return doc


def _classifier_dir(out: Path, option: str) -> Path | None:
    from medlens._validation import InputError
    from medlens.benchmarks.fair_reports._classifier import CLASSIFIER_FILES

    if option == "none":
        return None
    folder = out.parent / "cxr-reports" if option == "auto" else Path(option)
    missing = [f for f in CLASSIFIER_FILES if not (folder / f).is_file()]
    if not missing:
        return folder
    if option == "auto":
        return None
    raise InputError(
        f"classifier_run {folder} lacks {', '.join(missing)}; give a cxr-reports run folder "
        "(medlens bench run cxr-reports --out DIR) or 'none'."
    )


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers: per metric of the nearest-neighbour baseline, group means, FAP and ES."""
    out: dict[str, Any] = {"age_group_counts": doc["dataset"]["age_group_counts"]}
    for m, r in doc["results"]["nearest-neighbour"]["by_age"].items():
        out[m] = {
            "pooled": r["pooled"],
            "by_group": {g["name"]: g["score"] for g in r["groups"]},
            "fap": None if r["fap"] is None else r["fap"]["value"],
            "es": r["es"],
            "gap_max_min": r["gap_max_min"],
            "worst_group": r["worst_group"],
        }
    return out


def explain(doc: dict[str, Any]) -> list[str]:
    """One line per CRC threshold whose CAE rate is above α in some age group (CRC's bound is not per group), and
    one per age group whose own CRC threshold keeps less than ``LOW_COVERAGE`` of its test reports (it meets α by
    abstaining on almost all of them)."""
    from medlens.benchmarks.cxr_reports._run import LOW_COVERAGE

    cls = doc.get("classifier")
    if not cls:
        return []
    alpha, lines = cls["alpha"], []
    pgr = cls.get("per_group_risk") or {}
    for g, v in (pgr.get("groups") or {}).items():
        cov = v["group"]["coverage"]
        if cov < LOW_COVERAGE:
            lines.append(
                f"fair-reports per-age CRC for {g}: coverage {cov:.2f} (marginal λ̂: {v['marginal']['coverage']:.2f}) — "
                f"the group's own threshold abstains on {100 * (1 - cov):.0f} % of its test reports. It meets α "
                "within the group by predicting almost nothing: the group's calibration reports are few or its "
                "scores weak, so the per-group guarantee costs most of the predictions."
            )
    for label, r in cls["thresholds"].items():
        if not label.startswith("CRC"):
            continue
        over = [f"{g} ({v['cae_rate']:.3f})" for g, v in r["by_age"].items() if v["cae_rate"] > alpha]
        if over:
            lines.append(
                f"fair-reports {label}: CAE above α={alpha} in age group{'s' if len(over) > 1 else ''} {', '.join(over)}. CRC bounds the expected "
                "rate over all reports, not within each group; a per-group guarantee needs a threshold per group."
            )
    return lines


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """Console lines of the demo's fair-reports section."""
    s = summarize(doc)
    c = s["age_group_counts"]
    lines = [
        "fair-reports: nearest-neighbour impressions on the IU test split by age "
        f"(<40: {c['<40']}, 40-59: {c['40-59']}, >=60: {c['>=60']} reports)"
    ]
    for m in METRICS:
        r = s[m]
        groups = ", ".join(f"{k} {v:.3f}" for k, v in r["by_group"].items())
        fap = "-" if r["fap"] is None else f"{r['fap']:.3f}"
        es = "-" if r["es"] is None else f"{r['es']:.3f}"
        lines.append(f"  {m}: {groups}; pooled {r['pooled']:.3f}, FAP {fap}, ES {es}, worst {r['worst_group']}")
    cls = doc.get("classifier")
    if cls is None:
        lines.append("  classifier by age: skipped (no cxr-reports run next to this one)")
        return lines
    for label, r in cls["thresholds"].items():
        parts = ", ".join(
            f"{g} hF {v['hF']:.3f} CAE {v['cae_rate']:.3f} AUROC {v['macro_auroc']:.3f}" for g, v in r["by_age"].items()
        )
        lines.append(f"  cxr-reports classifier, {label}: {parts}")
    pgr = cls.get("per_group_risk")
    if pgr:
        parts = ", ".join(
            f"{g} CAE {v['marginal']['cae_rate']:.3f}→{v['group']['cae_rate']:.3f} cov "
            f"{v['marginal']['coverage']:.2f}→{v['group']['coverage']:.2f}"
            for g, v in pgr["groups"].items()
        )
        lines.append(f"  per-age CRC (α {pgr['alpha']:g}), marginal→per-group λ̂ on test: {parts}")
    lines.extend(f"  note: {line.removeprefix('fair-reports ')}" for line in explain(doc))
    return lines


def report_section(metrics: dict[str, Any]) -> Any:
    """The report section of a ``fair-reports`` run."""
    from medlens.report import Section, table_html

    ds = metrics["dataset"]
    encoder = (metrics.get("provenance") or {}).get("model_ids", {}).get("text_encoder", "MiniLM")
    s = Section(
        "fair-reports: impression generation disaggregated by real patient age",
        data=f"Indiana University chest X-ray reports with real patient ages from the DICOM metadata, "
        f"{ds['n_test']} test / {ds['n_train']} train",
        model=f"nearest-neighbour impression retrieval with {encoder} (and a constant-impression baseline)",
    )
    s.paragraph(
        f"{ds['n_test']} test reports (of {ds['n_with_findings_and_impression']} with findings and impression; "
        f"train {ds['n_train']}), ages {ds['age_range'][0]:.0f}–{ds['age_range'][1]:.0f} (median "
        f"{ds['age_median']:.0f}); groups " + ", ".join(f"{k}: {v}" for k, v in ds["age_group_counts"].items()) + "."
    )
    meth = metrics["method"]
    s.paragraph(f"Baseline: {meth['nearest-neighbour']}. Scoring: {meth['scoring']}.", cls="note")
    for system, res in metrics["results"].items():
        rows = []
        for m, r in res["by_age"].items():
            for g in r["groups"]:
                ci = None if g["ci_low"] is None else f"{g['ci_low']:.3f}–{g['ci_high']:.3f}"
                rows.append([m, g["name"], g["n"], g["score"], ci, "excluded" if g["excluded"] else ""])
            f = r["fap"] or {}
            rows.append(
                [
                    m,
                    "summary",
                    r["n"],
                    f"pooled {r['pooled']:.3f}",
                    f"FAP {f.get('value', float('nan')):.3f} = {f.get('performance', float('nan')):.3f} − "
                    f"{f.get('lambda', 1):g}·{f.get('dispersion', float('nan')):.3f}",
                    f"ES {r['es'] if r['es'] is not None else float('nan'):.3f}, worst {r['worst_group']}",
                ]
            )
        s.add(table_html(["metric", "age group", "n", "score", "95 % CI", ""], rows, caption=f"{system} baseline"))
    cls = metrics.get("classifier")
    if cls is not None:
        rows = []
        for label, r in cls["thresholds"].items():
            for g, v in [("all", r["overall"]), *r["by_age"].items()]:
                rows.append([label, g, v["n"], v["hF"], v["cae_rate"], v["coverage"], v["macro_auroc"]])
            for key, sm in r["summary"].items():
                f = sm["fap"]
                rows.append(
                    [label, f"{key}: gap {sm['gap_max_min']:.3f}", "", "", "", "",
                     f"FAP {f['value']:.3f}, worst {sm['worst_group']}"]
                )  # fmt: skip
        s.add(
            table_html(
                ["threshold", "age group", "n", "hF", "CAE rate", "coverage", "macro-AUROC"],
                rows,
                caption=f"(a) cxr-reports zero-shot classifier on the test split by age (CRC bounds the CAE rate on "
                f"average, α {cls['alpha']:g}; per group it is not guaranteed)",
            )
        )
        pgr = cls.get("per_group_risk")
        if pgr:
            rows = [
                [g, v["n"], v["group"]["n_calibration"], v["marginal"]["lambda"], v["marginal"]["cae_rate"],
                 v["marginal"]["coverage"], v["group"]["lambda"], v["group"]["cae_rate"], v["group"]["coverage"],
                 v["group"]["feasible"]]
                for g, v in pgr["groups"].items()
            ]  # fmt: skip
            s.add(
                table_html(
                    [
                        "age group",
                        "n test",
                        "n cal",
                        "marginal λ̂",
                        "CAE",
                        "coverage",
                        "group λ̂",
                        "CAE",
                        "coverage",
                        "feasible",
                    ],
                    rows,
                    caption=f"Per-group (Mondrian) CRC by age, α {pgr['alpha']:g}, refitted on the calibration "
                    f"reports with an age ({pgr['n_calibration']}; {pgr['n_calibration_without_age']} without), so "
                    f"its marginal λ̂ {pgr['marginal_lambda']:g} can differ slightly from the table above; CAE is the "
                    "loss CRC controls. Each group's own threshold bounds its expected CAE rate; the marginal one "
                    "bounds only the average. Coverage is the price.",
                )  # fmt: skip
            )
    s.paragraph(f"Limits: {meth['limits']}.", cls="note")
    return s


SPEC = BenchmarkSpec(
    name="fair-reports",
    description="IU chest X-ray impressions by real patient age: nearest-neighbour baseline, BLEU-4/ROUGE-L/CIDEr-D "
    "per age group with CIs, gaps, ES and FAP",
    run=run,
    report_section=report_section,
    extras=("hf", "data"),
    summarize=summarize,
    summary_lines=summary_lines,
    explain=explain,
)
