"""Per-sample inference kernels (numba): priming, teacher-forced prediction and free running.

Generation feeds every output back as the next input, so it is a loop of one-sample steps. In
PyTorch each step costs tens of microseconds of framework overhead, far more than its arithmetic
at hidden 50; here the whole loop, noise injection included, is one compiled function. It is
tested against :meth:`noizenet.models.NoizeNet.step` on the same weights (see tests).

Weight layout follows PyTorch's: gates stacked along rows, LSTM (i, f, g, o), GRU (r, z, n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

CELL_CODES = {"rnn": 0, "lstm": 1, "gru": 2}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}

INJECT_NONE = 0
INJECT_PERIODIC = 1  # every K steps the fed-back value is multiplied by a draw from N(-1, 1)
INJECT_STALL = 2  # when the last M outputs span less than EPS, add N(0, SIGMA) noise


@dataclass
class KernelWeights:
    """A model's weights as contiguous float32 arrays, in the layout the kernels read."""

    cell: int  # CELL_CODES value
    w_ih0: np.ndarray  # (G*H, in_dim) first layer input weights
    w_ih: np.ndarray  # (max(layers-1, 1), G*H, H) input weights of layers 1..
    w_hh: np.ndarray  # (layers, G*H, H)
    b_ih: np.ndarray  # (layers, G*H)
    b_hh: np.ndarray  # (layers, G*H)
    head_w: np.ndarray  # (out_dim, H)
    head_b: np.ndarray  # (out_dim,)

    @property
    def layers(self) -> int:
        return self.w_hh.shape[0]

    @property
    def hidden(self) -> int:
        return self.w_hh.shape[2]


def kernel_weights(model) -> KernelWeights:
    """Extract weights from a :class:`~noizenet.models.NoizeNet`."""
    spec = model.spec
    sd = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    L, H = spec.layers, spec.hidden
    G = GATES[spec.cell]

    def f32(a):
        return np.ascontiguousarray(a, dtype=np.float32)

    w_ih = [sd[f"rnn.weight_ih_l{k}"] for k in range(1, L)] or [np.zeros((G * H, H))]
    return KernelWeights(
        cell=CELL_CODES[spec.cell],
        w_ih0=f32(sd["rnn.weight_ih_l0"]),
        w_ih=f32(np.stack(w_ih)),
        w_hh=f32(np.stack([sd[f"rnn.weight_hh_l{k}"] for k in range(L)])),
        b_ih=f32(np.stack([sd[f"rnn.bias_ih_l{k}"] for k in range(L)])),
        b_hh=f32(np.stack([sd[f"rnn.bias_hh_l{k}"] for k in range(L)])),
        head_w=f32(sd["head.weight"]),
        head_b=f32(sd["head.bias"]),
    )


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _sigmoid(x):
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-x))


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _layer(cell, w_ih, w_hh, b_ih, b_hh, x, h, c, gi, gh):
    """One layer, one sample: updates h (H,) and c (H,) in place from input x."""
    GH, n_in = w_ih.shape
    H = h.shape[0]
    for r in range(GH):
        acc = b_ih[r]
        for k in range(n_in):
            acc += w_ih[r, k] * x[k]
        gi[r] = acc
        acc = b_hh[r]
        for k in range(H):
            acc += w_hh[r, k] * h[k]
        gh[r] = acc
    if cell == 0:  # vanilla RNN, tanh
        for j in range(H):
            h[j] = np.tanh(gi[j] + gh[j])
    elif cell == 1:  # LSTM: i, f, g, o
        for j in range(H):
            i = _sigmoid(gi[j] + gh[j])
            f = _sigmoid(gi[H + j] + gh[H + j])
            g = np.tanh(gi[2 * H + j] + gh[2 * H + j])
            o = _sigmoid(gi[3 * H + j] + gh[3 * H + j])
            c[j] = f * c[j] + i * g
            h[j] = o * np.tanh(c[j])
    else:  # GRU: r, z, n
        for j in range(H):
            r = _sigmoid(gi[j] + gh[j])
            z = _sigmoid(gi[H + j] + gh[H + j])
            n = np.tanh(gi[2 * H + j] + r * gh[2 * H + j])
            h[j] = (np.float32(1.0) - z) * n + z * h[j]


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _run(
    cell,
    w_ih0,
    w_ih,
    w_hh,
    b_ih,
    b_hh,
    head_w,
    head_b,
    h,
    c,
    forced,
    n_free,
    inject_mode,
    period,
    window,
    eps,
    sigma,
    noise,
    pred,
    out,
):
    """Teacher-force ``forced`` then run free for ``n_free`` samples, per stream.

    h, c: (layers, B, H) state, updated in place. forced: (B, T) inputs, T >= 1.
    pred: (B, T) one-step predictions for the forced inputs. out: (B, n_free) free-running
    output; out[:, 0] is the prediction after the last forced input. noise: (B, n_free) standard
    normal draws used by injection (so every path consumes the same random numbers).
    """
    L, B, H = h.shape
    T = forced.shape[1]
    GH = w_hh.shape[1]
    gi = np.empty(GH, dtype=np.float32)
    gh = np.empty(GH, dtype=np.float32)
    x = np.empty(1, dtype=np.float32)
    ring = np.empty(max(window, 1), dtype=np.float32)
    for b in range(B):
        hb = np.ascontiguousarray(h[:, b, :])
        cb = np.ascontiguousarray(c[:, b, :])
        feed = forced[b, 0]
        filled = 0
        steps = T + n_free - 1 if n_free > 0 else T
        for t in range(steps):
            x[0] = forced[b, t] if t < T else feed
            _layer(cell, w_ih0, w_hh[0], b_ih[0], b_hh[0], x, hb[0], cb[0], gi, gh)
            for layer in range(1, L):
                _layer(
                    cell,
                    w_ih[layer - 1],
                    w_hh[layer],
                    b_ih[layer],
                    b_hh[layer],
                    hb[layer - 1],
                    hb[layer],
                    cb[layer],
                    gi,
                    gh,
                )
            y = head_b[0]
            top = hb[L - 1]
            for k in range(H):
                y += head_w[0, k] * top[k]
            if t < T:
                pred[b, t] = y
            if n_free > 0 and t >= T - 1:
                j = t - (T - 1)
                v = y
                if inject_mode == 1:
                    if (j + 1) % period == 0:
                        v = y * (noise[b, j] - np.float32(1.0))
                elif inject_mode == 2:
                    ring[j % window] = y
                    filled = min(filled + 1, window)
                    if filled == window:
                        lo = ring[0]
                        hi = ring[0]
                        for k in range(1, window):
                            lo = min(lo, ring[k])
                            hi = max(hi, ring[k])
                        if hi - lo < eps:
                            v = y + sigma * noise[b, j]
                            ring[j % window] = v
                out[b, j] = v
                feed = v
        h[:, b, :] = hb
        c[:, b, :] = cb


