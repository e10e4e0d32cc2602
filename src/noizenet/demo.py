"""``noizenet demo``: the paper's system end to end on the embedded corpus, in a few minutes.

Trains the paper's headline LSTM and an RNN with the same settings, reproduces a held-out song
with both, generates from every seed kind, and draws every figure. The only departures from the
paper's settings are the ones that make it fit a laptop's few minutes: fewer epochs, and
stateful truncated BPTT over parallel streams instead of one whole-song batch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from noizenet.config import Config

DEMO_EPOCHS = 6
DEMO_SECONDS = 10.0  # generated per take
SEEDS = ("song", "white", "perlin", "silence")
# The paper's remedy for collapse (5.7), in model units: when the last 10 ms of output span less
# than 0.02 training standard deviations, kick the fed-back value with N(0, 1) noise.
DEMO_INJECT = "stall:220:0.02:1.0"


def demo_config(
    *, seed: int = 0, epochs: int | None = None, cell: str = "lstm", overrides: dict | None = None
) -> Config:
    """The paper's headline settings on the embedded corpus, sized for the demo's budget."""
    return Config().with_overrides(
        {
            "seed": seed,
            "data.source": "embedded",
            "model.cell": cell,
            "train.epochs": epochs or DEMO_EPOCHS,
            **(overrides or {}),
        }
    )


def run_demo(
    out: str | Path = "runs/demo",
    *,
    epochs: int | None = None,
    seconds: float | None = None,
    force: bool = False,
    seed: int = 0,
    progress: bool = True,
    log: Any = print,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the paths of everything it wrote.

    ``overrides`` (dotted config names) shrink the demo, e.g. for tests.
    """
    from noizenet.analysis.figures import audio_figures, comparison_figure, loss_figure_multi
    from noizenet.analysis.metrics import collapse_time
    from noizenet.errors import NoizeNetError
    from noizenet.generate import generate, reproduce
    from noizenet.train import train

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise NoizeNetError(f"{out}: already holds a demo (use --force to overwrite it)")
    seconds = seconds or DEMO_SECONDS
    t0 = time.perf_counter()
    runs = {}
    for cell in ("lstm", "rnn"):
        cfg = demo_config(seed=seed, epochs=epochs, cell=cell, overrides=overrides)
        log(
            f"== training the paper's {cell.upper()} (hidden {cfg.model.hidden}, dropout "
            f"{cfg.model.dropout}, {cfg.train.optimizer} lr {cfg.train.lr}, "
            f"{cfg.train.epochs} epochs)"
        )
        runs[cell] = train(
            cfg,
            out / cell,
            force=True,
            progress=progress,
            log=log,
        )
    figures_dir = out / "figures"
    written: dict[str, Any] = {
        "runs": {k: r.path for k, r in runs.items()},
        "figures": [],
        "audio": [],
    }
    written["figures"].append(
        loss_figure_multi(
            {k.upper(): r.metrics() for k, r in runs.items()},
            out=figures_dir / "loss_rnn_vs_lstm.png",
            title="Training (solid) and validation (dashed) loss",
        )
    )

    held_out = runs["lstm"].info["corpus"]["val"][0]
    song = Path(held_out["path"])
    log(f"== reproducing held-out song {held_out['id']} ({held_out['genre']})")
    reps = {}
    for cell, run in runs.items():
        rep = reproduce(run, song, seconds=seconds)
        reps[cell] = rep
        written["audio"].append(rep.path)
        log(f"{cell.upper()} reproduction: one-step SNR {rep.snr_db:.2f} dB -> {rep.path}")
    written["figures"].append(
        comparison_figure(
            {
                "original": reps["lstm"].original,
                "LSTM": reps["lstm"].predicted,
                "RNN": reps["rnn"].predicted,
            },
            sr=runs["lstm"].sr,
            out=figures_dir / "reproduction.png",
            title=f"Reproduction of {held_out['id']}",
            zoom_s=(seconds / 2, seconds / 2 + 0.02),  # 20 ms mid-song: the sample view
        )
    )

    collapse: dict[str, dict[str, float | None]] = {}
    first_ms: dict[str, Any] = {}
    for cell, run in runs.items():
        log(f"== generating {seconds:g} s from each seed kind with the {cell.upper()}")
        collapse[cell] = {}
        for kind in SEEDS:
            seed_text = f"song:{song}@{seconds:g}" if kind == "song" else kind
            # as the paper ran it: no noise in the feedback loop; measured, not written
            plain = generate(run, seed=seed_text, seconds=seconds, random_seed=seed, write=False)[0]
            t = collapse_time(plain.audio, sr=run.sr, reference_rms=run.info["train_rms"])
            collapse[cell][kind] = t
            take = generate(
                run, seed=seed_text, seconds=seconds, random_seed=seed, inject=DEMO_INJECT
            )[0]
            if kind == "song":
                first_ms[f"{cell.upper()}, no injection"] = plain.audio
                first_ms[f"{cell.upper()}, {DEMO_INJECT}"] = take.audio
            written["audio"].append(take.path)
            written["figures"] += audio_figures(
                take.audio,
                sr=run.sr,
                out_dir=run.path / "figures",
                stem=take.path.stem,
                title=f"{cell.upper()}: {take.path.name}",
            )
            when = "never" if t is None else f"after {t * 1000:.0f} ms"
            log(
                f"{cell.upper()} from {kind}: without injection it collapses {when}; "
                f"with {DEMO_INJECT}: {take.path}"
            )
    written["figures"].append(
        comparison_figure(
            first_ms,
            sr=runs["lstm"].sr,
            out=figures_dir / "collapse.png",
            title="Free-running output after a song seed: collapse, and noise injection",
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
            "reproduction_snr_db": {k: r.snr_db for k, r in reps.items()},
        },
    )
    from noizenet.report import write_run_report

    # each run's own page (train wrote it before the takes existed), then all side by side
    for run in runs.values():
        write_run_report(run.path, log=log, progress=progress)
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
