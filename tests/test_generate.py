import numpy as np
import pytest
import soundfile as sf
import torch

from noizenet.errors import NoizeNetError
from noizenet.generate import generate, reproduce
from noizenet.generate.seeds import make_seed, parse_seed, perlin_noise
from noizenet.models import ModelSpec, NoizeNet, kernel_of
from noizenet.models.flat_kernels import (
    BATCHED_FROM_HIDDEN,
    BLAS_FROM_STREAMS,
    STREAM_TILE,
    Injection,
    _exp_nonpositive,
    _schedule,
    _tanh,
    run,
)
from noizenet.models.flat_reference import reference_run

INJECTIONS = [None, "periodic:7", "stall:5:0.5:0.3"]


# the schedules, each with the number of streams it is meant for
SCHEDULES = [("per-stream", 3), ("split", 2), ("blas", 5)]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("inject", INJECTIONS)
@pytest.mark.parametrize("path, streams", SCHEDULES)
def test_fast_kernel_matches_pytorch_step_by_step(cell, inject, path, streams):
    torch.manual_seed(0)
    model = NoizeNet(ModelSpec(cell=cell, hidden=16, layers=2, dropout=0.5)).eval()
    rng = np.random.default_rng(0)
    forced = rng.standard_normal((streams, 40)).astype(np.float32)
    noise = rng.standard_normal((streams, 200)).astype(np.float32)
    injection = Injection.parse(inject)
    w = kernel_of(model).weights
    p1, o1, _ = run(w, forced, 200, injection=injection, noise=noise, path=path)
    p2, o2 = reference_run(model, forced, 200, injection=injection, noise=noise)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_allclose(o1, o2, atol=1e-5)


@pytest.mark.parametrize("path, streams", SCHEDULES)
def test_kernel_state_continues_across_calls(path, streams):
    torch.manual_seed(0)
    w = kernel_of(NoizeNet(ModelSpec(cell="lstm", hidden=8, layers=2)).eval()).weights
    x = np.random.default_rng(1).standard_normal((streams, 60)).astype(np.float32)
    whole, _, end = run(w, x, 0, path=path)
    a, _, state = run(w, x[:, :25], 0, path=path)
    b, _, state = run(w, x[:, 25:], 0, state=state, path=path)
    np.testing.assert_allclose(np.concatenate([a, b], 1), whole, atol=1e-6)
    np.testing.assert_allclose(state[0], end[0], atol=1e-6)  # h
    np.testing.assert_allclose(state[1], end[1], atol=1e-6)  # c


def test_schedules_agree_on_a_large_model():
    """Column blocks and stream tiles at a size that has several of each; auto picks each."""
    torch.manual_seed(0)
    w = kernel_of(NoizeNet(ModelSpec(cell="lstm", hidden=BATCHED_FROM_HIDDEN)).eval()).weights
    x = np.random.default_rng(2).standard_normal((BLAS_FROM_STREAMS, 30)).astype(np.float32)
    ref = run(w, x, 50, path="per-stream")
    for streams, path in [(1, "split"), (STREAM_TILE + 1, "split"), (2, "blas")]:
        got = run(w, x[:streams], 50, path=path)
        np.testing.assert_allclose(got[0], ref[0][:streams], atol=1e-5)
        np.testing.assert_allclose(got[1], ref[1][:streams], atol=1e-5)
    assert [_schedule(w, b, "auto") for b in (1, 2, BLAS_FROM_STREAMS)] == [
        "split",
        "per-stream",
        "blas",
    ]
    small = kernel_of(NoizeNet(ModelSpec(hidden=50)).eval()).weights
    assert _schedule(small, 1, "auto") == _schedule(small, 64, "auto") == "per-stream"


def test_unknown_schedule_is_refused():
    w = kernel_of(NoizeNet(ModelSpec(hidden=8)).eval()).weights
    with pytest.raises(ValueError, match="path"):
        run(w, np.zeros((1, 5), np.float32), 5, path="fastest")


def test_tanh_and_exp_approximations_are_within_float32_rounding():
    x = np.linspace(-30, 30, 600_001).astype(np.float32)
    approx = np.array([_tanh(v) for v in x[::50]], np.float64)
    assert np.abs(approx - np.tanh(x[::50].astype(np.float64))).max() < 4e-7
    z = -np.linspace(0, 100, 100_001)
    out, bits = np.empty(z.size, np.float32), np.empty(z.size, np.int32)
    _exp_nonpositive(z, out, bits)
    exact = np.exp(np.maximum(z, -87.0))
    assert np.abs(out / exact - 1).max() < 2e-7


def test_periodic_injection_multiplies_every_kth_value():
    torch.manual_seed(0)
    w = kernel_of(NoizeNet(ModelSpec(hidden=8)).eval()).weights
    noise = np.full((1, 30), 3.0, np.float32)  # N(-1, 1) draw = noise - 1 = 2
    _, plain, _ = run(w, np.zeros((1, 5), np.float32), 10)
    _, inj, _ = run(
        w, np.zeros((1, 5), np.float32), 10, injection=Injection.parse("periodic:5"), noise=noise
    )
    np.testing.assert_allclose(inj[0, :4], plain[0, :4], atol=1e-7)
    assert inj[0, 4] == pytest.approx(2 * plain[0, 4], rel=1e-5)


