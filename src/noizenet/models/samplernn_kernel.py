"""SampleRNN generation in numba: each frame tier steps once per frame, the MLP every sample,
with the temperature schedule, top-p and sampling inside the loop.

Same contract as :meth:`noizenet.models.samplernn_net.SampleRNN.reference` (and tested against it:
identical sampled classes on the same uniforms). What makes it fast:

- **Folded linear maps.** A tier's input projection is followed by its RNN's first input
  matrix, and a lower tier adds the upper tier's upsampled vector before that same matrix, so
  both products are folded (in float64, once): a frame's samples map straight to the first
  layer's gate pre-activations, and an upper tier upsamples straight to the lower tier's gates.
- **Tables for the sample embeddings.** The MLP's first layer sees the embeddings of the last F
  samples; embedding times that layer's block for position i is a (levels, mlp_hidden) table,
  so the layer is F row additions instead of F x embedding x mlp_hidden multiply-adds.
- **Stream groups.** Time runs innermost-in-a-group: a group of streams (``GROUP``) steps
  together, each product reading a weight row once for all the group's streams (the upsampling
  matrix of the bottom tier is hidden x F x mlp_hidden, megabytes at preset sizes, which one
  stream alone would re-read from memory every frame); groups run in parallel, one per core, and
  never wait for each other. One stream is a group of one.

The products, cell equations, softmax and sampler are the flat family's kernels
(:mod:`noizenet.models.flat_kernels`): weights stored transposed, so products run along
contiguous rows and vectorise, with polynomial tanh/sigmoid/exp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from noizenet.models.base import Carry
from noizenet.models.flat_kernels import (
    CELL_CODES,
    FAST,
    _cell,
    _expected,
    _gemm_columns,
    _sample,
    serial_twin,
)
from noizenet.models.samplernn_inputs import _padded, _prepare
from noizenet.sampling import Sampling

GROUP = 8  # streams that step together and share each pass over the weights


@dataclass
class SampleRNNWeights:
    """A SampleRNN's weights as contiguous float32 arrays, in the layout the kernel reads."""

    cell: int  # CELL_CODES value (lstm or gru)
    frames: np.ndarray  # (K,) int64 frame sizes, top first
    scaled: np.ndarray  # (levels,) each class's value as a frame-tier input
    frame_w: np.ndarray  # (K, F_top, G*H): tier k's frame sample i's weight in layer 0's
    # gates (rows from F_k on zero); arrays padded to the largest tier, not tuples, so one
    # compiled kernel serves every number of tiers
    frame_b: np.ndarray  # (K, G*H) layer 0's gate bias (input projection bias folded in)
    x_w: np.ndarray  # (K, max(layers-1, 1), H, G*H) input weights of layers 1.., transposed
    x_b: np.ndarray  # (K, layers, G*H) input biases (layer 0's unused: in frame_b)
    h_w: np.ndarray  # (K, layers, H, G*H) recurrent weights, transposed
    h_b: np.ndarray  # (K, layers, G*H)
    up_w: np.ndarray  # (K, H, U): tier k's first ratio * D columns upsample its output, D =
    # the next tier's G*H (folded) or mlp_hidden; U the widest
    up_b: np.ndarray  # (K, U)
    up_cols: np.ndarray  # (K,) int64: ratio * D per tier
    table: np.ndarray  # (F_last, levels, mlp_hidden): embedding @ the first MLP layer, per position
    mlp_w: np.ndarray  # (mlp_hidden, mlp_hidden) the second hidden layer, transposed
    mlp_b: np.ndarray  # (mlp_hidden,)
    out_w: np.ndarray  # (mlp_hidden, levels) transposed
    out_b: np.ndarray  # (levels,)
    h0: np.ndarray  # (K, layers, H) the learned initial state
    c0: np.ndarray  # (K, layers, H) (zeros for the GRU)


