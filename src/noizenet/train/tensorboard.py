"""Live training curves in TensorBoard (``train --tensorboard``, written to ``RUN/tb/``).

Hangs on the trainer's callbacks like any other logger: every step's loss (and bits for a
categorical head), learning rate, gradient norm and throughput, every epoch's ``metrics.jsonl``
line, and the skipped steps and rollbacks of the NaN guard. Takes made during training go in
with :meth:`TensorBoardLogger.take` (audio and a spectrogram image).

TensorBoard is an optional extra: ``pip install noizenet[tensorboard]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.errors import NoizeNetError

INSTALL_HINT = "--tensorboard needs the tensorboard package: pip install 'noizenet[tensorboard]'"


def require_tensorboard() -> None:
    """Fail at once, in one line, when TensorBoard's writer cannot be imported."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise NoizeNetError(INSTALL_HINT) from None


class TensorBoardLogger:
    """Writes a run's curves as TensorBoard event files in ``folder``.

    Step scalars are indexed by the trainer's global step (``step/...``), epoch scalars by the
    epoch number (``epoch/...``), so both line up across resumes.
    """

    def __init__(self, folder: str | Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self.writer = SummaryWriter(log_dir=str(self.folder))
        self.skipped = 0  # skipped steps seen by this logger

    def attach(self, trainer: Any) -> TensorBoardLogger:
        """Hang on ``trainer``'s callbacks (and ask it to measure the gradient norm)."""
        trainer.track_grad_norm = True
        trainer.on_step.append(self.on_step)
        trainer.on_epoch.append(self.on_epoch)
        trainer.on_event.append(self.on_event)
        return self

    def on_step(self, trainer: Any, batch: Any, loss: float) -> None:
        step = trainer.global_step
        add = self.writer.add_scalar
        if math.isfinite(loss):  # a skipped step has no loss, and left the last norm standing
            add("step/loss", loss, step)
            if trainer.loss_name == "ce":
                add("step/bits", loss / math.log(2), step)
            norm = getattr(trainer, "grad_norm", math.nan)
            if math.isfinite(norm):
                add("step/grad_norm", norm, step)
        acc = trainer.progress_acc
        if acc.seconds > 0:
            add("step/samples_per_s", acc.samples / acc.seconds, step)
        add("step/lr", trainer.optimizer.param_groups[0]["lr"], step)

    def on_epoch(self, trainer: Any, result: Any) -> None:
        for key, value in result.record().items():
            if key != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(f"epoch/{key}", value, result.epoch)
        self.writer.add_scalar("epoch/lr", trainer.optimizer.param_groups[0]["lr"], result.epoch)
        self.writer.flush()  # an epoch's curves are there to be looked at now

    def on_event(self, trainer: Any, event: dict[str, Any]) -> None:
        step = trainer.global_step
        if event["event"] == "skipped_step":
            self.skipped += 1
            self.writer.add_scalar("step/skipped_steps", self.skipped, step)
        elif event["event"] == "rollback":
            self.writer.add_scalar("events/rollback_lr", event["lr"], step)
            where = f"epoch {event['epoch']} step {event['step']}"
            self.writer.add_text("events", f"rollback to {where}, lr {event['lr']:.3g}", step)

    def take(self, step: int, name: str, audio: np.ndarray, sr: int) -> None:
        """A take made during training: its audio and its spectrogram (dB, low frequencies at
        the bottom, colour-mapped), both under ``takes/NAME`` at ``step``."""
        y = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1)), -1.0, 1.0)
        self.writer.add_audio(f"takes/{name}", y, step, sample_rate=sr)
        self.writer.add_image(f"takes/{name}/spectrogram", spectrogram_image(y), step,
                              dataformats="HWC")  # fmt: skip

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def spectrogram_image(y: np.ndarray, *, n_fft: int = 512, columns: int = 400) -> np.ndarray:
    """(bins, columns, 3) uint8: an 80 dB magma view of ``y``, at most ``columns`` frames
    (evenly spaced windows: a long take costs no more than a short one)."""
    from matplotlib import colormaps

    y = np.asarray(y, dtype=np.float32)
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    starts = np.linspace(0, y.size - n_fft, min(columns, y.size - n_fft + 1)).astype(int)
    frames = y[starts[:, None] + np.arange(n_fft)] * np.hanning(n_fft).astype(np.float32)
    db = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T + 1e-6)  # (bins, columns)
    level = np.clip((db - (db.max() - 80.0)) / 80.0, 0.0, 1.0)[::-1]
    return (colormaps["magma"](level)[..., :3] * 255).astype(np.uint8)
