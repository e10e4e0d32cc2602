"""Broken and awkward inputs: each is decoded correctly or skipped with its reason, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, tone_song, write_wav

from noizenet.cli import main
from noizenet.config import Config
from noizenet.corpus.cache import DecodeCache


def _sine(sr: int, seconds: float = 0.5, f: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * f * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def _decode(path: Path, tmp_path: Path) -> tuple[dict, np.ndarray | None]:
    cache = DecodeCache(tmp_path / "cache")
    entry = cache.ensure([path], workers=1, progress=False)[0][path]
    y = np.asarray(cache.audio(entry)) if entry["status"] == "ok" else None
    return entry, y


def _peak_hz(y: np.ndarray, sr: int = SR) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(y))) * sr / y.size)


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 44100, 48000, 96000])
def test_sample_rates_from_8_to_96_khz_are_resampled_to_22050(tmp_path, sr):
    path = write_wav(tmp_path / f"tone {sr}.wav", _sine(sr), sr)
    entry, y = _decode(path, tmp_path)
    assert entry["source_sr"] == sr and entry["channels"] == 1
    assert abs(y.size - SR // 2) <= 1
    assert abs(_peak_hz(y) - 440) < 3
    assert np.max(np.abs(y)) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("sr", [8000, 48000])
def test_mp3_at_the_extreme_sample_rates(tmp_path, sr):
    path = write_wav(tmp_path / "tone.mp3", _sine(sr), sr, format="MP3")
    entry, y = _decode(path, tmp_path)
    assert entry["status"] == "ok" and entry["source_sr"] == sr
    assert abs(_peak_hz(y) - 440) < 5


@pytest.mark.parametrize(
    "subtype, tolerance", [("PCM_U8", 2 / 128), ("PCM_16", 1e-4), ("PCM_24", 1e-4), ("FLOAT", 1e-4)]
)
def test_8_bit_24_bit_and_float_wav(tmp_path, subtype, tolerance):
    y0 = _sine(SR)
    path = write_wav(tmp_path / f"{subtype}.wav", y0, subtype=subtype)
    entry, y = _decode(path, tmp_path)
    assert entry["status"] == "ok"
    np.testing.assert_allclose(y, y0, atol=tolerance)


def test_stereo_and_multichannel_are_mixed_to_mono(tmp_path):
    left = _sine(SR)
    stereo = write_wav(tmp_path / "stereo.wav", np.stack([left, 0.5 * left], axis=1))
    surround = write_wav(
        tmp_path / "surround.wav", np.stack([left * (k + 1) / 6 for k in range(6)], axis=1)
    )
    for path, gain in ((stereo, 0.75), (surround, 3.5 / 6)):
        entry, y = _decode(path, tmp_path)
        assert entry["channels"] in (2, 6)
        np.testing.assert_allclose(y, gain * left, atol=2e-4)


def test_dc_offset_and_clipping_are_kept_as_they_are(tmp_path):
    dc = write_wav(tmp_path / "dc.wav", 0.3 + _sine(SR, amp=0.2))
    clipped = write_wav(tmp_path / "clipped.wav", np.clip(_sine(SR, amp=1.5), -1, 1))
    _, y = _decode(dc, tmp_path)
    assert y.mean() == pytest.approx(0.3, abs=1e-3)
    _, y = _decode(clipped, tmp_path)
    assert np.max(y) == pytest.approx(1.0, abs=1e-3) and np.mean(np.abs(y) > 0.999) > 0.3


def test_non_ascii_and_space_laden_names(tmp_path):
    path = write_wav(tmp_path / "my music" / "Ünïcödé sóng — ½ (live).wav", _sine(SR))
    entry, y = _decode(path, tmp_path)
    assert entry["status"] == "ok" and entry["source"] == str(path.resolve())
    assert y.size == SR // 2


def _mp3_bytes(tmp_path: Path) -> bytes:
    path = write_wav(tmp_path / "good.mp3", tone_song(3, 1.0), format="MP3")
    return path.read_bytes()


def _id3_only(size: int = 1700) -> bytes:
    body = size - 10
    head = b"ID3\x03\x00\x00" + bytes((body >> s) & 0x7F for s in (21, 14, 7, 0))
    return head + b"\x00" * body


@pytest.mark.parametrize(
    "name, make, fragment",
    [
        ("zero.mp3", lambda tmp: b"", "empty file (0 bytes)"),
        ("tag only.mp3", lambda tmp: _id3_only(), "only an ID3 tag (1,700 bytes), no audio frames"),
        ("notes.wav", lambda tmp: b"shopping list: eggs, milk\n" * 20, "cannot decode audio"),
        ("noise.mp3", lambda tmp: np.random.default_rng(0).bytes(4000), "cannot decode audio"),
        ("header.flac", lambda tmp: b"fLaC" + bytes(60), "cannot decode audio"),
    ],
)
def test_broken_files_are_skipped_with_their_reason(tmp_path, name, make, fragment):
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    entry, _ = _decode(path, tmp_path)
    assert entry["status"] == "skipped" and fragment in entry["reason"]
    assert "\n" not in entry["reason"]


def test_a_corrupt_mp3_decodes_what_survives_or_is_skipped_never_nan(tmp_path):
    good = _mp3_bytes(tmp_path)
    rng = np.random.default_rng(1)
    damaged = bytearray(good)
    damaged[len(good) // 3 : len(good) // 3 + 2000] = rng.bytes(2000)  # garbage mid-stream
    truncated = good[: len(good) // 2]
    for name, data in (("damaged.mp3", bytes(damaged)), ("truncated.mp3", truncated)):
        path = tmp_path / name
        path.write_bytes(data)
        entry, y = _decode(path, tmp_path)
        if entry["status"] == "ok":
            assert np.all(np.isfinite(y)) and 0 < y.size < 1.2 * SR
        else:
            assert entry["reason"]


def _awkward_folder(root: Path) -> Path:
    """Six usable songs among every kind of trouble."""
    for i in range(3):
        write_wav(root / "good" / f"song {i}.wav", tone_song(i))
    write_wav(root / "good" / "dc offset.wav", 0.3 + 0.5 * tone_song(7))
    write_wav(root / "good" / "96k stereo.wav", np.stack([_sine(96000, 1.0)] * 2, axis=1), 96000)
    write_wav(root / "good" / "24bit.wav", tone_song(8), subtype="PCM_24")
    (root / "bad").mkdir()
    (root / "bad" / "zero.mp3").write_bytes(b"")
    (root / "bad" / "tag only.mp3").write_bytes(_id3_only())
    (root / "bad" / "not audio.wav").write_bytes(b"hello" * 100)
    write_wav(root / "bad" / "short.wav", _sine(SR, seconds=0.05))
    write_wav(root / "bad" / "silent.wav", np.zeros(SR, np.float32))
    write_wav(root / "bad" / "dc only.wav", np.full(SR, 0.25, np.float32))
    return root


SKIPPED = {
    "bad/zero": "empty file",
    "bad/tag only": "only an ID3 tag",
    "bad/not audio": "cannot decode audio",
    "bad/short": "too short",
    "bad/silent": "silent",
    "bad/dc only": "silent",  # zero variance: never a NaN, never trained on
}


def test_training_survives_every_kind_of_trouble_and_ends_with_a_summary(tmp_path, capsys):
    root = _awkward_folder(tmp_path / "music")
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            str(root),
            "--songs",
            "20",
            "--seconds",
            "1",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--chunk",
            "4096",  # longer than the 0.3 s song below: one padded chunk
            "--batch",
            "3",
            "--decode-workers",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    info = json.loads((out / "run.json").read_text())
    skipped = {s["id"]: s["reason"] for s in info["corpus"]["skipped"]}
    assert set(skipped) == set(SKIPPED)
    for track_id, fragment in SKIPPED.items():
        assert fragment in skipped[track_id]
    used = info["corpus"]["train"] + info["corpus"]["val"]
    assert len(used) == 6
    assert np.isfinite(info["metrics"]["train_loss"]) and np.isfinite(info["codec"]["scale"])
    # the run ends with the summary of what was skipped (then only where things were written)
    lines = text.strip().splitlines()
    summary = [
        i for i, line in enumerate(lines) if line.startswith("skipped 6 unusable track(s): ")
    ]
    assert summary and all(
        line.startswith(("report:", "run folder:")) for line in lines[summary[0] + 1 :]
    )


def test_a_song_shorter_than_one_chunk_trains_padded(tmp_path):
    from noizenet.train import train

    root = tmp_path / "short songs"
    for i in range(3):
        write_wav(root / f"s{i}.wav", tone_song(i, 0.3))
    cfg = Config().with_overrides(
        {
            "data.source": str(root),
            "data.songs": 2,
            "data.decode_workers": 1,
            "model.hidden": 4,
            "train.epochs": 1,
            "train.chunk": 8192,  # 0.37 s > every song
            "train.batch": 2,
        }
    )
    run = train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)
    assert np.isfinite(run.metrics()[0]["train_loss"])
    assert run.metrics()[0]["samples"] == 2 * (round(0.3 * SR) - 1)


def test_nothing_usable_is_one_line_and_exit_code_2(tmp_path, capsys):
    root = tmp_path / "all bad"
    root.mkdir()
    (root / "a.mp3").write_bytes(b"")
    (root / "b.mp3").write_bytes(_id3_only())
    write_wav(root / "c.wav", np.zeros(SR, np.float32))
    code = main(["train", "--data", str(root), "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no usable audio (3 skipped" in err
    assert "a: empty file" in err


def test_zero_variance_never_produces_nan_in_the_codec():
    from noizenet.codecs import RawCodec

    for scaling in ("corpus", "per-file"):
        codec = RawCodec(scaling=scaling).fit([np.full(1000, 0.25, np.float32)])
        values = codec.encode(np.full(10, 0.25, np.float32), stats=codec.stats_for(None))
        assert np.all(np.isfinite(values)) and np.isfinite(codec.scale) and codec.scale > 0


def test_data_inspect_decode_gives_every_track_its_final_status(tmp_path, capsys):
    root = _awkward_folder(tmp_path / "music")
    args = ["data", "inspect", str(root), "--decode", "--decode-workers", "1", "--quiet"]
    assert main([*args, "--songs", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    status = {t["id"]: t["status"] for t in report["tracks"]}
    assert len(status) == 12
    for track_id, fragment in SKIPPED.items():
        assert fragment in status[track_id]
    assert {i: s for i, s in status.items() if i.startswith("good/")} == {
        i: "ok" for i in status if i.startswith("good/")
    }
    bad = report["totals"]["genre"]["bad"]
    assert (bad["tracks"], bad["ok"], bad["skipped"], bad["unchecked"]) == (6, 0, 6, 0)
    assert report["totals"]["genre"]["good"]["ok"] == 6
    assert len(report["run"]["train"]) == 3 and len(report["run"]["val"]) == 1
    by_id = {t["id"]: t for t in report["tracks"]}
    assert (
        by_id["good/96k stereo"]["source_sr"] == 96000 and by_id["good/96k stereo"]["channels"] == 2
    )

    assert main(args) == 0
    text = capsys.readouterr().out
    assert "totals by genre:" in text and "totals by split:" not in text


def test_data_inspect_has_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "inspect", "--help"])
    assert exc.value.code == 0
    assert "usage: noizenet data inspect" in capsys.readouterr().out
