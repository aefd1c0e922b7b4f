"""Untrusted tables: one error names every problem (file, column, rows, what was expected), never another crash."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from configs.errors import run_entry_point
from songdata import SongDataset
from songdata.dataset import DatasetError, catalog_problems, load_tables, write_tables
from songdata.validation import MAX_TEXT_CHARS, Problems


def _catalog(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "song_id": [f"s{i}" for i in range(n)], "artist": ["a"] * n, "title": [f"t{i}" for i in range(n)],
        "lyrics": [f"la {i}" for i in range(n)], "tags": [["pop"]] * n, "duration_s": 3.0,
    })


def _interactions() -> pd.DataFrame:
    rows = [(f"u{u}", f"s{s}", 1.0 + s, p) for u in range(3) for p, s in enumerate(range(u, u + 3))]
    return pd.DataFrame(rows, columns=["user_id", "song_id", "weight", "position"])


def _folder(root: Path, catalog: pd.DataFrame | None = None, interactions: pd.DataFrame | None = None,
            splits: dict[str, pd.DataFrame] | None = None) -> Path:
    """A small folder written as is (no validation on the way in: that is what is under test)."""
    (root / "splits").mkdir(parents=True, exist_ok=True)
    catalog = _catalog() if catalog is None else catalog
    interactions = _interactions() if interactions is None else interactions
    catalog.to_parquet(root / "catalog.parquet")
    interactions.to_parquet(root / "interactions.parquet")
    if splits is None:
        good = _interactions()[["user_id", "song_id", "weight"]]
        splits = {"train": good, "val": good.iloc[:0], "test": good.iloc[:0]}
    for name, split in splits.items():
        split.to_parquet(root / "splits" / f"{name}.parquet")
    (root / "splits" / "meta.json").write_text(json.dumps({"cold_song_ids": []}))
    return root


def test_a_folder_with_nan_weights_and_a_duplicated_song_id_is_refused_naming_both(tmp_path):
    catalog = pd.concat([_catalog(), _catalog().iloc[[1]]], ignore_index=True)
    interactions = _interactions()
    interactions.loc[[2, 5], "weight"] = np.nan
    _folder(tmp_path, catalog, interactions)
    with pytest.raises(DatasetError) as error:
        load_tables(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path}: 2 problems: ")
    assert "catalog.parquet: column 'song_id' has 1 duplicate id(s) (rows [6], e.g. ['s1']); expected each id once" in message
    assert "interactions.parquet: column 'weight' has 2 empty value(s) (null/NaN) (rows [2, 5]); expected a finite number > 0" in message
    assert "\n" not in message


@pytest.mark.parametrize("weight, what", [(np.inf, r"infinite value\(s\)"), (-np.inf, r"infinite value\(s\)"),
                                          (0.0, r"value\(s\) out of range"), (-2.0, r"value\(s\) out of range")])
def test_weights_must_be_finite_and_positive(tmp_path, weight, what):
    interactions = _interactions()
    interactions.loc[3, "weight"] = weight
    _folder(tmp_path, interactions=interactions)
    with pytest.raises(DatasetError, match=rf"interactions\.parquet: column 'weight' has 1 {what} \(rows \[3\]"):
        load_tables(tmp_path)


def test_a_megabyte_of_lyrics_is_refused_by_row_and_shown_short(tmp_path):
    catalog = _catalog()
    catalog.loc[2, "lyrics"] = "la " * 350_000
    _folder(tmp_path, catalog)
    with pytest.raises(DatasetError, match=rf"column 'lyrics' has 1 value\(s\) over {MAX_TEXT_CHARS:,} characters "
                                           r"\(rows \[2\]\); expected at most") as error:
        load_tables(tmp_path)
    assert len(str(error.value)) < 300


def test_lyrics_that_are_bytes_or_invalid_utf8_are_refused_by_row(tmp_path):
    catalog = _catalog()
    lyrics = pa.array([b"fine", b"\xff\xfe not utf-8", b"ok", b"ok", b"\xc3", b"ok"], type=pa.binary())
    table = pa.Table.from_pandas(catalog.drop(columns="lyrics"), preserve_index=False)
    _folder(tmp_path)
    pq.write_table(table.append_column("lyrics", lyrics), tmp_path / "catalog.parquet")
    with pytest.raises(DatasetError, match=r"column 'lyrics' has 6 value\(s\) that are not UTF-8 text \(rows \[0, 1, 2, 3, 4, \.\.\.\]"):
        load_tables(tmp_path)
    # The same bytes in a column declared as text: read as bytes, only the invalid rows are named.
    text = lyrics.view(pa.string())
    pq.write_table(table.append_column("lyrics", text), tmp_path / "catalog.parquet")
    with pytest.raises(DatasetError, match=r"column 'lyrics' has 2 value\(s\) that are not UTF-8 text \(rows \[1, 4\]"):
        load_tables(tmp_path)


def test_text_that_cannot_be_utf8_is_named_by_row():
    catalog = _catalog().astype({"title": object})  # pandas' own text type cannot hold it; plain objects can
    catalog.loc[1, "title"] = "bad \ud800 surrogate"
    problems = Problems()
    catalog_problems(catalog, problems)
    assert problems.found == ["catalog.parquet: column 'title' has 1 value(s) that are not UTF-8 text (rows [1], "
                              "e.g. ['bad \\ud800 surrogate']); expected text (str, valid UTF-8)"]


@pytest.mark.parametrize("table, column, value, what", [
    ("catalog", "song_id", None, "empty value"), ("catalog", "song_id", "", "empty string"),
    ("catalog", "artist", None, "empty value"), ("catalog", "title", np.nan, "empty value"),
    ("catalog", "lyrics", None, "empty value"), ("catalog", "tags", None, "value\\(s\\) that are not lists"),
    ("catalog", "duration_s", np.nan, "empty value"), ("interactions", "user_id", None, "empty value"),
    ("interactions", "user_id", "", "empty string"), ("interactions", "song_id", None, "empty value"),
    ("interactions", "position", np.nan, "empty value"),
])
def test_empty_fields_are_refused_by_file_column_and_row(tmp_path, table, column, value, what):
    tables = {"catalog": _catalog(), "interactions": _interactions()}
    tables[table][column] = tables[table][column].astype(object)
    tables[table].loc[1, column] = value
    _folder(tmp_path, tables["catalog"], tables["interactions"])
    with pytest.raises(DatasetError, match=rf"{table}\.parquet: column '{column}' has 1 {what}.* \(rows \[1\]"):
        load_tables(tmp_path)


def test_split_tables_with_unknown_users_and_songs_are_refused(tmp_path):
    train = _interactions()[["user_id", "song_id", "weight"]]
    test = pd.DataFrame({"user_id": ["u0", "stranger"], "song_id": ["nowhere", "s1"], "weight": [1.0, 1.0]})
    _folder(tmp_path, splits={"train": train, "val": train.iloc[:0], "test": test})
    with pytest.raises(DatasetError) as error:
        load_tables(tmp_path)
    message = str(error.value)
    assert "splits/test.parquet: column 'song_id' has 1 song id(s) not in the catalog (rows [0], e.g. ['nowhere'])" in message
    assert "splits/test.parquet: column 'user_id' has 1 user id(s) not in interactions.parquet (rows [1], e.g. ['stranger'])" in message


def test_many_bad_rows_give_a_short_message(tmp_path):
    interactions = pd.concat([_interactions()] * 400, ignore_index=True)
    interactions["weight"] = -1.0
    interactions["song_id"] = [f"ghost-{i}" for i in range(len(interactions))]
    _folder(tmp_path, interactions=interactions, splits={"train": _interactions()[["user_id", "song_id", "weight"]]})
    with pytest.raises(DatasetError, match=r"3600 value\(s\) out of range \(rows \[0, 1, 2, 3, 4, \.\.\.\]") as error:
        load_tables(tmp_path)
    assert len(str(error.value)) < 800


def test_a_missing_or_unreadable_table_is_one_problem_among_the_others(tmp_path):
    interactions = _interactions()
    interactions.loc[0, "weight"] = np.nan
    _folder(tmp_path, interactions=interactions)
    (tmp_path / "splits" / "val.parquet").unlink()
    (tmp_path / "splits" / "meta.json").write_text("[1, 2")
    with pytest.raises(DatasetError) as error:
        load_tables(tmp_path)
    message = str(error.value)
    assert "3 problems" in message
    for part in ("column 'weight' has 1 empty", "splits/val.parquet: file not found", "splits/meta.json: missing or not valid JSON"):
        assert part in message


# ---- generated bad tables -------------------------------------------------------------------------
cells = st.one_of(
    st.none(), st.just(""), st.text(max_size=6), st.binary(max_size=6), st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True), st.just("x" * (MAX_TEXT_CHARS + 1)),
)


def _write(df: pd.DataFrame, path: Path) -> bool:
    """Write `df` as parquet if pyarrow can (a column of mixed kinds cannot be); False when it cannot."""
    try:
        df.to_parquet(path)
    except (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeEncodeError):
        return False
    return True


def _holds(catalog: pd.DataFrame, interactions: pd.DataFrame) -> None:
    """What a loaded folder promises its readers."""
    assert catalog["song_id"].map(lambda s: isinstance(s, str) and s != "").all() and catalog["song_id"].is_unique
    assert interactions["song_id"].isin(set(catalog["song_id"])).all()
    weights = interactions["weight"].to_numpy(np.float64)
    assert np.isfinite(weights).all() and (weights > 0).all()
    assert catalog["lyrics"].map(lambda t: isinstance(t, str) and len(t) <= MAX_TEXT_CHARS).all()


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(["catalog", "interactions", "train"]), data=st.data())
def test_generated_bad_cells_are_refused_naming_the_file_or_the_folder_loads_sound(tmp_path, table, data):
    tables = {"catalog": _catalog(), "interactions": _interactions()}
    tables["train"] = tables["interactions"][["user_id", "song_id", "weight"]].copy()
    target = tables[table]
    for _ in range(data.draw(st.integers(1, 3))):
        column = data.draw(st.sampled_from(list(target.columns)))
        row = data.draw(st.integers(0, len(target) - 1))
        target[column] = target[column].astype(object)
        target.at[row, column] = data.draw(cells)
    if data.draw(st.booleans()):
        target.drop(columns=data.draw(st.sampled_from(list(target.columns))), inplace=True)
    root = tmp_path / f"case-{data.draw(st.integers(0, 10**9))}"
    _folder(root)
    file = {"catalog": "catalog.parquet", "interactions": "interactions.parquet", "train": "splits/train.parquet"}[table]
    if not _write(target, root / file):
        event("pyarrow cannot write it")
        return
    try:
        loaded = load_tables(root)
    except DatasetError as error:
        event("refused")
        message = str(error)
        assert message.startswith(str(root)) and "\n" not in message
        # A changed catalog id leaves the interactions naming a song the catalog no longer lists: those are refused.
        assert file in message or (table == "catalog" and "not in the catalog" in message)
        return
    event("loaded")
    _holds(loaded.catalog, loaded.interactions)
    _holds(loaded.catalog, loaded.splits["train"])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(weights=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=9),
       ids=st.lists(st.sampled_from(["s0", "s1", "s2", "", "s9"]), min_size=1, max_size=9))
def test_write_tables_refuses_or_writes_only_sound_tables(tmp_path_factory, weights, ids):
    n = min(len(weights), len(ids))
    interactions = pd.DataFrame({"user_id": "u0", "song_id": ids[:n], "weight": weights[:n], "position": range(n)})
    root = tmp_path_factory.mktemp("w")
    try:
        written = write_tables(root, _catalog(3), interactions)
    except DatasetError as error:
        assert "interactions.parquet: column" in str(error)
        assert not (root / "interactions.parquet").exists()
        return
    _holds(written.catalog, written.interactions)
    assert all(math.isfinite(w) and w > 0 for w in weights[:n])


def test_an_entry_point_refuses_such_a_folder_in_one_line_naming_both_problems(tmp_path, capsys):
    """What every entry point does with the opened folder (`tests/test_cli_errors.py` runs them whole)."""
    catalog = pd.concat([_catalog(), _catalog().iloc[[1]]], ignore_index=True)
    interactions = _interactions()
    interactions.loc[2, "weight"] = np.nan
    _folder(tmp_path / "bad", catalog, interactions)
    with pytest.raises(SystemExit) as exit_:
        run_entry_point(lambda argv: SongDataset(argv[0]), [str(tmp_path / "bad")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / 'bad'}: 2 problems: ")
    assert "catalog.parquet: column 'song_id' has 1 duplicate" in err and "column 'weight' has 1 empty" in err
