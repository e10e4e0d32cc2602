"""The family interface: what every model family provides.

A family is one module in ``noizenet/models/`` and one line in the registry
(:data:`noizenet.models.FAMILIES`). Training, checkpoints, DDP, generation, reproduction,
evaluation, bench and reports reach a model only through what is written here, so a new family
needs nothing outside its own module and that line.

Conventions shared by every family:

- **Values.** A model reads and predicts *model values* made by the run's codec: one float per
  sample (raw, min-max), a vector per step (FFT blocks), or, for a categorical head
  (``spec.levels > 0``), class indices in ``[0, levels)`` carried as floats in a trailing axis
  of size 1. Inputs and outputs are batch-first: ``(streams, time, dim)``.
- **Lookback.** ``model.lookback`` is how many input samples a chunk needs *before* its first
  target (the flat stack: 0; a frame-level model: the samples of its top frame). Training feeds
  ``x`` of ``lookback + T`` samples and scores ``T`` predictions; generation primes on a seed at
  least that long.
- **State.** A model's carried state is a ``dict[str, Tensor]`` of named tensors, whatever their
  shapes; ``model.state_stream_dims()`` says, per name, which axis holds the streams, so that
  resetting chosen streams, gathering them from DDP ranks and saving them in a checkpoint
  (``state.<name>``) need not know the family.
- **Generation.** ``family.kernel(spec, weights)`` returns the fast path on a network's
  weights (its state dict as numpy arrays, so that generating from a file needs no torch) or
  None; ``model.reference``
  is the slow, obviously correct PyTorch path (one step at a time) that the kernel is tested
  against and that generation falls back to. Both take the same :class:`~noizenet.sampling.Sampling`
  (random draws made by the caller) and return the same thing.
- **Continuation.** Both also take ``carry=``, a :class:`Carry`, so that a take can be
  generated in blocks (long takes stream to disk): the first call primes on ``forced`` and
  runs its ``n_free`` steps; every later call with the same carry ignores ``forced`` and runs
  ``n_free`` more, exactly as one longer call would (same draws, same samples). The carry
  holds the last output (the next block's first input: for a categorical head the last
  sampled class), the free steps done (the injection's phase, the temperature schedule's
  position over ``sampling.span``) and the family's own state, whatever it needs: hidden
  state, a stall window, a frame phase, the samples a frame reads. Draws in ``sampling`` are
  this call's (``(streams, n_free)``).

Added with the first implementation (H1):

- **Registry** (:mod:`noizenet.models`): ``FAMILIES``, ``register(module)``, ``family_of``,
  ``build(spec)``, ``spec_from_dict`` (no ``family`` key: flat, so old files load) and
  ``spec_from_config``; the config's ``model.family`` (default ``flat``) picks the family.
  ``spec.categorical`` is the one place that says whether a head is categorical.
- **Generic state operations** (:mod:`noizenet.models.state`): detach, reset chosen streams,
  finite, fp32; and **losses over whole tracks** honouring ``lookback``
  (:mod:`noizenet.models.loss`). Before a song starts, the lookback samples are silence:
  ``pad_value(spec)`` (0, or the middle level of a categorical head).
- A model's ``forward(x, None)`` starts from its ``init_state``; ``reference`` primes from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from noizenet.sampling import Sampling

if TYPE_CHECKING:
    import torch

State = dict[str, Any]  # named state tensors; stream axis per state_stream_dims()


@dataclass
class Carry:
    """Where a take generated in blocks stands, updated in place by each call given it.

    ``state`` belongs to the family that wrote it (no one else reads it).
    """

    steps: int = 0  # free steps generated so far
    last: np.ndarray | None = None  # (streams[, dim]) the last output: the next block's input
    state: Any = None

    @property
    def started(self) -> bool:
        return self.last is not None

    def inputs(self, forced: np.ndarray) -> np.ndarray:
        """What a call primes on: the seed at the start, then the last output (one step)."""
        return forced if self.last is None else self.last[:, None]

    def advance(self, out: np.ndarray, state: Any) -> None:
        """After a call that ran ``out.shape[1]`` free steps ending in ``state``."""
        if out.shape[1]:
            self.last = np.array(out[:, -1], copy=True)
            self.steps += out.shape[1]
        self.state = state


class Spec(Protocol):
    """Everything needed to rebuild a family's network around saved weights (a frozen
    dataclass). Stored as JSON with the weights; ``family`` names the registry entry."""

    family: str
    levels: int  # > 0: categorical head over this many classes; 0: regression head

    @property
    def categorical(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


class Model(Protocol):
    """A family's ``torch.nn.Module``."""

    spec: Spec
    lookback: int  # input samples a chunk needs before its first target

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        """The state a stream starts a song with (zeros, or a learned initial state)."""
        ...

    def state_stream_dims(self) -> dict[str, int]:
        """Per state tensor name, the axis that holds the streams."""
        ...

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (streams, lookback + T, in_dim) -> (y: (streams, T, out_dim or levels), state)."""
        ...

    def reference(
        self, forced: np.ndarray, n_free: int, sampling: Sampling, *, carry: Carry | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Prime on ``forced`` (streams, T[, dim]), then run ``n_free`` steps free, one
        ``step`` at a time in PyTorch. Returns (one-step predictions of the forced part:
        values, or the expected value for categorical heads; free-running output: values, or
        sampled class indices). With a started ``carry``, continue the take it holds instead
        (``forced`` unused; the predictions returned are then of no use)."""
        ...


class Kernel(Protocol):
    """A family's fast generation path (numba, or anything that beats the reference)."""

    def run(
        self, forced: np.ndarray, n_free: int, sampling: Sampling, *, carry: Carry | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Same contract as :meth:`Model.reference`; agrees with it on the same draws."""
        ...


class Family(Protocol):
    """One model family: a module with these names."""

    NAME: str

    def spec_from_config(self, model: Any, *, codec: Any) -> Spec:
        """The spec a run trains, from the ``[model]`` config section and the fitted codec."""
        ...

    def spec_from_dict(self, raw: dict[str, Any]) -> Spec:
        """The spec saved with a run's weights (``to_dict`` read back)."""
        ...

    def check_config(self, config: Any) -> None:
        """Refuse, with :class:`~noizenet.errors.ConfigError` naming the parameter, settings
        this family cannot train (for example a chunk that is not a whole number of frames)."""
        ...

    def build(self, spec: Spec) -> Model: ...

    def kernel(self, spec: Spec, weights: dict[str, np.ndarray]) -> Kernel | None:
        """The fast path on ``weights`` (the network's ``state_dict()`` names, as numpy
        arrays), or None: generation then builds the network and runs its reference path. A
        family module should not import torch at its top, so that a take from saved weights
        starts without it."""
        ...


def check_shapes(weights: dict[str, Any], expected: dict[str, tuple[int, ...]]) -> None:
    """Refuse ``weights`` whose names or shapes are not ``expected`` (a family's kernel reads
    arrays without bounds checks, so a file whose tensors do not fit its spec must stop here).
    Raises ValueError naming the first tensor that is missing, unexpected or of another shape."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise ValueError(f"{what} in the weights")
    for name, shape in expected.items():
        if tuple(np.shape(weights[name])) != tuple(shape):
            raise ValueError(
                f"{name!r} has shape {tuple(np.shape(weights[name]))}, the spec needs {shape}"
            )
