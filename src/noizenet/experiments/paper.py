"""The paper's experiments besides the convergence table (see :mod:`.convergence`).

Each function takes a :class:`~noizenet.experiments.base.Context`, trains and measures its runs,
draws its figures and returns a :class:`~noizenet.experiments.base.Result`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from noizenet.analysis.metrics import loop_onset
from noizenet.experiments.base import METRIC_COLUMNS, Column, Context, Result, Table

GEN_COLUMNS = [
    Column("collapse_s", "collapse", "collapse"),
    Column("frechet", "log-mel Frechet", "frechet"),
    Column("flatness", "flatness", "ratio"),
    Column("dc_offset", "DC offset", "dc"),
    Column("clipped_fraction", "clipped", "pct"),
]
PAPER_INJECT = "periodic:200"  # the authors' code: every 200 steps multiply by a N(-1, 1) draw
STALL_INJECT = "stall:220:0.02:1.0"  # the demo's: kick a 10 ms stall with N(0, 1)


def _baseline_rows(ctx: Context, run: Any, baselines: dict[str, Any]) -> list[dict[str, Any]]:
    """Persistence, LPC-32 and the real held-out audio, as rows beside the models."""
    return [
        {"label": "persistence (baseline)", **baselines["persistence"]},
        {"label": "LPC-32 (baseline; generation: noise-driven synthesis)", **baselines["LPC-32"]},
        ctx.real_stats(run),
    ]


def _write_audio(ctx: Context, name: str, y: np.ndarray, sr: int) -> Path:
    from noizenet.audio import write

    return write(ctx.dir / "audio" / f"{name}.wav", y, sr=sr)


def _views(
    ctx: Context, signals: dict[str, np.ndarray], sr: int, name: str, title: str
) -> Path | None:
    """Waveform, envelope and spectrogram of each take side by side (None: no takes)."""
    from noizenet.analysis.figures import comparison_figure

    if not signals:
        return None
    return comparison_figure(signals, sr=sr, out=ctx.dir / "figures" / f"{name}.png", title=title)


# -- batching (figure 17) -------------------------------------------------------------------------
BATCHING_MODES = {
    "short independent windows (figure 17)": {"train.stateless": True, "train.chunk": 2205},
    "stateful truncated BPTT (NoizeNet)": {},
    "whole song, one batch (the paper)": {"train.batch": 1, "train.chunk": "whole-song"},
}


def batching(ctx: Context) -> Result:
    from noizenet.analysis.figures import loss_figure_multi

    table = Table([Column("label", "training"), *METRIC_COLUMNS])
    runs, takes, base = {}, {}, None
    for label, overrides in BATCHING_MODES.items():
        run = ctx.train(label, {**overrides, "train.epochs": ctx.scale.long_epochs})
        row, base, audio = ctx.measure(run)
        runs[label] = run
        table.rows.append({"label": label, **row})
        take = audio["generated"]["NoizeNet"][0]
        if take is not None:  # None: the model's output went non-finite
            takes[label] = take
            _write_audio(ctx, _short(label), take, run.sr)
    table.rows += _baseline_rows(ctx, run, base)
    sr = run.sr
    figures = [
        loss_figure_multi(
            {_short(k): r.metrics() for k, r in runs.items()},
            out=ctx.dir / "figures" / "loss.png",
            title="training (solid) and validation (dashed) loss per batching mode",
        ),
        _views(
            ctx,
            {_short(k): v for k, v in takes.items()},
            sr,
            "generated",
            "free-running output after the seed, per batching mode (figure 17's views)",
        ),
    ]
    return Result(
        [("", table)],
        notes=[
            "short windows: 2205-sample (0.1 s) chunks in shuffled order, state reset before "
            "each, as the paper's batched training; whole song: one stream, one chunk per song",
            "the paper found the windowed model generates only noise: compare flatness "
            "(1 is white noise) and the figure",
        ],
        figures=figures,
        settings=ctx.settings(run),
    )


def _short(label: str) -> str:
    return label.split(" (")[0].replace(" ", "-").replace(",", "")


# -- overfit and dropout (figures 18-20) ----------------------------------------------------------
def _one_song(ctx: Context, dropout: float) -> tuple[Any, dict[str, Any], Any, np.ndarray]:
    run = ctx.train(
        f"one-song-dropout-{dropout:g}",
        {"data.songs": 1, "model.dropout": dropout, "train.epochs": ctx.scale.long_epochs},
    )
    row, base, audio = ctx.measure(run)
    gen = audio["generated"]["NoizeNet"][0]
    if gen is not None:
        row["spread_1000"] = float(np.std(gen[:1000]) / run.info.train_rms)
    return (
        run,
        {"label": f"dropout {dropout:g}", "epochs": run.config.train.epochs, **row},
        base,
        gen,
    )


def _continuation(ctx: Context, n: int) -> np.ndarray:
    """The held-out song's real samples right after the seed: what a prediction should be."""
    from noizenet.audio import load

    held = ctx.held_out()
    sr = ctx.config().data.sample_rate
    return load(held.paths[0], sr=sr, offset=held.offset + ctx.scale.seed_seconds, duration=n / sr)


