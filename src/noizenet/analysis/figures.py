"""Figures of the paper's views, loss curves and model comparisons (display only).

The numbers come from :mod:`noizenet.analysis.views`; this module only draws them.

Everything here uses :class:`matplotlib.figure.Figure` with a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` attached directly: ``pyplot`` is
never imported (not even through ``librosa.display``, which would import it), so the
functions do not touch a notebook's global pyplot state, never open windows and can run
in worker threads.  matplotlib is imported lazily inside the functions.

The ``plot_*`` functions draw onto any :class:`matplotlib.axes.Axes` you pass (including a
pyplot one).  The other functions write PNG files at ``dpi=100``; each file is written to a
temporary name in the destination folder and then moved into place with
:func:`os.replace`, so an interrupted run never leaves a half-written PNG.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from noizenet.analysis import views
from noizenet.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "audio_figures",
    "comparison_figure",
    "loss_figure",
    "loss_figure_multi",
    "plot_envelope",
    "plot_spectrogram",
    "plot_waveform",
    "spectrogram_strip",
    "wav_figures",
]

DPI = 100
#: Size in inches of one panel (1000 x 300 px at ``DPI``).
PANEL_SIZE = (10.0, 3.0)
#: Waveforms longer than this are drawn as a min/max band instead of a line.
MAX_LINE_POINTS = 100_000
#: Spectrograms wider than this many frames are max-pooled in time before drawing (a panel's
#: axes are about 900 px wide: more columns cost drawing time and show nothing more).
MAX_SPEC_COLUMNS = 1_000
SPEC_CMAP = "magma"
TOP_DB = 80.0
N_FFT = 1024
HOP_LENGTH = 256
LOG_FREQ_TICKS = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000)
SCALES = ("linear", "log")
#: zlib level of the PNGs: 1, not PIL's 6. A spectrogram of noise hardly compresses, and at 6
#: encoding was a quarter of a take's figure time; at 1 the files are somewhat larger.
PNG_COMPRESSION = 1
#: Samples the figures of a sound file read at a time (1 MB of float32); a spectrogram chunk
#: reads ``SPEC_CHUNK_FRAMES`` frames' worth.
READ_BLOCK = 1 << 18
SPEC_CHUNK_FRAMES = 512


# --------------------------------------------------------------------------- helpers


def _new_figure(figsize: tuple[float, float], layout: str | None = "constrained") -> Figure:
    """A pyplot-free figure with an Agg canvas and constrained layout (or fixed margins)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def prepare_in_background() -> threading.Thread:
    """Import matplotlib and load its fonts in a daemon thread, for a caller that draws after a
    long computation which releases the GIL (a generation kernel): about 0.3 s of a take's
    start-up then overlaps the generation instead of following it. Drawing needs no join: an
    import still running in the thread is waited for by Python's import lock."""

    def warm() -> None:
        # only a head start: the drawing imports it again, and says what failed
        with contextlib.suppress(Exception), _figure((1.0, 1.0), layout=None) as fig:
            fig.text(0.5, 0.5, "0.5 Hz")
            fig.canvas.draw()

    thread = threading.Thread(target=warm, name="noizenet-figures", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _figure(figsize: tuple[float, float], layout: str | None = "constrained") -> Iterator[Figure]:
    """Yield a new figure and release its artists afterwards, whatever happens: its axes are
    taken off it, not cleared (clearing builds every axis's ticks anew: a fifth of a take's
    figure time), and the cycles left are the garbage collector's."""
    fig = _new_figure(figsize, layout)
    try:
        yield fig
    finally:
        for ax in tuple(fig.axes):
            fig.delaxes(ax)


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (temp file in the same folder + rename)."""

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png", pil_kwargs={"compress_level": PNG_COMPRESSION})
    return path


def _save_pixels(pixels: np.ndarray, path: Path) -> Path:
    """Write an RGBA raster (height, width, 4) uint8 as PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(pixels, "RGBA").save(tmp, format="PNG", compress_level=PNG_COMPRESSION)
    return path


@dataclass(frozen=True)
class _Samples:
    """A mono signal read a range at a time: an array in memory, or a sound file read from
    disk block by block, so the figures of a 10-minute take never hold the take whole."""

    size: int
    read: Callable[[int, int], np.ndarray]  # y[a:b] as float32, for 0 <= a <= b <= size

    def segment(self, a: int, b: int) -> np.ndarray:
        """``y[a:b]`` with zeros where the range runs past either end (a copy of that range)."""
        out = np.zeros(b - a, dtype=np.float32)
        lo, hi = max(a, 0), min(b, self.size)
        if hi > lo:
            out[lo - a : hi - a] = self.read(lo, hi)
        return out

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(start, samples) of consecutive blocks of ``READ_BLOCK`` covering the signal."""
        for b0 in range(0, self.size, READ_BLOCK):
            yield b0, self.read(b0, min(b0 + READ_BLOCK, self.size))


def _samples(y: np.ndarray | _Samples) -> _Samples:
    if isinstance(y, _Samples):
        return y
    y = np.asarray(y, dtype=np.float32)
    return _Samples(y.size, lambda a, b: y[a:b])


@contextlib.contextmanager
def _file_samples(path: Path) -> Iterator[tuple[_Samples, int]]:
    """(samples, sample rate) of a sound file, read by range; several channels are averaged.
    A range with NaN or infinite samples raises ValueError naming the file."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as fh:

        def read(a: int, b: int) -> np.ndarray:
            fh.seek(a)
            x = fh.read(b - a, dtype="float32", always_2d=True)
            x = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)
            if not np.isfinite(x).all():
                raise ValueError(f"{path}: the audio has NaN or infinite samples")
            return x

        if fh.frames == 0:
            raise ValueError(f"{path}: the audio file holds no samples")
        yield _Samples(int(fh.frames), read), int(fh.samplerate)


