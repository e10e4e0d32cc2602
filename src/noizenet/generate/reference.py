"""The slow, obviously correct generation path: PyTorch, one ``model.step`` per sample.

It exists to test the fast kernels against (outputs must agree on the same weights and the same
random numbers) and as documentation of what the kernels compute.
"""

from __future__ import annotations

import numpy as np
import torch

from noizenet.generate.kernels import INJECT_PERIODIC, INJECT_STALL, Injection


@torch.no_grad()
def reference_run(
    model,
    forced: np.ndarray,
    n_free: int,
    *,
    injection: Injection | None = None,
    noise: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as :func:`noizenet.generate.kernels.run` (without state in or out)."""
    injection = injection or Injection()
    model.eval()
    forced = np.atleast_2d(np.asarray(forced, dtype=np.float32))
    B, T = forced.shape
    noise = np.zeros((B, max(n_free, 1)), np.float32) if noise is None else noise
    pred = np.zeros((B, T), np.float32)
    out = np.zeros((B, n_free), np.float32)
    state = model.init_state(B)
    y = None
    for t in range(T):
        y, state = model.step(torch.from_numpy(forced[:, t : t + 1]), state)
        pred[:, t] = y[:, 0].numpy()
    history: list[np.ndarray] = []
    for j in range(n_free):
        if j > 0:
            y, state = model.step(torch.from_numpy(out[:, j - 1 : j]), state)
        v = y[:, 0].numpy().copy()
        if injection.mode == INJECT_PERIODIC and (j + 1) % injection.period == 0:
            v = v * (noise[:, j] - 1.0)
        elif injection.mode == INJECT_STALL:
            history.append(v.copy())
            recent = np.stack(history[-injection.window :])
            if len(history) >= injection.window:
                stalled = recent.max(0) - recent.min(0) < injection.eps
                v = np.where(stalled, v + injection.sigma * noise[:, j], v)
                history[-1] = v.copy()
        out[:, j] = v
    return pred, out
