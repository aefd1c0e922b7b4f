"""Rank the baselines on one dataset over several split seeds (mean over seeds, 95% CI over seeds and users).

    uv run evaluate_seeds.py --config eval.yaml --config eval_hetrec.yaml --config tuned/hetrec.yaml \\
        --data.root data/hetrec --split_seeds [0,1,2,3,4] [--out reports/hetrec-seeds]

Reads the same configs as `evaluate.py` (its baselines, ks, metrics, bootstrap settings); content models,
hybrids and the generative stage are left out. For each split seed the interactions are split again
(fractions from splits/meta.json), every baseline is fitted on that split's training part and ranked on
its test part (warm songs). Writes leaderboard.{json,csv,md} (rows as evaluate.py's, plus `per_seed`: each
seed's mean) and run.json (per-model fit and evaluation seconds per seed).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from configs import resolve_config_args
from datamodules.music import resolve_data_root
from evaluate import build_parser
from evaluation.leaderboard import default_out, sort_rows, write_reports
from evaluation.split_seeds import evaluate_over_seeds, seed_row
from songdata.dataset import load_dataset


def main(args: list[str] | None = None) -> Path:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("gensim").setLevel(logging.WARNING)
    parser = build_parser()
    parser.add_argument("--split_seeds", type=list[int], default=[0, 1, 2, 3, 4], help="Seeds of the splits.")
    config = parser.parse_args(resolve_config_args(sys.argv[1:] if args is None else args))
    init = parser.instantiate(config)
    root = resolve_data_root(init.data.root)
    out = Path(init.out) if init.out else default_out(root).with_name(f"{root.resolve().name}-seeds")
    clock = time.perf_counter()
    per_model, seconds = evaluate_over_seeds(init.baselines, load_dataset(root), init.split_seeds, init.ks,
                                             init.show_progress)
    rows = sort_rows([seed_row(name, results, init.n_bootstrap, init.seed) for name, results in per_model.items()],
                     init.primary_metric)
    title = (f"Leaderboard: {root.resolve().name} (test split, mean over split seeds {init.split_seeds}, "
             f"95% CI over seeds and users, sorted by {init.primary_metric})")
    report = write_reports(rows, out, init.primary_metric, init.report_metrics, title)
    meta = {"dataset": str(root.resolve()), "split_seeds": init.split_seeds, "timings": seconds,
            "seconds": round(time.perf_counter() - clock, 3)}
    (out / "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(report.markdown)
    print(f"reports written to {out}")
    return out


if __name__ == "__main__":
    main()
