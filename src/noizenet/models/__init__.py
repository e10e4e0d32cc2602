"""Model families behind one interface (see :mod:`noizenet.models.base` for the contract).

``flat`` is the paper's RNN | LSTM | GRU stack -> dropout -> head; ``samplernn`` frame-level
tiers over a sample-level MLP (:mod:`noizenet.models.samplernn`). Everything outside this
package reaches a model through :func:`build`, :func:`family_of` and the family's module.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from noizenet.errors import ConfigError
from noizenet.models import flat, samplernn
from noizenet.models.base import Carry, Family, Kernel, Model, Spec, State
from noizenet.models.flat import ModelSpec

FAMILIES: dict[str, ModuleType] = {flat.NAME: flat, samplernn.NAME: samplernn}


def register(module: ModuleType) -> None:
    """Add a family module (one that provides :class:`~noizenet.models.base.Family`'s names)."""
    FAMILIES[module.NAME] = module


def family_of(spec_or_name: Any) -> Any:
    """The family module of a spec, a model, or a family name."""
    name = spec_or_name
    if not isinstance(name, str):
        name = getattr(getattr(spec_or_name, "spec", spec_or_name), "family", flat.NAME)
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(
            f"model.family: unknown family {name!r} (choose from {', '.join(FAMILIES)})"
        ) from None


def build(spec: Spec) -> Model:
    """The family's network for ``spec`` (fresh weights)."""
    return family_of(spec).build(spec)


def weight_arrays(model: Model) -> dict[str, np.ndarray]:
    """A network's state dict as float32 numpy arrays (what a family's kernel reads)."""
    return {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}


def kernel_of(model: Model) -> Kernel | None:
    """The family's fast path on a built network's current weights (None: it has none)."""
    return family_of(model.spec).kernel(model.spec, weight_arrays(model))


def generation_path(kernel: Kernel | None, network: Callable[[], Model]) -> Callable[..., Any]:
    """How to run a family's weights (``(forced, n_free, sampling, carry=None) -> (pred,
    out)``): its fast ``kernel``, or the reference path of ``network()`` when the family has
    none (slow but correct; the network, and torch, are only made then)."""
    return kernel.run if kernel is not None else network().reference


def __getattr__(name: str) -> Any:
    """The networks, imported on first use: they need torch, the families do not."""
    if name in ("NoizeNet", "OutputDropout"):
        from noizenet.models import flat_net

        return getattr(flat_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def spec_from_dict(raw: dict[str, Any]) -> Spec:
    """A spec saved with weights or in a checkpoint; one without ``family`` is a flat spec, so
    run folders and checkpoints from before families load unchanged."""
    return family_of(str(raw.get("family", flat.NAME))).spec_from_dict(dict(raw))


def config_family(model_cfg: Any) -> Any:
    """The family a ``[model]`` config section trains (``model.family``; flat by default)."""
    return family_of(str(getattr(model_cfg, "family", flat.NAME)))


def spec_from_config(model_cfg: Any, codec: Any) -> Spec:
    """The spec a run trains, from its ``[model]`` section and the fitted codec."""
    return config_family(model_cfg).spec_from_config(model_cfg, codec=codec)


__all__ = [
    "FAMILIES",
    "Carry",
    "Family",
    "Kernel",
    "Model",
    "ModelSpec",
    "NoizeNet",
    "OutputDropout",
    "Spec",
    "State",
    "build",
    "config_family",
    "family_of",
    "generation_path",
    "kernel_of",
    "register",
    "spec_from_config",
    "spec_from_dict",
    "weight_arrays",
]
