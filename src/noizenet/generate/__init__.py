"""Generate music from a run: prime on a seed, then feed each output back (paper 5.5.2, 5.7).

Also the paper's "reproduction" (figures 23-25): teacher-forced one-step prediction of a song.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.audio import load
from noizenet.audio import write as write_wav
from noizenet.config import GenerationConfig, parse_temperature
from noizenet.errors import ConfigError, NoizeNetError
from noizenet.generate.seeds import SeedSpec, make_seed, parse_seed
from noizenet.locks import write_new
from noizenet.run import Run, TakeName
from noizenet.sampling import Injection, Sampling, temperature_schedules


@dataclass
class Take:
    """One generated take: its audio, the seed it grew from, and where it was written."""

    audio: np.ndarray  # (samples,) float32 at the run's sample rate
    seed_audio: np.ndarray
    seed: SeedSpec
    variation: int
    path: Path | None = None


def _open(run: Any) -> Run:
    return run if isinstance(run, Run) else Run.open(run)


def generate(
    run: Any,
    config: GenerationConfig | None = None,
    *,
    out: str | Path | None = None,
    write: bool = True,
    **overrides: Any,
) -> list[Take]:
    """Prime the run's model on a seed, then let it run free for ``config.seconds``.

    Parameters
    ----------
    run : run folder (path or :class:`~noizenet.run.Run`)
    config : the generation settings (:class:`~noizenet.config.GenerationConfig`: seed, seconds,
        seed_seconds, inject, temperature, top_p, variations, random_seed); default: its defaults
    overrides : fields of ``config`` to replace, e.g. ``seed="white", seconds=5``; every value
        is validated, and a bad one raises :class:`~noizenet.errors.ConfigError` naming it
        (``generation.seconds: must be > 0``)
    out : WAV path (with several variations, ``_v{i}`` is added before the suffix); default
        ``RUN/audio/NAME.wav`` with NAME from :func:`noizenet.run.take_name`, e.g.
        ``gen_perlin_e10_v0`` (regression heads, ``_inj-MODE`` with injection) or
        ``gen_perlin_e10_t1_v0`` (categorical heads: temperature, and ``_pP`` below top-p 1)
    write : False: return the takes without writing them

    Returns
    -------
    list of :class:`Take`, one per variation. Injection on a categorical head, and temperature
    or top-p other than 1 on a regression head, are refused: they would change nothing.
    """
    from noizenet.codecs import steps_for

    cfg = (config or GenerationConfig()).with_overrides(overrides)
    run = _open(run)
    spec = parse_seed(cfg.seed)
    injection = Injection.parse(cfg.inject)
    variations, top_p = cfg.variations, cfg.top_p
    temps = temperature_schedules(cfg.temperature, variations)
    sr = run.sr
    codec = run.codec()
    model = run.model()
    categorical = model.spec.categorical
    check_head(cfg, categorical=categorical)
    rng = np.random.default_rng(cfg.random_seed)
    n = round(cfg.seconds * sr)
    seeds = [
        make_seed(spec, seconds=cfg.seed_seconds, sr=sr, rms=run.info.train_rms, rng=rng)
        for _ in range(variations if spec.kind in ("white", "perlin") else 1)
    ]
    seeds = seeds * (variations // len(seeds))
    t_seed = min(s.size for s in seeds)
    stats = [codec.stats_for(s) for s in seeds]
    forced = np.stack([codec.encode(s[:t_seed], st) for s, st in zip(seeds, stats, strict=True)])
    steps = steps_for(codec, n)
    values = _free_run(model, codec, forced, steps, injection, temps, top_p, rng)

    takes = []
    for i in range(variations):
        audio = _decode(codec, values[i], stats[i], n)
        if not np.all(np.isfinite(audio)):
            raise NoizeNetError(
                f"{run.path}: the model produced non-finite samples "
                f"(seed {spec.label}); nothing was written"
            )
        take = Take(audio, seeds[i], spec, i)
        if write:
            name = TakeName(
                seed=spec.label,
                epochs=run.info.epochs_done,
                variation=i,
                inject=None if categorical else injection.name,
                temperature=(float(temps[0][i]), float(temps[1][i])) if categorical else None,
                top_p=top_p if categorical and top_p < 1 else None,
            )
            path = _take_path(run, out, name, variations)
            # a default name never replaces a take: a taken one gets _1, _2 (noizenet.locks)
            take.path = (
                write_wav(path, audio, sr=sr)
                if out is not None
                else write_new(path, write_wav, audio, sr=sr)
            )
        takes.append(take)
    return takes


def generate_audio(
    model: Any, codec: Any, seeds: Sequence[np.ndarray], config: GenerationConfig, *, sr: int
) -> np.ndarray:
    """Prime ``model`` on each seed's audio and run it free for ``config.seconds``: one take
    per seed, (len(seeds), samples) float32 at ``sr``, in memory.

    The entry for callers that hold a model and codec rather than a run folder (training's
    takes): nothing is read or written. The seeds are given, so ``config.seed`` and
    ``config.variations`` are not used; injection, temperature (one schedule per seed), top-p
    and ``random_seed`` are. Seeds of different lengths are primed on the shortest one's
    length. A diverged model may return non-finite samples: the caller decides what to do.
    """
    from noizenet.codecs import steps_for

    if not seeds:
        raise ValueError("generate_audio: no seeds")
    check_head(config, categorical=model.spec.categorical)
    rng = np.random.default_rng(config.random_seed)
    temps = temperature_schedules(config.temperature, len(seeds))
    injection = Injection.parse(config.inject)
    n = round(config.seconds * sr)
    t_seed = min(s.size for s in seeds)
    stats = [codec.stats_for(s) for s in seeds]
    forced = np.stack([codec.encode(s[:t_seed], st) for s, st in zip(seeds, stats, strict=True)])
    values = _free_run(
        model, codec, forced, steps_for(codec, n), injection, temps, config.top_p, rng
    )
    return np.stack([_decode(codec, v, st, n) for v, st in zip(values, stats, strict=True)])


def check_head(cfg: GenerationConfig, *, categorical: bool) -> None:
    """Refuse settings the run's head would ignore (one line each, naming the setting)."""
    if categorical and Injection.parse(cfg.inject).mode:
        raise ConfigError(
            "generation.inject: noise injection applies to regression heads; a categorical "
            "head samples, use generation.temperature"
        )
    if not categorical and (parse_temperature(cfg.temperature) != [(1.0, 1.0)] or cfg.top_p < 1):
        name = "top_p" if cfg.top_p < 1 else "temperature"
        raise ConfigError(
            f"generation.{name}: applies to categorical heads (mulaw, linear-q); this run's "
            "regression head predicts values, use generation.inject"
        )


