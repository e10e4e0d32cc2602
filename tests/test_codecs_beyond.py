"""Issue 4: quantised (mu-law, linear) and FFT-block codecs, categorical head and sampling."""

import math

import numpy as np
import pytest
import torch

from noizenet.codecs import FFTCodec, QuantCodec, codec_from_state, make_codec
from noizenet.config import CodecConfig
from noizenet.errors import NoizeNetError
from noizenet.generate import generate, reproduce
from noizenet.models import ModelSpec, NoizeNet, kernel_of
from noizenet.models.flat_kernels import run, run_categorical
from noizenet.models.flat_reference import reference_categorical, reference_run
from noizenet.models.loss import sequence_loss
from noizenet.sampling import sample, temperature_schedules
from noizenet.train import train
from noizenet.train.trainer import EpochResult

SR = 22050


def music(seconds=1.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-2 * t) + 0.02 * rng.standard_normal(t.size)
    return y.astype(np.float32)


@pytest.mark.parametrize("levels", [4, 256, 65536])
@pytest.mark.parametrize("name", ["mulaw", "linear-q"])
def test_quantised_round_trip_within_one_step(name, levels):
    y = music()
    codec = QuantCodec(name=name, levels=levels).fit([y])
    idx = codec.encode(y)
    assert idx.min() >= 0 and idx.max() <= levels - 1 and np.all(idx == np.round(idx))
    err = np.abs(codec.decode(idx) - y)
    # the step between neighbouring levels, where each sample landed
    values = codec.level_values()
    i = idx.astype(int)
    step = np.maximum(
        np.abs(values[np.minimum(i + 1, levels - 1)] - values[i]),
        np.abs(values[i] - values[np.maximum(i - 1, 0)]),
    )
    inside = (y >= values[0]) & (y <= values[-1])
    assert np.all(err[inside] <= step[inside] + 1e-6)
    # silence sits exactly on a level, so one side has one level fewer: above the top level,
    # samples saturate to it
    assert np.all(idx[y > values[-1]] == levels - 1)


@pytest.mark.parametrize("name", ["mulaw", "linear-q"])
def test_silence_is_the_middle_level_and_scale_is_the_corpus_peak(name):
    codec = QuantCodec(name=name, levels=256).fit([music(), 0.5 * music(seed=1)])
    assert np.all(codec.encode(np.zeros(10)) == 128)
    assert codec.decode(np.array([128.0]))[0] == 0.0
    assert codec.scale == pytest.approx(float(np.max(np.abs(music()))))
    quiet = 0.1 * music()
    assert np.abs(codec.encode(quiet) - 128).max() < np.abs(codec.encode(music()) - 128).max()


