"""The flat family's kernels: combinations of head, schedule and depth the other tests leave out.

test_generate.py and test_codecs_beyond.py check both heads against the PyTorch reference at two
layers; here one and three layers, a categorical head wide enough that the split schedule splits
its product across the cores, and state carried across calls by the categorical head.
"""

import numpy as np
import pytest
import torch

from noizenet.models import ModelSpec, NoizeNet, kernel_of
from noizenet.models.flat_kernels import run, run_categorical
from noizenet.models.flat_reference import reference_categorical, reference_run
from noizenet.sampling import Injection

SCHEDULES = [("per-stream", 3), ("split", 2), ("blas", 5)]
LEVELS = 80  # a wide head: the split schedule hands its product to every core


def categorical_model(layers: int) -> NoizeNet:
    torch.manual_seed(0)
    spec = ModelSpec(cell="lstm", hidden=12, layers=layers, levels=LEVELS, embedding=5)
    return NoizeNet(spec).eval()


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("path, streams", SCHEDULES)
def test_categorical_kernel_matches_pytorch_at_one_and_three_layers(layers, path, streams):
    model = categorical_model(layers)
    rng = np.random.default_rng(3)
    forced = rng.integers(0, LEVELS, (streams, 20))
    u = rng.random((streams, 80))
    lv = np.linspace(-1, 1, LEVELS)
    temps = (np.full(streams, 1.2), np.full(streams, 0.6))
    p1, o1, _ = run_categorical(
        kernel_of(model).weights, forced, 80, level_values=lv, temperature=temps, top_p=0.9,
        uniforms=u, path=path,
    )  # fmt: skip
    p2, o2 = reference_categorical(
        model, forced, 80, level_values=lv, temperature=temps, top_p=0.9, uniforms=u
    )
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_array_equal(o1, o2)


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("path, streams", SCHEDULES)
def test_regression_kernel_matches_pytorch_at_one_and_three_layers(layers, path, streams):
    torch.manual_seed(0)
    model = NoizeNet(ModelSpec(cell="gru", hidden=12, layers=layers)).eval()
    rng = np.random.default_rng(4)
    forced = rng.standard_normal((streams, 20)).astype(np.float32)
    noise = rng.standard_normal((streams, 120)).astype(np.float32)
    injection = Injection.parse("stall:4:0.2:0.5")
    p1, o1, _ = run(
        kernel_of(model).weights, forced, 120, injection=injection, noise=noise, path=path
    )
    p2, o2 = reference_run(model, forced, 120, injection=injection, noise=noise)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_allclose(o1, o2, atol=1e-5)


@pytest.mark.parametrize("path, streams", SCHEDULES)
def test_categorical_state_continues_across_calls(path, streams):
    """Priming in two calls, the state passed on, samples what priming in one call does."""
    w = kernel_of(categorical_model(2)).weights
    rng = np.random.default_rng(5)
    forced = rng.integers(0, LEVELS, (streams, 40))
    u = rng.random((streams, 30))
    lv = np.linspace(-1, 1, LEVELS)
    whole, free, end = run_categorical(w, forced, 30, level_values=lv, uniforms=u, path=path)
    a, _, state = run_categorical(w, forced[:, :15], 0, level_values=lv, path=path)
    b, free2, state = run_categorical(
        w, forced[:, 15:], 30, level_values=lv, uniforms=u, state=state, path=path
    )
    np.testing.assert_allclose(np.concatenate([a, b], 1), whole, atol=1e-6)
    np.testing.assert_array_equal(free2, free)
    np.testing.assert_allclose(state[0], end[0], atol=1e-6)  # h
    np.testing.assert_allclose(state[1], end[1], atol=1e-6)  # c


@pytest.mark.parametrize("levels", [0, 16])
def test_kernel_weights_start_on_a_cache_line(levels):
    """Where numpy's 16-byte-aligned weights fell swung a kernel's speed by up to 20% from one
    process to the next; the kernels' weights are laid out on 64-byte boundaries."""
    import dataclasses

    from noizenet.models import weight_arrays
    from noizenet.models.flat_kernels import CACHE_LINE, kernel_weights

    spec = ModelSpec(cell="gru", hidden=12, layers=2, levels=levels)
    w = kernel_weights(spec, weight_arrays(NoizeNet(spec).eval()))
    arrays = [getattr(w, f.name) for f in dataclasses.fields(w) if f.name != "cell"]
    for a in arrays:
        assert a.dtype == np.float32 and a.flags.c_contiguous
        assert a.size == 0 or a.ctypes.data % CACHE_LINE == 0
