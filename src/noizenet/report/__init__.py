"""HTML report of one or more run folders: see and hear a run on one page.

:func:`write_report` renders a single self-contained ``report.html`` with the standard library:
settings and provenance, metrics and evaluation tables, loss curves, an ``<audio>`` player
beside the waveform, envelope and spectrograms of every generated take, each reproduction beside
the original song and, for several runs, aligned comparison tables and overlaid loss curves.

It reads only the run folders (``config.toml``, ``run.json``, ``metrics.jsonl``,
``evaluation.json``, ``figures/*.png``, ``audio/*.wav``). What they lack, it makes: the views of
a WAV that has none are drawn into ``RUN/figures`` (where ``noizenet generate`` would have put
them); report-only files (the original excerpt a reproduction is compared with, the overlaid
loss curves) go to ``REPORT_files/`` beside the page. By default the page links figures and
audio by relative path, so it opens from disk or any static web server with the folders beside
it; ``inline=True`` embeds them as ``data:`` URIs instead, so the one file can be mailed.

Nothing from outside reaches the page unescaped (see :mod:`noizenet.report.markup`), the page
loads nothing from the network, and a Content-Security-Policy forbids scripts outright, as a
second line of defence.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from noizenet.config import Config
from noizenet.errors import NoizeNetError
from noizenet.io import atomic_write_text
from noizenet.progress import progress_bar
from noizenet.report.folder import (
    STRIP_SUFFIX,
    VIEW_SUFFIXES,
    RunFolder,
    TimelinePoint,
    describe_take,
    flatten,
    read_run,
)
from noizenet.report.markup import Html, dotted, el, fmt, join, key_values, table
from noizenet.run import parse_take_name

__all__ = ["default_report_path", "finish_run", "write_report", "write_run_report"]

REPORT_NAME = "report.html"
_MIME = {".png": "image/png", ".wav": "audio/wav"}
# No scripts, no network: images and media from the page's own place or inline data only.
_CSP = (
    "default-src 'none'; img-src 'self' file: data:; media-src 'self' file: data:; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)


def default_report_path(runs: Sequence[str | Path]) -> Path:
    """``RUN/report.html`` for one run; ``report.html`` in the current folder for several."""
    return Path(runs[0]) / REPORT_NAME if len(runs) == 1 else Path(REPORT_NAME)


def write_report(
    runs: Sequence[str | Path],
    out: str | Path | None = None,
    *,
    inline: bool = False,
    title: str | None = None,
    extra_figures: Iterable[tuple[str | Path, str]] = (),
    progress: bool = True,
    checkpoint: str | None = None,
) -> Path:
    """Write an HTML report of one or more run folders and return its path.

    Parameters
    ----------
    runs : run folders, shown in this order (several: compared side by side)
    out : the HTML file (default: :func:`default_report_path`)
    inline : embed figures and audio as ``data:`` URIs (one mailable file) instead of linking
        them by relative path
    title : page title (default: from the run names)
    extra_figures : ``(png, caption)`` pairs shown with the comparison, e.g. figures an
        experiment or the demo drew across runs
    progress : show a progress bar while missing views are drawn
    checkpoint : show only the takes made from these weights (``last``, ``best``,
        ``epoch:N``, PATH, as their names record it); None: every take

    Returns
    -------
    pathlib.Path : ``out``

    Example
    -------
    >>> write_report(["runs/lstm", "runs/rnn"], "runs/compare.html")  # doctest: +SKIP
    """

    if not runs:
        raise NoizeNetError("report: give at least one run folder")
    folders = [read_run(p, checkpoint=checkpoint) for p in runs]
    out = Path(out) if out is not None else default_report_path(runs)
    if out.is_dir():
        raise NoizeNetError(f"{out}: is a folder; --out takes the HTML file to write")
    names = _unique_names([f.path for f in folders])
    extras = [(Path(p), str(c)) for p, c in extra_figures]
    with _Assets(out, inline=inline) as assets:
        page = _Page(folders, names, assets, progress=progress)
        body = page.render(extras)
        doc = _document(title or "NoizeNet report: " + ", ".join(names), body, names)
        try:
            atomic_write_text(out, doc)
        except OSError as exc:
            raise NoizeNetError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return out


def write_run_report(
    runs: str | Path | Sequence[str | Path],
    out: str | Path | None = None,
    *,
    log: Any = print,
    progress: bool = False,
    **kwargs: Any,
) -> Path | None:
    """The report at the end of a job (``train``, ``demo``, ``experiment run``).

    Same as :func:`write_report`, but a report that cannot be written is logged, not raised:
    the job's real results (weights, audio, metrics) are already safe on disk, and a failed
    page must not turn a finished run into a failed command.
    """
    runs = [runs] if isinstance(runs, str | Path) else list(runs)
    try:
        path = write_report(runs, out, progress=progress, **kwargs)
    except (NoizeNetError, OSError) as exc:
        log(f"report not written: {exc}")
        return None
    log(f"report: {path}")
    return path


def finish_run(run: Any, *, log: Any = print, progress: bool = False) -> Path | None:
    """What the verb that trained draws once training is done: the loss curve in
    ``RUN/figures/loss.png`` and the run's own report. Training itself writes no figures."""
    from noizenet.analysis.figures import loss_figure

    # an epoch without a single good step has no training loss to draw
    records = [r for r in run.metrics() if r.get("train_loss") is not None]
    if records:
        model = run.info.model
        loss_figure(
            records,
            out=run.paths.figures / "loss.png",
            title=f"{str(model.get('cell', '')).upper()} hidden {model.get('hidden')}: "
            "loss per epoch",
        )
    return write_run_report(run.path, log=log, progress=progress)


