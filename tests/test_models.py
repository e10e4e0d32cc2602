import numpy as np
import pytest
import torch

from noizenet.models import ModelSpec, NoizeNet
from noizenet.models.state import detach, reset_streams


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_chunked_stateful_forward_equals_whole_sequence(cell):
    torch.manual_seed(0)
    model = NoizeNet(ModelSpec(cell=cell, hidden=12, layers=2, dropout=0.5)).eval()
    x = torch.randn(3, 100, 1)
    whole, _ = model(x)
    state, parts = None, []
    for s in range(0, 100, 17):
        y, state = model(x[:, s : s + 17], state)
        state = detach(state)
        parts.append(y)
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_step_equals_forward(cell):
    torch.manual_seed(1)
    model = NoizeNet(ModelSpec(cell=cell, hidden=6)).eval()
    x = torch.randn(2, 20, 1)
    whole, _ = model(x)
    state = None
    for t in range(20):
        y, state = model.step(x[:, t], state)
        torch.testing.assert_close(y, whole[:, t], atol=1e-6, rtol=1e-5)


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = NoizeNet(ModelSpec(hidden=32, dropout=0.5))
    x = torch.randn(1, 50, 1)
    a, _ = model(x)
    b, _ = model(x)
    assert not torch.allclose(a, b)
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0])


def test_reset_streams_zeroes_only_flagged_streams():
    h = torch.ones(2, 3, 4)
    state = {"h": h, "c": h.clone(), "z": torch.ones(3, 5)}  # streams on axis 1, 1 and 0
    state = reset_streams(state, torch.tensor([False, True, False]), {"h": 1, "c": 1, "z": 0})
    for s in (state["h"], state["c"]):
        assert s[:, 1].abs().sum() == 0 and s[:, 0].abs().sum() == 8
    assert state["z"][1].abs().sum() == 0 and state["z"][0].abs().sum() == 5


def test_shapes():
    model = NoizeNet(ModelSpec(cell="gru", hidden=5, layers=3))
    y, state = model(torch.zeros(4, 7, 1))
    assert y.shape == (4, 7, 1) and set(state) == {"h"} and state["h"].shape == (3, 4, 5)
    assert np.prod(model.init_state(4)["h"].shape) == 3 * 4 * 5


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.99])
def test_cpu_output_dropout_keeps_the_asked_share_and_the_expected_value(p):
    """The mask comes from raw 16-bit draws: each unit kept with probability 1 - p (to within
    8e-6) and scaled so that the mean output is the input."""
    drop = NoizeNet(ModelSpec(hidden=8, dropout=p)).drop.train()
    x = torch.ones(64, 256, 50)
    torch.manual_seed(0)
    y = drop(x)
    kept = (y != 0).double().mean().item()
    sd = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(kept - (1 - p)) < 5 * sd
    assert abs(y.double().mean().item() - 1.0) < 5 * sd / (1 - p)
    assert torch.all((y == 0) | ((y * (1 - p) - 1).abs() < 1e-3))  # 65536 / k ~ 1 / (1 - p)
    # no unit is dropped more often than another: every position of the 4 lanes of a word
    lanes = (y == 0).reshape(-1, 4).double().mean(0)
    assert torch.all((lanes - p).abs() < 5 * (p * (1 - p) / (x.numel() / 4)) ** 0.5)
    # the same seed, the same mask
    torch.manual_seed(0)
    torch.testing.assert_close(drop(x), y)
