"""How a free-running model picks each next value: noise injection (regression heads) and
sampling settings (categorical heads), shared by every family's kernel and reference path.

Plain data and parsing only (no numba, no torch), so the command line, the generation config
and the kernels all read one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from noizenet.config import parse_injection, parse_temperature

INJECT_NONE = 0
INJECT_PERIODIC = 1  # every K steps the fed-back value is multiplied by a draw from N(-1, 1)
INJECT_STALL = 2  # when the last M outputs span less than EPS, add N(0, SIGMA) noise


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
        """``periodic:K`` or ``stall:M:EPS:SIGMA`` (None or 'none': no injection); see
        :func:`noizenet.config.parse_injection`."""
        mode, params = parse_injection(text)
        return Injection(_MODES[mode], **params)

    @property
    def text(self) -> str:
        """The injection as :meth:`parse` reads it."""
        if self.mode == INJECT_PERIODIC:
            return f"periodic:{self.period}"
        if self.mode == INJECT_STALL:
            return f"stall:{self.window}:{self.eps!r}:{self.sigma!r}"
        return "none"

    @property
    def name(self) -> str | None:
        """The mode's name (``periodic``, ``stall``), None without injection."""
        return {INJECT_PERIODIC: "periodic", INJECT_STALL: "stall"}.get(self.mode)


_MODES = {"none": INJECT_NONE, "periodic": INJECT_PERIODIC, "stall": INJECT_STALL}


def temperature_schedules(text: str | float, streams: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) temperature per stream, from the text :func:`noizenet.config.parse_temperature`
    reads (its schedules cycled over ``streams``)."""
    schedules = parse_temperature(text)
    idx = np.arange(streams) % len(schedules)
    starts, ends = (np.asarray(v, np.float64)[idx] for v in zip(*schedules, strict=True))
    return starts, ends


@dataclass
class Sampling:
    """Everything the free-running part of a take needs besides the weights and the seed.

    Regression heads read ``injection`` and ``noise``; categorical heads read ``temperature``,
    ``top_p``, ``uniforms`` and ``level_values``. Random draws are made by the caller, so a fast
    kernel and its reference path can be compared on the same numbers.
    """

    injection: Injection = field(default_factory=Injection)
    noise: np.ndarray | None = None  # (streams, n_free[, dim]) N(0, 1) draws for injection
    # (start, end) per stream, linear over the take; a float is one constant temperature
    temperature: tuple[np.ndarray, np.ndarray] | float = 1.0
    top_p: float = 1.0  # sample from the smallest set of classes holding this mass
    uniforms: np.ndarray | None = None  # (streams, n_free) U(0, 1) draws, one per sampled value
    level_values: np.ndarray | None = None  # (levels,) the value of each class (expected value)
    # free steps of the whole take, which the temperature schedule spans, when it is generated
    # over several calls (:class:`noizenet.models.base.Carry`); None: this call's n_free
    span: int | None = None

    def schedule_span(self, n_free: int) -> int:
        """Free steps the temperature moves over: the take's (``span``) or this call's."""
        return int(n_free if self.span is None else self.span)

    def categorical_args(self, streams: int, n_free: int, *, levels: int | None = None) -> dict:
        """The settings as every family's categorical paths take them: per-stream (start, end)
        temperatures, the draws (absent: 0.5 each), ``top_p`` and the level values. Without
        ``level_values``, a family that passes ``levels`` gets the class indices; one that
        does not is refused (its fed-back input is the class's value, so indices would be
        wrong silently)."""
        temps = self.temperature
        if isinstance(temps, tuple):
            temps = tuple(np.broadcast_to(np.asarray(t, np.float64), streams).copy() for t in temps)
        else:
            temps = (np.full(streams, float(temps)), np.full(streams, float(temps)))
        uniforms = self.uniforms
        if uniforms is None:
            uniforms = np.full((streams, max(n_free, 1)), 0.5)
        uniforms = np.ascontiguousarray(uniforms, dtype=np.float64)
        if n_free > 0 and uniforms.shape != (streams, n_free):
            raise ValueError(
                f"sampling.uniforms: expected shape {(streams, n_free)}, got {uniforms.shape}"
            )
        if self.level_values is not None:
            values = np.ascontiguousarray(self.level_values, dtype=np.float64)
        elif levels is not None:
            values = np.arange(levels, dtype=np.float64)
        else:
            raise ValueError(
                "sampling.level_values: a categorical head needs the value of each class"
            )
        return {"level_values": values, "temperature": temps, "top_p": self.top_p,
                "uniforms": uniforms}  # fmt: skip


def sample(logits: np.ndarray, temperature: float, top_p: float, u: float) -> int:
    """Inverse-CDF draw from softmax(logits / temperature), restricted to the top-p nucleus."""
    if temperature <= 0:
        return int(np.argmax(logits))
    z = (np.asarray(logits, np.float64) - np.max(logits)) / temperature
    probs = np.exp(z)
    total = probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cum = np.cumsum(probs[order])
        n_kept = int(np.searchsorted(cum, top_p * total)) + 1  # first mass >= top_p
        n_kept = min(n_kept, probs.size)
        kept = order[:n_kept]
        pick = int(np.searchsorted(np.cumsum(probs[kept]), u * cum[n_kept - 1]))
        return int(kept[min(pick, n_kept - 1)])
    return int(min(np.searchsorted(np.cumsum(probs), u * total), probs.size - 1))