def _linear(sd: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The weight of linear map ``name`` (float64): stored whole, or as weight normalisation's
    direction v and gain g (torch's parametrisation), w = g v / |v| per output row."""
    if f"{name}.weight" in sd:
        return sd[f"{name}.weight"]
    g = sd[f"{name}.parametrizations.weight.original0"]  # (out, 1)
    v = sd[f"{name}.parametrizations.weight.original1"]  # (out, in)
    return v * (g / np.sqrt(np.sum(v * v, axis=1, keepdims=True)))


def kernel_weights(spec: Any, weights: dict[str, np.ndarray]) -> SampleRNNWeights:
    """Fold and transpose a SampleRNN's weights (its state dict as arrays), computed in float64
    and stored in float32."""
    K, L, H = len(spec.frame_sizes), spec.layers, spec.hidden
    sd = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}

    def f32(a) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float32)

    def tier(k: int, name: str) -> np.ndarray:
        return sd[f"tiers.{k}.{name}"]

    ratios = spec.ratios()
    w_ih0 = [tier(k, "rnn.weight_ih_l0") for k in range(K)]  # (G*H, H)
    frame_w, frame_b, up_w, up_b = [], [], [], []
    for k in range(K):
        frame_w.append(f32((w_ih0[k] @ _linear(sd, f"tiers.{k}.inp")).T))
        frame_b.append(tier(k, "rnn.bias_ih_l0") + w_ih0[k] @ tier(k, "inp.bias"))
        w, b = _linear(sd, f"tiers.{k}.up"), tier(k, "up.bias")  # (ratio * D, H), (ratio * D,)
        if k + 1 < K:  # fold the next tier's first input matrix into each position's block
            nxt = w_ih0[k + 1]
            w = np.concatenate([nxt @ blk for blk in np.split(w, ratios[k])])
            b = np.concatenate([nxt @ blk for blk in np.split(b, ratios[k])])
        up_w.append(f32(w.T))
        up_b.append(f32(b))
    F, E, M = spec.frame_sizes[-1], spec.embedding, spec.mlp_hidden
    w_in = _linear(sd, "mlp_in").reshape(M, E, F)  # embedding-major inputs
    table = np.einsum("qe,mei->iqm", sd["embed.weight"], w_in)

    def stacked(name: str, layers: range) -> np.ndarray:
        return f32([[tier(k, f"rnn.{name}_l{j}").T for j in layers] for k in range(K)])

    x_w = stacked("weight_ih", range(1, L)) if L > 1 else np.zeros((K, 1, H, w_ih0[0].shape[0]))
    c0 = [tier(k, "c0") for k in range(K)] if spec.cell == "lstm" else np.zeros((K, L, H))
    width = max(w.shape[1] for w in up_w)
    return SampleRNNWeights(
        cell=CELL_CODES[spec.cell],
        frames=np.array(spec.frame_sizes, np.int64),
        scaled=f32((np.arange(spec.levels) / (spec.levels / 2) - 1.0) * 2.0),
        frame_w=f32([_pad(w, (spec.frame_sizes[0], w.shape[1])) for w in frame_w]),
        frame_b=f32(frame_b),
        x_w=f32(x_w),
        x_b=f32([[tier(k, f"rnn.bias_ih_l{j}") for j in range(L)] for k in range(K)]),
        h_w=stacked("weight_hh", range(L)),
        h_b=f32([[tier(k, f"rnn.bias_hh_l{j}") for j in range(L)] for k in range(K)]),
        up_w=f32([_pad(w, (H, width)) for w in up_w]),
        up_b=f32([_pad(b, (width,)) for b in up_b]),
        up_cols=np.array([w.shape[1] for w in up_w], np.int64),
        table=f32(table),
        mlp_w=f32(_linear(sd, "mlp_hidden").T),
        mlp_b=f32(sd["mlp_hidden.bias"]),
        out_w=f32(_linear(sd, "mlp_out").T),
        out_b=f32(sd["mlp_out.bias"]),
        h0=f32([tier(k, "h0") for k in range(K)]),
        c0=f32(c0),
    )


def _pad(a: np.ndarray, shape: tuple) -> np.ndarray:
    out = np.zeros(shape)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


@numba.njit(**FAST)
def _cells(cell, gx, gh, h, c):
    """Every stream's cell update, in place: gx, gh (G, G*H); h, c (G, H)."""
    for s in range(h.shape[0]):
        _cell(cell, gx[s], gh[s], h[s], c[s])


@numba.njit(**FAST)
def _relu(a):
    for s in range(a.shape[0]):
        for m in range(a.shape[1]):
            a[s, m] = max(a[s, m], np.float32(0.0))


