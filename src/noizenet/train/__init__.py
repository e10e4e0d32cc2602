"""Train a NoizeNet from a config into a run folder (the Python twin of ``noizenet train``)."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.config import WHOLE_SONG, Config
from noizenet.errors import NoizeNetError

RUN_FILES = ("config.toml", "model.safetensors", "run.json", "metrics.jsonl")


def prepare_run_folder(out: Path, *, force: bool = False) -> None:
    """Create ``out``; refuse to overwrite another run unless ``force``."""
    out = Path(out)
    if (out / "run.json").exists() and not force:
        raise NoizeNetError(f"{out}: already holds a run (use --force to overwrite it)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".noizenet-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise NoizeNetError(f"{out}: cannot write here ({exc.strerror or exc})") from None
    if force:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for sub in ("figures", "audio"):
            shutil.rmtree(out / sub, ignore_errors=True)


def seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def train(
    config: Config,
    out: str | Path,
    *,
    force: bool = False,
    progress: bool = True,
    figures: bool = True,
    log: Any = print,
) -> Any:
    """Train the model ``config`` describes and write a complete run folder to ``out``.

    Returns the opened :class:`~noizenet.run.Run`.

    Example
    -------
    >>> from noizenet import Config, train
    >>> cfg = Config().with_overrides({"train.epochs": 2})  # doctest: +SKIP
    >>> run = train(cfg, "runs/mine")  # doctest: +SKIP
    """
    import torch

    from noizenet.codecs import make_codec
    from noizenet.corpus import load_corpus
    from noizenet.corpus.stats import Moments, moments
    from noizenet.io import append_jsonl, atomic_write_json
    from noizenet.models import ModelSpec, NoizeNet
    from noizenet.run import Run, save_weights, versions
    from noizenet.train.encoded import EncodedTrack
    from noizenet.train.streams import Streams
    from noizenet.train.trainer import Trainer, pick_device

    config.validate()
    out = Path(out)
    prepare_run_folder(out, force=force)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = pick_device(config.train.device)

    corpus = load_corpus(config.data, seed=config.seed, progress=progress, log=log)
    log(f"decode cache: {corpus.cache.summary()}")
    for track, reason in corpus.skipped:
        log(f"skipped {track.id}: {reason}")
    log(f"corpus: {corpus.summary()}")
    # Tracks are memory-mapped views: statistics are read in chunks, values encoded per batch.
    codec = make_codec(config.codec).fit([t.y for t in corpus.train])
    train_values = [EncodedTrack(t.y, codec) for t in corpus.train]
    val_values = [EncodedTrack(t.y, codec) for t in corpus.val]
    train_rms = Moments.combine(t.moments or moments(t.y) for t in corpus.train).rms

    seed_everything(config.seed)
    spec = ModelSpec(
        cell=config.model.cell,
        hidden=config.model.hidden,
        layers=config.model.layers,
        dropout=config.model.dropout,
        in_dim=codec.dim,
        out_dim=codec.dim,
    )
    model = NoizeNet(spec)
    chunk = None if config.train.chunk == WHOLE_SONG else int(config.train.chunk)
    streams = Streams(
        train_values, batch=config.train.batch, chunk=chunk, stateless=config.train.stateless
    )

    info: dict[str, Any] = {
        "status": "training",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": config.seed,
        "sample_rate": config.data.sample_rate,
        "codec": codec.state(),
        "model": spec.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_rms": train_rms,
        "device": str(device),
        "versions": versions(),
        "corpus": {
            "source": config.data.source,
            "train": [{**t.track.describe(), "samples": int(t.y.size)} for t in corpus.train],
            "val": [{**t.track.describe(), "samples": int(t.y.size)} for t in corpus.val],
            "skipped": [{**t.describe(), "reason": r} for t, r in corpus.skipped],
            "cache": dataclasses.asdict(corpus.cache),
        },
        "metrics": {},
    }
    config.save(out / "config.toml")
    atomic_write_json(out / "run.json", info)

    trainer = Trainer(
        model,
        streams,
        config.train,
        seed=config.seed,
        val_tracks=val_values,
        device=device,
        progress=progress,
    )

    def checkpoint(tr: Trainer, result: Any) -> None:
        record = result.record()
        append_jsonl(out / "metrics.jsonl", record)
        save_weights(out / "model.safetensors", tr.model)
        info["metrics"] = {
            "epochs": result.epoch,
            "train_loss": result.train_loss,
            "val_loss": result.val_loss,
            "samples_per_s": record["samples_per_s"],
        }
        atomic_write_json(out / "run.json", info)
        val = "-" if result.val_loss is None else f"{result.val_loss:.5g}"
        log(
            f"epoch {result.epoch}/{config.train.epochs}: train loss {result.train_loss:.5g}, "
            f"val loss {val}, {record['samples_per_s']:,.0f} samples/s"
        )

    trainer.on_epoch.append(checkpoint)
    trainer.fit()
    info["status"] = "complete"
    atomic_write_json(out / "run.json", info)
    if corpus.skipped:  # said again at the end, where a long run's reader looks
        log(corpus.skipped_summary())
    run = Run.open(out)
    if figures:
        from noizenet.analysis.figures import loss_figure

        loss_figure(
            run.metrics(),
            out=out / "figures" / "loss.png",
            title=f"{spec.cell.upper()} hidden {spec.hidden}: loss per epoch",
        )
    return run
