"""The benchmark's measuring functions run and report positive rates (no timing assertions)."""

import json

from noizenet import bench


def test_each_measurement_runs_on_tiny_sizes():
    assert bench.training_rate(8, False, batch=2, chunk=16, steps=1, repeats=1) > 0
    assert bench.training_rate(8, True, batch=2, chunk=16, steps=1, repeats=1) > 0
    assert bench.paper_training_rate(8, window=20, samples=2, repeats=1) > 0
    assert bench.paper_generation_rate(8, window=20, samples=2, repeats=1) > 0
    assert bench.torch_loop_rate(8, samples=5, repeats=1) > 0
    for cat in (False, True):
        assert bench.generation_rate(8, cat, streams=3, seconds=0.001, repeats=1) > 0


def test_rows_report_ratios_and_targets():
    row = bench.Row("generation, 1 stream", 44100.0, "paper", 441.0, 35, 50, "x real time")
    assert row.value == 2.0 and row.ratio == 100.0
    text = bench.format_row(row)
    assert "2.0 x real time" in text and "100x paper" in text and "BELOW floor 35 (goal 50)" in text
    between = bench.format_row(bench.Row("training", 600.0, "paper", 1.0, 500, 1000))
    assert "meets floor 500, below goal 1000" in between
    assert "meets goal 1000 (floor 500)" in bench.format_row(
        bench.Row("t", 1e3, "p", 1.0, 500, 1e3)
    )
    data = bench.rows_json([row])
    assert json.loads(json.dumps(data))[0]["ratio"] == 100.0


def test_the_default_and_hierarchical_presets_are_measured_at_their_own_sizes():
    from noizenet.config import DEFAULT_PRESET

    assert bench.PRESET_ROWS == (DEFAULT_PRESET, "samplernn", "samplernn-3t")
    default, batch, chunk = bench.preset_spec(DEFAULT_PRESET)
    assert default["family"] == "flat" and default["levels"] == 256 and default["hidden"] == 128
    for name in bench.PRESET_ROWS[1:]:
        spec, batch, chunk = bench.preset_spec(name)
        assert spec["family"] == "samplernn" and spec["levels"] == 256
        assert (batch, chunk) == (32, 512) and chunk % spec["frame_sizes"][0] == 0
    assert bench.preset_spec("samplernn-3t")[0]["frame_sizes"] == [64, 16]
    # the same measuring functions at tiny samplernn sizes, 2 and 3 tiers
    for frames in ([4], [8, 4]):
        tiny = {**bench.preset_spec("samplernn")[0], "frame_sizes": frames, "hidden": 8,
                "mlp_hidden": 8, "embedding": 4}  # fmt: skip
        assert bench.training_rate(0, True, batch=2, chunk=32, steps=1, repeats=1, spec=tiny) > 0
        for streams in (1, 3):
            rate = bench.generation_rate(
                0, True, streams=streams, seconds=0.002, repeats=1, spec=tiny
            )
            assert rate > 0
