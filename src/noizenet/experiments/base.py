"""What every experiment shares: scales, a run cache, one held-out track, measurement, output.

An experiment trains runs through :meth:`Context.train` (a run whose config was trained before
under the same output folder is reused, so ``run all`` trains each config once and a second
invocation is fast), measures them on one held-out track with :meth:`Context.measure`, and
returns a :class:`Result` that :func:`write_result` turns into ``results.md``, ``results.csv``
and figures in ``OUT/NAME/``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.config import Config
from noizenet.errors import AudioError, NoizeNetError
from noizenet.io import atomic_write_json, atomic_write_text
from noizenet.run import Run


@dataclass(frozen=True)
class Scale:
    """How big every run of an experiment is."""

    name: str
    base: dict[str, Any]  # config overrides of every run (dotted names)
    long_epochs: int  # epochs of the loss-curve experiments (overfit, dropout, multisong)
    eval_seconds: float  # seconds of the held-out track reproduced and compared against
    gen_seconds: float  # free-running length of every take
    seed_seconds: float  # seed length generation is primed on (the paper: 1 s of a song)
    description: str


SCALES = {
    "quick": Scale(
        "quick",
        {
            "data.seconds": 1.0,
            "data.songs": 2,
            "data.val_songs": 1,
            "data.embedded_songs": 12,
            "model.hidden": 8,
            "train.epochs": 2,
            "train.batch": 8,
            "train.threads": 1,  # tiny models: more threads only contend for shared cores
        },
        long_epochs=10,
        eval_seconds=1.0,
        gen_seconds=1.0,
        seed_seconds=0.5,
        description="tiny models (hidden 8), 2 songs of 1 s, 2 epochs: minutes on 2 CPU cores",
    ),
    "paper": Scale(
        "paper",
        {
            "data.seconds": 15.0,
            "data.songs": 5,
            "data.val_songs": 1,
            "data.embedded_songs": 102,  # the convergence table trains on up to 100 songs
            "model.hidden": 50,
            "train.epochs": 100,
        },
        long_epochs=100,
        eval_seconds=15.0,
        gen_seconds=10.0,
        seed_seconds=1.0,
        description="the paper's sizes (hidden 50, 5 songs of 15 s, 100 epochs): hours to days "
        "on a CPU, use a GPU",
    ),
}


# -- tables -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One column: ``key`` in the row dicts, its header, and how its values are formatted."""

    key: str
    header: str
    kind: str = "text"  # text | int | loss | db | bits | collapse | frechet | ratio | pct | dc


def fmt(kind: str, value: Any) -> str:
    """A value as it reads in Markdown (the CSV keeps the raw number)."""
    if kind == "collapse":
        if isinstance(value, str):
            return value
        return "never" if value is None else f"{value * 1000:.0f} ms"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "text" or isinstance(value, str):
        return str(value)
    if kind == "int":
        return f"{value:,}"
    if kind == "loss":
        return f"{value:.4g}"
    if kind in ("db", "bits"):
        return f"{value:.2f}"
    if kind == "frechet":
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if kind == "pct":
        return f"{value:.2%}"
    if kind == "dc":
        return f"{value:+.4f}"
    return f"{value:.3f}"


@dataclass
class Table:
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def markdown(self) -> str:
        """Cells a row does not have read "-"; a collapse of None reads "never"."""
        from noizenet.analysis.evaluate import markdown_table

        return markdown_table(
            [c.header for c in self.columns],
            [[fmt(c.kind, r[c.key]) if c.key in r else "-" for c in self.columns] for r in self],
        )

    def __iter__(self) -> Any:
        return iter(self.rows)

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([c.key for c in self.columns])
        for r in self.rows:
            writer.writerow([_raw(c, r[c.key]) if c.key in r else "" for c in self.columns])
        return buf.getvalue()


def _raw(col: Column, value: Any) -> Any:
    if col.kind == "collapse" and value is None:
        return "never"
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6)) if abs(value) >= 1e-4 or value == 0 else f"{value:.6g}"
    return value


