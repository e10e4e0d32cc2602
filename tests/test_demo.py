import json

import numpy as np
import soundfile as sf

from noizenet.demo import SEEDS, run_demo
from noizenet.errors import NoizeNetError
from noizenet.run import parse_take_name


def test_demo_writes_every_model_take_and_figure(tmp_path):
    out = tmp_path / "demo"
    small = {
        "data.embedded_songs": 3,
        "data.songs": 2,
        "data.seconds": 1.0,
        "model.hidden": 8,
        "train.batch": 4,
        "train.chunk": 512,
    }
    written = run_demo(
        out, epochs=1, seconds=0.5, progress=False, log=lambda *a: None, overrides=small
    )
    for cell in ("lstm", "rnn", "mulaw-lstm", "samplernn"):
        run = out / cell
        assert (run / "model.safetensors").stat().st_size > 0
        assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
        takes = sorted((run / "audio").glob("gen_*.wav"))
        # training's own takes at the run's end (white and a validation song), beside the demo's
        trained = [t for t in takes if parse_take_name(t.stem).checkpoint == "epoch1"]
        assert len(trained) == 2
        takes = [t for t in takes if t not in trained]
        assert len(takes) == len(SEEDS)
        for take in takes:
            y, sr = sf.read(take)
            assert sr == 22050 and y.size == round(0.5 * 22050)
            assert np.all(np.isfinite(y)) and np.std(y) > 0  # not silent, not constant
            assert (run / "figures" / f"{take.stem}_views.png").is_file()
        assert len(list((run / "audio").glob("reproduction_*.wav"))) == 1
    for name in ("loss_rnn_vs_lstm.png", "reproduction.png", "collapse.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    summary = json.loads((out / "demo.json").read_text())
    assert set(summary["collapse_s"]) == {"lstm", "rnn", "mulaw-lstm", "samplernn"}
    assert set(summary["collapse_s"]["lstm"]) == set(SEEDS)
    assert written["audio"] and written["figures"]
    # one page for both runs, and each run's own page rewritten now that it has takes
    page = (out / "report.html").read_text()
    assert written["report"] == out / "report.html"
    assert 'id="comparison"' in page and "lstm/audio/" in page and "rnn/audio/" in page
    assert "reproduction.png" in page and "collapse.png" in page
    for cell in ("lstm", "rnn"):
        assert "audio/gen_perlin_" in (out / cell / "report.html").read_text()


def test_demo_refuses_to_overwrite_without_force(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "x").write_text("mine")
    try:
        run_demo(tmp_path / "demo", progress=False, log=lambda *a: None)
    except NoizeNetError as exc:
        assert "--force" in str(exc)
    else:
        raise AssertionError("overwrote an earlier demo")
