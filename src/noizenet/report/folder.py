"""What a report reads from a run folder, read leniently.

A report must open any run folder a user hands it: one still training, one from an older or
newer NoizeNet, one whose metrics file was cut short by a crash. So this module reads the files
as data (JSON and TOML, never code), tolerates missing pieces, and only insists on ``run.json``,
the file that makes a folder a run.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noizenet.config import parse_checkpoint
from noizenet.run import (
    RunInfo,
    parse_take_name,
    read_events,
    read_metrics,
    read_run_info,
    require_run_folder,
)
from noizenet.run.takes import REPRODUCTION_PREFIX

#: Suffixes :func:`noizenet.analysis.figures.audio_figures` adds to a stem; ``views`` combines
#: the other four.
VIEW_SUFFIXES = ("views", "waveform", "envelope", "spectrogram", "spectrogram_log")
#: The suffix of a training take's small spectrogram, drawn by the report for its timeline.
STRIP_SUFFIX = "strip"


@dataclass
class TimelineTake:
    """One training take as recorded: its seed, its WAV (None when the record names no file of
    this run's ``audio/``) and its figures (collapse time, flatness, RMS, ...)."""

    seed: str
    wav: Path | None
    figures: dict[str, Any]
    problem: str | None = None


@dataclass
class TimelinePoint:
    """The takes made at one point of training: after ``epochs`` epochs, and ``step`` steps
    into the next one for a run stopped at its time limit (0 otherwise)."""

    epochs: int
    step: int
    val_loss: float | None
    takes: list[TimelineTake]


@dataclass
class RunFolder:
    """One run folder's files, parsed; missing optional files are empty."""

    path: Path
    info: RunInfo
    config: dict[str, Any]  # dotted name -> value, as saved (not validated)
    metrics: list[dict[str, Any]]
    evaluation: Any = None  # evaluation.json when present (written by ``noizenet evaluate``)
    wavs: list[Path] = field(default_factory=list)
    pngs: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unreadable optional files, shown
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def takes(self) -> list[Path]:
        return [w for w in self.wavs if not w.stem.startswith(REPRODUCTION_PREFIX)]

    @property
    def reproductions(self) -> list[Path]:
        return [w for w in self.wavs if w.stem.startswith(REPRODUCTION_PREFIX)]

    def timeline(self) -> list[TimelinePoint]:
        """The takes made during training (``train --sample-every``), in training order: from
        the epochs' records in ``metrics.jsonl`` and a time-limit stop's event."""
        points = []
        for r in self.metrics:
            if isinstance(r.get("takes"), list) and isinstance(r.get("epoch"), int):
                val = r.get("val_loss")
                val = val if isinstance(val, int | float) and not isinstance(val, bool) else None
                points.append(TimelinePoint(r["epoch"], 0, val, self._takes(r["takes"])))
        for e in self.events:
            epoch, step = e.get("epoch"), e.get("step")
            if (
                isinstance(e.get("takes"), list)
                and isinstance(epoch, int)
                and isinstance(step, int)
            ):
                points.append(TimelinePoint(epoch - 1, step, None, self._takes(e["takes"])))
        return sorted(points, key=lambda p: (p.epochs, p.step))

    def _takes(self, records: list[Any]) -> list[TimelineTake]:
        """Each record's WAV only by its plain name in this run's ``audio/``: a record cannot
        point the page (or an inlined report) at any other file."""
        wavs = {w.name: w for w in self.wavs}
        out = []
        for r in records:
            if not isinstance(r, dict):
                continue
            wav = wavs.get(Path(str(r.get("file", ""))).name)
            figures = {k: v for k, v in r.items() if k not in ("seed", "file", "problem")}
            problem = r.get("problem")
            if wav is None and problem is None:
                problem = f"{r.get('file')}: not in this run's audio folder"
            out.append(TimelineTake(str(r.get("seed", "?")), wav, figures, problem))
        return out

    def corpus_entries(self) -> list[dict[str, Any]]:
        return self.info.tracks("train") + self.info.tracks("val")

    def views_of(self, wav: Path) -> Path | None:
        """The combined views figure of a WAV: in ``figures/`` or beside the WAV."""
        for folder in (self.path / "figures", wav.parent):
            p = folder / f"{wav.stem}_views.png"
            if p.is_file():
                return p
        return None


def read_run(path: str | Path, *, checkpoint: str | None = None) -> RunFolder:
    """Read a run folder for reporting; raises :class:`NoizeNetError` if it is not one.
    ``checkpoint`` (last, best, epoch:N, PATH): only the takes those weights made."""
    paths = require_run_folder(path)
    path = paths.root
    run = RunFolder(path=path, info=read_run_info(paths.info, strict=False), config={}, metrics=[])

    config_toml = paths.config
    if config_toml.is_file():
        try:
            run.config = flatten(tomllib.loads(config_toml.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            run.problems.append(f"{config_toml}: unreadable ({exc})")
    try:
        run.metrics = read_metrics(path)
    except (OSError, UnicodeDecodeError) as exc:
        run.problems.append(f"{paths.metrics}: unreadable ({exc})")
    try:
        run.events = read_events(path)
    except (OSError, UnicodeDecodeError) as exc:
        run.problems.append(f"{paths.events}: unreadable ({exc})")
    evaluation = paths.evaluation
    if evaluation.is_file():
        try:
            run.evaluation = json.loads(evaluation.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            run.problems.append(f"{evaluation}: unreadable ({exc})")
    run.wavs = sorted(p for p in paths.audio.glob("*.wav") if p.is_file())
    if checkpoint is not None:  # only the takes the chosen weights made (as their names say)
        tag = parse_checkpoint(checkpoint).tag
        run.wavs = [w for w in run.wavs if getattr(parse_take_name(w.stem), "checkpoint", 0) == tag]
    run.pngs = sorted(
        p
        for folder in ("figures", "audio")
        for p in (path / folder).glob("*.png")
        if p.is_file() and not p.name.startswith(".")
    )
    return run


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted names: ``{"model": {"hidden": 50}}`` -> ``{"model.hidden": 50}``."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                out.update(flatten(value, name))
            else:
                out[name] = value
    else:
        out[prefix] = obj
    return out


def describe_take(stem: str) -> str | None:
    """A caption for a generated take, read from its name (:func:`noizenet.run.take_name`):
    seed, epochs, checkpoint, how it ran free (injection, or temperature and top-p), variation.
    None for a file not named by NoizeNet."""
    name = parse_take_name(stem)
    if name is None or name.reproduction:
        return None
    parts = [f"seed {name.seed}", f"after {name.epochs} epochs"]
    if name.checkpoint is not None:
        parts.append(f"checkpoint {name.checkpoint}")
    if name.temperature is not None:
        t0, t1 = name.temperature
        parts.append(f"temperature {t0:g}" if t0 == t1 else f"temperature {t0:g} to {t1:g}")
        if name.top_p is not None:
            parts.append(f"top-p {name.top_p:g}")
    else:
        parts.append(f"noise injection {name.inject or 'none'}")
    parts.append(f"variation {name.variation}")
    return ", ".join(parts)
