"""--precision, --compile and --device: mixed precision on the CPU where it runs, CUDA where
there is a GPU (skipped without one), and the device each torchrun rank takes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import quiet

from noizenet.config import Config, TrainConfig
from noizenet.errors import ConfigError, NoizeNetError
from noizenet.models import ModelSpec, NoizeNet
from noizenet.train import train
from noizenet.train.distributed import Dist, rank_device
from noizenet.train.streams import Streams
from noizenet.train.trainer import Trainer, check_precision

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def cfg(tiny_config):
    return tiny_config.with_overrides(
        {"train.epochs": 1, "model.dropout": 0.0, "train.checkpoint_every": 0}
    )


def test_precision_and_compile_are_validated_flags(cfg):
    from noizenet.cli import build_parser

    assert Config().train.precision == "fp32" and Config().train.compile is False
    with pytest.raises(ConfigError, match=r"train\.precision: unknown value 'fp8'"):
        cfg.with_overrides({"train.precision": "fp8"})
    with pytest.raises(ConfigError, match=r"train\.compile: expected true or false"):
        cfg.with_overrides({"train.compile": "yes"})
    args = build_parser().parse_args(["train", "--precision", "bf16", "--compile"])
    assert getattr(args, "train.precision") == "bf16" and getattr(args, "train.compile") is True


def test_bf16_on_the_cpu_trains_close_to_fp32(cfg, tmp_path):
    runs = {
        p: train(
            cfg.with_overrides({"train.precision": p}),
            tmp_path / p,
            progress=False,
            log=quiet,
        )
        for p in ("fp32", "bf16")
    }
    fp32, bf16 = (runs[p].metrics()[0]["train_loss"] for p in ("fp32", "bf16"))
    assert np.isfinite(bf16) and abs(bf16 - fp32) < 0.05 * fp32
    info = json.loads((tmp_path / "bf16" / "run.json").read_text())
    assert info["precision"] == "bf16"
    assert runs["bf16"].config.train.precision == "bf16"  # config.toml says it too


def test_fp16_trains_with_a_grad_scaler_whose_skips_are_not_bad_steps():
    """fp16 GRU on the CPU (autocast + GradScaler): an overflowing step is skipped by the
    scaler, which lowers its scale; the NaN guard does not count it, the weights stay put."""
    track = np.sin(np.arange(2000) * 0.1).astype(np.float32)
    model = NoizeNet(ModelSpec(cell="gru", hidden=8, dropout=0.0))
    tr = Trainer(
        model,
        Streams([track], batch=2, chunk=100),
        TrainConfig(epochs=1, precision="fp16"),
        progress=False,
    )
    assert tr.scaler.is_enabled()
    tr.scaler._init_scale = 2.0**100  # so large that the first fp16 backward overflows
    before = [p.detach().clone() for p in model.parameters()]
    batch = next(tr.streams.epoch(0, seed=0))
    loss = tr.train_step(batch)
    assert loss is not None and np.isfinite(loss)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    assert tr.scaler.get_scale() < 2.0**100
    result = tr.train_epoch()
    assert result.skipped_steps == 0 and np.isfinite(result.train_loss)
    assert "grad_scaler" in tr.checkpoint().meta  # a resumed fp16 run keeps its scale


def test_a_precision_the_device_cannot_run_is_one_line_before_the_folder(cfg, tmp_path):
    """oneDNN has no fp16 LSTM on most CPUs: refused in one line, nothing written. Where this
    CPU has one, fp16 trains instead."""
    fp16 = cfg.with_overrides({"train.precision": "fp16", "train.device": "cpu"})
    try:
        check_precision("fp16", torch.device("cpu"), cell="lstm")
    except ConfigError as exc:
        assert "\n" not in str(exc) and "use bf16 or fp32" in str(exc)
        with pytest.raises(ConfigError, match=r"train\.precision: fp16 LSTM"):
            train(fp16, tmp_path / "r", log=quiet)
        assert not (tmp_path / "r").exists()
    else:
        run = train(
            fp16,
            tmp_path / "r",
            progress=False,
            log=quiet,
        )
        assert np.isfinite(run.metrics()[0]["train_loss"])


def test_compiled_training_gives_the_eager_loss(cfg, tmp_path):
    runs = [
        train(
            cfg.with_overrides({"train.compile": c}),
            tmp_path / str(c),
            progress=False,
            log=quiet,
        )
        for c in (False, True)
    ]
    eager, compiled = (r.metrics()[0]["train_loss"] for r in runs)
    assert compiled == pytest.approx(eager, rel=1e-5)


def test_each_rank_takes_its_own_device():
    single = Dist()
    assert rank_device("cpu", single) == torch.device("cpu")
    rank1 = Dist(rank=1, world=2, local_rank=1)
    assert rank_device("cpu", rank1) == torch.device("cpu")
    want = torch.device("cuda", 1) if CUDA and torch.cuda.device_count() > 1 else None
    if not CUDA:
        assert rank_device("auto", rank1) == torch.device("cpu")  # auto under torchrun: no MPS
        with pytest.raises(NoizeNetError, match="cuda is not available"):
            rank_device("cuda", rank1)
    elif want is not None:
        assert rank_device("auto", rank1) == want == rank_device("cuda", rank1)
    for name in ("cuda:0", "mps"):
        with pytest.raises(ConfigError, match="every rank on one device"):
            rank_device(name, rank1)


def test_a_batch_the_processes_cannot_share_is_refused(cfg, tmp_path):
    from noizenet.train import _prepare_folder

    with pytest.raises(ConfigError, match="4 streams cannot be shared evenly by 3 processes"):
        _prepare_folder(Dist(0, 3, 0), cfg, tmp_path / "r", resume=False, force=False, log=quiet)
    assert not (tmp_path / "r").exists()


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_training_in_each_precision(cfg, tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    c = cfg.with_overrides({"train.device": "cuda", "train.precision": precision})
    run = train(c, tmp_path / precision, progress=False, log=quiet)
    assert run.info.device.startswith("cuda") and run.info.precision == precision
    loss = run.metrics()[0]["train_loss"]
    cpu = train(cfg, tmp_path / "cpu", progress=False, log=quiet)
    assert np.isfinite(loss) and abs(loss - cpu.metrics()[0]["train_loss"]) < 0.05 * loss


@needs_cuda
def test_cuda_recurrent_layer_runs_on_cudnn():
    model = NoizeNet(ModelSpec(hidden=16))
    streams = Streams([np.zeros(100, np.float32)], batch=1, chunk=50)
    tr = Trainer(model, streams, TrainConfig(), device=torch.device("cuda"), progress=False)
    assert torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled
    assert all(p.is_cuda for p in model.parameters())
    assert tr.train_step(next(streams.epoch(0, seed=0))) is not None
