"""The dataset folder: its format, validation, splits, shards and interaction matrices (the only reader of the folder).

Open a folder once as a `SongDataset` and hand that object on; nothing else reads the folder by path.
"""

from songdata.dataset import DatasetError
from songdata.interactions import InteractionData
from songdata.song_dataset import SongDataset

__all__ = ["DatasetError", "InteractionData", "SongDataset"]
