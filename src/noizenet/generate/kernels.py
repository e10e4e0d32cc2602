"""Per-step inference kernels (numba): priming, teacher-forced prediction and free running.

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
    head_w: np.ndarray  # (out_dim or levels, H)
    head_b: np.ndarray  # (out_dim or levels,)
    embed: np.ndarray  # (levels, E) input embedding of a categorical model; (0, 0) otherwise

    @property
    def layers(self) -> int:
        return self.w_hh.shape[0]

    @property
    def hidden(self) -> int:
        return self.w_hh.shape[2]

    @property
    def categorical(self) -> bool:
        return self.embed.shape[0] > 0


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
        embed=f32(sd["embed.weight"]) if spec.categorical else np.zeros((0, 0), np.float32),
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
def _stack(cell, w_ih0, w_ih, w_hh, b_ih, b_hh, x, hb, cb, gi, gh):
    """All layers, one sample: x -> hb[-1]."""
    _layer(cell, w_ih0, w_hh[0], b_ih[0], b_hh[0], x, hb[0], cb[0], gi, gh)
    for layer in range(1, hb.shape[0]):
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


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _head(head_w, head_b, top, y):
    for k in range(y.shape[0]):
        acc = head_b[k]
        for j in range(top.shape[0]):
            acc += head_w[k, j] * top[j]
        y[k] = acc


@numba.njit(cache=True, error_model="numpy")
def _softmax(logits, temperature, probs):
    """probs <- exp((logits - max) / temperature), unnormalised; returns their sum (float64)."""
    m = logits[0]
    for k in range(1, logits.shape[0]):
        m = max(m, logits[k])
    total = 0.0
    for k in range(logits.shape[0]):
        p = np.exp((np.float64(logits[k]) - m) / temperature)
        probs[k] = p
        total += p
    return total


@numba.njit(cache=True, error_model="numpy")
def _sample(logits, temperature, top_p, u, probs):
    """Draw a class by inverse CDF from uniform ``u``; temperature 0 is argmax.

    Top-p keeps the most probable classes whose mass first reaches ``top_p`` (nucleus sampling).
    Classes are visited in index order (or by descending probability under top-p, ties in index
    order), exactly as :func:`noizenet.generate.reference.sample` does.
    """
    L = logits.shape[0]
    if temperature <= 0.0:
        best = 0
        for k in range(1, L):
            if logits[k] > logits[best]:
                best = k
        return best
    total = _softmax(logits, temperature, probs)
    if top_p < 1.0:
        order = np.argsort(-probs, kind="mergesort")
        kept, n_kept = 0.0, 0
        while n_kept < L and kept < top_p * total:
            kept += probs[order[n_kept]]
            n_kept += 1
        target = u * kept
        acc = 0.0
        for i in range(n_kept):
            acc += probs[order[i]]
            if acc >= target:
                return order[i]
        return order[n_kept - 1]
    target = u * total
    acc = 0.0
    for k in range(L):
        acc += probs[k]
        if acc >= target:
            return k
    return L - 1


@numba.njit(cache=True, fastmath=True, error_model="numpy", parallel=True)
def _run_regression(
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
    """Teacher-force ``forced`` (B, T, D), then run free for ``n_free`` steps, per stream.

    h, c: (layers, B, H) state, updated in place. pred: (B, T, D) one-step predictions of the
    forced inputs. out: (B, n_free, D); out[:, 0] is the prediction after the last forced input.
    noise: (B, n_free, D) standard normal draws for injection (every path uses the same ones).
    """
    L, B = h.shape[0], h.shape[1]
    T = forced.shape[1]
    D = head_w.shape[0]
    GH = w_hh.shape[1]
    for b in numba.prange(B):  # streams are independent: one per core
        gi = np.empty(GH, dtype=np.float32)
        gh = np.empty(GH, dtype=np.float32)
        y = np.empty(D, dtype=np.float32)
        feed = np.empty(D, dtype=np.float32)
        ring = np.empty((max(window, 1), D), dtype=np.float32)
        hb = np.ascontiguousarray(h[:, b, :])
        cb = np.ascontiguousarray(c[:, b, :])
        filled = 0
        steps = T + n_free - 1 if n_free > 0 else T
        for t in range(steps):
            x = forced[b, t] if t < T else feed
            _stack(cell, w_ih0, w_ih, w_hh, b_ih, b_hh, x, hb, cb, gi, gh)
            _head(head_w, head_b, hb[L - 1], y)
            if t < T:
                pred[b, t] = y
            if n_free > 0 and t >= T - 1:
                j = t - (T - 1)
                feed[:] = y
                if inject_mode == 1:
                    if (j + 1) % period == 0:
                        for d in range(D):
                            feed[d] = y[d] * (noise[b, j, d] - np.float32(1.0))
                elif inject_mode == 2:
                    slot = j % window
                    ring[slot] = y
                    filled = min(filled + 1, window)
                    if filled == window:
                        span = np.float32(0.0)
                        for d in range(D):
                            lo = ring[0, d]
                            hi = ring[0, d]
                            for k in range(1, window):
                                lo = min(lo, ring[k, d])
                                hi = max(hi, ring[k, d])
                            span = max(span, hi - lo)
                        if span < eps:
                            for d in range(D):
                                feed[d] = y[d] + sigma * noise[b, j, d]
                            ring[slot] = feed
                out[b, j] = feed
        h[:, b, :] = hb
        c[:, b, :] = cb


@numba.njit(cache=True, fastmath=True, error_model="numpy", parallel=True)
def _run_categorical(
    cell,
    w_ih0,
    w_ih,
    w_hh,
    b_ih,
    b_hh,
    head_w,
    head_b,
    embed,
    h,
    c,
    forced,
    n_free,
    temp_start,
    temp_end,
    top_p,
    uniforms,
    level_values,
    pred,
    out,
):
    """Categorical head: teacher-force class indices ``forced`` (B, T), then sample freely.

    pred: (B, T) expected value (sum of p * level_values, temperature 1) of each one-step
    prediction. out: (B, n_free) sampled classes, fed back through the embedding. The temperature
    moves linearly from temp_start[b] to temp_end[b] over the free-running steps; uniforms
    (B, n_free) are the random numbers the draws use.
    """
    L, B = h.shape[0], h.shape[1]
    T = forced.shape[1]
    levels = head_w.shape[0]
    GH = w_hh.shape[1]
    for b in numba.prange(B):  # streams are independent: one per core
        gi = np.empty(GH, dtype=np.float32)
        gh = np.empty(GH, dtype=np.float32)
        logits = np.empty(levels, dtype=np.float32)
        probs = np.empty(levels, dtype=np.float64)
        hb = np.ascontiguousarray(h[:, b, :])
        cb = np.ascontiguousarray(c[:, b, :])
        feed = 0
        steps = T + n_free - 1 if n_free > 0 else T
        for t in range(steps):
            idx = forced[b, t] if t < T else feed
            _stack(cell, w_ih0, w_ih, w_hh, b_ih, b_hh, embed[idx], hb, cb, gi, gh)
            _head(head_w, head_b, hb[L - 1], logits)
            if t < T:
                total = _softmax(logits, 1.0, probs)
                acc = 0.0
                for k in range(levels):
                    acc += probs[k] * level_values[k]
                pred[b, t] = acc / total
            if n_free > 0 and t >= T - 1:
                j = t - (T - 1)
                frac = j / (n_free - 1) if n_free > 1 else 0.0
                temp = temp_start[b] + (temp_end[b] - temp_start[b]) * frac
                feed = _sample(logits, temp, top_p, uniforms[b, j], probs)
                out[b, j] = feed
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


def _initial_state(weights: KernelWeights, B: int, state: tuple | None) -> tuple:
    L, H = weights.layers, weights.hidden
    if state is None:
        return np.zeros((L, B, H), np.float32), np.zeros((L, B, H), np.float32)
    return tuple(np.array(s, dtype=np.float32, copy=True) for s in state)


def run(
    weights: KernelWeights,
    forced: np.ndarray,
    n_free: int,
    *,
    state: tuple[np.ndarray, np.ndarray] | None = None,
    injection: Injection | None = None,
    noise: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Regression head: prime on ``forced``, then generate ``n_free`` steps per stream.

    ``forced`` is (B, T) for one value per step or (B, T, D) for vectors (FFT blocks).
    Returns (pred, out, state): one-step predictions of the forced part (shaped like
    ``forced``), the free-running output (B, n_free[, D]) and the final state.
    """
    injection = injection or Injection()
    forced = np.asarray(forced, dtype=np.float32)
    if forced.ndim == 1:
        forced = forced[None, :]
    vector = forced.ndim == 3
    forced = np.ascontiguousarray(forced if vector else forced[:, :, None])
    B, D = forced.shape[0], weights.head_w.shape[0]
    h, c = _initial_state(weights, B, state)
    n_free = max(int(n_free), 0)
    if noise is None:
        noise = np.zeros((B, max(n_free, 1), D), dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    noise = np.ascontiguousarray(noise if noise.ndim == 3 else noise[:, :, None])
    pred = np.zeros((B, forced.shape[1], D), dtype=np.float32)
    out = np.zeros((B, n_free, D), dtype=np.float32)
    _run_regression(
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
        n_free,
        injection.mode,
        injection.period,
        injection.window,
        np.float32(injection.eps),
        np.float32(injection.sigma),
        noise,
        pred,
        out,
    )
    if not vector:
        pred, out = pred[:, :, 0], out[:, :, 0]
    return pred, out, (h, c)


def run_categorical(
    weights: KernelWeights,
    forced: np.ndarray,
    n_free: int,
    *,
    level_values: np.ndarray,
    temperature: tuple[np.ndarray, np.ndarray] | float = 1.0,
    top_p: float = 1.0,
    uniforms: np.ndarray | None = None,
    state: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Categorical head: prime on class indices ``forced`` (B, T), then sample ``n_free``.

    ``temperature`` is one value or per-stream (start, end) arrays for a linear schedule.
    Returns (expected value of each forced prediction (B, T), sampled classes (B, n_free) int64,
    state).
    """
    forced = np.ascontiguousarray(np.atleast_2d(np.asarray(forced)).astype(np.int64))
    B = forced.shape[0]
    if forced.min() < 0 or forced.max() >= weights.embed.shape[0]:
        raise ValueError(f"class indices must lie in [0, {weights.embed.shape[0]})")
    h, c = _initial_state(weights, B, state)
    n_free = max(int(n_free), 0)
    if isinstance(temperature, tuple):
        t0, t1 = (np.broadcast_to(np.asarray(t, np.float64), (B,)).copy() for t in temperature)
    else:
        t0 = t1 = np.full(B, float(temperature))
    if uniforms is None:
        uniforms = np.full((B, max(n_free, 1)), 0.5)
    uniforms = np.ascontiguousarray(uniforms, dtype=np.float64)
    pred = np.zeros((B, forced.shape[1]), dtype=np.float32)
    out = np.zeros((B, n_free), dtype=np.int64)
    _run_categorical(
        weights.cell,
        weights.w_ih0,
        weights.w_ih,
        weights.w_hh,
        weights.b_ih,
        weights.b_hh,
        weights.head_w,
        weights.head_b,
        weights.embed,
        h,
        c,
        forced,
        n_free,
        t0,
        t1,
        float(top_p),
        uniforms,
        np.ascontiguousarray(level_values, dtype=np.float64),
        pred,
        out,
    )
    return pred, out, (h, c)
