"""``noizenet demo``: the paper's system end to end on the embedded corpus, in a few minutes.

Trains the paper's headline LSTM and an RNN with the same settings, and beside them an LSTM with
a mu-law categorical head (the field's answer to the paper's collapse) and a 2-tier SampleRNN
(preset ``samplernn``: frame-level tiers over a sample-level MLP); reproduces a held-out
song with each, generates from every seed kind, measures collapse, and draws every figure. The
only departures from the paper's settings are the ones that make it fit a laptop's few minutes:
fewer epochs, and stateful truncated BPTT over parallel streams instead of one whole-song batch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from noizenet.config import Config

DEMO_EPOCHS = 5
DEMO_SECONDS = 30.0  # generated per take
SEEDS = ("song", "white", "perlin", "silence")
# The paper's remedy for collapse (5.7), in model units: when the last 10 ms of output span less
# than 0.02 training standard deviations, kick the fed-back value with N(0, 1) noise.
DEMO_INJECT = "stall:220:0.02:1.0"
# name -> (label, config overrides): the paper's two models, and the field's answer to collapse
MODELS = {
    "lstm": ("LSTM, MSE (the paper)", {"model.cell": "lstm"}),
    "rnn": ("RNN, MSE (the paper)", {"model.cell": "rnn"}),
    "mulaw-lstm": (
        "LSTM, mu-law 256 (cross-entropy)",
        {"model.cell": "lstm", "codec.name": "mulaw"},
    ),
    # the field's answer to the paper's flat stack: frame-level tiers over a sample-level MLP
    "samplernn": ("2-tier SampleRNN (preset samplernn)", {"preset": "samplernn"}),
}
# epochs of a model whose step costs more than the paper's, so the demo keeps to its minutes
# (unless --epochs says otherwise): the 2-tier preset trains ~5x slower per sample than LSTM 50
MODEL_EPOCHS = {"samplernn": 2}


def demo_config(
    *, seed: int = 0, epochs: int | None = None, overrides: dict | None = None
) -> Config:
    """The paper's headline settings on the embedded corpus, sized for the demo's budget."""
    return Config().with_overrides(
        {
            "seed": seed,
            "data.source": "embedded",
            "train.epochs": DEMO_EPOCHS if epochs is None else epochs,
            **(overrides or {}),
        }
    )


def _model_config(
    name: str, seed: int, epochs: int | None, overrides: dict[str, Any] | None
) -> Config:
    """One demo model's settings: its own overrides, then the caller's."""
    own = dict(MODELS[name][1])
    if epochs is None and name in MODEL_EPOCHS:
        own["train.epochs"] = MODEL_EPOCHS[name]
    return demo_config(seed=seed, epochs=epochs, overrides={**own, **(overrides or {})})


def run_demo(
    out: str | Path = "runs/demo",
    *,
    epochs: int | None = None,
    seconds: float | None = None,
    force: bool = False,
    random_seed: int = 0,
    progress: bool = True,
    log: Any = print,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the paths of everything it wrote.

    ``random_seed`` fixes training and generation; ``overrides`` (dotted config names) shrink
    the demo, e.g. for tests.
    """
    from noizenet.analysis.figures import audio_figures, comparison_figure, loss_figure_multi
    from noizenet.analysis.metrics import collapse_time
    from noizenet.errors import NoizeNetError
    from noizenet.generate import generate, reproduce
    from noizenet.io import ensure_writable_dir
    from noizenet.train import train

    out = Path(out)
    seconds = DEMO_SECONDS if seconds is None else seconds
    if not seconds > 0 or seconds == float("inf"):
        raise NoizeNetError(f"--seconds must be a finite number > 0, got {seconds:g}")
    for name in MODELS:  # all checked before training
        _model_config(name, random_seed, epochs, overrides)
    if out.exists() and not out.is_dir():
        raise NoizeNetError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise NoizeNetError(f"{out}: already holds a demo (use --force to overwrite it)")
    ensure_writable_dir(out)
    t0 = time.perf_counter()
    runs = {}
    for name, (label, _) in MODELS.items():
        cfg = _model_config(name, random_seed, epochs, overrides)
        log(
            f"== training {label}: hidden {cfg.model.hidden}, dropout {cfg.model.dropout}, "
            f"{cfg.train.optimizer} lr {cfg.train.lr}, {cfg.train.epochs} epochs"
        )
        runs[name] = train(cfg, out / name, force=True, progress=progress, log=log)
    figures_dir = out / "figures"
    written: dict[str, Any] = {
        "runs": {k: r.path for k, r in runs.items()},
        "figures": [],
        "audio": [],
    }
    written["figures"].append(
        loss_figure_multi(
            {k.upper(): runs[k].metrics() for k in ("lstm", "rnn")},
            out=figures_dir / "loss_rnn_vs_lstm.png",
            title="MSE models: training (solid) and validation (dashed) loss",
        )
    )

    held_out = runs["lstm"].info.tracks("val")[0]
    song = Path(held_out["path"])
    log(f"== reproducing held-out song {held_out['id']} ({held_out['genre']})")
    reps = {}
    for name, run in runs.items():
        rep = reproduce(run, song, seconds=seconds)
        reps[name] = rep
        written["audio"].append(rep.path)
        log(f"{name}: reproduction one-step SNR {rep.snr_db:.2f} dB -> {rep.path}")
    mid = min(seconds, reps["lstm"].original.size / runs["lstm"].sr) / 2
    written["figures"].append(
        comparison_figure(
            {"original": reps["lstm"].original}
            | {MODELS[k][0]: r.predicted for k, r in reps.items()},
            sr=runs["lstm"].sr,
            out=figures_dir / "reproduction.png",
            title=f"Reproduction of {held_out['id']}",
            zoom_s=(mid, mid + 0.02),  # 20 ms mid-song: the sample view
        )
    )

    collapse: dict[str, dict[str, float | None]] = {}
    first_ms: dict[str, Any] = {}
    for name, run in runs.items():
        categorical = run.model().spec.categorical
        log(f"== generating {seconds:g} s from each seed kind with {MODELS[name][0]}")
        collapse[name] = {}
        for kind in SEEDS:
            seed_text = f"song:{song}@{min(seconds, 10):g}" if kind == "song" else kind
            gen = {"seed": seed_text, "seconds": seconds, "random_seed": random_seed}
            if categorical:  # it samples: no noise injection needed
                take = plain = generate(run, **gen)[0]
            else:  # as the paper ran it (measured, not written), then with its remedy
                plain = generate(run, **gen, write=False)[0]
                take = generate(run, **gen, inject=DEMO_INJECT)[0]
            t = collapse_time(plain.audio, sr=run.sr, reference_rms=run.info.train_rms)
            collapse[name][kind] = t
            if kind == "song":
                first_ms[f"{name}, plain"] = plain.audio
                if not categorical:
                    first_ms[f"{name}, {DEMO_INJECT}"] = take.audio
            written["audio"].append(take.path)
            written["figures"] += audio_figures(
                take.audio,
                sr=run.sr,
                out_dir=run.path / "figures",
                stem=take.path.stem,
                title=f"{MODELS[name][0]}: {take.path.name}",
            )
            how = "sampled at temperature 1" if categorical else "without injection"
            what = "does not collapse" if t is None else f"collapses after {t * 1000:.0f} ms"
            log(f"{name} from {kind}: {how} it {what} -> {take.path}")
    written["figures"].append(
        comparison_figure(
            first_ms,
            sr=runs["lstm"].sr,
            out=figures_dir / "collapse.png",
            title="Free-running output after a song seed: MSE collapse, noise injection, mu-law, "
            "SampleRNN",
            zoom_s=(0.0, 0.03),
        )
    )
    written["collapse_s"] = collapse
    from noizenet.io import atomic_write_json

    atomic_write_json(
        out / "demo.json",
        {
            "collapse_s": collapse,
            "inject": DEMO_INJECT,
            "seconds": seconds,
            "reproduction_snr_db": {k: r.snr_db for k, r in reps.items()},
            "final_metrics": {k: r.info.metrics for k, r in runs.items()},
        },
    )
    from noizenet.report import finish_run, write_run_report

    # each run's loss curve and own page, now that its takes exist, then all side by side
    for run in runs.values():
        finish_run(run, log=log, progress=progress)
    written["report"] = write_run_report(
        [r.path for r in runs.values()],
        out / "report.html",
        title="NoizeNet demo: " + ", ".join(k.upper() for k in runs),
        extra_figures=[
            (
                figures_dir / "reproduction.png",
                "A held-out song and its reproduction by every model, with a 20 ms zoom",
            ),
            (
                figures_dir / "collapse.png",
                "Free-running output after a song seed, model by model: how soon it "
                "collapses, and what noise injection changes",
            ),
        ],
        log=log,
        progress=progress,
    )
    log(f"== demo finished in {time.perf_counter() - t0:.0f} s")
    log(f"runs: {', '.join(str(p) for p in written['runs'].values())}")
    log(f"figures: {figures_dir} and RUN/figures ({len(written['figures'])} files)")
    log(f"audio: RUN/audio ({len(written['audio'])} WAV files)")
    return written
