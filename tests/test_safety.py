"""Nothing unsafe is loaded, nothing broken is trusted, nothing half-written looks complete."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import noizenet
from noizenet.errors import CheckpointError, NoizeNetError, WriteError
from noizenet.models import ModelSpec, NoizeNet
from noizenet.run import WEIGHTS_FORMAT, load_model, read_weights, save_weights
from noizenet.tensorfile import write_tensors
from noizenet.train.checkpoint import load_checkpoint, save_checkpoint

SRC = Path(noizenet.__file__).parent

# ways of running code hidden in a file: pickle and everything built on it
UNSAFE = re.compile(
    r"\bimport\s+(pickle|cPickle|dill|cloudpickle|shelve|marshal)\b"
    r"|\bfrom\s+(pickle|dill|cloudpickle|shelve|marshal)\b"
    r"|\bpickle\.|torch\.load\b|torch\.jit\.load\b|allow_pickle\s*=\s*True|joblib\.load\b"
    r"|(?<![.\w])eval\(|(?<![.\w])exec\("
)


def test_no_pickle_or_torch_load_anywhere_in_the_source():
    hits = [
        f"{p.relative_to(SRC)}:{i}: {line.strip()}"
        for p in sorted(SRC.rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if UNSAFE.search(line)
    ]
    assert hits == []


def test_the_unsafe_pattern_does_catch_what_it_is_for():
    for line in (
        "import pickle",
        "torch.load(path)",
        "np.load(f, allow_pickle=True)",
        "pickle.loads(b)",
        "eval(text)",
    ):
        assert UNSAFE.search(line), line
    assert not UNSAFE.search("model.eval()")


@pytest.fixture()
def weights_file(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    save_weights(path, NoizeNet(ModelSpec(hidden=4)))
    return path


@pytest.fixture()
def checkpoint_file(tmp_path) -> Path:
    from noizenet.config import TrainConfig
    from noizenet.train.streams import Streams
    from noizenet.train.trainer import Trainer

    track = torch.sin(torch.arange(200) * 0.1).numpy()
    tr = Trainer(
        NoizeNet(ModelSpec(hidden=4)),
        Streams([track], batch=1, chunk=50),
        TrainConfig(epochs=1),
        progress=False,
    )
    tr.train_epoch()
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, tr.checkpoint())
    return path


def header_length(path: Path) -> int:
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    n = header_length(path)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated-header":
        path.write_bytes(data[: n // 2])
    elif how == "truncated-data":
        path.write_bytes(data[: n + (len(data) - n) // 2])
    elif how == "one-byte-short":
        path.write_bytes(data[:-1])
    elif how == "flipped-data":
        flip(path, len(data) - 3)
    elif how == "flipped-data-first":
        flip(path, n)
    elif how == "flipped-header":
        flip(path, n // 2)
    elif how == "flipped-length":
        flip(path, 1)
    elif how == "random-bytes":
        path.write_bytes(bytes(range(256)) * 4)
    elif how == "json-instead":
        path.write_text(json.dumps({"weights": [1, 2, 3]}))
    else:
        raise AssertionError(how)


DAMAGE = [
    "empty",
    "truncated-header",
    "truncated-data",
    "one-byte-short",
    "flipped-data",
    "flipped-data-first",
    "flipped-header",
    "flipped-length",
    "random-bytes",
    "json-instead",
]


def assert_one_line_naming(exc: pytest.ExceptionInfo, path: Path) -> None:
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg, msg


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_weights_are_refused_with_one_line_naming_the_file(weights_file, how):
    load_model(weights_file)  # whole, it loads
    damage(weights_file, how)
    with pytest.raises(CheckpointError) as exc:
        load_model(weights_file)
    assert_one_line_naming(exc, weights_file)


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_checkpoints_are_refused_with_one_line_naming_the_file(checkpoint_file, how):
    load_checkpoint(checkpoint_file)
    damage(checkpoint_file, how)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(checkpoint_file)
    assert_one_line_naming(exc, checkpoint_file)


def test_foreign_wrong_version_wrong_shape_and_swapped_files(
    tmp_path, weights_file, checkpoint_file
):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(CheckpointError, match="another program") as exc:
        load_model(foreign)
    assert_one_line_naming(exc, foreign)
    with pytest.raises(CheckpointError, match="another program"):
        load_checkpoint(foreign)

    spec = json.dumps(ModelSpec(hidden=4).to_dict())
    future = tmp_path / "future.safetensors"
    sd = NoizeNet(ModelSpec(hidden=4)).state_dict()
    write_tensors(future, sd, {"format": WEIGHTS_FORMAT, "format_version": "99", "spec": spec})
    with pytest.raises(CheckpointError, match="version '99' is not supported") as exc:
        load_model(future)
    assert_one_line_naming(exc, future)

    # consistent file, checksum and all, but shapes that are not the spec's
    wrong = tmp_path / "wrong.safetensors"
    bigger = NoizeNet(ModelSpec(hidden=5)).state_dict()
    write_tensors(wrong, bigger, {"format": WEIGHTS_FORMAT, "format_version": "2", "spec": spec})
    with pytest.raises(CheckpointError, match="do not match their model spec") as exc:
        load_model(wrong)
    assert_one_line_naming(exc, wrong)
    with pytest.raises(CheckpointError, match="do not match their model spec") as exc:
        read_weights(wrong).kernel()  # generation's path: the kernel on the arrays, no torch
    assert_one_line_naming(exc, wrong)

    newer = tmp_path / "newer-ckpt.safetensors"
    write_tensors(newer, sd, {"format": "noizenet-checkpoint", "format_version": "2"})
    with pytest.raises(CheckpointError, match="checkpoint format version '2' is not supported"):
        load_checkpoint(newer)

    with pytest.raises(CheckpointError, match="not a NoizeNet weights file"):
        load_model(checkpoint_file)
    with pytest.raises(CheckpointError, match="not a NoizeNet checkpoint file"):
        load_checkpoint(weights_file)
    with pytest.raises(CheckpointError, match="no such"):
        load_model(tmp_path / "missing.safetensors")


def test_generate_on_a_run_with_tampered_weights_is_one_line_exit_2(tiny_run, tmp_path, capsys):
    from noizenet.cli import main

    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    flip(run / "model.safetensors", header_length(run / "model.safetensors") + 5)
    assert main(["generate", str(run), "--seconds", "0.1", "--out", str(tmp_path / "g.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert "checksum mismatch" in err and "model.safetensors" in err and "\n" not in err
    assert not (tmp_path / "g.wav").exists()


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("config.toml", "[model\nhidden = 3", "not valid TOML"),
        ("config.toml", "[model]\nhidden = -3\n", "model.hidden: must be >= 1"),
        ("config.toml", b"\xff\xfe\x00garbage", "cannot read config"),
        ("run.json", '{"sample_rate": 22050, ', "unreadable"),
        ("run.json", "[1, 2, 3]", "expected a JSON object"),
        ("run.json", '{"sample_rate": "fast", "codec": {}}', "sample_rate"),
        ("run.json", '{"sample_rate": 22050, "codec": {"name": "nope"}}', "codec"),
    ],
)
def test_broken_run_metadata_is_one_line_exit_2(
    tiny_run, tmp_path, capsys, name, content, fragment
):
    from noizenet.cli import main

    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    if isinstance(content, bytes):
        (run / name).write_bytes(content)
    else:
        (run / name).write_text(content)
    assert main(["generate", str(run), "--seconds", "0.1", "--out", str(tmp_path / "g.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and name in err and "\n" not in err and "Traceback" not in err


# -- a full disk --------------------------------------------------------------------------------
def half_then_enospc(real, target_arg: int):
    """Wrap a writer: write half of what it would, then fail as a full disk does."""

    def writer(*args, **kwargs):
        real(*args, **kwargs)
        p = Path(args[target_arg])
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    return writer


def test_full_disk_leaves_no_file_that_looks_complete(tmp_path, monkeypatch, weights_file):
    import safetensors.torch
    import soundfile

    from noizenet.audio import write
    from noizenet.io import atomic_write_json

    good = weights_file.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", half_then_enospc(save_file, 1))
    with pytest.raises(WriteError, match="No space left on device") as exc:
        save_weights(weights_file, NoizeNet(ModelSpec(hidden=4)))
    assert exc.value.errno == errno.ENOSPC and isinstance(exc.value, OSError)
    assert weights_file.read_bytes() == good  # the old file, untouched
    new = tmp_path / "new.safetensors"
    with pytest.raises(WriteError):
        save_weights(new, NoizeNet(ModelSpec(hidden=4)))
    assert not new.exists()

    monkeypatch.setattr(soundfile, "write", half_then_enospc(soundfile.write, 0))
    with pytest.raises(WriteError):
        write(tmp_path / "a.wav", torch.zeros(1000).numpy())
    assert not (tmp_path / "a.wav").exists()

    def full(self, data):
        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(WriteError):
        atomic_write_json(tmp_path / "run.json", {"a": 1})
    assert not (tmp_path / "run.json").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_unwritable_places_are_write_errors(tmp_path):
    from noizenet.io import atomic_write_text, ensure_writable_dir

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError, match="cannot write here"):
        ensure_writable_dir(blocker / "sub")
    with pytest.raises(WriteError, match="cannot write"):
        atomic_write_text(blocker / "sub" / "a.txt", "x")
    assert isinstance(WriteError("x"), NoizeNetError)