@dataclass(frozen=True)
class Injection:
    """Artificial noise in the feedback loop (paper 5.7), in model units."""

    mode: int = INJECT_NONE
    period: int = 200  # periodic: every K steps
    window: int = 1  # stall: last M outputs
    eps: float = 0.0  # stall: span below which outputs count as stalled
    sigma: float = 0.0  # stall: noise std

    @staticmethod
    def parse(text: str | None) -> Injection:
        """``periodic:K`` or ``stall:M:EPS:SIGMA`` (None or 'none': no injection)."""
        from noizenet.errors import NoizeNetError

        if text is None or text == "none":
            return Injection()
        parts = text.split(":")
        try:
            if parts[0] == "periodic" and len(parts) == 2:
                k = int(parts[1])
                if k >= 1:
                    return Injection(INJECT_PERIODIC, period=k)
            elif parts[0] == "stall" and len(parts) == 4:
                m, eps, sigma = int(parts[1]), float(parts[2]), float(parts[3])
                if m >= 1 and eps >= 0 and sigma >= 0:
                    return Injection(INJECT_STALL, window=m, eps=eps, sigma=sigma)
        except ValueError:
            pass
        raise NoizeNetError(
            f"--inject {text!r}: expected periodic:K (K >= 1) or "
            "stall:M:EPS:SIGMA (M >= 1, EPS >= 0, SIGMA >= 0)"
        )


def run(
    weights: KernelWeights,
    forced: np.ndarray,
    n_free: int,
    *,
    state: tuple[np.ndarray, np.ndarray] | None = None,
    injection: Injection | None = None,
    noise: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Prime on ``forced`` (B, T), then generate ``n_free`` samples per stream.

    Returns (pred (B, T) one-step predictions of the forced part, out (B, n_free), state).
    """
    injection = injection or Injection()
    forced = np.ascontiguousarray(np.atleast_2d(forced), dtype=np.float32)
    B = forced.shape[0]
    L, H = weights.layers, weights.hidden
    if state is None:
        h = np.zeros((L, B, H), dtype=np.float32)
        c = np.zeros((L, B, H), dtype=np.float32)
    else:
        h, c = (np.array(s, dtype=np.float32, copy=True) for s in state)
    if noise is None:
        noise = np.zeros((B, max(n_free, 1)), dtype=np.float32)
    noise = np.ascontiguousarray(noise, dtype=np.float32)
    pred = np.zeros((B, forced.shape[1]), dtype=np.float32)
    out = np.zeros((B, max(n_free, 0)), dtype=np.float32)
    _run(
        weights.cell,
        weights.w_ih0,
        weights.w_ih,
        weights.w_hh,
        weights.b_ih,
        weights.b_hh,
        weights.head_w,
        weights.head_b,
        h,
        c,
        forced,
        int(n_free),
        injection.mode,
        injection.period,
        injection.window,
        np.float32(injection.eps),
        np.float32(injection.sigma),
        noise,
        pred,
        out,
    )
    return pred, out, (h, c)
