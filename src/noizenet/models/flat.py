"""The ``flat`` family: input -> RNN | LSTM | GRU stack -> dropout -> head (paper section 4, 5.2).

Two heads: a regression head (the paper's: one value, or one FFT block vector, per step) and a
categorical head (``levels`` > 0: a softmax over quantised sample values, with an embedding of
the quantised input as SampleRNN found it matters).

This module is the family (:class:`noizenet.models.base.Family`): its spec, construction, and
the fast kernels of :mod:`noizenet.models.flat_kernels` behind the Kernel contract. It does not
import torch: the network (:mod:`noizenet.models.flat_net`) is imported where one is built, so
generating from saved weights starts without PyTorch's second of import. State is ``{"h"}``
(RNN, GRU) or ``{"h", "c"}`` (LSTM), each (layers, streams, hidden), so checkpoints hold
``state.h`` / ``state.c`` as they always did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from noizenet.models.base import Carry, check_shapes
from noizenet.sampling import Sampling

if TYPE_CHECKING:
    from noizenet.models.flat_net import NoizeNet

NAME = "flat"


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network around saved weights."""

    cell: str = "lstm"  # rnn (tanh) | lstm | gru
    hidden: int = 50  # units per recurrent layer
    layers: int = 1  # stacked recurrent layers
    dropout: float = 0.5  # on recurrent outputs, and between layers when layers > 1
    in_dim: int = 1  # model values per step going in (1: one raw sample)
    out_dim: int = 1  # values per step coming out (regression head)
    levels: int = 0  # > 0: categorical head over this many classes, embedded input
    embedding: int = 32  # size of the input embedding (categorical only)
    family: str = NAME  # the registry entry (last, so positional construction is unchanged)

    @property
    def categorical(self) -> bool:
        return self.levels > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Spec = ModelSpec


class FlatKernel:
    """The numba kernels (:mod:`noizenet.models.flat_kernels`) behind the Kernel contract."""

    def __init__(self, spec: ModelSpec, weights: dict[str, np.ndarray], path: str = "auto") -> None:
        from noizenet.models.flat_kernels import kernel_weights

        self.weights = kernel_weights(spec, weights)
        self.path = path

    def run(
        self, forced: np.ndarray, n_free: int, sampling: Sampling, *, carry: Carry | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The Kernel contract; a carry holds the recurrent state and the stall window."""
        from noizenet.models import flat_kernels

        started = carry is not None and carry.started
        inputs = forced if carry is None else carry.inputs(forced)
        saved = carry.state if started else {}
        offset = carry.steps if started else 0
        if self.weights.categorical:
            pred, out, hc = flat_kernels.run_categorical(
                self.weights,
                inputs,
                n_free,
                **sampling.categorical_args(np.atleast_2d(inputs).shape[0], n_free),
                state=saved.get("hc"),
                path=self.path,
                offset=offset,
                span=sampling.schedule_span(n_free),
            )
        else:
            injection = sampling.injection
            window = saved.get("window") or flat_kernels.injection_window(
                injection, np.shape(inputs)[0], self.weights.outputs
            )
            pred, out, hc = flat_kernels.run(
                self.weights,
                inputs,
                n_free,
                state=saved.get("hc"),
                injection=injection,
                noise=sampling.noise,
                path=self.path,
                offset=offset,
                window=window,
            )
            saved = {"window": window}
        if carry is not None:
            carry.advance(out, {**saved, "hc": hc})
        return pred, out


# -- the family --------------------------------------------------------------------------------
def spec_from_config(model: Any, *, codec: Any) -> ModelSpec:
    """The ``[model]`` section around the fitted codec: its values per step, and its levels
    when it quantises (then the head is categorical)."""
    return ModelSpec(
        cell=model.cell,
        hidden=model.hidden,
        layers=model.layers,
        dropout=model.dropout,
        in_dim=codec.dim,
        out_dim=codec.dim,
        levels=codec.levels if codec.kind == "categorical" else 0,
        embedding=model.embedding,
    )


def spec_from_dict(raw: dict[str, Any]) -> ModelSpec:
    """A spec saved with weights; files from before families have no ``family`` key."""
    known = {f.name for f in dataclasses.fields(ModelSpec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown flat model settings: {', '.join(unknown)}")
    return ModelSpec(**raw)


def check_config(config: Any) -> None:
    """The flat stack trains on any chunk, codec and batch the config allows."""


def build(spec: ModelSpec) -> NoizeNet:
    from noizenet.models.flat_net import NoizeNet

    return NoizeNet(spec)


def weight_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """The network's state-dict names and shapes for ``spec`` (torch's RNN layout)."""
    GH, H = {"rnn": 1, "lstm": 4, "gru": 3}[spec.cell] * spec.hidden, spec.hidden
    shapes: dict[str, tuple[int, ...]] = {}
    if spec.categorical:
        shapes["embed.weight"] = (spec.levels, spec.embedding)
    for k in range(spec.layers):
        first = spec.embedding if spec.categorical else spec.in_dim
        shapes[f"rnn.weight_ih_l{k}"] = (GH, first if k == 0 else H)
        shapes[f"rnn.weight_hh_l{k}"] = (GH, H)
        shapes[f"rnn.bias_ih_l{k}"] = shapes[f"rnn.bias_hh_l{k}"] = (GH,)
    outputs = spec.levels if spec.categorical else spec.out_dim
    return {**shapes, "head.weight": (outputs, H), "head.bias": (outputs,)}


def kernel(spec: ModelSpec, weights: dict[str, np.ndarray]) -> FlatKernel:
    """The numba kernels on ``weights`` (the network's state dict as arrays, checked against
    the spec: ValueError if they do not fit)."""
    check_shapes(weights, weight_shapes(spec))
    return FlatKernel(spec, weights)
