"""The flat family's network in PyTorch: the recurrent stack, its dropout and head (training,
teacher forcing and the one-step reference path). Generation from saved weights does not need
it (:mod:`noizenet.models.flat` runs the numba kernels on the weights' arrays), so it is
imported only where a network is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from noizenet.models.base import Carry, State
from noizenet.sampling import Sampling

if TYPE_CHECKING:
    from noizenet.models.flat import ModelSpec

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class NoizeNet(nn.Module):
    """A recurrent stack over audio samples with a linear head.

    ``forward`` runs a whole chunk (training, priming, teacher-forced reproduction); ``step``
    advances one sample (the slow, obviously correct generation path that the fast kernels in
    :mod:`noizenet.models.flat_kernels` are tested against). Moving it to a GPU (``.to``)
    flattens the recurrent weights into one block (PyTorch's RNN modules do it in ``_apply``),
    cuDNN's fast path, so callers need not reach inside.
    """

    lookback = 0  # a chunk needs no samples before its first target

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
        return {"h": h, "c": h.clone()} if self.spec.cell == "lstm" else {"h": h}

    def state_stream_dims(self) -> dict[str, int]:
        return {"h": 1, "c": 1} if self.spec.cell == "lstm" else {"h": 1}

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (batch, time, in_dim) -> y: (batch, time, out_dim), final state.

        Categorical: x holds class indices (batch, time, 1) and y the logits (batch, time, levels).
        """
        if self.embed is not None:
            x = self.embed(x[..., 0].long())  # (batch, time, embedding)
        carried = None
        if state is not None:
            carried = (state["h"], state["c"]) if "c" in state else state["h"]
        out, final = self.rnn(x, carried)  # (batch, time, hidden)
        new = {"h": final[0], "c": final[1]} if isinstance(final, tuple) else {"h": final}
        return self.head(self.drop(out)), new

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (batch, in_dim) -> y: (batch, out_dim), next state: one sample at a time."""
        y, state = self.forward(x.unsqueeze(1), state)
        return y.squeeze(1), state

    def reference(
        self, forced: np.ndarray, n_free: int, sampling: Sampling, *, carry: Carry | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The one-step PyTorch path (:mod:`noizenet.models.flat_reference`)."""
        from noizenet.models import flat_reference

        if self.spec.categorical:
            inputs = forced if carry is None else carry.inputs(forced)
            return flat_reference.reference_categorical(
                self,
                forced,
                n_free,
                **sampling.categorical_args(np.atleast_2d(inputs).shape[0], n_free),
                span=sampling.schedule_span(n_free),
                carry=carry,
            )
        return flat_reference.reference_run(
            self, forced, n_free, injection=sampling.injection, noise=sampling.noise, carry=carry
        )


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
