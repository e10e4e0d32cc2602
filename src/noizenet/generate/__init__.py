"""Generate music from a run: prime on a seed, then feed each output back (paper 5.5.2, 5.7).

Also the paper's "reproduction" (figures 23-25): teacher-forced one-step prediction of a song.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.audio import load
from noizenet.audio import write as write_wav
from noizenet.config import GenerationConfig, parse_checkpoint, parse_temperature
from noizenet.errors import ConfigError, NoizeNetError
from noizenet.generate.seeds import SeedSpec, make_seed, parse_seed
from noizenet.generate.stream import (
    BLOCK_SECONDS,
    GenerationProgress,
    ProgressDisplay,
    StreamDraws,
    TakeFiles,
    interrupted,
    stop_on_signals,
)
from noizenet.io import atomic_write_json
from noizenet.limits import check_generate, check_reproduce
from noizenet.locks import write_new
from noizenet.models import generation_path, kernel_of
from noizenet.models.base import Carry
from noizenet.run import Run, TakeName, Weights, read_weights
from noizenet.sampling import Injection, Sampling, temperature_schedules


@dataclass
class Take:
    """One generated take: its audio, the seed it grew from, and where it was written."""

    kept: np.ndarray | None  # (samples,) float32; None when written: it was never held whole
    seed_audio: np.ndarray
    seed: SeedSpec
    variation: int
    path: Path | None = None
    weights: Weights | None = None  # which checkpoint made it

    @property
    def audio(self) -> np.ndarray:
        """(samples,) float32 at the run's sample rate; a written take is read from its file
        (as written: 16-bit, clipped to [-1, 1])."""
        if self.kept is not None or self.path is None:
            return self.kept
        import soundfile as sf

        return sf.read(self.path, dtype="float32")[0]


def _open(run: Any) -> Run:
    return run if isinstance(run, Run) else Run.open(run)


def generate(
    run: Any,
    config: GenerationConfig | None = None,
    *,
    out: str | Path | None = None,
    write: bool = True,
    progress: bool | Callable[[GenerationProgress], Any] = True,
    figures: bool = False,
    on_running: Callable[[], Any] | None = None,
    **overrides: Any,
) -> list[Take]:
    """Prime the run's model on a seed, then let it run free for ``config.seconds``.

    Parameters
    ----------
    run : run folder (path or :class:`~noizenet.run.Run`)
    config : the generation settings (:class:`~noizenet.config.GenerationConfig`: seed, seconds,
        seed_seconds, inject, temperature, top_p, variations, random_seed, checkpoint); default:
        its defaults
    overrides : fields of ``config`` to replace, e.g. ``seed="white", seconds=5``; every value
        is validated, and a bad one raises :class:`~noizenet.errors.ConfigError` naming it
        (``generation.seconds: must be > 0``)
    out : WAV path, replaced whole if it exists (with several variations, ``_v{i}`` is added
        before the suffix); default ``RUN/audio/NAME.wav`` with NAME from
        :func:`noizenet.run.take_name`, e.g. ``gen_perlin_e10_v0`` (regression heads,
        ``_inj-MODE`` with injection) or ``gen_perlin_e10_t1_v0`` (categorical heads:
        temperature, and ``_pP`` below top-p 1), ``_ckpt-best`` or ``_ckpt-epoch3`` after the
        epochs from other weights than the last; a default name never replaces a take (a taken
        one gets ``_1``, ``_2``). Beside each WAV, ``NAME.json`` records the settings and the
        weights that made it.
    write : False: return the takes in memory (``Take.audio``) without writing them
    progress : True: a progress bar with the real-time factor (quiet when stderr is not a
        terminal or ``NOIZENET_QUIET=1``); a callable: called after every block with a
        :class:`~noizenet.generate.stream.GenerationProgress`; False: nothing
    figures : the caller draws each take's figures afterwards (counted in the request's bound)
    on_running : called once, after the first block: the kernel is loaded, and the blocks left
        run with the GIL released, so Python work a caller then starts in a thread overlaps
        them (started earlier, it competes with the kernel's loading for the GIL instead)

    Written takes stream to disk in blocks of :data:`~noizenet.generate.stream.BLOCK_SECONDS`
    (memory does not grow with the length), and SIGINT/SIGTERM in the main thread close valid
    WAVs of what was generated and raise
    :class:`~noizenet.generate.stream.GenerationInterruptedError`. A request larger than the
    machine's memory or disk is refused first (:mod:`noizenet.limits`).

    Returns
    -------
    list of :class:`Take`, one per variation. Injection on a categorical head, and temperature
    or top-p other than 1 on a regression head, are refused: they would change nothing.
    """
    from noizenet.codecs import FFTCodec, steps_for

    cfg = (config or GenerationConfig()).with_overrides(overrides)
    run = _open(run)
    weights = run.choose(cfg.checkpoint)
    check_generate(run, variations=cfg.variations, seconds=cfg.seconds,
                   seed_seconds=cfg.seed_seconds, out=out, write=write,
                   figures=figures)  # fmt: skip
    spec = parse_seed(cfg.seed)
    injection = Injection.parse(cfg.inject)
    variations, top_p = cfg.variations, cfg.top_p
    temps = temperature_schedules(cfg.temperature, variations)
    sr = run.sr
    codec = run.codec()
    saved = read_weights(weights.path)
    categorical = saved.spec.categorical
    check_head(cfg, categorical=categorical)
    rng = np.random.default_rng(cfg.random_seed)
    n = round(cfg.seconds * sr)
    seeds = [
        make_seed(spec, seconds=cfg.seed_seconds, sr=sr, rms=run.info.train_rms, rng=rng)
        for _ in range(variations if spec.kind in ("white", "perlin") else 1)
    ]
    seeds = seeds * (variations // len(seeds))
    stats, forced = _encode_seeds(codec, seeds)
    fft = isinstance(codec, FFTCodec)
    steps = steps_for(codec, n)
    block = max(1, round(BLOCK_SECONDS * sr / (codec.hop if fft else 1)))
    # the draws today's one call made, in its order (stream-major), handed out per block
    draws = None
    if categorical:
        draws = StreamDraws(rng, "uniform", streams=variations, steps=steps, dim=1, block=block)
    elif injection.mode:
        draws = StreamDraws(rng, "normal", streams=variations, steps=steps, dim=codec.dim,
                            block=block)  # fmt: skip
    level_values = codec.level_values() if categorical else None

    def sampling(start: int, k: int) -> Sampling:
        if categorical:
            return Sampling(temperature=temps, top_p=top_p, uniforms=draws.take(start, k),
                            level_values=level_values, span=steps)  # fmt: skip
        noise = None if draws is None else draws.take(start, k)
        if noise is not None and forced.ndim == 2:  # one value per step
            noise = noise[:, :, 0]
        return Sampling(injection=injection, noise=noise)

    names = [
        TakeName(
            seed=spec.label,
            epochs=weights.epochs,
            variation=i,
            inject=None if categorical else injection.name,
            temperature=(float(temps[0][i]), float(temps[1][i])) if categorical else None,
            top_p=top_p if categorical and top_p < 1 else None,
            checkpoint=weights.tag,
        )
        for i in range(variations)
    ]
    paths = [_take_path(run, out, name, variations) for name in names] if write else None
    what = f"{run.path}: the model produced non-finite samples (seed {spec.label})"

    def decoded(values: np.ndarray, samples: int = n) -> list[np.ndarray]:
        audio = [_decode(codec, values[i], stats[i], samples) for i in range(variations)]
        if not all(np.all(np.isfinite(a)) for a in audio):
            raise NoizeNetError(f"{what}; nothing was written")
        return audio

    path = saved.generation_path()
    files = TakeFiles(paths, sr=sr, replace=out is not None) if paths else None
    display = ProgressDisplay(progress, total=cfg.seconds, takes=variations)
    kept: list[list[np.ndarray]] = [[] for _ in range(variations)]
    frames: list[np.ndarray] = []  # FFT blocks: decoded whole (overlap-add) at the end
    carry, done = Carry(), 0
    try:
        with stop_on_signals(write) as stop:
            for start in range(0, steps, block):
                k = min(block, steps - start)
                _, values = path(forced, k, sampling(start, k), carry=carry)
                done += k
                if fft:
                    frames.append(values)
                else:
                    audio = decoded(values)
                    if files is not None:
                        files.write(audio)
                    else:
                        for part, a in zip(kept, audio, strict=True):
                            part.append(a)
                display.update(min(done * (codec.hop if fft else 1), n) / sr)
                if on_running is not None and start == 0:
                    on_running()
                if stop[0]:
                    break
            if fft:
                whole = np.concatenate(frames, axis=1) if frames else np.zeros((variations, 0))
                audio = decoded(whole, min(done * codec.hop, n))  # stopped early: the part made
                if files is not None:
                    files.write(audio)
                kept = [[a] for a in audio]
            seconds = min(done * (codec.hop if fft else 1), n) / sr
            written = files.finish() if files is not None else None
    except BaseException:
        if files is not None:
            files.discard()
        raise
    finally:
        display.close()
    takes = []
    for i in range(variations):
        audio = None if written is not None else _joined(kept[i])
        take = Take(audio, seeds[i], spec, i, None, weights)
        if written is not None:
            take.path = written[i]
            _write_sidecar(take.path, cfg, weights, seconds=seconds, complete=not stop[0])
        takes.append(take)
    if stop[0]:
        interrupted(stop[0], [t.path for t in takes], seconds, cfg.seconds)
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
    stats, forced = _encode_seeds(codec, seeds)
    steps, B = steps_for(codec, n), len(seeds)
    if model.spec.categorical:  # the draws generate() makes, in one call
        sampling = Sampling(temperature=temps, top_p=config.top_p, uniforms=rng.random((B, steps)),
                            level_values=codec.level_values(), span=steps)  # fmt: skip
    else:
        noise = None
        if injection.mode:
            noise = rng.standard_normal((B, steps, codec.dim)).astype(np.float32)
            noise = noise[:, :, 0] if forced.ndim == 2 else noise
        sampling = Sampling(injection=injection, noise=noise)
    _, values = generation_path(kernel_of(model), lambda: model)(forced, steps, sampling,
                                                                 carry=Carry())  # fmt: skip
    return np.stack([_decode(codec, v, st, n) for v, st in zip(values, stats, strict=True)])


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _write_sidecar(wav: Path, cfg: GenerationConfig, weights: Weights, *, seconds: float,
                   complete: bool) -> None:  # fmt: skip
    """``NAME.json`` beside a take: the settings and the weights that made it (the run's
    events log belongs to training, its one writer)."""
    record = {
        "take": wav.name,
        "seconds": round(seconds, 6),
        "complete": complete,
        **weights.to_dict(),
        "generation": dataclasses.asdict(cfg),
    }
    atomic_write_json(wav.with_suffix(".json"), record)


def _encode_seeds(codec: Any, seeds: Sequence[np.ndarray]) -> tuple[list[Any], np.ndarray]:
    """Each seed's codec statistics, and the seeds encoded as one batch of forced inputs (all
    primed on the shortest seed's length)."""
    t_seed = min(s.size for s in seeds)
    stats = [codec.stats_for(s) for s in seeds]
    forced = np.stack([codec.encode(s[:t_seed], st) for s, st in zip(seeds, stats, strict=True)])
    return stats, forced


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
    checkpoint: str = "last",
    figures: bool = False,
) -> Reproduction:
    """Feed an unseen song one step at a time and record the one-step predictions.

    Regression heads give their prediction; categorical heads the expected value of their
    predicted distribution; FFT models predict each next block, inverted by overlap-add.
    ``checkpoint`` picks the weights as :attr:`GenerationConfig.checkpoint` does (the
    default name then says which: ``reproduction_SONG_ckpt-best``); ``figures``: the caller
    draws the comparison afterwards (counted in the request's bound, checked first).
    """
    from noizenet.codecs import FFTCodec

    choice = parse_checkpoint(checkpoint)
    run = _open(run)
    weights = run.choose(choice)
    check_reproduce(run, seconds=seconds, out=Path(out) if out else None,
                    figures=figures and write)  # fmt: skip
    codec = run.codec()
    saved = read_weights(weights.path)
    y = load(song, sr=run.sr, offset=offset, duration=seconds)
    if y.size < 2:
        raise NoizeNetError(f"{song}: too short to reproduce ({y.size} samples)")
    stats = codec.stats_for(y)
    values = codec.encode(y, stats)
    categorical = saved.spec.categorical
    sampling = Sampling(level_values=codec.level_values() if categorical else None)
    pred, _ = saved.generation_path()(values[None], 0, sampling)
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
        name = TakeName(Path(song).stem, reproduction=True, checkpoint=weights.tag)
        default = run.take_path(name)
        result.path = (
            write_wav(Path(out), predicted, sr=run.sr)
            if out
            else write_new(default, write_wav, predicted, sr=run.sr)
        )
    return result
