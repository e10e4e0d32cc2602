"""`noizenet experiment run tiers`: four models on one time budget, measured on real held-out
audio. Tiny sizes and a two-second budget: this checks the wiring (every table, figure and take
holds numbers; a second invocation reuses the time-limited runs), not the figures themselves."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import tone_song, write_wav

from noizenet.cli import main
from noizenet.experiments import run_experiment
from noizenet.experiments.tiers import MODELS, SEEDS

_REPO = Path(__file__).resolve().parents[1]
REAL_TRACK = next(
    (p for d in (_REPO.parent, _REPO.parents[1]) for p in d.glob("shared/real-music/*track1.opus")),
    None,
)
TINY = {
    "model.hidden": 8,
    "model.mlp_hidden": 8,
    "model.embedding": 4,
    "train.batch": 2,
    "train.chunk": 256,  # a whole number of the 3-tier's 64-sample top frames
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Three tone songs to train on; two seconds of a real Opus track (or a tone) to hold out."""
    root = tmp_path_factory.mktemp("tiers")
    for i in range(3):
        write_wav(root / "train" / f"song{i}.wav", tone_song(i, seconds=1.5))
    held = root / "held"
    held.mkdir()
    if REAL_TRACK is not None:
        import soundfile as sf

        from noizenet import audio

        y = audio.load(REAL_TRACK, sr=48000, offset=60.0, duration=2.0)
        sf.write(held / "real.opus", y, 48000, format="OGG", subtype="OPUS")
    else:
        write_wav(held / "tone.wav", tone_song(9, seconds=2.0))
    return root


def _options(folders: Path, **extra) -> dict:
    return {
        "max_time": 2.0,
        "jobs": 2,
        "val_source": str(folders / "held"),
        "seconds": 1.5,
        "take_seconds": 0.5,
        "overrides": TINY,
        **extra,
    }


def test_tiers_trains_four_models_for_the_same_time_and_measures_them(folders, tmp_path):
    logs: list[str] = []
    md = run_experiment(
        "tiers",
        out=tmp_path,
        data=str(folders / "train"),
        options=_options(folders),
        log=logs.append,
    )
    text = md.read_text()
    assert text.startswith("# tiers: ") and "\n| --- |" in text
    with open(md.parent / "results.csv", newline="") as fh:
        rows = {r["label"]: r for r in csv.DictReader(fh)}
    for label in MODELS:
        row = rows[label]
        assert row["status"] == "time-limit" and row["threads"] == "1"
        assert int(row["trained_samples"]) > 0 and float(row["samples_per_s"]) > 0
        if "MSE" in label:
            assert math.isfinite(float(row["snr_db"])) and row["bits"] == ""
        else:
            assert 0 < float(row["bits"]) < 9  # 8 bits: a uniform guess over 256 levels
            assert float(row["frechet_t09"]) >= 0
        assert float(row["frechet_t1"]) >= 0 and row["collapsed_t1"].endswith("/4")
    baselines = [r for k, r in rows.items() if k.startswith("baseline:")]
    assert len(baselines) == 4 and all(0 < float(r["bits"]) < 12 for r in baselines)
    real = next(r for k, r in rows.items() if k.startswith("reference: held-out"))
    white = next(r for k, r in rows.items() if k.startswith("reference: white"))
    assert float(white["flatness_t1"]) > 0.9 > float(real["flatness_t1"])
    assert float(white["frechet_t1"]) > 0
    # every take: 4 seeds x 2 temperatures per categorical model, 4 for the MSE model
    with open(md.parent / "results_2.csv", newline="") as fh:
        takes = list(csv.DictReader(fh))
    assert len(takes) == 3 * len(SEEDS) * 2 + len(SEEDS) + 1  # + the white-noise reference
    for take in takes:
        wav = md.parent / take["audio"]
        assert wav.is_file() and wav.stat().st_size > 1000
        assert float(take["frechet"]) >= 0
    figures = sorted((md.parent / "figures").glob("*.png"))
    names = {f.name for f in figures}
    assert "bits.png" in names and "spectrograms_references.png" in names
    assert {f"spectrograms_{p}_t1.png" for p in MODELS.values()} <= names
    assert all(f"figures/{f.name}" in text for f in figures)
    data = json.loads((md.parent / "results.json").read_text())
    assert data["experiment"] == "tiers" and len(data["tables"]) == 2
    assert "2 model(s) at a time in separate processes, 1 torch thread(s) each" in text

    # a second invocation reuses the four time-limited runs and measures the same bits
    again: list[str] = []
    md2 = run_experiment(
        "tiers",
        out=tmp_path,
        data=str(folders / "train"),
        options=_options(folders),
        log=again.append,
    )
    assert sum("reusing" in line for line in again) == len(MODELS)
    with open(md2.parent / "results.csv", newline="") as fh:
        rows2 = {r["label"]: r for r in csv.DictReader(fh)}
    for label in MODELS:
        assert rows2[label]["bits"] == rows[label]["bits"]


def test_tiers_flags_are_refused_beside_other_experiments(tmp_path, capsys):
    code = main(["experiment", "run", "batching", "--max-time", "5", "--out", str(tmp_path)])
    assert code == 2
    assert "--max-time applies to the tiers experiment only" in capsys.readouterr().err
    assert main(["experiment", "run", "tiers", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err


def test_the_frechet_distance_and_flatness_order_noise_and_tones():
    from noizenet.analysis.metrics import log_mel_frechet_distance, spectral_flatness

    rng = np.random.default_rng(0)
    sr = 22050
    t = np.arange(2 * sr) / sr
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    chord = tone + 0.2 * np.sin(2 * np.pi * 660 * t)
    noise = 0.3 * rng.standard_normal(t.size)
    other_noise = 0.3 * rng.standard_normal(t.size)
    # noise is near noise, far from tones; a tone is nearer a chord holding it than noise is
    assert log_mel_frechet_distance(other_noise, noise) < log_mel_frechet_distance(tone, noise)
    assert log_mel_frechet_distance(chord, tone) < log_mel_frechet_distance(noise, tone)
    assert spectral_flatness(noise) > 0.9 > 0.1 > spectral_flatness(chord)
