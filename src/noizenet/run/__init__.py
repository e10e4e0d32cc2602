"""A run folder: the unit users share, resume, compare and generate from.

``config.toml`` (full resolved settings), ``model.safetensors`` (weights, with the model spec in
its metadata), ``run.json`` (codec statistics, sample rate, versions, seed, corpus, metrics),
``metrics.jsonl`` (one line per epoch), ``events.jsonl``, ``checkpoints/``, ``weights/`` (the
weights after each epoch), ``figures/*.png``,
``audio/*.wav``, ``report.html`` and ``tb/``.

This package owns every path and file of a run: :mod:`~noizenet.run.paths` names them,
:mod:`~noizenet.run.writer` is the writer training uses, :class:`Run` the reader every other
verb uses, and :mod:`~noizenet.run.takes` makes and reads the names of generated audio.
"""

from __future__ import annotations

from noizenet.run.choice import Weights, best_epoch, choose_weights
from noizenet.run.folder import (
    Run,
    read_events,
    read_metrics,
    require_run_folder,
)
from noizenet.run.info import RunInfo, read_run_info, versions, write_run_info
from noizenet.run.paths import RUN_DIRS, RUN_FILES, RunPaths
from noizenet.run.takes import TakeName, parse_take_name, take_name
from noizenet.run.weights import (
    LEGACY_WEIGHTS_VERSIONS,
    WEIGHTS_FORMAT,
    WEIGHTS_VERSION,
    SavedWeights,
    load_model,
    read_weights,
    save_weights,
)
from noizenet.run.writer import EventLog, RunWriter

__all__ = [
    "LEGACY_WEIGHTS_VERSIONS",
    "RUN_DIRS",
    "RUN_FILES",
    "WEIGHTS_FORMAT",
    "WEIGHTS_VERSION",
    "EventLog",
    "Run",
    "RunInfo",
    "RunPaths",
    "RunWriter",
    "SavedWeights",
    "TakeName",
    "Weights",
    "best_epoch",
    "choose_weights",
    "load_model",
    "parse_take_name",
    "read_events",
    "read_metrics",
    "read_run_info",
    "read_weights",
    "require_run_folder",
    "save_weights",
    "take_name",
    "versions",
    "write_run_info",
]
