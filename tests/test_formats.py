"""Audio formats beyond libsndfile's classics: Ogg Opus, and AAC / WMA through ffmpeg."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, tone_song, write_wav

from noizenet import audio
from noizenet.cli import main
from noizenet.errors import AudioError

_REPO = Path(__file__).resolve().parents[1]
# ../shared/real-music beside the checkout (a worktree sits one folder deeper)
REAL_TRACK = next(
    (p for d in (_REPO.parent, _REPO.parents[1]) for p in d.glob("shared/real-music/*track1.opus")),
    None,
)
needs_real = pytest.mark.skipif(REAL_TRACK is None, reason="no ../shared/real-music here")


@needs_real
def test_a_real_opus_track_decodes_resampled_to_mono():
    y = audio.load(REAL_TRACK, sr=SR, offset=60.0, duration=2.0)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.size == 2 * SR
    assert float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) > 0.01  # music, not silence
    assert audio.info(REAL_TRACK)["sample_rate"] == 48000


def _opus(path: Path, y: np.ndarray, sr: int = 48000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([y, 0.5 * y], axis=1), sr, format="OGG", subtype="OPUS")
    return path


def test_a_folder_of_only_opus_files_is_inspected_and_listed(tmp_path, capsys):
    root = tmp_path / "opus only"
    t = np.arange(3 * 48000) / 48000
    for i in range(2):
        _opus(root / f"take {i}.opus", (0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t)))
    args = ["data", "inspect", str(root), "--songs", "1", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "take 0" in out and "take 1" in out and "48000" in out
    assert "a training run would use 1 training track(s) (3.0 s) and 1 validation" in out


def _unusable_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "notes.txt").write_text("not audio")
    (root / "broken.opus").write_bytes(b"OggS" + bytes(range(256)) * 4)
    return root


def test_a_folder_with_no_usable_audio_is_one_line_and_exit_2_from_every_verb(
    tmp_path, capsys, tiny_run
):
    bad = _unusable_folder(tmp_path / "bad")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here")
    runs = tmp_path / "runs"
    verbs = {
        "train": ["train", "--data", str(bad), "--out", str(runs / "a")],
        "train (no audio file)": ["train", "--data", str(empty), "--out", str(runs / "b")],
        "data inspect": ["data", "inspect", str(bad)],
        "data inspect (no audio file)": ["data", "inspect", str(empty)],
        "evaluate": ["evaluate", str(tiny_run.path), "--data", str(bad)],
        "reproduce": ["reproduce", str(tiny_run.path), "--song", str(bad / "broken.opus")],
    }
    for name, argv in verbs.items():
        assert main([*argv, "--quiet"]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1, (name, err)
        assert ("broken" in err) or ("no audio files found" in err and ".opus" in err), err


def _fake_ffmpeg(bin_dir: Path) -> Path:
    """A stand-in ffmpeg: reads the (WAV) input with soundfile, pipes float32 as ffmpeg does."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "ffmpeg"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys, numpy as np, soundfile as sf\n"
        "a = sys.argv[1:]\n"
        "opt = lambda k, d=None: a[a.index(k) + 1] if k in a else d\n"
        "y, sr = sf.read(opt('-i'), dtype='float32', always_2d=True)\n"
        "assert int(opt('-ar')) == sr and opt('-ac') == '1' and a[-1] == '-'\n"
        "start = round(float(opt('-ss', 0)) * sr)\n"
        "stop = start + round(float(opt('-t'))* sr) if opt('-t') else None\n"
        "sys.stdout.buffer.write(y.mean(axis=1)[start:stop].astype('<f4').tobytes())\n"
    )
    exe.chmod(0o755)
    return bin_dir


def test_m4a_decodes_through_ffmpeg_on_the_path(tmp_path, monkeypatch):
    y = tone_song(3, seconds=1.0)
    song = write_wav(tmp_path / "song.m4a", y, format="WAV")  # WAV bytes, as the fake reads
    monkeypatch.setenv("PATH", str(_fake_ffmpeg(tmp_path / "bin")))
    got = audio.load(song, sr=SR, offset=0.25, duration=0.5)
    assert got.size == SR // 2
    want = sf.read(song, dtype="float32")[0][SR // 4 : SR // 4 + SR // 2]
    assert np.allclose(got, want, atol=1e-6)
    assert audio.info(song) == {"sample_rate": None, "channels": None, "seconds": None}


def test_without_ffmpeg_an_m4a_says_what_to_install(tmp_path, monkeypatch, capsys):
    root = tmp_path / "aac"
    write_wav(root / "song.m4a", tone_song(1), format="WAV")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # nothing on the path: no ffmpeg
    assert os.environ["PATH"] == str(tmp_path / "no-bin")
    with pytest.raises(AudioError, match=r"song\.m4a: install ffmpeg to read \.m4a files"):
        audio.load(root / "song.m4a")
    code = main(["train", "--data", str(root), "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "install ffmpeg to read .m4a files" in err
