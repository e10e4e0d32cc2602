"""Train a NoizeNet from a config into a run folder (the Python twin of ``noizenet train``).

Besides the files every run has (``config.toml``, ``model.safetensors``, ``run.json``,
``metrics.jsonl``), training keeps ``checkpoints/`` (the last ``train.keep_checkpoints``
positions and ``best.safetensors``) and ``events.jsonl`` (skipped steps, rollbacks, interruptions,
resumes). ``train(None, RUN, resume=True)`` continues a run from its last checkpoint; killed at any
point and resumed, a run ends with the same weights as one that was never interrupted (bit for
bit on CPU).

Started by torchrun (``WORLD_SIZE`` > 1), every process runs :func:`train` with the same
arguments and they train one run together (:mod:`noizenet.train.distributed`): rank 0 prepares
and writes the run folder, and returns the run; the other ranks return None.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from noizenet import limits
from noizenet.config import WHOLE_SONG, Config
from noizenet.errors import (
    CheckpointError,
    ConfigError,
    NoizeNetError,
    TrainingDivergedError,
    TrainingInterruptedError,
)
from noizenet.locks import hold_run_folder, releasing_run_locks
from noizenet.run import (
    RUN_DIRS,
    RUN_FILES,
    Run,
    RunInfo,
    RunWriter,
    read_run_info,
    save_weights,
    versions,
)
from noizenet.run.writer import now
from noizenet.tensorfile import one_line
from noizenet.train.distributed import process_group, rank_device
from noizenet.train.memory import training_memory
from noizenet.train.takes import TrainingTakes, song_seed

# the only settings a resumed run may change (none of them changes the weights it trains)
RESUMABLE = ("train.epochs", "train.max_time", "train.sample_every", "train.sample_seconds")


def prepare_run_folder(out: Path, *, force: bool = False) -> Any:
    """Create ``out`` and take its lock; refuse to overwrite another run unless ``force``.

    The lock comes first: of two trainers started at once on one folder, one is refused before
    it looks for ``run.json`` or deletes anything. Returns the :class:`~noizenet.locks.RunLock`.
    """

    out = Path(out)
    lock = hold_run_folder(out)
    if (out / "run.json").exists() and not force:
        raise NoizeNetError(
            f"{out}: already holds a run (use --resume to continue it, or --force to overwrite it)"
        )
    if force:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for sub in RUN_DIRS:
            shutil.rmtree(out / sub, ignore_errors=True)
    return lock


def seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def changed_settings(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """Dotted setting name -> (old, new) for every setting that differs."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(old.to_dict()), flat(new.to_dict())
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def resume_config(out: str | Path, config: Config | None = None) -> Config:
    """The config a resumed run in ``out`` trains with: its own ``config.toml``, where only
    ``train.epochs`` (to train further) and ``train.max_time`` (this session's budget) may
    change. Anything else raises :class:`ConfigError`."""
    out = Path(out)
    if not (out / "run.json").is_file():
        raise NoizeNetError(f"{out}: no run to resume here (no run.json)")
    saved = Config.load(out / "config.toml")
    if config is None:
        return saved
    config.validate()
    diffs = {k: v for k, v in changed_settings(saved, config).items() if k not in RESUMABLE}
    if diffs:
        what = "; ".join(
            f"{k} is {old!r} in the run, not {new!r}" for k, (old, new) in diffs.items()
        )
        raise ConfigError(
            f"{out}: a resumed run keeps its settings ({what}); only --epochs, --max-time, "
            "--sample-every and --sample-seconds may change"
        )
    return config


