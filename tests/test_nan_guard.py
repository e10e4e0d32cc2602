"""NaN guard: skipped steps, rollback with the learning rate halved, then a clear stop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from noizenet.config import TrainConfig
from noizenet.errors import CheckpointError, TrainingDivergedError
from noizenet.models import ModelSpec, NoizeNet
from noizenet.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from noizenet.train.streams import Streams
from noizenet.train.trainer import Trainer


def tracks() -> list[np.ndarray]:
    t = np.arange(401)
    return [np.sin(t * 0.05).astype(np.float32), np.cos(t * 0.11).astype(np.float32)]


def make_trainer(**overrides) -> Trainer:
    """8 steps per epoch; checkpoints at global steps 0, 4, 8 (epoch end), 12, 16."""
    cfg = TrainConfig(
        **{
            "epochs": 2,
            "nan_patience": 2,
            "max_rollbacks": 2,
            "checkpoint_every": 4,
            "batch": 2,
            "chunk": 50,
            **overrides,
        }
    )
    torch.manual_seed(0)
    model = NoizeNet(ModelSpec(hidden=4, dropout=0.0))
    tr = Trainer(model, Streams(tracks(), batch=2, chunk=50), cfg, progress=False)
    tr.events = []
    tr.on_event.append(lambda t, e: t.events.append(e))
    return tr


def nan_on_calls(tr: Trainer, bad) -> None:
    """Make the training loss NaN on the given (1-based) calls: one call per step."""
    real = tr.loss_fn
    calls = {"n": 0}

    def loss_fn(pred, target):
        calls["n"] += 1
        out = real(pred, target)
        return out * math.nan if bad(calls["n"]) else out

    tr.loss_fn = loss_fn


def params(tr: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tr.model.state_dict().items()}


def test_rollback_to_last_checkpoint_with_lr_halved_then_training_recovers():
    tr = make_trainer()
    assert tr.streams.steps_per_epoch() == 8
    nan_on_calls(tr, lambda n: n in (6, 7))  # steps 5 and 6 of epoch 1 (0-based)
    at_rollback = {}

    def check(t, e):
        if e["event"] == "rollback":
            at_rollback["weights"] = params(t)
            at_rollback["target"] = t.last_good.section("model")

    tr.on_event.append(check)
    history = tr.fit()
    kinds = [(e["event"], e.get("step")) for e in tr.events]
    assert kinds == [("skipped_step", 5), ("skipped_step", 6), ("rollback", 4)]
    assert tr.events[0]["reason"] == "non-finite loss"
    for k, v in at_rollback["target"].items():
        assert torch.equal(at_rollback["weights"][k], v), k
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    assert tr.events[-1]["lr"] == pytest.approx(0.005)
    # the replayed steps count once; the skipped ones were undone with the rollback
    assert [r.samples for r in history] == [tr.streams.samples_per_epoch()] * 2
    assert [r.skipped_steps for r in history] == [0, 0]
    assert all(math.isfinite(r.train_loss) for r in history)
    assert tr.global_step == 16
    assert all(bool(torch.isfinite(p).all()) for p in tr.model.parameters())


def test_a_single_bad_step_is_skipped_without_rollback():
    tr = make_trainer(nan_patience=3)
    nan_on_calls(tr, lambda n: n == 3)
    before = {}
    tr.on_step.append(lambda t, b, loss: t.global_step == 2 and before.update(params(t)))
    after = {}
    tr.on_step.append(lambda t, b, loss: t.global_step == 3 and after.update(params(t)))
    history = tr.fit()
    assert [e["event"] for e in tr.events] == ["skipped_step"]
    assert history[0].skipped_steps == 1
    for k in before:  # the NaN step never reached the weights
        assert torch.equal(before[k], after[k])


def test_still_failing_after_max_rollbacks_stops_with_a_clear_error():
    tr = make_trainer(max_rollbacks=2)
    nan_on_calls(tr, lambda n: n >= 6)  # from step 5 on, forever
    with pytest.raises(TrainingDivergedError) as exc:
        tr.fit()
    msg = str(exc.value)
    assert "diverged" in msg and "2 rollbacks" in msg and "0.0025" in msg and "\n" not in msg
    kinds = [e["event"] for e in tr.events if e["event"] != "skipped_step"]
    assert kinds == ["rollback", "rollback", "diverged"]
    assert [e["lr"] for e in tr.events if e["event"] == "rollback"] == [0.005, 0.0025]


def test_zero_rollbacks_stops_at_the_first_run_of_bad_steps():
    tr = make_trainer(max_rollbacks=0, nan_patience=1)
    nan_on_calls(tr, lambda n: n == 2)
    with pytest.raises(TrainingDivergedError):
        tr.fit()


def test_weights_made_non_finite_by_an_update_are_rolled_back_at_once():
    tr = make_trainer(nan_patience=5)
    real_step = tr.optimizer.step
    calls = {"n": 0}

    def overflowing_step(*a, **k):
        calls["n"] += 1
        real_step(*a, **k)
        if calls["n"] == 6:  # finite gradients, but the update overflows
            with torch.no_grad():
                next(tr.model.parameters()).fill_(math.inf)

    tr.optimizer.step = overflowing_step
    tr.fit()
    assert [e["event"] for e in tr.events] == ["skipped_step", "rollback"]
    assert tr.events[0]["reason"] == "non-finite weights after the update"
    assert all(bool(torch.isfinite(p).all()) for p in tr.model.parameters())


def test_nan_in_the_input_does_not_poison_the_carried_state():
    """A NaN input makes its step non-finite; the streams' state must not carry it on."""
    track = np.sin(np.arange(400) * 0.1).astype(np.float32)
    track[30] = np.nan
    tr = Trainer(
        NoizeNet(ModelSpec(hidden=4, dropout=0.0)),
        Streams([track], batch=1, chunk=20),
        TrainConfig(epochs=1, nan_patience=3),
        progress=False,
    )
    result = tr.train_epoch()
    assert result.skipped_steps == 1  # only the chunk holding the NaN (samples 20..39)
    assert math.isfinite(result.train_loss)


