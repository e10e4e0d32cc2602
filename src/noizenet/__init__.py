"""NoizeNet: recurrent networks (RNN, LSTM, GRU) that learn raw audio and generate from a seed.

The Python API mirrors the command line::

    import noizenet
    run = noizenet.train(noizenet.Config(), "runs/mine")
    takes = noizenet.generate(run, seed="perlin", seconds=10)
    rep = noizenet.reproduce(run, "unseen.wav")

Heavy modules (torch, librosa) are imported on first use, so ``import noizenet`` is cheap.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from noizenet.config import Config, GenerationConfig
from noizenet.errors import NoizeNetError

__version__ = "0.1.0"
__all__ = [
    "Config",
    "GenerationConfig",
    "NoizeNetError",
    "__version__",
    "demo",
    "evaluate",
    "generate",
    "reproduce",
    "train",
]


def train(config: Config, out: Any, *, figures: bool = True, **kwargs: Any) -> Any:
    """Train into a run folder; see :func:`noizenet.train.train`. Like ``noizenet train``, then
    draws the loss curve and writes the run's report (``figures=False``: neither)."""
    from noizenet.train import train as _train

    run = _train(config, out, **kwargs)
    if figures and run is not None:
        from noizenet.report import finish_run

        finish_run(run, log=kwargs.get("log", print))
    return run


def generate(run: Any, config: Any = None, **kwargs: Any) -> Any:
    """Generate takes from a run with a :class:`~noizenet.config.GenerationConfig` and/or
    keyword overrides of its fields; see :func:`noizenet.generate.generate`."""
    from noizenet.generate import generate as _generate

    return _generate(run, config, **kwargs)


def reproduce(run: Any, song: Any, **kwargs: Any) -> Any:
    """Teacher-forced reproduction of a song; see :func:`noizenet.generate.reproduce`."""
    from noizenet.generate import reproduce as _reproduce

    return _reproduce(run, song, **kwargs)


def evaluate(run: Any, **kwargs: Any) -> Any:
    """Metrics of a run on held-out tracks, beside baselines; see
    :func:`noizenet.analysis.evaluate.evaluate`."""
    from noizenet.analysis.evaluate import evaluate as _evaluate

    return _evaluate(run, **kwargs)


def demo(out: Any = "runs/demo", **kwargs: Any) -> Any:
    """The whole pipeline on the embedded corpus; see :func:`noizenet.demo.run_demo`."""
    from noizenet.demo import run_demo

    return run_demo(out, **kwargs)


# ``noizenet.train``, ``noizenet.generate`` and ``noizenet.demo`` name both a function above and
# a subpackage. Importing the subpackage (which the function itself does) makes Python set the
# package's attribute to the module, and a second ``noizenet.train(...)`` would then fail with
# "'module' object is not callable". So the subpackage, once imported, is made callable: calling
# it calls the function, and it stays the module for ``import noizenet.train.trainer as t``.
_TWINS = {"train": train, "generate": generate, "demo": demo}


class _CallableModule(types.ModuleType):
    """A subpackage that, called, runs the API function of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _TWINS[self.__name__.rpartition(".")[2]](*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _TWINS and isinstance(value, types.ModuleType):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
