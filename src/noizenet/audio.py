"""Decode, resample, mix to mono and write audio (librosa + soundfile).

Every error names the file and the problem in one line (:class:`~noizenet.errors.AudioError`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from noizenet.errors import AudioError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au")
SAMPLE_RATE = 22050


def load(
    path: str | Path, *, sr: int = SAMPLE_RATE, offset: float = 0.0, duration: float | None = None
) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sr`` Hz.

    Parameters
    ----------
    path : audio file (WAV, FLAC, OGG, MP3, ...)
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
    try:
        with warnings.catch_warnings():  # librosa warns before its audioread fallback
            warnings.simplefilter("ignore")
            y, _ = librosa.load(
                path, sr=sr, mono=True, offset=offset, duration=duration, dtype=np.float32
            )
    except Exception as exc:  # decoders raise many types; all mean "cannot decode"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AudioError(f"{path}: cannot decode audio ({reason})") from None
    if y.size == 0:
        raise AudioError(f"{path}: no audio samples (after offset {offset:g} s)")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: contains non-finite samples")
    return np.ascontiguousarray(y, dtype=np.float32)


def write(path: str | Path, y: np.ndarray, *, sr: int = SAMPLE_RATE) -> Path:
    """Write mono audio as 16-bit PCM WAV, atomically; samples are clipped to [-1, 1].

    Refuses non-finite samples: a NaN must never reach a WAV file.
    """
    import soundfile as sf

    from noizenet.io import atomic_path

    path = Path(path)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    bad = int(np.size(y) - np.count_nonzero(np.isfinite(y)))
    if bad:
        raise AudioError(f"{path}: refusing to write {bad} non-finite samples")
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(y, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    return path


def info(path: str | Path) -> dict:
    """Sample rate, channels and duration of a file, without decoding it all."""
    import soundfile as sf

    try:
        i = sf.info(str(path))
    except Exception as exc:
        raise AudioError(f"{path}: cannot read audio header ({exc})") from None
    return {"sample_rate": i.samplerate, "channels": i.channels, "seconds": i.duration}
