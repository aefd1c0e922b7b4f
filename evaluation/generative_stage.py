"""The leaderboard's generative stage: taste scores of generated songs and of every model's top-k, same users.

For `num_users` seeded test users (`generative.choose_users`), each configured backend generates
songs (resumable: `<report>/generated/<backend>/manifest.jsonl`, a second run reuses them), and
two taste scores are computed against each user's history (training songs, weight = play count):

- `midi_similarity` (`taste.MidiSimilarity`; reference statistics fitted on a seeded sample of
  catalog songs; transcriptions cached by audio hash under `<report>/cache/midi`),
- `lyric_relevance` (`taste.EmbeddingLyricJudge` by default, kind "embedding, not LLM"; or an
  LLM judge on an OpenAI-compatible server).

The same scores go to every model's top-k warm songs for the same users (seen training and
validation songs masked, as the evaluator does). A user's value is the mean over their scored
songs; the row's value is the mean over users with a 95% bootstrap CI over users (seeded).
Failures (no audio, no notes, no lyrics, a judge that did not answer) are counted, never scored.

Model rows: the `warm` row gains the two metrics. Generators get rows of their own with slice
`generated` (they are not ranked on the test split, so they sit apart from warm and cold), named
`generated-<backend>`, with a note naming the generator and the judge kind.

Catalog audio is decoded from the shards only for the songs needed (histories, top-k, reference
sample); each song's audio hash is kept in `<cache>/catalog_audio_hashes.json`, so a later run
whose transcriptions are cached decodes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from songdata.interactions import InteractionData
from songdata.shards import iter_shard_songs
from evaluation.metrics import bootstrap_ci
from taste import EmbeddingLyricJudge, LLMLyricJudge, MidiSimilarity, OpenAIChatBackend, TasteScorer, TasteSong
from taste.cache_files import write_json

log = logging.getLogger(__name__)

TASTE_METRICS = ("midi_similarity", "lyric_relevance")
GENERATED_SLICE = "generated"
HASHES_FILE = "catalog_audio_hashes.json"
DECIMALS = 6


@dataclass
class JudgeConfig:
    """The lyric judge.

    Args:
        backend: `embedding` (offline MiniLM cosine, kind "embedding, not LLM") or `openai` (an LLM
            on any OpenAI-compatible server, rubric-graded).
        model: `openai`: the model name (required); `embedding`: a sentence encoder, empty = the shipped MiniLM.
        base_url: `openai`: the server, e.g. http://localhost:8000/v1.
        api_key_env: `openai`: environment variable holding the key (never written anywhere).
    """

    backend: Literal["embedding", "openai"] = "embedding"
    model: str | None = None
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"


@dataclass
class GenerativeConfig:
    """Taste scores of generated songs next to every model's top-k recommendations.

    Args:
        enabled: Run the stage (off unless a config turns it on: it transcribes audio).
        backends: Generators to run (`oracle`, `suno`, `import`, `musicgen`); rows `generated-<backend>`.
        generate_config: Config of the generators and prompts (bare names in configs/).
        generate_args: Extra overrides of it, e.g. ["--generator.seconds", "8"].
        num_users: Test users scored (seeded choice with the leaderboard's seed).
        k: Top-k recommendations of each model scored per user.
        reference_songs: Catalog songs sampled (seeded) for MIDI similarity's reference statistics.
        judge: The lyric judge.
        cache_dir: Transcriptions, reference statistics, audio hashes; empty = `<report>/cache`.
    """

    enabled: bool = False
    backends: list[str] = field(default_factory=lambda: ["oracle"])
    generate_config: str = "generate.yaml"
    generate_args: list[str] = field(default_factory=list)
    num_users: int = 8
    k: int = 5
    reference_songs: int = 32
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    cache_dir: str | None = None


@dataclass
class StageResult:
    """What the stage adds: metrics per model, rows of generators, run.json entries, W&B table rows."""

    model_metrics: dict[str, tuple[dict, dict]]
    rows: list[dict]
    meta: dict
    table: list[dict]


def build_judge(config: JudgeConfig, cache_dir: Path) -> TasteScorer:
    if config.backend == "embedding":
        return EmbeddingLyricJudge(config.model, cache_dir=cache_dir)
    if not config.model:
        raise ValueError("generative.judge.model: the openai judge needs a model name, got none")
    return LLMLyricJudge(OpenAIChatBackend(config.model, config.base_url, api_key_env=config.api_key_env))


class TastePanel:
    """A panel of both taste scorers (`TasteScorer`s) and the catalog songs they need, decoded once and cached by hash.

    Shared by the leaderboard stage and the `GenerativeComparison` callback.
    """

    def __init__(
        self, data: InteractionData, cache_dir: Path, judge: TasteScorer, reference_songs: int, seed: int,
        show_progress: bool = False,
    ) -> None:
        self.data, self.cache_dir = data, Path(cache_dir)
        self.midi = MidiSimilarity(self.cache_dir / "midi", show_progress=show_progress)
        self.judge = judge
        self.reference_songs, self.seed = reference_songs, seed
        self._songs: dict[int, TasteSong] = {}
        self.decoded = 0
        self.skipped: Counter = Counter()  # shard data that could not be read, by reason

    @property
    def scorers(self) -> dict[str, TasteScorer]:
        return {"midi_similarity": self.midi, "lyric_relevance": self.judge}

    def prepare(self, indices: Sequence[int]) -> None:
        """Make `indices` (and, before the first fit, the reference sample) ready to score."""
        stats = self.cache_dir / "midi" / "reference_stats.json"
        reference = []
        if self.midi.scalar_mean is None and not stats.exists():
            rng = np.random.default_rng(self.seed)
            reference = rng.choice(self.data.n_songs, min(self.reference_songs, self.data.n_songs), replace=False)
        self._load_catalog(set(int(i) for i in indices) | set(int(i) for i in reference))
        if self.midi.scalar_mean is None:
            if stats.exists():
                self.midi.load_reference(stats)
            else:
                self.midi.fit([self._songs[int(i)] for i in reference])

    def _load_catalog(self, wanted: set[int]) -> None:
        """Hash-only songs for those already transcribed; decode (from the shards) and transcribe the rest."""
        wanted -= set(self._songs)
        hashes_path = self.cache_dir / HASHES_FILE
        hashes = json.loads(hashes_path.read_text()) if hashes_path.exists() else {}
        folder = self.midi.transcriber.cache_dir
        for index in list(wanted):
            known = hashes.get(str(index))
            if known and (folder / f"{known}.npz").exists():
                self._songs[index] = self._catalog_song(index, None, known)
                wanted.discard(index)
        if wanted and self.data.root is not None:
            for index, wave in iter_shard_songs(self.data.root, skipped=self.skipped, songs=wanted):
                song = self._catalog_song(index, wave, None)
                try:
                    self.midi.transcriber.transcribe(song)  # cached now; scoring reads it back
                except Exception as error:  # counted as a failure ("no audio") when scored
                    log.warning("generative stage: catalog song %s could not be transcribed: %s", song.id, error)
                    self._songs[index] = self._catalog_song(index, None, None)
                    continue
                self.decoded += 1
                hashes[str(index)] = song.audio_hash
                self._songs[index] = self._catalog_song(index, None, song.audio_hash)
                wanted.discard(index)
        for index in wanted:  # not in the shards: scored as "no audio"
            self._songs[index] = self._catalog_song(index, None, None)
        if hashes_path.exists():  # with what another evaluation sharing the cache added meanwhile
            hashes = {**json.loads(hashes_path.read_text()), **hashes}
        write_json(hashes_path, hashes, sort_keys=True)

    def _catalog_song(self, index: int, wave: np.ndarray | None, audio_hash: str | None) -> TasteSong:
        row = self.data.catalog.iloc[index]
        lyrics = row["lyrics"] if isinstance(row["lyrics"], str) else ""
        return TasteSong(str(row["song_id"]), lyrics, wave, audio_hash=audio_hash)

    def song(self, index: int, weight: float = 1.0) -> TasteSong:
        base = self._songs[int(index)]
        return TasteSong(base.id, base.lyrics, None, weight, base._hash)

    def history(self, user: int) -> list[TasteSong]:
        """The user's training songs, weighted by play count."""
        row = self.data.train[user]
        return [self.song(i, w) for i, w in zip(row.indices, row.data)]

    def score(self, candidates: Sequence[TasteSong], history: Sequence[TasteSong]) -> dict[str, list]:
        """Per scorer, one `TasteResult` per candidate."""
        return {name: scorer.score(candidates, history) for name, scorer in self.scorers.items()}


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


def summarise_users(per_user: dict[str, list[list]], n_bootstrap: int, seed: int) -> tuple[dict, dict, dict, int]:
    """(metrics, ci95, failures by reason, n_users) from per-user lists of `TasteResult`s per metric.

    A user's value is the mean of their scored songs; users with none scored are left out of that metric.
    """
    metrics, ci95, failures, n_users = {}, {}, {}, 0
    for name, users in per_user.items():
        means = [np.mean([r.value for r in results if r.value is not None]) for results in users
                 if any(r.value is not None for r in results)]
        failures[name] = dict(Counter(r.failure for results in users for r in results if r.failure is not None))
        if means:
            values = np.array(means)[:, None]
            lo, hi = bootstrap_ci(values, n_bootstrap, seed)[0]
            metrics[name] = _round(values.mean())
            ci95[name] = [_round(lo), _round(hi)]
        n_users = max(n_users, len(means))
    return metrics, ci95, failures, n_users


def _round(value: float) -> float | None:
    value = float(value)
    return round(value, DECIMALS) if np.isfinite(value) else None


def run_generative_stage(
    config: GenerativeConfig, data: InteractionData, models: dict, out: Path, seed: int, n_bootstrap: int,
    show_progress: bool = False,
) -> StageResult:
    """Generate (or reuse) songs for seeded test users and score them and every model's top-k."""
    from generative import choose_users, generate_for_users, load_config

    clock = time.perf_counter()
    users = [int(u) for u in choose_users(data, config.num_users, seed, "test")]
    cache = Path(config.cache_dir) if config.cache_dir else out / "cache"
    generated, counts = {}, {}
    for backend in config.backends:
        gen_config = load_config(["--generator.backend", backend, *config.generate_args], config.generate_config)
        run = generate_for_users(data, users, gen_config, out / "generated" / backend)
        generated[backend], counts[backend] = run.songs, run.counts
    tops = {name: dict(zip(users, top_k(model.score, data, np.array(users), config.k))) for name, model in models.items()}
    taste = TastePanel(data, cache, build_judge(config.judge, cache), config.reference_songs, seed, show_progress)
    needed = {int(i) for u in users for i in data.train[u].indices}
    needed |= {int(i) for per_user in tops.values() for ids in per_user.values() for i in ids}
    taste.prepare(sorted(needed))
    scored_at = time.perf_counter()
    model_metrics, rows, failures, table = {}, [], {}, []
    judge_kind = taste.judge.kind
    for name, per_user in tops.items():
        results = _score_users(taste, users, {u: [taste.song(i) for i in per_user[u]] for u in users}, table, name)
        metrics, ci95, failures[name], _ = summarise_users(results, n_bootstrap, seed)
        model_metrics[name] = (metrics, ci95)
    for backend, songs in generated.items():
        by_user = {u: [] for u in users}
        index = {data.user_ids[u]: u for u in users}
        for song in songs:
            if song["user_id"] in index and song.get("audio_path"):
                by_user[index[song["user_id"]]].append(
                    TasteSong.from_file(song["audio_path"], song["song_id"], song.get("lyrics") or ""))
        name = f"generated-{backend}"
        results = _score_users(taste, users, by_user, table, name)
        metrics, ci95, failures[name], n_users = summarise_users(results, n_bootstrap, seed)
        note = f"{backend} generator, {len(songs)} songs; lyric judge: {judge_kind}"
        rows.append({"model": name, "slice": GENERATED_SLICE, "n_users": n_users, "metrics": metrics,
                     "ci95": ci95, "note": note})
    meta = {
        "users": [data.user_ids[u] for u in users], "k": config.k, "backends": config.backends,
        "generation_counts": counts, "failures": failures, "config": asdict(config),
        "judge": {"name": taste.judge.name, "kind": judge_kind}, "midi": {"kind": taste.midi.kind},
        "catalog_songs_decoded": taste.decoded, "catalog_skipped": dict(taste.skipped), "transcriber": {"hits": taste.midi.transcriber.hits,
                                                                "misses": taste.midi.transcriber.misses},
        "seconds": round(time.perf_counter() - clock, 3), "scoring_seconds": round(time.perf_counter() - scored_at, 3),
    }
    log.info("generative stage: %d users, %d models, %s in %.1f s", len(users), len(models),
             {b: len(s) for b, s in generated.items()}, meta["seconds"])
    return StageResult(model_metrics, rows, meta, table)


def _score_users(
    taste: TastePanel, users: list[int], candidates: dict[int, list[TasteSong]], table: list[dict], source: str
) -> dict[str, list[list]]:
    """Per metric, per user, the candidates' results; each candidate also becomes a W&B table row."""
    out: dict[str, list[list]] = {name: [] for name in TASTE_METRICS}
    for user in users:
        songs = candidates[user]
        results = taste.score(songs, taste.history(user)) if songs else {name: [] for name in TASTE_METRICS}
        for name in TASTE_METRICS:
            out[name].append(results[name])
        for rank, song in enumerate(songs):
            table.append({
                "user_id": taste.data.user_ids[user], "source": source, "rank": rank + 1, "song": song.id,
                "audio_path": str(song.audio_path) if song.audio_path else None, "lyrics": song.lyrics,
                **{name: results[name][rank].value for name in TASTE_METRICS},
            })
    return out


def add_taste_metrics(rows: list[dict], result: StageResult) -> list[dict]:
    """Taste metrics into each model's warm row (rows with a note stay as they are), plus the generators' rows."""
    for row in rows:
        if row["slice"] == "warm" and row["model"] in result.model_metrics and "note" not in row:
            metrics, ci95 = result.model_metrics[row["model"]]
            row["metrics"].update(metrics)
            row["ci95"].update(ci95)
    return rows + result.rows
