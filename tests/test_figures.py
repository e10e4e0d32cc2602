"""Tests for noizenet.analysis.figures (PNG output of views, comparisons, loss curves)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noizenet.analysis import figures

SR = 22050
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _notes(dur: float, seed: int = 0) -> np.ndarray:
    """A few decaying notes plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur * SR)) / SR
    y = 0.002 * rng.standard_normal(t.size)
    for on, f in [(0.05, 220.0), (0.4, 440.0), (0.8, 660.0)]:
        m = t >= on
        y[m] += 0.5 * np.exp(-5 * (t[m] - on)) * np.sin(2 * np.pi * f * (t[m] - on))
    return y.astype(np.float32)


def _assert_png(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Check ``path`` is a complete, non-blank PNG; return its pixels."""
    import matplotlib.image

    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 0 and img.shape[1] > 0
    if size is not None:
        assert img.shape[:2] == size  # (height, width)
    colours = np.unique(img.reshape(-1, img.shape[2])[::7], axis=0)
    assert len(colours) > 20, "image is (nearly) a single colour"
    return img


def _no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    assert leftovers == []


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Record facts about each figure just before it is saved (it is cleared after)."""
    seen: list[dict] = []
    real_save = figures._save

    def spy(fig, path):
        info = {"size": tuple(fig.get_size_inches() * figures.DPI), "axes": []}
        for ax in fig.axes:
            info["axes"].append(
                {
                    "title": ax.get_title(),
                    "xlabel": ax.get_xlabel(),
                    "ylabel": ax.get_ylabel(),
                    "yscale": ax.get_yscale(),
                    "xlim": ax.get_xlim(),
                    "lines": [
                        (ln.get_label(), ln.get_color(), ln.get_linestyle(), ln.get_xdata())
                        for ln in ax.get_lines()
                    ],
                    "legend": [t.get_text() for t in ax.get_legend().get_texts()]
                    if ax.get_legend()
                    else [],
                }
            )
        seen.append(info)
        return real_save(fig, path)

    monkeypatch.setattr(figures, "_save", spy)
    return seen


def test_audio_figures_writes_five_labelled_pngs(tmp_path: Path, capture: list[dict]) -> None:
    out_dir = tmp_path / "nested" / "figs"
    y = _notes(1.0)
    paths = figures.audio_figures(y, sr=SR, out_dir=out_dir, stem="piece", title="Piece")
    names = [p.name for p in paths]
    assert names == [
        "piece_waveform.png",
        "piece_envelope.png",
        "piece_spectrogram.png",
        "piece_spectrogram_log.png",
        "piece_views.png",
    ]
    assert all(p.parent == out_dir for p in paths)
    for p in paths[:4]:
        _assert_png(p, size=(300, 1000))
    _assert_png(paths[4], size=(1200, 1000))
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)
    _no_temp_files(out_dir)

    # the combined figure is the four panels' pixels, stacked (each panel is drawn once)
    import matplotlib.image

    panels = [matplotlib.image.imread(p) for p in paths[:4]]
    np.testing.assert_array_equal(matplotlib.image.imread(paths[4]), np.concatenate(panels))
    assert len(capture) == 4
    views_fig = {"axes": [a for c in capture for a in c["axes"]]}
    main = [a for a in views_fig["axes"] if a["xlabel"]]
    assert [a["xlabel"] for a in main] == ["Time (s)"] * 4
    assert [a["ylabel"] for a in main] == ["Amplitude", "RMS amplitude", "Hz", "Hz"]
    assert [a["yscale"] for a in main] == ["linear", "linear", "linear", "log"]
    # Time axes span the signal in seconds and line up across panels.
    for a in main:
        assert a["xlim"][0] == pytest.approx(0.0)
        assert a["xlim"][1] == pytest.approx(1.0, abs=1e-3)
    # Two colour bars labelled dB (one per spectrogram).
    assert sum(a["ylabel"] == "dB" for a in views_fig["axes"]) == 2
    assert capture[2]["axes"][0]["yscale"] == "linear"
    assert capture[3]["axes"][0]["yscale"] == "log"


