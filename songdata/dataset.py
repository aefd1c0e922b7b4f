"""The dataset folder: the one format that `prepare_data.py` writes and everything else reads.

Layout::

    catalog.parquet        song_id, artist, title, lyrics, tags (list[str]), duration_s
    interactions.parquet   user_id, song_id, weight, position
    similarity.parquet     song_a, song_b, score in [0, 1]          (optional)
    splits/{train,val,test}.parquet, splits/meta.json                 (see splits.py)
    shards/*.tar, shards/index.json                                   (see shards.py)

Every table is validated on load and before it is written; one error names every problem found
(file, column, rows, examples and what was expected: see `songdata.validation`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from configs.errors import UserError
from songdata.atomic_files import replace_atomically
from songdata.validation import Problems, check_known, check_numbers, check_text, check_unique, has_columns

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


def normalise_catalog(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce dtypes so that every writer produces the same schema."""
    df = df.copy()
    for column in ("song_id", "artist", "title"):
        df[column] = df[column].astype(str)
    df["lyrics"] = df["lyrics"].fillna("").astype(str)
    df["tags"] = df["tags"].map(lambda tags: [str(t) for t in tags] if tags is not None else [])
    df["duration_s"] = df["duration_s"].astype(float)
    return df[list(CATALOG_COLUMNS)].reset_index(drop=True)


def catalog_problems(df: pd.DataFrame, problems: Problems, file: str = CATALOG) -> None:
    """Ids: non-empty, unique text; artist/title/lyrics: text (may be empty); tags: lists; duration_s: ≥ 0."""
    if not has_columns(problems, file, df, CATALOG_COLUMNS):
        return
    check_text(problems, file, df, "song_id", allow_empty=False)
    check_unique(problems, file, df, "song_id")
    for column in ("artist", "title", "lyrics"):
        check_text(problems, file, df, column, allow_empty=True)
    not_list = ~df["tags"].map(lambda tags: isinstance(tags, (list, tuple, np.ndarray))).to_numpy(bool)
    problems.add_rows(file, "tags", not_list, "value(s) that are not lists", "a list of tags (may be empty)",
                      df["tags"])
    check_numbers(problems, file, df, "duration_s", low=0.0, low_inclusive=True, expected="seconds, finite and >= 0")


def interactions_problems(
    df: pd.DataFrame, songs: Collection[str] | None, problems: Problems, file: str = INTERACTIONS,
    columns: tuple[str, ...] = INTERACTION_COLUMNS, users: Collection[str] | None = None,
) -> None:
    """Ids: non-empty text, songs in the catalog (and users in `users` where given); weight: finite > 0."""
    if not has_columns(problems, file, df, columns):
        return
    for column in ("user_id", "song_id"):
        check_text(problems, file, df, column, allow_empty=False)
    if songs is not None:
        check_known(problems, file, df, "song_id", songs, "song", "the catalog")
    if users is not None:
        check_known(problems, file, df, "user_id", users, "user", INTERACTIONS)
    check_numbers(problems, file, df, "weight", low=0.0, low_inclusive=False,
                  expected="a finite number > 0 (play count or 1)")
    if "position" in columns:
        check_numbers(problems, file, df, "position", low=-np.inf, low_inclusive=True,
                      expected="the listening order (a number)")


def similarity_problems(df: pd.DataFrame, songs: Collection[str] | None, problems: Problems,
                        file: str = SIMILARITY) -> None:
    if not has_columns(problems, file, df, SIMILARITY_COLUMNS):
        return
    for column in ("song_a", "song_b"):
        check_text(problems, file, df, column, allow_empty=False)
        if songs is not None:
            check_known(problems, file, df, column, songs, "song", "the catalog")
    check_numbers(problems, file, df, "score", low=0.0, high=1.0, low_inclusive=True, expected="a number in [0, 1]")


def _refuse(problems: Problems, root: Path) -> None:
    if problems:
        raise DatasetError(problems.message(root))


