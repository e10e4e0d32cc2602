"""Flat against hierarchical at equal cost: four models, one training budget, held-out music.

The flat LSTM with the paper's MSE head (preset ``paper``), the flat LSTM with a mu-law head
(``mulaw``), a 2-tier SampleRNN (``samplernn``) and a 3-tier one (``samplernn-3t``) are each
trained for the same ``max_time`` seconds on the same songs, then measured on the held-out
tracks (the runs' validation tracks, e.g. ``--val-data``):

* bits/sample of one-step prediction (categorical models; the MSE model's one-step SNR instead),
  beside the classical floors on the same mu-law levels (:mod:`noizenet.analysis.bits`): the
  training level histogram, LPC-32 with a fixed and with an adaptive Laplace residual;
* ``take_seconds`` takes primed on 1 s of every seed kind (a held-out song, white, perlin,
  silence) at temperature 1 and 0.9: collapse time (silence, constant or a loop under 10 ms),
  log-mel Frechet distance to the held-out audio, spectral flatness; beside the held-out audio
  itself (Frechet: the training songs to it) and white noise of the training RMS.

Runs train ``jobs`` at a time in separate processes with ``threads`` torch threads each (both
recorded). A run stopped by its time limit is finished: a second invocation reuses it (and a
run stopped any other way is trained again). ``--scale`` does not apply: the presets' sizes
are the experiment; the library's ``options["overrides"]`` shrinks them for tests.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.config import Config
from noizenet.errors import NoizeNetError
from noizenet.experiments.base import Column, Context, Result, Table
from noizenet.run import Run

# label -> preset: the contenders, in table order
MODELS = {
    "flat LSTM, MSE (paper)": "paper",
    "flat LSTM, mu-law (mulaw)": "mulaw",
    "2-tier SampleRNN (samplernn)": "samplernn",
    "3-tier SampleRNN (samplernn-3t)": "samplernn-3t",
}
SEEDS = ("song", "white", "perlin", "silence")
TEMPERATURES = (1.0, 0.9)
SEED_SECONDS = 1.0
DONE = ("complete", "time-limit")  # a finished run; a time-limited one spent its budget
DEFAULTS = {
    "max_time": 600.0,  # seconds of training per model
    "jobs": 2,  # models trained side by side
    "threads": 1,  # torch threads per model
    "val_source": "",  # validate on these files (--val-data); "": hold out of --data
    "val_songs": 3,
    "seconds": 30.0,  # seconds of each training and held-out song
    "offset": 0.0,  # skipped at the start of each song
    "take_seconds": 30.0,  # free-running length of every take
    "overrides": {},  # config overrides of every run (tests: tiny sizes)
}

SUMMARY = [
    Column("label", "model"),
    Column("parameters", "parameters", "int"),
    Column("status", "status"),
    Column("threads", "threads", "int"),
    Column("trained_samples", "samples trained", "int"),
    Column("samples_per_s", "samples/s", "int"),
    Column("bits", "held-out bits/sample", "bits"),
    Column("snr_db", "one-step SNR (dB)", "db"),
    Column("collapsed_t1", "collapsed takes, T 1", "text"),
    Column("collapsed_t09", "collapsed takes, T 0.9", "text"),
    Column("frechet_t1", "log-mel Frechet, T 1 (mean of seeds)", "frechet"),
    Column("frechet_t09", "log-mel Frechet, T 0.9", "frechet"),
    Column("flatness_t1", "flatness, T 1", "ratio"),
]
TAKES = [
    Column("label", "model"),
    Column("seed", "seed"),
    Column("temperature", "temperature", "text"),
    Column("collapse_s", "collapse", "collapse"),
    Column("frechet", "log-mel Frechet", "frechet"),
    Column("flatness", "flatness", "ratio"),
    Column("rms", "RMS / training RMS", "ratio"),
    Column("audio", "audio"),
]


def options(ctx: Context) -> dict[str, Any]:
    """The experiment's settings: :data:`DEFAULTS` with what the caller gave."""
    unknown = sorted(set(ctx.options) - set(DEFAULTS))
    if unknown:
        raise NoizeNetError(f"tiers: unknown option {unknown[0]!r} (known: {', '.join(DEFAULTS)})")
    return {**DEFAULTS, **{k: v for k, v in ctx.options.items() if v is not None}}