def _free_run(model, codec, forced, steps, injection, temps, top_p, rng) -> np.ndarray:
    """Prime on ``forced`` and run ``steps`` steps free, with the model's head."""
    B = forced.shape[0]
    if model.spec.categorical:
        uniforms = rng.random((B, max(steps, 1)))
        sampling = Sampling(
            temperature=temps, top_p=top_p, uniforms=uniforms, level_values=codec.level_values()
        )
    else:
        noise = rng.standard_normal((B, max(steps, 1), codec.dim)).astype(np.float32)
        if forced.ndim == 2:  # one value per step
            noise = noise[:, :, 0]
        sampling = Sampling(injection=injection, noise=noise)
    _, out = _model_path(model)(forced, steps, sampling)
    return out


def _model_path(model: Any) -> Any:
    """How to run ``model`` (``(forced, n_free, sampling) -> (pred, out)``): its family's fast
    kernel, or its reference path when the family has none (slow but correct)."""
    from noizenet.models import family_of

    kernel = family_of(model.spec).kernel(model)
    return kernel.run if kernel is not None else model.reference


def _decode(codec, values: np.ndarray, stats: Any, n: int) -> np.ndarray:
    from noizenet.codecs import FFTCodec

    if isinstance(codec, FFTCodec):
        return codec.decode(values, length=n)
    return codec.decode(values, stats)[:n]


def _take_path(run: Run, out: str | Path | None, name: TakeName, variations: int) -> Path:
    if out is not None:
        out = Path(out)
        i = name.variation
        return out if variations == 1 else out.with_name(f"{out.stem}_v{i}{out.suffix}")
    return run.take_path(name)


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
    """Feed an unseen song one step at a time and record the one-step predictions.

    Regression heads give their prediction; categorical heads the expected value of their
    predicted distribution; FFT models predict each next block, inverted by overlap-add.
    """
    from noizenet.codecs import FFTCodec

    run = _open(run)
    codec = run.codec()
    model = run.model()
    y = load(song, sr=run.sr, offset=offset, duration=seconds)
    if y.size < 2:
        raise NoizeNetError(f"{song}: too short to reproduce ({y.size} samples)")
    stats = codec.stats_for(y)
    values = codec.encode(y, stats)
    categorical = model.spec.categorical
    sampling = Sampling(level_values=codec.level_values() if categorical else None)
    pred, _ = _model_path(model)(values[None], 0, sampling)
    if categorical:
        predicted = np.concatenate([y[:1], pred[0, :-1]]).astype(np.float32)
    elif isinstance(codec, FFTCodec):
        frames = np.concatenate([values[:1], pred[0, :-1]])
        predicted = codec.decode(frames, length=y.size)
    else:
        predicted = np.concatenate([y[:1], codec.decode(pred[0, :-1], stats)])
    err = y[1:] - predicted[1:]
    signal = np.sum(y[1:].astype(np.float64) ** 2)
    snr = float(10 * np.log10(signal / max(np.sum(err.astype(np.float64) ** 2), 1e-20)))
    result = Reproduction(y, predicted, snr)
    if write:
        default = run.take_path(TakeName(Path(song).stem, reproduction=True))
        result.path = (
            write_wav(Path(out), predicted, sr=run.sr)
            if out
            else write_new(default, write_wav, predicted, sr=run.sr)
        )
    return result
