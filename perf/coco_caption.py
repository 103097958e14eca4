"""coco-caption scoring of medlens vs pycocoevalcap's pipeline on real Indiana University report pairs.

Pairs: 400 IU reports (torchxrayvision's NLMCXR_reports.tgz), even ones an impression against its findings, odd
ones another report's findings against two or three sections. Both sides tokenise (pycocoevalcap: its Java
PTBTokenizer, one JVM per batch; medlens: pure Python) and compute BLEU-1..4, ROUGE-L and CIDEr-D; METEOR (the
same Java jar on both sides) is left out. Median of ``--repeat``. Prints the seconds, the ratio ours/peer and the
largest difference of the scores (must be below 1e-9).
Usage: python perf/coco_caption.py [--pairs 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402


def iu_pairs(n: int):
    from medlens.benchmarks.cxr_reports._data import read_reports

    df = read_reports()
    df = df[(df.findings != "") & (df.impression != "")].reset_index(drop=True)
    refs, cands = [], []
    for i in range(n):
        if i % 2 == 0:
            refs.append([df.findings[i]])
            cands.append(df.impression[i])
        else:
            refs.append([df.findings[i], df.impression[i + 1], df.findings[i + 2]][: 2 + (i % 3 == 0)])
            cands.append(df.findings[i + 1])
    return refs, cands


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError:
        raise SystemExit('pycocoevalcap is not installed: pip install "medlens[reference]"') from None
    if shutil.which("java") is None:
        raise SystemExit("pycocoevalcap's tokenizer needs java on PATH (Debian: default-jre-headless)")
    from medlens.metrics import CaptionOptions, caption_report

    refs, cands = iu_pairs(args.pairs)

    def peer():
        gts = {i: [{"caption": r} for r in rs] for i, rs in enumerate(refs)}
        res = {i: [{"caption": c}] for i, c in enumerate(cands)}
        tok = PTBTokenizer()
        g, r = tok.tokenize(gts), tok.tokenize(res)
        b, _ = Bleu(4).compute_score(g, r, verbose=0)
        return [*b, Rouge().compute_score(g, r)[0], Cider().compute_score(g, r)[0]]

    opts = CaptionOptions(meteor=None, bertscore=None)
    keys = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider")

    def ours():
        rep = caption_report(refs, cands, options=opts, mode="coco-caption")
        return [rep.scores[k] for k in keys]

    ours()  # warm: regex compilation and the Unicode class tables (~1 s, once per process)
    t_peer, p = timed(peer, args.repeat)
    t_ours, o = timed(ours, args.repeat)
    diff = float(np.abs(np.array(o) - np.array(p)).max())
    print(
        f"coco-caption (PTB + BLEU-1..4 + ROUGE-L + CIDEr-D) on {args.pairs} IU pairs: pycocoevalcap {t_peer:.2f} s, "
        f"medlens {t_ours:.2f} s -> ratio ours/peer {t_ours / t_peer:.3f} ({t_peer / t_ours:.1f}x faster); "
        f"max |diff| {diff:.1e}"
    )
    if diff > 1e-9:
        raise SystemExit("values differ")


if __name__ == "__main__":
    main()
