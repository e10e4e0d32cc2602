"""Typed, validated settings: the one source of defaults, TOML in and out.

The defaults are the paper's headline configuration (section 5.5.3): LSTM, hidden 50, 1 layer,
dropout 0.5, MSE, Adam, lr 0.01, gradient clipping by value at 1, 5 songs of 15 s at 22,050 Hz.
Every command-line flag of ``noizenet train`` is generated from a field here (see
:func:`flag_specs`), so a flag, its default and its help text cannot drift apart.

This module imports nothing heavy: ``noizenet --help`` builds its parser from it.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noizenet.errors import ConfigError

WHOLE_SONG = "whole-song"
CELLS = ("rnn", "lstm", "gru")
CODECS = ("zscore", "minmax", "mulaw", "linear-q", "fft")
FFT_PARTS = ("real-imag", "logmag-phase")
SCALINGS = ("corpus", "per-file")
LOSSES = ("mse", "mae")
OPTIMIZERS = ("adam", "sgd", "adadelta")
CLIP_MODES = ("value", "norm", "none")
PRECISIONS = ("fp32", "bf16", "fp16")
FMA_SUBSETS = ("small", "medium", "large")  # ordered: "medium" holds every small track too
FMA_SPLITS = ("training", "validation", "test")


def _f(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_min: bool = False,
    cli: bool = True,
) -> Any:
    """A dataclass field with the metadata the CLI and the validator read."""
    meta = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "min": minimum,
        "max": maximum,
        "exclusive_min": exclusive_min,
        "cli": cli,
    }
    if isinstance(default, list):  # a mutable default needs a factory
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    source: str = _f(
        "embedded",
        "where songs come from: a folder of audio files, fma:ROOT (the Free Music Archive: "
        "ROOT holds fma_metadata/ and fma_small/ ...), or 'embedded' (our synthetic corpus, "
        "no download)",
        flag="--data",
    )
    songs: int = _f(5, "number of training songs (paper: 5)", minimum=1)
    seconds: float = _f(
        15.0, "use the first SECONDS of each song (paper: 15)", minimum=0, exclusive_min=True
    )
    offset: float = _f(0.0, "skip this many seconds at the start of each song", minimum=0)
    val_songs: int = _f(1, "held-out songs for validation loss (0: none)", minimum=0)
    sample_rate: int = _f(
        22050,
        "sample rate the model works at, Hz (paper: 22,050)",
        flag="--sr",
        minimum=1000,
        maximum=192000,
    )
    cache_dir: str = _f(
        "",
        "where the embedded corpus and decoded audio are cached "
        "(default: $NOIZENET_CACHE or ~/.cache/noizenet)",
    )
    embedded_songs: int = _f(12, "songs the embedded composer writes", minimum=2, maximum=10000)
    genre: list[str] = _f(  # noqa: RUF009 (_f gives a list field a default_factory)
        [],
        "only songs of these genres, comma-separated (FMA: track.genre_top, e.g. "
        "Instrumental,Classical; folder: the first sub-folder; embedded: classical, folk, "
        "electronic); empty: every genre",
    )
    subset: str = _f(
        "small",
        "FMA only: tracks of this subset or a smaller one, as the dataset's own tools select "
        "(small < medium < large)",
        choices=FMA_SUBSETS,
    )
    split: list[str] = _f(  # noqa: RUF009
        [],
        "FMA only: draw songs from these dataset splits, comma-separated; empty: train on "
        "'training' and validate on 'validation' (the 'test' split stays unseen)",
        choices=FMA_SPLITS,
    )
    decode_workers: int = _f(
        0,
        "processes that decode songs into the cache (0: one per CPU core, fewer for a "
        "handful of songs; 1: in the training process)",
        minimum=0,
    )


@dataclass
class CodecConfig:
    name: str = _f(
        "zscore",
        "how samples become model values: zscore (the paper), minmax (to [-1, 1]), mulaw or "
        "linear-q (quantised levels, categorical head, cross-entropy), fft (blocks of --block "
        "samples, paper 5.7.1)",
        flag="--codec",
        choices=CODECS,
    )
    scaling: str = _f(
        "corpus",
        "fit the scaler on all training songs together, or per file as "
        "the paper's StandardScaler did (zscore and minmax only)",
        choices=SCALINGS,
    )
    levels: int = _f(
        256,
        "quantisation levels for mulaw and linear-q (a power of 2, 2 to 65,536)",
        minimum=2,
        maximum=65536,
    )
    block: int = _f(
        512, "fft: samples per block (even); blocks overlap by half", minimum=4, maximum=65536
    )
    fft_parts: str = _f(
        "real-imag",
        "fft: the real and imaginary parts (the authors' choice) or log-magnitude and phase",
        choices=FFT_PARTS,
    )


@dataclass
class ModelConfig:
    # the registry entry (noizenet.models.FAMILIES); checked when the spec is made, since the
    # registry imports torch and this module must not
    family: str = _f("flat", "model family", cli=False)
    cell: str = _f("lstm", "recurrent cell", flag="--model", choices=CELLS)
    hidden: int = _f(50, "hidden units per layer (paper: 50)", minimum=1, maximum=65536)
    layers: int = _f(1, "stacked recurrent layers", minimum=1, maximum=64)
    embedding: int = _f(
        32, "size of the input embedding of quantised values (mulaw, linear-q)", minimum=1
    )
    dropout: float = _f(
        0.5, "dropout on recurrent outputs and between layers (paper: 0.5)", minimum=0, maximum=0.99
    )
    # the samplernn family's own settings (noizenet.models.samplernn; checked there)
    frame_sizes: str = _f(
        "16", "samplernn: samples per frame of each tier, top first (16: 2-tier; 64,16: 3-tier)"
    )
    mlp_hidden: int = _f(128, "samplernn: width of the sample-level MLP", minimum=1, maximum=65536)
    weight_norm: bool = _f(False, "samplernn: weight normalisation of its linear maps")


@dataclass
class TrainConfig:
    epochs: int = _f(10, "passes over the training songs", minimum=1)
    loss: str = _f("mse", "training loss", choices=LOSSES)
    optimizer: str = _f("adam", "optimizer", choices=OPTIMIZERS)
    lr: float = _f(0.01, "learning rate (paper: 0.01)", minimum=0, exclusive_min=True)
    clip: float = _f(
        1.0, "gradient clipping threshold (paper: value 1)", minimum=0, exclusive_min=True
    )
    clip_mode: str = _f(
        "value",
        "clip each gradient element ('value', the paper), the global norm ('norm'), or not at all",
        choices=CLIP_MODES,
    )
    batch: int = _f(
        32,
        "parallel streams B walked side by side (1 with --chunk whole-song: the "
        "paper's one-batch mode)",
        minimum=1,
        maximum=65536,
    )
    # 32 x 256: the CPU throughput plateau (benchmarks/sweep_training.py): about 8 k samples per
    # step keep the step's activations in cache; 32 x 1024 trains 30% slower on 2 cores
    chunk: int | str = _f(256, "truncated-BPTT length L in samples, or 'whole-song'")
    stateless: bool = _f(
        False,
        "reset the hidden state before every chunk and shuffle chunks "
        "(the paper's short-window mode, figure 17)",
    )
    stride: int = _f(
        0,
        "samples between the starts of consecutive chunks of a song, the paper's 'step size' "
        "(0: the chunk length, chunks tile the song; less overlaps them, more skips samples)",
        minimum=0,
    )
    device: str = _f("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    threads: int = _f(0, "CPU threads for torch (0: torch's default)", minimum=0)
    precision: str = _f(
        "fp32",
        "arithmetic of the forward pass: fp32, or mixed precision with autocast in bf16 (CUDA "
        "from Ampere on, recent CPUs) or fp16 (CUDA; with a gradient scaler); weights, "
        "optimizer, loss and carried state stay fp32",
        choices=PRECISIONS,
    )
    compile: bool = _f(
        False,
        "torch.compile the model's training forward pass; off by default: the recurrent "
        "layer is already one fused kernel (cuDNN, oneDNN) that compiling leaves alone, and "
        "on CPU it measured no faster (README, 'Training on many GPUs')",
    )
    checkpoint_every: int = _f(
        100,
        "also checkpoint every N training steps within an epoch (0: only at epoch ends); "
        "a killed run resumes from its last checkpoint",
        minimum=0,
    )
    keep_checkpoints: int = _f(
        3, "how many of the latest checkpoints RUN/checkpoints keeps (plus the best)", minimum=1
    )
    nan_patience: int = _f(
        5,
        "non-finite steps in a row (each skipped) before rolling back to the last checkpoint "
        "with the learning rate halved",
        minimum=1,
    )
    max_rollbacks: int = _f(
        3,
        "rollbacks in a row, without reaching a new checkpoint, before training stops as diverged",
        minimum=0,
    )


@dataclass
class Config:
    seed: int = _f(
        0, "one seed fixes data split and order, initialisation, dropout and sampling", minimum=0
    )
    data: DataConfig = field(default_factory=DataConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # -- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, where: str = "config") -> Config:
        """Build and validate a config; unknown keys and bad values raise :class:`ConfigError`."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table of settings, got {type(raw).__name__}")
        cfg = cls()
        for key, value in raw.items():
            if key in _SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"{where}: [{key}] must be a table")
                section = getattr(cfg, key)
                for sub, subval in value.items():
                    _set(section, sub, subval, f"{where}: {key}.{_key(sub)}")
            else:
                _set(cfg, key, value, f"{where}: {_key(key)}")
        try:
            cfg.validate()
        except ConfigError as exc:
            if where == "config":
                raise
            raise ConfigError(f"{where}: {exc}") from None  # name the file it came from
        return cfg

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, *, where: str = "config") -> Config:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            reason = " ".join(str(exc).split())  # one line, whatever tomllib says
            raise ConfigError(f"{where}: not valid TOML ({reason})") from None
        return cls.from_dict(raw, where=where)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"{path}: cannot read config ({reason})") from None
        return cls.from_toml(text, where=str(path))

    def save(self, path: str | Path) -> None:
        from noizenet.io import atomic_write_text

        atomic_write_text(Path(path), self.to_toml())

    # -- validation --------------------------------------------------------------------------
    def validate(self) -> Config:
        """Check every field against its declared type, range and choices."""
        for section_name, section in [("", self)] + [(n, getattr(self, n)) for n in _SECTIONS]:
            for f in dataclasses.fields(section):
                if f.name in _SECTIONS:
                    continue
                name = f"{section_name}.{f.name}" if section_name else f.name
                _check(name, getattr(section, f.name), f)
        levels = self.codec.levels
        if levels & (levels - 1):
            raise ConfigError(f"codec.levels: must be a power of 2, got {levels}")
        if self.codec.block % 2:
            raise ConfigError(f"codec.block: must be even, got {self.codec.block}")
        if self.codec.scaling == "per-file" and self.codec.name not in ("zscore", "minmax"):
            raise ConfigError(
                f"codec.scaling: per-file scaling applies to zscore and minmax only, not "
                f"{self.codec.name!r} (quantised and FFT codecs normalise once over the corpus)"
            )
        chunk = self.train.chunk
        if self.train.stateless and chunk == WHOLE_SONG:
            raise ConfigError(
                "train.stateless needs a finite train.chunk (short windows), not 'whole-song'"
            )
        if self.train.stride and chunk == WHOLE_SONG:
            raise ConfigError(
                "train.stride needs a finite train.chunk: a whole-song chunk has no next chunk"
            )
        if not _DEVICE.fullmatch(self.train.device):
            raise ConfigError(
                f"train.device: unknown device {self.train.device!r} "
                "(use auto, cpu, cuda, cuda:N or mps)"
            )
        return self

    def with_overrides(self, overrides: dict[str, Any]) -> Config:
        """A copy with dotted-name overrides (``{"model.hidden": 64}``), validated."""
        raw = self.to_dict()
        for dotted, value in overrides.items():
            *sections, name = str(dotted).split(".")
            target = raw
            for p in sections:
                if not isinstance(target.get(p), dict):
                    raise ConfigError(f"{dotted}: unknown setting")
                target = target[p]
            target[name] = value
        return Config.from_dict(raw)