def test_fast_views_match_the_librosa_views() -> None:
    """audio_figures' numpy spectrogram and envelope are views.spectrogram_db / envelope."""
    from noizenet.analysis import views

    y = _notes(1.0)
    S, pool = figures._spectrogram_db(y)
    assert pool == 1
    np.testing.assert_allclose(S, views.spectrogram_db(y, sr=SR), atol=1e-3)
    t, rms = figures._envelope(y, sr=SR)
    t_ref, rms_ref = views.envelope(y, sr=SR)
    np.testing.assert_allclose(t, t_ref)
    np.testing.assert_allclose(rms, rms_ref, atol=1e-6)


def test_long_spectrogram_is_max_pooled_without_the_full_size_array(monkeypatch) -> None:
    monkeypatch.setattr(figures, "MAX_SPEC_COLUMNS", 50)
    from noizenet.analysis import views

    y = np.tile(_notes(1.0), 2)  # 173 frames: pooled by 4 into 44 columns
    S, pool = figures._spectrogram_db(y)
    full = views.spectrogram_db(y, sr=SR)
    assert pool == 4 and S.shape == (full.shape[0], 44)
    padded = np.pad(full, ((0, 0), (0, 44 * 4 - full.shape[1])), constant_values=-80.0)
    np.testing.assert_allclose(S, padded.reshape(full.shape[0], 44, 4).max(axis=2), atol=1e-3)


def test_audio_figures_rejects_nan_and_bad_stem(tmp_path: Path) -> None:
    y = _notes(0.5)
    y[10] = np.nan
    with pytest.raises(ValueError, match="signal 'song' contains 1 non-finite sample"):
        figures.audio_figures(y, sr=SR, out_dir=tmp_path, stem="song")
    with pytest.raises(ValueError, match="stem"):
        figures.audio_figures(_notes(0.5), sr=SR, out_dir=tmp_path, stem="a/b")
    assert list(tmp_path.iterdir()) == []