def run_configs(ctx: Context, opts: dict[str, Any]) -> dict[str, Any]:
    """label -> the config each contender trains: its preset, the shared data, the budget."""
    data = {
        "seed": ctx.seed,
        "data.source": ctx.data,
        "data.val_source": opts["val_source"],
        "data.seconds": float(opts["seconds"]),
        "data.offset": float(opts["offset"]),
        "train.max_time": float(opts["max_time"]),
        "train.threads": int(opts["threads"]),
        "train.epochs": 100000,  # the time limit ends training
        "train.checkpoint_every": 0,
    }
    base = Config().with_overrides(data).data
    songs, val = _song_counts(base, ctx.seed, int(opts["val_songs"]))
    data |= {"data.songs": songs, "data.val_songs": val}
    return {
        label: Config().with_overrides({"preset": preset, **data, **opts["overrides"]})
        for label, preset in MODELS.items()
    }


def _song_counts(data: Any, seed: int, val_songs: int) -> tuple[int, int]:
    """Every training track the source offers, and the validation tracks: all of ``val_source``,
    or ``val_songs`` held out of the source (at least one track left to train on)."""
    from noizenet.corpus import list_tracks, validation_tracks

    tracks = list_tracks(data, seed=seed)
    if data.val_source:
        held = {t.path.resolve() for t in validation_tracks(data.val_source)}
        train = [t for t in tracks if t.path.resolve() not in held]
        if not train:
            raise NoizeNetError(f"{data.source}: no tracks left to train on beside --val-data")
        return len(train), len(held)
    if len(tracks) < 2:
        raise NoizeNetError(f"{data.source}: needs 2 tracks or more (one to hold out)")
    val = min(max(val_songs, 1), len(tracks) - 1)
    return len(tracks) - val, val


# -- training ---------------------------------------------------------------------------------
def _train_one(toml: str, folder: str) -> str:
    """Train one config into ``folder`` (in a worker process); returns the run's status."""
    from noizenet.train import train

    run = train(Config.from_toml(toml), Path(folder), force=True, progress=False, log=_quiet)
    return run.info.status


def _quiet(*_: Any) -> None:
    pass


def train_all(ctx: Context, configs: dict[str, Any], jobs: int) -> dict[str, Any]:
    """label -> Run: every contender trained (or reused when finished), ``jobs`` at a time."""
    from noizenet.corpus import load_corpus

    runs, todo = {}, {}
    for label, cfg in configs.items():
        run, folder = ctx.reusable(label, cfg, done=DONE)
        if run is not None:
            runs[label] = run
            ctx.log(f"  reusing {label}: {run.info.status} -> {folder}")
        else:
            todo[label] = (cfg, folder)
    if todo:  # decode every song once, here, before the runs read the cache side by side
        load_corpus(next(iter(todo.values()))[0].data, seed=ctx.seed, progress=False)
    t0 = time.perf_counter()
    if jobs > 1 and len(todo) > 1:
        spawn = multiprocessing.get_context("spawn")  # no forked torch thread pools
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=spawn) as pool:
            futures = {
                label: pool.submit(_train_one, cfg.to_toml(), str(folder))
                for label, (cfg, folder) in todo.items()
            }
            for future in futures.values():
                future.result()  # a worker's error is raised here
    else:
        for cfg, folder in todo.values():
            _train_one(cfg.to_toml(), str(folder))
    for label, (_cfg, folder) in todo.items():
        ctx.mark_trained(folder)
        runs[label] = Run.open(folder)
        ctx.log(f"  trained {label}: {runs[label].info.status} -> {folder}")
    if todo:
        ctx.log(
            f"  {len(todo)} run(s) trained in {time.perf_counter() - t0:.0f} s, {jobs} at a time"
        )
    return {label: runs[label] for label in configs}


