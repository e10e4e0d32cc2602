"""Where each file of a run folder lives: the one place that spells their names."""

from __future__ import annotations

import re
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
BEST_CHECKPOINT = "best.safetensors"  # in CHECKPOINTS: the checkpoint with the lowest val loss
# the weights after each epoch (``weights/epoch-0003.safetensors``), for ``--checkpoint
# epoch:N`` and ``best``: weights files, small beside checkpoints (no optimizer state)
EPOCH_WEIGHTS = "weights"
_EPOCH_WEIGHTS = re.compile(r"epoch-(\d+)\.safetensors")

#: What training writes, and ``train --force`` removes before it starts again.
RUN_FILES = (CONFIG, WEIGHTS, INFO, METRICS, EVENTS)
RUN_DIRS = (FIGURES, AUDIO, CHECKPOINTS, EPOCH_WEIGHTS)


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

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST_CHECKPOINT

    def epoch_weights(self, epoch: int) -> Path:
        """The weights after epoch ``epoch`` (1 = the first)."""
        return self.root / EPOCH_WEIGHTS / f"epoch-{epoch:04d}.safetensors"

    def epoch_weights_kept(self) -> dict[int, Path]:
        """Epoch -> its weights file, for every epoch the folder keeps."""
        folder = self.root / EPOCH_WEIGHTS
        if not folder.is_dir():
            return {}
        found = ((_EPOCH_WEIGHTS.fullmatch(p.name), p) for p in folder.iterdir())
        return {int(m[1]): p for m, p in found if m}
