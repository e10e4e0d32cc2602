"""Takes during training: hear the model improve while it trains (``train --sample-every N``).

At the end of every run (and, with ``train.sample_every`` N, after every N-th epoch) the model
is primed for half a second on white noise and on the start of a validation song, then runs
free for ``train.sample_seconds``. The takes are written to ``RUN/audio/`` under the names
:func:`noizenet.run.take_name` gives them (``gen_white_e3_ckpt-epoch3_v0``: the weights after
epoch 3), measured (collapse time, spectral flatness, RMS, DC offset, clipped fraction) into
the epoch's ``metrics.jsonl`` record (its ``takes`` list), and, with ``--tensorboard``, logged as
audio and spectrogram images. The report draws them as a timeline.

Takes never disturb training: they draw from their own random generator (seeded by the run's
seed and the epoch), so a run trains the same weights with or without them, and a resumed run
makes the same takes as one never interrupted. Under torchrun rank 0 alone makes them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.analysis.metrics import audio_stats
from noizenet.audio import write as write_wav
from noizenet.config import GenerationConfig, SeedSpec, TrainConfig
from noizenet.errors import NoizeNetError
from noizenet.generate import generate_audio
from noizenet.generate.seeds import make_seed
from noizenet.models import family_of, kernel_of
from noizenet.run import TakeName, take_name
from noizenet.sampling import Injection

SEED_SECONDS = 0.5  # of the seed the model is primed on: short, the take is what counts


@dataclass
class TrainingTakes:
    """Makes a run's training takes; built by :func:`noizenet.train.train` on rank 0."""

    audio_dir: Path  # RUN/audio
    cfg: TrainConfig
    codec: Any
    sr: int
    train_rms: float
    seed: int  # the run's seed: with the epoch, it fixes each take's noise
    song: tuple[str, np.ndarray] | None = None  # (label, the start of a validation song)
    board: Any = None  # a TensorBoardLogger, with --tensorboard

    @property
    def enabled(self) -> bool:
        return self.cfg.sample_seconds > 0

    def due(self, epochs: int) -> bool:
        """Whether the weights after ``epochs`` epochs get takes: every ``sample_every``-th
        epoch, and the run's last."""
        every = self.cfg.sample_every
        return self.enabled and (epochs == self.cfg.epochs or bool(every and epochs % every == 0))

    def make(self, model: Any, *, epochs: int, step: int = 0) -> dict[str, Any]:
        """Generate, write and measure the takes of ``model`` as it stands after ``epochs``
        epochs (and ``step`` steps into the next one, for a run stopped mid-epoch).

        Returns ``{"takes": [one record per take], "takes_s": wall seconds}``; a take whose
        samples are not finite (a diverging model) is recorded with a ``problem``, unwritten.
        A family without a fast kernel gets no takes (:class:`NoizeNetError`): they would cost
        more than the training.
        """
        t0 = time.perf_counter()
        family = family_of(model.spec)
        if kernel_of(model) is None:  # 2 takes of 3 s took 33 s on the test's family
            raise NoizeNetError(
                f"the {family.NAME} family has no fast generation kernel, and its one-step "
                "reference path runs far slower than real time"
            )
        rng = np.random.default_rng([self.seed, epochs, step, 0x7A4E])
        white = make_seed(
            SeedSpec("white"), seconds=SEED_SECONDS, sr=self.sr, rms=self.train_rms, rng=rng
        )
        seeds = [("white", white)] + ([self.song] if self.song is not None else [])
        gen = GenerationConfig(
            seconds=self.cfg.sample_seconds, random_seed=int(rng.integers(2**31))
        )
        import torch

        was_training, threads = model.training, torch.get_num_threads()
        try:
            audio = generate_audio(model, self.codec, [s for _, s in seeds], gen, sr=self.sr)
        finally:
            model.train(was_training)
            # numba's OpenMP workers share torch's OpenMP runtime and leave its thread count
            # at theirs (one per core): training after a take ran 8x slower on 2 busy cores
            torch.set_num_threads(threads)
        categorical = model.spec.categorical
        tag = f"epoch{epochs}" if not step else f"epoch{epochs}step{step}"
        records = []
        for (label, _), y in zip(seeds, audio, strict=True):
            name = TakeName(
                seed=label,
                epochs=epochs,
                checkpoint=tag,
                inject=None if categorical else Injection.parse(gen.inject).name,
                temperature=(1.0, 1.0) if categorical else None,
            )
            stem = take_name(name)
            record: dict[str, Any] = {"seed": label, "file": f"audio/{stem}.wav"}
            if not np.all(np.isfinite(y)):
                record["problem"] = "non-finite samples (nothing written)"
                records.append(record)
                continue
            write_wav(self.audio_dir / f"{stem}.wav", y, sr=self.sr)
            stats = audio_stats(y, sr=self.sr, reference_rms=self.train_rms)
            record.update(
                seconds=round(y.size / self.sr, 6),
                rms=_round(float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))),
                **{k: _round(v) for k, v in stats.items()},
            )
            records.append(record)
            if self.board is not None:
                self.board.take(epochs, label, y, self.sr)
        return {"takes": records, "takes_s": round(time.perf_counter() - t0, 4)}


def song_seed(track: Any, sr: int) -> tuple[str, np.ndarray]:
    """The seed of a validation song's take: (``song-NAME``, its first half second)."""
    n = round(SEED_SECONDS * sr)
    y = np.asarray(track.y[:n], dtype=np.float32)
    stem = Path(str(track.track.path)).stem or str(track.track.id)
    return f"song-{stem}", y


def _round(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")
