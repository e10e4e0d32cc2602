"""The trainer: stateful truncated BPTT over parallel streams, validation, clipping, events.

It knows nothing about run folders or audio: it takes a model, the encoded training streams,
the encoded validation tracks and a :class:`~noizenet.config.TrainConfig`, and reports through
callbacks (``on_step``, ``on_epoch``, ``on_checkpoint``, ``on_event``) that logging, checkpoint
files and progress bars hang on (minGPT's shape).

Its whole position is a :class:`~noizenet.train.checkpoint.Checkpoint` (:meth:`Trainer.checkpoint`,
:meth:`Trainer.restore`): weights, optimizer state, epoch and step, the streams' hidden state,
every RNG state, loss accumulators and history. The data plan is a pure function of
``(seed, epoch)``, so a restored trainer continues exactly as if it had never stopped.

NaN guard (paper 5.4: once NaN appears the model does not recover): a step whose loss, gradient
or updated weights are non-finite is skipped or undone; after ``nan_patience`` such steps in a
row, the trainer rolls back to its last checkpoint with the learning rate halved; after
``max_rollbacks`` rollbacks that do not reach a new checkpoint it stops with
:class:`~noizenet.errors.TrainingDivergedError`. Checkpoints are only taken right after a good step,
so every checkpoint is a valid rollback target.

Scale-out (``dist``, see :mod:`noizenet.train.distributed`): each rank trains its share of the
streams, gradients are summed over ranks so that the update is the single-process update on the
whole batch, and every decision (skip, roll back, stop) is taken on reduced values that all
ranks share. ``cfg.precision`` runs the forward pass under autocast (bf16, or fp16 with a
gradient scaler); ``cfg.compile`` runs it through ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from noizenet.config import TrainConfig
from noizenet.errors import (
    CheckpointError,
    ConfigError,
    TrainingDivergedError,
    TrainingInterruptedError,
)
from noizenet.models import Model, State, build, spec_from_dict
from noizenet.models import state as states
from noizenet.models.loss import elementwise_loss, loss_name, sequence_loss_sum
from noizenet.progress import progress_bar
from noizenet.tensorfile import one_line
from noizenet.train.checkpoint import (
    Checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    rng_from_flat,
    rng_to_flat,
)
from noizenet.train.distributed import SINGLE, Dist, pick_device
from noizenet.train.streams import Batch, Streams

__all__ = ["Trainer", "check_precision", "elementwise_loss", "pick_device", "rank_seed"]


def check_precision(precision: str, device: torch.device, *, cell: str = "lstm") -> None:
    """Refuse, in one line, a precision this device cannot train ``cell`` in.

    Tried rather than listed: what autocast supports depends on the device, the PyTorch build
    and the CPU (oneDNN has a bf16 LSTM, but no fp16 one on most CPUs).
    """

    dtype = AMP_DTYPES[precision]
    if dtype is None:
        return
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.precision: {device} has no bf16 support; use fp16 or fp32")
    probe = build(spec_from_dict({"cell": cell, "hidden": 4, "dropout": 0.0})).to(device)
    x = torch.zeros(2, 3, 1, device=device)
    try:
        with torch.autocast(device.type, dtype=dtype):
            pred, _ = probe(x)
        pred.float().sum().backward()
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"train.precision: {precision} {cell.upper()} training does not run on "
            f"{device.type} here ({one_line(exc, 120)}); use "
            f"{'bf16 or fp32' if precision == 'fp16' else 'fp32'}"
        ) from None


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    val_loss: float | None
    samples: int
    seconds: float
    skipped_steps: int = 0
    loss: str = "mse"  # "ce": losses are cross-entropy in nats, also reported in bits
    # what the run adds to the epoch's record after it (its training takes): kept in the
    # history, so checkpoints, resumes and rollbacks rewrite metrics.jsonl with it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(self.seconds, 1e-9)

    def record(self) -> dict[str, Any]:
        """One ``metrics.jsonl`` line; a loss that is not finite (no good step) is ``null``."""
        return {
            "epoch": self.epoch,
            "train_loss": _finite_or_none(self.train_loss),
            "val_loss": _finite_or_none(self.val_loss),
            "samples": self.samples,
            "seconds": round(self.seconds, 4),
            "samples_per_s": round(self.samples_per_s, 1),
            "skipped_steps": self.skipped_steps,
            **(self.bits() if self.loss == "ce" else {}),
            **self.extra,
        }

    def bits(self) -> dict[str, float | None]:
        """Cross-entropy in bits per sample (log2(levels) for a uniform guess)."""
        val = None if self.val_loss is None else self.val_loss / math.log(2)
        return {
            "train_bits": _finite_or_none(self.train_loss / math.log(2)),
            "val_bits": _finite_or_none(val),
        }

    @classmethod
    def from_record(cls, r: dict[str, Any], loss: str) -> EpochResult:
        """A ``record`` read back; ``loss`` is the run's loss name (the model's, not guessed
        from the record's keys)."""
        train_loss = r["train_loss"]
        return cls(
            epoch=int(r["epoch"]),
            train_loss=math.nan if train_loss is None else float(train_loss),
            val_loss=r["val_loss"],
            samples=int(r["samples"]),
            seconds=float(r["seconds"]),
            skipped_steps=int(r.get("skipped_steps", 0)),
            loss=loss,
            extra={k: v for k, v in r.items() if k not in _RECORD_KEYS},
        )