def test_a_nan_is_never_written_to_a_checkpoint(tmp_path):
    tr = make_trainer()
    ckpt = tr.checkpoint()
    ckpt.tensors["model.head.bias"] = torch.tensor([math.nan])
    with pytest.raises(CheckpointError, match="non-finite"):
        save_checkpoint(tmp_path / "c.safetensors", Checkpoint(ckpt.tensors, ckpt.meta))
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_run_stops_with_status_and_finite_checkpoints(
    tiny_config, tmp_path, monkeypatch, capsys
):
    """Through the run folder and the command line: one-line error, exit code 2."""
    import noizenet.train.trainer as trainer_module
    from noizenet.cli import main

    real = trainer_module.elementwise_loss
    calls = {"n": 0}

    def poisoned(name):
        fn = real(name)

        def loss(pred, target):
            calls["n"] += 1
            out = fn(pred, target)
            return out * math.nan if calls["n"] > 70 else out  # fine for epoch 1, then NaN

        return loss

    monkeypatch.setattr(trainer_module, "elementwise_loss", poisoned)
    cfg = tiny_config.with_overrides({"train.epochs": 3, "train.checkpoint_every": 20})
    cfg.save(tmp_path / "c.toml")
    out = tmp_path / "run"
    code = main(["--quiet", "train", "--config", str(tmp_path / "c.toml"), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "training diverged" in err and str(out) in err and "\n" not in err
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "diverged"
    events = [
        json.loads(line)["event"] for line in (out / "events.jsonl").read_text().split("\n") if line
    ]
    assert events.count("rollback") == cfg.train.max_rollbacks and events[-1] == "diverged"
    for p in (out / "checkpoints").iterdir():
        ckpt = load_checkpoint(p)
        assert all(
            bool(torch.isfinite(t).all()) for t in ckpt.tensors.values() if t.is_floating_point()
        )
    # metrics are strict JSON: no NaN literals
    for line in (out / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in metrics"))
