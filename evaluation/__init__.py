"""Ranking evaluation, leaderboards and reports.

Importing the package asks torch to back its large CPU tensors with transparent huge pages
(`THP_MEM_ALLOC_ENABLE`, unless already set), as numpy does by default. The evaluator's score buffer
and the chunks that scorers allocate themselves are 16 MiB or more; in 4 KiB pages the evaluation was
1.1-1.4x slower (Intel Xeon, 16 MiB chunks; benchmarks/README.md). torch reads the variable at its first
allocation, so it only takes effect where this package is imported before torch, as in evaluate.py,
evaluate_seeds.py and tune.py; elsewhere it changes nothing. Where dense scores come from oneDNN
(`recommenders.scoring`), huge pages let them come in wider chunks.
"""

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
