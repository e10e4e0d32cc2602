"""Numbers about audio and runs, each against what a signal-processing engineer would compare to.

* one-step prediction (the paper's "reproduction"): :func:`snr_db` of the model's prediction,
  beside two baselines on the same samples, :func:`persistence_prediction` (next sample = this
  sample) and :func:`lpc_prediction` (linear prediction of order 32, :func:`fit_lpc` on the
  training tracks with ``librosa.lpc``);
* free-running generation: :func:`collapse_time` (when it goes quiet or loops), and how it sounds
  next to real music: :func:`log_mel_frechet_distance`, :func:`spectral_flatness`,
  :func:`dc_offset`, :func:`clipped_fraction`; a generative baseline is :func:`lpc_synthesis`;
* categorical codecs: :func:`bits_per_sample` on held-out audio.

Plain functions over arrays (``y`` audio in full-scale units, ``sr`` in Hz); librosa and scipy
are imported where they are used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LPC_ORDER = 32  # the linear-prediction baseline's order
LOOP_MAX_S = 0.01  # an output exactly periodic with a period under this is a stuck loop
# log-mel frames for the Frechet distance: ~12 ms hop, 32 bands, so even 1 s gives 87 frames
MEL_N_FFT = 1024
MEL_HOP = 256
MEL_BANDS = 32


# -- collapse --------------------------------------------------------------------------------
def rolling_std(
    y: np.ndarray, *, sr: int = 22050, window_s: float = 0.05, hop_s: float = 0.001
) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviation of ``y`` in sliding windows, each window's own mean removed.

    Removing the mean makes a constant output (the paper's MSE models settle on a constant
    offset, not on zero) read as zero. Returns (window start times in s, std per window).
    """
    y = np.asarray(y, dtype=np.float64)
    w = max(1, round(window_s * sr))
    hop = max(1, round(hop_s * sr))
    if y.size < w:
        return np.zeros(0), np.zeros(0)
    c1 = np.concatenate([[0.0], np.cumsum(y)])
    c2 = np.concatenate([[0.0], np.cumsum(y * y)])
    starts = np.arange(0, y.size - w + 1, hop)
    mean = (c1[starts + w] - c1[starts]) / w
    var = (c2[starts + w] - c2[starts]) / w - mean**2
    return starts / sr, np.sqrt(np.maximum(var, 0.0))


