"""The paper's experiments, measured: one registry, name -> what it reproduces and how.

Every experiment trains its runs on the embedded corpus (or ``data``), measures them against
baselines on a held-out track, and writes ``results.md`` (Markdown tables, notes, settings,
figure links), ``results.csv`` and ``figures/`` (and ``audio/`` where it generates) into
``OUT/NAME/``. Trained runs live in ``OUT/runs/`` and are reused by every experiment that
asks for the same config. Results are seeded: the same command gives the same tables on the
same device.

Example
-------
>>> from noizenet.experiments import run_experiment
>>> md = run_experiment("reproduction", out="runs/experiments", scale="quick")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noizenet.errors import NoizeNetError


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str  # one line
    paper: str  # where in the paper
    function: str  # "module:function" in this package, imported when the experiment runs

    def load(self) -> Callable[[Any], Any]:

        module, func = self.function.split(":")
        return getattr(importlib.import_module(f"noizenet.experiments.{module}"), func)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "batching",
            "short independent windows vs stateful and whole-song training",
            "section 5.4.1, figure 17",
            "paper:batching",
        ),
        Experiment(
            "overfit",
            "LSTM without dropout on one song: loss curve and constant prediction",
            "section 5.5.1, figures 18 and 19",
            "paper:overfit",
        ),
        Experiment(
            "dropout",
            "the one-song LSTM with dropout 0.5, beside dropout 0",
            "section 5.5.1, figure 20",
            "paper:dropout",
        ),
        Experiment(
            "multisong",
            "LSTM on 10 songs with validation loss on a held-out song",
            "section 5.5.1, figures 21 and 22",
            "paper:multisong",
        ),
        Experiment(
            "reproduction",
            "LSTM and RNN predict an unseen song sample by sample: SNR vs persistence and LPC-32",
            "sections 5.5.2-5.5.3, figures 23-25 and the parameter table",
            "paper:reproduction",
        ),
        Experiment(
            "convergence",
            "every row of the convergence table trained and generated: measured collapse time",
            "section 5.6, its table and figure 26",
            "convergence:convergence",
        ),
        Experiment(
            "noise-injection",
            "free running without, with the authors' periodic and with stall-triggered noise",
            "section 5.7",
            "paper:noise_injection",
        ),
        Experiment(
            "fft",
            "FFT-block representations vs raw samples",
            "section 5.7.1",
            "paper:fft",
        ),
        Experiment(
            "categorical",
            "mu-law and linear 256-level softmax heads vs the paper's MSE model",
            "beyond the paper: the answer of WaveNet and SampleRNN to collapse",
            "paper:categorical",
        ),
        Experiment(
            "tiers",
            "flat LSTM (MSE, mu-law), 2-tier and 3-tier SampleRNN, each trained for the same "
            "time: held-out bits, classical floors, collapse and Frechet of 30 s takes",
            "beyond the paper: SampleRNN (Mehri et al. 2017) on a CPU budget",
            "tiers:tiers",
        ),
    )
}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise NoizeNetError(
            f"unknown experiment {name!r} (choose from {', '.join(EXPERIMENTS)} or 'all')"
        )
    return EXPERIMENTS[name]


def run_experiment(
    name: str,
    *,
    out: str | Path = "runs/experiments",
    data: str = "embedded",
    scale: str = "quick",
    seed: int = 0,
    fresh: bool = False,
    progress: bool = False,
    log: Callable[[str], Any] = print,
    options: dict[str, Any] | None = None,
    _trained: set[str] | None = None,
) -> Path:
    """Run one experiment into ``OUT/NAME/``; returns the path of its ``results.md``.

    Parameters
    ----------
    name : a key of :data:`EXPERIMENTS`
    out : output folder; trained runs are kept in ``OUT/runs`` and reused
    data : ``embedded`` (default) or a folder of songs
    scale : ``quick`` (minutes on a laptop CPU) or ``paper`` (the paper's sizes)
    seed : fixes data split, initialisation, dropout and generation
    fresh : retrain runs even if ``OUT/runs`` holds them
    options : the experiment's own settings (tiers: ``max_time``, ``jobs``, ``threads``,
        ``val_source``, ``seconds``, ``offset``, ``take_seconds``; see :mod:`.tiers`)
    """
    from noizenet.experiments.base import Context, write_result

    exp = get_experiment(name)
    ctx = Context(
        name,
        out=Path(out),
        data=data,
        scale=scale,
        seed=seed,
        progress=progress,
        log=log,
        fresh=fresh,
        trained=_trained,
        options=options,
    )
    t0 = time.perf_counter()
    log(f"== {name} ({exp.paper}): {exp.description} [scale {scale}]")
    result = exp.load()(ctx)
    md = write_result(ctx, exp.description, exp.paper, result)
    log(f"== {name} finished in {time.perf_counter() - t0:.0f} s -> {md}")
    return md


def run_all(**kwargs: Any) -> list[Path]:
    """Every experiment in registry order, sharing trained runs; returns the results.md paths."""
    trained: set[str] = set()
    return [run_experiment(name, _trained=trained, **kwargs) for name in EXPERIMENTS]