# -- assets: linked by relative path, or inlined --------------------------------------------
class _Assets:
    """Turns files into URLs for the page, and gives report-only files a home."""

    def __init__(self, out: Path, *, inline: bool) -> None:
        self.base = out.parent.absolute()
        self.inline = inline
        self._tmp: Path | None = None
        self._dir = out.parent / f"{out.stem}_files"

    def __enter__(self) -> _Assets:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def dir(self) -> Path:
        """Where report-only files are written: beside the page, or a temporary folder when
        everything is inlined (the page then needs nothing beside it)."""
        if not self.inline:
            return self._dir
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="noizenet-report-"))
        return self._tmp

    def url(self, path: Path) -> str:
        path = Path(path)
        if self.inline:
            mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
            return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        try:
            rel = Path(os.path.relpath(path.absolute(), self.base)).as_posix()
        except ValueError:  # another drive (Windows): no relative path exists
            return path.absolute().as_uri()
        # percent-encode everything but '/': a file name cannot close the attribute or turn
        # into a scheme such as ``javascript:``
        return quote(rel, safe="/")


# -- the page -------------------------------------------------------------------------------
class _Page:
    def __init__(
        self, folders: list[RunFolder], names: list[str], assets: _Assets, *, progress: bool
    ) -> None:
        self.folders = folders
        self.names = names
        self.assets = assets
        self.progress = progress
        self._originals: dict[tuple[str, float, int], Any] = {}
        self._asset_names: set[str] = set()

    def render(self, extras: list[tuple[Path, str]]) -> Html:
        parts = []
        if len(self.folders) > 1 or extras:
            parts.append(self._comparison(extras))
        for i, (run, name) in enumerate(zip(self.folders, self.names, strict=True), 1):
            parts.append(self._run(run, name, f"run-{i}"))
        return join(parts)

    # -- comparison of several runs ------------------------------------------------------------
    def _comparison(self, extras: list[tuple[Path, str]]) -> Html:
        parts = [el("h2", "Comparison" if len(self.folders) > 1 else "Figures")]
        if len(self.folders) > 1:
            parts += [
                el("h3", "Final metrics"),
                self._metrics_comparison(),
                el("h3", "Settings"),
                self._settings_comparison(),
                el("h3", "Loss curves"),
                self._loss_overlay(),
            ]
        for png, caption in extras:
            parts.append(self._figure(png, caption=caption, alt=caption))
        return el("section", *parts, id="comparison")

    def _metrics_comparison(self) -> Html:
        columns: list[dict[str, Any]] = []
        for run in self.folders:
            row: dict[str, Any] = {
                "status": run.info.status,
                "parameters": run.info.parameters,
            }
            row.update(flatten(run.info.metrics))
            if run.evaluation is not None:
                row.update(_scalars(flatten(run.evaluation, "evaluation")))
            columns.append(row)
        keys = _union_keys(columns)
        rows = [[_label(k)] + [c.get(k) for c in columns] for k in keys]
        return table(["", *self.names], rows, caption="Final metrics per run")

    def _settings_comparison(self) -> Html:
        """The settings that differ, then all of them, aligned run by run."""
        configs = [run.config for run in self.folders]
        keys = _union_keys(configs)
        missing = object()  # a setting one run lacks differs from every value
        differ = [len({repr(c.get(k, missing)) for c in configs}) > 1 for k in keys]
        rows = [
            [el("mark", dotted(k)) if d else k] + [c.get(k) for c in configs]
            for k, d in zip(keys, differ, strict=True)
        ]
        header = ["setting", *self.names]
        diff_rows = [r for r, d in zip(rows, differ, strict=True) if d]
        parts: list[Any] = []
        if diff_rows:
            parts.append(
                table(
                    header,
                    diff_rows,
                    caption="Settings that differ",
                    row_classes=["diff"] * len(diff_rows),
                )
            )
        else:
            parts.append(el("p", "The runs have the same settings.", class_="note"))
        everything = table(
            header,
            rows,
            caption="All settings (config.toml); highlighted: differ between runs",
            row_classes=["diff" if d else None for d in differ],
        )
        parts.append(el("details", el("summary", f"All {len(keys)} settings"), everything))
        return join(parts)

    def _loss_overlay(self) -> Html:
        from noizenet.analysis.figures import loss_figure_multi

        with_metrics = {
            n: r.metrics for n, r in zip(self.names, self.folders, strict=True) if r.metrics
        }
        if not with_metrics:
            return el("p", "No run has recorded metrics yet.", class_="note")
        out = self._asset_path("loss_comparison.png")
        try:
            loss_figure_multi(
                with_metrics, out=out, title="Training (solid) and validation (dashed) loss"
            )
        except ValueError as exc:
            return el("p", f"Loss curves not drawn: {exc}", class_="problem")
        left_out = [n for n in self.names if n not in with_metrics]
        note = f" ({', '.join(left_out)}: no metrics yet)" if left_out else ""
        return self._figure(
            out,
            caption="Training (solid) and validation (dashed) loss per epoch of every run" + note,
            alt="Loss per epoch of " + ", ".join(with_metrics) + ": training solid, validation "
            "dashed, one colour per run",
        )

    # -- one run -------------------------------------------------------------------------------
    def _run(self, run: RunFolder, name: str, anchor: str) -> Html:
        parts: list[Any] = [
            el("h2", f"Run {name}"),
            el("p", "Folder ", el("span", run.path.absolute(), class_="path")),
        ]
        parts += [el("p", p, class_="problem") for p in run.problems]
        parts += [el("h3", "Metrics"), el("div", self._metrics(run), class_="columns")]
        parts += [el("h3", "Loss curves"), self._loss(run)]
        timeline = run.timeline()
        in_timeline = {t.wav for p in timeline for t in p.takes if t.wav is not None}
        takes = [w for w in run.takes if w not in in_timeline]
        shown: set[Path] = set()
        with progress_bar(
            total=len(run.wavs), desc="report", unit="wav", disable=not self.progress
        ) as bar:
            if timeline:
                parts += [el("h3", "Takes during training"), self._timeline(run, timeline, bar)]
            if run.evaluation is not None:
                parts += [el("h3", "Evaluation"), _json_view(run.evaluation)]
            if run.reproductions:
                parts.append(el("h3", "Reproduction"))
                parts.append(
                    el(
                        "p",
                        "Teacher-forced one-step prediction: the model hears the song up to "
                        "each sample and predicts the next (paper figures 23-25).",
                        class_="note",
                    )
                )
                for wav in run.reproductions:
                    parts.append(self._reproduction(run, wav, shown))
                    bar.update(1)
            if takes:
                parts.append(el("h3", "Generated takes"))
                cards = []
                for wav in takes:
                    cards.append(self._take(run, wav, shown))
                    bar.update(1)
                parts.append(el("div", *cards, class_="grid"))
        others = [p for p in run.pngs if p not in shown and not _belongs_to_wav(p, run)]
        if others:
            parts.append(el("h3", "Other figures"))
            parts.append(
                el(
                    "div",
                    *(self._figure(p, caption=p.name, alt=f"Figure {p.name}") for p in others),
                    class_="grid",
                )
            )
        parts += [el("h3", "Corpus"), self._corpus(run)]
        parts += [
            el("h3", "Settings and provenance"),
            el("div", self._provenance(run), class_="columns"),
        ]
        return el("section", *parts, id=anchor)

    def _metrics(self, run: RunFolder) -> Html:
        final = flatten(run.info.metrics)
        parts = []
        if final:
            parts.append(
                key_values(
                    [("status", run.info.status)] + [(_label(k), v) for k, v in final.items()],
                    caption="Final metrics (run.json)",
                )
            )
        if run.metrics:
            # the training takes' figures are in the timeline
            keys = [k for k in _union_keys(run.metrics) if k != "takes"]
            if "epoch" in keys:
                keys.remove("epoch")
                keys.insert(0, "epoch")
            epochs = table(
                [_label(k) for k in keys],
                ([r.get(k) for k in keys] for r in run.metrics),
                caption="Per epoch (metrics.jsonl)",
            )
            parts.append(
                epochs
                if len(run.metrics) <= 12
                else el("details", el("summary", f"All {len(run.metrics)} epochs"), epochs)
            )
        if not parts:
            parts.append(el("p", "No metrics recorded yet.", class_="note"))
        return join(parts)

    def _loss(self, run: RunFolder) -> Html:
        loss = run.path / "figures" / "loss.png"
        if not loss.is_file():
            if not run.metrics:
                return el("p", "No metrics recorded yet.", class_="note")
            from noizenet.analysis.figures import loss_figure

            try:
                loss = loss_figure(
                    run.metrics, out=self._asset_path("loss.png"), title="Loss per epoch"
                )
            except ValueError as exc:
                return el("p", f"Loss curve not drawn: {exc}", class_="problem")
        return self._figure(
            loss,
            caption="Training (solid) and validation (dashed) loss per epoch",
            alt=f"Training and validation loss per epoch of run {run.path.name}",
        )

    def _timeline(self, run: RunFolder, points: list[TimelinePoint], bar: Any) -> Html:
        """One row per point of training that made takes: epoch, validation loss, and per
        seed a player, a spectrogram and the take's figures, so the model is heard improving."""
        seeds = list(dict.fromkeys(t.seed for p in points for t in p.takes))
        rows = []
        for p in points:
            by_seed = {t.seed: t for t in p.takes}
            cells: list[Any] = [
                f"{p.epochs} + {p.step} steps" if p.step else p.epochs,
                p.val_loss,
            ]
            for seed in seeds:
                take = by_seed.get(seed)
                cells.append(self._timeline_take(run, take) if take else "-")
                bar.update(1 if take is not None and take.wav is not None else 0)
            rows.append(cells)
        seconds = next(
            (t.figures.get("seconds") for p in points for t in p.takes if t.figures), None
        )
        note = el(
            "p",
            "Made while training (train --sample-every N, and at the end of every run): the "
            "model primed for half a second on white noise and on the start of a validation "
            f"song, then running free{f' for {seconds:g} s' if seconds else ''}. Collapse: "
            "when the take goes quiet or loops (never: it kept playing).",
            class_="note",
        )
        header = ["epoch", "val loss", *(f"seed {s}" for s in seeds)]
        return join([note, table(header, rows, caption="Training takes (metrics.jsonl)")])

    def _timeline_take(self, run: RunFolder, take: Any) -> Html:
        figures = take.figures
        collapse = figures.get("collapse_s", "-")
        if isinstance(collapse, int | float):
            collapse = f"{collapse:.2f} s"
        said = [
            f"collapse {'never' if collapse is None else collapse}",
            f"flatness {fmt(figures.get('flatness'))}",
            f"RMS {fmt(figures.get('rms'))}",
        ]
        parts: list[Any] = []
        if take.wav is not None:
            parts.append(self._audio(take.wav))
            strip = self._strip(run, take.wav)
            parts.append(
                self._img(strip, alt=f"Spectrogram of {take.wav.name}")
                if isinstance(strip, Path)
                else el("p", strip, class_="problem")
            )
        if take.problem:
            parts.append(el("p", take.problem, class_="problem"))
        parts.append(el("span", ", ".join(said), class_="note"))
        return el("div", *parts, class_="take")

    def _strip(self, run: RunFolder, wav: Path) -> Path | str:
        """A training take's small spectrogram, drawn now unless one newer than the WAV is
        there (a resumed run writes its takes again); a reason on failure."""
        from noizenet.analysis.figures import spectrogram_strip

        name = f"{wav.stem}_{STRIP_SUFFIX}.png"
        for folder in (run.path / "figures", self.assets.dir):
            png = folder / name
            if png.is_file() and png.stat().st_mtime >= wav.stat().st_mtime:
                return png
        return self._draw(
            run,
            wav,
            "spectrogram",
            lambda y, folder: spectrogram_strip(y, sr=_sr(run), out=folder / name),
        )

    def _draw(self, run: RunFolder, wav: Path, what: str, draw: Any) -> Path | str:
        """``draw(audio, folder)`` of a WAV into the run's figures, or beside the report where
        the run folder is read-only; a one-line reason on failure."""
        from noizenet.audio import load

        try:
            y = load(wav, sr=_sr(run))
        except NoizeNetError as exc:
            return f"{what} not drawn: {exc}"
        for folder in (run.path / "figures", self.assets.dir):
            try:
                return draw(y, folder)
            except OSError:
                continue  # a read-only run folder: draw beside the report instead
            except ValueError as exc:
                return f"{what} not drawn: {exc}"
        return f"{what} not drawn: no writable folder"

    def _take(self, run: RunFolder, wav: Path, shown: set[Path]) -> Html:
        meta = describe_take(wav.stem)
        caption: list[Any] = [el("strong", wav.name)]
        if meta:
            caption.append(f" {meta}")
        return self._audio_card(run, wav, caption, shown)

    def _audio_card(
        self, run: RunFolder, wav: Path, caption: list[Any], shown: set[Path], views: Any = None
    ) -> Html:
        from noizenet.audio import info

        try:
            seconds = info(wav)["seconds"]
            caption = [*caption, f" ({seconds:.2f} s)"]
        except NoizeNetError as exc:
            return el("figure", el("figcaption", *caption), el("p", str(exc), class_="problem"))
        if views is None:
            views = self._views(run, wav)
        if isinstance(views, Path):
            shown.add(views)
            img: Any = self._img(
                views,
                alt=f"Waveform, envelope, linear and log-frequency spectrograms of {wav.name}",
            )
        else:
            img = el("p", views, class_="problem")
        return el("figure", el("figcaption", *caption), self._audio(wav), img)

    def _views(self, run: RunFolder, wav: Path) -> Path | str:
        """The views figure of a WAV, drawn now if the run has none; a reason on failure."""
        found = run.views_of(wav)
        if found is not None:
            return found
        return self._draw(
            run,
            wav,
            "views",
            lambda y, folder: _draw_views(y, _sr(run), folder, wav.stem, wav.name)[-1],
        )

    def _reproduction(self, run: RunFolder, wav: Path, shown: set[Path]) -> Html:
        name = parse_take_name(wav.stem)
        song_stem = name.seed if name is not None else wav.stem
        entry = next(
            (e for e in run.corpus_entries() if Path(str(e.get("path", ""))).stem == song_stem),
            None,
        )
        label = _track_label(entry) if entry else song_stem
        rep_card = self._audio_card(run, wav, [el("strong", "reproduction"), f" {wav.name}"], shown)
        snr = None
        if entry is None:
            orig_card = el(
                "figure",
                el("figcaption", el("strong", "original")),
                el(
                    "p",
                    f"No track of this run's corpus is named {song_stem!r}: the original "
                    "song cannot be shown.",
                    class_="note",
                ),
            )
        else:
            orig_card, snr = self._original(run, entry, wav, shown)
        parts: list[Any] = [el("h4", f"Reproduction of {label}")]
        if snr is not None:
            parts.append(el("p", f"One-step prediction SNR {snr:.2f} dB (first sample excluded)."))
        parts.append(el("div", orig_card, rep_card, class_="pair"))
        compared = wav.with_suffix(".png")  # drawn by ``noizenet reproduce``
        if compared.is_file():
            shown.add(compared)
            parts.append(
                self._figure(
                    compared,
                    caption=f"Original and reproduction of {label}, with a 20 ms zoom",
                    alt=f"Waveforms, envelopes and spectrograms of {label} and its reproduction",
                )
            )
        return join(parts)

    def _original(
        self, run: RunFolder, entry: dict[str, Any], rep_wav: Path, shown: set[Path]
    ) -> tuple[Html, float | None]:
        """The original excerpt a reproduction is compared with, decoded from the song."""
        import numpy as np

        from noizenet.audio import load, write

        song = Path(str(entry.get("path", "")))
        caption: list[Any] = [el("strong", "original"), f" {_track_label(entry)}"]
        sr = _sr(run)
        try:
            rep = load(rep_wav, sr=sr)
            seconds = round(rep.size / sr, 6)
            key = (str(song), seconds, sr)
            if key not in self._originals:
                # ``noizenet reproduce`` and the demo start at the song's beginning
                y = load(song, sr=sr, duration=seconds)
                stem = self._asset_stem(f"original_{song.stem}")
                path = write(self.assets.dir / f"{stem}.wav", y, sr=sr)
                views = _draw_views(y, sr, self.assets.dir, stem, f"original {song.name}")[-1]
                self._originals[key] = (y, path, views)
            y, path, views = self._originals[key]
        except NoizeNetError as exc:
            return el(
                "figure", el("figcaption", *caption), el("p", str(exc), class_="problem")
            ), None
        except (OSError, ValueError) as exc:
            return el(
                "figure",
                el("figcaption", *caption),
                el("p", f"original not shown: {exc}", class_="problem"),
            ), None
        caption.append(el("br"))
        caption.append(el("span", f"first {seconds:g} s of {song}", class_="path"))
        card = self._audio_card(run, path, caption, shown, views=views)
        n = min(y.size, rep.size)
        err = (y[1:n] - rep[1:n]).astype(np.float64)
        power = float(np.sum(y[1:n].astype(np.float64) ** 2))
        snr = 10 * np.log10(power / max(float(np.sum(err**2)), 1e-20)) if n > 1 else None
        return card, snr

    def _corpus(self, run: RunFolder) -> Html:
        corpus = run.info.corpus
        parts: list[Any] = []
        if corpus.get("source") is not None:
            parts.append(el("p", "Source ", el("span", corpus["source"], class_="path")))
        for split, what in (("train", "Training"), ("val", "Validation"), ("skipped", "Skipped")):
            entries = [e for e in corpus.get(split) or [] if isinstance(e, dict)]
            if not entries:
                continue
            keys = _union_keys(entries, first=("id", "title", "artist", "genre", "reason"))
            rows = [
                [el("span", e.get(k, ""), class_="path") if k == "path" else e.get(k) for k in keys]
                for e in entries
            ]
            parts.append(
                table(keys, rows, caption=f"{what} tracks ({len(entries)})", row_headers=False)
            )
        return join(parts) if parts else el("p", "No corpus recorded.", class_="note")

    def _provenance(self, run: RunFolder) -> Html:
        parts: list[Any] = []
        if run.config:
            defaults = flatten(Config().to_dict())
            rows, classes = [], []
            for k, v in run.config.items():
                d = defaults.get(k)
                changed = k in defaults and v != d
                rows.append(
                    [el("mark", dotted(k)) if changed else k, v, d if k in defaults else "-"]
                )
                classes.append("diff" if changed else None)
            parts.append(
                table(
                    ["setting", "value", "default"],
                    rows,
                    caption="Settings (config.toml); highlighted: not the default",
                    row_classes=classes,
                )
            )
        info = {k: v for k, v in run.info.to_dict().items() if k not in ("corpus", "metrics")}
        parts.append(key_values(flatten(info), caption="Provenance (run.json)"))
        return join(parts)

    # -- building blocks ---------------------------------------------------------------------
    def _figure(self, png: Path, *, caption: str, alt: str) -> Html:
        return el("figure", self._img(png, alt=alt), el("figcaption", caption), class_="fit")

    def _img(self, png: Path, *, alt: str) -> Html:
        if not png.is_file():
            return el("p", f"{png}: no such figure", class_="problem")
        try:
            src = self.assets.url(png)
        except OSError as exc:
            return el("p", f"{png}: unreadable ({exc.strerror or exc})", class_="problem")
        size = _png_size(png)
        w, h = size if size else (None, None)
        img = el("img", src=src, alt=alt, width=w, height=h)
        # linked figures open at full size on a tap (a phone shows them small); browsers refuse
        # to navigate to data: URLs, so inlined ones are not links
        return img if self.assets.inline else el("a", img, href=src, class_="zoom")

    def _audio(self, wav: Path) -> Html:
        try:
            src = self.assets.url(wav)
        except OSError as exc:
            return el("p", f"{wav}: unreadable ({exc.strerror or exc})", class_="problem")
        fallback = el("a", f"download {wav.name}", href=src, download=wav.name)
        return el("audio", fallback, controls=True, preload="metadata", src=src)

    def _asset_path(self, name: str) -> Path:
        stem, _, suffix = name.rpartition(".")
        return self.assets.dir / f"{self._asset_stem(stem)}.{suffix}"

    def _asset_stem(self, stem: str) -> str:
        """A report-only file name not used yet in this report (two runs, two loss curves)."""
        candidate, i = stem, 1
        while candidate in self._asset_names:
            i += 1
            candidate = f"{stem}_{i}"
        self._asset_names.add(candidate)
        return candidate