ONE_SONG_COLUMNS = [
    Column("label", "model"),
    Column("epochs", "epochs", "int"),
    *METRIC_COLUMNS,
    Column("spread_1000", "std of first 1000 predictions / training RMS", "ratio"),
]


def _one_song_result(ctx: Context, dropouts: tuple[float, ...], fig: str) -> Result:
    from noizenet.analysis.figures import loss_figure

    table = Table(list(ONE_SONG_COLUMNS))
    signals = {"the song's real continuation": _continuation(ctx, 1000)}
    figures = []
    for d in dropouts:
        run, row, base, gen = _one_song(ctx, d)
        table.rows.append(row)
        if gen is not None:
            signals[f"prediction, dropout {d:g}"] = gen
        figures.append(
            loss_figure(
                run.metrics(),
                out=ctx.dir / "figures" / f"loss_dropout_{d:g}.png",
                title=f"LSTM on one song, dropout {d:g}: loss per epoch",
            )
        )
    from noizenet.experiments.plots import first_samples_figure

    figures.append(
        first_samples_figure(
            signals,
            n=1000,
            out=ctx.dir / "figures" / "prediction_1000.png",
            title=f"1000 free-running samples after a {ctx.scale.seed_seconds:g} s song seed "
            f"({fig})",
        )
    )
    table.rows += _baseline_rows(ctx, run, base)
    return Result([("", table)], figures=figures, settings=ctx.settings(run))


def overfit(ctx: Context) -> Result:
    result = _one_song_result(ctx, (0.0,), "figure 19")
    result.notes = [
        "one training song, no dropout; the paper saw the loss settle and the prediction "
        "become a constant (its figures 18 and 19): see collapse and the spread of the first "
        "1000 predictions (0 is a constant)"
    ]
    return result


def dropout(ctx: Context) -> Result:
    result = _one_song_result(ctx, (0.5, 0.0), "figure 20 beside 19")
    result.notes = [
        "the same one-song LSTM with dropout 0.5 (the paper's figure 20), beside dropout 0 "
        "(the overfit experiment, reused)"
    ]
    return result


# -- multisong (figures 21, 22) -------------------------------------------------------------------
def multisong(ctx: Context) -> Result:
    from noizenet.analysis.figures import loss_figure

    songs = 10
    run = ctx.train(f"{songs}-songs", {"data.songs": songs, "train.epochs": ctx.scale.long_epochs})
    epochs = Table(
        [
            Column("epoch", "epoch", "int"),
            Column("train_loss", "train loss", "loss"),
            Column("val_loss", "validation loss", "loss"),
        ],
        [{k: r.get(k) for k in ("epoch", "train_loss", "val_loss")} for r in run.metrics()],
    )
    row, base, _ = ctx.measure(run)
    final = Table([Column("label", "model"), *METRIC_COLUMNS])
    final.rows = [{"label": f"LSTM, {songs} songs", **row}, *_baseline_rows(ctx, run, base)]
    fig = loss_figure(
        run.metrics(),
        out=ctx.dir / "figures" / "loss.png",
        title=f"LSTM, {songs} songs: training and validation loss (figures 21, 22)",
    )
    falling = [r["val_loss"] for r in run.metrics() if r.get("val_loss") is not None]
    trend = "fell" if len(falling) > 1 and falling[-1] < falling[0] else "did not fall"
    return Result(
        [("Loss per epoch:", epochs), ("After training:", final)],
        notes=[
            f"validation loss on the held-out song {trend} from the first epoch to the last",
            "the paper trained the songs one after another and saw the loss jump at each new "
            "song; NoizeNet's streams walk all songs in every epoch, so one curve per epoch",
        ],
        figures=[fig],
        settings=ctx.settings(run),
    )


