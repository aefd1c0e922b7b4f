"""Importers: turn public music data sets and local manifests into dataset folders (see `prepare_data.py`)."""
