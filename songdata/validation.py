"""Column checks for untrusted tables that record every problem instead of stopping at the first.

A folder someone else built may break its layout in several places at once; naming them all in one
error saves the user a fix-and-retry loop per problem. Each problem names the file, the column, how many
rows break it, the first rows (counted from 0 in file order) and values, and what was expected.
Checks are vectorised: an interactions table has tens of millions of rows.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MAX_EXAMPLES = 5
MAX_TEXT_CHARS = 100_000  # the longest song lyrics run to ~20k characters; more is not lyrics


class Problems:
    """The problems found in the tables of one dataset folder, in the order they were found."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.found)

    def add(self, file: str, message: str) -> None:
        self.found.append(f"{file}: {message}")

    def add_rows(self, file: str, column: str, bad: np.ndarray, what: str, expected: str,
                 values: pd.Series | None = None) -> None:
        """Record that the rows where `bad` is true have `what` wrong (with a few of their `values`)."""
        rows = np.flatnonzero(bad)
        if not len(rows):
            return
        shown = rows[:MAX_EXAMPLES].tolist()
        message = f"column '{column}' has {len(rows)} {what} (rows {_listed(shown, len(rows))}"
        if values is not None:
            message += f", e.g. {_listed([_short(v) for v in values.iloc[shown]], len(rows))}"
        self.add(file, f"{message}); expected {expected}")

    def message(self, root: object) -> str:
        """One line naming every problem (the CLI prints it as is)."""
        if len(self.found) == 1:
            return f"{root}: {self.found[0]}"
        return f"{root}: {len(self.found)} problems: " + "; ".join(self.found)


def _listed(items: list, total: int) -> str:
    return "[" + ", ".join(map(str, items)) + (", ...]" if total > len(items) else "]")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def has_columns(problems: Problems, file: str, df: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        problems.add(file, f"missing column(s) {missing}; expected columns {list(columns)}")
    return not missing


def check_text(problems: Problems, file: str, df: pd.DataFrame, column: str, *, allow_empty: bool) -> None:
    """Every value is a str encodable as UTF-8 (empty or not, as allowed) of at most MAX_TEXT_CHARS."""
    values = df[column]
    missing = values.isna().to_numpy()
    problems.add_rows(file, column, missing, "empty value(s) (null/NaN)", "text")
    if not _all_utf8_text(values[~missing]):
        not_text = ~missing & ~values.map(_is_utf8_text).to_numpy(bool)
        problems.add_rows(file, column, not_text, "value(s) that are not UTF-8 text", "text (str, valid UTF-8)",
                          values)
        text = ~missing & ~not_text
    else:
        text = ~missing
    lengths = values.where(text, "").str.len().to_numpy()
    if not allow_empty:
        problems.add_rows(file, column, text & (lengths == 0), "empty string(s)", "a non-empty id")
    problems.add_rows(file, column, lengths > MAX_TEXT_CHARS, f"value(s) over {MAX_TEXT_CHARS:,} characters",
                      f"at most {MAX_TEXT_CHARS:,} characters")


def _all_utf8_text(values: pd.Series) -> bool:
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return False
    try:
        pa.array(values, type=pa.string())
    except (UnicodeEncodeError, pa.ArrowException):
        return False
    return True


def _is_utf8_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def check_numbers(problems: Problems, file: str, df: pd.DataFrame, column: str, *, low: float, high: float = np.inf,
                  low_inclusive: bool, expected: str) -> None:
    """Every value is a finite number in [low, high] (or (low, high] when `low_inclusive` is false)."""
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64)
    not_number = np.isnan(values) & df[column].notna().to_numpy()
    problems.add_rows(file, column, not_number, "value(s) that are not numbers", expected, df[column])
    problems.add_rows(file, column, df[column].isna().to_numpy(), "empty value(s) (null/NaN)", expected)
    problems.add_rows(file, column, np.isinf(values), "infinite value(s)", expected, df[column])
    with np.errstate(invalid="ignore"):
        outside = ((values < low) if low_inclusive else (values <= low)) | (values > high)
    problems.add_rows(file, column, outside & np.isfinite(values), "value(s) out of range", expected, df[column])


def check_unique(problems: Problems, file: str, df: pd.DataFrame, column: str) -> None:
    duplicated = df[column].duplicated().to_numpy() & df[column].notna().to_numpy()
    problems.add_rows(file, column, duplicated, "duplicate id(s)", "each id once", df[column])


def check_known(problems: Problems, file: str, df: pd.DataFrame, column: str, known: Collection, what: str,
                where: str) -> None:
    """Every (present) id in `column` is one of `known` (`what` ids listed in `where`)."""
    values = df[column]
    unknown = ~_isin(values, known) & values.notna().to_numpy()
    problems.add_rows(file, column, unknown, f"{what} id(s) not in {where}", f"ids listed in {where}", values)


def _isin(values: pd.Series, known: Collection) -> np.ndarray:
    """`values.isin(known)`, through Arrow's hash lookup where both are text (pandas converts each
    Arrow string to a Python object first: 20 s instead of 1 s on millions of rows)."""
    try:
        found = pc.is_in(pa.array(values, from_pandas=True), value_set=pa.array(np.asarray(known, dtype=object),
                                                                               type=pa.string()))
    except (pa.ArrowException, TypeError, ValueError, UnicodeEncodeError):
        return values.isin(known).to_numpy()
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)
