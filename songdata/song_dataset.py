"""`SongDataset`: one dataset folder, opened once; every layer receives this object, never a path."""

from __future__ import annotations

import logging
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from songdata.dataset import SPLIT_NAMES, DatasetError, DatasetTables, load_tables
from songdata.interactions import InteractionData, similarity_matrix
from songdata.shards import INDEX, iter_shard_songs, read_index, shard_dir

log = logging.getLogger(__name__)


class SongDataset:
    """A validated dataset folder (layout in `songdata.dataset`) and everything read from it.

    Tables are read and validated when it is opened; the interaction matrices and the similarity
    matrix are built on first use and kept.

    Args:
        root: The dataset folder (built by `prepare_data.py`).
        require_splits: Fail unless `splits/` is there (training needs none; evaluation does).
        shard_url_template: Where its shards are read from instead of the folder: a URL with `{name}`
            for the shard file name, e.g. `/scratch/set/{name}` or `pipe:aws s3 cp s3://bucket/set/{name} -`.
            The index (`shards/index.json`) is always read from the folder.
        split_names: The splits to read (tuning reads train and val only: test stays unopened).
    """

    def __init__(
        self, root: str | Path, require_splits: bool = True, shard_url_template: str | None = None,
        split_names: tuple[str, ...] = SPLIT_NAMES,
    ) -> None:
        self.root = Path(root)
        self.tables: DatasetTables = load_tables(self.root, require_splits, split_names)
        self.shard_url_template = shard_url_template
        self.has_audio = (shard_dir(self.root) / INDEX).exists()
        self.shard_index: dict = read_index(self.root) if self.has_audio else {"splits": {}}

    def __repr__(self) -> str:
        return f"SongDataset({str(self.root)!r}, {len(self.catalog)} songs, audio={self.has_audio})"

    @property
    def name(self) -> str:
        """The folder's name, which names reports and runs (`reports/<name>`)."""
        return self.root.resolve().name

    @property
    def catalog(self) -> pd.DataFrame:
        """The catalog table; row i is song index i everywhere."""
        return self.tables.catalog

    @property
    def splits(self) -> dict[str, pd.DataFrame] | None:
        """The train/val/test interaction tables (None when the folder has no `splits/`)."""
        return self.tables.splits

    @cached_property
    def similarity(self) -> sp.csr_matrix | None:
        """Symmetric song × song CSR of `similarity.parquet` (None without one), built once."""
        if self.tables.similarity is None:
            return None
        return similarity_matrix(self.tables.similarity, pd.Index(self.catalog["song_id"]))

    @cached_property
    def interactions(self) -> InteractionData:
        """The user × song CSR matrices of the splits, histories and cold songs, built once."""
        if self.splits is None:
            raise DatasetError(f"{self.root}: no splits/ folder; build one with `prepare_data.py`")
        return InteractionData.from_tables(self.tables, self.similarity, songs=self)

    # ---- audio shards ---------------------------------------------------------------------
    @property
    def shard_splits(self) -> list[str]:
        """The splits the shards are cut into (train/val/test), empty without audio."""
        return list(self.shard_index["splits"])

    def num_samples(self, split: str) -> int:
        """Songs in the shards of a split."""
        return sum(entry["count"] for entry in self.shard_index["splits"].get(split, []))

    def _urls(self, splits: Iterable[str]) -> list[str]:
        names = [e["url"] for split in splits for e in self.shard_index["splits"].get(split, []) if e["count"] > 0]
        if self.shard_url_template:
            return [self.shard_url_template.format(name=name) for name in names]
        return [str(shard_dir(self.root) / name) for name in names]

    def shard_urls(self, split: str) -> list[str]:
        """Shard URLs of a split; local shards are checked so that a missing one is named up front."""
        urls = self._urls([split])
        if not self.shard_url_template:
            for url in urls:
                if not tarfile.is_tarfile(url):
                    raise FileNotFoundError(f"{url}: shard missing or not a tar file")
        return urls

    def shard_songs(self, split: str) -> np.ndarray:
        """Catalog indices of the songs in a split's local shards (sample keys are catalog indices), undecoded.

        Member names are untrusted: a `.json` member not named `<catalog row>.json`, or a shard that is
        not a readable tar file, is refused naming the shard."""
        indices = []
        for url in self.shard_urls(split):
            try:
                with tarfile.open(url) as tar:
                    names = [name for name in tar.getnames() if name.endswith(".json")]
            except (tarfile.TarError, OSError, EOFError) as error:
                raise DatasetError(f"{url}: not a readable tar file ({type(error).__name__})") from error
            for name in names:
                stem = Path(name).stem
                if not (stem.isascii() and stem.isdigit()) or int(stem) >= len(self.catalog):
                    raise DatasetError(f"{url}: member {name[:60]!r} is not <catalog row>.json "
                                       f"(a row of the {len(self.catalog)}-song catalog)")
                indices.append(int(stem))
        return np.unique(np.asarray(indices, dtype=np.int64))

    def iter_songs(
        self, ids: Iterable[int] | None = None, skipped: Counter | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(song index, full 16 kHz waveform) of every decodable song in the shards (or only of `ids`).

        Shards are read in order, not by song: iterate once. What cannot be read is skipped, logged and
        counted by reason in `skipped` (see `songdata.shards.iter_shard_songs`).
        """
        if not self.has_audio:
            raise DatasetError(f"{self.root}: no audio shards (shards/index.json); nothing to read songs from")
        wanted = None if ids is None else {int(i) for i in ids}
        yield from iter_shard_songs(self._urls(self.shard_index["splits"]), self.root, skipped, wanted, len(self.catalog))
