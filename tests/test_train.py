import json

import numpy as np
import pytest
from conftest import quiet

from noizenet.config import Config
from noizenet.errors import NoizeNetError
from noizenet.io import read_jsonl
from noizenet.run import Run
from noizenet.train import train


def test_run_folder_is_complete(tiny_run):
    names = {p.name for p in tiny_run.path.iterdir()}
    assert {"config.toml", "model.safetensors", "run.json", "metrics.jsonl", "figures"} <= names
    assert (tiny_run.path / "figures" / "loss.png").stat().st_size > 1000
    info = json.loads((tiny_run.path / "run.json").read_text())
    assert info["status"] == "complete" and info["sample_rate"] == 22050
    assert info["codec"]["fitted"] and info["codec"]["name"] == "zscore"
    assert {"torch", "numpy", "noizenet", "python"} <= set(info["versions"])
    assert len(info["corpus"]["train"]) == 3 and len(info["corpus"]["val"]) == 1
    train_ids = {t["id"] for t in info["corpus"]["train"]}
    assert not train_ids & {t["id"] for t in info["corpus"]["val"]}
    assert Config.load(tiny_run.path / "config.toml") == tiny_run.config


def test_metrics_have_train_and_validation_loss_per_epoch(tiny_run):
    records = read_jsonl(tiny_run.path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in records)
    assert all(r["samples_per_s"] > 0 for r in records)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_lowers_the_loss(tiny_config, tmp_path, cell):
    cfg = tiny_config.with_overrides({"model.cell": cell, "train.epochs": 5, "model.dropout": 0.0})
    run = train(cfg, tmp_path / cell, progress=False, log=quiet)
    losses = [r["train_loss"] for r in run.metrics()]
    assert losses[-1] < 0.7 * losses[0], losses


def test_same_seed_same_weights_different_seed_different(tiny_config, tmp_path):
    def weights(seed, name):
        cfg = tiny_config.with_overrides({"seed": seed, "train.epochs": 1})
        run = train(cfg, tmp_path / name, progress=False, log=quiet)
        return np.concatenate([p.detach().numpy().ravel() for p in run.model().parameters()])

    a, b, c = weights(1, "a"), weights(1, "b"), weights(2, "c")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "overrides",
    [
        {"train.batch": 1, "train.chunk": "whole-song"},
        {"train.stateless": True, "train.chunk": 64},
        {"train.loss": "mae", "train.optimizer": "sgd", "train.clip_mode": "norm"},
        {
            "train.optimizer": "adadelta",
            "train.lr": 1.0,
            "codec.name": "minmax",
            "codec.scaling": "per-file",
            "model.layers": 2,
        },
    ],
)
def test_training_modes_run(tiny_config, tmp_path, overrides):
    cfg = tiny_config.with_overrides({**overrides, "train.epochs": 1})
    run = train(cfg, tmp_path / "r", progress=False, log=quiet)
    assert np.isfinite(run.metrics()[0]["train_loss"])


def test_refuses_to_overwrite_a_run_without_force(tiny_config, tmp_path):
    cfg = tiny_config.with_overrides({"train.epochs": 1})
    train(cfg, tmp_path / "r", progress=False, log=quiet)
    with pytest.raises(NoizeNetError, match="already holds a run"):
        train(cfg, tmp_path / "r", progress=False, log=quiet)
    train(cfg, tmp_path / "r", force=True, progress=False, log=quiet)
    assert len(Run.open(tmp_path / "r").metrics()) == 1


def test_broken_tracks_are_skipped_and_reported(tmp_path, tiny_config):
    import shutil

    src = tmp_path / "songs"
    shutil.copytree(tiny_config.data.source, src)
    (src / "empty.wav").write_bytes(b"")
    (src / "junk.mp3").write_bytes(b"not audio" * 50)
    import soundfile as sf

    sf.write(src / "silent.wav", np.zeros(22050, np.float32), 22050)
    cfg = tiny_config.with_overrides({"data.source": str(src), "data.songs": 5, "train.epochs": 1})
    lines = []
    run = train(cfg, tmp_path / "r", progress=False, log=lines.append)
    skipped = run.info.corpus["skipped"]
    assert {s["id"] for s in skipped} == {"empty", "junk", "silent"}
    assert any("silent" in line for line in lines)
    assert len(run.info.corpus["train"]) + len(run.info.corpus["val"]) == 5


def test_nothing_usable_is_a_clear_error(tmp_path, tiny_config):
    (tmp_path / "only.wav").write_bytes(b"")
    cfg = tiny_config.with_overrides({"data.source": str(tmp_path)})
    with pytest.raises(NoizeNetError, match="no usable audio"):
        train(cfg, tmp_path / "r", progress=False, log=quiet)


def test_non_finite_loss_never_reaches_the_weights(tiny_config, tmp_path):
    import torch

    from noizenet.codecs import RawCodec
    from noizenet.config import TrainConfig
    from noizenet.models import ModelSpec, NoizeNet
    from noizenet.train.streams import Streams
    from noizenet.train.trainer import Trainer

    track = RawCodec().fit([np.ones(100)]).encode(np.sin(np.arange(600) * 0.1))
    track[300] = np.nan
    model = NoizeNet(ModelSpec(hidden=4))
    before = [p.detach().clone() for p in model.parameters()]
    tr = Trainer(
        model, Streams([track], batch=1, chunk=None), TrainConfig(epochs=1), progress=False
    )
    result = tr.train_epoch()
    assert result.skipped_steps == 1
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)
