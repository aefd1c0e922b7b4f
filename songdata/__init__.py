"""The dataset folder: its format, validation, splits, shards and interaction matrices (the only reader of the folder)."""
