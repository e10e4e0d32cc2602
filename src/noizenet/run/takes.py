"""Names of the audio a run folder holds: generated takes and reproductions.

One pair of functions makes and reads them, so that a name says what made the take (as
prism-samplernn's ``..._e=EPOCH_t=TEMPERATURE.wav`` do) and a report can caption it::

    gen_{seed}_e{epochs}[_ckpt-{checkpoint}][_inj-{mode}][_t{T}|_t{T0}-{T1}][_p{top_p}]_v{i}
    reproduction_{song}[_ckpt-{checkpoint}]

``seed`` is the seed's label (``perlin``, ``song-NAME``); it may itself hold underscores, so the
other fields are read from the end of the name. Numbers are written in their shortest form that
reads back exactly (``1`` for 1.0).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

GEN_PREFIX = "gen_"
REPRODUCTION_PREFIX = "reproduction_"
INJECTION_MODES = ("periodic", "stall")
_CHECKPOINT = re.compile(r"[a-z0-9]+")  # "best", "last", "epoch3": no "_" or "-" inside
_NUM = r"\d+(?:\.\d+)?(?:e[+-]?\d+)?"
_GEN = re.compile(
    rf"^{GEN_PREFIX}(?P<seed>.+)_e(?P<epochs>\d+)"
    r"(?:_ckpt-(?P<checkpoint>[a-z0-9]+))?"
    rf"(?:_inj-(?P<inject>{'|'.join(INJECTION_MODES)}))?"
    rf"(?:_t(?P<t0>{_NUM})(?:-(?P<t1>{_NUM}))?)?"
    rf"(?:_p(?P<top_p>{_NUM}))?"
    r"_v(?P<variation>\d+)$"
)
_REPRODUCTION = re.compile(
    rf"^{REPRODUCTION_PREFIX}(?P<seed>.+?)(?:_ckpt-(?P<checkpoint>[a-z0-9]+))?$"
)


@dataclass(frozen=True)
class TakeName:
    """What a take's file name records.

    For a reproduction, ``seed`` is the reproduced song's stem and only ``checkpoint`` is used
    besides it.
    """

    seed: str  # the seed's label: perlin, white, silence, song-NAME (or the reproduced song)
    epochs: int = 0  # epochs the weights had trained
    variation: int = 0
    inject: str | None = None  # regression heads: the noise injection mode, if any
    temperature: tuple[float, float] | None = None  # categorical heads: (start, end)
    top_p: float | None = None  # categorical heads, when below 1
    checkpoint: str | None = None  # the weights, when not the run's final model.safetensors
    reproduction: bool = False


def take_name(t: TakeName) -> str:
    """The file stem (no ``.wav``) for a take; raises ValueError for a field it cannot hold."""
    if not t.seed:
        raise ValueError("take name: empty seed label")
    tail = f"_ckpt-{_checkpoint(t.checkpoint)}" if t.checkpoint is not None else ""
    if t.reproduction:
        return f"{REPRODUCTION_PREFIX}{t.seed}{tail}"
    if t.epochs < 0 or t.variation < 0:
        raise ValueError(f"take name: negative epochs or variation in {t}")
    if t.inject is not None:
        if t.inject not in INJECTION_MODES:
            raise ValueError(f"take name: unknown injection mode {t.inject!r}")
        tail += f"_inj-{t.inject}"
    if t.temperature is not None:
        t0, t1 = t.temperature
        tail += f"_t{_number(t0)}" if t0 == t1 else f"_t{_number(t0)}-{_number(t1)}"
    if t.top_p is not None:
        tail += f"_p{_number(t.top_p)}"
    return f"{GEN_PREFIX}{t.seed}_e{t.epochs}{tail}_v{t.variation}"


def parse_take_name(stem: str) -> TakeName | None:
    """The :class:`TakeName` a file stem was made from, or None for a name not made here."""
    m = _REPRODUCTION.match(stem)
    if m:
        return TakeName(m["seed"], checkpoint=m["checkpoint"], reproduction=True)
    m = _GEN.match(stem)
    if not m:
        return None
    temperature = None
    if m["t0"] is not None:
        t0 = float(m["t0"])
        temperature = (t0, float(m["t1"]) if m["t1"] is not None else t0)
    return TakeName(
        seed=m["seed"],
        epochs=int(m["epochs"]),
        variation=int(m["variation"]),
        inject=m["inject"],
        temperature=temperature,
        top_p=float(m["top_p"]) if m["top_p"] is not None else None,
        checkpoint=m["checkpoint"],
    )


def _checkpoint(tag: str) -> str:
    if not _CHECKPOINT.fullmatch(tag):
        raise ValueError(f"take name: checkpoint tag {tag!r} must be lower-case letters and digits")
    return tag


def _number(x: float) -> str:
    """Shortest text that reads back as exactly ``x``: 1.0 -> '1', 0.9 -> '0.9'."""
    x = float(x)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"take name: {x!r} is not a finite number >= 0")
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text
