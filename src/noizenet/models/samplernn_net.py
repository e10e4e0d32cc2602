"""SampleRNN's network in PyTorch (:mod:`noizenet.models.samplernn` describes the model): the
frame tiers, the sample-level MLP, training's forward pass and the one-step reference path.
Generation from saved weights runs the numba kernel on the weights' arrays instead, so this
module is imported only where a network is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from noizenet.models.base import Carry
from noizenet.models.flat_net import OutputDropout
from noizenet.models.samplernn_inputs import _padded, _prepare
from noizenet.sampling import Sampling, sample

if TYPE_CHECKING:
    from noizenet.models.samplernn import SampleRNNSpec


class _Tier(nn.Module):
    """One frame-level tier: input projection of its previous frame (+ conditioning from above),
    a recurrent stack, and the upsampling projection to ``ratio`` vectors of ``out_dim``."""

    def __init__(self, spec: SampleRNNSpec, frame: int, ratio: int, out_dim: int) -> None:
        super().__init__()
        rnn = nn.GRU if spec.cell == "gru" else nn.LSTM
        H, L = spec.hidden, spec.layers
        self.frame, self.ratio, self.out_dim = frame, ratio, out_dim
        self.inp = _linear(frame, H, spec.weight_norm)
        self.rnn = rnn(H, H, L, batch_first=True, dropout=spec.dropout if L > 1 else 0.0)
        self.drop = OutputDropout(spec.dropout)
        self.up = _linear(H, ratio * out_dim, spec.weight_norm)
        names = ("h0", "c0") if spec.cell == "lstm" else ("h0",)
        for name in names:  # the state a stream starts a song with: (layers, hidden)
            if spec.learn_init:
                self.register_parameter(name, nn.Parameter(torch.zeros(L, H)))
            else:
                self.register_buffer(name, torch.zeros(L, H))

    def step(self, frame: torch.Tensor, cond: torch.Tensor | None, hx: Any) -> tuple:
        """frame: (B, frames, F) scaled samples, cond: (B, frames, H) or None -> the
        conditioning (B, frames * ratio, out_dim) and the new state."""
        x = self.inp(frame)
        if cond is not None:
            x = x + cond
        out, hx = self.rnn(x, hx)  # (B, frames, hidden)
        up = self.up(self.drop(out))  # (B, frames, ratio * out_dim)
        return up.reshape(up.shape[0], -1, self.out_dim), hx


def _linear(n_in: int, n_out: int, norm: bool, bias: bool = True) -> nn.Module:
    layer = nn.Linear(n_in, n_out, bias=bias)
    if norm:
        layer = nn.utils.parametrizations.weight_norm(layer)
    return layer


class SampleRNN(nn.Module):
    """Frame tiers (top first) conditioning a sample-level MLP; see the module docstring."""

    def __init__(self, spec: SampleRNNSpec) -> None:
        super().__init__()
        self.spec = spec
        self.lookback = spec.lookback
        fs, H, M = spec.frame_sizes, spec.hidden, spec.mlp_hidden
        dims = [H] * (len(fs) - 1) + [M]
        self.tiers = nn.ModuleList(
            _Tier(spec, f, r, d) for f, r, d in zip(fs, spec.ratios(), dims, strict=True)
        )
        self.embed = nn.Embedding(spec.levels, spec.embedding)
        # the embeddings of the last F samples, flattened embedding-major (e * F + i), to the
        # first hidden layer: a convolution with kernel F over the embedded sequence, whose bias
        # is the bottom tier's upsampling bias
        self.mlp_in = _linear(fs[-1] * spec.embedding, M, spec.weight_norm, bias=False)
        self.mlp_hidden = _linear(M, M, spec.weight_norm)
        self.mlp_out = _linear(M, spec.levels, spec.weight_norm)

    # -- state ----------------------------------------------------------------------------------
    def init_state(self, batch: int, device: torch.device | str | None = None) -> dict:
        """Each tier's learned initial state, (layers, batch, hidden), differentiable."""
        state = {}
        for k, tier in enumerate(self.tiers):
            for part in ("h", "c") if self.spec.cell == "lstm" else ("h",):
                init = getattr(tier, f"{part}0")
                state[f"tier{k}_{part}"] = (
                    init.unsqueeze(1).expand(-1, batch, -1).contiguous().to(device or init.device)
                )
        return state

    def state_stream_dims(self) -> dict[str, int]:
        return {name: 1 for name in self.init_state(1)}

    def _hx(self, state: dict, k: int) -> Any:
        if self.spec.cell == "lstm":
            return state[f"tier{k}_h"], state[f"tier{k}_c"]
        return state[f"tier{k}_h"]

    def _put(self, state: dict, k: int, hx: Any) -> None:
        if self.spec.cell == "lstm":
            state[f"tier{k}_h"], state[f"tier{k}_c"] = hx
        else:
            state[f"tier{k}_h"] = hx

    def scale(self, q: torch.Tensor) -> torch.Tensor:
        """Class indices -> the frame tiers' input, about [-2, 2]."""
        return (q / (self.spec.levels / 2) - 1.0) * 2.0

    # -- the sample-level MLP -------------------------------------------------------------------
    def mlp(self, windows: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """windows: (..., embedding, F_last) embeddings of the samples before each target;
        cond: (..., mlp_hidden) -> logits (..., levels)."""
        a = torch.relu(self.mlp_in(windows.flatten(-2)) + cond)
        return self.mlp_out(torch.relu(self.mlp_hidden(a)))

    # -- training / teacher forcing -------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: dict | None = None) -> tuple[torch.Tensor, dict]:
        """x: (B, lookback + T, 1) class indices as floats -> logits (B, T, levels) (prediction
        t: the sample after input lookback + t) and the new state.

        Training chunks are whole top frames (``check_config``), so the next chunk continues
        the frame grid. A last, partial frame (the end of a track in validation) is predicted
        all the same; the state returned has then stepped into it, and a chunk continuing
        from it starts a new frame grid.
        """
        B, N = x.shape[0], x.shape[1]
        T = N - self.lookback
        if T <= 0:
            raise ValueError(f"x: expected more than the lookback of {self.lookback} samples")
        fs = self.spec.frame_sizes
        q = x[..., 0]
        state = dict(self.init_state(B, x.device) if state is None else state)
        scaled = self.scale(q)
        cond = None
        for k, tier in enumerate(self.tiers):
            F = fs[k]
            n = -(-T // F)  # frames, the last maybe partial
            start = fs[0] - F  # frame j's input: the F samples before prediction j * F's target
            frames = scaled[:, start : start + n * F].reshape(B, n, F)
            cond, hx = tier.step(frames, None if cond is None else cond[:, :n], self._hx(state, k))
            self._put(state, k, hx)
        F = fs[-1]
        # embedded once, then windowed: the F inputs up to each one, (B, T, embedding, F)
        windows = self.embed(q[:, fs[0] - F : N].long()).unfold(1, F, 1)
        return self.mlp(windows, cond[:, :T]), state

    # -- the slow, obviously correct generation path --------------------------------------------
    @torch.no_grad()
    def reference(
        self, forced: np.ndarray, n_free: int, sampling: Sampling, *, carry: Carry | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Prime on class indices ``forced`` (B, T), then sample ``n_free`` more, one sample at
        a time: each tier steps when a frame of its size starts, the MLP every sample.

        The seed is preceded by ``lookback`` samples of the middle level (silence), as a song
        start is in training, so that there is a prediction for every forced position: pred[:,
        t] is the expected value (``sampling.level_values``, temperature 1) of the sample after
        forced[:, t], and the first ``lookback`` of them see part of that padding. out: (B,
        n_free) sampled classes; out[:, 0] follows the last forced sample.

        A started ``carry`` continues a take: the tiers' states and latest outputs, the frame
        phase and the last ``lookback + 1`` samples travel in it.
        """
        self.eval()
        fs, lb = self.spec.frame_sizes, self.lookback
        started = carry is not None and carry.started
        if started:
            st = carry.state
            state, conds, phase = dict(st["state"]), list(st["conds"]), st["phase"]
            seq = np.concatenate([st["tail"], np.full((len(st["tail"]), n_free), 0)], axis=1)
            forced = seq[:, lb : lb + 1]
        forced, B, T, (t0, t1), uniforms, values = _prepare(self.spec, forced, n_free, sampling)
        span, offset = sampling.schedule_span(n_free), carry.steps if started else 0
        if not started:
            seq = _padded(self.spec, forced, n_free)
            state = self.init_state(B)
            conds = [torch.empty(0)] * len(fs)  # each tier's latest output, (B, ratio, dim)
            phase = 0
        pred = np.zeros((B, T), np.float32)
        out = np.zeros((B, n_free), np.int64)
        for t in range(T + n_free - 1 if n_free > 0 else T):
            p = t + lb + 1  # the sample being predicted, in seq
            tt = t + phase  # the step in the take: the frame grid
            for k, tier in enumerate(self.tiers):
                if tt % fs[k]:
                    continue
                frame = self.scale(torch.from_numpy(seq[:, p - fs[k] : p]).float())[:, None]
                above = conds[k - 1][:, (tt % fs[k - 1]) // fs[k]][:, None] if k else None
                conds[k], hx = tier.step(frame, above, self._hx(state, k))
                self._put(state, k, hx)
            window = self.embed(torch.from_numpy(seq[:, p - fs[-1] : p])).transpose(1, 2)
            logits = self.mlp(window, conds[-1][:, tt % fs[-1]]).double()  # (B, levels)
            if t < T:
                pred[:, t] = (torch.softmax(logits, -1).numpy() @ values).astype(np.float32)
            if n_free > 0 and t >= T - 1:
                j = t - (T - 1)
                frac = (offset + j) / (span - 1) if span > 1 else 0.0
                for b in range(B):
                    temp = t0[b] + (t1[b] - t0[b]) * frac
                    out[b, j] = sample(logits[b].numpy(), temp, sampling.top_p, uniforms[b, j])
                seq[:, p] = out[:, j]
        if carry is not None:
            tail = seq[:, seq.shape[1] - lb - 1 :].copy()
            phase += T - 1 + n_free
            carry.advance(out, {"state": state, "conds": conds, "phase": phase, "tail": tail})
        return pred, out