# -- helpers --------------------------------------------------------------------------------
def _document(title: str, body: Html, names: list[str]) -> str:

    from noizenet import __version__

    css = files("noizenet.report").joinpath("style.css").read_text(encoding="utf-8")
    nav_items = []
    if len(names) > 1:
        nav_items.append(el("li", el("a", "Comparison", href="#comparison")))
    nav_items += [el("li", el("a", f"Run {n}", href=f"#run-{i}")) for i, n in enumerate(names, 1)]
    head = join(
        [
            Html('<meta charset="utf-8">'),
            el("meta", name="viewport", content="width=device-width, initial-scale=1"),
            el("meta", http_equiv="Content-Security-Policy", content=_CSP),
            el("meta", name="generator", content=f"noizenet {__version__}"),
            el("link", rel="icon", href="data:,"),
            el("title", title),
            el("style", Html(css)),
        ]
    )
    header = el(
        "header",
        el("h1", title),
        el("nav", el("ul", *nav_items), aria_label="Sections") if len(names) > 1 else None,
    )
    footer = el(
        "footer",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} by noizenet {__version__}. "
        "Figures and audio come from the run folders; this page loads nothing from the network.",
    )
    return (
        "<!doctype html>\n"
        + el("html", el("head", head), el("body", header, el("main", body), footer), lang="en")
        + "\n"
    )