def _read_parquet(path: Path, problems: Problems, file: str) -> pd.DataFrame | None:
    """The table at `path`, or None with the reason recorded. In a text column holding invalid UTF-8
    the invalid values are read as bytes (the valid ones as text), so the checks can name their rows."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        problems.add(file, "file not found")
        return None
    except Exception as error:  # pyarrow raises several types for corrupt files
        problems.add(file, f"not a readable parquet file ({type(error).__name__})")
        return None
    invalid = []
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid:
                binary = pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()
                table = table.set_column(i, name, pa.chunked_array([c.view(binary) for c in column.chunks], binary))
                invalid.append(name)
    df = table.to_pandas()
    for name in invalid:
        df[name] = df[name].map(_text_if_utf8)
    return df


def _text_if_utf8(value: object) -> object:
    try:
        return value.decode("utf-8") if isinstance(value, bytes) else value
    except UnicodeDecodeError:
        return value


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """`df` (without its index) as parquet at `path`, replaced whole (`replace_atomically`)."""
    replace_atomically(path, lambda f: df.to_parquet(f, index=False))


def write_tables(
    root: str | Path,
    catalog: pd.DataFrame,
    interactions: pd.DataFrame,
    similarity: pd.DataFrame | None = None,
) -> DatasetTables:
    """Validate and write catalog, interactions and (optional) similarity; nothing is written when any
    table breaks the layout (one `DatasetError` names every problem)."""
    root = Path(root)
    problems = Problems()
    catalog = normalise_catalog(catalog)
    catalog_problems(catalog, problems)
    songs = pd.Index(catalog["song_id"])
    interactions = interactions.astype({"user_id": str, "song_id": str, "weight": float, "position": int})
    interactions = interactions[list(INTERACTION_COLUMNS)].reset_index(drop=True)
    interactions_problems(interactions, songs, problems)
    if similarity is not None:
        similarity = similarity.astype({"song_a": str, "song_b": str, "score": float})
        similarity = similarity[list(SIMILARITY_COLUMNS)].reset_index(drop=True)
        similarity_problems(similarity, songs, problems)
    _refuse(problems, root)
    write_parquet_atomic(catalog, root / CATALOG)
    write_parquet_atomic(interactions, root / INTERACTIONS)
    if similarity is not None:
        write_parquet_atomic(similarity, root / SIMILARITY)
    return DatasetTables(root, catalog, interactions, similarity)


def load_tables(
    root: str | Path, require_splits: bool = True, split_names: tuple[str, ...] = SPLIT_NAMES
) -> DatasetTables:
    """Load and validate the tables of a dataset folder (open it as a `SongDataset` to use it); of the
    splits, only `split_names` are read. One `DatasetError` names every problem found in every table."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (build one with `prepare_data.py`)")
    problems = Problems()
    catalog = _read_parquet(root / CATALOG, problems, CATALOG)
    if catalog is not None:
        catalog_problems(catalog, problems)
    songs = None if catalog is None or "song_id" not in catalog else pd.Index(catalog["song_id"].dropna())
    interactions = _read_parquet(root / INTERACTIONS, problems, INTERACTIONS)
    if interactions is not None:
        interactions_problems(interactions, songs, problems)
    users = None if interactions is None or "user_id" not in interactions else interactions["user_id"].unique()
    similarity = None
    if (root / SIMILARITY).exists():
        similarity = _read_parquet(root / SIMILARITY, problems, SIMILARITY)
        if similarity is not None:
            similarity_problems(similarity, songs, problems)
    splits, meta = None, {}
    if require_splits or (root / SPLITS_DIR).exists():
        splits, meta = _load_splits(root, split_names, songs, users, problems)
    _refuse(problems, root)
    return DatasetTables(root, catalog, interactions, similarity, splits, meta)


def _load_splits(
    root: Path, split_names: tuple[str, ...], songs: Collection[str] | None, users: Collection[str] | None,
    problems: Problems,
) -> tuple[dict[str, pd.DataFrame], dict]:
    splits = {}
    for name in split_names:
        file = f"{SPLITS_DIR}/{name}.parquet"
        split = _read_parquet(root / file, problems, file)
        if split is not None:
            interactions_problems(split, songs, problems, file, SPLIT_COLUMNS, users)
            splits[name] = split
    meta_file = f"{SPLITS_DIR}/meta.json"
    try:
        meta = json.loads((root / meta_file).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.add(meta_file, f"missing or not valid JSON ({type(error).__name__})")
        meta = {}
    if not isinstance(meta, dict):
        problems.add(meta_file, f"expected a JSON object, got {type(meta).__name__}")
        meta = {}
    return splits, meta
