"""What the studio reads from RUNS_DIR: the run folders below it, their summaries and takes,
and the one check every browser-given path passes (it must stay inside RUNS_DIR).

Run folders are read leniently with the report's reader (:mod:`noizenet.report.folder`), so a
run still training, cut short or from another version still shows. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from noizenet.errors import NoizeNetError
from noizenet.locks import lock_holder
from noizenet.report.folder import RunFolder, describe_take, read_run
from noizenet.run import parse_take_name

MAX_DEPTH = 4  # run folders are looked for this many folders below RUNS_DIR (experiments nest)
SERVED_SUFFIXES = (".wav", ".png")  # the only files the studio hands to the browser


class RefusedError(NoizeNetError):
    """A request the studio will not serve; ``status`` is its HTTP status code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def inside(root: Path, relative: str) -> Path:
    """``root / relative`` resolved, refused (403) unless it stays inside ``root``.

    Symbolic links are resolved first, so a link inside RUNS_DIR pointing elsewhere is refused
    too; absolute paths, ``..`` and NUL bytes never get further than this function.
    """
    if not isinstance(relative, str) or "\x00" in relative:
        raise RefusedError("invalid path", 400)
    if relative.startswith(("/", "\\")) or os.path.isabs(relative):
        raise RefusedError(f"path {relative!r} is outside the runs folder", 403)
    root = root.resolve()
    path = (root / relative).resolve()
    if path != root and not path.is_relative_to(root):
        raise RefusedError(f"path {relative!r} is outside the runs folder", 403)
    return path


def run_id(root: Path, run_dir: Path) -> str:
    """A run's name in the studio: its folder relative to RUNS_DIR, with ``/`` separators."""
    return run_dir.resolve().relative_to(root.resolve()).as_posix()


def open_run_dir(root: Path, rid: str) -> Path:
    """The run folder named ``rid`` (a :func:`run_id`), inside RUNS_DIR and holding run.json."""
    path = inside(root, rid)
    if path == root.resolve() and rid not in ("", "."):
        raise RefusedError(f"no run {rid!r}", 404)
    if not (path / "run.json").is_file():
        raise RefusedError(f"no run {rid!r} in the runs folder", 404)
    return path


def find_runs(root: Path) -> list[Path]:
    """Every run folder (a folder holding run.json) below ``root``, newest first.

    Hidden folders, symbolic links and a run's own ``checkpoints``/``audio``/``figures`` are not
    walked; a run inside a run (experiments keep theirs in ``runs/``) is found.
    """
    root = Path(root)
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if (folder / "run.json").is_file():
            found.append(folder)
        if depth >= MAX_DEPTH:
            return
        try:
            children = sorted(folder.iterdir())
        except OSError:
            return
        for child in children:
            if child.name.startswith(".") or child.is_symlink() or not child.is_dir():
                continue
            if child.name in ("checkpoints", "weights", "audio", "figures", "tb"):
                continue
            walk(child, depth + 1)

    if root.is_dir():
        walk(root, 0)
    return sorted(found, key=_newest, reverse=True)


def _newest(run_dir: Path) -> float:
    """When a run last changed: its run.json or metrics, whichever was written last."""
    times = []
    for name in ("run.json", "metrics.jsonl"):
        with contextlib.suppress(OSError):
            times.append((run_dir / name).stat().st_mtime)
    return max(times, default=0.0)


def training_now(run_dir: Path, studio_jobs: set[Path] = frozenset()) -> bool:  # type: ignore[assignment]
    """Whether a process is training ``run_dir`` right now.

    Any process counts: the run folder's lock (:func:`noizenet.locks.lock_holder`) says so,
    and a training job this studio started counts from the moment it is started. run.json's
    ``training`` status alone is not enough, since a killed run keeps it.
    """
    return run_dir.resolve() in studio_jobs or lock_holder(run_dir) is not None


def status_of(run_dir: Path, info: dict[str, Any], studio_jobs: set[Path]) -> str:
    """complete, interrupted, diverged, training now, or what run.json says otherwise."""
    if training_now(run_dir, studio_jobs):
        return "training now"
    status = info.get("status")
    if status == "training":  # nobody is training it: it was killed without a word
        return "stopped (killed while training)"
    return str(status) if status else "unknown"