def _draw_views(y: Any, sr: int, folder: Path, stem: str, title: str) -> list[Path]:
    from noizenet.analysis.figures import audio_figures

    return audio_figures(y, sr=sr, out_dir=folder, stem=stem, title=title)


def _belongs_to_wav(png: Path, run: RunFolder) -> bool:
    """A panel (``STEM_waveform.png`` ...) of one of the run's WAVs: shown via its views."""
    if png.name == "loss.png" and png.parent.name == "figures":
        return True
    stems = {w.stem for w in run.wavs}
    for suffix in (*VIEW_SUFFIXES, STRIP_SUFFIX):
        if png.stem.endswith("_" + suffix) and png.stem[: -len(suffix) - 1] in stems:
            return True
    return png.parent.name == "audio" and png.stem in stems  # a reproduction's comparison


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG header, so the page reserves space before images load."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _sr(run: RunFolder) -> int:
    from noizenet.audio import SAMPLE_RATE

    try:
        return int(run.info.sample_rate or SAMPLE_RATE)
    except (TypeError, ValueError):
        return SAMPLE_RATE


def _track_label(entry: dict[str, Any]) -> str:
    title, artist = entry.get("title"), entry.get("artist")
    if title and artist:
        return f"{title} by {artist} ({entry.get('id', '')})"
    return str(title or entry.get("id") or Path(str(entry.get("path", ""))).stem)


