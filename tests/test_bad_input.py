"""Every verb, fed bad values: exit code 2 and one line naming the problem, never a traceback."""

from __future__ import annotations

import os

import numpy as np
import pytest

from noizenet.cli import main
from noizenet.errors import ConfigError, NoizeNetError


@pytest.fixture()
def places(tmp_path, tiny_run, song_dir):
    """Names a case may use: {RUN} a trained run, {SONG} a good song, {JUNK} random bytes with
    an audio suffix, {FILE} a plain file (a parent that is not a folder), {FULL} a folder that
    is not empty, {TOML} a broken config, {TMP} a fresh folder."""
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder")
    full = tmp_path / "full"
    full.mkdir()
    (full / "something.txt").write_text("x")
    toml = tmp_path / "bad.toml"
    toml.write_text("[model\nhidden = 3")
    return {
        "RUN": str(tiny_run.path),
        "SONG": str(next(song_dir.rglob("*.wav"))),
        "JUNK": str(junk),
        "FILE": str(plain),
        "FULL": str(full),
        "TOML": str(toml),
        "TMP": str(tmp_path / "new"),
    }


# (arguments, fragment of the one-line message)
CASES = [
    # demo: checked before any training starts
    ("demo --epochs 0", "train.epochs: must be >= 1"),
    ("demo --epochs -3", "train.epochs: must be >= 1"),
    ("demo --seconds -1", "--seconds must be a finite number > 0"),
    ("demo --random-seed -1", "seed: must be >= 0"),
    ("demo --out {FILE}", "not a folder"),
    ("demo --out {FILE}/sub", "cannot write here"),
    ("demo --out {FULL}", "already holds a demo"),
    # train: negative sizes, unknown names, bad rates, missing paths, unwritable output
    ("train --hidden -1", "model.hidden: must be >= 1"),
    ("train --layers 0", "model.layers: must be >= 1"),
    ("train --batch 0", "train.batch: must be >= 1"),
    ("train --chunk 1", "train.chunk: expected an integer >= 2"),
    ("train --songs 0", "data.songs: must be >= 1"),
    ("train --seconds -2", "data.seconds: must be > 0"),
    ("train --offset -1", "data.offset: must be >= 0"),
    ("train --epochs 0", "train.epochs: must be >= 1"),
    ("train --lr 0", "train.lr: must be > 0"),
    ("train --lr -0.1", "train.lr: must be > 0"),
    ("train --lr nan", "train.lr: expected a finite number"),
    ("train --clip 0", "train.clip: must be > 0"),
    ("train --dropout 1.5", "model.dropout: must be <= 0.99"),
    ("train --sr 10", "data.sample_rate: must be >= 1000"),
    ("train --threads -1", "train.threads: must be >= 0"),
    ("train --checkpoint-every -1", "train.checkpoint_every: must be >= 0"),
    ("train --keep-checkpoints 0", "train.keep_checkpoints: must be >= 1"),
    ("train --nan-patience 0", "train.nan_patience: must be >= 1"),
    ("train --max-rollbacks -1", "train.max_rollbacks: must be >= 0"),
    ("train --device tpu", "train.device: unknown device 'tpu'"),
    ("train --device cuda:99 --out {TMP}", "cuda:99 is not available"),
    ("train --stateless --chunk whole-song", "train.stateless needs a finite train.chunk"),
    ("train --data /no/such/folder --out {TMP}", "/no/such/folder: no such file or folder"),
    ("train --data {JUNK} --out {TMP}", "no usable audio"),
    ("train --config /no/such.toml", "/no/such.toml: cannot read config"),
    ("train --config {TOML}", "bad.toml: not valid TOML"),
    ("train --out {FILE}", "cannot write here"),
    ("train --out {FILE}/run", "cannot write here"),
    ("train --out {RUN}", "already holds a run (use --resume to continue it, or --force"),
    ("train --resume /no/such/run", "/no/such/run: no run to resume"),
    ("train --resume {RUN} --hidden 9", "model.hidden is 8 in the run, not 9"),
    ("train --resume {RUN} --lr 0.5", "train.lr is 0.01 in the run, not 0.5"),
    ("train --resume {RUN} --force", "pick one"),
    ("train --resume {RUN} --config {TOML}", "--config cannot be combined with --resume"),
    ("train --resume {RUN} --epochs 1", "already trained 2 epochs"),
    ("train --resume {RUN} --out {TMP}", "give only one"),
    # generate
    ("generate /no/such/run", "/no/such/run: not a NoizeNet run folder"),
    ("generate {FULL}", "not a NoizeNet run folder"),
    ("generate {RUN} --seconds -1", "--seconds: must be > 0"),
    ("generate {RUN} --seconds nan", "--seconds: expected a finite number"),
    ("generate {RUN} --seed-seconds 0", "--seed-seconds: must be > 0"),
    ("generate {RUN} --variations 0", "--variations: must be >= 1"),
    ("generate {RUN} --random-seed -1", "--random-seed: must be >= 0"),
    ("generate {RUN} --top-p 0", "--top-p: must be > 0"),
    ("generate {RUN} --top-p 0.9", "--top-p: applies to categorical heads"),
    ("generate {RUN} --temperature 0.7", "--temperature: applies to categorical heads"),
    ("generate {RUN} --temperature hot", "--temperature: 'hot': expected T, T0:T1"),
    ("generate {RUN} --seed bogus", "unknown seed 'bogus'"),
    ("generate {RUN} --seed song:/no/such.wav", "/no/such.wav: no such file"),
    ("generate {RUN} --seed song:{JUNK} --seconds 0.1", "junk.wav: cannot decode audio"),
    ("generate {RUN} --inject nonsense", "--inject: 'nonsense'"),
    ("generate {RUN} --inject periodic:-3", "--inject: 'periodic:-3'"),
    ("generate {RUN} --out {FILE}/x.wav", "cannot write here"),
    # reproduce
    ("reproduce /no/such/run --song {SONG}", "not a NoizeNet run folder"),
    ("reproduce {RUN} --song /no/such.wav", "/no/such.wav: no such file"),
    ("reproduce {RUN} --song {JUNK}", "junk.wav: cannot decode audio"),
    ("reproduce {RUN} --song {SONG} --seconds -1", "--seconds must be a finite number > 0"),
    ("reproduce {RUN} --song {SONG} --offset -1", "--offset must be a finite number >= 0"),
    ("reproduce {RUN} --song {SONG} --offset 1000", "no audio samples"),
    ("reproduce {RUN} --song {SONG} --out {FILE}/r.wav", "cannot write here"),
    # plot
    ("plot /no/such.wav", "/no/such.wav: no such file"),
    ("plot {JUNK}", "junk.wav: cannot decode audio"),
    ("plot {FULL}", "no such file"),
    ("plot {SONG} --seconds -1", "--seconds must be a finite number > 0"),
    ("plot {SONG} --offset -1", "--offset must be a finite number >= 0"),
    ("plot {SONG} --out {FILE}", "not a folder"),
    ("plot {SONG} --out {FILE}/plots", "cannot write here"),
    # bench
    ("bench --repeats 0", "--repeats must be >= 1"),
    # the verbs that landed beside this table: evaluate, report, experiment, data inspect
    ("evaluate {FULL}", "not a NoizeNet run folder"),
    ("evaluate {RUN} --data {TMP}", "no such file or folder"),
    ("evaluate {RUN} --gen-seconds -1", "--gen-seconds: must be > 0"),
    ("evaluate {RUN} --top-p 2", "--top-p: must be <= 1"),
    ("report {FULL}", "not a NoizeNet run folder"),
    ("report {RUN} --out {FILE}/r.html", "cannot write"),
    ("experiment run nosuch", "unknown experiment 'nosuch'"),
    ("data inspect {TMP}", "no such file or folder"),
    ("data inspect fma:{TMP}", "no such folder"),
]


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse
        return int(exc.code)


