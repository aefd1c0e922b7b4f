"""The leaderboard's generative stage: generated and recommended songs judged alike against one reference.

For `num_users` seeded test users with at least two held-out songs, every candidate is scored by
both taste scores (`midi_similarity`: symbolic features of basic-pitch transcriptions;
`lyric_relevance`: the lyric judge) against **one reference per user**: by default the user's
held-out test songs (what they listened to next, the ranking metrics' target), with the
candidate itself always left out; `reference: history` uses the training songs instead, which is
circular for generators whose prompts are built from the history. Every row scores `k` songs
per user (default 2 = the clips of one generator request):

- reference rows (slice `reference`): `heldout` (held-out songs, each against the user's other
  held-out songs), `history` (training songs: how much the past resembles the future) and
  `random-songs` (random catalog songs outside the history);
- every model's top-k warm songs (its `warm` row gains both scores);
- `generated-<backend>` rows (slice `generated`) for each backend (resumable under
  `<report>/generated/<backend>/`); songs that are near-copies of a history song
  (`taste.novelty`) are counted in `near_copy_rate` and scored apart, in a
  `generated-<backend>/near-copies` row, never in the generator's mean.

Validity (`evaluation.taste_validity`): per score, the AUC of `heldout` vs `random-songs` per
user, averaged, with a bootstrap CI; a score whose CI includes 0.5 is marked on every row using it.
Paired per-user differences (`evaluation.comparisons`) compare each generator with the best
recommender and with `heldout`. Per-song scores go to `taste_scores.csv`, the tables to
`taste.md`, the figure to `taste_scores.png`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from evaluation.taste_panel import TASTE_METRICS, JudgeConfig, TastePanel, build_judge
from evaluation.taste_results import (
    GENERATED_SLICE,
    REFERENCE_ROWS,
    Candidate,
    StageResult,
    summarise_stage,
    summarise_users,
)
from evaluation.taste_validity import validity_note
from songdata import InteractionData, SongDataset
from taste import TasteSong
from taste.novelty import nearest_history

log = logging.getLogger(__name__)

__all__ = [
    "GENERATED_SLICE", "TASTE_METRICS", "GenerativeConfig", "JudgeConfig", "StageResult", "TastePanel",
    "add_taste_metrics", "build_judge", "run_generative_stage", "summarise_users", "top_k",
]


@dataclass
class GenerativeConfig:
    """Generated songs, reference songs and every model's top-k, judged alike against one reference.

    Args:
        enabled: Run the stage (off unless a config turns it on: it transcribes audio).
        backends: Generators to run (`history`, `random`, `oracle`, `suno`, `import`, `musicgen`);
            rows `generated-<backend>`. `oracle` is the demo-world simulator: an upper bound, demo only.
        generate_config: Config of the generators and prompts (bare names in configs/).
        generate_args: Extra overrides of it, e.g. ["--generator.seconds", "8"].
        num_users: Test users scored (seeded choice with the leaderboard's seed; users with >= 2 held-out songs).
        k: Songs scored per user in every row (a model's top-k; generated songs beyond k are not scored).
        reference: `heldout` (the user's test songs, candidate excluded) or `history` (training songs:
            circular for generators that build prompts from the history).
        reference_songs: Catalog songs sampled (seeded) for MIDI similarity's feature statistics.
        judge: The lyric judge.
        cache_dir: Transcriptions, reference statistics, audio hashes; empty = `<report>/cache`.
    """

    enabled: bool = False
    backends: list[str] = field(default_factory=lambda: ["history", "random", "oracle"])
    generate_config: str = "generate.yaml"
    generate_args: list[str] = field(default_factory=list)
    num_users: int = 100
    k: int = 2
    reference: Literal["heldout", "history"] = "heldout"
    reference_songs: int = 32
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    cache_dir: str | None = None


def top_k(scorer: Callable[[np.ndarray], torch.Tensor], data: InteractionData, users: np.ndarray, k: int,
          split: str = "test") -> list[np.ndarray]:
    """Each user's best k unseen warm songs (seen = training, plus validation for test); -inf slots dropped."""
    scores = scorer(np.asarray(users)).detach().float().cpu().clone()
    seen = (data.train + data.val) if split == "test" else data.train
    rows, cols = seen[np.asarray(users)].nonzero()
    scores[torch.as_tensor(rows), torch.as_tensor(cols)] = -torch.inf
    scores[:, torch.as_tensor(data.cold_songs, dtype=torch.long)] = -torch.inf
    values, ids = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    return [i[torch.isfinite(v)].numpy() for v, i in zip(values, ids)]


def stage_users(data: InteractionData, num_users: int, seed: int) -> list[int]:
    """Seeded test users with a history and at least two held-out songs (a held-out song needs another as reference)."""
    from generative import choose_users

    enough = np.diff(data.test.indptr) >= 2
    return [int(u) for u in choose_users(data, None, seed, "test") if enough[u]][:num_users]


def reference_rows(data: InteractionData, users: list[int], k: int, seed: int) -> dict[str, dict[int, np.ndarray]]:
    """Per reference row, each user's k catalog songs (seeded per user)."""
    rows: dict[str, dict[int, np.ndarray]] = {name: {} for name in REFERENCE_ROWS}
    for user in users:
        rng = np.random.default_rng([seed, user])
        test, train = data.test[user].indices, data.train[user].indices
        outside = np.setdiff1d(np.arange(data.n_songs), train)
        rows["heldout"][user] = rng.choice(test, min(k, len(test)), replace=False)
        rows["history"][user] = rng.choice(train, min(k, len(train)), replace=False)
        rows["random-songs"][user] = rng.choice(outside, min(k, len(outside)), replace=False)
    return rows


def _generate(config: GenerativeConfig, dataset: SongDataset, users: list[int], out: Path, cache: Path):
    from generative import generate_for_users, load_config

    generated, counts = {}, {}
    for backend in config.backends:
        args = ["--generator.backend", backend, "--generator.cache_dir", str(cache), *config.generate_args]
        run = generate_for_users(dataset, users, load_config(args, config.generate_config), out / "generated" / backend)
        generated[backend], counts[backend] = run.songs, run.counts
    return generated, counts


def _generated_candidates(data: InteractionData, users: list[int], songs: list[dict], k: int) -> dict[int, list]:
    index = {data.user_ids[u]: u for u in users}
    by_user: dict[int, list[TasteSong]] = {u: [] for u in users}
    for song in songs:
        user = index.get(song["user_id"])
        if user is not None and song.get("audio_path") and len(by_user[user]) < k:
            by_user[user].append(TasteSong.from_file(song["audio_path"], song["song_id"], song.get("lyrics") or ""))
    return by_user


def run_generative_stage(
    config: GenerativeConfig, dataset: SongDataset, models: dict, out: Path, seed: int, n_bootstrap: int,
    show_progress: bool = False,
) -> StageResult:
    """Generate (or reuse) songs for seeded test users; score them, the reference rows and every model's top-k."""
    clock, cpu = time.perf_counter(), time.process_time()
    data = dataset.interactions
    users = stage_users(data, config.num_users, seed)
    cache = Path(config.cache_dir) if config.cache_dir else out / "cache"
    generated, counts = _generate(config, dataset, users, out, cache)
    generated_at = time.perf_counter()
    catalog_rows = reference_rows(data, users, config.k, seed)
    for name, model in models.items():
        catalog_rows[name] = dict(zip(users, top_k(model.score, data, np.array(users), config.k)))
    panel = TastePanel(dataset, cache, build_judge(config.judge, cache), config.reference_songs, seed, show_progress)
    needed = {int(i) for per_user in catalog_rows.values() for ids in per_user.values() for i in ids}
    needed |= {int(i) for u in users for i in data.test[u].indices}
    needed |= {int(i) for u in users for i in data.train[u].indices}  # history reference and novelty
    generated_rows = {backend: _generated_candidates(data, users, songs, config.k) for backend, songs in generated.items()}
    panel.prepare(sorted(needed), [s for per_user in generated_rows.values() for songs in per_user.values() for s in songs])
    reference = panel.heldout if config.reference == "heldout" else panel.history
    by_row: dict[str, list[Candidate]] = {row: [] for row in catalog_rows}
    by_row |= {f"generated-{backend}": [] for backend in generated_rows}
    for user in users:
        rows = {row: [panel.song(i) for i in per_user[user]] for row, per_user in catalog_rows.items()}
        rows |= {f"generated-{backend}": per_user[user] for backend, per_user in generated_rows.items()}
        for row, scored in _score_user(panel, user, rows, reference(user)).items():
            by_row[row] += scored
    candidates = [candidate for scored in by_row.values() for candidate in scored]
    result = summarise_stage(
        candidates, list(models), config.backends, data.user_ids, panel.judge.kind, n_bootstrap, seed
    )
    result.meta.update({
        "users": [data.user_ids[u] for u in users], "k": config.k, "reference": config.reference,
        "backends": config.backends, "generation_counts": counts, "config": asdict(config),
        "judge": {"name": panel.judge.name, "kind": panel.judge.kind}, "midi": {"kind": panel.midi.kind},
        "catalog_songs_decoded": panel.catalog.decoded, "catalog_skipped": dict(panel.catalog.skipped),
        "transcriber": {"hits": panel.midi.transcriber.hits, "misses": panel.midi.transcriber.misses},
        "seconds": round(time.perf_counter() - clock, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),  # all threads: wall on a busy machine says little
        "generation_seconds": round(generated_at - clock, 3),
    })
    result.meta["files"] = result.write(out)
    log.info("generative stage: %d users, %d models, %s in %.1f s", len(users), len(models),
             {b: len(s) for b, s in generated.items()}, result.meta["seconds"])
    return result


def _score_user(
    panel: TastePanel, user: int, rows: dict[str, list[TasteSong]], reference: Sequence[TasteSong]
) -> dict[str, list[Candidate]]:
    """Every row's songs for one user, scored in one pass against the user's reference (the profiles are
    built once, not once per row); generated songs also get their nearest history song."""
    songs = [song for row_songs in rows.values() for song in row_songs]
    results = panel.score(songs, reference)
    history = panel.history(user)
    scored, start = {}, 0
    for row, row_songs in rows.items():
        novelty = row.startswith("generated-")
        scored[row] = [
            Candidate(user, row, rank + 1, song, {m: results[m][start + rank] for m in TASTE_METRICS},
                      nearest_history(panel.midi, song, history) if novelty else None)
            for rank, song in enumerate(row_songs)
        ]
        start += len(row_songs)
    return scored


def add_taste_metrics(rows: list[dict], result: StageResult) -> list[dict]:
    """Taste metrics into each model's warm row (rows with a note stay as they are), plus the stage's own rows.

    A score not shown to measure taste (validity CI includes 0.5) is named in the note of every row that gains it.
    """
    marks = [note for m in TASTE_METRICS if (note := validity_note(m, result.meta["validity"][m]))]
    for row in rows:
        if row["slice"] == "warm" and row["model"] in result.model_metrics and "note" not in row:
            metrics, ci95 = result.model_metrics[row["model"]]
            row["metrics"].update(metrics)
            row["ci95"].update(ci95)
            if marks:
                row["note"] = "; ".join(marks)
    return rows + result.rows