def train(
    config: Config | None,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    log: Any = print,
    attach: Callable[[Any], None] | None = None,
) -> Any:
    """Train the model ``config`` describes and write its run folder to ``out``: settings,
    weights, run.json, metrics and events. Figures and the report are drawn by the verb that
    trained (:func:`noizenet.report.finish_run`), never here.

    Parameters
    ----------
    config : the settings; with ``resume``, None means the run's own ``config.toml``
    out : run folder
    resume : continue the run in ``out`` from its last checkpoint (same data order, RNG states,
        optimizer state, hidden state). Only ``train.epochs`` may differ from the run's config,
        to train further; a run that is already complete returns at once.
    force : overwrite a run already in ``out`` (not with ``resume``)
    attach : called with the :class:`~noizenet.train.trainer.Trainer` before training starts, to
        hang callbacks on it (``on_step``, ``on_epoch``, ``on_checkpoint``, ``on_event``)

    Returns
    -------
    Run
        the opened :class:`~noizenet.run.Run`

    Raises
    ------
    TrainingInterruptedError
        on SIGINT or SIGTERM, after saving a checkpoint at the next step boundary
    TrainingDivergedError
        when training keeps diverging

    Example
    -------
    >>> from noizenet import Config, train
    >>> cfg = Config().with_overrides({"train.epochs": 2})  # doctest: +SKIP
    >>> run = train(cfg, "runs/mine")  # doctest: +SKIP
    >>> more = cfg.with_overrides({"train.epochs": 4})  # doctest: +SKIP
    >>> run = train(more, "runs/mine", resume=True)  # doctest: +SKIP
    """

    with process_group() as dist, releasing_run_locks():
        try:
            return _train(
                dist,
                config,
                Path(out),
                resume=resume,
                force=force,
                progress=progress and dist.main,
                log=log if dist.main else _quiet,
                attach=attach,
            )
        except NoizeNetError as exc:
            # rank 0 says what every rank hit (a refused config, an interruption, divergence);
            # other ranks stay quiet about it, so that torchrun's output holds it once
            if not dist.main and isinstance(exc, _collective_errors()):
                exc.quiet = True  # type: ignore[attr-defined]
            raise


def _quiet(*_: Any) -> None:
    pass


def _collective_errors() -> tuple[type[Exception], ...]:
    """Errors every rank raises together, which rank 0 reports for all."""

    return (_RankZeroError, TrainingInterruptedError, TrainingDivergedError)


