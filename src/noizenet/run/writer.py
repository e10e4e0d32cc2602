"""The one writer of a run folder, used by training: settings, run.json, metrics, events, weights.

Training never edits ``run.json`` as a dict: it tells the writer what happened (an epoch ended,
the run was resumed, rolled back or stopped) and the writer keeps :class:`RunInfo`, the metrics
and the event log consistent with each other on disk.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from noizenet.config import Config
from noizenet.io import append_jsonl, read_jsonl, write_jsonl
from noizenet.run.info import RunInfo, write_run_info
from noizenet.run.paths import RunPaths
from noizenet.run.weights import save_weights

#: The per-epoch figures ``run.json`` repeats from the last line of ``metrics.jsonl``.
SUMMARY_KEYS = ("train_loss", "val_loss", "samples_per_s")
OPTIONAL_SUMMARY_KEYS = ("train_bits", "val_bits")  # categorical heads only


def now() -> str:
    """Local time for run.json and events.jsonl, ISO 8601 with the UTC offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def metrics_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """``run.json``'s ``metrics``: the last epoch's record, or nothing before the first."""
    if not records:
        return {}
    last = records[-1]
    return {
        "epochs": last["epoch"],
        **{k: last[k] for k in SUMMARY_KEYS},
        **{k: last[k] for k in OPTIONAL_SUMMARY_KEYS if k in last},
    }


class EventLog:
    """``events.jsonl``: one line per skipped step, rollback, interruption or resume.

    ``count`` is stored in every checkpoint, so a resumed run drops the lines it will log again.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.count = len(read_jsonl(self.path)) if self.path.is_file() else 0

    def append(self, event: dict[str, Any]) -> None:
        append_jsonl(self.path, {"time": now(), **event})
        self.count += 1

    def truncate(self, n: int) -> None:
        records = read_jsonl(self.path)[:n] if self.path.is_file() else []
        write_jsonl(self.path, records)
        self.count = len(records)


class RunWriter:
    """Writes one run folder as training goes (rank 0 only under torchrun)."""

    def __init__(self, root: str | Path, info: RunInfo) -> None:
        self.paths = RunPaths(Path(root))
        self.info = info
        self.events = EventLog(self.paths.events)

    def save(self) -> None:
        write_run_info(self.paths.info, self.info)

    def start(self, config: Config) -> None:
        """The settings and run.json as training (re)starts."""
        self.info.status = "training"
        config.save(self.paths.config)
        self.save()

    def set_status(self, status: str) -> None:
        self.info.status = status
        self.save()

    def epoch_done(self, record: dict[str, Any], model: Any, records: list[dict[str, Any]]) -> None:
        """An epoch's line in metrics.jsonl, the weights after it, and run.json's summary."""
        append_jsonl(self.paths.metrics, record)
        save_weights(self.paths.weights, model)
        # every epoch's weights are kept (``--checkpoint epoch:N``, ``best``); written after
        # the metrics line, so an epoch file always has its line (a crash between the two
        # leaves a line without weights, which the reader reports)
        save_weights(self.paths.epoch_weights(int(record["epoch"])), model)
        self.info.metrics = metrics_summary(records)
        self.save()

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """metrics.jsonl as exactly ``records`` (a resume or rollback drops later epochs, and
        their weights: they belong to a branch training left)."""
        if records:
            write_jsonl(self.paths.metrics, records)
        else:
            self.paths.metrics.unlink(missing_ok=True)
        last = max((int(r["epoch"]) for r in records), default=0)
        for epoch, path in self.paths.epoch_weights_kept().items():
            if epoch > last:
                path.unlink(missing_ok=True)
        self.info.metrics = metrics_summary(records)
        self.save()

    def resumed(self) -> None:
        self.info.resumed.append(now())
        self.save()