def training_progress(run: Any) -> dict[str, Any]:
    """Samples and seconds of training, from the run's last checkpoint (its finished epochs and
    the epoch it stopped in); empty when it kept none."""
    from noizenet.train.checkpoint import load_checkpoint

    ckpts = sorted((run.path / "checkpoints").glob("ckpt-e*-s*.safetensors"))
    if not ckpts:
        return {}
    meta = load_checkpoint(ckpts[-1]).meta
    done = [(r.get("samples", 0), r.get("seconds", 0.0)) for r in meta.get("history", [])]
    now = meta.get("progress") or {}
    samples = sum(s for s, _ in done) + int(now.get("samples", 0))
    seconds = sum(t for _, t in done) + float(now.get("seconds", 0.0))
    return {"trained_samples": samples, "samples_per_s": samples / seconds if seconds else None}


# -- measurement --------------------------------------------------------------------------------
def tiers(ctx: Context) -> Result:
    from noizenet.analysis import metrics as m
    from noizenet.analysis.bits import classical_bits
    from noizenet.corpus import load_corpus

    opts = options(ctx)
    configs = run_configs(ctx, opts)
    runs = train_all(ctx, configs, int(opts["jobs"]))
    first = next(iter(runs.values()))
    corpus = load_corpus(first.config.data, seed=ctx.seed, progress=False)
    train_audio = [np.asarray(t.y, np.float32) for t in corpus.train]
    held = [np.asarray(t.y, np.float32) for t in corpus.val]
    held_paths = [t.track.path for t in corpus.val]
    if not held:
        raise NoizeNetError(f"{ctx.data}: no held-out track to measure on")
    sr = first.sr
    ref_rms = first.info.train_rms
    summary, takes_table = Table(list(SUMMARY)), Table(list(TAKES))
    spectra: dict[str, dict[str, np.ndarray]] = {}
    bits_chart: dict[str, float] = {}
    codec = None
    for label, run in runs.items():
        ctx.log(f"  measuring {label}")
        model = run.model()
        row: dict[str, Any] = {
            "label": label,
            "parameters": run.info.parameters,
            "status": run.info.status,
            "threads": run.config.train.threads,
            **training_progress(run),
        }
        if model.spec.categorical:
            row["bits"] = m.bits_per_sample(model, run.codec(), held)
            bits_chart[label] = row["bits"]
            codec = codec or run.codec()
        else:
            row["snr_db"] = _one_step_snr(run, held_paths, held, opts)
        temps = TEMPERATURES if model.spec.categorical else (1.0,)
        for temp in temps:
            rows = _takes(ctx, run, label, held_paths, held, temp, opts, ref_rms, spectra)
            takes_table.rows += rows
            key = "t1" if temp == 1.0 else "t09"
            hit = [r for r in rows if r["collapse_s"] is not None]
            row[f"collapsed_{key}"] = f"{len(hit)}/{len(rows)}"
            frechets = [r["frechet"] for r in rows if r.get("frechet") is not None]
            row[f"frechet_{key}"] = float(np.mean(frechets)) if frechets else None
            if temp == 1.0:
                flat = [r["flatness"] for r in rows if r.get("flatness") is not None]
                row["flatness_t1"] = float(np.mean(flat)) if flat else None
        summary.rows.append(row)
    # the classical floors, on the categorical runs' mu-law levels
    if codec is not None:
        a = m.fit_lpc(train_audio)
        floors = classical_bits(codec, held, a=a, train=train_audio)
        for name, bits in (
            ("no context: training level histogram", floors["real audio"]["bits_no_context"]),
            ("LPC-32 + Laplace residual, fixed scale", floors["LPC-32"]["bits_fixed_scale"]),
            ("LPC-32 + Laplace residual, adaptive scale", floors["LPC-32"]["bits_per_sample"]),
            ("persistence + adaptive Laplace residual", floors["persistence"]["bits_per_sample"]),
        ):
            summary.rows.append({"label": f"baseline: {name}", "bits": bits})
            bits_chart[name] = bits
    summary.rows += _references(ctx, train_audio, held, sr, ref_rms, opts, spectra, takes_table)
    figures = [
        _bits_figure(ctx, bits_chart),
        *(_spectrogram_figure(ctx, name, signals, sr) for name, signals in spectra.items()),
    ]
    return Result(
        [
            ("Models after the same training time, on held-out tracks:", summary),
            ("Every take:", takes_table),
        ],
        notes=_notes(opts, summary),
        figures=figures,
        settings=_settings(ctx, runs, corpus, opts),
    )


