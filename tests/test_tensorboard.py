"""train --tensorboard: the event files hold every curve (read back with TensorBoard's reader)."""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from noizenet.cli import main
from noizenet.errors import NoizeNetError
from noizenet.train.tensorboard import TensorBoardLogger, require_tensorboard, spectrogram_image

pytest.importorskip("tensorboard")


def _read(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "audio": 0, "images": 0})
    acc.Reload()
    return acc


def _values(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_training_writes_every_curve(tiny_config, tmp_path):
    from noizenet.train import train

    cfg = tiny_config.with_overrides(
        {
            "train.tensorboard": True,
            "train.epochs": 2,
            "train.sample_every": 1,
            "train.sample_seconds": 0.2,
        }
    )
    steps = []  # every step the trainer took, as another logger sees them

    def count(trainer):
        trainer.on_step.append(lambda tr, batch, loss: steps.append(tr.global_step))

    run = train(cfg, tmp_path / "run", progress=False, log=lambda *a: None, attach=count)
    acc = _read(run.path / "tb")
    tags = set(acc.Tags()["scalars"])
    step_tags = {"step/loss", "step/lr", "step/grad_norm", "step/samples_per_s"}
    epoch_tags = {"epoch/train_loss", "epoch/val_loss", "epoch/samples_per_s", "epoch/lr"}
    assert step_tags | epoch_tags | {"epoch/skipped_steps"} <= tags
    records = run.metrics()
    val = _values(acc, "epoch/val_loss")
    assert [s for s, _ in val] == [1, 2]
    np.testing.assert_allclose([v for _, v in val], [r["val_loss"] for r in records], rtol=1e-6)
    losses = _values(acc, "step/loss")
    assert [s for s, _ in losses] == steps == list(range(1, len(steps) + 1))  # every step
    norms = [v for _, v in _values(acc, "step/grad_norm")]
    assert len(norms) == len(losses) and all(n > 0 and math.isfinite(n) for n in norms)
    assert [v for _, v in _values(acc, "step/lr")] == pytest.approx([0.01] * len(steps))
    # the training takes of both epochs, by epoch, as audio and spectrogram images
    seeds = [t["seed"] for t in records[0]["takes"]]
    assert {f"takes/{s}" for s in seeds} == set(acc.Tags()["audio"])
    assert {f"takes/{s}/spectrogram" for s in seeds} == set(acc.Tags()["images"])
    for seed in seeds:
        audio = acc.Audio(f"takes/{seed}")
        assert [(a.step, a.sample_rate, a.length_frames) for a in audio] == [
            (1, run.sr, round(0.2 * run.sr)),
            (2, run.sr, round(0.2 * run.sr)),
        ]
        assert [i.step for i in acc.Images(f"takes/{seed}/spectrogram")] == [1, 2]


def _fake_trainer(loss_name="ce"):
    return SimpleNamespace(
        global_step=0,
        loss_name=loss_name,
        grad_norm=2.5,
        progress_acc=SimpleNamespace(samples=1000, seconds=0.5),
        optimizer=SimpleNamespace(param_groups=[{"lr": 0.001}]),
        on_step=[],
        on_epoch=[],
        on_event=[],
    )


def test_bits_skipped_steps_and_rollbacks_are_logged(tmp_path):
    tr = _fake_trainer()
    with TensorBoardLogger(tmp_path / "tb") as board:
        board.attach(tr)
        assert tr.track_grad_norm and tr.on_step == [board.on_step]
        for step, loss in enumerate([2.0, math.nan, math.nan, 1.0], start=1):
            tr.global_step = step
            board.on_step(tr, None, loss)
            if math.isnan(loss):
                board.on_event(tr, {"event": "skipped_step", "epoch": 1, "step": step})
        board.on_event(tr, {"event": "rollback", "epoch": 1, "step": 2, "lr": 0.0005})
    acc = _read(tmp_path / "tb")
    assert _values(acc, "step/bits") == [(1, pytest.approx(2 / math.log(2))),
                                          (4, pytest.approx(1 / math.log(2)))]  # fmt: skip
    assert _values(acc, "step/skipped_steps") == [(2, 1.0), (3, 2.0)]
    assert [s for s, _ in _values(acc, "step/grad_norm")] == [1, 4]  # not on skipped steps
    assert _values(acc, "step/samples_per_s") == [(s, 2000.0) for s in range(1, 5)]
    assert _values(acc, "events/rollback_lr") == [(4, pytest.approx(0.0005))]


def test_a_take_goes_in_as_audio_and_spectrogram(tmp_path):
    sr = 22050
    t = np.arange(sr) / sr
    y = 0.5 * np.sin(2 * np.pi * 1000 * t)
    with TensorBoardLogger(tmp_path / "tb") as board:
        board.take(3, "white_e3", y, sr)
    acc = _read(tmp_path / "tb")
    (audio,) = acc.Audio("takes/white_e3")
    assert (audio.step, audio.sample_rate, audio.length_frames) == (3, sr, sr)
    (image,) = acc.Images("takes/white_e3/spectrogram")
    assert image.step == 3 and (image.height, image.width) == (257, 400)


def test_spectrogram_image_puts_a_tone_at_its_frequency():
    sr, n_fft = 22050, 512
    y = np.sin(2 * np.pi * 2000 * np.arange(10 * sr) / sr).astype(np.float32)
    img = spectrogram_image(y, n_fft=n_fft)
    assert img.shape == (n_fft // 2 + 1, 400, 3) and img.dtype == np.uint8
    brightest = int(np.argmax(img.sum(axis=(1, 2))))  # row 0 is the top: the highest bin
    assert abs((n_fft // 2 - brightest) * sr / n_fft - 2000) < sr / n_fft


def test_without_tensorboard_the_flag_fails_at_once_in_one_line(
    monkeypatch, song_dir, tmp_path, capsys
):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import raises ImportError
    with pytest.raises(NoizeNetError, match=r"pip install 'noizenet\[tensorboard\]'"):
        require_tensorboard()
    code = main(["train", "--data", str(song_dir), "--tensorboard", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "noizenet[tensorboard]" in err
    assert not (tmp_path / "r").exists()  # nothing was started