def _spectrogram_db(
    y: np.ndarray | _Samples,
    *,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    top_db: float = TOP_DB,
) -> tuple[np.ndarray, int]:
    """:func:`noizenet.analysis.views.spectrogram_db` max-pooled in time to at most
    ``MAX_SPEC_COLUMNS`` columns, with numpy alone, a few hundred frames at a time: a long
    take costs neither librosa's import (a second or more at start-up) nor a full-size
    spectrogram, nor the take itself, in memory. Returns (dB (bins, columns), frames per
    column)."""
    y = _samples(y)
    size = max(y.size, n_fft)  # a signal shorter than a frame is padded to one
    frames = 1 + size // hop_length
    pool = max(1, math.ceil(frames / MAX_SPEC_COLUMNS))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    columns = math.ceil(frames / pool)
    S = np.empty((n_fft // 2 + 1, columns), dtype=np.float32)
    per = max(1, SPEC_CHUNK_FRAMES // pool)  # columns per chunk: about 2 MB of frames
    for c0 in range(0, columns, per):
        c1 = min(c0 + per, columns)
        f0, f1 = c0 * pool, min(c1 * pool, frames)  # frame i: y[i * hop - n_fft // 2 :][:n_fft]
        lo = f0 * hop_length - n_fft // 2
        part = y.segment(lo, (f1 - 1) * hop_length + n_fft - n_fft // 2)
        chunk = np.lib.stride_tricks.sliding_window_view(part, n_fft)[::hop_length] * window
        mag = np.abs(np.fft.rfft(chunk, axis=1)).astype(np.float32, copy=False)  # (frames, bins)
        mag = np.pad(mag, ((0, (c1 - c0) * pool - (f1 - f0)), (0, 0)))  # last column: zeros
        S[:, c0:c1] = mag.reshape(c1 - c0, pool, -1).max(axis=1).T
    peak = float(S.max())
    if not peak > 0:
        return np.full(S.shape, -float(top_db), dtype=np.float32), pool
    db = 20.0 * np.log10(np.maximum(S, 1e-5)) - 20.0 * math.log10(max(peak, 1e-5))
    return np.maximum(db, -float(top_db)), pool


def _envelope(
    y: np.ndarray | _Samples, *, sr: float, frame_ms: float = 20.0, hop_ms: float = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`noizenet.analysis.views.envelope` (centred frames, zero padding) from running
    sums of squares, with numpy alone. The sums are taken a block at a time and kept only
    where a frame starts or ends: a 10-minute take needs a few MB, not three float64 copies."""
    y = _samples(y)
    frame = max(1, round(frame_ms * sr / 1000.0))
    hop = max(1, round(hop_ms * sr / 1000.0))
    n = 1 + y.size // hop
    starts = np.arange(n) * hop
    # frame i covers y[starts[i] - frame // 2 : starts[i] - frame // 2 + frame], zeros outside
    edges = np.clip(np.concatenate([starts, starts + frame]) - frame // 2, 0, y.size)
    order = np.argsort(edges, kind="stable")
    at = np.zeros(edges.size, dtype=np.float64)  # sum of y[:edge] ** 2 at every edge
    total, i = 0.0, int(np.searchsorted(edges[order], 0, side="right"))  # edges at 0: 0
    for b0, seg in y.blocks():
        seg = seg.astype(np.float64)
        sums = np.concatenate([[total], total + np.cumsum(seg * seg)])  # sums[k]: y[:b0 + k]
        j = i + int(np.searchsorted(edges[order[i:]], b0 + seg.size, side="right"))
        at[order[i:j]] = sums[edges[order[i:j]] - b0]
        total, i = float(sums[-1]), j
    rms = np.sqrt(np.maximum(at[n:] - at[:n], 0.0) / frame)
    return starts / float(sr), rms.astype(np.float32)


def _duration(y: np.ndarray | _Samples, sr: float) -> float:
    return y.size / float(sr)


def _minmax_band(
    y: np.ndarray | _Samples, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin (start index, min, max) of ``y`` split into ``n_bins`` equal chunks (the last
    maybe shorter), a block of whole bins at a time."""
    y = _samples(y)
    per = math.ceil(y.size / n_bins)
    n_full = math.ceil(y.size / per)
    lo, hi = np.empty(n_full, np.float32), np.empty(n_full, np.float32)
    step = max(1, READ_BLOCK // per) * per  # whole bins per read
    for b0 in range(0, y.size, step):
        x = y.read(b0, min(b0 + step, y.size))
        whole = x.size // per
        k = b0 // per
        body = x[: whole * per].reshape(whole, per)  # a view
        lo[k : k + whole], hi[k : k + whole] = body.min(axis=1), body.max(axis=1)
        if x.size > whole * per:  # the short last bin
            lo[k + whole], hi[k + whole] = x[whole * per :].min(), x[whole * per :].max()
    return np.arange(n_full) * per, lo, hi


def _draw_waveform(
    ax: Axes,
    y: np.ndarray | _Samples,
    *,
    sr: float,
    t0: float = 0.0,
    label: str | None = None,
    **style: Any,
) -> Any:
    """Draw samples ``y`` starting at time ``t0``; long signals become a min/max band."""
    if y.size <= MAX_LINE_POINTS:
        y = _samples(y).read(0, y.size)
        t = t0 + np.arange(y.size) / float(sr)
        (artist,) = ax.plot(t, y, label=label, linewidth=0.8, **style)
    else:
        starts, lo, hi = _minmax_band(y, 4_000)
        t = t0 + starts / float(sr)
        artist = ax.fill_between(t, lo, hi, label=label, linewidth=0.5, step="post", **style)
    return artist


def _decorate_time_axis(ax: Axes) -> None:
    ax.set_xlabel("Time (s)")
    ax.margins(x=0)


def _draw_spectrogram(
    ax: Axes,
    S_db: np.ndarray,
    *,
    sr: float,
    n_fft: int,
    hop_length: int,
    duration: float,
    scale: str,
    top_db: float = TOP_DB,
    pooled: int = 1,
) -> Any:
    """A dB spectrogram as an image, frames centred on their times (``pooled``: frames per
    column already max-pooled), on a linear or log frequency axis."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    n_bins, n_frames = S_db.shape
    df = float(sr) / n_fft
    dt = hop_length / float(sr)

    # Max-pool long spectrograms in time: the figure has ~1000 px of width anyway.
    pool = max(1, math.ceil(n_frames / MAX_SPEC_COLUMNS))
    if pool > 1:  # pooled here as well, whatever was pooled before
        n_cols = math.ceil(n_frames / pool)
        pad = n_cols * pool - n_frames
        S_db = np.pad(S_db, ((0, 0), (0, pad)), mode="edge")
        S_db = S_db.reshape(n_bins, n_cols, pool).max(axis=2)
    pool *= pooled
    # Equal cells on both scales: an image, resampled once to the axes' pixels (each pixel
    # shows the bin under its centre, on a log axis too), 2-3x faster to draw than a mesh.
    # Column c is centred on frame c * pool, row k on k * df; the limits below clip the half
    # cells past 0 s, 0 Hz and the Nyquist frequency.
    t_lo, t_hi = -0.5 * pool * dt, (S_db.shape[1] - 0.5) * pool * dt
    f_lo, f_hi = -0.5 * df, (n_bins - 0.5) * df
    if scale == "log":  # drop the DC row: it has no place on a log axis
        S_db, f_lo = S_db[1:], 0.5 * df
    style = {"cmap": SPEC_CMAP, "vmin": -float(top_db), "vmax": 0.0, "interpolation": "nearest"}
    mesh = ax.imshow(S_db, origin="lower", aspect="auto", extent=(t_lo, t_hi, f_lo, f_hi), **style)
    ax.set_xlim(0.0, duration)
    if scale == "log":
        ax.set_yscale("log")
        lo, hi = f_lo, sr / 2.0
        ax.set_ylim(lo, hi)
        ticks = [f for f in LOG_FREQ_TICKS if lo <= f <= hi]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _pos: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}")
        )
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(0.0, sr / 2.0)
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Hz")
    return mesh


def _add_colorbar(ax: Axes, mesh: Any, cax: Axes | None = None) -> Any:
    fig = ax.get_figure()
    if cax is not None:
        cax.set_axis_on()
        cbar = fig.colorbar(mesh, cax=cax, format="%+.0f")
    else:
        cbar = fig.colorbar(mesh, ax=ax, format="%+.0f", pad=0.01, fraction=0.04)
    cbar.set_label("dB")
    return cbar


def _title(prefix: str | None, what: str) -> str:
    return f"{prefix}: {what}" if prefix else what[:1].upper() + what[1:]


# ------------------------------------------------------------------ panel functions


def plot_waveform(
    ax: Axes,
    y: Any,
    *,
    sr: float,
    title: str | None = None,
    label: str | None = None,
    **style: Any,
) -> Any:
    """Draw the sample view (waveform) of ``y`` on ``ax``, time in seconds.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes to draw on.
    y : array_like
        Mono audio signal (1-D, finite).
    sr : float
        Sample rate in Hz.
    title : str, optional
        Axes title.
    label : str, optional
        Legend label (for overlaying several waveforms on one axes).
    **style
        Passed to ``ax.plot`` (or ``ax.fill_between`` for long signals), e.g. ``color``.

    Returns
    -------
    matplotlib.artist.Artist
        The line, or for signals longer than ``MAX_LINE_POINTS`` samples the min/max band.

    Raises
    ------
    ValueError
        If ``y`` is not a 1-D finite signal.
    """
    y = views.validate_signal(y)
    sr = views._check_sr(sr)
    artist = _draw_waveform(ax, y, sr=sr, label=label, **style)
    _decorate_time_axis(ax)
    ax.set_ylabel("Amplitude")
    if title is not None:
        ax.set_title(title)
    return artist


def plot_envelope(
    ax: Axes,
    y: Any,
    *,
    sr: float,
    title: str | None = None,
    label: str | None = None,
    frame_ms: float = 20.0,
    hop_ms: float = 10.0,
    fill: bool = True,
    **style: Any,
) -> Any:
    """Draw the envelope view (RMS amplitude over time) of ``y`` on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes to draw on.
    y : array_like
        Mono audio signal (1-D, finite).
    sr : float
        Sample rate in Hz.
    title, label : str, optional
        Axes title and legend label.
    frame_ms, hop_ms : float, optional
        RMS frame and hop, see :func:`noizenet.analysis.views.envelope`.
    fill : bool, optional
        Shade the area under the envelope.
    **style
        Passed to ``ax.plot``, e.g. ``color``.

    Returns
    -------
    matplotlib.lines.Line2D
        The envelope line.

    Raises
    ------
    ValueError
        If ``y`` is not a 1-D finite signal.
    """
    times, rms = views.envelope(y, sr=sr, frame_ms=frame_ms, hop_ms=hop_ms)
    (line,) = ax.plot(times, rms, label=label, linewidth=1.0, **style)
    if fill:
        ax.fill_between(times, 0.0, rms, color=line.get_color(), alpha=0.25, linewidth=0)
    _decorate_time_axis(ax)
    ax.set_ylim(bottom=0.0)
    ax.set_ylabel("RMS amplitude")
    if title is not None:
        ax.set_title(title)
    return line


def plot_spectrogram(
    ax: Axes,
    y: Any,
    *,
    sr: float,
    scale: str = "linear",
    colorbar: bool = True,
    title: str | None = None,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    top_db: float = TOP_DB,
    cax: Axes | None = None,
) -> Any:
    """Draw the spectrogram of ``y`` on ``ax`` with a linear or log frequency axis.

    Colours are dB relative to the signal's loudest bin, from ``-top_db`` to 0 (so several
    spectrograms drawn with the same ``top_db`` share one colour scale).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes to draw on.
    y : array_like
        Mono audio signal (1-D, finite).
    sr : float
        Sample rate in Hz.
    scale : {"linear", "log"}, optional
        Frequency axis.  ``"log"`` omits the 0 Hz row.
    colorbar : bool, optional
        Add a colour bar labelled "dB".
    title : str, optional
        Axes title.
    n_fft, hop_length, top_db : optional
        See :func:`noizenet.analysis.views.spectrogram_db`.
    cax : matplotlib.axes.Axes, optional
        Axes to draw the colour bar into (default: steal space from ``ax``).

    Returns
    -------
    matplotlib.collections.QuadMesh
        The mesh (usable as a mappable for a shared colour bar).

    Raises
    ------
    ValueError
        If ``y`` is not a 1-D finite signal or ``scale`` is unknown.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    y = views.validate_signal(y)
    S_db = views.spectrogram_db(y, sr=sr, n_fft=n_fft, hop_length=hop_length, top_db=top_db)
    mesh = _draw_spectrogram(
        ax,
        S_db,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        duration=_duration(y, sr),
        scale=scale,
        top_db=top_db,
    )
    if colorbar:
        _add_colorbar(ax, mesh, cax)
    if title is not None:
        ax.set_title(title)
    return mesh


# ------------------------------------------------------------------ figure functions


def _check_stem(stem: str) -> None:
    if not stem or stem in {".", ".."} or "/" in stem or os.sep in stem:
        raise ValueError(f"stem must be a plain file-name prefix, got {stem!r}")


def audio_figures(
    y: Any,
    *,
    sr: float,
    out_dir: Path | str,
    stem: str,
    title: str | None = None,
) -> list[Path]:
    """Write the views of one signal as PNG files.

    Files, in the returned order:

    1. ``{stem}_waveform.png`` - sample view;
    2. ``{stem}_envelope.png`` - RMS envelope view;
    3. ``{stem}_spectrogram.png`` - spectrogram, linear frequency;
    4. ``{stem}_spectrogram_log.png`` - spectrogram, log frequency;
    5. ``{stem}_views.png`` - the four panels above stacked in one figure.

    Single panels are 1000 x 300 px, the combined figure 1000 x 1200 px.

    Parameters
    ----------
    y : array_like
        Mono audio signal (1-D, finite).
    sr : float
        Sample rate in Hz.
    out_dir : pathlib.Path or str
        Destination folder, created if needed.
    stem : str
        File-name prefix (no path separators).
    title : str, optional
        Prefix of each panel title (e.g. the piece's name), shown as text ('$' included).

    Returns
    -------
    list of pathlib.Path
        The five files written.

    Raises
    ------
    ValueError
        If ``y`` is not a 1-D finite signal or ``stem`` is not a plain name.
    """
    _check_stem(stem)
    y = views.validate_signal(y, name=f"signal {stem!r}")
    return _write_views(_samples(y), views._check_sr(sr), Path(out_dir), stem, title)


def wav_figures(path: Path | str, *, out_dir: Path | str, stem: str,
                title: str | None = None) -> list[Path]:  # fmt: skip
    """:func:`audio_figures` of a sound file (several channels averaged), read from disk a
    block at a time: the figures of a long take cost a few MB, not the take in memory.

    Raises ValueError naming the file if it is empty or has non-finite samples.
    """
    _check_stem(stem)
    with _file_samples(Path(path)) as (y, sr):
        return _write_views(y, float(sr), Path(out_dir), stem, title)


def _write_views(y: _Samples, sr: float, out_dir: Path, stem: str,
                 title: str | None) -> list[Path]:  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    if title is not None:  # a name shown as text: matplotlib would read '$...$' as mathematics
        title = title.replace("$", r"\$")
    duration = _duration(y, sr)
    S_db, pooled = _spectrogram_db(y)
    env_t, env = _envelope(y, sr=sr)

    def waveform(ax: Axes, _cax: Axes | None) -> None:
        _draw_waveform(ax, y, sr=sr, color="C0")
        _decorate_time_axis(ax)
        ax.set_xlim(0.0, duration)
        ax.set_ylabel("Amplitude")
        ax.set_title(_title(title, "waveform"), y=1.0)  # placed: no tick-box search

    def env_panel(ax: Axes, _cax: Axes | None) -> None:
        ax.plot(env_t, env, color="C1", linewidth=1.0)
        ax.fill_between(env_t, 0.0, env, color="C1", alpha=0.25, linewidth=0)
        _decorate_time_axis(ax)
        ax.set_xlim(0.0, duration)
        ax.set_ylim(bottom=0.0)
        ax.set_ylabel("RMS amplitude")
        ax.set_title(_title(title, "envelope (RMS, 20 ms frames)"), y=1.0)

    def spec(scale: str, what: str):
        def draw(ax: Axes, cax: Axes | None) -> None:
            mesh = _draw_spectrogram(
                ax,
                S_db,
                sr=sr,
                n_fft=N_FFT,
                hop_length=HOP_LENGTH,
                duration=duration,
                scale=scale,
                pooled=pooled,
            )
            _add_colorbar(ax, mesh, cax)
            ax.set_title(_title(title, what), y=1.0)

        return draw

    panels = [
        ("waveform", waveform),
        ("envelope", env_panel),
        ("spectrogram", spec("linear", "spectrogram (linear frequency)")),
        ("spectrogram_log", spec("log", "spectrogram (log frequency)")),
    ]
    # Fixed margins, the same in every panel (constrained layout costs a third of the time
    # here), so the combined figure is the four panels' pixels stacked: each drawn once.
    paths: list[Path] = []
    pixels = []
    for suffix, draw in panels:
        with _figure(PANEL_SIZE, layout=None) as fig:
            colorbar = suffix.startswith("spectrogram")
            ax, cax = _panel_grid(fig, 1, margins=PANEL_MARGINS, colorbars=colorbar)[0]
            draw(ax, cax)
            paths.append(_save(fig, out_dir / f"{stem}_{suffix}.png"))
            pixels.append(np.asarray(fig.canvas.buffer_rgba()).copy())
    paths.append(_save_pixels(np.concatenate(pixels), out_dir / f"{stem}_views.png"))
    return paths


#: A strip: one small log-frequency spectrogram (400 x 150 px), fixed margins for its axes.
STRIP_SIZE = (4.0, 1.5)
STRIP_MARGINS = {"left": 0.15, "right": 0.98, "bottom": 0.28, "top": 0.96}


def spectrogram_strip(y: Any, *, sr: float, out: Path | str) -> Path:
    """Write a small log-frequency spectrogram of ``y`` to ``out`` (PNG, 400 x 150 px).

    For rows of takes compared by eye (the report's timeline of training takes): no title and
    no colour bar, the dB scale of :func:`audio_figures` (-80 to 0 dB under the loudest bin).
    """
    y = views.validate_signal(y)
    sr = views._check_sr(sr)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    S_db, pooled = _spectrogram_db(y)
    with _figure(STRIP_SIZE, layout=None) as fig:
        ax = fig.add_subplot()
        fig.subplots_adjust(**STRIP_MARGINS)
        _draw_spectrogram(
            ax, S_db, sr=sr, n_fft=N_FFT, hop_length=HOP_LENGTH, duration=_duration(y, sr),
            scale="log", pooled=pooled,
        )  # fmt: skip
        ax.tick_params(labelsize=8)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
        return _save(fig, out)


#: Margins of one 1000 x 300 px panel (fractions): room for the axis labels and colour bar.
PANEL_MARGINS = {"left": 0.075, "right": 0.94, "bottom": 0.16, "top": 0.9, "wspace": 0.02}


def _panel_grid(
    fig: Figure,
    n_rows: int,
    margins: Mapping[str, float] | None = None,
    colorbars: bool = True,
) -> list[tuple[Axes, Axes | None]]:
    """``n_rows`` full-width axes plus a narrow colour-bar column, so time axes line up.

    The colour-bar axes of each row is returned hidden; drawing a colour bar into it makes
    it visible again. Without ``colorbars`` the column stays empty (None: no axes and ticks
    to build for nothing). ``margins``: gridspec margins, for a figure without a layout engine.
    """
    gs = fig.add_gridspec(n_rows, 2, width_ratios=[1.0, 0.015], **(margins or {}))
    rows: list[tuple[Axes, Axes | None]] = []
    for i in range(n_rows):
        ax = fig.add_subplot(gs[i, 0])
        cax = fig.add_subplot(gs[i, 1]) if colorbars else None
        if cax is not None:
            cax.set_axis_off()
        rows.append((ax, cax))
    return rows


def comparison_figure(
    signals: Mapping[str, Any],
    *,
    sr: float,
    out: Path | str,
    title: str | None = None,
    zoom_s: tuple[float, float] | None = None,
) -> Path:
    """Compare signals side by side, e.g. ``{"original": y, "LSTM": y1, "RNN": y2}``.

    One column per signal with rows waveform / envelope / log-frequency spectrogram.  With
    ``zoom_s=(t0, t1)`` a first, full-width row overlays all waveforms between ``t0`` and
    ``t1`` seconds (reproduction versus original, paper figures 23-25).  Signals may have
    different lengths; each column shows its whole signal on its own time axis, while the
    waveform and envelope rows share their amplitude axis.  Spectrogram colours are dB
    relative to each signal's own maximum, on one shared -80..0 dB scale.

    Parameters
    ----------
    signals : mapping of str to array_like
        Column title -> mono signal (1-D, finite), in display order.
    sr : float
        Sample rate in Hz (shared by all signals).
    out : pathlib.Path or str
        PNG file to write; its folder is created if needed.
    title : str, optional
        Figure title.
    zoom_s : (float, float), optional
        Time window in seconds for the overlay row.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        If ``signals`` is empty, a signal is not 1-D finite (the message names it), or
        ``zoom_s`` is not a window ``0 <= t0 < t1`` overlapping at least one signal.
    """
    if not signals:
        raise ValueError("signals must contain at least one named signal")
    sr = views._check_sr(sr)
    sigs = {
        str(name): views.validate_signal(y, name=f"signal {str(name)!r}")
        for name, y in signals.items()
    }
    window: tuple[int, int] | None = None
    if zoom_s is not None:
        window = _zoom_window(zoom_s, sigs, sr)

    names = list(sigs)
    n_cols = len(names)
    n_rows = 3 + (window is not None)
    col_w = 5.0 if n_cols > 1 else PANEL_SIZE[0]
    with _figure((col_w * n_cols + 0.6, PANEL_SIZE[1] * n_rows)) as fig:
        gs = fig.add_gridspec(n_rows, n_cols + 1, width_ratios=[1.0] * n_cols + [0.03])
        r0 = 0
        if window is not None:
            ax = fig.add_subplot(gs[0, :n_cols])
            lo, hi = window
            for i, name in enumerate(names):
                seg = sigs[name][lo : min(hi, sigs[name].size)]
                if seg.size:
                    _draw_waveform(ax, seg, sr=sr, t0=lo / sr, label=name, color=f"C{i}", alpha=0.8)
            _decorate_time_axis(ax)
            ax.set_xlim(float(zoom_s[0]), float(zoom_s[1]))
            ax.set_ylabel("Amplitude")
            ax.set_title(f"Waveforms {float(zoom_s[0]):g}-{float(zoom_s[1]):g} s")
            ax.legend(loc="upper right", fontsize="small")
            r0 = 1

        wave_axes: list[Axes] = []
        env_axes: list[Axes] = []
        mesh = None
        for i, name in enumerate(names):
            y = sigs[name]
            dur = _duration(y, sr)
            color = f"C{i}"
            ax_w = fig.add_subplot(gs[r0, i], sharey=wave_axes[0] if wave_axes else None)
            _draw_waveform(ax_w, y, sr=sr, color=color)
            _decorate_time_axis(ax_w)
            ax_w.set_xlim(0.0, dur)
            ax_w.set_title(f"{name} ({dur:.2f} s)")
            wave_axes.append(ax_w)

            ax_e = fig.add_subplot(gs[r0 + 1, i], sharey=env_axes[0] if env_axes else None)
            env_t, env = views.envelope(y, sr=sr)
            ax_e.plot(env_t, env, color=color, linewidth=1.0)
            ax_e.fill_between(env_t, 0.0, env, color=color, alpha=0.25, linewidth=0)
            _decorate_time_axis(ax_e)
            ax_e.set_xlim(0.0, dur)
            env_axes.append(ax_e)

            ax_s = fig.add_subplot(gs[r0 + 2, i])
            S_db = views.spectrogram_db(y, sr=sr, n_fft=N_FFT, hop_length=HOP_LENGTH)
            mesh = _draw_spectrogram(
                ax_s,
                S_db,
                sr=sr,
                n_fft=N_FFT,
                hop_length=HOP_LENGTH,
                duration=dur,
                scale="log",
            )
            if i > 0:
                ax_w.tick_params(labelleft=False)
                ax_e.tick_params(labelleft=False)
                ax_s.set_ylabel("")
        wave_axes[0].set_ylabel("Amplitude")
        env_axes[0].set_ylabel("RMS amplitude")
        env_axes[0].set_ylim(bottom=0.0)
        _add_colorbar(ax_s, mesh, fig.add_subplot(gs[r0 + 2, n_cols]))
        if title:
            fig.suptitle(title)
        return _save(fig, Path(out))


def _zoom_window(
    zoom_s: Sequence[float], sigs: Mapping[str, np.ndarray], sr: float
) -> tuple[int, int]:
    try:
        t0, t1 = (float(v) for v in zoom_s)
    except (TypeError, ValueError):
        raise ValueError(f"zoom_s must be a (start, end) pair of seconds, got {zoom_s!r}") from None
    if not (np.isfinite(t0) and np.isfinite(t1) and 0.0 <= t0 < t1):
        raise ValueError(f"zoom_s must satisfy 0 <= start < end (seconds), got {zoom_s!r}")
    lo, hi = math.floor(t0 * sr), math.ceil(t1 * sr) + 1
    longest = max(y.size for y in sigs.values())
    if lo >= longest:
        raise ValueError(
            f"zoom_s={zoom_s!r} starts after the end of every signal "
            f"(longest is {longest / sr:.3f} s)"
        )
    return lo, hi


# ---------------------------------------------------------------------- loss curves

_LOSS_LABEL_KEYS = ("train_loss", "val_loss", "epoch", "loss")


def _loss_series(
    records: Sequence[Mapping[str, Any]], what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, train, val_epochs, val) from metrics records, sorted by epoch.

    If an epoch appears more than once (a resumed run appending to metrics.jsonl), the
    last record for it wins.
    """
    if not records:
        raise ValueError(f"{what} has no records to plot")
    by_epoch: dict[float, tuple[float, float | None]] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ValueError(f"{what}: record {i} is {type(rec).__name__}, expected a dict")
        missing = [k for k in ("epoch", "train_loss") if k not in rec]
        if missing:
            raise ValueError(f"{what}: record {i} lacks {', '.join(map(repr, missing))}")
        epoch = rec["epoch"]
        values: list[float | None] = []
        for key in ("train_loss", "val_loss"):
            v = rec.get(key)
            if v is None and key == "val_loss":
                values.append(None)
                continue
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{what}: record {i} (epoch {epoch}) has non-numeric {key} {v!r}"
                ) from None
            if not math.isfinite(f):
                raise ValueError(f"{what}: record {i} (epoch {epoch}) has non-finite {key} {v!r}")
            values.append(f)
        try:
            e = float(epoch)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: record {i} has non-numeric epoch {epoch!r}") from None
        if not math.isfinite(e):
            raise ValueError(f"{what}: record {i} has non-finite epoch {epoch!r}")
        by_epoch[e] = (values[0], values[1])
    epochs = np.array(sorted(by_epoch))
    train = np.array([by_epoch[e][0] for e in epochs])
    val_pairs = [(e, by_epoch[e][1]) for e in epochs if by_epoch[e][1] is not None]
    val_epochs = np.array([e for e, _ in val_pairs], dtype=float)
    val = np.array([v for _, v in val_pairs], dtype=float)
    return epochs, train, val_epochs, val


def _plot_losses(
    ax: Axes,
    series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    labels: Mapping[str, str],
    *,
    single: bool,
) -> None:
    from matplotlib.ticker import LogFormatter, MaxNLocator

    class PlainLogFormatter(LogFormatter):
        # LogFormatter decides which ticks get a label; print them as "0.3", not "3e-01".
        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:.3g}" if super().__call__(x, pos) else ""

    all_values = []
    for i, (run, (epochs, train, val_epochs, val)) in enumerate(series.items()):
        color = f"C{i}" if not single else "C0"
        marker = "o" if len(epochs) <= 50 else None
        prefix = "" if single else f"{run} "
        ax.plot(
            epochs,
            train,
            color=color,
            linestyle="-",
            marker=marker,
            markersize=3,
            label=prefix + labels["train_loss"],
        )
        all_values.append(train)
        if val.size:
            ax.plot(
                val_epochs,
                val,
                color=color if not single else "C1",
                linestyle="--",
                marker=marker,
                markersize=3,
                label=prefix + labels["val_loss"],
            )
            all_values.append(val)
    values = np.concatenate(all_values)
    if np.all(values > 0):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(labels["epoch"])
    ax.set_ylabel(labels["loss"])
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()


def _loss_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    out = {"train_loss": "train", "val_loss": "validation", "epoch": "Epoch", "loss": "Loss"}
    if labels:
        unknown = set(labels) - set(_LOSS_LABEL_KEYS)
        if unknown:
            raise ValueError(
                f"labels has unknown keys {sorted(unknown)}; expected some of {_LOSS_LABEL_KEYS}"
            )
        out.update({k: str(v) for k, v in labels.items()})
    return out


def loss_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    out: Path | str,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Plot one run's training and validation loss against epoch.

    Parameters
    ----------
    records : sequence of dict
        The lines of a run's ``metrics.jsonl``: each has ``"epoch"`` and ``"train_loss"``
        and optionally ``"val_loss"`` (missing or None: no validation point that epoch).
        Other keys are ignored.  Records are sorted by epoch; if an epoch repeats, the
        last record wins.
    out : pathlib.Path or str
        PNG file to write; its folder is created if needed.
    title : str, optional
        Axes title.
    labels : dict, optional
        Display text overrides, keys among ``"train_loss"``, ``"val_loss"`` (legend
        entries), ``"epoch"`` (x label) and ``"loss"`` (y label), e.g.
        ``{"loss": "NLL (nats/sample)"}``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Notes
    -----
    The y axis is logarithmic when every plotted loss is > 0, linear otherwise.

    Raises
    ------
    ValueError
        If there are no records, a record lacks a key, or a loss is non-numeric or
        non-finite (the message names the record and epoch).
    """
    lab = _loss_labels(labels)
    series = {"run": _loss_series(records, "records")}
    with _figure((8.0, 5.0)) as fig:
        ax = fig.add_subplot()
        _plot_losses(ax, series, lab, single=True)
        if title:
            ax.set_title(title)
        return _save(fig, Path(out))


def loss_figure_multi(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    out: Path | str,
    title: str | None = None,
) -> Path:
    """Overlay the loss curves of several runs, e.g. ``{"RNN": recs1, "LSTM": recs2}``.

    Each run gets one colour; training loss is solid, validation loss dashed.

    Parameters
    ----------
    runs : mapping of str to sequence of dict
        Run name -> its metrics records (see :func:`loss_figure`).
    out : pathlib.Path or str
        PNG file to write; its folder is created if needed.
    title : str, optional
        Axes title.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        If ``runs`` is empty or any run's records are invalid (the message names the run).
    """
    if not runs:
        raise ValueError("runs must contain at least one named run")
    series = {str(name): _loss_series(recs, f"run {str(name)!r}") for name, recs in runs.items()}
    with _figure((8.0, 5.0)) as fig:
        ax = fig.add_subplot()
        _plot_losses(ax, series, _loss_labels(None), single=False)
        if title:
            ax.set_title(title)
        return _save(fig, Path(out))
