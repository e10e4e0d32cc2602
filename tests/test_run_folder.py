"""The run folder module: take names made and read by one pair of functions, run.json read
back tolerantly, and weights format 2 (checksum required; format 1 loads with a warning)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from noizenet.errors import CheckpointError, NoizeNetError
from noizenet.models import ModelSpec, NoizeNet
from noizenet.run import (
    WEIGHTS_FORMAT,
    RunInfo,
    TakeName,
    load_model,
    parse_take_name,
    read_run_info,
    save_weights,
    take_name,
)
from noizenet.tensorfile import LegacyFormatWarning, tensor_digest

# every field a name can hold, alone and together; seeds with underscores and digits that look
# like the other fields must survive too
TAKES = [
    TakeName("perlin", epochs=10),
    TakeName("white", epochs=0, variation=7),
    TakeName("silence", epochs=3, inject="periodic"),
    TakeName("song-my_song_e5_v2", epochs=12, inject="stall", variation=1),
    TakeName("perlin", epochs=10, temperature=(1.0, 1.0)),  # mu-law: gen_perlin_e10_t1_v0
    TakeName("perlin", epochs=10, temperature=(0.0, 0.0)),  # argmax
    TakeName("white", epochs=2, temperature=(0.9, 0.5), top_p=0.95, variation=3),
    TakeName("song-a", epochs=1, temperature=(1e-05, 2.5)),
    TakeName("song-x_t1_p0.5", epochs=4, temperature=(0.123456789, 0.123456789), top_p=0.5),
    TakeName("perlin", epochs=10, checkpoint="best", temperature=(1.0, 1.0)),
    TakeName("perlin", epochs=3, checkpoint="epoch3", inject="periodic"),
    TakeName("unseen", reproduction=True),
    TakeName("my_song_v0", reproduction=True),
    TakeName("unseen", checkpoint="best", reproduction=True),
]


@pytest.mark.parametrize("name", TAKES, ids=[take_name(t) for t in TAKES])
def test_take_names_read_back_as_what_made_them(name):
    assert parse_take_name(take_name(name)) == name


def test_take_names_keep_their_old_spelling():
    """Takes written before this module existed are read, and new ones are named alike."""
    assert (
        take_name(TakeName("perlin", epochs=10, temperature=(1.0, 1.0))) == "gen_perlin_e10_t1_v0"
    )
    assert take_name(TakeName("white", epochs=2, inject="stall")) == "gen_white_e2_inj-stall_v0"
    old = parse_take_name("gen_perlin_e10_t0.8-1.2_p0.9_v1")
    assert old == TakeName("perlin", 10, 1, temperature=(0.8, 1.2), top_p=0.9)
    assert parse_take_name("reproduction_song3") == TakeName("song3", reproduction=True)
    for foreign in ("my_take", "gen_perlin_v0", "gen__e1_v0x", "gen_perlin_e1_inj-loud_v0"):
        assert parse_take_name(foreign) is None, foreign


@pytest.mark.parametrize(
    "bad",
    [
        TakeName(""),
        TakeName("perlin", inject="loud"),
        TakeName("perlin", checkpoint="epoch:3"),
        TakeName("perlin", temperature=(float("nan"), 1.0)),
        TakeName("perlin", epochs=-1),
    ],
)
def test_take_names_refuse_what_they_could_not_read_back(bad):
    with pytest.raises(ValueError, match="take name"):
        take_name(bad)


def test_report_captions_every_kind_of_take():
    from noizenet.report.folder import describe_take

    assert describe_take("gen_perlin_e10_t1_v0") == (
        "seed perlin, after 10 epochs, temperature 1, variation 0"
    )
    assert describe_take("gen_white_e2_t0.9-0.5_p0.95_v3") == (
        "seed white, after 2 epochs, temperature 0.9 to 0.5, top-p 0.95, variation 3"
    )
    assert describe_take("gen_song-a_e4_ckpt-best_inj-stall_v1") == (
        "seed song-a, after 4 epochs, checkpoint best, noise injection stall, variation 1"
    )
    assert describe_take("gen_silence_e1_v0").endswith("noise injection none, variation 0")
    assert describe_take("reproduction_x") is None and describe_take("mine") is None


def test_run_info_round_trips_and_tolerates_old_and_new_files(tmp_path):
    info = RunInfo(seed=3, sample_rate=22050, codec={"name": "zscore"}, train_rms=0.25)
    info.metrics = {"epochs": 4, "val_loss": 0.5}
    assert RunInfo.from_dict(info.to_dict()) == info
    assert "resumed" not in info.to_dict()  # as runs that were never resumed wrote it

    # an old run.json: fewer keys, an int RMS; a newer one: a key this version does not know,
    # kept when the file is written again; a value of the wrong type reads as the default
    path = tmp_path / "run.json"
    raw = {"sample_rate": 16000, "codec": {"name": "mulaw"}, "train_rms": 1, "later": [1]}
    path.write_text(json.dumps({**raw, "metrics": "broken", "parameters": True}))
    back = read_run_info(path)
    assert back.sample_rate == 16000 and back.train_rms == 1.0 and back.epochs_done == 0
    assert back.metrics == {} and back.parameters == 0 and back.status == "training"
    assert back.to_dict()["later"] == [1]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{", "unreadable"),
        ("[1]", "expected a JSON object"),
        ('{"codec": {}}', "missing or invalid 'sample_rate'"),
        ('{"sample_rate": 0, "codec": {}}', "invalid sample_rate 0"),
    ],
)
def test_run_info_errors_are_one_line_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(NoizeNetError, match=fragment) as exc:
        read_run_info(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    if fragment not in ("unreadable", "expected a JSON object"):
        read_run_info(path, strict=False)  # a report still shows it


# -- weights format 2 --------------------------------------------------------------------------
@pytest.fixture()
def model():
    torch.manual_seed(0)
    return NoizeNet(ModelSpec(hidden=4)).eval()


def _rewrite(path, meta):
    """The same tensors under other metadata, written without our checksum logic."""
    with safe_open(str(path), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    save_file(tensors, str(path), metadata=meta)
    return tensors


def test_weights_are_written_as_format_2_with_a_checksum(tmp_path, model):
    path = tmp_path / "model.safetensors"
    save_weights(path, model)
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["format_version"] == "2" and len(meta["sha256"]) == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a current file loads without a word
        back = load_model(path)
    assert all(
        torch.equal(a, b)
        for a, b in zip(back.state_dict().values(), model.state_dict().values(), strict=True)
    )


def test_format_2_without_its_checksum_is_refused_with_one_line(tmp_path, model):
    path = tmp_path / "model.safetensors"
    save_weights(path, model)
    spec = json.dumps(model.spec.to_dict())
    _rewrite(path, {"format": WEIGHTS_FORMAT, "format_version": "2", "spec": spec})
    with pytest.raises(CheckpointError, match="has no checksum") as exc:
        load_model(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("with_digest", [False, True])
def test_format_1_files_still_load_with_a_warning_naming_the_file(tmp_path, model, with_digest):
    path = tmp_path / "old.safetensors"
    save_weights(path, model)
    meta = {"format": WEIGHTS_FORMAT, "format_version": "1"}
    meta["spec"] = json.dumps(model.spec.to_dict())
    tensors = _rewrite(path, meta)
    if with_digest:  # format 1 as written once the checksum was added: still checked
        meta["sha256"] = tensor_digest(tensors, meta)
        _rewrite(path, meta)
    with pytest.warns(LegacyFormatWarning, match=str(path)) as caught:
        back = load_model(path)
    assert ("checksum verified" in str(caught[0].message)) == with_digest
    assert torch.equal(back.head.weight, model.head.weight)
    if with_digest:  # and a format-1 checksum that no longer matches is still refused
        meta["sha256"] = "0" * 64
        _rewrite(path, meta)
        with pytest.raises(CheckpointError, match="checksum mismatch"), warnings.catch_warnings():
            warnings.simplefilter("ignore", LegacyFormatWarning)
            load_model(path)
