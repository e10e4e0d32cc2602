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

import tomli_w

from noizenet.errors import ConfigError
from noizenet.io import atomic_write_text

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
    val_source: str = _f(
        "",
        "validate on these files instead of songs held out of --data: a folder, a file or a "
        "glob pattern (e.g. 'music/*original*.opus'); they are left out of training; "
        "empty: hold out --val-songs of --data",
        flag="--val-data",
    )
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
    family: str = _f(
        "flat",
        "model family: flat (the paper's RNN/LSTM/GRU stack) or samplernn (frame-level tiers "
        "over a sample-level MLP; mulaw or linear-q codecs)",
        flag="--model",
    )
    cell: str = _f(
        "lstm",
        "recurrent cell: rnn (tanh), lstm or gru; samplernn's frame tiers: gru or lstm",
        choices=CELLS,
    )
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
    max_time: float = _f(
        0.0,
        "training time limit, SECONDS or [HH:]MM:SS (corpus decoding not counted): at the next "
        "step after it, save a checkpoint and the current weights and stop (run.json status "
        "'time-limit'); --resume continues with a fresh budget of this length (give "
        "--max-time again to change it, 0 for none); 0: no limit",
        minimum=0,
    )
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
        "on CPU it measured no faster (docs: guide/scale-out.md)",
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
    tensorboard: bool = _f(
        False,
        "also write live curves to RUN/tb/ for TensorBoard (pip install noizenet[tensorboard])",
    )
    sample_every: int = _f(
        0,
        "also make training takes (RUN/audio/, metrics.jsonl, the report's timeline) every N "
        "epochs; 0: only at the end of the run",
        minimum=0,
    )
    sample_seconds: float = _f(
        3.0,
        "seconds of each training take, generated from white noise and from a validation "
        "song after a 0.5 s seed; 0: no training takes at all",
        minimum=0,
    )


@dataclass(frozen=True)
class Preset:
    """A named group of settings (``--preset NAME``); flags given beside it win."""

    help: str  # one line for --help: what it is and why these values
    settings: dict[str, Any]  # dotted name -> value, applied over the defaults


# what both SampleRNN presets share (see their entries below)
_SAMPLERNN: dict[str, Any] = {
    "codec.name": "mulaw",
    "codec.levels": 256,
    "model.family": "samplernn",
    "model.cell": "gru",
    "model.hidden": 128,
    "model.layers": 1,
    "model.mlp_hidden": 64,
    "model.embedding": 16,
    "model.dropout": 0.0,
    "train.lr": 2e-3,
    "train.batch": 32,
    "train.chunk": 512,
}

