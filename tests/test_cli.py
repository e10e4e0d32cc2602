"""Every verb end to end on tiny settings, through the real command line."""

import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from noizenet.cli import main


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def test_help_answers_quickly_without_heavy_imports():
    code = (
        "import sys, time; t = time.perf_counter(); from noizenet.cli import build_parser; "
        "build_parser().format_help(); "
        "heavy = [m for m in ('torch', 'librosa', 'numpy', 'matplotlib') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "noizenet", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - start < 5  # generous: the real figure is ~0.1 s


@pytest.mark.parametrize("verb", ["demo", "train", "generate", "reproduce", "plot"])
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        cli(verb, "--help")
    assert exc.value.code == 0
    assert "usage: noizenet " + verb in capsys.readouterr().out


def test_train_generate_reproduce_plot(song_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        cli(
            "train",
            "--data",
            song_dir,
            "--songs",
            2,
            "--seconds",
            0.5,
            "--epochs",
            2,
            "--hidden",
            6,
            "--cell",
            "gru",
            "--preset",
            "paper",  # the paper's flat model, whatever noizenet train's default preset is
            "--chunk",
            128,
            "--batch",
            2,
            "--out",
            run,
            "--quiet",
        )
        == 0
    )
    cfg = (run / "config.toml").read_text()
    assert 'cell = "gru"' in cfg and "hidden = 6" in cfg and "chunk = 128" in cfg

    gen = tmp_path / "gen.wav"
    assert (
        cli(
            "generate",
            run,
            "--seed",
            "white",
            "--seconds",
            0.3,
            "--out",
            gen,
            "--inject",
            "periodic:50",
        )
        == 0
    )
    data, sr = sf.read(gen)
    assert sr == 22050 and data.size == round(0.3 * 22050) and np.all(np.isfinite(data))
    assert (tmp_path / "gen_views.png").exists()

    song = next(song_dir.rglob("*.wav"))
    rep = tmp_path / "rep.wav"
    assert cli("reproduce", run, "--song", song, "--seconds", 0.4, "--out", rep) == 0
    assert sf.info(str(rep)).frames == round(0.4 * 22050)
    assert "SNR" in capsys.readouterr().out

    assert cli("plot", gen, "--out", tmp_path / "plots") == 0
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {
        "gen_waveform.png",
        "gen_envelope.png",
        "gen_spectrogram.png",
        "gen_spectrogram_log.png",
    } <= names


def test_config_file_and_flags_combine(song_dir, tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        'seed = 3\n[model]\ncell = "rnn"\nhidden = 5\n[train]\nepochs = 1\nchunk = 64\n'
    )
    run = tmp_path / "run"
    assert (
        cli(
            "train",
            "--config",
            toml,
            "--hidden",
            7,
            "--data",
            song_dir,
            "--songs",
            1,
            "--seconds",
            0.3,
            "--out",
            run,
            "--quiet",
        )
        == 0
    )
    cfg = (run / "config.toml").read_text()
    assert 'cell = "rnn"' in cfg and "hidden = 7" in cfg and "seed = 3" in cfg


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--hidden", "-1"], "model.hidden: must be >= 1"),
        (["train", "--lr", "0"], "train.lr: must be > 0"),
        (["train", "--data", "/no/such/folder"], "/no/such/folder: no such file or folder"),
        (["generate", "/no/such/run"], "not a NoizeNet run folder"),
        (["plot", "/no/such.wav"], "/no/such.wav: no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, fragment, capsys, tmp_path):
    assert cli(*args, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err and "Traceback" not in err


def test_argparse_rejects_unknown_choices_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli("train", "--model", "transformer")
    assert exc.value.code == 2


@pytest.mark.parametrize("rank, speaks", [("0", True), ("1", False)])
def test_under_torchrun_rank_zero_alone_reports_a_usage_error(rank, speaks, capsys, monkeypatch):
    monkeypatch.setenv("RANK", rank)  # every rank parses the same command line
    with pytest.raises(SystemExit) as exc:
        cli("train", "--no-such-flag")
    assert exc.value.code == 2
    assert ("--no-such-flag" in capsys.readouterr().err) is speaks
