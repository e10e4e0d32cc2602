"""Figures only the experiments draw: collapse time per hyper-parameter value, and the first
samples of free-running predictions (the paper's figures 19 and 26). Display only; pyplot-free
Agg figures written atomically, like :mod:`noizenet.analysis.figures`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# one place for pyplot-free figures and their atomic saving
from noizenet.analysis.figures import _figure, _save


def collapse_grid(
    rows: Sequence[tuple[str, Sequence[tuple[str, float | None]]]],
    *,
    gen_seconds: float,
    out: Path,
    title: str | None = None,
) -> Path:
    """One small bar chart per hyper-parameter: collapse time (ms) of each value tried.

    ``rows`` is ``[(name, [(value label, collapse seconds or None), ...]), ...]``. A take that
    never collapsed is drawn as a hatched bar reaching the generated length.
    """
    n = len(rows)
    cols = 3
    nrows = -(-n // cols)
    top = gen_seconds * 1000
    with _figure((cols * 4.2, nrows * 2.6)) as fig:
        axes = fig.subplots(nrows, cols, squeeze=False)
        for ax in axes.flat[n:]:
            ax.set_axis_off()
        for ax, (name, values) in zip(axes.flat, rows, strict=False):
            labels = [v for v, _ in values]
            ms = [top if t is None else t * 1000 for _, t in values]
            never = [t is None for _, t in values]
            bars = ax.bar(range(len(values)), ms, color=["C2" if x else "C0" for x in never])
            for bar, x, v in zip(bars, never, ms, strict=True):
                if x:
                    bar.set_hatch("//")
                text = "never" if x else f"{v:.0f}"
                ax.annotate(text, (bar.get_x() + bar.get_width() / 2, max(v, 0.0)),
                            ha="center", va="bottom", fontsize="x-small")  # fmt: skip
            ax.set_xticks(range(len(values)), labels, fontsize="small", rotation=20)
            # symlog: the paper's few-millisecond collapses stay visible beside a whole take
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_ylim(0, top * 3)
            ax.set_title(name, fontsize="medium")
            ax.set_ylabel("collapse (ms)", fontsize="small")
        if title:
            fig.suptitle(title)
        return _save(fig, out)


def first_samples_figure(
    signals: Mapping[str, np.ndarray],
    *,
    n: int = 1000,
    out: Path,
    title: str | None = None,
) -> Path:
    """The first ``n`` samples of each signal against sample index, one panel per signal
    (the paper's figure 19: "prediction of 1000 amplitude samples")."""
    k = len(signals)
    with _figure((10.0, 2.2 * k + 0.4)) as fig:
        axes = fig.subplots(k, 1, squeeze=False, sharex=True)[:, 0]
        for i, (ax, (name, y)) in enumerate(zip(axes, signals.items(), strict=True)):
            seg = np.asarray(y)[:n]
            ax.plot(np.arange(seg.size), seg, color=f"C{i}", linewidth=0.8)
            ax.set_title(name, fontsize="medium")
            ax.set_ylabel("amplitude")
            ax.grid(True, alpha=0.3)
        axes[-1].set_xlabel("sample")
        if title:
            fig.suptitle(title)
        return _save(fig, out)


def bits_bar_chart(bits: Mapping[str, float], *, out: Path, title: str | None = None) -> Path:
    """Horizontal bars of bits/sample per contender (models and classical baselines), each
    labelled with its value; 8 bits (a uniform guess over 256 levels) is drawn as a line."""
    names = list(bits)
    values = [float(bits[k]) for k in names]
    with _figure((9.0, 0.5 * len(names) + 1.4)) as fig:
        ax = fig.subplots()
        colors = [
            "C7" if k.startswith(("no context", "LPC", "persistence")) else "C0" for k in names
        ]
        bars = ax.barh(range(len(names)), values, color=colors)
        for bar, v in zip(bars, values, strict=True):
            ax.annotate(f"{v:.2f}", (v, bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize="small")  # fmt: skip
        ax.set_yticks(range(len(names)), names, fontsize="small")
        ax.invert_yaxis()
        ax.axvline(8.0, color="k", linewidth=0.8, linestyle="--")
        ax.set_xlim(0, max([8.5, *values]) * 1.08)
        ax.set_xlabel("bits per sample on held-out audio")
        ax.grid(True, axis="x", alpha=0.3)
        if title:
            ax.set_title(title)
        return _save(fig, out)


def spectrogram_stack(
    signals: Mapping[str, np.ndarray], *, sr: float, out: Path, title: str | None = None
) -> Path:
    """One full-width log-frequency spectrogram per signal, stacked, on one dB scale: tones
    read as lines, rhythm as vertical stripes, noise as an even wash, silence as dark."""
    from noizenet.analysis.figures import plot_spectrogram

    k = len(signals)
    with _figure((11.0, 2.1 * k + 0.5)) as fig:
        axes = fig.subplots(k, 1, squeeze=False)[:, 0]
        for ax, (name, y) in zip(axes, signals.items(), strict=True):
            plot_spectrogram(ax, np.asarray(y), sr=sr, scale="log", title=name)
        if title:
            fig.suptitle(title)
        return _save(fig, out)