@pytest.mark.parametrize("args, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_values_end_in_one_line_and_exit_code_2(args, fragment, places, capsys):
    argv = [a.format(**places) for a in args.split()]
    fragment = fragment.format(**places)
    assert run_cli(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err, err
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"noizenet {argv[0]}: error: ")


ARGPARSE_CASES = [
    ("train --model transformer", "unknown family 'transformer' (choose from flat, samplernn)"),
    ("train --model lstm", "'lstm' is a recurrent cell, give it as --cell lstm"),
    ("train --cell transformer", "invalid choice: 'transformer'"),
    ("train --codec foo", "invalid choice: 'foo'"),
    ("train --loss huber", "invalid choice: 'huber'"),
    ("train --chunk lots", "train.chunk: expected an integer or 'whole-song'"),
    ("train --hidden abc", "invalid int value: 'abc'"),
    ("train --no-such-flag", "unrecognized arguments: --no-such-flag"),
    ("generate", "the following arguments are required: run"),
    ("reproduce {RUN}", "the following arguments are required: --song"),
    ("frobnicate", "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("args, fragment", ARGPARSE_CASES, ids=[c[0] for c in ARGPARSE_CASES])
def test_unparseable_flags_are_one_line_too(args, fragment, places, capsys):
    """argparse's own errors: the usage of ``train`` runs to a screen; one line is enough."""
    argv = [a.format(**places) for a in args.split()]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err and "--help" in err, err


def test_debug_shows_the_traceback():
    with pytest.raises(ConfigError, match=r"model\.hidden"):
        main(["--debug", "train", "--hidden", "-1"])
    with pytest.raises(NoizeNetError, match="no such file"):
        main(["plot", "/no/such.wav", "--debug"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 555")
def test_a_read_only_folder_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert run_cli(["train", "--out", str(locked / "run")]) == 2
        err = capsys.readouterr().err.strip()
        assert "cannot write here" in err and "\n" not in err
    finally:
        locked.chmod(0o755)


def test_nothing_is_left_behind_by_refused_commands(places, capsys):
    """A refused train leaves no run folder half made, and the existing run untouched."""
    from pathlib import Path

    run = Path(places["RUN"])
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    run_cli(["train", "--out", str(run)])
    run_cli(["train", "--resume", str(run), "--hidden", "9"])
    run_cli(["train", "--resume", str(run), "--epochs", "1"])
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
    run_cli(["train", "--hidden", "-1", "--out", places["TMP"]])
    assert not Path(places["TMP"]).exists()