# -- reproduction (figures 23-25, table 5.5.3) ----------------------------------------------------
def reproduction(ctx: Context) -> Result:
    from noizenet.analysis.figures import comparison_figure, loss_figure_multi

    table = Table(
        [
            Column("label", "model"),
            Column("parameters", "parameters", "int"),
            Column("val_loss", "val loss", "loss"),
            Column("snr_db", "one-step SNR (dB)", "db"),
            Column("vs_persistence", "vs persistence (dB)", "db"),
            Column("vs_lpc", "vs LPC-32 (dB)", "db"),
        ]
    )
    runs, predicted = {}, {}
    for cell in ("lstm", "rnn"):
        run = ctx.train(cell, {"model.cell": cell})
        row, base, audio = ctx.measure(run)
        runs[cell.upper()] = run
        predicted[cell.upper()] = audio["predicted"]["NoizeNet"][0]
        table.rows.append(
            {
                "label": cell.upper(),
                "parameters": run.info.parameters,
                "val_loss": row["val_loss"],
                "snr_db": row["snr_db"],
                "vs_persistence": row["snr_db"] - base["persistence"]["snr_db"],
                "vs_lpc": row["snr_db"] - base["LPC-32"]["snr_db"],
            }
        )
    predicted["LPC-32"] = audio["predicted"]["LPC-32"][0]
    predicted["persistence"] = audio["predicted"]["persistence"][0]
    table.rows += [
        {"label": "persistence (next = this sample)", "snr_db": base["persistence"]["snr_db"]},
        {"label": "LPC-32 (fitted on the training songs)", "snr_db": base["LPC-32"]["snr_db"]},
    ]
    held = ctx.held_out()
    y = held.audio[0]
    sr = run.sr
    for name, p in predicted.items():
        _write_audio(ctx, f"reproduction_{name.lower()}", p, sr)
    mid = y.size / sr / 2
    figures = [
        comparison_figure(
            {"original": y, **{k: predicted[k] for k in ("LSTM", "RNN", "LPC-32")}},
            sr=sr,
            out=ctx.dir / "figures" / "reproduction.png",
            title=f"one-step reproduction of held-out {held.ids[0]} (figures 23-25)",
            zoom_s=(mid, mid + 0.02),
        ),
        loss_figure_multi(
            {k: r.metrics() for k, r in runs.items()},
            out=ctx.dir / "figures" / "loss.png",
            title="LSTM and RNN: training (solid) and validation (dashed) loss",
        ),
    ]
    best = max(table.rows[:2], key=lambda r: r["snr_db"])
    verdict = "above" if best["vs_lpc"] > 0 else "below"
    return Result(
        [("", table)],
        notes=[
            "each sample predicted from the song's true past (teacher forcing), SNR over the "
            "same samples for every row; 'vs' columns are the model's SNR minus the baseline's",
            f"the better model ({best['label']}) is {abs(best['vs_lpc']):.1f} dB {verdict} "
            "LPC-32, the baseline a signal-processing engineer would use",
            "the paper (5.5.3) judged the LSTM's reproduction better than the RNN's by ear",
        ],
        figures=figures,
        settings=ctx.settings(runs["LSTM"]),
    )


# -- noise injection (5.7) ------------------------------------------------------------------------
def noise_injection(ctx: Context) -> Result:
    table = Table([Column("label", "generation"), *GEN_COLUMNS])
    run = ctx.train("lstm", {"model.cell": "lstm"})
    takes = {}
    variants = {
        "no injection (the paper's collapse)": None,
        f"{PAPER_INJECT} (the authors' code)": PAPER_INJECT,
        f"{STALL_INJECT} (on a stall, NoizeNet's demo)": STALL_INJECT,
    }
    for label, inject in variants.items():
        row, base, audio = ctx.measure(run, inject=inject)
        table.rows.append({"label": label, **row})
        if audio["generated"]["NoizeNet"][0] is not None:
            takes[label.split(" (")[0]] = audio["generated"]["NoizeNet"][0]
    takes["LPC-32 synthesis"] = audio["generated"]["LPC-32"][0]
    table.rows += _baseline_rows(ctx, run, base)[1:]
    for k, y in takes.items():
        _write_audio(ctx, "gen_" + k.replace(":", "-").replace(" ", "_"), y, run.sr)
    return Result(
        [("", table)],
        notes=[
            "periodic:K multiplies the fed-back value by a N(-1, 1) draw every K steps; "
            "stall:M:EPS:SIGMA adds N(0, SIGMA) when the last M outputs span less than EPS "
            "(model units). The injected value is written and fed back",
            "collapse catches a constant or a loop; an output that only jumps at each "
            "injection counts as playing, so read it with flatness and the Frechet distance",
        ],
        figures=[_views(ctx, takes, run.sr, "generated", "free-running output per injection")],
        settings=ctx.settings(run),
    )