def test_long_signal_uses_band_and_pooled_spectrogram(monkeypatch) -> None:
    monkeypatch.setattr(figures, "MAX_SPEC_COLUMNS", 300)
    y = np.tile(_notes(1.0), 5)  # 5 s: 431 frames, 110250 samples
    assert y.size > figures.MAX_LINE_POINTS
    fig = Figure(figsize=(10, 6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2)
    band = figures.plot_waveform(ax1, y, sr=SR)
    assert not ax1.get_lines()  # drawn as a min/max band, not 110k-point line
    (xy,) = (p.vertices for p in band.get_paths())
    assert xy[:, 1].max() == pytest.approx(y.max()) and xy[:, 1].min() == pytest.approx(y.min())
    mesh = figures.plot_spectrogram(ax2, y, sr=SR, scale="log", colorbar=False)
    assert mesh.get_array().shape[1] <= 300
    assert ax1.get_xlim()[1] == pytest.approx(5.0, abs=0.01)
    assert ax2.get_xlim() == pytest.approx((0.0, 5.0))
    fig.canvas.draw()


def test_plot_functions_on_given_axes() -> None:
    y = _notes(1.0)
    fig = Figure(figsize=(10, 9))
    FigureCanvasAgg(fig)
    ax_w, ax_e, ax_lin, ax_log = fig.subplots(4)

    line = figures.plot_waveform(ax_w, y, sr=SR, title="wave", label="orig")
    assert line.get_xdata()[-1] == pytest.approx((y.size - 1) / SR)
    np.testing.assert_array_equal(line.get_ydata(), y)
    assert ax_w.get_title() == "wave" and line.get_label() == "orig"

    env = figures.plot_envelope(ax_e, y, sr=SR)
    assert env.get_xdata()[-1] == pytest.approx(1.0, abs=0.011)
    assert ax_e.get_ylim()[0] == 0.0 and ax_e.get_xlabel() == "Time (s)"

    figures.plot_spectrogram(ax_lin, y, sr=SR, scale="linear")
    assert ax_lin.get_yscale() == "linear"
    assert ax_lin.get_ylim() == pytest.approx((0.0, SR / 2))
    mesh = figures.plot_spectrogram(ax_log, y, sr=SR, scale="log")
    assert ax_log.get_yscale() == "log"
    assert mesh.get_clim() == (-80.0, 0.0)
    for ax in (ax_lin, ax_log):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("Time (s)", "Hz")
    assert [a.get_ylabel() for a in fig.axes[4:]] == ["dB", "dB"]  # the colour bars
    fig.canvas.draw()

    with pytest.raises(ValueError, match="scale"):
        figures.plot_spectrogram(ax_log, y, sr=SR, scale="mel")
    with pytest.raises(ValueError, match="non-finite"):
        figures.plot_waveform(ax_w, np.array([0.0, np.inf]), sr=SR)


def test_comparison_figure_unequal_lengths_with_zoom(tmp_path: Path, capture: list[dict]) -> None:
    signals = {"original": _notes(1.5, 0), "LSTM": _notes(1.0, 1), "RNN": 0.5 * _notes(0.6, 2)}
    out = tmp_path / "cmp" / "reproduction.png"
    path = figures.comparison_figure(
        signals, sr=SR, out=out, title="Reproduction", zoom_s=(0.4, 0.45)
    )
    assert path == out
    img = _assert_png(out)
    assert img.shape[0] == 4 * 300  # zoom row + 3 rows
    info = capture[-1]
    zoom_ax = info["axes"][0]
    assert zoom_ax["legend"] == ["original", "LSTM", "RNN"]
    assert zoom_ax["xlim"] == pytest.approx((0.4, 0.45))
    for _label, _color, _ls, x in zoom_ax["lines"]:
        assert x[0] == pytest.approx(0.4, abs=1 / SR) and x[-1] <= 0.45 + 2 / SR
    # Each column keeps its own duration.
    wave_xlims = [a["xlim"][1] for a in info["axes"][1:] if a["ylabel"] == "Amplitude"]
    assert wave_xlims == pytest.approx([1.5], abs=1e-3)  # only first column has the y label
    assert sum(a["ylabel"] == "dB" for a in info["axes"]) == 1
    _no_temp_files(out.parent)


def test_comparison_figure_zoom_past_the_end_of_some_signals(tmp_path: Path) -> None:
    signals = {"a": _notes(1.0), "b": _notes(0.3)}
    # Window starts after "b" ends: only "a" is overlaid, no error.
    out = figures.comparison_figure(signals, sr=SR, out=tmp_path / "d.png", zoom_s=(0.5, 0.6))
    assert _assert_png(out).shape[:2] == (4 * 300, 2 * 500 + 60)


def test_comparison_figure_errors(tmp_path: Path) -> None:
    bad = _notes(0.5)
    bad[[1, 2, 3]] = np.nan
    out = tmp_path / "cmp.png"
    with pytest.raises(ValueError, match="signal 'LSTM' contains 3 non-finite samples"):
        figures.comparison_figure({"original": _notes(0.5), "LSTM": bad}, sr=SR, out=out)
    with pytest.raises(ValueError, match="at least one"):
        figures.comparison_figure({}, sr=SR, out=out)
    with pytest.raises(ValueError, match="zoom_s"):
        figures.comparison_figure({"a": _notes(0.5)}, sr=SR, out=out, zoom_s=(0.3, 0.2))
    with pytest.raises(ValueError, match="after the end"):
        figures.comparison_figure({"a": _notes(0.5)}, sr=SR, out=out, zoom_s=(1.0, 1.1))
    assert list(tmp_path.iterdir()) == []


def _records(n: int, *, val_every: int | None = 1, scale: float = 1.0) -> list[dict]:
    recs = []
    for e in range(n):
        rec = {"epoch": e, "train_loss": scale * (2.0 / (e + 1) + 0.1), "lr": 1e-3}
        if val_every is not None:
            rec["val_loss"] = scale * (2.2 / (e + 1) + 0.15) if e % val_every == 0 else None
        recs.append(rec)
    return recs


def test_loss_figure_with_validation(tmp_path: Path, capture: list[dict]) -> None:
    recs = _records(12, val_every=3)
    del recs[4]["val_loss"]  # missing and None both mean "no validation this epoch"
    out = figures.loss_figure(recs, out=tmp_path / "loss.png", title="LSTM")
    _assert_png(out, size=(500, 800))
    ax = capture[-1]["axes"][0]
    assert ax["yscale"] == "log"
    assert ax["legend"] == ["train", "validation"]
    assert (ax["xlabel"], ax["ylabel"]) == ("Epoch", "Loss")
    (_, _, ls_train, x_train), (_, _, ls_val, x_val) = ax["lines"]
    assert list(x_train) == list(range(12)) and list(x_val) == [0, 3, 6, 9]
    assert (ls_train, ls_val) == ("-", "--")
    _no_temp_files(tmp_path)


def test_loss_figure_train_only_unsorted_and_labels(tmp_path: Path, capture: list[dict]) -> None:
    recs = _records(5, val_every=None)[::-1]  # unsorted
    recs.append({"epoch": 2, "train_loss": -0.5})  # resumed run: last record wins; <= 0
    figures.loss_figure(
        recs, out=tmp_path / "l.png", labels={"loss": "NLL (nats)", "train_loss": "fit"}
    )
    _assert_png(tmp_path / "l.png")
    ax = capture[-1]["axes"][0]
    assert ax["yscale"] == "linear"  # a value <= 0 forbids log scale
    assert ax["legend"] == ["fit"]
    assert ax["ylabel"] == "NLL (nats)"
    assert list(ax["lines"][0][3]) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="unknown keys"):
        figures.loss_figure(recs, out=tmp_path / "m.png", labels={"los": "x"})