@numba.njit(**FAST)
def _group(
    cell, frames, scaled, frame_w, frame_b, x_w, x_b, h_w, h_b, up_w, up_b, up_cols, table,
    mlp_w, mlp_b, out_w, out_b, h, c, seq, T, n_free, temp_start, temp_end, top_p, uniforms,
    level_values, pred, out, ups_all, phase, offset, span, s0, s1,
):  # fmt: skip
    """Streams s0..s1 from the first prediction to the last sample, time outermost.

    h, c: (K, layers, B, H) state, updated in place; seq: (B, lookback + T + n_free) padding,
    seed, and room for the take, filled in place; pred (B, T), out (B, n_free) as in
    :meth:`~noizenet.models.samplernn_net.SampleRNN.reference`. ups_all (K, B, U): each tier's
    latest output, updated in place. A take continued over calls: ``phase`` is the take's step
    of this call's first (the frame grid), ``offset`` the free steps before it and ``span`` the
    take's (the temperature schedule).
    """
    K, L = h.shape[0], h.shape[1]
    G = s1 - s0
    GH, M, Q = h_w.shape[3], mlp_w.shape[0], out_w.shape[1]
    FK, lb = frames[K - 1], frames[0] - 1
    hg = np.ascontiguousarray(h[:, :, s0:s1, :])  # (K, L, G, H)
    cg = np.ascontiguousarray(c[:, :, s0:s1, :])
    ups = np.ascontiguousarray(ups_all[:, s0:s1, :])  # each tier's latest output
    gx0 = np.empty((G, GH), dtype=np.float32)
    gx = np.empty((G, GH), dtype=np.float32)
    gh = np.empty((G, GH), dtype=np.float32)
    a = np.empty((G, M), dtype=np.float32)
    z2 = np.empty((G, M), dtype=np.float32)
    logits = np.empty((G, Q), dtype=np.float32)
    z = np.empty((G, Q), dtype=np.float64)
    probs = np.empty((G, Q), dtype=np.float32)
    bits = np.empty((G, Q), dtype=np.int32)
    steps = T + n_free - 1 if n_free > 0 else T
    for t in range(steps):
        p = t + lb + 1  # the sample being predicted, in seq
        tt = t + phase  # the step in the take: the frame grid
        for k in range(K):
            F = frames[k]
            if tt % F != 0:
                continue
            fw = frame_w[k]
            for s in range(G):
                row = seq[s0 + s]
                for r in range(GH):
                    gx0[s, r] = frame_b[k, r]
                if k > 0:
                    off = (tt % frames[k - 1]) // F * GH
                    for r in range(GH):
                        gx0[s, r] += ups[k - 1, s, off + r]
                for i in range(F):
                    v = scaled[row[p - F + i]]
                    for r in range(GH):
                        gx0[s, r] += fw[i, r] * v
            _gemm_columns(h_w[k, 0], h_b[k, 0], hg[k, 0], gh, 0, GH)
            _cells(cell, gx0, gh, hg[k, 0], cg[k, 0])
            for layer in range(1, L):
                _gemm_columns(x_w[k, layer - 1], x_b[k, layer], hg[k, layer - 1], gx, 0, GH)
                _gemm_columns(h_w[k, layer], h_b[k, layer], hg[k, layer], gh, 0, GH)
                _cells(cell, gx, gh, hg[k, layer], cg[k, layer])
            _gemm_columns(up_w[k], up_b[k], hg[k, L - 1], ups[k], 0, up_cols[k])
        off = (tt % FK) * M
        for s in range(G):
            row = seq[s0 + s]
            for m in range(M):
                a[s, m] = ups[K - 1, s, off + m]
            for i in range(FK):
                emb = table[i, row[p - FK + i]]
                for m in range(M):
                    a[s, m] += emb[m]
        _relu(a)
        _gemm_columns(mlp_w, mlp_b, a, z2, 0, M)
        _relu(z2)
        _gemm_columns(out_w, out_b, z2, logits, 0, Q)
        for s in range(G):
            b = s0 + s
            if t < T:
                pred[b, t] = _expected(logits[s], level_values, z[s], probs[s], bits[s])
            if n_free > 0 and t >= T - 1:
                j = t - (T - 1)
                frac = (offset + j) / (span - 1) if span > 1 else 0.0
                temp = temp_start[b] + (temp_end[b] - temp_start[b]) * frac
                v = _sample(logits[s], temp, top_p, uniforms[b, j], z[s], probs[s], bits[s])
                out[b, j] = v
                seq[b, p] = v
    h[:, :, s0:s1, :] = hg
    c[:, :, s0:s1, :] = cg
    ups_all[:, s0:s1, :] = ups