def test_stall_injection_only_fires_on_a_stalled_output():
    torch.manual_seed(0)
    w = kernel_of(NoizeNet(ModelSpec(hidden=8)).eval()).weights
    noise = np.ones((1, 300), np.float32)
    forced = np.zeros((1, 5), np.float32)
    _, plain, _ = run(w, forced, 300)
    _, never, _ = run(w, forced, 300, injection=Injection.parse("stall:10:0:1"), noise=noise)
    _, always, _ = run(w, forced, 300, injection=Injection.parse("stall:10:1e9:1"), noise=noise)
    np.testing.assert_allclose(never, plain)  # a span is never < 0
    np.testing.assert_allclose(always[0, :9], plain[0, :9], atol=1e-7)  # window not yet full
    assert always[0, 9] == pytest.approx(plain[0, 9] + 1.0, rel=1e-5)


@pytest.mark.parametrize("text", ["periodic:0", "periodic", "stall:1:2", "stall:a:1:1", "foo:3"])
def test_bad_injection_is_a_clear_error(text):
    with pytest.raises(NoizeNetError, match=r"generation\.inject"):
        Injection.parse(text)


def test_seed_parsing(tmp_path):
    assert parse_seed("white").kind == "white"
    s = parse_seed("song:some dir/my song.mp3@12.5")
    assert (s.kind, str(s.path), s.offset) == ("song", "some dir/my song.mp3", 12.5)
    assert parse_seed("song:a@b.wav").path.name == "a@b.wav"
    with pytest.raises(NoizeNetError, match="unknown seed"):
        parse_seed("pink")


def test_noise_seeds_have_the_requested_rms_and_length():
    rng = np.random.default_rng(0)
    for kind in ("white", "perlin"):
        y = make_seed(parse_seed(kind), seconds=0.5, sr=22050, rms=0.2, rng=rng)
        assert y.size == 11025 and np.sqrt(np.mean(y**2)) == pytest.approx(0.2, rel=0.02)
    assert not make_seed(parse_seed("silence"), seconds=0.1, sr=22050, rms=0.2, rng=rng).any()


def test_perlin_is_smooth_and_band_limited_unlike_white_noise():
    rng = np.random.default_rng(0)
    p = perlin_noise(22050, rng=rng, octaves=4)
    w = rng.standard_normal(22050)
    # successive samples of Perlin noise are strongly correlated; white noise is not
    assert np.corrcoef(p[:-1], p[1:])[0, 1] > 0.95
    assert abs(np.corrcoef(w[:-1], w[1:])[0, 1]) < 0.05
    spec = np.abs(np.fft.rfft(p)) ** 2
    assert spec[: 22050 * 4000 // 22050].sum() > 0.99 * spec.sum()  # energy below 4 kHz


@pytest.mark.parametrize("seed", ["white", "perlin", "silence", "song"])
def test_every_seed_kind_generates_finite_audio_of_the_requested_length(tiny_run, tmp_path, seed):
    if seed == "song":
        seed = f"song:{tiny_run.info.corpus['val'][0]['path']}@0.2"
    takes = generate(tiny_run, seed=seed, seconds=0.5, seed_seconds=0.25, out=tmp_path / "g.wav")
    data, sr = sf.read(takes[0].path)
    assert sr == 22050 and data.size == round(0.5 * 22050)
    assert np.all(np.isfinite(data))


@pytest.mark.parametrize("inject", INJECTIONS)
def test_saved_run_generates_exactly_what_the_in_memory_model_does(tiny_run, inject):
    takes = generate(
        tiny_run,
        seed="perlin",
        seconds=0.2,
        seed_seconds=0.1,
        inject=inject,
        random_seed=5,
        write=False,
    )
    # the same procedure by hand with the in-memory model on the slow PyTorch path
    codec, model = tiny_run.codec(), tiny_run.model()
    rng = np.random.default_rng(5)
    seed = make_seed(
        parse_seed("perlin"), seconds=0.1, sr=22050, rms=tiny_run.info.train_rms, rng=rng
    )
    noise = rng.standard_normal((1, 4410)).astype(np.float32)
    _, out = reference_run(
        model, codec.encode(seed)[None], 4410, injection=Injection.parse(inject), noise=noise
    )
    # 4,410 fed-back steps (x N(-1, 1) kicks with periodic injection) amplify float32 rounding
    # differences between the two paths; the kernels' own 1e-5 tests are in this file above
    np.testing.assert_allclose(takes[0].audio, codec.decode(out[0]), atol=1e-4)


def test_generation_is_deterministic_and_variations_differ(tiny_run):
    a = generate(tiny_run, seed="white", seconds=0.1, variations=3, random_seed=1, write=False)
    b = generate(tiny_run, seed="white", seconds=0.1, variations=3, random_seed=1, write=False)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.audio, y.audio)
    assert not np.array_equal(a[0].seed_audio, a[1].seed_audio)


def test_variations_are_written_as_separate_files(tiny_run, tmp_path):
    takes = generate(tiny_run, seed="perlin", seconds=0.1, variations=2, out=tmp_path / "g.wav")
    assert [t.path.name for t in takes] == ["g_v0.wav", "g_v1.wav"]


def test_reproduction_is_aligned_and_beats_silence(tiny_run, tmp_path):
    song = tiny_run.info.corpus["val"][0]["path"]
    rep = reproduce(tiny_run, song, seconds=0.5, out=tmp_path / "r.wav")
    assert rep.original.size == rep.predicted.size == 11025
    assert rep.predicted[0] == rep.original[0]
    assert np.isfinite(rep.snr_db)
    data, sr = sf.read(tmp_path / "r.wav")
    assert sr == 22050 and data.size == 11025