@pytest.mark.parametrize(
    ("recs", "match"),
    [
        ([], "no records"),
        ([{"epoch": 0}], "lacks 'train_loss'"),
        ([{"train_loss": 1.0}], "lacks 'epoch'"),
        ([{"epoch": 0, "train_loss": 1.0}, {"epoch": 1, "train_loss": float("nan")}], "epoch 1"),
        ([{"epoch": 0, "train_loss": 1.0, "val_loss": float("inf")}], "non-finite val_loss"),
        ([{"epoch": 0, "train_loss": "x"}], "non-numeric train_loss"),
    ],
)
def test_loss_figure_rejects_bad_records(tmp_path: Path, recs: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        figures.loss_figure(recs, out=tmp_path / "loss.png")
    assert list(tmp_path.iterdir()) == []


def test_loss_figure_multi_same_colour_per_run(tmp_path: Path, capture: list[dict]) -> None:
    runs = {"RNN": _records(8), "LSTM": _records(10, val_every=2, scale=0.5)}
    _assert_png(figures.loss_figure_multi(runs, out=tmp_path / "multi.png", title="RNN vs LSTM"))
    ax = capture[-1]["axes"][0]
    assert ax["legend"] == ["RNN train", "RNN validation", "LSTM train", "LSTM validation"]
    by_label = {label: (color, ls) for label, color, ls, _x in ax["lines"]}
    for run in runs:
        (c_train, ls_train), (c_val, ls_val) = (
            by_label[f"{run} train"],
            by_label[f"{run} validation"],
        )
        assert c_train == c_val
        assert (ls_train, ls_val) == ("-", "--")
    assert by_label["RNN train"][0] != by_label["LSTM train"][0]
    with pytest.raises(ValueError, match="run 'LSTM'"):
        figures.loss_figure_multi({"RNN": _records(3), "LSTM": []}, out=tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one"):
        figures.loss_figure_multi({}, out=tmp_path / "x.png")


def test_failed_save_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    old = tmp_path / "loss.png"
    figures.loss_figure(_records(3), out=old)
    before = old.read_bytes()

    def broken_savefig(self, fname, **kwargs):
        Path(fname).write_bytes(PNG_SIGNATURE + b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        figures.loss_figure(_records(5), out=old)
    with pytest.raises(RuntimeError, match="disk full"):
        figures.loss_figure(_records(5), out=tmp_path / "new.png")
    assert old.read_bytes() == before  # the previous figure is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_pyplot_never_imported(tmp_path: Path, monkeypatch) -> None:
    """Figures must not touch pyplot (global state, GUI windows), not even via librosa.display."""
    import matplotlib

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # any import now fails
    monkeypatch.setitem(sys.modules, "librosa.display", None)
    monkeypatch.delattr(matplotlib, "pyplot", raising=False)
    y = _notes(0.3)
    out = figures.comparison_figure({"a": y, "b": y[:3000]}, sr=SR, out=tmp_path / "c.png")
    figures.loss_figure_multi({"r": _records(3)}, out=tmp_path / "l.png")
    assert _assert_png(out).shape[:2] == (3 * 300, 2 * 500 + 60)  # no zoom row


def _reductions(y, sr=SR):
    S, pool = figures._spectrogram_db(y)
    t, rms = figures._envelope(y, sr=sr)
    starts, lo, hi = figures._minmax_band(y, 4_000)
    return S, pool, t, rms, starts, lo, hi


@pytest.mark.parametrize("n", [1, 700, 1023, 54_321, 200_000])
def test_a_sound_file_is_drawn_block_by_block_like_the_array_in_memory(tmp_path, monkeypatch, n):
    """Issue 15: a take's figures read its WAV a range at a time (memory independent of the
    take's length), and the numbers drawn are those of the whole array: no block boundary
    shows, and no read is much longer than a block."""
    import soundfile as sf

    rng = np.random.default_rng(n)
    y = np.tile(_notes(0.5), 1 + n // 11025)[:n] + 0.01 * rng.standard_normal(n)
    wav = tmp_path / "take.wav"
    sf.write(wav, y.astype(np.float32), SR, subtype="FLOAT")
    monkeypatch.setattr(figures, "READ_BLOCK", 4_096)
    monkeypatch.setattr(figures, "SPEC_CHUNK_FRAMES", 8)
    monkeypatch.setattr(figures, "MAX_SPEC_COLUMNS", 60)  # pooled columns, several chunks
    reads = []
    with figures._file_samples(wav) as (samples, sr):
        read = samples.read
        samples = figures._Samples(samples.size, lambda a, b: reads.append(b - a) or read(a, b))
        blocked = _reductions(samples, sr)
    monkeypatch.setattr(figures, "READ_BLOCK", 1 << 30)
    monkeypatch.setattr(figures, "SPEC_CHUNK_FRAMES", 1 << 30)
    whole = _reductions(y.astype(np.float32))
    assert sr == SR
    for a, b in zip(blocked, whole, strict=True):
        np.testing.assert_array_equal(a, b)
    longest_spec_read = (8 + 1) * figures.HOP_LENGTH + figures.N_FFT
    assert max(reads) <= max(4_096 + 4_096 // 2, longest_spec_read)


def test_wav_figures_are_the_audio_figures_of_the_file(tmp_path):
    import soundfile as sf

    y = _notes(1.5)
    wav = tmp_path / "take.wav"
    sf.write(wav, np.stack([y, y], axis=1), SR, subtype="PCM_16")  # stereo: averaged
    from_file = figures.wav_figures(wav, out_dir=tmp_path / "a", stem="take", title="t")
    y16 = sf.read(wav, dtype="float32")[0][:, 0]
    in_memory = figures.audio_figures(y16, sr=SR, out_dir=tmp_path / "b", stem="take", title="t")
    assert [p.name for p in from_file] == [p.name for p in in_memory]
    for a, b in zip(from_file, in_memory, strict=True):
        np.testing.assert_array_equal(_assert_png(a), _assert_png(b))


def test_wav_figures_refuse_an_empty_or_non_finite_file_naming_it(tmp_path):
    import soundfile as sf

    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError, match=r"empty\.wav: the audio file holds no samples"):
        figures.wav_figures(empty, out_dir=tmp_path, stem="empty")
    bad = tmp_path / "bad.wav"
    y = _notes(0.5)
    y[100] = np.nan
    sf.write(bad, y, SR, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"bad\.wav: the audio has NaN or infinite samples"):
        figures.wav_figures(bad, out_dir=tmp_path, stem="bad")


def test_a_file_name_in_a_title_is_text_not_mathematics(tmp_path, capture):
    """A take named ``gen_$x$.wav`` keeps its dollars in every panel title (matplotlib reads
    an unescaped ``$...$`` as mathematics), from the array and from the file."""
    import soundfile as sf

    wav = tmp_path / "gen_$x$.wav"
    sf.write(wav, _notes(0.5), SR)
    figures.audio_figures(_notes(0.5), sr=SR, out_dir=tmp_path, stem="a", title=wav.name)
    figures.wav_figures(wav, out_dir=tmp_path, stem="b", title=wav.name)
    titles = [a["title"] for c in capture for a in c["axes"] if a["title"]]
    assert len(titles) == 8
    assert all(t.startswith(r"gen_\$x\$.wav: ") for t in titles), titles