@pytest.mark.parametrize("parts", ["real-imag", "logmag-phase"])
def test_fft_blocks_reconstruct_better_than_60_db(parts):
    y = music(2.0)
    codec = FFTCodec(block=512, parts=parts).fit([y])
    v = codec.encode(y)
    assert v.shape == (1 + y.size // 256, codec.dim)
    back = codec.decode(v, length=y.size)
    snr = 10 * np.log10(np.sum(y.astype(np.float64) ** 2) / np.sum((back - y) ** 2))
    assert snr > 60
    # z-scored per bin over the corpus
    assert np.allclose(v.mean(0)[np.array(codec.std) != 1.0], 0, atol=1e-3)


def test_codec_state_round_trips_through_json():
    import json

    for cfg in (CodecConfig(name="mulaw", levels=1024), CodecConfig(name="fft", block=64)):
        codec = make_codec(cfg).fit([music()])
        again = codec_from_state(json.loads(json.dumps(codec.state())))
        y = music(seed=3)
        np.testing.assert_array_equal(again.encode(y), codec.encode(y))


def test_uniform_model_scores_log2_levels_bits():
    model = NoizeNet(ModelSpec(levels=256, embedding=4, hidden=4))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    tracks = [np.random.default_rng(0).integers(0, 256, 500).astype(np.float32)]
    nats = sequence_loss(model, tracks, "ce")
    assert nats == pytest.approx(math.log(256), rel=1e-6)
    bits = EpochResult(1, nats, nats, 1, 1.0, loss="ce").bits()
    assert bits["train_bits"] == pytest.approx(8.0) and bits["val_bits"] == pytest.approx(8.0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("temps, top_p", [((1.0, 1.0), 1.0), ((1.2, 0.5), 0.9), ((0.0, 0.0), 1)])
@pytest.mark.parametrize("path, streams", [("per-stream", 3), ("split", 2), ("blas", 5)])
def test_categorical_kernel_samples_exactly_what_pytorch_does(cell, temps, top_p, path, streams):
    torch.manual_seed(0)
    model = NoizeNet(ModelSpec(cell=cell, hidden=12, layers=2, levels=32, embedding=6)).eval()
    rng = np.random.default_rng(0)
    forced = rng.integers(0, 32, (streams, 25))
    u = rng.random((streams, 150))
    lv = np.linspace(-1, 1, 32)
    t = (np.full(streams, temps[0]), np.full(streams, temps[1]))
    w = kernel_of(model).weights
    p1, o1, _ = run_categorical(
        w, forced, 150, level_values=lv, temperature=t, top_p=top_p, uniforms=u, path=path
    )
    p2, o2 = reference_categorical(
        model, forced, 150, level_values=lv, temperature=t, top_p=top_p, uniforms=u
    )
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_array_equal(o1, o2)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
@pytest.mark.parametrize("path, streams", [("per-stream", 2), ("split", 2), ("blas", 5)])
def test_vector_regression_kernel_matches_pytorch(cell, path, streams):
    torch.manual_seed(0)
    model = NoizeNet(ModelSpec(cell=cell, hidden=10, in_dim=6, out_dim=6)).eval()
    rng = np.random.default_rng(1)
    forced = rng.standard_normal((streams, 15, 6)).astype(np.float32)
    noise = rng.standard_normal((streams, 60, 6)).astype(np.float32)
    p1, o1, _ = run(kernel_of(model).weights, forced, 60, noise=noise, path=path)
    p2, o2 = reference_run(model, forced, 60, noise=noise)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_allclose(o1, o2, atol=1e-5)


def test_temperature_zero_is_argmax_and_top_p_restricts_support():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert {sample(logits, 0.0, 1.0, u) for u in np.linspace(0, 1, 50)} == {0}
    # top-p 0.75: the nucleus is {0, 1} (0.5 + 0.3 >= 0.75); 2 and 3 are never drawn
    assert {sample(logits, 1.0, 0.75, u) for u in np.linspace(0, 1, 200)} == {0, 1}
    assert {sample(logits, 1.0, 1.0, u) for u in np.linspace(0, 1, 200)} == {0, 1, 2, 3}


def test_temperature_schedules_parse():
    t0, t1 = temperature_schedules("1.0:0.8", 1)
    assert (t0[0], t1[0]) == (1.0, 0.8)
    t0, t1 = temperature_schedules("0.5,1.0:0.7", 3)
    assert t0.tolist() == [0.5, 1.0, 0.5] and t1.tolist() == [0.5, 0.7, 0.5]
    for bad in ("hot", "-1", "1:2:3"):
        with pytest.raises(NoizeNetError, match=r"generation\.temperature"):
            temperature_schedules(bad, 1)


@pytest.fixture(scope="module")
def codec_runs(tiny_config, tmp_path_factory):
    """One tiny run per codec and cell (trained once for this module)."""
    runs = {}
    root = tmp_path_factory.mktemp("codec-runs")
    for codec, extra in [
        ("mulaw", {}),
        ("linear-q", {"codec.levels": 64}),
        ("fft", {"codec.block": 64, "train.chunk": 16}),
    ]:
        for cell in ("rnn", "lstm", "gru"):
            cfg = tiny_config.with_overrides(
                {"codec.name": codec, "model.cell": cell, "train.epochs": 1, **extra}
            )
            runs[codec, cell] = train(
                cfg, root / f"{codec}-{cell}", progress=False, log=lambda *a: None
            )
    return runs


@pytest.mark.parametrize("codec", ["mulaw", "linear-q", "fft"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_codec_trains_generates_and_reproduces_with_every_cell(
    codec_runs, codec, cell, tmp_path
):
    r = codec_runs[codec, cell]
    assert r.info.codec["name"] == codec and r.info.codec["fitted"]
    record = r.metrics()[0]
    assert np.isfinite(record["train_loss"])
    if codec != "fft":
        assert 0 < record["val_bits"] < math.log2(r.info.codec["levels"]) + 1
    takes = generate(r, seed="perlin", seconds=0.3, seed_seconds=0.1, out=tmp_path / "g.wav")
    assert takes[0].audio.size == round(0.3 * SR) and np.all(np.isfinite(takes[0].audio))
    song = r.info.corpus["val"][0]["path"]
    rep = reproduce(r, song, seconds=0.3, write=False)
    assert rep.predicted.size == rep.original.size and np.isfinite(rep.snr_db)


def test_categorical_generation_temperature_zero_is_deterministic(codec_runs):
    r = codec_runs["mulaw", "lstm"]
    song = f"song:{r.info.corpus['val'][0]['path']}"
    a = generate(r, seed=song, seconds=0.1, temperature=0, random_seed=1, write=False)
    b = generate(r, seed=song, seconds=0.1, temperature=0, random_seed=2, write=False)
    np.testing.assert_array_equal(a[0].audio, b[0].audio)
    c = generate(r, seed=song, seconds=0.1, temperature=1, random_seed=1, write=False)
    d = generate(r, seed=song, seconds=0.1, temperature=1, random_seed=2, write=False)
    assert not np.array_equal(c[0].audio, d[0].audio)


def test_variations_take_different_temperatures_and_names_say_so(codec_runs, tmp_path):
    r = codec_runs["mulaw", "gru"]
    takes = generate(r, seed="white", seconds=0.1, variations=2, temperature="0.5,1.0:0.8")
    names = sorted(t.path.name for t in takes)
    assert names[0].endswith("_t0.5_v0.wav") and names[1].endswith("_t1-0.8_v1.wav")


def test_injection_on_a_categorical_head_is_a_clear_error(codec_runs):
    with pytest.raises(NoizeNetError, match=r"generation\.inject: noise injection applies"):
        generate(codec_runs["mulaw", "rnn"], inject="periodic:10", seconds=0.1, write=False)