# -- FFT blocks (5.7.1) ---------------------------------------------------------------------------
def fft(ctx: Context) -> Result:
    table = Table(
        [
            Column("label", "representation"),
            Column("val_loss", "val loss (codec units)", "loss"),
            Column("snr_db", "one-step SNR (dB)", "db"),
            *GEN_COLUMNS[:3],
            Column("block_loop_s", "repeats every block from", "collapse"),
        ]
    )
    variants = {
        "raw z-score (the paper's main)": {},
        "FFT blocks, real and imaginary (the authors')": {"codec.name": "fft"},
        "FFT blocks, log-magnitude and phase": {
            "codec.name": "fft",
            "codec.fft_parts": "logmag-phase",
        },
    }
    takes = {}
    for label, overrides in variants.items():
        run = ctx.train(label, overrides)
        row, base, audio = ctx.measure(run)
        take = audio["generated"]["NoizeNet"][0]
        if run.config.codec.name == "fft" and take is not None:
            # an FFT model that settles on one block vector repeats every hop (block / 2
            # samples, 11.6 ms for 512): a stuck loop just over the collapse rule's 10 ms
            row["block_loop_s"] = loop_onset(
                take,
                sr=run.sr,
                max_period_s=(run.config.codec.block // 2) / run.sr,
                atol=1e-6 * run.info.train_rms,
            )
        table.rows.append({"label": label, **row})
        if take is not None:
            takes[label.split(" (")[0]] = take
            _write_audio(ctx, "gen_" + _short(label), take, run.sr)
    table.rows += _baseline_rows(ctx, run, base)
    return Result(
        [("", table)],
        notes=[
            f"FFT: blocks of {run.config.codec.block} samples overlapping by half (Hann), one "
            "spectrum vector per step, z-scored per bin; the model predicts the next block and "
            "the inverse is a windowed overlap-add",
            "validation losses are in each codec's own units and not comparable across rows",
            "'repeats every block from': when the output starts repeating exactly with a period "
            "of at most one hop (a constant block vector); the collapse column keeps the "
            "general rule (periods under 10 ms)",
        ],
        figures=[_views(ctx, takes, run.sr, "generated", "free-running output per representation")],
        settings=ctx.settings(run),
    )


# -- categorical heads (beyond the paper) ---------------------------------------------------------
def categorical(ctx: Context) -> Result:
    table = Table(
        [
            Column("label", "model"),
            Column("bits", "bits/sample (held-out)", "bits"),
            Column("snr_db", "one-step SNR (dB)", "db"),
            *GEN_COLUMNS[:3],
        ]
    )
    variants = {
        "LSTM, z-score, MSE (the paper)": {},
        "LSTM, mu-law 256, cross-entropy": {"codec.name": "mulaw"},
        "LSTM, linear 256, cross-entropy": {"codec.name": "linear-q"},
    }
    takes = {}
    for label, overrides in variants.items():
        run = ctx.train(label, overrides)
        row, base, audio = ctx.measure(run, temperature=1.0)
        table.rows.append({"label": label, **row})
        if audio["generated"]["NoizeNet"][0] is not None:
            takes[label.split(",")[1].strip()] = audio["generated"]["NoizeNet"][0]
    table.rows += _baseline_rows(ctx, run, base)
    for k, y in takes.items():
        _write_audio(ctx, "gen_" + k.replace(" ", "_"), y, run.sr)
    return Result(
        [("", table)],
        notes=[
            "categorical heads sample each next sample from a softmax over 256 levels "
            "(temperature 1); bits/sample is their cross-entropy on the held-out track "
            "(8 bits is a uniform guess); the MSE model has no distribution to score",
            "categorical one-step SNR uses the expected value of the predicted distribution",
        ],
        figures=[_views(ctx, takes, run.sr, "generated", "free-running output per head")],
        settings=ctx.settings(run),
    )
