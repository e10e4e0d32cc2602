"""Generate music from a run: prime on a seed, then feed each output back (paper 5.5.2, 5.7).

Also the paper's "reproduction" (figures 23-25): teacher-forced one-step prediction of a song.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.errors import NoizeNetError
from noizenet.generate.kernels import Injection
from noizenet.generate.seeds import SeedSpec, make_seed, parse_seed


@dataclass
class Take:
    """One generated take: its audio, the seed it grew from, and where it was written."""

    audio: np.ndarray  # (samples,) float32 at the run's sample rate
    seed_audio: np.ndarray
    seed: SeedSpec
    variation: int
    path: Path | None = None


def _open(run: Any) -> Any:
    from noizenet.run import Run

    return run if isinstance(run, Run) else Run.open(run)


def generate(
    run: Any,
    *,
    seed: str | SeedSpec = "perlin",
    seconds: float = 10.0,
    seed_seconds: float = 1.0,
    inject: str | Injection | None = None,
    variations: int = 1,
    random_seed: int = 0,
    out: str | Path | None = None,
    write: bool = True,
) -> list[Take]:
    """Prime the run's model on a seed, then let it run free for ``seconds``.

    Parameters
    ----------
    run : run folder (path or :class:`~noizenet.run.Run`)
    seed : ``song:PATH[@OFFSET_S]``, ``white``, ``perlin`` or ``silence``
    seconds : length of the generated audio (the seed is not included)
    seed_seconds : how much seed the hidden state is primed on
    inject : noise injection, ``periodic:K`` or ``stall:M:EPS:SIGMA`` (model units)
    variations : independent takes, generated side by side (noise seeds and injected noise
        differ per take; a song seed is shared)
    random_seed : fixes noise seeds and injected noise
    out : WAV path (with several variations, ``_v{i}`` is added before the suffix); default
        ``RUN/audio/gen_{seed}_e{epochs}_v{i}.wav``

    Returns
    -------
    list of :class:`Take`, one per variation
    """
    from noizenet.generate.kernels import kernel_weights
    from noizenet.generate.kernels import run as run_kernel

    run = _open(run)
    spec = parse_seed(seed) if isinstance(seed, str) else seed
    injection = Injection.parse(inject) if not isinstance(inject, Injection) else inject
    if seconds <= 0 or seed_seconds <= 0:
        raise NoizeNetError("--seconds and --seed-seconds must be > 0")
    if variations < 1:
        raise NoizeNetError(f"--variations must be >= 1, got {variations}")
    sr = run.sr
    codec = run.codec()
    model = run.model()
    rng = np.random.default_rng(random_seed)
    n = round(seconds * sr)
    rms = float(run.info.get("train_rms", 0.1))
    seeds = [
        make_seed(spec, seconds=seed_seconds, sr=sr, rms=rms, rng=rng)
        for _ in range(variations if spec.kind in ("white", "perlin") else 1)
    ]
    seeds = seeds * (variations // len(seeds))
    t_seed = min(s.size for s in seeds)
    stats = [codec.stats_for(s) for s in seeds]
    forced = np.stack([codec.encode(s[:t_seed], st) for s, st in zip(seeds, stats, strict=True)])
    noise = rng.standard_normal((variations, n)).astype(np.float32)
    _, values, _ = run_kernel(kernel_weights(model), forced, n, injection=injection, noise=noise)

    takes = []
    epochs = run.info.get("metrics", {}).get("epochs", 0)
    for i in range(variations):
        audio = codec.decode(values[i], stats[i])
        if not np.all(np.isfinite(audio)):
            raise NoizeNetError(
                f"{run.path}: the model produced non-finite samples "
                f"(seed {spec.label}); nothing was written"
            )
        take = Take(audio, seeds[i], spec, i)
        if write:
            take.path = _take_path(run, out, spec, epochs, i, variations, injection)
            from noizenet.audio import write as write_wav

            write_wav(take.path, audio, sr=sr)
        takes.append(take)
    return takes


def _take_path(
    run: Any,
    out: str | Path | None,
    spec: SeedSpec,
    epochs: int,
    i: int,
    variations: int,
    injection: Injection,
) -> Path:
    if out is not None:
        out = Path(out)
        return out if variations == 1 else out.with_name(f"{out.stem}_v{i}{out.suffix}")
    inj = "" if injection.mode == 0 else ("_inj-periodic" if injection.mode == 1 else "_inj-stall")
    return run.path / "audio" / f"gen_{spec.label}_e{epochs}{inj}_v{i}.wav"


@dataclass
class Reproduction:
    """Teacher-forced one-step prediction of a song, aligned with it sample for sample."""

    original: np.ndarray  # (samples,) the song as decoded
    predicted: np.ndarray  # (samples,) predicted[t] was predicted from original[:t]
    snr_db: float  # 10 log10(signal power / error power), first sample excluded
    path: Path | None = None


def reproduce(
    run: Any,
    song: str | Path,
    *,
    seconds: float | None = 10.0,
    offset: float = 0.0,
    out: str | Path | None = None,
    write: bool = True,
) -> Reproduction:
    """Feed an unseen song one sample at a time and record the one-step predictions."""
    from noizenet.audio import load
    from noizenet.generate.kernels import kernel_weights
    from noizenet.generate.kernels import run as run_kernel

    run = _open(run)
    codec = run.codec()
    model = run.model()
    y = load(song, sr=run.sr, offset=offset, duration=seconds)
    if y.size < 2:
        raise NoizeNetError(f"{song}: too short to reproduce ({y.size} samples)")
    stats = codec.stats_for(y)
    pred, _, _ = run_kernel(kernel_weights(model), codec.encode(y, stats)[None, :], 0)
    predicted = np.empty_like(y)
    predicted[0] = y[0]  # nothing precedes the first sample
    predicted[1:] = codec.decode(pred[0, :-1], stats)
    err = y[1:] - predicted[1:]
    snr = float(
        10
        * np.log10(
            np.sum(y[1:].astype(np.float64) ** 2) / max(np.sum(err.astype(np.float64) ** 2), 1e-20)
        )
    )
    result = Reproduction(y, predicted, snr)
    if write:
        from noizenet.audio import write as write_wav

        result.path = (
            Path(out) if out else run.path / "audio" / f"reproduction_{Path(song).stem}.wav"
        )
        write_wav(result.path, predicted, sr=run.sr)
    return result
