"""Rank the baselines on one dataset over several split seeds (mean over seeds, 95% CI over seeds and users).

    uv run evaluate_seeds.py --config eval.yaml --config eval_hetrec.yaml --config tuned/hetrec.yaml \\
        --data.root data/hetrec --split_seeds [0,1,2,3,4] [--out reports/hetrec-seeds] [--resume true]

Reads the same configs as `evaluate.py` (its baselines, ks, metrics, bootstrap settings); content models,
hybrids and the generative stage are left out. For each split seed the interactions are split again
(fractions from splits/meta.json), every baseline is fitted on that split's training part and ranked on
its test part (warm songs); a fusion among them takes the members that are rows too from their fits on
that split. Writes leaderboard.{json,csv,md} (rows as evaluate.py's, plus `per_seed`: each
seed's mean), run.json (per-model fit and evaluation seconds per seed), and paired per-user differences
over the same splits (comparisons.json, a section of leaderboard.md, comparisons.png): the `comparisons`
pairs of the config, or by default the leading row against every other row. Every fit is saved under
`<out>/fits/` as it finishes; `--resume true` reads back those whose interactions, settings and cut-offs
match instead of fitting them again, so an interrupted run goes on where it stopped.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from configs import command_line
from configs.errors import run_entry_point, settings_errors
from evaluate import build_parser
from evaluation.comparisons import write_comparisons
from evaluation.leaderboard import default_out
from evaluation.reports import sort_rows, write_reports
from evaluation.split_seeds import FinishedFits, evaluate_over_seeds, leader_pairs, seed_row
from prepare.default_dataset import dataset_root
from songdata import SongDataset


def main(args: list[str] | None = None) -> Path:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("gensim").setLevel(logging.WARNING)
    parser = build_parser()
    parser.add_argument("--split_seeds", type=list[int], default=[0, 1, 2, 3, 4], help="Seeds of the splits.")
    parser.add_argument("--resume", type=bool, default=False,
                        help="Read back the fits an earlier run saved under <out>/fits/ (same interactions, "
                        "settings and cut-offs) instead of fitting them again.")
    config = parser.parse_args(command_line(args))
    with settings_errors("evaluate_seeds.py settings"):
        init = parser.instantiate(config)
        if not init.split_seeds:
            raise ValueError("--split_seeds is empty: give at least one seed")
    dataset = SongDataset(dataset_root(init.data.root))
    out = Path(init.out) if init.out else default_out(dataset).with_name(f"{dataset.name}-seeds")
    clock = time.perf_counter()
    settings = [baseline.as_dict() for baseline in config.baselines]
    per_model, seconds, reused = evaluate_over_seeds(init.baselines, dataset, init.split_seeds, init.ks,
                                                     init.show_progress, FinishedFits(out / "fits", init.resume),
                                                     settings)
    rows = sort_rows([seed_row(name, results, init.n_bootstrap, init.seed) for name, results in per_model.items()],
                     init.primary_metric)
    title = (f"Leaderboard: {dataset.name} (test split, mean over split seeds {init.split_seeds}, "
             f"95% CI over seeds and users, sorted by {init.primary_metric})")
    write_reports(rows, out, init.primary_metric, init.report_metrics, title)
    if len(rows) > 1:
        evaluations = {(name, "warm"): results for name, results in per_model.items()}
        heading = "Paired comparisons (A − B per user on the same splits; the CI resamples seeds, then users)"
        write_comparisons(evaluations, init.comparisons or leader_pairs(rows), out, init.seed, heading)
    meta = {"dataset": str(dataset.root.resolve()), "split_seeds": init.split_seeds, "timings": seconds,
            "reused_fits": reused,
            "seconds": round(time.perf_counter() - clock, 3)}
    (out / "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print((out / "leaderboard.md").read_text())
    print(f"reports written to {out}")
    return out


if __name__ == "__main__":
    run_entry_point(main)
