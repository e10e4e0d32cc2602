"""Operations on a model's carried state, whatever its family: a dict of named tensors, each
with its streams along the axis ``model.state_stream_dims()`` declares (see
:mod:`noizenet.models.base`). The trainer, checkpoints and DDP use these and nothing else."""

from __future__ import annotations

import torch

from noizenet.models.base import State


def detach(state: State) -> State:
    """Cut the graph between chunks (truncated BPTT) but keep the values."""
    return {k: v.detach() for k, v in state.items()}


def reset_streams(
    state: State, reset: torch.Tensor, dims: dict[str, int], start: State | None = None
) -> State:
    """Restart the streams where ``reset`` (streams,) is true: a new song starts there. They
    take ``start`` (the model's ``init_state``, which may be learned), or zeros without it."""
    keep = ~reset
    out = {}
    for name, v in state.items():
        shape = [1] * v.dim()
        shape[dims[name]] = -1
        k = keep.view(shape)
        out[name] = (
            v * k.to(v.dtype) if start is None else torch.where(k, v, start[name].to(v.dtype))
        )
    return out


def as_float32(state: State) -> State:
    """The carried state is kept in fp32 (autocast may hand it back in bf16 or fp16)."""
    return {k: v.float() for k, v in state.items()}


def finite(state: State) -> State:
    """Non-finite entries zeroed (a reset multiplies by 0, which keeps NaN); others untouched."""
    return {k: torch.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in state.items()}