#: ``--preset`` choices. Extend the table for a new family (one entry, nothing else to change).
PRESETS: dict[str, Preset] = {
    "paper": Preset("the paper's MSE LSTM, hidden 50 (section 5.5.3; the settings' defaults)", {}),
    # ../shared/samplernn-notes.md, measured on 2 CPU cores on held-out real music: this LSTM
    # (32 x 256 chunks, 118-125 k samples/s) reached 4.40 bits/sample after 4 minutes and 4.24
    # after 10 at lr 2e-3; no dropout there (a 256-way softmax does not settle on a constant)
    "mulaw": Preset(
        "the flat LSTM with a 256-level mu-law head: hidden 128, lr 2e-3, 32 x 256 chunks, "
        "no dropout (3.88 bits/sample on held-out real music after 10 minutes on one CPU "
        "thread: experiment run tiers)",
        {
            "codec.name": "mulaw",
            "codec.levels": 256,
            "model.cell": "lstm",
            "model.hidden": 128,
            "model.embedding": 32,
            "model.dropout": 0.0,
            "train.lr": 2e-3,
            "train.batch": 32,
            "train.chunk": 256,
        },
    ),
    # Sized for a CPU laptop by the floors (training >= 60 k samples/s on one thread,
    # generation >= 2x real time for one stream and >= 10x for 64): the sample-level MLP's width
    # sets the generation cost (its output layer alone is MLP x 256 per sample, and the frame
    # tier's upsampling hidden x 16 x MLP per frame). Measured on 1 thread, quiet machine:
    # frame GRU 256 + MLP 128: 75.9 k samples/s, 2.5x / 5.8x (below the 64-stream floor);
    # GRU 128 + MLP 64: 71.2 k, 12.6x / 13.7x. 90 s on 13 x 30 s of real music (2 CPU cores
    # shared, 3 original tracks held out): GRU 128 + MLP 64 5.34 bits/sample after 1.6 M
    # samples, GRU 256 + MLP 128 5.12 after 1.8 M, GRU 256 + MLP 64 5.65 after 1.3 M (the flat
    # mu-law LSTM 4.51 after 1.9 M): all still falling steeply; lr 2e-3 and 32 x 512 chunks
    # as in ../shared/samplernn-notes.md
    "samplernn": Preset(
        "2-tier SampleRNN: frame 16, frame GRU 128, MLP 64, embedding 16, mu-law 256, lr 2e-3, "
        "32 x 512 chunks (1 thread, quiet machine: 71 k samples/s training, 12.6x real time "
        "generating 1 stream, 13.7x 64 streams)",
        {**_SAMPLERNN, "model.frame_sizes": "16"},
    ),
    # the 2-tier preset under a 64-sample tier: the top GRU steps once per 64 samples and adds
    # context for few multiply-adds per sample (it upsamples to 4 vectors of the mid tier's
    # gates), yet measured 0.6-0.9x the 2-tier's generation speed: the kernel's per-tier
    # padding is the first suspect (not profiled). 90 s on the real corpus (as above): 5.50
    # bits/sample after 1.6 M samples (2-tier, same sizes: 5.34). Frame sizes 8,2 would run the
    # mid tier and its upsampling every 2 samples and were not tried
    "samplernn-3t": Preset(
        "3-tier SampleRNN: frames 64 and 16, GRU 128 per tier, MLP 64, embedding 16, mu-law 256, "
        "lr 2e-3, 32 x 512 chunks (1 thread on busy shared cores, alternating with the 2-tier "
        "preset: 40-47 k samples/s, 5.4-7.9x real time 1 stream, 7.9-8.3x 64 streams, against "
        "the 2-tier's 45-72 k, 8.1-10.9x, 9.2-14.9x)",
        {**_SAMPLERNN, "model.frame_sizes": "64,16"},
    ),
}


#: The preset ``noizenet train`` (and the studio, which runs it) applies when given neither
#: ``--preset`` nor ``--config``; "" is the field defaults above, which are the ``paper`` preset.
#: The library's ``Config()`` stays the paper's whatever this says. Changing the default preset
#: is this one line (tests that need the paper's model pass ``--preset paper`` or a config).
#: ``mulaw``, by ``experiment run tiers`` on the real corpus (13 tracks x 60 s, 3 held out, 600 s
#: each on 1 thread): held-out 3.88 bits/sample against 3.98 (2-tier) and 4.02 (3-tier), and the
#: lowest log-mel Frechet distance at temperature 1 (6,388 against 16,072 and 16,026); the
#: 3-tier's was lower at 0.9 (1,184 against 1,297). The SampleRNN pair trained beside a CI run.
DEFAULT_PRESET = "mulaw"


def _preset_help() -> str:
    names = "; ".join(f"{name}: {p.help}" for name, p in PRESETS.items())
    return (
        "a named group of settings, recorded in config.toml; flags given beside it win; "
        f"without --preset or --config, train uses {DEFAULT_PRESET or 'paper'} ({names})"
    )