@dataclass
class Result:
    """What an experiment found: its tables (the first is ``results.csv``), notes, figures."""

    tables: list[tuple[str, Table]]
    notes: list[str] = field(default_factory=list)
    figures: list[Path | None] = field(default_factory=list)  # None: a figure not drawn
    settings: list[str] = field(default_factory=list)


# -- the context an experiment runs in ----------------------------------------------------------
METRIC_COLUMNS = [
    Column("train_loss", "train loss", "loss"),
    Column("val_loss", "val loss", "loss"),
    Column("snr_db", "one-step SNR (dB)", "db"),
    Column("collapse_s", "collapse", "collapse"),
    Column("frechet", "log-mel Frechet", "frechet"),
    Column("flatness", "flatness", "ratio"),
]


class Context:
    """One experiment's settings, output folder, run cache and held-out track."""

    def __init__(
        self,
        name: str,
        *,
        out: Path,
        data: str = "embedded",
        scale: str = "quick",
        seed: int = 0,
        progress: bool = False,
        log: Callable[[str], Any] = print,
        fresh: bool = False,
        trained: set[str] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if scale not in SCALES:
            raise NoizeNetError(f"--scale {scale!r}: choose quick or paper")
        self.name = name
        self.root = Path(out)
        self.dir = self.root / name
        self.runs_dir = self.root / "runs"
        self.data = data
        self.scale = SCALES[scale]
        self.seed = seed
        self.progress = progress
        self.log = log
        self.fresh = fresh
        self._trained = trained if trained is not None else set()  # shared across `run all`
        self._held: Any = None
        self._real: dict[str, Any] | None = None
        self._measured: dict[tuple, Any] = {}
        self.warnings: set[str] = set()  # caveats found while measuring, for results.md
        self.options = dict(options or {})  # an experiment's own settings (tiers: --max-time)

    # -- configs and runs ----------------------------------------------------------------------
    def config(self, overrides: dict[str, Any] | None = None) -> Config:
        """The scale's base settings on this experiment's data and seed, plus ``overrides``."""
        return Config().with_overrides(
            {"seed": self.seed, "data.source": self.data, **self.scale.base, **(overrides or {})}
        )

    def reusable(
        self, label: str, cfg: Config, *, done: tuple[str, ...] = ("complete",)
    ) -> tuple[Any, Path]:
        """The run trained before with exactly ``cfg`` (None if there is none, or ``--fresh``
        asks for it again) and the folder it lives or will live in. A run counts as trained
        when its status is one of ``done``: "complete", and for a time budget "time-limit"."""
        text = cfg.to_toml()
        key = hashlib.sha256(text.encode()).hexdigest()[:10]
        existing = sorted(self.runs_dir.glob(f"*-{key}"))
        folder = existing[0] if existing else self.runs_dir / f"{_slug(label)}-{key}"
        if existing and not (self.fresh and key not in self._trained):
            try:
                run = Run.open(folder)
                same = (folder / "config.toml").read_text(encoding="utf-8") == text
                if run.info.status in done and same:
                    self._trained.add(key)
                    return run, folder
            except NoizeNetError:
                pass
        return None, folder

    def mark_trained(self, folder: Path) -> None:
        """Record that ``folder`` was trained by this invocation (``--fresh`` trains it once)."""
        self._trained.add(folder.name.rpartition("-")[2])

    def train(self, label: str, overrides: dict[str, Any] | None = None) -> Any:
        """Train (or reuse) the run ``overrides`` describes; ``label`` names its folder."""
        from noizenet.train import train

        cfg = self.config(overrides)
        run, folder = self.reusable(label, cfg)
        if run is not None:
            return run
        key = folder.name.rpartition("-")[2]
        t0 = time.perf_counter()
        run = train(cfg, folder, force=True, progress=self.progress, log=_quiet)
        self._trained.add(key)
        m = run.info.metrics
        val = m.get("val_loss")
        self.log(
            f"  trained {label}: {cfg.train.epochs} epochs in {time.perf_counter() - t0:.1f} s, "
            f"train loss {m.get('train_loss', float('nan')):.4g}, "
            f"val loss {'-' if val is None else format(val, '.4g')} -> {folder}"
        )
        return run

    # -- the held-out track ----------------------------------------------------------------------
    def held_out(self) -> Any:
        """The experiment's held-out track: the last usable track of the seeded shuffle that
        :func:`~noizenet.corpus.load_corpus` draws training songs from, so no run with fewer
        songs than the source holds trains on it. Its first ``eval_seconds`` are used."""
        if self._held is None:
            from noizenet.analysis.evaluate import HeldOut
            from noizenet.corpus import list_tracks, load_track

            cfg = self.config().data
            tracks = list_tracks(cfg, seed=self.seed)
            order = np.random.default_rng(self.seed).permutation(len(tracks))
            for i in order[::-1]:
                track = tracks[int(i)]
                try:
                    y = load_track(
                        track,
                        sr=cfg.sample_rate,
                        offset=cfg.offset,
                        seconds=self.scale.eval_seconds,
                    )
                except AudioError:
                    continue
                self._held = HeldOut([track.id], [track.path], [y], cfg.offset)
                break
            else:
                raise NoizeNetError(f"{self.data}: no usable track to hold out")
        return self._held

    def trained_on_held_out(self, run: Any) -> bool:
        path = self.held_out().paths[0].resolve()
        return any(Path(t["path"]).resolve() == path for t in run.info.tracks("train"))

    def real_stats(self, run: Any) -> dict[str, Any]:
        """The real-audio reference row: the held-out track's own statistics, and the log-mel
        Frechet distance of ``run``'s training tracks to it (real music vs real music)."""
        if self._real is None:
            from noizenet.analysis import metrics as m
            from noizenet.analysis.evaluate import fit_baseline

            held = self.held_out()
            y = held.audio[0]
            train = fit_baseline(run, held).train_audio
            self._real = {
                "label": f"real audio: held-out {held.ids[0]} (Frechet: training songs to it)",
                **m.audio_stats(y, sr=run.sr, reference_rms=run.info.train_rms),
                "frechet": m.log_mel_frechet_distance(train, held.audio, sr=run.sr)
                if train
                else None,
            }
        return dict(self._real)

    # -- measurement -------------------------------------------------------------------------
    def measure(
        self,
        run: Any,
        *,
        seed_seconds: float | None = None,
        gen_seconds: float | None = None,
        inject: str | None = None,
        temperature: str | float = 1.0,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Measure ``run`` on the held-out track.

        Returns (the model's row, the baselines' rows {"persistence", "LPC-32"}, the audio):
        rows hold train_loss, val_loss, val_bits, snr_db, bits, collapse_s, frechet, flatness,
        dc_offset, clipped_fraction; the audio ``predicted`` and ``generated`` per contender.
        """
        from noizenet.analysis.evaluate import evaluate_run, fit_baseline

        key = (str(run.path), seed_seconds, gen_seconds, inject, str(temperature))
        if key in self._measured:  # the base run stands in many rows of a table
            model, baselines, audio = self._measured[key]
            return dict(model), {k: dict(v) for k, v in baselines.items()}, audio
        held = self.held_out()
        summary, audio = evaluate_run(
            run,
            held,
            fit_baseline(run, held),
            gen_seconds=gen_seconds or self.scale.gen_seconds,
            seed_seconds=seed_seconds or self.scale.seed_seconds,
            inject=inject,
            temperature=temperature,
            random_seed=self.seed,
            real=False,
        )
        cols = summary["columns"]
        metrics = run.info.metrics

        def row(name: str) -> dict[str, Any]:
            c = cols[name]
            collapse = c.get("collapse_s")
            return {
                "snr_db": c.get("snr_db"),
                "bits": c.get("bits_per_sample"),
                "collapse_s": collapse[0] if collapse else None,
                "frechet": c.get("log_mel_frechet"),
                "flatness": c.get("flatness"),
                "dc_offset": c.get("dc_offset"),
                "clipped_fraction": c.get("clipped_fraction"),
            }

        model = {
            "train_loss": metrics.get("train_loss"),
            "val_loss": metrics.get("val_loss"),
            "val_bits": metrics.get("val_bits"),
            **row("NoizeNet"),
        }
        if self.trained_on_held_out(run):  # a small --data folder: said in results.md
            self.warnings.add(
                f"run `{run.path.name}` trained on the held-out track `{held.ids[0]}` (the "
                "source has too few songs): its SNR and generation are not on unseen audio"
            )
        baselines = {
            "persistence": {"snr_db": cols["persistence"]["snr_db"]},
            "LPC-32": row("LPC-32"),
        }
        self._measured[key] = (model, baselines, audio)
        return dict(model), {k: dict(v) for k, v in baselines.items()}, audio

    def settings(self, run: Any | None = None) -> list[str]:
        """Lines for results.md saying what was run."""
        held = self.held_out()
        cfg = run.config if run is not None else self.config()
        chunk = cfg.train.chunk
        lines = [
            f"scale `{self.scale.name}`: {self.scale.description}",
            f"data `{self.data}`, seed {self.seed}; held-out track `{held.ids[0]}` "
            f"(first {self.scale.eval_seconds:g} s)",
            f"base run: {cfg.model.cell.upper()} hidden {cfg.model.hidden}, {cfg.model.layers} "
            f"layer(s), dropout {cfg.model.dropout}, {cfg.train.loss.upper()}, "
            f"{cfg.train.optimizer} lr {cfg.train.lr:g}, clip {cfg.train.clip_mode} "
            f"{cfg.train.clip:g}, {cfg.data.songs} songs of {cfg.data.seconds:g} s, "
            f"{cfg.train.epochs} epochs, stateful truncated BPTT with {cfg.train.batch} streams "
            f"x {chunk} samples",
            f"generation: primed on the first {self.scale.seed_seconds:g} s of the held-out "
            f"track, then {self.scale.gen_seconds:g} s free-running",
        ]
        return lines


def _quiet(*_: Any) -> None:
    pass


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text.lower())
    return "-".join(p for p in keep.split("-") if p)[:60] or "run"


# -- output -------------------------------------------------------------------------------------
def write_result(ctx: Context, title: str, paper: str, result: Result) -> Path:
    """Write ``results.md`` (every table, notes, settings, figures) and ``results.csv`` (the
    first table; further tables as ``results_N.csv``) into the experiment's folder."""

    lines = [f"# {ctx.name}: {title}", "", f"Paper: {paper}.", ""]
    for caption, table in result.tables:
        if caption:
            lines += [caption, ""]
        lines += [table.markdown(), ""]
    notes = [*result.notes, *(f"warning: {w}" for w in sorted(ctx.warnings))]
    if notes:
        lines += [*(f"- {n}" for n in notes), ""]
    lines += ["Settings:", "", *(f"- {s}" for s in (result.settings or ctx.settings())), ""]
    figures = [f for f in result.figures if f is not None]
    if figures:
        lines += ["Figures:", ""]
        for f in figures:
            rel = Path(f).relative_to(ctx.dir) if Path(f).is_relative_to(ctx.dir) else Path(f)
            lines.append(f"![{rel.stem}]({rel.as_posix()})")
        lines.append("")
    md = ctx.dir / "results.md"
    atomic_write_text(md, "\n".join(lines))
    for i, (_caption, table) in enumerate(result.tables):
        name = "results.csv" if i == 0 else f"results_{i + 1}.csv"
        atomic_write_text(ctx.dir / name, table.csv())
    atomic_write_json(
        ctx.dir / "results.json",
        {
            "experiment": ctx.name,
            "title": title,
            "tables": [
                {"caption": caption, "rows": [_json_row(t.columns, r) for r in t]}
                for caption, t in result.tables
            ],
            "notes": notes,
            "settings": result.settings or ctx.settings(),
        },
    )
    return md


def _json_row(columns: list[Column], row: dict[str, Any]) -> dict[str, Any]:
    """A table row as JSON: the columns' raw values (NaN as null), "never" for no collapse."""
    out = {}
    for c in columns:
        if c.key not in row:
            continue
        value = row[c.key]
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if c.kind == "collapse" and value is None:
            value = "never"
        if isinstance(value, np.generic):
            value = value.item()
        out[c.key] = value
    return out
