"""Numerical "views" of an audio signal (paper, section 5.1.2).

This module only computes; :mod:`noizenet.analysis.figures` draws.  The split mirrors
librosa's ``feature.*`` (numbers) versus ``display.specshow`` (pictures), so the numbers
can be tested, cached or plotted elsewhere without matplotlib.

Views
-----
* sample view: the waveform itself (nothing to compute beyond :func:`validate_signal`);
* envelope view: :func:`envelope`, the frame-wise RMS amplitude over time;
* spectrogram: :func:`spectrogram_db`, the magnitude STFT in decibels.

All functions take a mono, 1-D, finite signal and keyword-only options.  librosa is
imported lazily inside the functions because importing it is slow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_SR",
    "envelope",
    "spectrogram_db",
    "spectrogram_frequencies",
    "spectrogram_times",
    "validate_signal",
]

#: Sample rate used throughout NoizeNet (Hz).
DEFAULT_SR = 22050


def validate_signal(y: Any, *, name: str = "y") -> np.ndarray:
    """Check that ``y`` is a usable mono audio signal and return it as a float array.

    Parameters
    ----------
    y : array_like
        Audio samples.  Must be one-dimensional (mono), non-empty, real-valued and
        finite.  Integer input is converted to float32 *without* rescaling.
    name : str, optional
        How to refer to the signal in error messages, e.g. ``"signal 'LSTM'"``.

    Returns
    -------
    numpy.ndarray
        ``y`` as a 1-D floating-point array (float32 unless it already was float64).

    Raises
    ------
    ValueError
        If ``y`` is not 1-D, is empty, is not real-valued numeric, or contains NaN/inf
        samples (the message counts them).
    """
    arr = np.asarray(y)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be a 1-D array of real audio samples, got dtype {arr.dtype}")
    if arr.ndim != 1:
        hint = "; mix down to mono first" if arr.ndim == 2 else ""
        raise ValueError(
            f"{name} must be a 1-D (mono) array of audio samples, got shape {arr.shape}{hint}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of audio samples, got 0 samples")
    if not np.issubdtype(arr.dtype, np.floating) or arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if n_bad:
        raise ValueError(
            f"{name} contains {n_bad} non-finite sample{'s' if n_bad != 1 else ''} "
            f"(NaN or inf) out of {arr.size}"
        )
    return arr


def _check_sr(sr: Any) -> float:
    try:
        ok = float(sr) > 0 and np.isfinite(float(sr))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"sr must be a positive sample rate in Hz, got {sr!r}")
    return sr


def _ms_to_samples(ms: float, sr: float, what: str) -> int:
    if not (np.isfinite(ms) and ms > 0):
        raise ValueError(f"{what} must be a positive number of milliseconds, got {ms!r}")
    n = round(float(sr) * float(ms) / 1000.0)
    if n < 1:
        raise ValueError(f"{what}={ms} ms is shorter than one sample at sr={sr}")
    return int(n)


def envelope(
    y: Any,
    *,
    sr: float = DEFAULT_SR,
    frame_ms: float = 20.0,
    hop_ms: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude envelope (frame-wise RMS) of a signal — the paper's envelope view.

    Parameters
    ----------
    y : array_like
        Mono audio signal (1-D, finite).
    sr : float, optional
        Sample rate in Hz.
    frame_ms : float, optional
        RMS analysis frame length in milliseconds (rounded to whole samples).
    hop_ms : float, optional
        Distance between frame centres in milliseconds (rounded to whole samples).

    Returns
    -------
    times : numpy.ndarray
        Frame-centre times in seconds, starting at 0 (frames are centred,
        ``librosa.feature.rms(center=True)``).
    rms : numpy.ndarray
        RMS amplitude of each frame, same length as ``times``.  A steady sine of
        amplitude ``a`` gives ``a / sqrt(2)``.

    Raises
    ------
    ValueError
        If ``y`` is not a 1-D finite signal or an option is not positive.
    """
    import librosa

    y = validate_signal(y)
    sr = _check_sr(sr)
    frame_length = _ms_to_samples(frame_ms, sr, "frame_ms")
    hop_length = _ms_to_samples(hop_ms, sr, "hop_ms")
    rms = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop_length, center=True)[0]
    times = librosa.frames_to_time(np.arange(rms.shape[-1]), sr=sr, hop_length=hop_length)
    return times, rms


