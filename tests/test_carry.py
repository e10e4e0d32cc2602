"""Issue 15: every generation path continues a take from a Carry, block after block, and the
blocks together are exactly the take one call makes (same draws, same samples), so long takes
can stream to disk without changing a sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noizenet.models import Carry, ModelSpec, NoizeNet, kernel_of, weight_arrays
from noizenet.models.samplernn import SampleRNNSpec
from noizenet.models.samplernn_net import SampleRNN
from noizenet.sampling import Injection, Sampling

BLOCKS = (7, 1, 13, 19)  # uneven, one of a single step; sums to N
N = sum(BLOCKS)


def in_blocks(path, forced, sampling_for, *, exact=True):
    """The take in one call, and the same take in BLOCKS with a carry (draws sliced per block)."""
    _, whole = path(forced, N, sampling_for(0, N))
    carry, parts, start = Carry(), [], 0
    for n in BLOCKS:
        _, out = path(forced, n, sampling_for(start, n), carry=carry)
        parts.append(out)
        start += n
    assert carry.steps == N
    return whole, np.concatenate(parts, axis=1)


def flat_model(levels: int, cell: str = "lstm", hidden: int = 10) -> NoizeNet:
    torch.manual_seed(1)
    return NoizeNet(ModelSpec(cell=cell, hidden=hidden, layers=2, levels=levels)).eval()


@pytest.mark.parametrize("schedule", ["per-stream", "split", "blas"])
@pytest.mark.parametrize("which", ["kernel", "reference"])
def test_categorical_blocks_equal_one_call_with_a_temperature_schedule(schedule, which):
    model = flat_model(16)
    rng = np.random.default_rng(0)
    B = 3
    forced = rng.integers(0, 16, (B, 9))
    uniforms = rng.random((B, N))
    temps = (np.array([1.3, 0.9, 0.5]), np.array([0.4, 1.1, 1.5]))

    def sampling_for(start, n):
        return Sampling(temperature=temps, top_p=0.95, uniforms=uniforms[:, start : start + n],
                        level_values=np.linspace(-1, 1, 16), span=N)  # fmt: skip

    if which == "kernel":
        from noizenet.models.flat import FlatKernel

        path = FlatKernel(model.spec, weight_arrays(model), path=schedule).run
    else:
        if schedule != "per-stream":
            pytest.skip("the reference has one schedule")
        path = model.reference
    whole, blocks = in_blocks(path, forced, sampling_for)
    np.testing.assert_array_equal(blocks, whole)
    assert len(np.unique(whole)) > 3


@pytest.mark.parametrize("inject", ["periodic:5", "stall:4:0.3:0.5", "none"])
@pytest.mark.parametrize("schedule", ["per-stream", "split", "blas", "reference"])
def test_regression_blocks_equal_one_call_with_injection(inject, schedule):
    model = flat_model(0, cell="gru")
    rng = np.random.default_rng(2)
    B = 2
    forced = rng.standard_normal((B, 11)).astype(np.float32)
    noise = rng.standard_normal((B, N)).astype(np.float32)
    injection = Injection.parse(inject)

    def sampling_for(start, n):
        return Sampling(injection=injection, noise=noise[:, start : start + n])

    if schedule == "reference":
        path = model.reference
    else:
        from noizenet.models.flat import FlatKernel

        path = FlatKernel(model.spec, weight_arrays(model), path=schedule).run
    whole, blocks = in_blocks(path, forced, sampling_for)
    np.testing.assert_array_equal(blocks, whole)


def srnn(frame_sizes=(8, 2), cell="lstm") -> SampleRNN:
    torch.manual_seed(4)
    spec = SampleRNNSpec(frame_sizes=frame_sizes, cell=cell, hidden=12, mlp_hidden=10,
                         embedding=4, levels=16)  # fmt: skip
    model = SampleRNN(spec)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


@pytest.mark.parametrize("frame_sizes", [(8, 2), (4,), (6, 3)])
@pytest.mark.parametrize("which", ["kernel", "reference"])
def test_samplernn_blocks_equal_one_call_across_frame_boundaries(frame_sizes, which):
    model = srnn(frame_sizes)
    rng = np.random.default_rng(3)
    B = 3
    forced = rng.integers(0, 16, (B, 2 * frame_sizes[0] + 3))  # not whole frames
    uniforms = rng.random((B, N))
    temps = (np.array([1.2, 0.8, 1.0]), np.array([0.6, 1.3, 1.0]))

    def sampling_for(start, n):
        return Sampling(temperature=temps, top_p=0.9, uniforms=uniforms[:, start : start + n],
                        level_values=np.linspace(-1, 1, 16), span=N)  # fmt: skip

    path = kernel_of(model).run if which == "kernel" else model.reference
    whole, blocks = in_blocks(path, forced, sampling_for)
    np.testing.assert_array_equal(blocks, whole)
    assert len(np.unique(whole)) > 3


@pytest.mark.parametrize("schedule", ["per-stream", "blas", "reference"])
def test_vector_regression_blocks_equal_one_call(schedule):
    """FFT codecs: a vector per step; the stall window holds vectors."""
    torch.manual_seed(2)
    model = NoizeNet(ModelSpec(cell="lstm", hidden=8, layers=1, in_dim=3, out_dim=3)).eval()
    rng = np.random.default_rng(4)
    forced = rng.standard_normal((2, 6, 3)).astype(np.float32)
    noise = rng.standard_normal((2, N, 3)).astype(np.float32)
    injection = Injection.parse("stall:3:0.5:0.2")

    def sampling_for(start, n):
        return Sampling(injection=injection, noise=noise[:, start : start + n])

    if schedule == "reference":
        path = model.reference
    else:
        from noizenet.models.flat import FlatKernel

        path = FlatKernel(model.spec, weight_arrays(model), path=schedule).run
    whole, blocks = in_blocks(path, forced, sampling_for)
    assert whole.shape == (2, N, 3)
    np.testing.assert_array_equal(blocks, whole)
