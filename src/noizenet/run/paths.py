"""Where each file of a run folder lives: the one place that spells their names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG = "config.toml"  # full resolved settings
WEIGHTS = "model.safetensors"  # weights, with the model spec in their metadata
INFO = "run.json"  # codec statistics, sample rate, versions, seed, corpus, metrics
METRICS = "metrics.jsonl"  # one line per epoch
EVENTS = "events.jsonl"  # skipped steps, rollbacks, interruptions, resumes
EVALUATION = "evaluation.json"  # written by ``noizenet evaluate``
REPORT = "report.html"
CHECKPOINTS = "checkpoints"
FIGURES = "figures"
AUDIO = "audio"
TENSORBOARD = "tb"

#: What training writes, and ``train --force`` removes before it starts again.
RUN_FILES = (CONFIG, WEIGHTS, INFO, METRICS, EVENTS)
RUN_DIRS = (FIGURES, AUDIO, CHECKPOINTS)


@dataclass(frozen=True)
class RunPaths:
    """The paths of one run folder's files (which need not exist yet)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def weights(self) -> Path:
        return self.root / WEIGHTS

    @property
    def info(self) -> Path:
        return self.root / INFO

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def events(self) -> Path:
        return self.root / EVENTS

    @property
    def evaluation(self) -> Path:
        return self.root / EVALUATION

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def figures(self) -> Path:
        return self.root / FIGURES

    @property
    def audio(self) -> Path:
        return self.root / AUDIO

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD
