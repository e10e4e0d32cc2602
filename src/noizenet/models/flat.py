"""NoizeNet: input -> RNN | LSTM | GRU stack -> dropout -> head (paper section 4, 5.2).

Two heads: a regression head (the paper's: one value, or one FFT block vector, per step) and a
categorical head (``levels`` > 0: a softmax over quantised sample values, with an embedding of
the quantised input as SampleRNN found it matters).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # h, or (h, c) for the LSTM

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


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

    @property
    def categorical(self) -> bool:
        return self.levels > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class NoizeNet(nn.Module):
    """A recurrent stack over audio samples with a linear head.

    ``forward`` runs a whole chunk (training, priming, teacher-forced reproduction); ``step``
    advances one sample (the slow, obviously correct generation path that the fast kernels in
    :mod:`noizenet.models.flat_kernels` are tested against).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        if spec.cell not in _CELLS:
            raise ValueError(f"unknown cell {spec.cell!r} (choose from {', '.join(_CELLS)})")
        self.spec = spec
        kwargs: dict[str, Any] = {"nonlinearity": "tanh"} if spec.cell == "rnn" else {}
        self.embed = nn.Embedding(spec.levels, spec.embedding) if spec.categorical else None
        self.rnn = _CELLS[spec.cell](
            spec.embedding if spec.categorical else spec.in_dim,
            spec.hidden,
            spec.layers,
            batch_first=True,
            dropout=spec.dropout if spec.layers > 1 else 0.0,
            **kwargs,
        )
        self.drop = OutputDropout(spec.dropout)
        self.head = nn.Linear(spec.hidden, spec.levels if spec.categorical else spec.out_dim)

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        """Zero hidden state for ``batch`` streams: (layers, batch, hidden)."""
        h = torch.zeros(self.spec.layers, batch, self.spec.hidden, device=device)
        return (h, h.clone()) if self.spec.cell == "lstm" else h

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (batch, time, in_dim) -> y: (batch, time, out_dim), final state.

        Categorical: x holds class indices (batch, time, 1) and y the logits (batch, time, levels).
        """
        if self.embed is not None:
            x = self.embed(x[..., 0].long())  # (batch, time, embedding)
        out, state = self.rnn(x, state)  # (batch, time, hidden)
        return self.head(self.drop(out)), state

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (batch, in_dim) -> y: (batch, out_dim), next state: one sample at a time."""
        y, state = self.forward(x.unsqueeze(1), state)
        return y.squeeze(1), state


class OutputDropout(nn.Dropout):
    """Dropout that draws its CPU mask from raw random bits.

    PyTorch's CPU dropout draws with ``bernoulli_``, 3x slower than ``torch.rand`` and a
    threshold, which is itself 2-3x slower than filling int64 words with random bits and reading
    each as four 16-bit draws: at hidden 50 ``bernoulli_`` was 28% of a training step, and the
    bits make training 5-10% faster than ``rand``. A unit is kept with probability k / 65536
    (k = round((1 - p) * 65536), within 8e-6 of 1 - p) and scaled by 65536 / k, so the expected
    output is exactly the input. Same generator; CUDA and other devices keep the fused kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        if self.p == 1:
            return x * 0
        k = round((1.0 - self.p) * 65536)
        if not 0 < k < 65536:  # p within 8e-6 of 0 or 1: 16 bits cannot tell, draw floats
            keep = torch.rand(x.shape, device=x.device) >= self.p  # float32 even under autocast
            return x * keep * (1.0 / (1.0 - self.p))
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
        words.random_(-(2**63), None)  # every bit uniform (the default range leaves the sign 0)
        draws = words.view(torch.int16)[:n].view(x.shape)  # uniform over -32768..32767
        return x * (draws < k - 32768) * (65536.0 / k)


def detach_state(state: State) -> State:
    """Cut the graph between chunks (truncated BPTT) but keep the values."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)  # type: ignore[return-value]
    return state.detach()


def reset_streams(state: State, reset: torch.Tensor) -> State:
    """Zero the state of streams where ``reset`` (batch,) is true: a new song starts there."""
    keep = (~reset).to(dtype=torch.float32).view(1, -1, 1)
    if isinstance(state, tuple):
        return tuple(s * keep.to(s.dtype) for s in state)  # type: ignore[return-value]
    return state * keep.to(state.dtype)
