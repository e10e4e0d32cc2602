"""Generate music from a run: prime on a seed, then feed each output back (paper 5.5.2, 5.7).

Also the paper's "reproduction" (figures 23-25): teacher-forced one-step prediction of a song.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.errors import NoizeNetError
from noizenet.generate.seeds import SeedSpec, make_seed, parse_seed
from noizenet.generate.stream import BLOCK_SECONDS, stream_takes
from noizenet.sampling import Injection


@dataclass
class Take:
    """One generated take: its audio, the seed it grew from, and where it was written."""

    kept: np.ndarray | None  # (samples,) float32; None when written: it was never held whole
    seed_audio: np.ndarray
    seed: SeedSpec
    variation: int
    path: Path | None = None

    @property
    def audio(self) -> np.ndarray:
        """(samples,) float32 at the run's sample rate; a written take is read from its file."""
        if self.kept is not None or self.path is None:
            return self.kept
        import soundfile as sf

        return sf.read(self.path, dtype="float32")[0]


def _open(run: Any) -> Any:
    from noizenet.run import Run

    return run if isinstance(run, Run) else Run.open(run)


def parse_temperature(text: str | float, variations: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-take temperature schedules from ``T``, ``T0:T1`` (linear over the take) or a comma
    list of either, one per variation (cycled). Returns (start, end) arrays of length
    ``variations``. Temperature 0 is argmax."""
    items = [str(text)] if not isinstance(text, str) else text.split(",")
    starts, ends = [], []
    for item in items:
        parts = item.strip().split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) not in (1, 2) or any(not np.isfinite(v) or v < 0 for v in values):
            raise NoizeNetError(
                f"--temperature {text!r}: expected T, T0:T1 or a comma list of them (T >= 0)"
            )
        starts.append(values[0])
        ends.append(values[-1])
    idx = np.arange(variations) % len(starts)
    return np.asarray(starts)[idx], np.asarray(ends)[idx]


def generate(
    run: Any,
    *,
    seed: str | SeedSpec = "perlin",
    seconds: float = 10.0,
    seed_seconds: float = 1.0,
    inject: str | Injection | None = None,
    temperature: str | float = 1.0,
    top_p: float = 1.0,
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
    inject : regression heads: noise injection, ``periodic:K`` or ``stall:M:EPS:SIGMA`` (model
        units)
    temperature : categorical heads: ``T``, ``T0:T1`` (linear schedule) or a comma list, one per
        variation; 0 is argmax
    top_p : categorical heads: sample only from the smallest set of classes holding this mass
    variations : independent takes, generated side by side (noise seeds, injected noise and
        sampling differ per take; a song seed is shared)
    random_seed : fixes noise seeds, injected noise and sampling
    out : WAV path (with several variations, ``_v{i}`` is added before the suffix); default
        ``RUN/audio/gen_{seed}_e{epochs}[_t{T}]_v{i}.wav``

    Returns
    -------
    list of :class:`Take`, one per variation
    """
    from noizenet.codecs import steps_for

    run = _open(run)
    spec = parse_seed(seed) if isinstance(seed, str) else seed
    injection = Injection.parse(inject) if not isinstance(inject, Injection) else inject
    if seconds <= 0 or seed_seconds <= 0:
        raise NoizeNetError("--seconds and --seed-seconds must be > 0")
    if variations < 1:
        raise NoizeNetError(f"--variations must be >= 1, got {variations}")
    if not 0 < top_p <= 1:
        raise NoizeNetError(f"--top-p must be in (0, 1], got {top_p}")
    temps = parse_temperature(temperature, variations)
    sr = run.sr
    codec = run.codec()
    model = run.model()
    categorical = codec.kind == "categorical"
    if categorical and injection.mode:
        raise NoizeNetError(
            "--inject applies to regression heads; a categorical head samples, use --temperature"
        )
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
    steps = steps_for(codec, n)
    blocks = _free_run(
        model, codec, forced, steps, injection, temps, top_p, rng, block=round(BLOCK_SECONDS * sr)
    )
    epochs = run.info.get("metrics", {}).get("epochs", 0)
    paths = None
    if write:
        tags = [
            _tag(categorical, injection, temps[0][i], temps[1][i], top_p) for i in range(variations)
        ]
        paths = [
            _take_path(run, out, spec, epochs, i, variations, tags[i]) for i in range(variations)
        ]
    audio = stream_takes(
        blocks,
        lambda i, v: _decode(codec, v, stats[i], n),
        takes=variations,
        samples=n,
        sr=sr,
        paths=paths,
        what=f"{run.path}: the model (seed {spec.label})",
    )
    return [
        Take(
            None if audio is None else audio[i],
            seeds[i],
            spec,
            i,
            None if paths is None else paths[i],
        )
        for i in range(variations)
    ]


def _free_run(
    model, codec, forced, steps, injection, temps, top_p, rng, *, block: int
) -> Iterator[np.ndarray]:
    """Prime on ``forced`` and run ``steps`` steps free, with the codec's head, yielding the
    values block by block (the state, and the last output as the next input, carried over).

    The random draws are made per block in time-major order, so any blocking gives the same
    take. A stall injection's window and an FFT codec's overlap-add are not carried across
    blocks: those run in one block.
    """
    from noizenet.codecs import FFTCodec
    from noizenet.generate.stream import block_lengths, temperature_span
    from noizenet.models.flat_kernels import (
        INJECT_PERIODIC,
        INJECT_STALL,
        kernel_weights,
        run,
        run_categorical,
    )

    weights = kernel_weights(model)
    B = forced.shape[0]
    whole = isinstance(codec, FFTCodec) or injection.mode == INJECT_STALL
    block = steps if whole else block
    multiple = injection.period if injection.mode == INJECT_PERIODIC else 1
    state, start = None, 0
    for n in block_lengths(steps, block, multiple=multiple):
        if codec.kind == "categorical":
            uniforms = rng.random((n, B)).T
            _, out, state = run_categorical(
                weights,
                forced,
                n,
                level_values=codec.level_values(),
                temperature=temperature_span(temps, start, n, steps),
                top_p=top_p,
                uniforms=uniforms,
                state=state,
            )
        else:
            noise = rng.standard_normal((n, B, codec.dim)).astype(np.float32).transpose(1, 0, 2)
            if forced.ndim == 2:  # one value per step
                noise = noise[:, :, 0]
            _, out, state = run(weights, forced, n, injection=injection, noise=noise, state=state)
        forced = out[:, -1:]  # the last output is the next block's first input
        start += n
        yield out


def _decode(codec, values: np.ndarray, stats: Any, n: int) -> np.ndarray:
    from noizenet.codecs import FFTCodec

    if isinstance(codec, FFTCodec):
        return codec.decode(values, length=n)
    return codec.decode(values, stats)[:n]


def _tag(categorical: bool, injection: Injection, t0: float, t1: float, top_p: float) -> str:
    """What made a take, for its file name (prism-samplernn style)."""
    if categorical:
        tag = f"_t{t0:g}" if t0 == t1 else f"_t{t0:g}-{t1:g}"
        return tag + (f"_p{top_p:g}" if top_p < 1 else "")
    return {0: "", 1: "_inj-periodic", 2: "_inj-stall"}[injection.mode]


def _take_path(
    run: Any,
    out: str | Path | None,
    spec: SeedSpec,
    epochs: int,
    i: int,
    variations: int,
    tag: str,
) -> Path:
    if out is not None:
        out = Path(out)
        return out if variations == 1 else out.with_name(f"{out.stem}_v{i}{out.suffix}")
    return run.path / "audio" / f"gen_{spec.label}_e{epochs}{tag}_v{i}.wav"


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
    from noizenet.audio import load
    from noizenet.codecs import FFTCodec
    from noizenet.models.flat_kernels import kernel_weights, run_categorical
    from noizenet.models.flat_kernels import run as run_kernel

    run = _open(run)
    codec = run.codec()
    model = run.model()
    y = load(song, sr=run.sr, offset=offset, duration=seconds)
    if y.size < 2:
        raise NoizeNetError(f"{song}: too short to reproduce ({y.size} samples)")
    stats = codec.stats_for(y)
    values = codec.encode(y, stats)
    weights = kernel_weights(model)
    if codec.kind == "categorical":
        pred, _, _ = run_categorical(weights, values[None], 0, level_values=codec.level_values())
        predicted = np.concatenate([y[:1], pred[0, :-1]]).astype(np.float32)
    elif isinstance(codec, FFTCodec):
        pred, _, _ = run_kernel(weights, values[None], 0)
        frames = np.concatenate([values[:1], pred[0, :-1]])
        predicted = codec.decode(frames, length=y.size)
    else:
        pred, _, _ = run_kernel(weights, values[None, :], 0)
        predicted = np.concatenate([y[:1], codec.decode(pred[0, :-1], stats)])
    err = y[1:] - predicted[1:]
    signal = np.sum(y[1:].astype(np.float64) ** 2)
    snr = float(10 * np.log10(signal / max(np.sum(err.astype(np.float64) ** 2), 1e-20)))
    result = Reproduction(y, predicted, snr)
    if write:
        from noizenet.audio import write as write_wav

        default = run.path / "audio" / f"reproduction_{Path(song).stem}.wav"
        result.path = Path(out) if out else default
        write_wav(result.path, predicted, sr=run.sr)
    return result
