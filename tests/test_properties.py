"""Property tests (hypothesis): codecs, config parsing and decoding arbitrary bytes end in a
value or a clean NoizeNet error, never in anything else."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from noizenet.config import CODECS, SCALINGS, WHOLE_SONG, CodecConfig, Config
from noizenet.errors import AudioError, CheckpointError, ConfigError

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- codecs ---------------------------------------------------------------------------------
# audio amplitudes, generously: decoders give [-1, 1]; float files can hold more
amplitude = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)
signal = st.one_of(
    arrays(np.float32, st.integers(2, 300), elements=amplitude),
    st.builds(lambda n: np.zeros(n, np.float32), st.integers(2, 300)),  # silence
    st.builds(lambda n, c: np.full(n, c, np.float32), st.integers(2, 300), amplitude),  # DC
)


@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")  # fft blocks on short signals
@FAST
@given(
    train=st.lists(signal, min_size=1, max_size=3),
    y=signal,
    name=st.sampled_from(CODECS),
    scaling=st.sampled_from(SCALINGS),
)
def test_every_codec_gives_finite_values_for_finite_audio(train, y, name, scaling):
    from noizenet.codecs import make_codec

    codec = make_codec(CodecConfig(name=name, scaling=scaling)).fit(train)
    v = codec.encode(y)
    assert np.all(np.isfinite(v))
    assert np.all(np.isfinite(codec.decode(v)))


@FAST
@given(
    train=st.lists(signal, min_size=1, max_size=3),
    y=signal,
    name=st.sampled_from(["zscore", "minmax"]),
    scaling=st.sampled_from(SCALINGS),
)
@example(
    train=[np.zeros(10, np.float32)], y=np.zeros(5, np.float32), name="zscore", scaling="corpus"
)
@example(
    train=[np.full(10, 0.5, np.float32)],
    y=np.full(5, 0.5, np.float32),
    name="minmax",
    scaling="per-file",
)
def test_raw_codecs_round_trip(train, y, name, scaling):
    from noizenet.codecs import codec_from_state, make_codec

    codec = make_codec(CodecConfig(name=name, scaling=scaling)).fit(train)
    stats = codec.stats_for(y)
    back = codec.decode(codec.encode(y, stats), stats)
    center, scale = stats
    tol = 1e-6 * (float(np.abs(y).max()) + abs(center) + scale) + 1e-12
    np.testing.assert_allclose(back, y, rtol=0, atol=tol)
    # what run.json stores rebuilds the same codec
    again = codec_from_state(json.loads(json.dumps(codec.state())))
    assert again.stats_for(y) == stats


# -- config parsing --------------------------------------------------------------------------
_cfg = Config()
_FIELDS = {
    section: [f.name for f in dataclasses.fields(getattr(_cfg, section))]
    for section in ("data", "codec", "model", "train")
}
_CHOICES = ["lstm", "gru", "rnn", "zscore", "minmax", "per-file", "adam", "mse", WHOLE_SONG]
scalar = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(-3, 70000),
    st.sampled_from([2**63, -(2**63) - 1, 10**400]),  # past int64 and float range
    st.floats(),
    st.floats(-10, 10),
    st.text(max_size=12),
    st.sampled_from(_CHOICES),
)
value = st.recursive(
    st.one_of(scalar, st.none()),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=5,
)


def section_table(name: str):
    keys = st.sampled_from(_FIELDS[name]) | st.text(max_size=10)
    return st.dictionaries(keys, value, max_size=5)


raw_config = st.fixed_dictionaries(
    {},
    optional={
        "seed": value,
        "data": section_table("data") | value,
        "codec": section_table("codec") | value,
        "model": section_table("model") | value,
        "train": section_table("train") | value,
    },
) | st.dictionaries(st.text(max_size=8), value, max_size=3)


@settings(max_examples=150, deadline=None)
@given(raw=raw_config)
def test_any_dict_is_a_config_or_a_config_error(raw):
    try:
        cfg = Config.from_dict(raw)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert Config.from_toml(cfg.to_toml()) == cfg  # a valid config survives its own TOML


_SETTINGS = [("", "seed")] + [(sec, name) for sec, names in _FIELDS.items() for name in names]


@settings(max_examples=400, deadline=None)
@given(
    where=st.sampled_from(_SETTINGS),
    v=st.one_of(
        st.sampled_from([10**400, -(10**400), 2**63]),  # past float range: OverflowError bait
        st.floats(),
        st.integers(),
        st.booleans(),
        st.text(max_size=10) | st.sampled_from(_CHOICES),
        st.lists(st.integers(), max_size=2) | st.none(),
    ),
)
def test_any_single_setting_is_valid_or_a_config_error(where, v):
    section, name = where
    raw = {section: {name: v}} if section else {name: v}
    with contextlib.suppress(ConfigError):
        Config.from_dict(raw)


def _toml_safe(v):
    """Drop what TOML cannot hold (None, 65-bit ints) so tomli_w can write the rest."""
    if isinstance(v, dict):
        return {k: _toml_safe(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_toml_safe(x) for x in v if x is not None]
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
        return 0
    return v


@settings(max_examples=100, deadline=None)
@given(raw=raw_config)
def test_any_toml_document_is_a_config_or_a_config_error(raw):
    import tomli_w

    try:
        text = tomli_w.dumps(_toml_safe(raw))
    except (TypeError, ValueError):
        assume(False)
    try:
        Config.from_toml(text, where="t.toml")
    except ConfigError as exc:
        assert str(exc).startswith("t.toml: ") and "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_text_is_a_config_or_a_config_error(text):
    try:
        Config.from_toml(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(
    overrides=st.dictionaries(
        st.text(max_size=14) | st.sampled_from(["model.hidden", "train.lr", "seed.x", "data"]),
        value,
        max_size=3,
    )
)
def test_any_overrides_are_a_config_or_a_config_error(overrides):
    with contextlib.suppress(ConfigError):
        Config().with_overrides(overrides)


# -- decoding arbitrary bytes --------------------------------------------------------------
MAGIC = [
    b"",
    b"RIFF\x24\x08\x00\x00WAVEfmt ",
    b"fLaC\x00\x00\x00\x22",
    b"OggS\x00\x02",
    b"ID3\x03\x00\x00\x00\x00\x00\x00",
    b"\xff\xfb\x90\x64",
    b"FORM\x00\x00\x00\x00AIFFCOMM",
    b".snd\x00\x00\x00\x18",
]


@FAST
@given(
    head=st.sampled_from(MAGIC),
    body=st.binary(max_size=3000),
    suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".aiff", ".au"]),
)
def test_decoding_random_bytes_gives_audio_or_an_audio_error(head, body, suffix):
    from noizenet.audio import load

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x{suffix}"
        path.write_bytes(head + body)
        try:
            y = load(path)
        except AudioError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
            return
    assert y.dtype == np.float32 and y.ndim == 1 and np.all(np.isfinite(y))


def wav_header(n_bytes: int, fmt: int, bits: int) -> bytes:
    """A well-formed WAV header around ``n_bytes`` of arbitrary sample data."""
    channels, sr = 1, 22050
    block = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, sr, sr * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt_chunk) + 8 + n_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt_chunk))
        + fmt_chunk
        + b"data"
        + struct.pack("<I", n_bytes)
    )


@FAST
@given(body=st.binary(min_size=8, max_size=4000), kind=st.sampled_from([(1, 16), (3, 32), (3, 64)]))
@example(body=struct.pack("<4f", math.nan, 0.0, math.inf, 1.0) * 600, kind=(3, 32))
def test_valid_wav_with_arbitrary_samples_is_finite_audio_or_an_audio_error(body, kind):
    """Float WAVs can hold NaN and infinity: they must be refused, never trained on."""
    from noizenet.audio import load

    fmt, bits = kind
    body = body[: len(body) - len(body) % (bits // 8)]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.wav"
        path.write_bytes(wav_header(len(body), fmt, bits) + body)
        try:
            y = load(path)
        except AudioError:
            return
    assert np.all(np.isfinite(y))


@FAST
@given(
    body=st.binary(max_size=2000)
    | st.builds(
        lambda header, tail: struct.pack("<Q", len(header)) + header + tail,
        st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers()).map(
            lambda d: json.dumps(d).encode()
        ),
        st.binary(max_size=200),
    )
)
def test_random_bytes_as_weights_or_checkpoint_are_checkpoint_errors(body):
    from noizenet.run import load_model
    from noizenet.train.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.safetensors"
        path.write_bytes(body)
        for loader in (load_model, load_checkpoint):
            with pytest.raises(CheckpointError) as exc:
                loader(path)
            assert str(path) in str(exc.value) and "\n" not in str(exc.value)
