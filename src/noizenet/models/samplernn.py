"""SampleRNN (Mehri et al., ICLR 2017): frame-level recurrent tiers over a sample-level MLP.

A tier with frame size ``F`` steps once every ``F`` samples; its recurrent output is upsampled by
one learned linear projection per position to one conditioning vector per position of the tier
below (a frame of the next smaller size, or, for the bottom tier, a sample). The sample-level
MLP predicts each sample from the embeddings of the ``F_last`` samples before it plus that
conditioning vector, through two hidden ReLU layers, as a softmax over the codec's levels. So the
expensive recurrence runs once per frame and only a small MLP runs per sample.

Time convention (the same as the flat family's): prediction ``t`` of ``forward`` predicts the
sample that follows input ``lookback + t`` and sees only inputs up to it. A prediction of the
sample at frame offset ``p`` is conditioned on frame ``j`` of every tier, whose input is the
``F`` samples before the frame's first sample: never a sample inside the frame. Predicting the
first sample of a frame needs the ``F_top`` samples before it, so ``lookback = F_top - 1`` (the
flat stack's one input per prediction is counted in ``T``, as there).

Frames are aligned to the first prediction of a chunk (and, in generation, to the first sample
of the padded seed); the chunk length is a whole number of top frames, so consecutive chunks
continue one frame grid and the tiers' recurrent state carries across them (stateful truncated
BPTT over frames).

This module is the family: the spec and the family functions, without torch; the network is
:mod:`noizenet.models.samplernn_net`, the numba kernel :mod:`noizenet.models.samplernn_kernel`.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from noizenet.errors import ConfigError
from noizenet.models.base import check_shapes

if TYPE_CHECKING:
    from noizenet.models.samplernn_net import SampleRNN

NAME = "samplernn"
CELLS = ("gru", "lstm")
QUANTISED_CODECS = ("mulaw", "linear-q")


@dataclass(frozen=True)
class SampleRNNSpec:
    """Everything needed to rebuild a SampleRNN around saved weights."""

    family: ClassVar[str] = NAME
    # samples per frame of each tier, top first; each a multiple of the next. (16,) is 2-tier,
    # (64, 16) or (8, 2) 3-tier; the last is also how many past samples the MLP embeds
    frame_sizes: tuple[int, ...] = (16,)
    cell: str = "gru"  # gru | lstm, every frame tier
    hidden: int = 256  # units of every frame tier's recurrent layers
    layers: int = 1  # stacked recurrent layers per tier
    mlp_hidden: int = 128  # width of the sample-level MLP's two hidden ReLU layers
    embedding: int = 16  # size of each past sample's embedding in the MLP
    levels: int = 256  # classes of the softmax (the quantised codec's levels)
    dropout: float = 0.0  # on the tiers' recurrent outputs and between their layers
    weight_norm: bool = False  # weight normalisation of every linear map (not the RNNs)
    learn_init: bool = True  # learned initial state (else zeros) where a song starts

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame_sizes", tuple(int(f) for f in self.frame_sizes))
        check_frame_sizes(self.frame_sizes)
        if self.cell not in CELLS:
            raise ConfigError(f"cell: {self.cell!r} is not a frame-tier cell (choose gru or lstm)")
        for name in ("hidden", "layers", "mlp_hidden", "embedding"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.levels < 2:
            raise ConfigError(f"levels: samplernn needs a quantised codec (levels >= 2), got "
                              f"{self.levels}")  # fmt: skip
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must lie in [0, 1), got {self.dropout}")

    @property
    def categorical(self) -> bool:
        return True

    @property
    def lookback(self) -> int:
        return self.frame_sizes[0] - 1

    def ratios(self) -> list[int]:
        """Per tier, how many vectors its output is upsampled to (the next tier's frames per
        frame, or the bottom tier's samples per frame)."""
        fs = self.frame_sizes
        return [fs[k] // fs[k + 1] for k in range(len(fs) - 1)] + [fs[-1]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-native (frame sizes as a list), so a dict read back from run.json equals it."""
        return {"family": NAME, **asdict(self), "frame_sizes": list(self.frame_sizes)}


def check_frame_sizes(frame_sizes: tuple[int, ...]) -> None:
    """Refuse frame sizes that do not nest (each tier's frame a whole number of the next's)."""
    if not frame_sizes or any(f < 1 for f in frame_sizes):
        raise ConfigError(f"frame_sizes: expected one or more sizes >= 1, got {frame_sizes}")
    for big, small in itertools.pairwise(frame_sizes):
        if big % small or big == small:
            raise ConfigError(
                f"frame_sizes: each frame size must be a multiple of the next and larger, got "
                f"{big} before {small}"
            )


# -- the family functions --------------------------------------------------------------------------
_SPEC_FIELDS = ("cell", "hidden", "layers", "mlp_hidden", "embedding", "dropout", "weight_norm",
                "learn_init")  # fmt: skip


def _get(cfg: Any, name: str, default: Any) -> Any:
    if isinstance(cfg, dict):
        return cfg.get(name, default)
    return getattr(cfg, name, default)


def parse_frame_sizes(value: Any) -> tuple[int, ...]:
    """``"64,16"``, ``[64, 16]`` or ``16`` -> (64, 16), checked."""
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise ConfigError(
                f"frame_sizes: expected sizes like 16 or 64,16, got {value!r}"
            ) from None
    elif isinstance(value, int):
        value = [value]
    sizes = tuple(int(v) for v in value)
    check_frame_sizes(sizes)
    return sizes


def spec_from_config(model: Any, *, codec: Any) -> SampleRNNSpec:
    """The spec a run trains, from the ``[model]`` settings (an object or a dict; fields it
    lacks keep the spec's defaults) and the fitted quantised codec (its levels)."""
    levels = int(getattr(codec, "levels", 0) or 0)
    if levels < 2 or getattr(codec, "name", "mulaw") not in QUANTISED_CODECS:
        raise ConfigError("codec: samplernn needs a quantised codec (mulaw or linear-q)")
    default = SampleRNNSpec()
    kwargs = {name: _get(model, name, getattr(default, name)) for name in _SPEC_FIELDS}
    frames = parse_frame_sizes(_get(model, "frame_sizes", default.frame_sizes))
    return SampleRNNSpec(frame_sizes=frames, levels=levels, **kwargs)


def spec_from_dict(raw: dict[str, Any]) -> SampleRNNSpec:
    """The spec saved with a run's weights (:meth:`SampleRNNSpec.to_dict` read back)."""
    raw = dict(raw)
    family = raw.pop("family", NAME)
    if family != NAME:
        raise ConfigError(f"family: expected {NAME!r}, got {family!r}")
    known = set(_SPEC_FIELDS) | {"frame_sizes", "levels"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a samplernn setting")
    raw["frame_sizes"] = parse_frame_sizes(raw.get("frame_sizes", SampleRNNSpec.frame_sizes))
    return SampleRNNSpec(**raw)


def check_config(config: Any) -> None:
    """Refuse settings this family cannot train, naming the parameter: a non-quantised codec,
    a chunk (or stride) that is not a whole number of top frames, a cell other than gru/lstm."""
    codec = _get(config, "codec", None)
    name = _get(codec, "name", None)
    if name not in QUANTISED_CODECS:
        raise ConfigError(
            f"codec.name: samplernn predicts quantised levels, use mulaw or linear-q, not {name!r}"
        )
    model = _get(config, "model", None)
    frames = parse_frame_sizes(_get(model, "frame_sizes", SampleRNNSpec.frame_sizes))
    cell = _get(model, "cell", SampleRNNSpec.cell)
    if cell not in CELLS:
        raise ConfigError(f"model.cell: samplernn's frame tiers are gru or lstm, not {cell!r}")
    train = _get(config, "train", None)
    chunk = _get(train, "chunk", 1024)
    if not isinstance(chunk, int) or chunk % frames[0]:
        raise ConfigError(
            f"train.chunk: samplernn needs a whole number of top frames ({frames[0]} samples), "
            f"got {chunk!r}"
        )
    stride = _get(train, "stride", 0) or 0
    if stride % frames[0]:
        raise ConfigError(
            f"train.stride: samplernn needs a whole number of top frames ({frames[0]} samples), "
            f"got {stride}"
        )


def build(spec: SampleRNNSpec) -> SampleRNN:
    from noizenet.models.samplernn_net import SampleRNN

    return SampleRNN(spec)


def weight_shapes(spec: SampleRNNSpec) -> dict[str, tuple[int, ...]]:
    """The network's state-dict names and shapes for ``spec`` (weight-normalised linear maps
    hold torch's parametrisation: a gain per output row and the direction)."""
    H, L, M = spec.hidden, spec.layers, spec.mlp_hidden
    GH = (4 if spec.cell == "lstm" else 3) * H
    shapes: dict[str, tuple[int, ...]] = {}

    def linear(name: str, n_out: int, n_in: int, bias: bool = True) -> None:
        if spec.weight_norm:
            shapes[f"{name}.parametrizations.weight.original0"] = (n_out, 1)
            shapes[f"{name}.parametrizations.weight.original1"] = (n_out, n_in)
        else:
            shapes[f"{name}.weight"] = (n_out, n_in)
        if bias:
            shapes[f"{name}.bias"] = (n_out,)

    dims = [H] * (len(spec.frame_sizes) - 1) + [M]
    for k, (frame, ratio) in enumerate(zip(spec.frame_sizes, spec.ratios(), strict=True)):
        linear(f"tiers.{k}.inp", H, frame)
        for j in range(L):
            shapes[f"tiers.{k}.rnn.weight_ih_l{j}"] = shapes[f"tiers.{k}.rnn.weight_hh_l{j}"] = (
                GH,
                H,
            )
            shapes[f"tiers.{k}.rnn.bias_ih_l{j}"] = shapes[f"tiers.{k}.rnn.bias_hh_l{j}"] = (GH,)
        linear(f"tiers.{k}.up", ratio * dims[k], H)
        for name in ("h0", "c0") if spec.cell == "lstm" else ("h0",):
            shapes[f"tiers.{k}.{name}"] = (L, H)
    shapes["embed.weight"] = (spec.levels, spec.embedding)
    linear("mlp_in", M, spec.frame_sizes[-1] * spec.embedding, bias=False)
    linear("mlp_hidden", M, M)
    linear("mlp_out", spec.levels, M)
    return shapes


def kernel(spec: SampleRNNSpec, weights: dict[str, np.ndarray]) -> Any:
    """The numba generation path on ``weights`` (the network's state dict as arrays, checked
    against the spec: ValueError if they do not fit)."""
    check_shapes(weights, weight_shapes(spec))
    from noizenet.models.samplernn_kernel import SampleRNNKernel

    return SampleRNNKernel(spec, weights)