def loop_onset(
    y: np.ndarray,
    *,
    sr: int = 22050,
    max_period_s: float = LOOP_MAX_S,
    min_length_s: float = 0.05,
    atol: float = 0.0,
) -> float | None:
    """Seconds until ``y`` repeats exactly with a period under ``max_period_s``, to its end.

    A model stuck in a loop: ``y[t] == y[t - p]`` (within ``atol``) for every t from some point
    to the end, for some period p of 1 sample up to ``max_period_s``. The loop's onset is the
    first sample of its first cycle. The looping tail must last at least ``min_length_s`` and
    two periods, so a few equal samples at the end of a take do not count. A constant is a loop
    of period 1 sample. Returns None when no such tail exists.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    min_len = max(2, round(min_length_s * sr))

    def start_of(p: int, hi: int) -> int:
        """First t from which y[t + p] == y[t] holds through t < hi (and, known, beyond)."""
        differs = np.flatnonzero(np.abs(y[p : hi + p] - y[:hi]) > atol)
        return 0 if differs.size == 0 else int(differs[-1]) + 1

    best = None
    first: tuple[int, int] | None = None  # (period, onset) of the shortest looping period
    for p in range(1, max(1, round(max_period_s * sr)) + 1):
        need = max(min_len, 2 * p)
        if n < need:
            break
        # cheap test first: the final stretch must already repeat with this period
        tail = np.abs(y[n - need + p :] - y[n - need : n - p]) <= atol
        if not tail.all():
            continue
        if first is not None and p % first[0] == 0:
            # a multiple of a looping period repeats wherever that loop does: only the audio
            # before that loop's onset can move the start earlier (keeps a long constant tail
            # from costing one full pass per period)
            start = start_of(p, min(first[1] + p, n - p))
        else:
            start = start_of(p, n - p)
            if first is None:
                first = (p, start)
        if best is None or start < best:
            best = start
        if best == 0:
            break
    return None if best is None else best / sr


def collapse_time(
    y: np.ndarray,
    *,
    sr: int = 22050,
    reference_rms: float,
    window_s: float = 0.05,
    threshold: float = 0.01,
    loop_max_s: float = LOOP_MAX_S,
) -> float | None:
    """Seconds of generated audio until it collapses, or None ("never") within its length.

    Collapsed means either

    * quiet: the rolling ``window_s`` standard deviation (each window's mean removed, so a
      constant or DC output counts, see :func:`rolling_std`) stays below
      ``threshold * reference_rms`` from that point to the end; the time is the start of the
      first window of that final quiet stretch (0.0: collapsed from the start); or
    * looping: the output repeats exactly (up to float32 rounding, ``1e-6 * reference_rms``)
      with a period under ``loop_max_s`` from that point to the end (:func:`loop_onset`);

    whichever comes first. ``reference_rms`` is the training audio's RMS.
    """
    times, std = rolling_std(y, sr=sr, window_s=window_s)
    if std.size == 0:
        return None
    quiet: float | None
    loud = np.nonzero(std >= threshold * reference_rms)[0]
    if loud.size == 0:
        quiet = 0.0
    elif loud[-1] == std.size - 1:
        quiet = None
    else:
        quiet = float(times[loud[-1] + 1])
    loop = loop_onset(
        y, sr=sr, max_period_s=loop_max_s, min_length_s=window_s, atol=1e-6 * reference_rms
    )
    found = [t for t in (quiet, loop) if t is not None]
    return min(found) if found else None


# -- one-step prediction (reproduction) ------------------------------------------------------
def snr_db(y: np.ndarray, predicted: np.ndarray, *, skip: int = 1) -> float:
    """Signal-to-error ratio in dB: ``10 log10(sum y^2 / sum (y - predicted)^2)``.

    Over ``y[skip:]``: the first sample has no past to be predicted from. A perfect prediction
    is capped at 200 dB; predicting zeros gives 0 dB.
    """
    y = np.asarray(y, dtype=np.float64)[skip:]
    err = y - np.asarray(predicted, dtype=np.float64)[skip:]
    signal = float(np.sum(y * y))
    noise = float(np.sum(err * err))
    return float(10 * np.log10(max(signal, 1e-30) / max(noise, signal * 1e-20, 1e-30)))


def persistence_prediction(y: np.ndarray) -> np.ndarray:
    """The persistence baseline: each sample predicted as the one before it (``y[0]`` as is)."""
    y = np.asarray(y, dtype=np.float32)
    return np.concatenate([y[:1], y[:-1]])


def fit_lpc(tracks: list[np.ndarray], *, order: int = LPC_ORDER) -> np.ndarray:
    """Linear-prediction coefficients ``a`` (``a[0] = 1``) fitted on training tracks.

    ``librosa.lpc`` (Burg's method) on the tracks joined end to end; the few junctions are
    negligible next to the tracks' length. Burg's method gives a stable (minimum-phase) filter,
    so :func:`lpc_synthesis` never blows up. The prediction of ``y[t]`` is
    ``-sum(a[k] * y[t - k] for k in 1..order)``.
    """
    import librosa

    y = np.concatenate([np.asarray(t, dtype=np.float64).reshape(-1) for t in tracks])
    if y.size <= order:
        raise ValueError(f"need more than {order} samples to fit LPC of order {order}")
    return np.asarray(librosa.lpc(y, order=order), dtype=np.float64)


def lpc_prediction(y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """One-step linear prediction of every sample of ``y`` from its past (zeros before it)."""
    from scipy.signal import lfilter

    a = np.asarray(a, dtype=np.float64)
    b = np.concatenate([[0.0], -a[1:]])  # y_hat[t] = -a1 y[t-1] - ... - ap y[t-p]
    return lfilter(b, [1.0], np.asarray(y, dtype=np.float64)).astype(np.float32)


def lpc_residual_std(tracks: list[np.ndarray], a: np.ndarray) -> float:
    """Standard deviation of the linear-prediction error over ``tracks``."""
    err = [np.asarray(t, np.float64) - lpc_prediction(t, a) for t in tracks]
    return float(np.std(np.concatenate(err)))


def lpc_synthesis(
    a: np.ndarray,
    *,
    seed: np.ndarray,
    n: int,
    residual_std: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The linear-prediction generative baseline: the all-pole filter ``1 / A(z)``, its state
    primed on the last ``order`` samples of ``seed``, driven by white noise with the training
    residual's standard deviation (LPC vocoder-style synthesis). Returns (n,) float32.
    """
    from scipy.signal import lfilter, lfiltic

    a = np.asarray(a, dtype=np.float64)
    order = a.size - 1
    past = np.asarray(seed, dtype=np.float64)[-order:][::-1]  # most recent first
    zi = lfiltic([1.0], a, past)
    e = rng.standard_normal(n) * residual_std
    y, _ = lfilter([1.0], a, e, zi=zi)
    return y.astype(np.float32)


# -- how generated audio sounds next to real audio --------------------------------------------
def log_mel_frames(y: np.ndarray, *, sr: int = 22050) -> np.ndarray:
    """Log-mel frames (frames, 32) in dB re full scale: ``n_fft`` 1024, hop 256, 32 bands,
    power floored at 1e-10 (-100 dB), so silence is far from music, not undefined."""
    import librosa

    S = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float32),
        sr=sr,
        n_fft=MEL_N_FFT,
        hop_length=MEL_HOP,
        n_mels=MEL_BANDS,
        power=2.0,
    )
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None).T


