"""`noizenet experiment`: the paper's experiments run end to end and write their tables.

`convergence` and `reproduction` run at the real `--scale quick` (what CI runs); the others at
an even smaller scale, to check that each one trains, measures and writes its files.
"""

import csv
import math

import pytest

from noizenet.cli import main
from noizenet.experiments import EXPERIMENTS, run_experiment
from noizenet.experiments.base import SCALES, Context, Scale
from noizenet.experiments.convergence import ROWS


@pytest.fixture(scope="module", autouse=True)
def corpus_cache(tmp_path_factory):
    """One embedded corpus for the module, outside the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOIZENET_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_list_names_every_experiment(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "batching",
        "overfit",
        "dropout",
        "multisong",
        "reproduction",
        "convergence",
        "noise-injection",
        "fft",
        "categorical",
        "tiers",
    ):
        assert name in EXPERIMENTS
        assert any(line.startswith(name + " ") for line in out.splitlines())


@pytest.mark.parametrize("verb", [["evaluate"], ["experiment"], ["experiment", "run"]])
def test_new_verbs_have_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*verb, "--help"])
    assert exc.value.code == 0
    assert "usage: noizenet " + " ".join(verb) in capsys.readouterr().out


def test_unknown_experiment_is_one_line_exit_2(tmp_path, capsys):
    assert main(["experiment", "run", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_convergence_quick_trains_and_measures_every_row(tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["experiment", "run", "convergence", "--scale", "quick", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    folder = out / "convergence"
    md = (folder / "results.md").read_text()
    assert "| setting | value | paper's result |" in md and md.split("\n| ")[0] in printed
    rows = _csv(folder / "results.csv")
    assert rows[0]["setting"] == "base run"
    measured = rows[1:-3]
    assert len(measured) == sum(len(r.quick) for r in ROWS)
    settings = [r["setting"] for r in measured if r["setting"]]
    assert settings == [r.name for r in ROWS]
    gen = SCALES["quick"].gen_seconds
    for r in measured:
        c = r["collapse_s"]
        assert c in ("never", "non-finite") or 0.0 <= float(c) <= gen, r
        if c != "non-finite":
            assert math.isfinite(float(r["snr_db"]))
    assert [r["value"] for r in rows[-3:-1]] == ["persistence", "LPC-32 (noise-driven synthesis)"]
    # the seed-length row varies generation only: one trained run, four takes
    seed_rows = [r for r in measured if r["value"].endswith("samples")][-4:]
    assert len({r["train_loss"] for r in seed_rows}) == 1
    for name in ("collapse.png", "best_prediction.png"):
        assert (folder / "figures" / name).stat().st_size > 0


def test_reproduction_quick_is_measured_against_baselines_and_reproducible(tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["experiment", "run", "reproduction", "--scale", "quick", "--out", str(out), "--quiet"]
    assert main(args) == 0
    folder = out / "reproduction"
    first = (folder / "results.csv").read_text()
    rows = {r["label"].split(" ")[0]: r for r in _csv(folder / "results.csv")}
    assert set(rows) == {"LSTM", "RNN", "persistence", "LPC-32"}
    for cell in ("LSTM", "RNN"):
        snr = float(rows[cell]["snr_db"])
        assert float(rows[cell]["vs_persistence"]) == pytest.approx(
            snr - float(rows["persistence"]["snr_db"]), abs=1e-4
        )
        assert float(rows[cell]["vs_lpc"]) == pytest.approx(
            snr - float(rows["LPC-32"]["snr_db"]), abs=1e-4
        )
    assert (folder / "figures" / "reproduction.png").stat().st_size > 0
    assert sorted(p.name for p in (folder / "audio").glob("*.wav")) == [
        "reproduction_lpc-32.wav",
        "reproduction_lstm.wav",
        "reproduction_persistence.wav",
        "reproduction_rnn.wav",
    ]
    # trained again from scratch, the same seed gives the same table
    capsys.readouterr()
    assert main([*args, "--fresh"]) == 0
    assert (folder / "results.csv").read_text() == first


def test_every_paper_scale_value_is_a_valid_config(tmp_path):
    ctx = Context("convergence", out=tmp_path, scale="paper")
    for row in ROWS:
        for v in row.paper:
            cfg = ctx.config({"train.chunk": 2205, **row.overrides(v)})  # raises if invalid
            assert (cfg.model.hidden, cfg.data.seconds, cfg.train.epochs) == (
                v if row.name == "hidden dimension" else 50,
                v if row.name == "song duration" else 15.0,
                v if row.name == "training epochs" else 100,
            )


def test_a_trained_config_is_reused_not_retrained(tmp_path, song_dir):
    logs = []
    ctx = Context("x", out=tmp_path, data=str(song_dir), scale="quick", log=logs.append)
    small = {"data.seconds": 0.5, "model.hidden": 4, "train.epochs": 1}
    a = ctx.train("small", small)
    stamp = (a.path / "model.safetensors").stat().st_mtime_ns
    b = Context("y", out=tmp_path, data=str(song_dir), scale="quick", log=logs.append).train(
        "other label", small
    )
    assert b.path == a.path and (b.path / "model.safetensors").stat().st_mtime_ns == stamp
    assert len(logs) == 1  # trained once
    c = ctx.train("small", {**small, "model.hidden": 5})
    assert c.path != a.path and len(logs) == 2


TINY = Scale(
    "tiny",
    {
        "data.seconds": 0.4,
        "data.songs": 2,
        "data.val_songs": 1,
        "data.embedded_songs": 12,
        "model.hidden": 4,
        "train.epochs": 1,
        "train.batch": 4,
        "train.chunk": 512,
        "train.threads": 1,
    },
    long_epochs=2,
    eval_seconds=0.4,
    gen_seconds=0.3,
    seed_seconds=0.2,
    description="test scale",
)


def test_every_other_experiment_writes_its_tables_and_figures(tmp_path, monkeypatch):
    monkeypatch.setitem(SCALES, "tiny", TINY)
    trained: set[str] = set()
    for name in EXPERIMENTS:
        if name in ("convergence", "reproduction", "tiers"):
            continue  # run at the real quick scale above; tiers in test_tiers.py
        md = run_experiment(name, out=tmp_path, scale="tiny", log=lambda *a: None, _trained=trained)
        text = md.read_text()
        assert text.startswith(f"# {name}: ") and "\n| --- |" in text
        rows = _csv(md.parent / "results.csv")
        if name == "multisong":  # its first table is the loss per epoch
            assert [int(r["epoch"]) for r in rows] == list(range(1, TINY.long_epochs + 1))
        else:
            assert any(r["label"].startswith("LPC-32") for r in rows)
        figures = sorted((md.parent / "figures").glob("*.png"))
        assert figures and all(f"figures/{f.name}" in text for f in figures)


def test_a_run_that_trained_on_the_held_out_track_is_flagged(tmp_path, song_dir):
    ctx = Context("x", out=tmp_path, data=str(song_dir), scale="quick", log=lambda *a: None)
    small = {"data.seconds": 0.5, "model.hidden": 4, "train.epochs": 1}
    ctx.measure(ctx.train("some", {**small, "data.songs": 2}), gen_seconds=0.2, seed_seconds=0.1)
    assert not ctx.warnings
    everything = ctx.train("all", {**small, "data.songs": 5, "data.val_songs": 0})
    ctx.measure(everything, gen_seconds=0.2, seed_seconds=0.1)
    assert len(ctx.warnings) == 1 and everything.path.name in next(iter(ctx.warnings))