def _one_step_snr(run: Any, paths: list[Path], held: list[np.ndarray], opts: dict) -> float:
    """The regression model's one-step prediction SNR over the held-out tracks (pooled)."""
    from noizenet.analysis.metrics import snr_db
    from noizenet.generate import reproduce

    ys, ps = [], []
    for path, y in zip(paths, held, strict=True):
        rep = reproduce(
            run, path, seconds=y.size / run.sr, offset=run.config.data.offset, write=False
        )
        ys.append(rep.original[1:])
        ps.append(rep.predicted[1:])
    return snr_db(np.concatenate(ys), np.concatenate(ps), skip=0)


def _seed_text(kind: str, path: Path, offset: float) -> str:
    return f"song:{path}@{offset!r}" if kind == "song" else kind


def _takes(
    ctx: Context,
    run: Any,
    label: str,
    paths: list[Path],
    held: list[np.ndarray],
    temp: float,
    opts: dict,
    ref_rms: float,
    spectra: dict[str, dict[str, np.ndarray]],
) -> list[dict[str, Any]]:
    """One take per seed kind at temperature ``temp``: its row, its audio, its spectrogram."""
    from noizenet.analysis import metrics as m
    from noizenet.audio import write
    from noizenet.generate import generate

    rows = []
    short = _slug(label)
    categorical = run.model().spec.categorical
    for kind in SEEDS:
        gen = {
            "seed": _seed_text(kind, paths[0], run.config.data.offset),
            "seconds": float(opts["take_seconds"]),
            "seed_seconds": SEED_SECONDS,
            "random_seed": ctx.seed,
        }
        if categorical:
            gen["temperature"] = temp
        name = f"{short}_{kind}_t{temp:g}"
        row: dict[str, Any] = {"label": label, "seed": kind, "temperature": f"{temp:g}"}
        try:
            y = generate(run, write=False, **gen)[0].audio
        except NoizeNetError as exc:  # a model that diverges is a result, not a crash
            if "non-finite" not in str(exc):
                raise
            rows.append({**row, "collapse_s": "non-finite"})
            continue
        stats = m.audio_stats(y, sr=run.sr, reference_rms=ref_rms)
        path = write(ctx.dir / "audio" / f"{name}.wav", y, sr=run.sr)
        rows.append(
            {
                **row,
                "collapse_s": stats["collapse_s"],
                "flatness": stats["flatness"],
                "frechet": m.log_mel_frechet_distance(y, held, sr=run.sr),
                "rms": float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) / ref_rms,
                "audio": path.relative_to(ctx.dir).as_posix(),
            }
        )
        spectra.setdefault(f"{short}_t{temp:g}", {})[f"{label}, seed {kind}, T {temp:g}"] = y
    return rows


def _references(
    ctx: Context,
    train_audio: list[np.ndarray],
    held: list[np.ndarray],
    sr: int,
    ref_rms: float,
    opts: dict,
    spectra: dict,
    takes: Table,
) -> list[dict[str, Any]]:
    """The held-out audio itself (Frechet: the training songs to it) and white noise of the
    training RMS, as rows beside the models."""
    from noizenet.analysis import metrics as m
    from noizenet.audio import write

    rng = np.random.default_rng(ctx.seed)
    n = round(float(opts["take_seconds"]) * sr)
    noise = (rng.standard_normal(n) * ref_rms).astype(np.float32)
    flat = [m.spectral_flatness(y) for y in held if y.size >= 2048]
    real = {
        "label": "reference: held-out audio (Frechet: the training songs to it)",
        "frechet_t1": m.log_mel_frechet_distance(train_audio, held, sr=sr),
        "flatness_t1": float(np.mean(flat)) if flat else None,
    }
    white = {
        "label": "reference: white noise at the training RMS",
        "frechet_t1": m.log_mel_frechet_distance(noise, held, sr=sr),
        "flatness_t1": m.spectral_flatness(noise),
    }
    path = write(ctx.dir / "audio" / "reference_white_noise.wav", noise, sr=sr)
    takes.rows.append(
        {
            "label": "white noise",
            "seed": "-",
            "temperature": "-",
            "collapse_s": None,
            "frechet": white["frechet_t1"],
            "flatness": white["flatness_t1"],
            "rms": 1.0,
            "audio": path.relative_to(ctx.dir).as_posix(),
        }
    )
    spectra["references"] = {"held-out audio (first track)": held[0], "white noise": noise}
    return [real, white]