def _label(key: str) -> str:
    return key.replace("_", " ")


def _union_keys(rows: Iterable[dict[str, Any]], first: Sequence[str] = ()) -> list[str]:
    keys: dict[str, None] = {}
    rows = list(rows)
    for k in first:
        if any(k in r for r in rows):
            keys[k] = None
    for r in rows:
        for k in r:
            keys.setdefault(k, None)
    return list(keys)


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    """The numbers among flattened values (a one-element list counts as its element): what
    lines up across runs in the comparison table."""
    out = {}
    for k, v in d.items():
        if isinstance(v, list) and len(v) == 1:
            v = v[0]
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = v
    return out


#: Captions for the parts of ``evaluation.json`` as ``noizenet evaluate`` writes it; other
#: keys are shown under their own name.
_EVALUATION_CAPTIONS = {
    "columns": "Measured on held-out tracks, beside the baselines",
    "held_out": "Held-out tracks",
    "per_track": "Per held-out track",
    "generation": "Generation (free running)",
    "lpc": "Linear-prediction baseline",
    "skipped": "Skipped tracks",
}


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, dict | list) or (
        isinstance(v, list) and all(not isinstance(x, dict | list) for x in v)
    )


def _json_view(obj: Any, caption: str | None = None, depth: int = 0) -> Html:
    """evaluation.json, whatever its shape (``noizenet evaluate`` defines it): a table of tables
    becomes one matrix (rows: the inner names, e.g. metrics; columns: the outer ones, e.g. the
    model and its baselines), a list of records becomes rows, the rest names and values."""

    if depth > 4:
        return el("pre", json.dumps(obj, indent=1, default=str))
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        rows = [flatten(r) for r in obj]
        keys = _union_keys(rows)
        body = ([r.get(k) for k in keys] for r in rows)
        return table(keys, body, caption=caption, row_headers=False)
    if not isinstance(obj, dict):
        return key_values([(caption or "value", obj)])
    if depth == 0:
        caption_of = {k: _EVALUATION_CAPTIONS.get(k, k) for k in obj}
    else:
        caption_of = {k: f"{caption}: {k}" if caption else k for k in obj}
    matrices = {
        k: v
        for k, v in obj.items()
        if isinstance(v, dict)
        and v
        and all(isinstance(x, dict) for x in v.values())
        and all(_is_scalar(y) for x in v.values() for y in x.values())
    }
    records = {k: v for k, v in obj.items() if isinstance(v, list) and v and k not in matrices}
    records = {k: v for k, v in records.items() if all(isinstance(r, dict) for r in v)}
    scalars = {k: v for k, v in obj.items() if _is_scalar(v) and k not in records}
    rest = {k: v for k, v in obj.items() if k not in matrices | records | scalars}
    parts: list[Any] = []
    for k, v in matrices.items():
        columns = list(v)
        rows = _union_keys(v.values())
        body = ([_label(r)] + [v[c].get(r, "") for c in columns] for r in rows)
        parts.append(table(["", *columns], body, caption=caption_of[k]))
    for k, v in records.items():
        parts.append(_json_view(v, caption_of[k], depth + 1))
    for k, v in rest.items():
        parts.append(_json_view(v, caption_of[k], depth + 1))
    if scalars:
        parts.append(key_values(scalars, caption=caption if depth else None))
    return join(parts)


def _unique_names(paths: list[Path]) -> list[str]:
    """Folder names, lengthened by parent folders until they tell the runs apart."""
    parts = [p.absolute().parts for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{n} ({i})" for i, n in enumerate(names, 1)]
