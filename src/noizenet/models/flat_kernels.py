"""Per-step inference kernels (numba): priming, teacher-forced prediction and free running.

Generation feeds every output back as the next input, so it is a loop of one-sample steps. In
PyTorch each step costs tens of microseconds of framework overhead, far more than its arithmetic
at hidden 50; here the whole loop, noise injection and sampling included, is compiled code. It is
tested against :meth:`noizenet.models.NoizeNet.step` on the same weights (see tests).

Three schedules compute the same thing:

- ``per-stream``: each stream runs its whole loop on one core, ``prange`` over streams. At
  hidden 50 a step is ~10 k multiply-adds, so anything but straight-line compiled code (a thread
  hand-off, a BLAS call) would cost more than the arithmetic.
- ``split``: time is the outer loop and each product is split into one column block per core,
  read once for all streams. At hidden 512 a step reads 4 MB of weights, which bounds one core;
  this is how one stream of a large model uses them all.
- ``blas``: time is the outer loop, in Python, and each step's products are GEMMs over all
  streams, done by BLAS (a millisecond per step at hidden 512 x 64 streams, against
  microseconds of interpreter).

Speed comes from the layout more than from the loops: weights are stored transposed, so the
matrix-vector products run along contiguous rows (``g[r] += W_t[k, r] * x[k]``) and vectorise
without horizontal sums; tanh, sigmoid and exp are rational/polynomial approximations (within
4e-7 of the exact functions) that vectorise, where libm calls do not; a categorical model's
embedding times its first input matrix is a precomputed table.

Weight layout follows PyTorch's, transposed: gates stacked along columns, LSTM (i, f, g, o),
GRU (r, z, n).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba
import numpy as np
from numba.extending import overload

from noizenet.sampling import INJECT_NONE, INJECT_PERIODIC, INJECT_STALL, Injection, Sampling

CELL_CODES = {"rnn": 0, "lstm": 1, "gru": 2}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}

# ``path="auto"`` (measured by wall clock on 2 cores, see the speed issue's note): below this
# hidden size one stream per core always wins; at it, one stream splits its products across the
# cores, and from ``BLAS_FROM_STREAMS`` streams BLAS multiplies them all at once.
BATCHED_FROM_HIDDEN = 256
BLAS_FROM_STREAMS = 16
STREAM_TILE = 8  # streams that share one pass over a weight slice
SPLIT_FROM_COLUMNS = 16  # the split schedule shares a head this wide between the cores

# nogil: a take's figures import matplotlib in another thread while the kernel runs
FAST = {"cache": True, "fastmath": True, "error_model": "numpy", "nogil": True}


@dataclass
class KernelWeights:
    """A model's weights as contiguous float32 arrays, in the layout the kernels read."""

    cell: int  # CELL_CODES value
    x_w0: np.ndarray  # (in_dim, G*H) first layer input weights, transposed
    x_w: np.ndarray  # (max(layers-1, 1), H, G*H) input weights of layers 1.., transposed
    x_b: np.ndarray  # (layers, G*H) input biases
    h_w: np.ndarray  # (layers, H, G*H) recurrent weights, transposed
    h_b: np.ndarray  # (layers, G*H) recurrent biases
    head_w: np.ndarray  # (H, out_dim or levels) transposed
    head_b: np.ndarray  # (out_dim or levels,)
    table: np.ndarray  # (levels, G*H): embedding @ first input weights + bias; (0, G*H) if none

    @property
    def layers(self) -> int:
        return self.h_w.shape[0]

    @property
    def hidden(self) -> int:
        return self.h_w.shape[1]

    @property
    def outputs(self) -> int:
        return self.head_w.shape[1]

    @property
    def categorical(self) -> bool:
        return self.table.shape[0] > 0


CACHE_LINE = 64


