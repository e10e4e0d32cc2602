"""How much memory a training step takes, measured before the first step.

``noizenet train --batch 4096 --chunk 65536`` used to read the corpus, build the model and then
die in its first backward pass (or be killed by the kernel's OOM killer, with no message). The
bytes autograd keeps per input sample depend on the family, its sizes and the codec, so they are
measured, not modelled: one forward pass of one stream over a few samples, counting what autograd
saves (``torch.autograd.graph.saved_tensors_hooks``), scaled to the batch and chunk. Weights,
gradients and Adam's two moments add four copies of the parameters.
"""

from __future__ import annotations

from typing import Any

PROBE_STEPS = 64  # input samples of the probe (beside the model's lookback)
BACKWARD_FACTOR = 2  # the backward pass holds gradients as large as what it consumes


def saved_bytes_per_sample(model: Any, dim: int, device: Any) -> float:
    """Bytes autograd keeps per stream and input sample for ``model``, measured."""
    import torch

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}  # one tensor saved by several operations counts once

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    n = model.lookback + PROBE_STEPS
    x = torch.zeros((1, n, dim), device=device)
    # the probe draws its dropout masks from a forked generator: training's draws are unchanged
    with (
        torch.random.fork_rng(devices=[]),
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
    ):
        y, _ = model(x, model.init_state(1, device))
    return (sum(storages.values()) + y.numel() * y.element_size()) / n


def training_memory(model: Any, *, dim: int, batch: int, chunk: int, device: Any = "cpu") -> int:
    """Bytes one training step of ``batch`` streams x ``chunk`` samples needs (an estimate from
    a measured probe: activations kept for the backward pass, its gradients, and the weights with
    their gradients and optimizer moments)."""
    per_sample = saved_bytes_per_sample(model, dim, device)
    activations = per_sample * batch * (model.lookback + chunk) * BACKWARD_FACTOR
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) * 4
    return int(activations + weights)