def spectrogram_db(
    y: Any,
    *,
    sr: float = DEFAULT_SR,
    n_fft: int = 1024,
    hop_length: int = 256,
    top_db: float = 80.0,
) -> np.ndarray:
    """Magnitude spectrogram in decibels relative to its loudest bin.

    Parameters
    ----------
    y : array_like
        Mono audio signal (1-D, finite).
    sr : float, optional
        Sample rate in Hz.  It does not change the numbers; it is validated so that
        callers passing a wrong rate find out here.  Bin ``k`` is at ``k * sr / n_fft`` Hz
        (see :func:`spectrogram_frequencies`).
    n_fft : int, optional
        FFT size; the result has ``1 + n_fft // 2`` frequency rows.
    hop_length : int, optional
        Samples between frames; frame ``t`` is centred at ``t * hop_length / sr`` seconds
        (see :func:`spectrogram_times`).
    top_db : float, optional
        Dynamic range kept below the maximum.

    Returns
    -------
    numpy.ndarray, shape (1 + n_fft // 2, n_frames)
        ``librosa.amplitude_to_db(|STFT|, ref=np.max, top_db=top_db)``: values lie in
        ``[-top_db, 0]``.  Always finite.  An all-zero (silent) signal has no reference
        level; it is returned as ``-top_db`` everywhere (the floor), not as 0 dB.

    Raises
    ------
    ValueError
        If ``y`` is not a 1-D finite signal or an option is invalid.
    """
    import librosa

    y = validate_signal(y)
    _check_sr(sr)
    if int(n_fft) != n_fft or n_fft < 2:
        raise ValueError(f"n_fft must be an integer >= 2, got {n_fft!r}")
    if int(hop_length) != hop_length or hop_length < 1:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
    if not (np.isfinite(top_db) and top_db > 0):
        raise ValueError(f"top_db must be a positive number of decibels, got {top_db!r}")
    n_fft, hop_length = int(n_fft), int(hop_length)
    if y.size < n_fft:
        # librosa warns when the (centre-padded) signal is shorter than one window;
        # zero-padding to a full window is what it would do anyway.
        y = np.pad(y, (0, n_fft - y.size))
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length, center=True))
    if not np.any(S > 0):
        return np.full(S.shape, -float(top_db), dtype=S.dtype)
    S_db = librosa.amplitude_to_db(S, ref=np.max, top_db=float(top_db))
    # amplitude_to_db clips at amin, so this only guards against surprises upstream.
    return np.nan_to_num(S_db, nan=-float(top_db), posinf=0.0, neginf=-float(top_db))


def spectrogram_frequencies(*, sr: float = DEFAULT_SR, n_fft: int = 1024) -> np.ndarray:
    """Centre frequency in Hz of each row of :func:`spectrogram_db`.

    Parameters
    ----------
    sr : float, optional
        Sample rate in Hz.
    n_fft : int, optional
        FFT size used for the spectrogram.

    Returns
    -------
    numpy.ndarray, shape (1 + n_fft // 2,)
        ``k * sr / n_fft`` for ``k = 0 .. n_fft // 2``.
    """
    _check_sr(sr)
    return np.arange(1 + int(n_fft) // 2) * (float(sr) / int(n_fft))


def spectrogram_times(
    n_frames: int, *, sr: float = DEFAULT_SR, hop_length: int = 256
) -> np.ndarray:
    """Centre time in seconds of each column of :func:`spectrogram_db`.

    Parameters
    ----------
    n_frames : int
        Number of spectrogram columns.
    sr : float, optional
        Sample rate in Hz.
    hop_length : int, optional
        Hop length used for the spectrogram.

    Returns
    -------
    numpy.ndarray, shape (n_frames,)
        ``t * hop_length / sr`` (frames are centred, so column 0 is at 0 s).
    """
    _check_sr(sr)
    return np.arange(int(n_frames)) * (int(hop_length) / float(sr))
