"""Dot-product scores of users against songs, on the faster of torch's two float32 CPU kernels.

MKL, torch's BLAS on x86, runs generic kernels on other vendors' CPUs. oneDNN, also inside torch,
picks its kernels by instruction set: on an AMD EPYC Zen 5 it fills a [users, songs] chunk of scores
1.6-3.5x faster than MKL (64 factors, 64 to 2,684 users, 50k and 1M songs; benchmarks/README.md).
From a few dozen users up and up to 128 factors the two give bit-identical products (tests/test_scoring.py);
with more factors, or a handful of users (MKL then takes another path), some differ in the last bit.
oneDNN's op (`torch.ops.mkldnn._linear_pointwise`, what torch's compiler runs for a CPU linear layer)
writes a fresh tensor; the evaluator's chunks are sized for it, with or without transparent huge pages
(`evaluation.evaluator.score_budget_bytes`). So scores come from oneDNN where MKL runs on another
vendor's CPU, and from `torch.mm` everywhere else.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch


def dot_scores(
    queries: torch.Tensor, keys: torch.Tensor, out: torch.Tensor | None = None, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """queries @ keys.T + bias: float32 [n_queries, n_keys].

    Written into `out` by torch's BLAS, or returned as a fresh tensor from oneDNN where that kernel is
    the faster one (`out` is then left untouched), as `Recommender.score` allows.

    Args:
        queries: [n_queries, d] user vectors.
        keys: [n_keys, d] song vectors.
        out: Optional [n_queries, n_keys] float32 buffer for the BLAS path.
        bias: Optional [n_keys] per-song term added to every row.
    """
    if _onednn_applies(queries, keys, bias):
        return torch.ops.mkldnn._linear_pointwise(queries.contiguous(), keys.contiguous(), bias, "none", [], "")
    scores = torch.mm(queries, keys.T, out=out)
    return scores if bias is None else scores.add_(bias)


def _onednn_applies(queries: torch.Tensor, keys: torch.Tensor, bias: torch.Tensor | None) -> bool:
    tensors = [queries, keys] + ([] if bias is None else [bias])
    return (
        prefer_onednn()
        and queries.numel() > 0
        and keys.numel() > 0
        and all(t.device.type == "cpu" and t.dtype == torch.float32 and not t.requires_grad for t in tensors)
    )


@functools.cache
def prefer_onednn() -> bool:
    """Whether dense scores go through oneDNN: torch's BLAS is MKL on another vendor's CPU and torch has
    oneDNN's op."""
    return mkl_on_other_vendor() and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@functools.cache
def fresh_tensors_on_huge_pages() -> bool:
    """Whether a fresh 4 MiB tensor is backed by a transparent huge page (Linux; False elsewhere).

    Asked of the kernel rather than read from THP_MEM_ALLOC_ENABLE: torch reads that variable once, at
    its first large allocation, which may precede whoever set it.
    """
    smaps = Path("/proc/self/smaps")
    if not smaps.exists():
        return False
    probe = torch.ones(4 << 20, dtype=torch.uint8)
    address, inside = probe.data_ptr(), False
    with smaps.open() as lines:
        for line in lines:
            head = line.split(maxsplit=1)[0]
            if not head.endswith(":"):  # a mapping's first line: "start-end perms offset ..."
                start, end = (int(bound, 16) for bound in head.split("-"))
                inside = start <= address < end
            elif inside and head == "AnonHugePages:":
                return int(line.split()[1]) > 0
    return False


def mkl_on_other_vendor() -> bool:
    """Whether torch's BLAS is MKL and the CPU is not Intel's."""
    return "BLAS_INFO=mkl" in torch.__config__.show() and "GenuineIntel" not in _cpu_description()


def _cpu_description() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.read_text(errors="replace") if cpuinfo.exists() else platform.processor()