def _num(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def loss_points(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch losses for the page's curve (numbers only; anything else becomes null)."""
    return [
        {
            "epoch": _num(r.get("epoch")),
            "train_loss": _num(r.get("train_loss")),
            "val_loss": _num(r.get("val_loss")),
        }
        for r in metrics
    ]


def checkpoint_choices(run_dir: Path) -> list[str]:
    """The checkpoints generation may start from, as ``--checkpoint`` names them: ``last``
    (model.safetensors), ``best`` (the epoch with the lowest validation loss, when its weights
    are kept) and ``epoch:N`` for every epoch whose weights the run folder keeps."""
    from noizenet.run import RunPaths, best_epoch, read_metrics

    paths = RunPaths(Path(run_dir))
    kept = paths.epoch_weights_kept()
    best = best_epoch(read_metrics(run_dir))
    return [
        "last",
        *(["best"] if best is not None and best in kept else []),
        *(f"epoch:{n}" for n in sorted(kept)),
    ]


def summary(root: Path, run: RunFolder, studio_jobs: set[Path]) -> dict[str, Any]:
    """What the Runs page shows of one run, as JSON-ready data."""
    info, config = run.info.to_dict(), run.config
    model = info.get("model") if isinstance(info.get("model"), dict) else {}
    codec = info.get("codec") if isinstance(info.get("codec"), dict) else {}
    metrics = info.get("metrics") if isinstance(info.get("metrics"), dict) else {}
    loss_png = run.path / "figures" / "loss.png"
    corpus = info.get("corpus") if isinstance(info.get("corpus"), dict) else {}
    val = [e for e in corpus.get("val") or [] if isinstance(e, dict)]
    return {
        "id": run_id(root, run.path),
        "model": {
            "cell": model.get("cell", config.get("model.cell")),
            "hidden": model.get("hidden", config.get("model.hidden")),
            "layers": model.get("layers", config.get("model.layers")),
        },
        "codec": codec.get("name", config.get("codec.name")),
        "epochs": _num(metrics.get("epochs")),
        "epochs_planned": config.get("train.epochs"),
        "val_loss": _num(metrics.get("val_loss")),
        "train_loss": _num(metrics.get("train_loss")),
        "status": status_of(run.path, info, studio_jobs),
        "created": str(info.get("created", "")),
        "losses": loss_points(run.metrics),
        "loss_png": run_id(root, loss_png) if loss_png.is_file() else None,
        "takes": len(run.wavs),
        "val_songs": [{"index": i, "label": _song_label(e)} for i, e in enumerate(val)],
        "problems": run.problems,
    }


def _song_label(entry: dict[str, Any]) -> str:
    title, artist = entry.get("title"), entry.get("artist")
    if title and artist:
        return f"{title} by {artist}"
    return str(title or entry.get("id") or Path(str(entry.get("path", ""))).name)


def val_song_path(run_dir: Path, index: int) -> Path:
    """The path run.json gives for validation song ``index`` (the browser sends the index)."""
    run = read_run(run_dir)
    val = run.info.tracks("val")
    if not isinstance(index, int) or not 0 <= index < len(val) or not isinstance(val[index], dict):
        raise RefusedError(f"the run has no validation song {index!r}", 400)
    path = val[index].get("path")
    if not path:
        raise RefusedError(f"validation song {index} has no path in run.json", 400)
    return Path(str(path))


def takes(root: Path, run: RunFolder) -> list[dict[str, Any]]:
    """Every WAV in the run's audio/, newest first, with what its name says made it."""
    out = []
    for wav in run.wavs:
        try:
            stat = wav.stat()
        except OSError:
            continue
        spectrogram = None
        for folder in (wav.parent, run.path / "figures"):
            png = folder / f"{wav.stem}_spectrogram.png"
            if png.is_file():
                spectrogram = run_id(root, png)
                break
        kind = "reproduction" if wav.stem.startswith("reproduction_") else "generated"
        out.append(
            {
                "name": wav.name,
                "file": run_id(root, wav),
                "kind": kind,
                "settings": take_settings(wav.stem),
                "caption": describe_take(wav.stem),
                "bytes": stat.st_size,
                "modified": stat.st_mtime,
                "spectrogram": spectrogram,
            }
        )
    return sorted(out, key=lambda t: t["modified"], reverse=True)


def take_settings(stem: str) -> dict[str, Any]:
    """What a take's name says made it (:func:`noizenet.run.parse_take_name`), unset fields
    left out; empty for a file not named by NoizeNet."""
    name = parse_take_name(stem)
    if name is None:
        return {}
    fields = {
        "seed": name.seed,
        "epochs": name.epochs,
        "checkpoint": name.checkpoint,
        "variation": name.variation,
        "injection": name.inject,
        "temperature": None if name.temperature is None else "{:g}:{:g}".format(*name.temperature),
        "top_p": name.top_p,
    }
    return {k: v for k, v in fields.items() if v is not None}


def compare(root: Path, a: Path, b: Path) -> dict[str, Any]:
    """Two runs side by side: their metrics, the settings that differ, and their takes."""
    ra, rb = read_run(a), read_run(b)
    ma, mb = dict(ra.info.metrics), dict(rb.info.metrics)
    keys = list(dict.fromkeys([*ma, *mb]))
    return {
        "a": run_id(root, a),
        "b": run_id(root, b),
        "metrics": [[k, ma.get(k), mb.get(k)] for k in keys],
        "settings": [[k, x, y] for k, (x, y) in differing_settings(ra, rb).items()],
        "takes_a": takes(root, ra),
        "takes_b": takes(root, rb),
    }


def differing_settings(a: RunFolder, b: RunFolder) -> dict[str, tuple[Any, Any]]:
    """Dotted setting -> (a's, b's) for every setting that differs; the trainer's own
    :func:`~noizenet.train.changed_settings` when both configs load, else the raw TOML."""
    from noizenet.config import Config
    from noizenet.train import changed_settings

    try:
        return changed_settings(
            Config.load(a.path / "config.toml"), Config.load(b.path / "config.toml")
        )
    except (NoizeNetError, OSError, ValueError):
        keys = list(dict.fromkeys([*a.config, *b.config]))
        return {
            k: (a.config.get(k), b.config.get(k))
            for k in keys
            if a.config.get(k) != b.config.get(k)
        }
