"""The trainer: stateful truncated BPTT over parallel streams, validation, clipping, events.

It knows nothing about run folders or audio: it takes a model, the encoded training streams,
the encoded validation tracks and a :class:`~noizenet.config.TrainConfig`, and reports through
callbacks (``on_step``, ``on_epoch``) that logging, checkpoints and progress bars hang on
(minGPT's shape). Its whole position is :meth:`Trainer.state_dict`, which is what resume needs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from noizenet.config import TrainConfig
from noizenet.models import NoizeNet, State, detach_state, reset_streams
from noizenet.train.streams import Batch, Streams


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def elementwise_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-sample loss (no reduction), so padding can be masked out."""
    if name == "mse":
        return lambda pred, target: (pred - target).pow(2).mean(-1)
    if name == "mae":
        return lambda pred, target: (pred - target).abs().mean(-1)
    if name == "ce":  # categorical head: logits (B, T, levels), target indices (B, T, 1)
        return lambda logits, target: torch.nn.functional.cross_entropy(
            logits.flatten(0, -2), target[..., 0].long().flatten(), reduction="none"
        ).view(target.shape[:-1])
    raise ValueError(f"unknown loss {name!r}")


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    val_loss: float | None
    samples: int
    seconds: float
    skipped_steps: int = 0
    loss: str = "mse"  # "ce": losses are cross-entropy in nats, also reported in bits

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(self.seconds, 1e-9)

    def record(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "samples": self.samples,
            "seconds": round(self.seconds, 4),
            "samples_per_s": round(self.samples_per_s, 1),
            "skipped_steps": self.skipped_steps,
            **(self.bits() if self.loss == "ce" else {}),
        }

    def bits(self) -> dict[str, float | None]:
        """Cross-entropy in bits per sample (log2(levels) for a uniform guess)."""
        val = None if self.val_loss is None else self.val_loss / math.log(2)
        return {"train_bits": self.train_loss / math.log(2), "val_bits": val}


@dataclass
class Trainer:
    model: NoizeNet
    streams: Streams
    cfg: TrainConfig
    seed: int = 0
    val_tracks: list[np.ndarray] = field(default_factory=list)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = True
    on_step: list[Callable[[Trainer, Batch, float], None]] = field(default_factory=list)
    on_epoch: list[Callable[[Trainer, EpochResult], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model.to(self.device)
        self.optimizer = make_optimizer(self.model, self.cfg)
        # a categorical head is trained with cross-entropy whatever train.loss says
        self.loss_name = "ce" if self.model.spec.categorical else self.cfg.loss
        self.loss_fn = elementwise_loss(self.loss_name)
        self.epoch = 0  # epochs completed
        self.history: list[EpochResult] = []
        self.state: State | None = None  # carried hidden state of every stream

    # -- one step ----------------------------------------------------------------------------
    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device, non_blocking=True)

    def train_step(self, batch: Batch) -> float | None:
        """Forward, masked loss, backward, clip, update. Returns the loss, or None if skipped.

        A non-finite loss or gradient never reaches the weights: the step is skipped.
        """
        x, y = self._tensor(batch.x), self._tensor(batch.y)
        mask = self._tensor(batch.mask).to(x.dtype)
        if self.state is None:
            self.state = self.model.init_state(x.shape[0], self.device)
        state = reset_streams(self.state, self._tensor(batch.reset))
        pred, state = self.model(x, state)
        loss = (self.loss_fn(pred, y) * mask).sum() / mask.sum().clamp_min(1.0)
        self.state = detach_state(state)
        if not torch.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_mode == "value":
            nn.utils.clip_grad_value_(self.model.parameters(), self.cfg.clip)
            finite = all(
                torch.isfinite(p.grad).all() for p in self.model.parameters() if p.grad is not None
            )
        elif self.cfg.clip_mode == "norm":
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
            finite = bool(torch.isfinite(norm))
        else:
            finite = all(
                torch.isfinite(p.grad).all() for p in self.model.parameters() if p.grad is not None
            )
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.step()
        return float(loss.detach())

    # -- epochs ------------------------------------------------------------------------------
    def train_epoch(self) -> EpochResult:
        from noizenet.progress import progress_bar

        self.model.train()
        self.state = None  # every epoch starts with fresh streams
        total, count, skipped, samples = 0.0, 0, 0, 0
        t0 = time.perf_counter()
        steps = self.streams.steps_per_epoch()
        with progress_bar(
            total=steps,
            desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}",
            unit="step",
            disable=not self.progress,
        ) as bar:
            for batch in self.streams.epoch(self.epoch, seed=self.seed):
                loss = self.train_step(batch)
                n = batch.samples
                if loss is None:
                    skipped += 1
                else:
                    total += loss * n
                    count += n
                samples += n
                for cb in self.on_step:
                    cb(self, batch, loss if loss is not None else math.nan)
                bar.update(1)
                elapsed = time.perf_counter() - t0
                bar.set_postfix(
                    loss=f"{total / max(count, 1):.4g}",
                    samples_s=f"{samples / max(elapsed, 1e-9):,.0f}",
                )
        seconds = time.perf_counter() - t0
        train_loss = total / count if count else math.nan
        result = EpochResult(
            self.epoch + 1, train_loss, self.validate(), samples, seconds, skipped, self.loss_name
        )
        self.epoch += 1
        self.history.append(result)
        for cb in self.on_epoch:
            cb(self, result)
        return result

    def fit(self) -> list[EpochResult]:
        while self.epoch < self.cfg.epochs:
            self.train_epoch()
        return self.history

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean loss of teacher-forced next-sample prediction over the validation tracks."""
        if not self.val_tracks:
            return None
        return sequence_loss(self.model, self.val_tracks, self.loss_name, device=self.device)


@torch.no_grad()
def sequence_loss(
    model: NoizeNet,
    tracks: list[np.ndarray],
    loss: str,
    *,
    device: torch.device | str = "cpu",
    chunk: int = 65536,
) -> float:
    """Per-sample loss of one-step prediction over whole tracks, state carried across chunks."""
    was_training = model.training
    model.eval()
    fn = elementwise_loss(loss)
    total, count = 0.0, 0
    for v in tracks:
        v = torch.as_tensor(np.asarray(v, dtype=np.float32)).reshape(1, len(v), -1).to(device)
        state = None
        for s in range(0, v.shape[1] - 1, chunk):
            x = v[:, s : min(s + chunk, v.shape[1] - 1)]
            y = v[:, s + 1 : s + 1 + x.shape[1]]
            pred, state = model(x, state)
            total += float(fn(pred, y).sum())
            count += x.shape[1]
    model.train(was_training)
    return total / max(count, 1)
