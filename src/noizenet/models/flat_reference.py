"""The slow, obviously correct generation path: PyTorch, one ``model.step`` per step.

It exists to test the fast kernels against (outputs must agree on the same weights and the same
random numbers) and as documentation of what the kernels compute.
"""

from __future__ import annotations

import numpy as np
import torch

from noizenet.models.base import Carry
from noizenet.sampling import INJECT_PERIODIC, INJECT_STALL, Injection, sample


@torch.no_grad()
def reference_run(
    model,
    forced: np.ndarray,
    n_free: int,
    *,
    injection: Injection | None = None,
    noise: np.ndarray | None = None,
    carry: Carry | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as :func:`noizenet.models.flat_kernels.run`; the state, the injection's
    phase and its stall window travel in ``carry`` (:class:`~noizenet.models.base.Carry`)."""
    injection = injection or Injection()
    model.eval()
    started = carry is not None and carry.started
    forced = np.asarray(forced if carry is None else carry.inputs(forced), dtype=np.float32)
    forced = forced[None] if forced.ndim == 1 else forced
    vector = forced.ndim == 3
    forced = forced if vector else forced[:, :, None]
    B, T, D = forced.shape
    noise = np.zeros((B, max(n_free, 1), D), np.float32) if noise is None else noise
    noise = noise if noise.ndim == 3 else noise[:, :, None]
    pred = np.zeros((B, T, D), np.float32)
    out = np.zeros((B, n_free, D), np.float32)
    state = carry.state["torch"] if started else model.init_state(B)
    offset = carry.steps if started else 0
    y = None
    for t in range(T):
        y, state = model.step(torch.from_numpy(np.ascontiguousarray(forced[:, t])), state)
        pred[:, t] = y.numpy()
    history: list[np.ndarray] = list(carry.state["history"]) if started else []
    for j in range(n_free):
        if j > 0:
            y, state = model.step(torch.from_numpy(np.ascontiguousarray(out[:, j - 1])), state)
        v = y.numpy().copy()
        if injection.mode == INJECT_PERIODIC and (offset + j + 1) % injection.period == 0:
            v = v * (noise[:, j] - 1.0)
        elif injection.mode == INJECT_STALL:
            history = [*history[1 - injection.window :], v.copy()]  # the window's last outputs
            if len(history) >= injection.window:
                recent = np.stack(history[-injection.window :])  # (M, B, D)
                span = (recent.max(0) - recent.min(0)).max(-1)  # (B,)
                stalled = (span < injection.eps)[:, None]
                v = np.where(stalled, v + injection.sigma * noise[:, j], v)
                history[-1] = v.copy()
        out[:, j] = v
    if not vector:
        pred, out = pred[:, :, 0], out[:, :, 0]
    if carry is not None:
        carry.advance(out, {"torch": state, "history": history})
    return pred, out


@torch.no_grad()
def reference_categorical(
    model,
    forced: np.ndarray,
    n_free: int,
    *,
    level_values: np.ndarray,
    temperature: tuple[np.ndarray, np.ndarray],
    top_p: float,
    uniforms: np.ndarray,
    span: int | None = None,
    carry: Carry | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as :func:`noizenet.models.flat_kernels.run_categorical`; the state and the
    schedule's position travel in ``carry``."""
    model.eval()
    started = carry is not None and carry.started
    forced = np.atleast_2d(forced if carry is None else carry.inputs(forced)).astype(np.int64)
    B, T = forced.shape
    t0, t1 = temperature
    span = n_free if span is None else span
    offset = carry.steps if started else 0
    pred = np.zeros((B, T), np.float32)
    out = np.zeros((B, n_free), np.int64)
    state = carry.state if started else model.init_state(B)
    logits = None
    for t in range(T):
        x = torch.from_numpy(forced[:, t : t + 1].astype(np.float32))
        logits, state = model.step(x, state)
        p = torch.softmax(logits.double(), -1).numpy()
        pred[:, t] = p @ np.asarray(level_values, np.float64)
    for j in range(n_free):
        if j > 0:
            x = torch.from_numpy(out[:, j - 1 : j].astype(np.float32))
            logits, state = model.step(x, state)
        frac = (offset + j) / (span - 1) if span > 1 else 0.0
        for b in range(B):
            temp = t0[b] + (t1[b] - t0[b]) * frac
            out[b, j] = sample(logits[b].numpy(), temp, top_p, uniforms[b, j])
    if carry is not None:
        carry.advance(out, state)
    return pred, out
