"""What a report reads from a run folder, read leniently.

A report must open any run folder a user hands it: one still training, one from an older or
newer NoizeNet, one whose metrics file was cut short by a crash. So this module reads the files
as data (JSON and TOML, never code), tolerates missing pieces, and only insists on ``run.json``,
the file that makes a folder a run.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noizenet.errors import NoizeNetError

#: Generated takes are named by :func:`noizenet.generate._take_path`.
TAKE_NAME = re.compile(
    r"^gen_(?P<seed>.+)_e(?P<epochs>\d+)(?:_inj-(?P<inject>[a-z]+))?_v(?P<variation>\d+)$"
)
REPRODUCTION_PREFIX = "reproduction_"
#: Suffixes :func:`noizenet.analysis.figures.audio_figures` adds to a stem; ``views`` combines
#: the other four.
VIEW_SUFFIXES = ("views", "waveform", "envelope", "spectrogram", "spectrogram_log")


@dataclass
class RunFolder:
    """One run folder's files, parsed; missing optional files are empty."""

    path: Path
    info: dict[str, Any]
    config: dict[str, Any]  # dotted name -> value, as saved (not validated)
    metrics: list[dict[str, Any]]
    evaluation: Any = None  # evaluation.json when present (written by ``noizenet evaluate``)
    wavs: list[Path] = field(default_factory=list)
    pngs: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unreadable optional files, shown

    @property
    def takes(self) -> list[Path]:
        return [w for w in self.wavs if not w.stem.startswith(REPRODUCTION_PREFIX)]

    @property
    def reproductions(self) -> list[Path]:
        return [w for w in self.wavs if w.stem.startswith(REPRODUCTION_PREFIX)]

    def corpus_entries(self) -> list[dict[str, Any]]:
        corpus = self.info.get("corpus") or {}
        out = []
        for split in ("train", "val"):
            out += [e for e in corpus.get(split) or [] if isinstance(e, dict)]
        return out

    def views_of(self, wav: Path) -> Path | None:
        """The combined views figure of a WAV: in ``figures/`` or beside the WAV."""
        for folder in (self.path / "figures", wav.parent):
            p = folder / f"{wav.stem}_views.png"
            if p.is_file():
                return p
        return None


def read_run(path: str | Path) -> RunFolder:
    """Read a run folder for reporting; raises :class:`NoizeNetError` if it is not one."""
    path = Path(path)
    run_json = path / "run.json"
    if not run_json.is_file():
        raise NoizeNetError(f"{path}: not a NoizeNet run folder (no run.json)")
    try:
        info = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NoizeNetError(f"{run_json}: unreadable ({exc})") from None
    if not isinstance(info, dict):
        raise NoizeNetError(f"{run_json}: expected a JSON object, got {type(info).__name__}")
    run = RunFolder(path=path, info=info, config={}, metrics=[])

    config_toml = path / "config.toml"
    if config_toml.is_file():
        try:
            run.config = flatten(tomllib.loads(config_toml.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            run.problems.append(f"{config_toml}: unreadable ({exc})")
    metrics = path / "metrics.jsonl"
    if metrics.is_file():
        from noizenet.io import read_jsonl

        try:
            run.metrics = [r for r in read_jsonl(metrics) if isinstance(r, dict)]
        except (OSError, UnicodeDecodeError) as exc:
            run.problems.append(f"{metrics}: unreadable ({exc})")
    evaluation = path / "evaluation.json"
    if evaluation.is_file():
        try:
            run.evaluation = json.loads(evaluation.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            run.problems.append(f"{evaluation}: unreadable ({exc})")
    run.wavs = sorted(p for p in (path / "audio").glob("*.wav") if p.is_file())
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


def describe_take(stem: str) -> dict[str, str] | None:
    """Seed, epochs, injection and variation read from a take's file name, if it follows the
    default naming (``gen_SEED_eEPOCHS[_inj-MODE]_vI``)."""
    m = TAKE_NAME.match(stem)
    if not m:
        return None
    return {
        "seed": m["seed"],
        "epochs": m["epochs"],
        "injection": m["inject"] or "none",
        "variation": m["variation"],
    }
