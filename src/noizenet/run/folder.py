"""The one reader of a run folder: generate, reproduce, evaluate, experiments and report open
runs here.

Weights are only ever read through safetensors and metadata through JSON/TOML: opening a run
never executes code from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noizenet.config import Config
from noizenet.errors import NoizeNetError
from noizenet.io import read_jsonl
from noizenet.run.choice import Weights, choose_weights
from noizenet.run.info import RunInfo, read_run_info
from noizenet.run.paths import RunPaths
from noizenet.run.takes import TakeName, take_name
from noizenet.run.weights import load_model, load_model_file


def require_run_folder(path: str | Path) -> RunPaths:
    """The folder's paths; a one-line error when it holds no run."""
    paths = RunPaths(Path(path))
    if not paths.info.is_file():
        raise NoizeNetError(f"{paths.root}: not a NoizeNet run folder (no run.json)")
    return paths


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """metrics.jsonl's records (a torn last line is dropped); empty when there is none yet."""
    p = RunPaths(Path(path)).metrics
    return [r for r in read_jsonl(p) if isinstance(r, dict)] if p.is_file() else []


def read_events(path: str | Path) -> list[dict[str, Any]]:
    p = RunPaths(Path(path)).events
    return [r for r in read_jsonl(p) if isinstance(r, dict)] if p.is_file() else []


@dataclass
class Run:
    """An existing run folder, opened for generation, reproduction, evaluation or reporting."""

    path: Path
    config: Config
    info: RunInfo
    paths: RunPaths = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.paths = RunPaths(self.path)

    @classmethod
    def open(cls, path: str | Path) -> Run:
        paths = require_run_folder(path)
        info = read_run_info(paths.info)
        return cls(paths.root, Config.load(paths.config), info)

    @property
    def sr(self) -> int:
        return self.info.sample_rate

    @property
    def weights(self) -> Path:
        return self.paths.weights

    @property
    def name(self) -> str:
        return self.path.name

    def choose(self, checkpoint: Any = "last") -> Weights:
        """Which weights ``checkpoint`` (last, best, epoch:N, PATH) names, checked."""
        return choose_weights(self, checkpoint)

    def model(self, checkpoint: Any = "last") -> Any:
        """The model with the weights ``checkpoint`` names (default: model.safetensors)."""
        if checkpoint == "last":
            return load_model(self.weights)
        return load_model_file(self.choose(checkpoint).path)[0]

    def codec(self) -> Any:
        from noizenet.codecs import codec_from_state

        try:
            return codec_from_state(self.info.codec)
        except (NoizeNetError, ValueError, TypeError, KeyError) as exc:
            raise NoizeNetError(f"{self.paths.info}: codec: {exc}") from None

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.path)

    def take_path(self, name: TakeName) -> Path:
        """Where a take of this name lives: ``RUN/audio/NAME.wav``."""
        return self.paths.audio / f"{take_name(name)}.wav"
