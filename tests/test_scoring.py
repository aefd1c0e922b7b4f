"""Dot-product scores: both of torch's CPU kernels give the same scores, and each is used where it should be."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recommenders import scoring
from recommenders.scoring import dot_scores


@pytest.fixture(params=[True, False], ids=["onednn", "blas"])
def kernel(request, monkeypatch):
    if request.param and not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        pytest.skip("this torch has no oneDNN")
    monkeypatch.setattr(scoring, "prefer_onednn", lambda: request.param)
    return request.param


@pytest.mark.parametrize("dim", [8, 64, 128, 256])
def test_dot_scores_match_the_reference_product_with_and_without_bias(kernel, dim):
    generator = torch.Generator().manual_seed(dim)
    users, songs, bias = (torch.randn(shape, generator=generator) for shape in [(37, dim), (501, dim), (501,)])
    expected = users.double() @ songs.double().T
    plain, biased = dot_scores(users, songs), dot_scores(users, songs, bias=bias)
    assert plain.dtype == torch.float32 and plain.shape == (37, 501)
    assert torch.allclose(plain.double(), expected, rtol=0, atol=1e-4 * dim**0.5)
    assert torch.allclose(biased.double(), expected + bias.double(), rtol=0, atol=1e-4 * dim**0.5)
    if dim <= 128:  # a few dozen users, up to 128 factors: both kernels sum in one order
        assert torch.equal(plain, torch.mm(users, songs.T))
        assert torch.equal(biased, torch.mm(users, songs.T).add_(bias))


def test_blas_writes_into_out_and_onednn_leaves_it_untouched(kernel):
    generator = torch.Generator().manual_seed(0)
    users, songs = torch.randn(5, 16, generator=generator), torch.randn(40, 16, generator=generator)
    out = torch.full((5, 40), 7.0)
    scores = dot_scores(users, songs, out)
    assert torch.allclose(scores, torch.mm(users, songs.T), rtol=0, atol=1e-5)
    assert (scores.data_ptr() == out.data_ptr()) is not kernel
    assert kernel is False or bool((out == 7.0).all())


def test_tensors_that_need_gradients_or_are_empty_take_the_blas_path(monkeypatch):
    monkeypatch.setattr(scoring, "prefer_onednn", lambda: True)
    generator = torch.Generator().manual_seed(0)
    songs = torch.randn(40, 16, generator=generator)
    users = torch.randn(5, 16, generator=generator).requires_grad_()
    scores = dot_scores(users, songs)
    scores.sum().backward()  # torch.mm's product: gradients flow
    assert torch.allclose(users.grad, songs.sum(0).expand(5, 16), rtol=0, atol=1e-5)
    assert dot_scores(torch.empty(0, 16), songs).shape == (0, 40)


@pytest.mark.parametrize(("blas", "cpu", "onednn"), [
    ("BLAS_INFO=mkl", "vendor_id : GenuineIntel", False),
    ("BLAS_INFO=mkl", "vendor_id : AuthenticAMD", True),  # MKL's generic kernels: oneDNN is faster
    ("BLAS_INFO=open", "vendor_id : AuthenticAMD", False),
])
def test_onednn_is_preferred_only_where_mkl_runs_on_another_vendors_cpu(monkeypatch, blas, cpu, onednn):
    monkeypatch.setattr(torch.__config__, "show", lambda: f"  - {blas}, BUILD_TYPE=Release")
    monkeypatch.setattr(scoring, "_cpu_description", lambda: cpu)
    scoring.prefer_onednn.cache_clear()
    try:
        assert scoring.prefer_onednn() is (onednn and torch.backends.mkldnn.is_available())
    finally:
        scoring.prefer_onednn.cache_clear()


THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.mark.skipif(not THP_MODE.exists() or "[never]" in THP_MODE.read_text(), reason="no transparent huge pages")
@pytest.mark.parametrize("variable", ["1", "0"])
def test_huge_pages_are_read_from_the_kernel_as_torch_got_them(variable):
    probe = (  # the module alone, not the package (whose other recommenders take seconds to import)
        "import importlib.util as u; "
        f"spec = u.spec_from_file_location('scoring', {scoring.__file__!r}); module = u.module_from_spec(spec); "
        "spec.loader.exec_module(module); print(module.fresh_tensors_on_huge_pages())"
    )
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": variable}
    answer = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    expected = variable == "1" or "[always]" in THP_MODE.read_text()
    assert answer.stdout.strip() == str(expected)
