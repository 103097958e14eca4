"""Group report with bootstrap CIs: medlens vs fairlearn's MetricFrame(n_boot=...) on the same data.

100,000 per-sample scores, 4 attributes (2, 3, 4 and 5 groups, imbalanced), 1,000 resamples. medlens computes every
group's interval (plus gaps, ES and FAP with theirs) for all attributes on one set of resamples; fairlearn needs one
MetricFrame per attribute, with a metric that averages the per-sample score passed as ``y_pred``. fairlearn's
bootstrap re-runs the whole MetricFrame per resample, so by default it runs ``--peer-boot`` resamples per attribute
and its time is scaled linearly to ``--boot`` (printed as such; pass ``--peer-boot 1000`` for the full run).
Point estimates must be identical. Usage: python perf/fairness.py [--n 100000] [--boot 1000] [--peer-boot 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--peer-boot", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from fairlearn.metrics import MetricFrame

    from medlens.fairness import group_report
    from medlens.fairness._bootstrap import THREADS

    rng = np.random.default_rng(0)
    n = args.n
    attrs = {}
    for k in (2, 3, 4, 5):
        p = rng.dirichlet(np.full(k, 2.0))
        attrs[f"attr{k}"] = rng.choice([f"g{j}" for j in range(k)], n, p=p)
    scores = rng.beta(2, 3, n) + 0.05 * (attrs["attr3"] == "g0")

    cpu0 = time.process_time()
    ours_t, rep = timed(lambda: group_report(scores, attrs, n_bootstrap=args.boot, seed=0), args.repeat)
    ours_cpu = (time.process_time() - cpu0) / args.repeat  # all threads: wall on idle cores >= cpu / cores

    def mean_score(y_true, y_pred):
        return float(np.mean(y_pred))

    peer_times, identical = [], True
    for name, values in attrs.items():
        t0 = time.perf_counter()
        mf = MetricFrame(
            metrics=mean_score,
            y_true=np.zeros(n),
            y_pred=scores,
            sensitive_features=values,
            n_boot=args.peer_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )
        peer_times.append(time.perf_counter() - t0)
        ours = {g.name: g.score for g in rep[name].groups}
        theirs = mf.by_group.to_dict()
        identical &= set(ours) == set(theirs) and all(abs(ours[g] - theirs[g]) <= 1e-12 for g in ours)
        identical &= abs(rep[name].gap_max_min - mf.difference()) <= 1e-12
    peer_t = sum(peer_times)
    peer_scaled = peer_t * args.boot / args.peer_boot
    print(f"group report, n={n}, 4 attributes, {args.boot} resamples (median of {args.repeat} for medlens)")
    print(f"  medlens group_report: {ours_t:.2f} s (target <= 2 s), all groups + gaps + ES + FAP with CIs")
    print(
        f"  medlens CPU time {ours_cpu:.2f} s over {THREADS} thread(s), load average {os.getloadavg()[0]:.1f} on "
        f"{len(os.sched_getaffinity(0))} core(s): wall on idle cores ~ {ours_cpu / min(THREADS, len(os.sched_getaffinity(0))):.2f} s"
    )
    print(
        f"  fairlearn MetricFrame(n_boot={args.peer_boot}) x 4 attributes: {peer_t:.1f} s"
        + (f" -> {peer_scaled:.0f} s scaled to n_boot={args.boot}" if args.peer_boot != args.boot else "")
    )
    print(
        f"  ratio ours/peer {ours_t / peer_scaled:.5f} ({peer_scaled / ours_t:.0f}x faster); "
        f"point estimates identical={identical}"
    )
    if not identical:
        raise SystemExit("point estimates differ")


if __name__ == "__main__":
    main()
