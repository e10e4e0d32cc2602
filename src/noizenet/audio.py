"""Decode, resample, mix to mono and write audio (librosa + soundfile; ffmpeg where present).

libsndfile reads WAV, FLAC, Ogg Vorbis, Ogg Opus, MP3, AIFF and AU; the formats it cannot read
(AAC in ``.m4a``/``.aac``, WMA) are decoded by an ``ffmpeg`` found on ``PATH``.
Every error names the file and the problem in one line (:class:`~noizenet.errors.AudioError`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np

from noizenet.errors import AudioError
from noizenet.io import atomic_path

#: What libsndfile decodes (through librosa, which resamples with soxr).
SNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au")
#: What only ffmpeg decodes here.
FFMPEG_EXTENSIONS = (".m4a", ".aac", ".wma")
#: Every extension a folder corpus lists.
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS + FFMPEG_EXTENSIONS
SAMPLE_RATE = 22050


def load(
    path: str | Path, *, sr: int = SAMPLE_RATE, offset: float = 0.0, duration: float | None = None
) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sr`` Hz.

    Parameters
    ----------
    path : audio file (WAV, FLAC, Ogg Vorbis or Opus, MP3, ...; M4A, AAC, WMA with ffmpeg)
    sr : target sample rate in Hz; the file is resampled (soxr, high quality) if it differs
    offset : seconds to skip at the start
    duration : seconds to keep (None: to the end)

    Returns
    -------
    y : np.ndarray, shape (samples,), float32, finite

    Example
    -------
    >>> y = load("song.mp3", duration=15.0)  # doctest: +SKIP
    """
    import librosa

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        y = _ffmpeg_load(path, sr=sr, offset=offset, duration=duration)
        return _checked(path, y, offset)
    try:
        with warnings.catch_warnings():  # librosa warns before its audioread fallback
            warnings.simplefilter("ignore")
            y, _ = librosa.load(
                path, sr=sr, mono=True, offset=offset, duration=duration, dtype=np.float32
            )
    except Exception as exc:  # decoders raise many types; all mean "cannot decode"
        known = sniff(path)
        if known:
            raise AudioError(f"{path}: {known}") from None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if reason in ("NoBackendError", "EOFError"):  # librosa's fallback found nothing to read
            reason = "not a recognised audio format"
        raise AudioError(f"{path}: cannot decode audio ({reason})") from None
    return _checked(path, y, offset)


def _checked(path: Path, y: np.ndarray, offset: float) -> np.ndarray:
    if y.size == 0:
        raise AudioError(f"{path}: no audio samples (after offset {offset:g} s)")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: contains non-finite samples")
    return np.ascontiguousarray(y, dtype=np.float32)


def _ffmpeg(path: Path, tool: str = "ffmpeg") -> str:
    """The ffmpeg (or ffprobe) executable, or an error saying what to install."""
    exe = shutil.which(tool)
    if exe is None:
        raise AudioError(f"{path}: install ffmpeg to read {path.suffix.lower()} files")
    return exe


def _ffmpeg_load(path: Path, *, sr: int, offset: float, duration: float | None) -> np.ndarray:
    """Decode with ffmpeg to mono float32 at ``sr`` Hz, piped as raw samples (no temporary file)."""
    cmd = [_ffmpeg(path), "-nostdin", "-v", "error", "-ss", f"{offset:.6f}", "-i", str(path)]
    if duration is not None:
        cmd += ["-t", f"{duration:.6f}"]
    cmd += ["-map", "0:a:0", "-ac", "1", "-ar", str(int(sr)), "-f", "f32le", "-"]
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1] if lines else f"ffmpeg exit status {done.returncode}"
        raise AudioError(f"{path}: cannot decode audio (ffmpeg: {reason})")
    return np.frombuffer(done.stdout[: len(done.stdout) // 4 * 4], dtype="<f4").astype(np.float32)


_MPEG_SYNC = re.compile(rb"\xff[\xe0-\xff]")  # the 11 set bits that open every MPEG audio frame


def sniff(path: str | Path) -> str | None:
    """Name a problem visible in the file's first bytes, or None.

    Catches what decoders report badly: a missing or empty file, and an MP3 that is only an ID3
    tag with no audio frames after it (real FMA has such 1.7 KB files, e.g. 099134.mp3).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file (0 bytes)"
        with open(path, "rb") as fh:
            head = fh.read(10)
            if len(head) < 10 or head[:3] != b"ID3":
                return None
            # ID3v2 header: "ID3", version (2), flags (1), size (4 bytes of 7 bits each)
            tag = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
            if head[5] & 0x10:  # a footer follows the tag
                tag += 10
            fh.seek(tag)
            rest = fh.read(1 << 16)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if not _MPEG_SYNC.search(rest):
        return f"only an ID3 tag ({size:,} bytes), no audio frames"
    return None


def write(path: str | Path, y: np.ndarray, *, sr: int = SAMPLE_RATE) -> Path:
    """Write mono audio as 16-bit PCM WAV, atomically; samples are clipped to [-1, 1].

    Refuses non-finite samples: a NaN must never reach a WAV file.
    """
    import soundfile as sf

    path = Path(path)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    bad = int(np.size(y) - np.count_nonzero(np.isfinite(y)))
    if bad:
        raise AudioError(f"{path}: refusing to write {bad} non-finite samples")
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(y, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    return path


def info(path: str | Path) -> dict:
    """Sample rate, channels and duration of a file, without decoding it all.

    For the formats only ffmpeg reads, the values are None (known once decoded); without
    ffmpeg an :class:`AudioError` says to install it.
    """
    import soundfile as sf

    if Path(path).suffix.lower() in FFMPEG_EXTENSIONS:
        _ffmpeg(Path(path))
        return {"sample_rate": None, "channels": None, "seconds": None}
    try:
        i = sf.info(str(path))
    except Exception as exc:
        raise AudioError(f"{path}: cannot read audio header ({exc})") from None
    return {"sample_rate": i.samplerate, "channels": i.channels, "seconds": i.duration}