def frechet_distance(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray, *, eps: float = 1e-6
) -> float:
    """Frechet distance between Gaussians: ``|mu1 - mu2|^2 + tr(C1 + C2 - 2 sqrtm(C1 C2))``.

    ``eps`` is added to the diagonals when the product's square root is not finite (nearly
    singular covariances, e.g. a constant signal), as FID implementations do.
    """
    from scipy import linalg

    diff = np.asarray(mu1) - np.asarray(mu2)
    covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(cov1.shape[0]) * eps
        covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = np.real(covmean)
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))
    return max(value, 0.0)


def log_mel_frechet_distance(
    generated: np.ndarray | list[np.ndarray],
    reference: np.ndarray | list[np.ndarray],
    *,
    sr: int = 22050,
) -> float:
    """Frechet distance between the log-mel frame statistics of two sets of audio.

    Each side's frames (:func:`log_mel_frames`, pooled over its signals) are summarised by their
    mean and covariance, and the Frechet distance between the two Gaussians is returned (dB^2).
    0 for identical statistics; larger is further apart. This is the idea of the Frechet Audio
    Distance on plain log-mel frames: it is *not* FAD, which uses VGGish embeddings, and its
    values are not comparable with published FAD numbers. With few frames (under a few seconds)
    the covariance is noisy and the distance biased upwards; compare takes of equal length.
    """
    stats = []
    for side in (generated, reference):
        signals = [side] if isinstance(side, np.ndarray) else list(side)
        frames = np.concatenate([log_mel_frames(s, sr=sr) for s in signals], axis=0)
        if frames.shape[0] < 2:
            raise ValueError("need at least 2 log-mel frames per side (about 12 ms of audio)")
        stats.append((frames.mean(axis=0), np.cov(frames, rowvar=False)))
    (mu1, c1), (mu2, c2) = stats
    return frechet_distance(mu1, c1, mu2, c2)


def spectral_flatness(y: np.ndarray, *, n_fft: int = 2048, hop_length: int = 512) -> float:
    """Spectral flatness of the long-term power spectrum: near 1 for white noise, near 0 for
    a few tones.

    The mean is removed (DC is measured by :func:`dc_offset`), the STFT power is averaged over
    all frames, and ``librosa.feature.spectral_flatness`` (geometric over arithmetic mean of the
    power) is taken of that average. Averaging first measures the signal's spectral shape; the
    flatness of single frames of white noise is only ~0.56, because a periodogram fluctuates.

    The STFT is librosa's (centred, zero-padded, periodic Hann window) computed with numpy a
    block of frames at a time: importing librosa costs more than a second, which a take made
    during training should not pay.
    """
    y = np.asarray(y, dtype=np.float64)
    y = np.pad(y - y.mean(), n_fft // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = 1 + (y.size - n_fft) // hop_length
    power = np.zeros(n_fft // 2 + 1)
    for f0 in range(0, frames, 256):  # a few MB of frames at a time
        starts = np.arange(f0, min(f0 + 256, frames)) * hop_length
        spectra = np.fft.rfft(y[starts[:, None] + np.arange(n_fft)] * window, axis=1)
        power += np.sum(np.abs(spectra) ** 2, axis=0)
    power = np.maximum(power / frames, 1e-10)  # librosa's amin
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


def dc_offset(y: np.ndarray) -> float:
    """The mean of ``y`` in full-scale units (0 for audio centred on silence)."""
    return float(np.mean(np.asarray(y, dtype=np.float64)))


def clipped_fraction(y: np.ndarray) -> float:
    """Fraction of samples at or beyond full scale (``|y| >= 1``): the WAV writer clips them."""
    y = np.asarray(y)
    return float(np.count_nonzero(np.abs(y) >= 1.0) / max(y.size, 1))


def audio_stats(y: np.ndarray, *, sr: int = 22050, reference_rms: float) -> dict[str, Any]:
    """Collapse time, flatness, DC offset and clipped fraction of one generated signal.

    Flatness is taken of the part before the collapse only (None if that is shorter than one
    2048-sample frame): after it the signal is a constant or a loop, and the flatness of what
    is left (rounding noise once the mean is removed) would read as white noise.
    """
    t = collapse_time(y, sr=sr, reference_rms=reference_rms)
    playing = np.asarray(y) if t is None else np.asarray(y)[: round(t * sr)]
    return {
        "collapse_s": t,
        "flatness": spectral_flatness(playing) if playing.size >= 2048 else None,
        "dc_offset": dc_offset(y),
        "clipped_fraction": clipped_fraction(y),
    }


# -- categorical codecs ------------------------------------------------------------------------
def bits_per_sample(model: Any, codec: Any, tracks: list[np.ndarray]) -> float | None:
    """Cross-entropy of one-step prediction on ``tracks`` in bits per sample.

    Categorical heads only (mu-law, linear-q): the mean over every predicted sample of
    ``-log2 p(next class)``, state carried through each track. ``log2(levels)`` is a uniform
    guess (8 bits for 256 levels). None for regression heads, which have no distribution.
    """
    if not model.spec.categorical:
        return None
    from noizenet.models.loss import bits_per_sample as model_bits

    return model_bits(model, [codec.encode(t) for t in tracks])