_SECTIONS = ("data", "codec", "model", "train")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def _set(obj: Any, name: str, value: Any, where: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if name not in fields:
        raise ConfigError(f"{where}: unknown setting (known: {', '.join(sorted(fields))})")
    if _is_list(fields[name]) and isinstance(value, str):
        value = split_list(value)  # "Instrumental,Classical" is a list written on one line
    setattr(obj, name, value)


def _finite(value: int | float) -> bool:
    """True for a number a float can hold (an int beyond float range is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _key(key: Any) -> str:
    """A setting's name as typed, or its short ``repr`` when it is not a plain name."""
    return key if isinstance(key, str) and key.isidentifier() else _short(key)


def _short(value: Any) -> str:
    """``repr`` cut to one short line, for error messages about arbitrary input."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _is_list(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and isinstance(f.default_factory(), list)


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: list settings accept one comma-separated string."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _check(name: str, value: Any, f: dataclasses.Field) -> None:
    meta = f.metadata
    default = f.default
    if _is_list(f):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: expected a list of strings, got {value!r}")
        choices = meta.get("choices")
        bad = [v for v in value if choices and v not in choices]
        if bad:
            raise ConfigError(
                f"{name}: unknown value {bad[0]!r} (choose from {', '.join(choices)})"
            )
        return
    if name == "train.chunk":
        if value == WHOLE_SONG:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ConfigError(
                f"train.chunk: expected an integer >= 2 or '{WHOLE_SONG}', got {_short(value)}"
            )
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {_short(value)}")
        return
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {_short(value)}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            raise ConfigError(f"{name}: expected a finite number, got {_short(value)}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {_short(value)}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(
            f"{name}: unknown value {_short(value)} (choose from {', '.join(choices)})"
        )
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None:
        bad = value <= lo if meta.get("exclusive_min") else value < lo
        if bad:
            op = ">" if meta.get("exclusive_min") else ">="
            raise ConfigError(f"{name}: must be {op} {lo}, got {_short(value)}")
    if hi is not None and value > hi:
        raise ConfigError(f"{name}: must be <= {hi}, got {_short(value)}")


@dataclass(frozen=True)
class FlagSpec:
    """One command-line flag generated from a config field."""

    dest: str  # dotted config name, e.g. "model.hidden"
    flag: str  # e.g. "--hidden"
    help: str
    default: Any
    choices: tuple | None
    kind: type


def flag_specs() -> list[FlagSpec]:
    """The ``noizenet train`` flags, one per config field, in declaration order."""
    specs: list[FlagSpec] = []
    cfg = Config()
    for section_name, section in [("", cfg)] + [(n, getattr(cfg, n)) for n in _SECTIONS]:
        for f in dataclasses.fields(section):
            if f.name in _SECTIONS or not f.metadata.get("cli", True):
                continue
            dest = f"{section_name}.{f.name}" if section_name else f.name
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            default = getattr(section, f.name)
            kind = str if dest == "train.chunk" else type(default)
            specs.append(
                FlagSpec(dest, flag, f.metadata["help"], default, f.metadata.get("choices"), kind)
            )
    return specs


def parse_chunk(text: str) -> int | str:
    """``--chunk`` accepts an integer or 'whole-song'."""
    if text == WHOLE_SONG:
        return WHOLE_SONG
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"train.chunk: expected an integer or '{WHOLE_SONG}', got {text!r}"
        ) from None