class _RankZeroError(NoizeNetError):
    """The error rank 0 hit while preparing the run, raised again on the other ranks."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _prepare(
    dist: Any, config: Config | None, out: Path, *, resume: bool, force: bool, log: Any
) -> tuple[Config, RunInfo | None, bool]:
    """Rank 0 checks the settings and makes (or reopens) the run folder; every rank gets its
    config, the run's ``run.json`` (resuming) and whether the run is already complete.

    Only rank 0 reads or writes the folder, so other nodes need not see it; an error there is
    raised on every rank (see :class:`_RankZeroError`) instead of leaving them waiting.
    """
    payload: dict[str, Any] | None = None
    if dist.main:
        try:
            config, info, complete = _prepare_folder(
                dist, config, out, resume=resume, force=force, log=log
            )
        except NoizeNetError as exc:
            code = getattr(exc, "exit_code", 2)
            dist.broadcast_json({"error": str(exc), "exit_code": code})
            raise
        saved = info.to_dict() if info is not None else None
        payload = {"config": config.to_dict(), "info": saved, "complete": complete}
    payload = dist.broadcast_json(payload)
    if "error" in payload:
        raise _RankZeroError(payload["error"], payload["exit_code"])
    info = RunInfo.from_dict(payload["info"]) if payload["info"] is not None else None
    return Config.from_dict(payload["config"]), info, payload["complete"]


def _prepare_folder(
    dist: Any, config: Config | None, out: Path, *, resume: bool, force: bool, log: Any
) -> tuple[Config, RunInfo | None, bool]:
    from noizenet.models import config_family
    from noizenet.train.trainer import check_precision

    info: RunInfo | None = None
    lock = None
    if resume:
        if force:
            raise NoizeNetError(f"{out}: --resume continues a run, --force overwrites it; pick one")
        if out.is_dir():  # one writer per run folder: a run still training is not resumed
            lock = hold_run_folder(out, create=False)
        config = resume_config(out, config)
        info = read_run_info(out / "run.json")
        done = info.epochs_done
        if config.train.epochs < done:
            raise ConfigError(
                f"train.epochs: {out} has already trained {done} epochs; ask for at least that many"
            )
        if info.status == "complete" and config.train.epochs == done:
            log(f"{out}: training already complete ({done} epochs done); --epochs N trains further")
            return config, info, True
    elif config is None:
        raise ConfigError("a new run needs a config")
    else:
        config.validate()
    if config.train.batch % dist.world:
        raise ConfigError(
            f"train.batch: {config.train.batch} streams cannot be shared evenly by "
            f"{dist.world} processes; use a multiple of {dist.world}"
        )
    # an unknown family, settings it cannot train, a missing GPU or an unsupported precision
    # are refused before the folder is made
    config_family(config.model).check_config(config)
    check_precision(
        config.train.precision, rank_device(config.train.device, dist), cell=config.model.cell
    )
    if not resume:
        lock = prepare_run_folder(out, force=force)
    if lock is not None:
        lock.announce()  # from here on a second writer is told who holds the folder
    return config, info, False


def _train(
    dist: Any,
    config: Config | None,
    out: Path,
    *,
    resume: bool,
    force: bool,
    progress: bool,
    log: Any,
    attach: Callable[[Any], None] | None,
) -> Any:
    import torch

    from noizenet.codecs import codec_from_state, make_codec
    from noizenet.corpus import load_corpus
    from noizenet.corpus.stats import Moments, moments
    from noizenet.models import spec_from_config
    from noizenet.models.loss import pad_value
    from noizenet.train.checkpoint import CheckpointStore, checkpoint_name, share_checkpoint
    from noizenet.train.encoded import EncodedTrack
    from noizenet.train.streams import Streams
    from noizenet.train.trainer import Trainer, rank_seed

    if config is not None and config.train.tensorboard:
        from noizenet.train.tensorboard import require_tensorboard

        require_tensorboard()  # at once, before any data is read
    config, info, complete = _prepare(dist, config, out, resume=resume, force=force, log=log)
    if complete:
        return Run.open(out) if dist.main else None
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = rank_device(config.train.device, dist)

    # every rank reads the corpus; the decode cache (and the embedded corpus) is built by the
    # first to take its lock, and the others find it built
    corpus = load_corpus(config.data, seed=config.seed, progress=progress, log=log)
    log(f"decode cache: {corpus.cache.summary()}")
    for track, reason in corpus.skipped:
        log(f"skipped {track.id}: {reason}")
    log(f"corpus: {corpus.summary()}")
    # Tracks are memory-mapped views: statistics are read in chunks, values encoded per batch
    # (FFT blocks span many samples, so those tracks are encoded whole, once).
    if info is None:
        codec = make_codec(config.codec).fit([t.y for t in corpus.train])
    else:
        _check_same_corpus(out, info, corpus)
        codec = codec_from_state(info.codec)  # exactly the statistics the run started with

    def values(t: Any) -> Any:
        return codec.encode(np.asarray(t.y)) if codec.hop > 1 else EncodedTrack(t.y, codec)

    train_values = [values(t) for t in corpus.train]
    val_values = [values(t) for t in corpus.val]
    train_rms = Moments.combine(t.moments or moments(t.y) for t in corpus.train).rms

    seed_everything(config.seed)  # the same initial weights on every rank
    spec = spec_from_config(config.model, codec)
    model = _build_model(spec)
    if dist.enabled:  # each rank its own dropout masks (its streams are its own)
        torch.manual_seed(rank_seed(config.seed, dist.rank))
    chunk = None if config.train.chunk == WHOLE_SONG else int(config.train.chunk)
    streams = Streams(
        train_values,
        batch=config.train.batch,
        chunk=chunk,
        stateless=config.train.stateless,
        stride=config.train.stride or None,
        lookback=model.lookback,
        pad=pad_value(spec),
    )

    _check_step_memory(model, streams, config, dist, device)

    if info is None:
        info = RunInfo(
            created=now(),
            seed=config.seed,
            sample_rate=config.data.sample_rate,
            codec=codec.state(),
            model=spec.to_dict(),
            parameters=sum(p.numel() for p in model.parameters()),
            train_rms=train_rms,
            versions=versions(),
            corpus={
                "source": config.data.source,
                "train": [_track_info(t) for t in corpus.train],
                "val": [_track_info(t) for t in corpus.val],
                "skipped": [{**t.describe(), "reason": r} for t, r in corpus.skipped],
                "cache": dataclasses.asdict(corpus.cache),
            },
        )
    elif info.model != spec.to_dict():
        raise NoizeNetError(f"{out / 'run.json'}: model {info.model} does not match config")
    info.device = str(device)
    info.precision = config.train.precision
    info.distributed = {"world_size": dist.world, "backend": _backend_name(dist, device)}
    writer = RunWriter(out, info) if dist.main else None  # rank 0 alone writes the run folder
    if writer is not None:
        writer.start(config)
    takes = None  # rank 0 alone makes the training takes
    if writer is not None and config.train.sample_seconds > 0:
        takes = TrainingTakes(
            writer.paths.audio,
            config.train,
            codec,
            sr=config.data.sample_rate,
            train_rms=train_rms,
            seed=config.seed,
            song=song_seed(corpus.val[0], config.data.sample_rate) if corpus.val else None,
        )

    trainer = Trainer(
        model,
        streams,
        config.train,
        seed=config.seed,
        val_tracks=val_values,
        device=device,
        progress=progress,
        dist=dist,
    )
    store = CheckpointStore(out / "checkpoints", keep=config.train.keep_checkpoints)

    def records(tr: Trainer) -> list[dict[str, Any]]:
        return [r.record() for r in tr.history]

    if resume:
        ckpt = None
        if dist.main:  # rank 0 reads the checkpoint and hands it to the others
            store.clean_temporaries()
            ckpt = store.latest(log=log)
        ckpt = share_checkpoint(dist, ckpt)
        if ckpt is not None:
            try:
                trainer.restore(ckpt)  # any world size: the state is re-sliced to the ranks
            except CheckpointError as exc:
                raise CheckpointError(f"{ckpt.path or 'checkpoint'}: {exc}") from None
        if writer is not None:
            if ckpt is None:  # killed before the first checkpoint: nothing to keep
                log(f"{out}: no usable checkpoint yet; training starts over")
                writer.events.truncate(0)
                writer.rewrite_metrics([])
            else:
                writer.events.truncate(int(ckpt.meta.get("run", {}).get("events", 0)))
                # lines logged after this checkpoint will be logged again, exactly once; later
                # checkpoints (a newer one that did not load) and a later best are dropped
                store.drop_after(ckpt.position)
                writer.rewrite_metrics(records(trainer))
                epoch, step = ckpt.position
                log(f"resuming {out} at epoch {epoch + 1} step {step} from {ckpt.path}")
                writer.events.append(
                    {"event": "resumed", "epoch": epoch + 1, "step": step, "world_size": dist.world}
                )
            writer.resumed()

    def make_takes(model: Any, epochs: int, step: int = 0) -> dict[str, Any]:
        assert takes is not None
        try:
            made = takes.make(model, epochs=epochs, step=step)
        except (NoizeNetError, OSError, ValueError, RuntimeError, MemoryError) as exc:
            # a take is a by-product: one that fails (a full disk, a family's kernel) is said
            # and recorded, and training goes on
            log(f"takes after epoch {epochs} not made: {one_line(exc)}")
            return {"takes_problem": one_line(exc)}
        said = ", ".join(
            f"{t['seed']} {t.get('problem') or _collapse(t.get('collapse_s'))}"
            for t in made["takes"]
        )
        where = f"after epoch {epochs}" + (f", {step} steps into the next" if step else "")
        log(f"takes {where} ({made['takes_s']:.1f} s; {takes.audio_dir}): {said}")
        return made

    def on_epoch(tr: Trainer, result: Any) -> None:
        record = result.record()
        val = "-" if record["val_loss"] is None else f"{record['val_loss']:.5g}"
        train_loss = "-" if record["train_loss"] is None else f"{record['train_loss']:.5g}"
        bits = ""
        if record.get("train_bits") is not None:
            vb = "-" if record["val_bits"] is None else f"{record['val_bits']:.3f}"
            bits = f" (bits/sample: train {record['train_bits']:.3f}, val {vb})"
        skipped = f", {result.skipped_steps} steps skipped" if result.skipped_steps else ""
        log(
            f"epoch {result.epoch}/{config.train.epochs}: train loss {train_loss}, "
            f"val loss {val}{bits}, {record['samples_per_s']:,.0f} samples/s{skipped}"
        )
        if takes is not None and takes.due(result.epoch):  # in the epoch's record
            result.extra.update(make_takes(tr.model, result.epoch))
            record = result.record()
        writer.epoch_done(record, tr.model, records(tr))

    def on_checkpoint(tr: Trainer, ckpt: Any, best: bool) -> None:
        ckpt.meta["run"] = {"events": writer.events.count}
        store.write(ckpt, best=best)

    def on_event(tr: Trainer, event: dict[str, Any]) -> None:
        writer.events.append(event)
        kind = event["event"]
        if kind == "skipped_step":
            log(
                f"epoch {event['epoch']} step {event['step']}: {event['reason']}, step skipped "
                f"({event['in_a_row']} in a row)"
            )
        elif kind == "rollback":
            log(
                f"rolled back to epoch {event['epoch']} step {event['step']} "
                f"with learning rate {event['lr']:.3g} ({event['reason']})"
            )
            # later checkpoints and metrics belong to the abandoned branch
            store.drop_after(tr.last_good.position)
            writer.rewrite_metrics(records(tr))

    if writer is not None:
        trainer.on_epoch.append(on_epoch)
        trainer.on_checkpoint.append(on_checkpoint)
        trainer.on_event.append(on_event)
    board = None
    if dist.main and config.train.tensorboard:
        from noizenet.train.tensorboard import TensorBoardLogger

        board = TensorBoardLogger(out / "tb").attach(trainer)
        if takes is not None:
            takes.board = board
    if attach is not None:
        attach(trainer)

    stop_takes: dict[str, Any] = {}
    try:
        with _stop_on_signals(trainer), board or contextlib.nullcontext():
            trainer.fit()
            # stopped at the time limit: the run's end, so its takes, unless the epoch it
            # stopped after already has them
            done = trainer.history[-1].extra if trainer.step == 0 and trainer.history else {}
            if trainer.stopped and takes is not None and "takes" not in done:
                stop_takes = make_takes(trainer.model, trainer.epoch, trainer.step)
    except TrainingInterruptedError as exc:
        if writer is not None:
            writer.set_status("interrupted")
            writer.events.append(
                {"event": "interrupted", "epoch": trainer.epoch + 1, "step": trainer.step}
            )
        name = checkpoint_name(trainer.epoch, trainer.step)
        how = "torchrun ... -m noizenet" if dist.enabled else "noizenet"
        raise TrainingInterruptedError(
            f"{out}: {exc}; checkpoint saved (checkpoints/{name}). "
            f"Resume with: {how} train --resume {shlex.quote(str(out))}",
            signum=exc.signum,
        ) from None
    except TrainingDivergedError as exc:
        if writer is not None:
            writer.set_status("diverged")
        raise TrainingDivergedError(f"{out}: {exc}") from None
    except torch.cuda.OutOfMemoryError:
        raise NoizeNetError(
            f"{out}: out of GPU memory at epoch {trainer.epoch + 1} step {trainer.step}; "
            "start again with a smaller --batch, --chunk or --hidden"
        ) from None
    if writer is None:
        return None
    writer.set_status(trainer.stopped or "complete")
    if trainer.stopped:  # mid-epoch too: the run folder generates from where training stopped
        save_weights(out / "model.safetensors", trainer.model)
        event = {"event": trainer.stopped, "epoch": trainer.epoch + 1, "step": trainer.step}
        event.update(stop_takes)
        writer.events.append(event)
        log(
            f"stopped at the time limit ({config.train.max_time:g} s) at epoch "
            f"{trainer.epoch + 1} step {trainer.step}; checkpoint saved. Continue with: "
            f"noizenet train --resume {shlex.quote(str(out))}"
        )
    run = Run.open(out)
    if corpus.skipped:  # said again at the very end, where a long run's reader looks
        log(corpus.skipped_summary())
    return run


_SIGNAL_ECHO_S = 5.0


@contextlib.contextmanager
def _stop_on_signals(trainer: Any) -> Iterator[None]:
    """SIGINT/SIGTERM ask the trainer to checkpoint and stop at the next step boundary; a second
    signal stops at once (KeyboardInterrupt). Handlers only exist in the main thread.

    Under torchrun one Ctrl-C arrives twice (from the terminal, and forwarded by torchrun's
    agent): a repeat within ``_SIGNAL_ECHO_S`` counts as the same request.
    """

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    first = [0.0]

    def handler(signum: int, frame: Any) -> None:
        if trainer.stop_signal:
            if trainer.dist.enabled and time.monotonic() - first[0] < _SIGNAL_ECHO_S:
                return
            raise KeyboardInterrupt
        trainer.stop_signal = signum
        first[0] = time.monotonic()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def _collapse(seconds: float | None) -> str:
    return "never collapses" if seconds is None else f"collapses at {seconds:.2f} s"


def _track_info(t: Any) -> dict[str, Any]:
    return {**t.track.describe(), "samples": int(t.y.size)}


def _check_same_corpus(out: Path, info: RunInfo, corpus: Any) -> None:
    """A resumed run must see exactly the songs it started with."""
    for split, tracks in (("train", corpus.train), ("val", corpus.val)):
        then = [(t.get("id"), t.get("samples")) for t in info.tracks(split)]
        now = [(t.id, int(t.y.size)) for t in tracks]
        if then != now:
            raise NoizeNetError(
                f"{out}: the {split} songs changed since this run started "
                f"({len(then)} then, {len(now)} now, or different files/lengths); "
                "a resumed run needs the same data"
            )


def _backend_name(dist: Any, device: Any) -> str | None:
    """The backend that carries this run's gradients, for ``run.json``."""
    if not dist.enabled:
        return None
    return "nccl" if device.type == "cuda" else "gloo"


def _check_step_memory(model: Any, streams: Any, config: Config, dist: Any, device: Any) -> None:
    """Refuse, before the first step, a batch x chunk whose training step cannot fit in this
    machine's memory (CPU only: a GPU says so itself, and is caught as out of GPU memory)."""
    if device.type != "cpu":
        return
    chunk = streams.chunk or int(streams.lengths.max())
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if dist.enabled else 1
    need = ranks_here * training_memory(
        model, dim=streams.dim, batch=streams.batch // dist.world, chunk=chunk, device=device
    )
    what = f"training --batch {config.train.batch} x --chunk {config.train.chunk}"
    limits.check(limits.Need(memory=need), what)


def _build_model(spec: Any) -> Any:
    from noizenet.models import build

    try:
        return build(spec)
    except (MemoryError, RuntimeError) as exc:
        raise NoizeNetError(
            f"the model ({spec.to_dict()}) does not fit in memory ({one_line(exc)})"
        ) from None