@dataclass
class Config:
    preset: str = _f("", _preset_help(), choices=("", *PRESETS))
    seed: int = _f(
        0,
        "random seed: fixes data split and order, initialisation, dropout and sampling",
        flag="--random-seed",
        minimum=0,
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
        """A copy with dotted-name overrides (``{"model.hidden": 64}``), validated.

        ``"preset"`` among them applies that preset's settings first; the others win over it.
        """
        raw = self.to_dict()
        if "preset" in overrides:
            name = overrides["preset"]
            if name and name not in PRESETS:
                raise ConfigError(
                    f"preset: unknown preset {_short(name)} (choose from {', '.join(PRESETS)})"
                )
            overrides = {**(PRESETS[name].settings if name else {}), **overrides}
        for dotted, value in overrides.items():
            *sections, name = str(dotted).split(".")
            target = raw
            for p in sections:
                if not isinstance(target.get(p), dict):
                    raise ConfigError(f"{dotted}: unknown setting")
                target = target[p]
            target[name] = value
        return Config.from_dict(raw)


# -- generation -------------------------------------------------------------------------------
SEED_KINDS = ("song", "white", "perlin", "silence")
INJECTION_MODES = ("periodic", "stall")


@dataclass
class GenerationConfig:
    """How to generate from a run: the seed it is primed on, and how it runs free.

    The Python twin of the flags of ``noizenet generate`` and (where they apply) ``noizenet
    evaluate``; see :func:`generation_flag_specs`.
    """

    seed: str = _f(
        "perlin",
        "the audio the model is primed on (the paper's seed): song:PATH[@OFFSET_S], white, "
        "perlin or silence",
    )
    seconds: float = _f(
        10.0, "generated length in seconds (the seed not included)", minimum=0, exclusive_min=True
    )
    seed_seconds: float = _f(
        1.0, "seconds of seed the hidden state is primed on", minimum=0, exclusive_min=True
    )
    inject: str = _f(
        "none",
        "regression heads: noise injection, periodic:K (every K steps multiply the fed-back "
        "value by N(-1,1), the authors' code) or stall:M:EPS:SIGMA (when the last M outputs "
        "span < EPS, add N(0,SIGMA)), in model units; none: off",
    )
    temperature: str = _f(
        "1",
        "categorical heads: T, T0:T1 (linear over the take) or a comma list, one per "
        "variation; 0 is argmax",
    )
    top_p: float = _f(
        1.0,
        "categorical heads: sample only from the smallest set of classes holding this mass",
        minimum=0,
        maximum=1,
        exclusive_min=True,
    )
    variations: int = _f(
        1,
        "independent takes, generated side by side (noise seeds, injected noise and sampling "
        "differ per take; a song seed is shared)",
        minimum=1,
        maximum=65536,
    )
    random_seed: int = _f(0, "fixes noise seeds, injected noise and sampling", minimum=0)
    checkpoint: str = _f(
        "last",
        "the weights: last (the run's model.safetensors), best (lowest validation loss), "
        "epoch:N (after epoch N), or PATH (a weights or checkpoint file)",
    )

    def validate(self) -> GenerationConfig:
        """Check every field: types and ranges, the seed, the injection and the temperatures."""
        for f in dataclasses.fields(self):
            _check(f"generation.{f.name}", getattr(self, f.name), f)
        parse_seed(self.seed)
        parse_injection(self.inject)
        parse_temperature(self.temperature)
        parse_checkpoint(self.checkpoint)
        return self

    def with_overrides(self, overrides: dict[str, Any]) -> GenerationConfig:
        """A validated copy with fields replaced (Python values are accepted as the CLI's text:
        a number for ``temperature``, None or an Injection for ``inject``, a :class:`SeedSpec`
        for ``seed``)."""
        known = {f.name for f in dataclasses.fields(self)}
        values = {}
        for name, value in overrides.items():
            if name not in known:
                raise ConfigError(
                    f"generation.{_key(name)}: unknown setting (known: {', '.join(sorted(known))})"
                )
            if name == "temperature" and isinstance(value, int | float):
                value = str(value)
            elif name == "inject" and value is None:
                value = "none"
            elif name in ("seed", "inject") and hasattr(value, "text"):
                value = value.text  # a SeedSpec, an Injection
            values[name] = value
        return dataclasses.replace(self, **values).validate()


@dataclass(frozen=True)
class SeedSpec:
    """A parsed seed: what the model is primed on before it runs free (paper 5.1.4)."""

    kind: str  # song | white | perlin | silence
    path: Path | None = None  # song seeds only
    offset: float = 0.0  # seconds into the song

    @property
    def label(self) -> str:
        """Short name for file names: ``song-NAME``, ``white``, ..."""
        return f"song-{self.path.stem}" if self.kind == "song" and self.path else self.kind

    @property
    def text(self) -> str:
        """The seed as written on the command line (:func:`parse_seed` reads it back)."""
        return f"song:{self.path}@{self.offset!r}" if self.kind == "song" else self.kind


def parse_seed(text: str) -> SeedSpec:
    """Parse ``song:PATH[@OFFSET_S]``, ``white``, ``perlin`` or ``silence``."""
    if text in ("white", "perlin", "silence"):
        return SeedSpec(text)
    if text.startswith("song:"):
        body = text[len("song:") :]
        offset = 0.0
        if "@" in body:
            head, _, tail = body.rpartition("@")
            try:
                offset = float(tail)
                body = head
            except ValueError:
                pass  # an '@' that is part of the file name
        if not body:
            raise ConfigError("generation.seed: song: needs a path, e.g. song:unseen.mp3@30")
        if not offset >= 0 or not _finite(offset):
            raise ConfigError(f"generation.seed: {text!r}: offset must be a number >= 0 seconds")
        return SeedSpec("song", Path(body).expanduser(), offset)
    raise ConfigError(
        f"generation.seed: unknown seed {text!r} (use song:PATH[@OFFSET_S], white, perlin or "
        "silence)"
    )


def parse_injection(text: str | None) -> tuple[str, dict[str, Any]]:
    """``periodic:K`` or ``stall:M:EPS:SIGMA`` -> (mode, parameters); ``none`` or None ->
    ("none", {}). Plain text parsing, so that the CLI can check it without numba or numpy."""
    if text is None or text == "none":
        return "none", {}
    parts = str(text).split(":")
    try:
        if parts[0] == "periodic" and len(parts) == 2:
            k = int(parts[1])
            if k >= 1:
                return "periodic", {"period": k}
        elif parts[0] == "stall" and len(parts) == 4:
            m, eps, sigma = int(parts[1]), float(parts[2]), float(parts[3])
            if m >= 1 and eps >= 0 and sigma >= 0 and _finite(eps) and _finite(sigma):
                return "stall", {"window": m, "eps": eps, "sigma": sigma}
    except ValueError:
        pass
    raise ConfigError(
        f"generation.inject: {text!r}: expected none, periodic:K (K >= 1) or "
        "stall:M:EPS:SIGMA (M >= 1, EPS >= 0, SIGMA >= 0)"
    )


def parse_temperature(text: str | float) -> list[tuple[float, float]]:
    """Temperature schedules from ``T``, ``T0:T1`` (linear over the take) or a comma list of
    either, one per variation (cycled): a list of (start, end). Temperature 0 is argmax."""
    items = str(text).split(",")
    out = []
    for item in items:
        try:
            values = [float(p) for p in item.strip().split(":")]
        except ValueError:
            values = []
        if len(values) not in (1, 2) or any(not _finite(v) or v < 0 for v in values):
            raise ConfigError(
                f"generation.temperature: {text!r}: expected T, T0:T1 or a comma list of them "
                "(T >= 0)"
            )
        out.append((values[0], values[-1]))
    return out


@dataclass(frozen=True)
class CheckpointChoice:
    """A parsed ``checkpoint`` setting: which weights of a run generate."""

    kind: str  # last | best | epoch | path
    epoch: int = 0  # kind "epoch": the epoch whose weights (1 = after the first)
    path: Path | None = None  # kind "path"

    @property
    def tag(self) -> str | None:
        """The take name's checkpoint field (:class:`noizenet.run.TakeName`): None for last,
        ``best``, ``epoch3``, or a path's stem in lower-case letters and digits."""
        if self.kind == "last":
            return None
        if self.kind == "epoch":
            return f"epoch{self.epoch}"
        if self.kind == "best":
            return "best"
        return re.sub(r"[^a-z0-9]", "", Path(self.path).stem.lower()) or "file"

    @property
    def text(self) -> str:
        """As :func:`parse_checkpoint` reads it back."""
        if self.kind == "epoch":
            return f"epoch:{self.epoch}"
        return str(self.path) if self.kind == "path" else self.kind


def parse_checkpoint(text: str) -> CheckpointChoice:
    """``last``, ``best``, ``epoch:N`` (N >= 1) or a path (anything else; ``./best`` for a
    file named best). Plain text: whether the weights exist is the run's to say."""
    text = str(text).strip()
    if text in ("last", "best"):
        return CheckpointChoice(text)
    if text.startswith("epoch:"):
        tail = text[len("epoch:") :]
        if tail.isdigit() and int(tail) >= 1:
            return CheckpointChoice("epoch", epoch=int(tail))
        raise ConfigError(f"generation.checkpoint: {text!r}: expected epoch:N with N >= 1")
    if not text:
        raise ConfigError(
            "generation.checkpoint: empty; use last, best, epoch:N or the path of a weights file"
        )
    return CheckpointChoice("path", path=Path(text).expanduser())


#: Which generation settings each verb offers, and under which flag (``evaluate`` primes on
#: each held-out track, so it has no --seed and no --variations; its --seconds is the tracks').
GENERATION_FLAGS: dict[str, dict[str, str]] = {
    "generate": {
        "seed": "--seed",
        "seconds": "--seconds",
        "seed_seconds": "--seed-seconds",
        "inject": "--inject",
        "temperature": "--temperature",
        "top_p": "--top-p",
        "variations": "--variations",
        "random_seed": "--random-seed",
        "checkpoint": "--checkpoint",
    },
    "evaluate": {
        "seconds": "--gen-seconds",
        "seed_seconds": "--seed-seconds",
        "inject": "--inject",
        "temperature": "--temperature",
        "top_p": "--top-p",
        "random_seed": "--random-seed",
        "checkpoint": "--checkpoint",
    },
}


def generation_defaults(verb: str) -> GenerationConfig:
    """A verb's generation settings before flags: ``evaluate`` runs free for 5 s per track."""
    return GenerationConfig(seconds=5.0) if verb == "evaluate" else GenerationConfig()


def generation_flag_specs(verb: str) -> list[FlagSpec]:
    """The generation flags of ``verb`` (see :data:`GENERATION_FLAGS`), in declaration order."""
    flags = GENERATION_FLAGS[verb]
    cfg = generation_defaults(verb)
    return [
        FlagSpec(
            f"generation.{f.name}",
            flags[f.name],
            f.metadata["help"],
            getattr(cfg, f.name),
            f.metadata.get("choices"),
            type(getattr(cfg, f.name)),
        )
        for f in dataclasses.fields(cfg)
        if f.name in flags
    ]


_SECTIONS = ("data", "codec", "model", "train")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def _set(obj: Any, name: str, value: Any, where: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if name not in fields:
        raise ConfigError(f"{where}: unknown setting (known: {', '.join(sorted(fields))})")
    if _is_list(fields[name]) and isinstance(value, str):
        value = split_list(value)  # "Instrumental,Classical" is a list written on one line
    if name == "max_time" and isinstance(value, str):
        value = parse_duration(value)
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


def parse_duration(text: str) -> float:
    """``--max-time`` accepts seconds (``90``, ``1.5``) or ``MM:SS`` / ``HH:MM:SS``."""
    parts = text.strip().split(":")
    try:
        if len(parts) > 3 or any(not p.strip() for p in parts):
            raise ValueError
        values = [float(p) for p in parts]
        if any(not math.isfinite(v) or v < 0 for v in values) or any(v >= 60 for v in values[1:]):
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"train.max_time: expected seconds or [HH:]MM:SS, got {_short(text)}"
        ) from None
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    return seconds