@numba.njit(parallel=True, **FAST)
def _groups(
    cell, frames, scaled, frame_w, frame_b, x_w, x_b, h_w, h_b, up_w, up_b, up_cols, table,
    mlp_w, mlp_b, out_w, out_b, h, c, seq, T, n_free, temp_start, temp_end, top_p, uniforms,
    level_values, pred, out, ups, phase, offset, span, group,
):  # fmt: skip
    """:func:`_group` for every group of ``group`` streams, the groups in parallel."""
    B = h.shape[2]
    for g in numba.prange((B + group - 1) // group):
        _group(cell, frames, scaled, frame_w, frame_b, x_w, x_b, h_w, h_b, up_w, up_b, up_cols,
               table, mlp_w, mlp_b, out_w, out_b, h, c, seq, T, n_free, temp_start, temp_end,
               top_p, uniforms, level_values, pred, out, ups, phase, offset, span, g * group,
               min((g + 1) * group, B))  # fmt: skip


_one_group = serial_twin(_groups)


def run(
    weights: SampleRNNWeights,
    forced: np.ndarray,
    n_free: int,
    sampling: Sampling,
    *,
    spec,
    group: int = GROUP,
    carry: Carry | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Prime on class indices ``forced`` (B, T), then sample ``n_free`` per stream: the
    contract of :meth:`~noizenet.models.samplernn_net.SampleRNN.reference`, ``carry`` included
    (tier states, their latest outputs, the frame phase and the samples frames read)."""
    n_free = max(int(n_free), 0)
    started = carry is not None and carry.started
    w = weights
    if started:
        st = carry.state
        h, c, ups, phase, seq = st["h"], st["c"], st["ups"], st["phase"], st["tail"]
        seq = np.concatenate([seq, np.full((seq.shape[0], n_free), spec.levels // 2)], axis=1)
        forced = seq[:, spec.lookback : spec.lookback + 1]
    forced, B, T, (t0, t1), uniforms, values = _prepare(spec, forced, n_free, sampling)
    if not started:
        h = np.repeat(w.h0[:, :, None, :], B, axis=2)  # (K, L, B, H)
        c = np.repeat(w.c0[:, :, None, :], B, axis=2)
        ups = np.zeros((len(spec.frame_sizes), B, w.up_w.shape[2]), np.float32)
        phase = 0
        seq = _padded(spec, forced, n_free)
    pred = np.zeros((B, T), np.float32)
    out = np.zeros((B, n_free), np.int64)
    offset = carry.steps if started else 0
    groups = _groups if group < B else _one_group  # one group: no parallel launch per call
    groups(w.cell, w.frames, w.scaled, w.frame_w, w.frame_b, w.x_w, w.x_b, w.h_w, w.h_b,
            w.up_w, w.up_b, w.up_cols, w.table, w.mlp_w, w.mlp_b, w.out_w, w.out_b, h, c, seq, T,
            n_free, t0, t1, float(sampling.top_p), uniforms, values, pred, out, ups, int(phase),
            int(offset), sampling.schedule_span(n_free), max(int(group), 1))  # fmt: skip
    if carry is not None:
        # the next call's first step is this one's after its last: its frames read the
        # lookback + 1 samples before the sample it predicts
        tail = np.ascontiguousarray(seq[:, seq.shape[1] - spec.lookback - 1 :])
        state = {"h": h, "c": c, "ups": ups, "phase": phase + T - 1 + n_free, "tail": tail}
        carry.advance(out, state)
    return pred, out


class SampleRNNKernel:
    """The family's :class:`~noizenet.models.base.Kernel`: a network's weights, folded once."""

    def __init__(self, spec: Any, weights: dict[str, np.ndarray]) -> None:
        self.spec = spec
        self.weights = kernel_weights(spec, weights)

    def run(
        self, forced: np.ndarray, n_free: int, sampling: Sampling, *, carry: Carry | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return run(self.weights, forced, n_free, sampling, spec=self.spec, carry=carry)
