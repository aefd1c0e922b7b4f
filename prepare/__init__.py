"""Building dataset folders (what `prepare_data.py` drives): the demo world and the importers of public data sets."""
