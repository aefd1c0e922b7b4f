"""The dataset folder: the one format that `prepare_data.py` writes and everything else reads.

Layout::

    catalog.parquet        song_id, artist, title, lyrics, tags (list[str]), duration_s
    interactions.parquet   user_id, song_id, weight, position
    similarity.parquet     song_a, song_b, score in [0, 1]          (optional)
    splits/{train,val,test}.parquet, splits/meta.json                 (see splits.py)
    shards/*.tar, shards/index.json                                   (see shards.py)

Every table is validated on load and before it is written, and errors name the file,
the column and what was expected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from configs.errors import UserError

CATALOG = "catalog.parquet"
INTERACTIONS = "interactions.parquet"
SIMILARITY = "similarity.parquet"
SPLITS_DIR = "splits"
SPLIT_NAMES = ("train", "val", "test")

CATALOG_COLUMNS = ("song_id", "artist", "title", "lyrics", "tags", "duration_s")
INTERACTION_COLUMNS = ("user_id", "song_id", "weight", "position")
SIMILARITY_COLUMNS = ("song_a", "song_b", "score")
SPLIT_COLUMNS = ("user_id", "song_id", "weight")


class DatasetError(UserError):
    """A dataset file is missing or does not follow the documented layout (the user's to fix)."""


@dataclass
class DatasetTables:
    """The tables of one dataset folder, validated (`SongDataset` opens a folder and answers from these)."""

    root: Path
    catalog: pd.DataFrame
    interactions: pd.DataFrame
    similarity: pd.DataFrame | None = None
    splits: dict[str, pd.DataFrame] | None = None
    split_meta: dict = field(default_factory=dict)


def _require_columns(df: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; expected columns {list(columns)}")


def _require_no_nulls(df: pd.DataFrame, column: str, path: Path) -> None:
    n_null = int(df[column].isna().sum())
    if n_null:
        raise DatasetError(f"{path}: column '{column}' has {n_null} empty value(s)")


def _require_known_songs(df: pd.DataFrame, column: str, known: set[str], path: Path) -> None:
    unknown = set(df[column].unique()) - known
    if unknown:
        sample = sorted(unknown)[:5]
        raise DatasetError(
            f"{path}: column '{column}' has {len(unknown)} song id(s) not in the catalog, e.g. {sample}"
        )


def normalise_catalog(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce dtypes so that every writer produces the same schema."""
    df = df.copy()
    for column in ("song_id", "artist", "title"):
        df[column] = df[column].astype(str)
    df["lyrics"] = df["lyrics"].fillna("").astype(str)
    df["tags"] = df["tags"].map(lambda tags: [str(t) for t in tags] if tags is not None else [])
    df["duration_s"] = df["duration_s"].astype(float)
    return df[list(CATALOG_COLUMNS)].reset_index(drop=True)


def validate_catalog(df: pd.DataFrame, path: Path) -> None:
    _require_columns(df, CATALOG_COLUMNS, path)
    _require_no_nulls(df, "song_id", path)
    duplicated = df["song_id"][df["song_id"].duplicated()]
    if len(duplicated):
        raise DatasetError(
            f"{path}: column 'song_id' has {len(duplicated)} duplicate id(s), e.g. {list(duplicated[:5])}"
        )


def validate_interactions(df: pd.DataFrame, songs: set[str], path: Path, columns=INTERACTION_COLUMNS) -> None:
    _require_columns(df, columns, path)
    for column in ("user_id", "song_id", "weight"):
        _require_no_nulls(df, column, path)
    _require_known_songs(df, "song_id", songs, path)
    if (df["weight"] <= 0).any():
        raise DatasetError(f"{path}: column 'weight' must be > 0 (play count or 1)")


def validate_similarity(df: pd.DataFrame, songs: set[str], path: Path) -> None:
    _require_columns(df, SIMILARITY_COLUMNS, path)
    for column in SIMILARITY_COLUMNS:
        _require_no_nulls(df, column, path)
    _require_known_songs(df, "song_a", songs, path)
    _require_known_songs(df, "song_b", songs, path)
    outside = df[(df["score"] < 0) | (df["score"] > 1)]
    if len(outside):
        raise DatasetError(
            f"{path}: column 'score' must lie in [0, 1]; {len(outside)} row(s) outside, "
            f"e.g. {outside['score'].iloc[0]}"
        )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except Exception as error:  # pyarrow raises several types for corrupt files
        raise DatasetError(f"{path}: not a readable parquet file ({error})") from error


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write then rename, so an interrupted run never leaves a half-written table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_json_atomic(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def write_tables(
    root: str | Path,
    catalog: pd.DataFrame,
    interactions: pd.DataFrame,
    similarity: pd.DataFrame | None = None,
) -> DatasetTables:
    """Validate and write catalog, interactions and (optional) similarity."""
    root = Path(root)
    catalog = normalise_catalog(catalog)
    validate_catalog(catalog, root / CATALOG)
    songs = set(catalog["song_id"])
    interactions = interactions.astype({"user_id": str, "song_id": str, "weight": float, "position": int})
    interactions = interactions[list(INTERACTION_COLUMNS)].reset_index(drop=True)
    validate_interactions(interactions, songs, root / INTERACTIONS)
    write_parquet_atomic(catalog, root / CATALOG)
    write_parquet_atomic(interactions, root / INTERACTIONS)
    if similarity is not None:
        similarity = similarity.astype({"song_a": str, "song_b": str, "score": float})
        similarity = similarity[list(SIMILARITY_COLUMNS)].reset_index(drop=True)
        validate_similarity(similarity, songs, root / SIMILARITY)
        write_parquet_atomic(similarity, root / SIMILARITY)
    return DatasetTables(root, catalog, interactions, similarity)


def load_tables(
    root: str | Path, require_splits: bool = True, split_names: tuple[str, ...] = SPLIT_NAMES
) -> DatasetTables:
    """Load and validate the tables of a dataset folder (open it as a `SongDataset` to use it); of the
    splits, only `split_names` are read."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (build one with `prepare_data.py`)")
    catalog = _read_parquet(root / CATALOG)
    validate_catalog(catalog, root / CATALOG)
    songs = set(catalog["song_id"])
    interactions = _read_parquet(root / INTERACTIONS)
    validate_interactions(interactions, songs, root / INTERACTIONS)
    similarity = None
    if (root / SIMILARITY).exists():
        similarity = _read_parquet(root / SIMILARITY)
        validate_similarity(similarity, songs, root / SIMILARITY)
    splits, meta = None, {}
    split_dir = root / SPLITS_DIR
    if require_splits or split_dir.exists():
        splits = {}
        for name in split_names:
            path = split_dir / f"{name}.parquet"
            split = _read_parquet(path)
            validate_interactions(split, songs, path, columns=SPLIT_COLUMNS)
            splits[name] = split
        meta_path = split_dir / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DatasetError(f"{meta_path}: missing or not valid JSON ({error})") from error
    return DatasetTables(root, catalog, interactions, similarity, splits, meta)