def _aligned(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` starting on a cache line. numpy aligns to 16 bytes only, and
    where each weight matrix then falls decided a kernel's speed by up to 20% from one process
    to the next (the same code, the same weights; measured on the 64-stream rows)."""
    raw = np.empty(a.nbytes + CACHE_LINE, dtype=np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    out = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def kernel_weights(spec: Any, weights: dict[str, np.ndarray]) -> KernelWeights:
    """Lay out a flat network's weights (its state dict as arrays, any float dtype) for the
    kernels; the embedding table is computed in float64, exact to float32 rounding."""
    sd = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    L, H = spec.layers, spec.hidden
    G = GATES[spec.cell]

    def f32(a):
        return _aligned(np.asarray(a, dtype=np.float32))

    x_w = [sd[f"rnn.weight_ih_l{k}"].T for k in range(1, L)] or [np.zeros((H, G * H))]
    x_b = np.stack([sd[f"rnn.bias_ih_l{k}"] for k in range(L)])
    table = np.zeros((0, G * H))
    if spec.categorical:
        table = sd["embed.weight"] @ sd["rnn.weight_ih_l0"].T + x_b[0]
    return KernelWeights(
        cell=CELL_CODES[spec.cell],
        x_w0=f32(sd["rnn.weight_ih_l0"].T),
        x_w=f32(np.stack(x_w)),
        x_b=f32(x_b),
        h_w=f32(np.stack([sd[f"rnn.weight_hh_l{k}"].T for k in range(L)])),
        h_b=f32(np.stack([sd[f"rnn.bias_hh_l{k}"] for k in range(L)])),
        head_w=f32(sd["head.weight"].T),
        head_b=f32(sd["head.bias"]),
        table=f32(table),
    )


# -- elementwise approximations ---------------------------------------------------------------
# tanh(x) ~ x P(x^2) / Q(x^2) on [-9, 9] (|tanh(9)| rounds to 1 in float32), P(0) = Q(0) = 1;
# a least-squares rational fit (Sanathanan-Koerner iterations): within 3.3e-7 of tanh in float32.
_TP = (
    1.0,
    0.13088725196321946,
    0.003109247963539942,
    1.1210489172910923e-05,
    -2.0458721534603454e-08,
    5.393594066408712e-11,
    -8.794040921906615e-14,
)
_TQ = (1.0, 0.4642205337570492, 0.024516180011002975, 0.00025538980775014457)
# 2^f on [0, 1), degree 6, weighted least squares on Chebyshev nodes: relative error 3.6e-9.
_E2 = (
    1.0,
    0.6931469870574717,
    0.2402297958142676,
    0.055483524723892674,
    0.009678472554585017,
    0.0012443081507231381,
    0.0002169060917421774,
)


@numba.njit(inline="always", **FAST)
def _poly(x, coeffs):
    """sum(coeffs[i] * x**i) by Horner's rule, in float32."""
    p = np.float32(coeffs[len(coeffs) - 1])
    for i in range(len(coeffs) - 2, -1, -1):
        p = p * x + np.float32(coeffs[i])
    return p


@numba.njit(inline="always", **FAST)
def _tanh(x):
    x = min(max(x, np.float32(-9.0)), np.float32(9.0))
    z = x * x
    return x * _poly(z, _TP) / _poly(z, _TQ)


@numba.njit(inline="always", **FAST)
def _sigmoid(x):
    return np.float32(0.5) + np.float32(0.5) * _tanh(np.float32(0.5) * x)


@numba.njit(**FAST)
def _exp_nonpositive(z, out, bits):
    """out[k] <- exp(z[k]) for z <= 0 (float64 in, float32 out), relative error ~1e-7.

    2^(z log2 e) split into 2^n (built in the exponent bits) times a polynomial for 2^f, so
    the loop vectorises; ``bits`` is int32 scratch of the same length.
    """
    for k in range(z.shape[0]):
        v = max(z[k], -87.0) * 1.4426950408889634
        n = np.floor(v)
        out[k] = _poly(np.float32(v - n), _E2)
        bits[k] = (np.int32(n) + np.int32(127)) << np.int32(23)
    scale = bits.view(np.float32)
    for k in range(z.shape[0]):
        out[k] *= scale[k]


# -- linear algebra and cells -------------------------------------------------------------------
@numba.njit(**FAST)
def _gemm_columns(w_t, bias, xs, outs, r0, r1):
    """outs[:, r0:r1] <- bias[r0:r1] + xs @ w_t[:, r0:r1], for every stream (row of xs).

    One contiguous row of ``w_t`` at a time, four rows per pass (a quarter of the loads and
    stores of ``outs``). Streams go in tiles of ``STREAM_TILE``: the four rows, read once, serve
    every stream of the tile, whose outputs stay in L1. Column indices are unsigned: numba
    cannot prove a signed computed index non-negative, and the wrap-around check it then
    inserts stops the loop vectorising (4x slower).
    """
    B, K = xs.shape
    a, b = np.uint64(r0), np.uint64(r1)
    for s in range(B):
        for r in range(a, b):
            outs[s, r] = bias[r]
    for s0 in range(0, B, STREAM_TILE):
        s1 = min(s0 + STREAM_TILE, B)
        k = 0
        while k + 4 <= K:
            for s in range(s0, s1):
                x0, x1, x2, x3 = xs[s, k], xs[s, k + 1], xs[s, k + 2], xs[s, k + 3]
                for r in range(a, b):
                    acc = w_t[k, r] * x0 + w_t[k + 1, r] * x1
                    outs[s, r] += acc + w_t[k + 2, r] * x2 + w_t[k + 3, r] * x3
            k += 4
        while k < K:
            for s in range(s0, s1):
                xk = xs[s, k]
                for r in range(a, b):
                    outs[s, r] += w_t[k, r] * xk
            k += 1


@numba.njit(**FAST)
def _project(w_t, b, x, out):
    """out <- b + x @ w_t, for one stream."""
    _gemm_columns(w_t, b, x.reshape((1, x.shape[0])), out.reshape((1, out.shape[0])), 0,
                  out.shape[0])  # fmt: skip


@numba.njit(**FAST)
def _cell(cell, gx, gh, h, c):
    """PyTorch's cell equations, in place on h and c (H,), from the input (gx) and recurrent
    (gh) pre-activations, biases included."""
    H = h.shape[0]
    if cell == 0:  # vanilla RNN, tanh
        for j in range(H):
            h[j] = _tanh(gx[j] + gh[j])
    elif cell == 1:  # LSTM: i, f, g, o
        for j in range(H):
            i = _sigmoid(gx[j] + gh[j])
            f = _sigmoid(gx[H + j] + gh[H + j])
            g = _tanh(gx[2 * H + j] + gh[2 * H + j])
            o = _sigmoid(gx[3 * H + j] + gh[3 * H + j])
            c[j] = f * c[j] + i * g
            h[j] = o * _tanh(c[j])
    else:  # GRU: r, z, n
        for j in range(H):
            r = _sigmoid(gx[j] + gh[j])
            z = _sigmoid(gx[H + j] + gh[H + j])
            n = _tanh(gx[2 * H + j] + r * gh[2 * H + j])
            h[j] = (np.float32(1.0) - z) * n + z * h[j]


@numba.njit(**FAST)
def _stack(cell, gx0, x_w, x_b, h_w, h_b, hb, cb, gx, gh):
    """All layers, one sample, one stream, in place; gx0 is layer 0's input pre-activation."""
    _project(h_w[0], h_b[0], hb[0], gh)
    _cell(cell, gx0, gh, hb[0], cb[0])
    for layer in range(1, hb.shape[0]):
        _project(x_w[layer - 1], x_b[layer], hb[layer - 1], gx)
        _project(h_w[layer], h_b[layer], hb[layer], gh)
        _cell(cell, gx, gh, hb[layer], cb[layer])


@numba.njit(parallel=True, **FAST)
def _matmul_split(w_t, bias, xs, outs, blocks):
    """outs <- bias + xs @ w_t for a few streams: bound by reading ``w_t``, so one column
    block per core (``blocks``), each read once for all the streams."""
    GH = w_t.shape[1]
    width = ((GH + blocks - 1) // blocks + 15) // 16 * 16  # whole cache lines per block
    for blk in numba.prange(blocks):
        _gemm_columns(w_t, bias, xs, outs, min(blk * width, GH), min((blk + 1) * width, GH))


@numba.njit(**FAST)
def _cells(cell, gx, gh, h, c):
    """Every stream's cell update from its pre-activations, in place: h, c (B, H).

    Serial on purpose, like the other per-step helpers of the split and BLAS schedules: a few
    percent of a step, and idle numba workers spinning beside BLAS's threads cost BLAS 5x.
    """
    for s in range(h.shape[0]):
        _cell(cell, gx[s], gh[s], h[s], c[s])


@numba.njit(**FAST)
def _split_stack(cell, gx0, x_w, x_b, h_w, h_b, h, c, gx, gh, blocks):
    """All layers, a few streams, one step, in place: h, c (layers, B, H)."""
    _matmul_split(h_w[0], h_b[0], h[0], gh, blocks)
    _cells(cell, gx0, gh, h[0], c[0])
    for layer in range(1, h.shape[0]):
        _matmul_split(x_w[layer - 1], x_b[layer], h[layer - 1], gx, blocks)
        _matmul_split(h_w[layer], h_b[layer], h[layer], gh, blocks)
        _cells(cell, gx, gh, h[layer], c[layer])


def _blas_stack(w: KernelWeights, gx0, h, c, gx, gh) -> None:
    """:func:`_split_stack` for many streams: the products are GEMMs, done by BLAS."""
    for layer in range(h.shape[0]):
        if layer > 0:
            np.dot(h[layer - 1], w.x_w[layer - 1], out=gx)
            gx += w.x_b[layer]
        np.dot(h[layer], w.h_w[layer], out=gh)
        gh += w.h_b[layer]
        _cells(w.cell, gx if layer > 0 else gx0, gh, h[layer], c[layer])


# -- sampling ------------------------------------------------------------------------------------
@numba.njit(**FAST)
def _softmax(logits, temperature, z, probs, bits):
    """probs <- exp((logits - max) / temperature), unnormalised; returns their sum (float64)."""
    m = logits[0]
    for k in range(1, logits.shape[0]):
        m = max(m, logits[k])
    inv = 1.0 / temperature
    for k in range(logits.shape[0]):
        z[k] = (np.float64(logits[k]) - m) * inv
    _exp_nonpositive(z, probs, bits)
    total = 0.0
    for k in range(logits.shape[0]):
        total += probs[k]
    return total


@numba.njit(**FAST)
def _sample(logits, temperature, top_p, u, z, probs, bits):
    """Draw a class by inverse CDF from uniform ``u``; temperature 0 is argmax.

    Top-p keeps the most probable classes whose mass first reaches ``top_p`` (nucleus sampling).
    Classes are visited in index order (or by descending probability under top-p, ties in index
    order), exactly as :func:`noizenet.models.flat_reference.sample` does.
    """
    L = logits.shape[0]
    if temperature <= 0.0:
        best = 0
        for k in range(1, L):
            if logits[k] > logits[best]:
                best = k
        return best
    total = _softmax(logits, temperature, z, probs, bits)
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


@numba.njit(**FAST)
def _expected(logits, level_values, z, probs, bits):
    """Expected level value under softmax(logits)."""
    total = _softmax(logits, 1.0, z, probs, bits)
    acc = 0.0
    for k in range(logits.shape[0]):
        acc += probs[k] * level_values[k]
    return acc / total


# -- the heads ------------------------------------------------------------------------------------
# A head is a NamedTuple of its settings, random draws and carried state; its methods are one
# step's work for ONE stream, on that stream's buffers: ``feed`` (what the stream feeds back: the
# output vector, or its class in a 1-element array) and ``scratch`` (a tuple of work arrays). The
# loops call them through :func:`_method`, so numba compiles each loop once per head type: one
# loop per schedule, for either head. ``j`` counts this call's free steps; ``offset`` free steps
# came before the call (a take continued over several calls).


class _Regression(NamedTuple):
    """Each prediction is fed back as the next input, after :class:`Injection`'s rule."""

    mode: int  # INJECT_* code
    period: int
    eps: np.float32
    sigma: np.float32
    noise: np.ndarray  # (B, n_free, D) standard normal draws (every schedule uses the same ones)
    offset: int  # the injection's period and window slots count from the take's start
    ring: np.ndarray  # (B, window, D) the stall window: the last outputs, updated in place
    filled: np.ndarray  # (B,) how many of them it holds

    def buffers(self, streams, outputs):
        """feed (streams, D); no scratch (the stall window is the head's own)."""
        return np.zeros((streams, outputs), dtype=np.float32), np.zeros((streams, 1), np.float32)

    def row(self, scratch, s):
        return scratch[s]

    def fed(self, feed):
        """The next input (D,) of a stream whose feed buffer is ``feed``."""
        return feed

    def gates(self, x_w0, x_b0, table, x, buf):
        """Layer 0's input pre-activation for the input vector x, computed into buf."""
        _project(x_w0, x_b0, x, buf)
        return buf

    def teach(self, y, scratch):
        """The one-step prediction of a forced input: the output itself."""
        return y

    def free(self, b, j, n_free, y, feed, scratch):
        """feed <- stream b's output y of free-running step j after the injection rule."""
        feed[:] = y
        if self.mode != INJECT_NONE:  # the rule's arithmetic is a call: see _inject
            _inject(self, b, j, y, feed)


@numba.njit(**FAST)
def _inject(head, b, j, y, feed):
    """The injection rule of :meth:`_Regression.free`, compiled as a function of its own:
    inlined (numba 0.68.1), the stall rule's outputs differed from the same code's uninlined
    ones, and from the reference path (tests/test_flat_kernels.py). Only a copy is inlined,
    so a take without injection makes no call per step."""
    noise = head.noise[b, j]
    k = head.offset + j  # the take's step
    D = y.shape[0]
    if head.mode == INJECT_PERIODIC:
        if (k + 1) % head.period == 0:
            for d in range(D):
                feed[d] = y[d] * (noise[d] - np.float32(1.0))
    elif head.mode == INJECT_STALL:
        ring = head.ring[b]
        window = ring.shape[0]
        slot = k % window
        ring[slot] = y
        filled = min(head.filled[b] + 1, window)
        head.filled[b] = filled
        if filled == window:
            span = np.float32(0.0)
            for d in range(D):
                lo = ring[0, d]
                hi = ring[0, d]
                for i in range(1, window):
                    lo = min(lo, ring[i, d])
                    hi = max(hi, ring[i, d])
                span = max(span, hi - lo)
            if span < head.eps:
                for d in range(D):
                    feed[d] = y[d] + head.sigma * noise[d]
                ring[slot] = feed


class _Categorical(NamedTuple):
    """The output is logits over classes; a class is drawn (temperature moving linearly from
    temp_start to temp_end over the take's ``span`` free steps, top-p) and fed back through the
    embedding. A forced input's prediction is its expected value (temperature 1)."""

    temp_start: np.ndarray  # (B,)
    temp_end: np.ndarray  # (B,)
    top_p: float
    uniforms: np.ndarray  # (B, n_free) the random numbers the draws use
    level_values: np.ndarray  # (levels,) the value each class stands for
    offset: int  # free steps of the take before this call
    span: int  # free steps of the whole take (the temperature schedule's length)

    def buffers(self, streams, outputs):
        """feed: each stream's class (streams, 1); scratch: the softmax's work arrays."""
        shape = (streams, outputs)
        scratch = (np.empty(shape, np.float64), np.empty(shape, np.float32),
                   np.empty(shape, np.int32))  # fmt: skip
        return np.zeros((streams, 1), dtype=np.int64), scratch

    def row(self, scratch, s):
        return scratch[0][s], scratch[1][s], scratch[2][s]

    def fed(self, feed):
        return feed[0]

    def gates(self, x_w0, x_b0, table, x, buf):
        """Layer 0's input pre-activation for class x: its row of the table (buf unused)."""
        return table[x]

    def teach(self, y, scratch):
        return _expected(y, self.level_values, scratch[0], scratch[1], scratch[2])

    def free(self, b, j, n_free, y, feed, scratch):
        """feed <- the class drawn from logits y at free-running step j."""
        k = self.offset + j
        frac = k / (self.span - 1) if self.span > 1 else 0.0
        temp = self.temp_start[b] + (self.temp_end[b] - self.temp_start[b]) * frac
        feed[0] = _sample(y, temp, self.top_p, self.uniforms[b, j], scratch[0], scratch[1],
                          scratch[2])  # fmt: skip


def _method(name: str):
    """``call(head, ...)``: the method ``name`` of the head's class, also in compiled code,
    inlined at numba's IR level."""

    def call(head, *args):
        return getattr(head, name)(*args)

    @overload(call, jit_options=FAST, strict=False, inline="always")
    def _pick(head, *args):
        return getattr(head.instance_class, name)

    return call


_buffers, _row, _fed, _gates = (_method(n) for n in ("buffers", "row", "fed", "gates"))
_teach, _free = _method("teach"), _method("free")


# -- the loops: one per schedule, for either head ----------------------------------------------
@numba.njit(inline="always", **FAST)
def _emit(head, b, t, n_free, y, feed, scratch, pred, out):
    """Stream b's output y at step t: the prediction of a forced input, then fed back. The
    first free output is the prediction after the last forced input."""
    T = pred.shape[1]
    if t < T:
        pred[b, t] = _teach(head, y, scratch)
    if n_free > 0 and t >= T - 1:
        j = t - (T - 1)
        _free(head, b, j, n_free, y, feed, scratch)
        out[b, j] = _fed(head, feed)


@numba.njit(parallel=True, **FAST)
def _per_stream(
    head, cell, x_w0, x_w, x_b, h_w, h_b, head_w, head_b, table, h, c, forced, n_free, pred, out
):  # fmt: skip
    """Teacher-force ``forced``, then run free for ``n_free`` steps, each stream on one core.

    h, c: (layers, B, H) state, updated in place. forced: (B, T, D) inputs or (B, T) classes;
    pred: their one-step predictions, (B, T, D) or (B, T); out: (B, n_free, D) outputs or
    (B, n_free) classes.
    """
    L, B = h.shape[0], h.shape[1]
    T, GH = forced.shape[1], h_w.shape[2]
    for b in numba.prange(B):  # streams are independent: one per core
        gx0 = np.empty(GH, dtype=np.float32)
        gx = np.empty(GH, dtype=np.float32)
        gh = np.empty(GH, dtype=np.float32)
        y = np.empty(head_w.shape[1], dtype=np.float32)
        feeds, scratches = _buffers(head, 1, head_w.shape[1])  # this core's own
        feed, scratch = feeds[0], _row(head, scratches, 0)
        hb = np.ascontiguousarray(h[:, b, :])
        cb = np.ascontiguousarray(c[:, b, :])
        steps = T + n_free - 1 if n_free > 0 else T
        for t in range(steps):
            x0 = _gates(head, x_w0, x_b[0], table, forced[b, t] if t < T else _fed(head, feed), gx0)
            _stack(cell, x0, x_w, x_b, h_w, h_b, hb, cb, gx, gh)
            _project(head_w, head_b, hb[L - 1], y)
            _emit(head, b, t, n_free, y, feed, scratch, pred, out)
        h[:, b, :] = hb
        c[:, b, :] = cb


def serial_twin(loop):
    """``loop`` (a ``parallel=True`` kernel) compiled again without the parallel launch, for a
    call whose ``prange`` has one iteration (one stream): waking OpenMP's threads costs about
    20 ms a call on a loaded 2-core machine, as long as generating a second of audio at hidden
    50 takes, and a take streamed in 1 s blocks makes a call per block. The twin has a name of
    its own, so numba caches it apart from the parallel loop."""
    f = loop.py_func
    twin = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__)
    twin.__qualname__ = f.__qualname__ + "_serial"
    twin.__doc__ = f.__doc__
    return numba.njit(**FAST)(twin)


_one_stream = serial_twin(_per_stream)


@numba.njit(**FAST)
def _gate_buffers(B, GH):
    """Pre-activations of layer 0's input, a later layer's input, and the recurrence."""
    return (
        np.empty((B, GH), dtype=np.float32),
        np.empty((B, GH), dtype=np.float32),
        np.empty((B, GH), dtype=np.float32),
    )


# The split and BLAS schedules: time outermost. The split loop is compiled; the BLAS loop is
# Python, as each step's BLAS products take a millisecond against microseconds of overhead.
@numba.njit(**FAST)
def _emit_streams(head, t, n_free, y, feeds, scratches, pred, out):
    """:func:`_emit` for every stream: y (B, outputs)."""
    for s in range(y.shape[0]):
        _emit(head, s, t, n_free, y[s], feeds[s], _row(head, scratches, s), pred, out)


@numba.njit(**FAST)
def _gates_streams(head, x_w0, x_b0, table, t, forced, feeds, gx0):
    """Every stream's layer-0 input pre-activation at step t, into gx0 (B, G*H)."""
    T = forced.shape[1]
    for s in range(gx0.shape[0]):
        x = forced[s, t] if t < T else _fed(head, feeds[s])
        gx0[s] = _gates(head, x_w0, x_b0, table, x, gx0[s])


@numba.njit(**FAST)
def _split(
    head, cell, x_w0, x_w, x_b, h_w, h_b, head_w, head_b, table, h, c, forced, n_free, pred, out,
    blocks,
):  # fmt: skip
    """:func:`_per_stream`'s contract, time outermost (large models); ``blocks``: how many
    column blocks each product is split into (the thread count)."""
    B, T = forced.shape[0], forced.shape[1]
    GH, outputs = h_w.shape[2], head_w.shape[1]
    gx0, gx, gh = _gate_buffers(B, GH)
    y = np.empty((B, outputs), dtype=np.float32)
    feeds, scratches = _buffers(head, B, outputs)
    steps = T + n_free - 1 if n_free > 0 else T
    for t in range(steps):
        _gates_streams(head, x_w0, x_b[0], table, t, forced, feeds, gx0)
        _split_stack(cell, gx0, x_w, x_b, h_w, h_b, h, c, gx, gh, blocks)
        if outputs >= SPLIT_FROM_COLUMNS:
            _matmul_split(head_w, head_b, h[h.shape[0] - 1], y, blocks)
        else:  # a narrow head (one regression value) costs less than a hand-off to the cores
            _gemm_columns(head_w, head_b, h[h.shape[0] - 1], y, 0, outputs)
        _emit_streams(head, t, n_free, y, feeds, scratches, pred, out)


def _blas(w: KernelWeights, head, h, c, forced, n_free, pred, out) -> None:
    """:func:`_split` for many streams, with BLAS products (the input's too: D may be large)."""
    B, T = forced.shape[0], forced.shape[1]
    gx0, gx, gh = _gate_buffers(B, w.h_w.shape[2])
    y = np.empty((B, w.outputs), np.float32)
    feeds, scratches = head.buffers(B, w.outputs)
    for t in range(T + n_free - 1 if n_free > 0 else T):
        x = forced[:, t] if t < T else feeds
        if w.categorical:
            np.take(w.table, x.reshape(-1), axis=0, out=gx0)
        else:
            np.dot(x, w.x_w0, out=gx0)
            gx0 += w.x_b[0]
        _blas_stack(w, gx0, h, c, gx, gh)
        np.dot(h[-1], w.head_w, out=y)
        y += w.head_b
        _emit_streams(head, t, n_free, y, feeds, scratches, pred, out)


def _generate(w: KernelWeights, head, h, c, forced, n_free, pred, out, path: str) -> None:
    """Run ``head`` on the schedule ``path`` picks (h, c and the head's state in place)."""
    B = forced.shape[0]
    schedule = _schedule(w, B, path)
    if schedule == "blas":
        _blas(w, head, h, c, forced, n_free, pred, out)
        return
    args = (head, w.cell, w.x_w0, w.x_w, w.x_b, w.h_w, w.h_b, w.head_w, w.head_b, w.table, h, c,
            forced, n_free, pred, out)  # fmt: skip
    if schedule == "per-stream":
        (_one_stream if B == 1 else _per_stream)(*args)
    else:
        _split(*args, numba.get_num_threads())


def _initial_state(weights: KernelWeights, B: int, state: tuple | None) -> tuple:
    L, H = weights.layers, weights.hidden
    if state is None:
        return np.zeros((L, B, H), np.float32), np.zeros((L, B, H), np.float32)
    return tuple(np.array(s, dtype=np.float32, copy=True) for s in state)


def injection_window(injection: Injection, streams: int, dim: int) -> tuple:
    """A fresh stall window: the last outputs (streams, window, dim) and how many it holds."""
    return (
        np.zeros((streams, max(injection.window, 1), dim), np.float32),
        np.zeros(streams, np.int64),
    )


SCHEDULES = ("auto", "per-stream", "split", "blas")


def _schedule(weights: KernelWeights, streams: int, path: str) -> str:
    if path not in SCHEDULES:
        raise ValueError(f"path must be one of {', '.join(SCHEDULES)}, not {path!r}")
    if path != "auto":
        return path
    if weights.hidden < BATCHED_FROM_HIDDEN:
        return "per-stream"
    if streams == 1:
        return "split"
    return "blas" if streams >= BLAS_FROM_STREAMS else "per-stream"


def run(
    weights: KernelWeights,
    forced: np.ndarray,
    n_free: int,
    *,
    state: tuple[np.ndarray, np.ndarray] | None = None,
    injection: Injection | None = None,
    noise: np.ndarray | None = None,
    path: str = "auto",
    offset: int = 0,
    window: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Regression head: prime on ``forced``, then generate ``n_free`` steps per stream.

    ``forced`` is (B, T) for one value per step or (B, T, D) for vectors (FFT blocks).
    Returns (pred, out, state): one-step predictions of the forced part (shaped like
    ``forced``), the free-running output (B, n_free[, D]) and the final state. ``path`` picks
    the schedule (``per-stream``, ``split`` or ``blas``; ``auto`` by hidden size and streams):
    the results agree to float32 rounding.

    A take continued over calls: ``offset`` free steps came before this one (the periodic
    injection's phase and the stall window's slots count from the take's start), and
    ``window`` is the stall window (:func:`injection_window`), updated in place.
    """
    injection = injection or Injection()
    forced = np.asarray(forced, dtype=np.float32)
    if forced.ndim == 1:
        forced = forced[None, :]
    vector = forced.ndim == 3
    forced = np.ascontiguousarray(forced if vector else forced[:, :, None])
    B, D = forced.shape[0], weights.outputs
    h, c = _initial_state(weights, B, state)
    n_free = max(int(n_free), 0)
    if noise is None:
        noise = np.zeros((B, max(n_free, 1), D), dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    noise = np.ascontiguousarray(noise if noise.ndim == 3 else noise[:, :, None])
    pred = np.zeros((B, forced.shape[1], D), dtype=np.float32)
    out = np.zeros((B, n_free, D), dtype=np.float32)
    ring, filled = window if window is not None else injection_window(injection, B, D)
    head = _Regression(
        injection.mode, injection.period, np.float32(injection.eps), np.float32(injection.sigma),
        noise, int(offset), ring, filled,
    )  # fmt: skip
    _generate(weights, head, h, c, forced, n_free, pred, out, path)
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
    path: str = "auto",
    offset: int = 0,
    span: int | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Categorical head: prime on class indices ``forced`` (B, T), then sample ``n_free``.

    ``temperature`` is one value or per-stream (start, end) arrays for a linear schedule over
    the take's ``span`` free steps (default ``n_free``), of which ``offset`` came before this
    call (a take continued over calls). Returns (expected value of each forced prediction
    (B, T), sampled classes (B, n_free) int64, state). ``path`` as in :func:`run`.
    """
    forced = np.ascontiguousarray(np.atleast_2d(np.asarray(forced)).astype(np.int64))
    B = forced.shape[0]
    levels = weights.table.shape[0]
    if forced.min() < 0 or forced.max() >= levels:
        raise ValueError(f"class indices must lie in [0, {levels})")
    h, c = _initial_state(weights, B, state)
    n_free = max(int(n_free), 0)
    args = Sampling(temperature=temperature, top_p=top_p, uniforms=uniforms,
                    level_values=level_values).categorical_args(B, n_free)  # fmt: skip
    (t0, t1), uniforms = args["temperature"], args["uniforms"]
    pred = np.zeros((B, forced.shape[1]), dtype=np.float32)
    out = np.zeros((B, n_free), dtype=np.int64)
    span = n_free if span is None else int(span)
    head = _Categorical(t0, t1, float(top_p), uniforms, args["level_values"], int(offset), span)
    _generate(weights, head, h, c, forced, n_free, pred, out, path)
    return pred, out, (h, c)
