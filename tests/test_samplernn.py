"""The samplernn family: its forward pass against its one-step reference path, causality,
state carried across chunks, the numba kernel against the reference, and the family functions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from noizenet.errors import ConfigError
from noizenet.models import kernel_of, samplernn
from noizenet.models.samplernn import SampleRNNSpec
from noizenet.models.samplernn_net import SampleRNN
from noizenet.sampling import Sampling

LEVELS = 16


def make(frame_sizes=(4,), cell="gru", layers=1, seed=0, **kw) -> SampleRNN:
    """A tiny model with weights large enough that every part matters to the output."""
    torch.manual_seed(seed)
    spec = SampleRNNSpec(frame_sizes=frame_sizes, cell=cell, layers=layers, hidden=12,
                         mlp_hidden=10, embedding=4, levels=LEVELS, **kw)  # fmt: skip
    model = SampleRNN(spec)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # learned initial states away from zero too
    return model.eval()


def padded(model: SampleRNN, forced: np.ndarray) -> torch.Tensor:
    """forced (B, T) preceded by the reference path's middle-level padding, as forward's x."""
    pad = np.full((forced.shape[0], model.lookback), LEVELS // 2)
    return torch.from_numpy(np.concatenate([pad, forced], 1)).float()[..., None]


def sampling(rng, B: int, n: int, **kw) -> Sampling:
    return Sampling(uniforms=rng.random((B, n)), level_values=np.linspace(-1, 1, LEVELS), **kw)


CASES = [((4,), "gru", 1), ((8, 2), "lstm", 2), ((8, 4, 2), "gru", 1), ((6, 3), "gru", 2)]


@pytest.mark.parametrize(("frame_sizes", "cell", "layers"), CASES)
def test_forward_agrees_with_the_one_step_reference(frame_sizes, cell, layers):
    model = make(frame_sizes, cell, layers)
    rng = np.random.default_rng(1)
    forced = rng.integers(0, LEVELS, (3, 4 * frame_sizes[0]))
    pred, _ = model.reference(forced, 0, sampling(rng, 3, 0))
    with torch.no_grad():
        logits, _ = model(padded(model, forced))
    expected = torch.softmax(logits.double(), -1).numpy() @ np.linspace(-1, 1, LEVELS)
    np.testing.assert_allclose(pred, expected, atol=1e-5)


@pytest.mark.parametrize(("frame_sizes", "cell", "layers"), CASES[:3])
def test_no_prediction_sees_its_own_or_a_later_sample(frame_sizes, cell, layers):
    model = make(frame_sizes, cell, layers)
    T = 4 * frame_sizes[0]
    x = torch.randint(
        0, LEVELS, (1, model.lookback + T, 1), generator=torch.Generator().manual_seed(2)
    ).float()
    with torch.no_grad():
        base, _ = model(x)
        for t in range(T):  # prediction t predicts the sample after input lookback + t
            changed = x.clone()
            changed[0, model.lookback + t, 0] = (changed[0, model.lookback + t, 0] + 5) % LEVELS
            y, _ = model(changed)
            torch.testing.assert_close(y[:, :t], base[:, :t], rtol=0, atol=0)
            assert not torch.allclose(y[:, t], base[:, t])  # the input it follows matters


@pytest.mark.parametrize(("frame_sizes", "cell"), [((4,), "gru"), ((8, 2), "lstm")])
def test_state_carried_across_chunks_equals_one_long_chunk(frame_sizes, cell):
    model = make(frame_sizes, cell, layers=2)
    T, lb = 3 * frame_sizes[0], model.lookback
    x = torch.randint(
        0, LEVELS, (2, lb + 2 * T, 1), generator=torch.Generator().manual_seed(3)
    ).float()
    with torch.no_grad():
        whole, end = model(x)
        first, state = model(x[:, : lb + T])
        second, state = model(x[:, T:], state)  # the next chunk brings its lookback along
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    assert set(state) == set(end) == set(model.state_stream_dims())
    for name, tensor in state.items():
        torch.testing.assert_close(tensor, end[name])


def test_learned_initial_state_trains_and_state_names_their_stream_axis():
    model = make((8, 2), "lstm", layers=2).train()
    state = model.init_state(5)
    assert model.state_stream_dims() == {k: 1 for k in ("tier0_h", "tier0_c", "tier1_h", "tier1_c")}
    assert all(s.shape == (2, 5, 12) for s in state.values())
    x = torch.randint(0, LEVELS, (5, model.lookback + 16, 1)).float()
    logits, _ = model(x, state)
    logits.logsumexp(-1).mean().backward()
    assert model.tiers[0].h0.grad.abs().sum() > 0 and model.tiers[1].c0.grad.abs().sum() > 0
    frozen = make((4,), learn_init=False)
    assert "tiers.0.h0" in frozen.state_dict() and not any(
        "h0" in name for name, _ in frozen.named_parameters()
    )


def test_training_steps_lower_the_loss_on_a_repeating_pattern():
    torch.manual_seed(0)
    model = SampleRNN(SampleRNNSpec(frame_sizes=(4,), hidden=16, mlp_hidden=16, embedding=4,
                                    levels=LEVELS))  # fmt: skip
    pattern = torch.tensor([0, 3, 9, 15, 12, 5] * 20, dtype=torch.float32)
    x, target = pattern[None, : model.lookback + 96, None], pattern[model.lookback + 1 :][:96]
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(40):
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits[0], target.long())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_a_partial_last_frame_is_predicted_as_in_a_longer_chunk():
    model = make((8, 2), "lstm")
    x = torch.randint(
        0, LEVELS, (2, model.lookback + 32, 1), generator=torch.Generator().manual_seed(6)
    ).float()
    with torch.no_grad():
        whole, _ = model(x)
        for T in (1, 5, 19):
            part, _ = model(x[:, : model.lookback + T])
            torch.testing.assert_close(part, whole[:, :T])
    with pytest.raises(ValueError, match="lookback"):
        model(x[:, : model.lookback])


# -- the fast kernel --------------------------------------------------------------------------
KERNEL_CASES = [
    ((16,), "gru", 1, 1),
    ((4,), "lstm", 2, 3),
    ((8, 2), "lstm", 1, 1),
    ((8, 2), "gru", 2, 10),  # two groups of 8, the second partial
    ((8, 4, 2), "gru", 1, 4),
    ((6, 3), "lstm", 2, 9),
]


@pytest.mark.parametrize(("frame_sizes", "cell", "layers", "streams"), KERNEL_CASES)
def test_kernel_samples_exactly_what_the_reference_samples(frame_sizes, cell, layers, streams):
    model = make(frame_sizes, cell, layers, seed=len(frame_sizes) + layers)
    rng = np.random.default_rng(streams)
    forced = rng.integers(0, LEVELS, (streams, 2 * frame_sizes[0] + 3))  # not whole frames
    temps = (rng.uniform(0.7, 1.3, streams), rng.uniform(0.5, 1.5, streams))
    s = sampling(rng, streams, 120, temperature=temps, top_p=0.9)
    ref_pred, ref_out = model.reference(forced, 120, s)
    pred, out = kernel_of(model).run(forced, 120, s)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_allclose(pred, ref_pred, atol=1e-4)
    assert len(np.unique(out)) > 3  # sampled, not stuck on one class


def test_kernel_with_weight_norm_constant_temperature_and_argmax():
    model = make((8, 2), "gru", weight_norm=True)
    rng = np.random.default_rng(4)
    forced = rng.integers(0, LEVELS, (2, 20))
    kernel = kernel_of(model)
    for temperature in (0.8, 0.0):
        s = sampling(rng, 2, 60, temperature=temperature)
        ref = model.reference(forced, 60, s)
        fast = kernel.run(forced, 60, s)
        np.testing.assert_array_equal(fast[1], ref[1])
        np.testing.assert_allclose(fast[0], ref[0], atol=1e-4)


def test_kernel_group_size_does_not_change_the_samples():
    from noizenet.models.samplernn_kernel import run

    model = make((4,), "lstm")
    rng = np.random.default_rng(5)
    forced = rng.integers(0, LEVELS, (7, 9))
    s = sampling(rng, 7, 50)
    w = kernel_of(model).weights
    one = run(w, forced, 50, s, spec=model.spec, group=1)
    for group in (3, 8):
        other = run(w, forced, 50, s, spec=model.spec, group=group)
        np.testing.assert_array_equal(other[1], one[1])
        np.testing.assert_allclose(other[0], one[0], atol=1e-6)


def test_generation_refuses_bad_class_indices():
    model = make((4,))
    with pytest.raises(ValueError, match="forced"):
        model.reference(np.array([[0, LEVELS]]), 2, sampling(np.random.default_rng(0), 1, 2))


# -- the family functions ---------------------------------------------------------------------
def test_spec_round_trips_through_its_dict_and_builds():
    spec = SampleRNNSpec(frame_sizes=(8, 2), cell="lstm", layers=2, weight_norm=True)
    raw = spec.to_dict()
    assert raw["family"] == samplernn.NAME == "samplernn"
    assert samplernn.spec_from_dict(raw) == spec
    assert samplernn.spec_from_dict({**raw, "frame_sizes": [8, 2]}) == spec  # as JSON stores it
    assert samplernn.build(spec).lookback == 7
    with pytest.raises(ConfigError, match="colour"):
        samplernn.spec_from_dict({**raw, "colour": 1})


def test_spec_from_config_reads_a_dict_or_an_object_and_the_codec():
    codec = SimpleNamespace(name="mulaw", levels=64)
    spec = samplernn.spec_from_config({"frame_sizes": "64,16", "hidden": 32}, codec=codec)
    assert (spec.frame_sizes, spec.hidden, spec.levels, spec.cell) == ((64, 16), 32, 64, "gru")
    spec = samplernn.spec_from_config(SimpleNamespace(cell="lstm", mlp_hidden=24), codec=codec)
    assert (spec.frame_sizes, spec.cell, spec.mlp_hidden) == ((16,), "lstm", 24)
    with pytest.raises(ConfigError, match="codec"):
        samplernn.spec_from_config({}, codec=SimpleNamespace(name="zscore"))


@pytest.mark.parametrize(
    ("codec", "model", "train", "message"),
    [
        ("zscore", {}, {"chunk": 1024}, "codec.name"),
        ("mulaw", {"frame_sizes": (64, 16)}, {"chunk": 1000}, "train.chunk"),
        ("mulaw", {}, {"chunk": "whole-song"}, "train.chunk"),
        ("mulaw", {}, {"chunk": 1024, "stride": 24}, "train.stride"),
        ("linear-q", {"cell": "rnn"}, {"chunk": 1024}, "model.cell"),
        ("mulaw", {"frame_sizes": "16,6"}, {"chunk": 1024}, "frame_sizes"),
        ("mulaw", {"frame_sizes": "a"}, {"chunk": 1024}, "frame_sizes"),
    ],
)
def test_check_config_names_the_parameter_it_refuses(codec, model, train, message):
    config = SimpleNamespace(codec=SimpleNamespace(name=codec), model=model, train=train)
    with pytest.raises(ConfigError, match=message) as err:
        samplernn.check_config(config)
    assert "\n" not in str(err.value)


def test_check_config_accepts_whole_top_frames():
    config = {"codec": {"name": "mulaw"}, "model": {"frame_sizes": [64, 16]},
              "train": {"chunk": 512, "stride": 256}}  # fmt: skip
    samplernn.check_config(config)


def test_spec_refuses_bad_settings():
    with pytest.raises(ConfigError, match="cell"):
        SampleRNNSpec(cell="rnn")
    with pytest.raises(ConfigError, match="frame_sizes"):
        SampleRNNSpec(frame_sizes=(4, 4))
    with pytest.raises(ConfigError, match="levels"):
        SampleRNNSpec(levels=0)


# -- through the trainer, the run folder and generation ---------------------------------------
def samplernn_config(tiny_config, **overrides):
    return tiny_config.with_overrides(
        {
            "model.family": "samplernn",
            "model.cell": "gru",
            "model.frame_sizes": "8,2",
            "model.mlp_hidden": 8,
            "model.embedding": 4,
            "model.dropout": 0.0,
            "codec.name": "mulaw",
            "codec.levels": 16,
            "train.chunk": 64,
            "train.epochs": 1,
            **overrides,
        }
    )


def test_refuses_a_chunk_that_is_not_whole_top_frames(tiny_config, tmp_path):
    from conftest import quiet

    from noizenet.train import train

    with pytest.raises(ConfigError, match=r"train\.chunk"):
        train(samplernn_config(tiny_config, **{"train.chunk": 100}), tmp_path / "bad",
              progress=False, log=quiet)  # fmt: skip


def test_resumes_mid_epoch_to_identical_weights(tiny_config, tmp_path):
    from conftest import quiet
    from test_resume import CrashError, assert_same_run, crash_at

    from noizenet.train import train

    # dropout draws random numbers every step, and the learned initial state trains at song
    # starts: resume must restore both
    cfg = samplernn_config(tiny_config, **{"data.seconds": 0.25, "model.dropout": 0.3,
                                           "model.layers": 2, "train.checkpoint_every": 7,
                                           "train.threads": 1})  # fmt: skip
    reference = train(cfg, tmp_path / "ref", progress=False, log=quiet)
    out = tmp_path / "run"
    with pytest.raises(CrashError):
        train(cfg, out, progress=False, log=quiet, attach=crash_at(0, 10))
    with pytest.raises(CrashError):
        train(None, out, resume=True, progress=False, log=quiet, attach=crash_at(0, 30))
    train(None, out, resume=True, progress=False, log=quiet)
    assert_same_run(out, reference)


def test_command_line_trains_and_the_run_generates_and_reproduces(tiny_config, song_dir, tmp_path):
    from noizenet.cli import main
    from noizenet.generate import generate, reproduce
    from noizenet.run import Run

    config = tmp_path / "samplernn.toml"
    samplernn_config(tiny_config).save(config)
    out = tmp_path / "cli-run"
    assert main(["train", "--config", str(config), "--out", str(out), "--frame-sizes", "8,2",
                 "--weight-norm"]) == 0  # fmt: skip
    run = Run.open(out)
    model = run.model()
    assert isinstance(model, SampleRNN) and model.spec.frame_sizes == (8, 2)
    assert model.spec.weight_norm and model.spec.hidden == 8 and model.spec.levels == 16
    record = run.metrics()[-1]
    assert np.isfinite(record["train_loss"]) and np.isfinite(record["val_loss"])
    takes = generate(run, seed="perlin", seconds=0.05, seed_seconds=0.01, variations=2,
                     write=False)  # fmt: skip
    assert len(takes) == 2 and all(np.isfinite(t.audio).all() for t in takes)
    assert all(t.audio.size >= 1100 for t in takes)  # 0.05 s at 22,050 Hz
    assert not np.array_equal(takes[0].audio, takes[1].audio)
    song = sorted(song_dir.rglob("*.wav"))[0]
    rep = reproduce(run, song, seconds=0.2, write=False)  # teacher forced, through the kernel
    assert np.isfinite(rep.predicted).all() and rep.predicted.shape == rep.original.shape
    wav = tmp_path / "take.wav"
    assert main(["generate", str(out), "--seconds", "0.05", "--out", str(wav)]) == 0
    assert wav.stat().st_size > 1000