_RECORD_KEYS = frozenset(
    {
        "epoch",
        "train_loss",
        "val_loss",
        "samples",
        "seconds",
        "samples_per_s",
        "skipped_steps",
        "train_bits",
        "val_bits",
    }
)


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@dataclass
class EpochProgress:
    """Loss accumulators of the epoch in progress (part of a checkpoint, so a resumed epoch
    reports the same loss as an uninterrupted one)."""

    total: float = 0.0  # sum of loss * samples over good steps
    count: int = 0  # samples in good steps
    skipped: int = 0  # skipped steps
    samples: int = 0  # samples in all steps
    seconds: float = 0.0  # training time so far (not validation)


class _RollbackError(Exception):
    """Raised inside an epoch when the NaN guard gives up on the current position."""


class _TimeLimitError(Exception):
    """Raised at a step boundary, after its checkpoint, once ``train.max_time`` is spent."""


@dataclass
class Trainer:
    model: Model
    streams: Streams
    cfg: TrainConfig
    seed: int = 0
    val_tracks: list[np.ndarray] = field(default_factory=list)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = True
    dist: Dist = SINGLE  # this process's rank among the run's processes (torchrun)
    on_step: list[Callable[[Trainer, Batch, float], None]] = field(default_factory=list)
    on_epoch: list[Callable[[Trainer, EpochResult], None]] = field(default_factory=list)
    # (trainer, checkpoint, is the best by validation loss so far)
    on_checkpoint: list[Callable[[Trainer, Checkpoint, bool], None]] = field(default_factory=list)
    # skipped steps, rollbacks: {"event": ..., "epoch": ..., "step": ..., ...}
    on_event: list[Callable[[Trainer, dict[str, Any]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model.to(self.device)
        if self.dist.enabled:  # (the streams refuse a batch the ranks cannot share evenly)
            with torch.no_grad():  # every rank starts from rank 0's weights
                for p in self.model.parameters():
                    self.dist.broadcast_tensor(p)
        self.optimizer = make_optimizer(self.model, self.cfg)
        self.amp_dtype = AMP_DTYPES[self.cfg.precision]
        # fp16 needs loss scaling (its gradients underflow); bf16 has fp32's range and does not
        self.scaler = make_grad_scaler(self.device, enabled=self.cfg.precision == "fp16")
        # the compiled module shares the model's parameters; checkpoints read self.model
        self.forward = torch.compile(self.model) if self.cfg.compile else self.model
        # a categorical head is trained with cross-entropy whatever train.loss says
        self.loss_name = loss_name(self.model.spec, self.cfg.loss)
        self.stream_dims = self.model.state_stream_dims()
        self.loss_fn = elementwise_loss(self.loss_name)
        self.epoch = 0  # epochs completed
        self.history: list[EpochResult] = []
        self.state: State | None = None  # carried hidden state of every stream
        self.step = 0  # next step within the current epoch
        self.global_step = 0  # steps taken (good or skipped) since training began
        self.progress_acc = EpochProgress()
        self.best_val_loss: float | None = None
        self.bad_streak = 0  # non-finite steps in a row
        self.rollbacks = 0  # rollbacks since the last checkpoint was reached
        self.skip_reason = ""  # why the last step was skipped
        self.poisoned = False  # the last update made the weights non-finite
        self.last_good: Checkpoint | None = None  # rollback target: the last checkpoint
        self.stop_signal = 0  # set (e.g. by a signal handler) to stop at the next step boundary
        self._pending = False  # a checkpoint is due at the next good step boundary
        self._saved_at: tuple[int, int] | None = None  # position of the last checkpoint
        self._stop_agreed = False  # distributed: some rank was asked to stop (all stop together)
        self.fit_started = math.inf  # perf_counter() at fit(): train.max_time counts from it
        self.stopped = ""  # why fit() returned before cfg.epochs ("time-limit"), or ""
        self.track_grad_norm = False  # measure grad_norm every step (a logger asks for it)
        self.grad_norm = math.nan  # the last good step's gradient norm, before clipping

    def out_of_time(self) -> bool:
        return 0 < self.cfg.max_time <= time.perf_counter() - self.fit_started

    # -- one step ----------------------------------------------------------------------------
    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device, non_blocking=True)

    def train_step(self, batch: Batch) -> float | None:
        """Forward, masked loss, backward, clip, update. Returns the loss, or None if skipped.

        A non-finite loss or gradient never reaches the weights: the step is skipped. With
        several ranks the returned loss is the whole batch's, the same on every rank.
        """
        x, y = self._tensor(batch.x), self._tensor(batch.y)
        mask = self._tensor(batch.mask).to(x.dtype)
        if self.state is None:
            self.state = self.model.init_state(x.shape[0], self.device)
        start = self.model.init_state(x.shape[0], self.device)  # learned: trains where used
        state = states.reset_streams(self.state, self._tensor(batch.reset), self.stream_dims, start)
        with self._autocast():
            pred, state = self.forward(x, state)
        # the loss in fp32 whatever the forward's precision; divided by the samples of the WHOLE
        # batch (all ranks), so that the ranks' gradients sum to the single-process gradient
        total = max(float(batch.total_samples), 1.0)
        loss = (self.loss_fn(pred.float(), y) * mask).sum() / total
        # a non-finite carried state would poison its stream for the rest of the song (and a
        # reset multiplies it by 0, which keeps NaN): zero such entries; finite ones are untouched
        self.state = states.finite(states.as_float32(states.detach(state)))
        self.optimizer.zero_grad(set_to_none=True)
        if self.dist.enabled:
            # every rank takes part in the reduction, whatever its own loss: decisions are taken
            # on the reduced loss and gradients, which every rank shares
            self.scaler.scale(loss).backward()
            value = self._reduce(loss.detach())
        else:
            value = float(loss.detach())
            if math.isfinite(value):  # a non-finite loss is skipped without a backward pass
                self.scaler.scale(loss).backward()
        if not math.isfinite(value):
            self.optimizer.zero_grad(set_to_none=True)
            self.skip_reason = "non-finite loss"
            return None
        params = list(self.model.parameters())
        self.scaler.unscale_(self.optimizer)  # clip the true gradients (no-op without fp16)
        if self.track_grad_norm:
            self.grad_norm = float(
                nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            )
        if self.cfg.clip_mode == "value":
            nn.utils.clip_grad_value_(params, self.cfg.clip)
            finite = _all_finite(p.grad for p in params if p.grad is not None)
        elif self.cfg.clip_mode == "norm":
            norm = nn.utils.clip_grad_norm_(params, self.cfg.clip)
            finite = bool(torch.isfinite(norm))
        else:
            finite = _all_finite(p.grad for p in params if p.grad is not None)
        if self.scaler.is_enabled():
            # fp16: an overflowing gradient is the scaler's business, not the NaN guard's: it
            # skips the update and lowers the scale, as it routinely does while finding one
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif not finite:
            self.optimizer.zero_grad(set_to_none=True)
            self.skip_reason = "non-finite gradient"
            return None
        else:
            self.optimizer.step()
        if not _all_finite(params):
            # finite gradients can still overflow the weights (a huge learning rate): the step
            # cannot be skipped any more, only undone by rolling back
            self.poisoned = True
            self.skip_reason = "non-finite weights after the update"
            return None
        return value

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _reduce(self, loss: torch.Tensor) -> float:
        """Sum gradients, loss and stop requests over ranks in ONE all-reduce; return the loss.

        Gradients of this rank's loss (its samples / the whole batch's) summed over ranks are the
        single-process gradient; every rank then holds identical gradients, so clipping, the NaN
        guard and the update agree on every rank without another message.
        """
        params = list(self.model.parameters())
        for p in params:
            if p.grad is None:  # an unused parameter: the buckets must line up across ranks
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params]
        asked = self.stop_signal or self.out_of_time()
        stop = torch.tensor([1.0 if asked else 0.0], device=loss.device)
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.reshape(1).float(), stop])
        self.dist.all_reduce_sum(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
        if float(flat[-1]) > 0:
            self._stop_agreed = True
        return float(flat[-2])

    # -- epochs ------------------------------------------------------------------------------
    def train_epoch(self) -> EpochResult:
        """Train from the current position to the end of the epoch, then validate.

        Starts mid-epoch when the trainer was restored there. Raises ``_RollbackError`` (handled by
        :meth:`fit`) when the NaN guard gives up on the current position.
        """

        self.model.train()
        if self.last_good is None:  # a rollback target before the first step
            self._pending = True
            self._boundary()
        if self.step == 0:
            self.state = None  # every epoch starts with fresh streams
            self.progress_acc = EpochProgress()
        acc = self.progress_acc
        t0 = time.perf_counter() - acc.seconds
        steps = self.streams.steps_per_epoch()
        every = self.cfg.checkpoint_every
        with progress_bar(
            total=steps,
            initial=self.step,
            desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}",
            unit="step",
            disable=not (self.progress and self.dist.main),
        ) as bar:
            for batch in self.streams.epoch(
                self.epoch,
                seed=self.seed,
                start_step=self.step,
                rank=self.dist.rank,
                world=self.dist.world,
            ):
                loss = self.train_step(batch)
                n = batch.total_samples  # every rank counts the whole batch, as one process would
                if loss is None:
                    acc.skipped += 1
                else:
                    acc.total += loss * n
                    acc.count += n
                acc.samples += n
                self.step = batch.step + 1
                self.global_step += 1
                acc.seconds = time.perf_counter() - t0
                for cb in self.on_step:
                    cb(self, batch, loss if loss is not None else math.nan)
                if loss is None:
                    self._bad_step(batch)
                else:
                    self.bad_streak = 0
                if self.step < steps:  # the epoch's end has its own checkpoint, below
                    if every and self.global_step % every == 0:
                        self._pending = True
                    self._boundary()
                bar.update(1)
                bar.set_postfix(
                    loss=f"{acc.total / max(acc.count, 1):.4g}",
                    samples_s=f"{acc.samples / max(acc.seconds, 1e-9):,.0f}",
                )
        train_loss = acc.total / acc.count if acc.count else math.nan
        val_loss = self.validate()  # eval mode: draws no random numbers
        result = EpochResult(
            self.epoch + 1,
            train_loss,
            val_loss,
            acc.samples,
            acc.seconds,
            acc.skipped,
            self.loss_name,
        )
        self.epoch += 1
        self.step = 0
        self.state = None
        self.progress_acc = EpochProgress()
        self.history.append(result)
        best = (
            self.bad_streak == 0
            and val_loss is not None
            and math.isfinite(val_loss)
            and (self.best_val_loss is None or val_loss < self.best_val_loss)
        )
        if best:
            self.best_val_loss = val_loss
        for cb in self.on_epoch:
            cb(self, result)
        self._pending = True
        self._boundary(best=best)
        return result

    def fit(self) -> list[EpochResult]:
        """Train until ``cfg.epochs`` epochs are complete (from wherever the trainer stands), or
        until ``cfg.max_time`` seconds of this call are spent (then :attr:`stopped` says so)."""
        self.fit_started = time.perf_counter()
        while self.epoch < self.cfg.epochs:
            try:
                self.train_epoch()
            except _RollbackError:
                self._rollback()
            except _TimeLimitError:
                self.stopped = "time-limit"
                break
        return self.history

    # -- checkpoints, NaN guard, stopping ------------------------------------------------------
    def _boundary(self, *, best: bool = False) -> None:
        """At a step boundary: take a due checkpoint, and stop if asked to.

        Only a good position (no bad step pending) is checkpointed, so both wait out a run of
        bad steps; it ends within ``nan_patience`` steps, in a good step or a rollback.
        """
        if self.bad_streak:
            return
        if self._pending:
            self._save(best=best)

        # several ranks stop only on a request they all know of (it travels in the step's
        # all-reduce), so that they all save the same checkpoint and stop at the same step
        stop = (
            (self.stop_signal or self.out_of_time()) if not self.dist.enabled else self._stop_agreed
        )
        if stop and self.epoch < self.cfg.epochs:
            if self._saved_at != (self.epoch, self.step):
                self._save()
            if not self.stop_signal:  # the time budget, not a signal (ranks agreed on the step)
                raise _TimeLimitError()
            name = signal.Signals(self.stop_signal or signal.SIGTERM).name
            raise TrainingInterruptedError(
                f"stopped by {name} at epoch {self.epoch + 1} step {self.step}",
                signum=self.stop_signal or signal.SIGTERM,
            )

    def _save(self, *, best: bool = False) -> None:
        ckpt = self.checkpoint()
        self.last_good = ckpt
        self._saved_at = ckpt.position
        self._pending = False
        self.rollbacks = 0  # training got past the last rollback's target
        for cb in self.on_checkpoint:
            cb(self, ckpt, best)

    def _event(self, event: dict[str, Any]) -> None:
        for cb in self.on_event:
            cb(self, event)

    def _bad_step(self, batch: Batch) -> None:
        self.bad_streak += 1
        self._event(
            {
                "event": "skipped_step",
                "epoch": self.epoch + 1,
                "step": batch.step,
                "reason": self.skip_reason,
                "in_a_row": self.bad_streak,
            }
        )
        if self.poisoned or self.bad_streak >= self.cfg.nan_patience:
            raise _RollbackError()

    def _rollback(self) -> None:
        """Return to the last checkpoint with the learning rate halved, or give up."""
        assert self.last_good is not None
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        where = f"epoch {self.epoch + 1} step {max(self.step - 1, 0)}"
        if self.rollbacks >= self.cfg.max_rollbacks:
            self._event(
                {"event": "diverged", "epoch": self.epoch + 1, "step": self.step, "lr": lrs[0]}
            )
            raise TrainingDivergedError(
                f"training diverged: {self.skip_reason} at {where}, {self.bad_streak} bad steps "
                f"in a row, after {self.rollbacks} rollbacks to the last checkpoint with the "
                f"learning rate halved each time (now {lrs[0]:.3g}); try a smaller --lr, a "
                "smaller --clip or --clip-mode norm"
            )
        rollbacks = self.rollbacks + 1
        self.restore(self.last_good)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr / 2
        self.rollbacks = rollbacks
        epoch, step = self.last_good.position
        self._event(
            {
                "event": "rollback",
                "epoch": epoch + 1,
                "step": step,
                "lr": lrs[0] / 2,
                "rollback": rollbacks,
                "reason": f"{self.skip_reason} at {where}",
            }
        )

    def checkpoint(self) -> Checkpoint:
        """The trainer's whole position, as CPU copies (training may continue meanwhile)."""
        tensors = {
            f"model.{k}": v.detach().cpu().clone() for k, v in self.model.state_dict().items()
        }
        optim_tensors, optim_meta = optimizer_to_flat(self.optimizer)
        rng_tensors, rng_meta = rng_to_flat()
        tensors.update(optim_tensors)
        tensors.update(rng_tensors)
        if self.dist.enabled:  # every rank's dropout generator, to continue each exactly
            tensors.update(self._rank_rngs())
        if self.state is not None:
            # the whole batch's state (all ranks' streams), so any number of ranks can resume it
            for name, t in self.state.items():
                whole = self.dist.gather_streams(t.detach(), self.stream_dims[name])
                tensors[f"state.{name}"] = whole.cpu().clone()
        acc = self.progress_acc
        meta = {
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "progress": {
                "total": acc.total,
                "count": acc.count,
                "skipped": acc.skipped,
                "samples": acc.samples,
                "seconds": acc.seconds,
            },
            "history": [r.record() for r in self.history],
            "best_val_loss": self.best_val_loss,
            "lr": [g["lr"] for g in self.optimizer.param_groups],
            "optimizer": optim_meta,
            "rng": rng_meta,
            "spec": self.model.spec.to_dict(),
            "seed": self.seed,
            "steps_per_epoch": self.streams.steps_per_epoch(),
            "world_size": self.dist.world,
        }
        if self.scaler.is_enabled():
            meta["grad_scaler"] = self.scaler.state_dict()
        return Checkpoint(tensors, meta)

    def _rank_rngs(self) -> dict[str, torch.Tensor]:
        """Every rank's torch generator states, stacked in rank order (collective)."""
        out = {"rng.ranks.torch": self.dist.gather_rows(torch.get_rng_state())}
        if self.device.type == "cuda":
            state = torch.cuda.get_rng_state(self.device).to(self.device)
            out["rng.ranks.cuda"] = self.dist.gather_rows(state).cpu()
        return out

    def _restore_rank_rngs(self, ckpt: Checkpoint) -> None:
        """This rank's generators: its own saved state when the checkpoint was made by as many
        ranks, else a fresh stream of its own (deterministic from seed, rank and step)."""
        t = ckpt.tensors
        ranks = t.get("rng.ranks.torch")
        if ranks is not None and ranks.shape[0] == self.dist.world:
            torch.set_rng_state(ranks[self.dist.rank].clone())
            cuda = t.get("rng.ranks.cuda")
            if cuda is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(cuda[self.dist.rank].clone(), self.device)
        elif self.dist.enabled:
            torch.manual_seed(rank_seed(self.seed, self.dist.rank, int(ckpt.meta["global_step"])))

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from ``ckpt`` exactly: weights, optimizer, position, hidden state, RNGs.

        Raises :class:`~noizenet.errors.CheckpointError` when it belongs to another model or
        another data plan.
        """
        m = ckpt.meta
        try:
            saved_spec = spec_from_dict(m["spec"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint has an unreadable model spec ({exc})") from None
        if saved_spec != self.model.spec:
            raise CheckpointError(f"checkpoint is for model {m['spec']}, not {self.model.spec}")
        if m.get("seed") != self.seed or m.get("steps_per_epoch") != self.streams.steps_per_epoch():
            raise CheckpointError("checkpoint was made with another seed or other training data")
        try:
            self.model.load_state_dict(ckpt.section("model"), strict=True)
            optimizer_from_flat(self.optimizer, ckpt)
            rng_from_flat(ckpt)
            progress = EpochProgress(**m["progress"])
            history = [EpochResult.from_record(r, self.loss_name) for r in m["history"]]
            epoch, step = ckpt.position
            global_step = int(m["global_step"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint does not fit this run ({one_line(exc)})") from None
        if int(m.get("world_size", 1)) > 1 or self.dist.enabled:
            self._restore_rank_rngs(ckpt)
        if "grad_scaler" in m and self.scaler.is_enabled():
            self.scaler.load_state_dict(m["grad_scaler"])
        # the saved state is the whole batch's: this rank takes its own streams
        saved = ckpt.section("state")
        if saved and set(saved) != set(self.stream_dims):
            raise CheckpointError(
                f"checkpoint state holds {', '.join(sorted(saved))}, this model "
                f"{', '.join(sorted(self.stream_dims))}"
            )
        mine = {k: self.dist.my_streams(v, self.stream_dims[k]) for k, v in saved.items()}
        self.state = {k: v.to(self.device) for k, v in mine.items()} or None
        self.epoch, self.step, self.global_step = epoch, step, global_step
        self.progress_acc = progress
        self.history = history
        self.best_val_loss = m["best_val_loss"]
        self.bad_streak = 0
        self.poisoned = False
        self.last_good = ckpt
        self._saved_at = ckpt.position
        self._pending = False
        self._stop_agreed = False

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean loss of teacher-forced next-sample prediction over the validation tracks.

        Several ranks share the tracks out (rank r takes tracks r, r + W, ...) and add up their
        loss sums and sample counts: the same mean as one process over every track.
        """
        if not self.val_tracks:
            return None
        mine = self.val_tracks[self.dist.rank :: self.dist.world]
        total, count = sequence_loss_sum(self.model, mine, self.loss_name, device=self.device)
        if self.dist.enabled:
            sums = torch.tensor([total, float(count)], dtype=torch.float64, device=self.device)
            self.dist.all_reduce_sum(sums)
            total, count = float(sums[0]), int(sums[1])
        return total / max(count, 1)


def _all_finite(tensors: Any) -> bool:
    """One device sync for many tensors, instead of one each."""
    flags = [torch.isfinite(t).all() for t in tensors]
    return bool(torch.stack(flags).all()) if flags else True


AMP_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def make_grad_scaler(device: torch.device, *, enabled: bool) -> Any:
    """A gradient scaler for ``device`` (inert when not ``enabled``)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler(device.type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled and device.type == "cuda")


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The torch seed of one rank's own random numbers (its dropout masks)."""
    return int(np.random.SeedSequence([seed, rank, step, 0xD15]).generate_state(1)[0])