# -- figures and words ------------------------------------------------------------------------
def _bits_figure(ctx: Context, bits: dict[str, float]) -> Path | None:
    from noizenet.experiments.plots import bits_bar_chart

    if not bits:
        return None
    return bits_bar_chart(
        bits,
        out=ctx.dir / "figures" / "bits.png",
        title="held-out bits/sample after the same training time (lower is better)",
    )


def _spectrogram_figure(
    ctx: Context, name: str, signals: dict[str, np.ndarray], sr: int
) -> Path | None:
    from noizenet.experiments.plots import spectrogram_stack

    if not signals:
        return None
    return spectrogram_stack(signals, sr=sr, out=ctx.dir / "figures" / f"spectrograms_{name}.png")


def _notes(opts: dict, summary: Table) -> list[str]:
    rows = {r["label"]: r for r in summary}
    notes = [
        f"every model trained for {opts['max_time']:g} s (stopped at the next step after it, "
        "status 'time-limit'), on the same songs; 'samples/s' is its own training speed, so "
        "'samples trained' is what the budget bought",
        "bits/sample: cross-entropy of one-step prediction on the held-out tracks (8 bits is "
        "a uniform guess over 256 levels); the MSE model has no distribution (its one-step SNR "
        "instead); the baselines are scored on the same mu-law levels",
        f"takes: {opts['take_seconds']:g} s after a {SEED_SECONDS:g} s seed of each kind, "
        "sampled at temperature 1 and 0.9 (the MSE model: no temperature); collapsed: silence, "
        "a constant or a loop shorter than 10 ms to the end of the take",
        "log-mel Frechet distance to the held-out audio (not FAD; lower is closer): a model's "
        "figure is the mean over its four seed kinds; flatness near 1 is white noise",
    ]
    mulaw = rows.get("flat LSTM, mu-law (mulaw)", {}).get("bits")
    for label in ("2-tier SampleRNN (samplernn)", "3-tier SampleRNN (samplernn-3t)"):
        bits = rows.get(label, {}).get("bits")
        if bits is not None and mulaw is not None and math.isfinite(bits):
            notes.append(f"{label}: {bits - mulaw:+.2f} bits/sample against the flat mu-law LSTM")
    return notes


def _settings(ctx: Context, runs: dict[str, Any], corpus: Any, opts: dict) -> list[str]:
    data = next(iter(runs.values())).config.data
    lines = [
        f"data `{ctx.data}`"
        + (f", validation `{data.val_source}`" if data.val_source else "")
        + f", seed {ctx.seed}: {len(corpus.train)} training songs and {len(corpus.val)} "
        f"held-out songs of {data.seconds:g} s from {data.offset:g} s, at {data.sample_rate} Hz",
        f"held-out: {', '.join(t.id for t in corpus.val)}",
        f"training: {opts['max_time']:g} s per model, {opts['jobs']} model(s) at a time in "
        f"separate processes, {opts['threads']} torch thread(s) each",
    ]
    for label, run in runs.items():
        c = run.config
        if c.model.family == "samplernn":
            what = (
                f"frames {c.model.frame_sizes}, {c.model.cell.upper()} {c.model.hidden} x "
                f"{c.model.layers}, MLP {c.model.mlp_hidden}, embedding {c.model.embedding}"
            )
        else:
            what = f"{c.model.cell.upper()} {c.model.hidden} x {c.model.layers}"
        lines.append(
            f"{label}: preset `{c.preset}`, {what}, codec {c.codec.name}, dropout "
            f"{c.model.dropout:g}, {c.train.optimizer} lr {c.train.lr:g}, {c.train.batch} x "
            f"{c.train.chunk} chunks; run `{run.path.name}`"
        )
    return lines


def _slug(label: str) -> str:
    return label.split(" (")[-1].rstrip(")").replace(" ", "-")
