"""``noizenet evaluate``: a run's metrics on held-out tracks, beside the baselines.

For every held-out track the run's model (1) predicts each next sample from the song's past
(the paper's reproduction) and (2) is primed on the song's first second and runs free. The
numbers (see :mod:`noizenet.analysis.metrics` for exactly what each measures) stand beside:

* persistence: next sample = this sample (one-step prediction only);
* LPC-32: linear prediction of order 32 fitted on the run's training tracks; for generation, its
  all-pole filter driven by white noise of the training residual's size;
* for categorical runs, bits/sample of persistence and LPC-32 with a Laplace residual whose
  scale follows the last 64 residuals (or stays fixed), and of the training level histogram
  (no context), each scored on the run's own levels (:mod:`noizenet.analysis.bits`);
* real audio: the held-out tracks themselves (their flatness, DC, clipping) and the Frechet
  distance of the training tracks to them, the distance one real recording has to another.

Results go to ``RUN/evaluation.json`` and are printed as a table.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.config import GenerationConfig, generation_defaults
from noizenet.errors import AudioError, NoizeNetError
from noizenet.io import atomic_write_json
from noizenet.limits import check_evaluate
from noizenet.run import Run

COLUMNS = ("NoizeNet", "persistence", "LPC-32", "real audio")
NON_FINITE = "non-finite"  # a take's collapse when the model's output diverged


@dataclass
class HeldOut:
    """Decoded held-out tracks, as the run's model sees them."""

    ids: list[str]
    paths: list[Path]
    audio: list[np.ndarray]  # (samples,) float32 each, at the run's sample rate
    offset: float  # seconds skipped at the start of each track
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


@dataclass
class Baseline:
    """The LPC baseline fitted for a run, and the real audio it was fitted on."""

    a: np.ndarray  # (order + 1,) LPC coefficients, a[0] = 1
    residual_std: float
    fitted_on: str  # what the coefficients were fitted on, for the record
    train_audio: list[np.ndarray]  # the run's training tracks ([] if they could not be found)


def generation_settings(
    generation: GenerationConfig | None, overrides: dict[str, Any]
) -> GenerationConfig:
    """The generation settings of an evaluation; ``gen_seconds`` names the take's ``seconds``
    (beside ``evaluate``'s own ``seconds`` of each track)."""
    overrides = dict(overrides)
    if "gen_seconds" in overrides:
        overrides["seconds"] = overrides.pop("gen_seconds")
    return (generation or generation_defaults("evaluate")).with_overrides(overrides)


def _open(run: Any) -> Any:

    return run if isinstance(run, Run) else Run.open(run)


def held_out_tracks(
    run: Any,
    *,
    data: str | None = None,
    songs: int = 3,
    seconds: float | None = None,
) -> HeldOut:
    """The tracks to evaluate ``run`` on, decoded like its training tracks.

    ``data`` None: the run's own validation tracks (``run.json``). Otherwise a folder or
    ``embedded``: its tracks in listing order, minus every track the run trained on, up to
    ``songs``. Each track is decoded at the run's sample rate from its ``data.offset`` for
    ``seconds`` (default: the run's ``data.seconds``). Broken tracks are skipped with a reason.
    """
    from noizenet.corpus import Track, list_tracks, load_track

    run = _open(run)
    cfg = run.config.data
    seconds = seconds or cfg.seconds
    trained = {Path(t["path"]).resolve() for t in run.info.tracks("train")}
    if data is None:
        tracks = [
            Track(t["id"], Path(t["path"]), t.get("genre", "unknown"))
            for t in run.info.tracks("val")
        ]
        if not tracks:
            raise NoizeNetError(
                f"{run.path}: the run has no validation tracks; "
                "pass --data SOURCE with held-out audio"
            )
    else:
        source_cfg = dataclasses.replace(cfg, source=data)
        tracks = list_tracks(source_cfg, seed=run.config.seed)
        tracks = [t for t in tracks if t.path.resolve() not in trained]
        if not tracks:
            raise NoizeNetError(f"{data}: no audio files the run did not train on")
    held = HeldOut([], [], [], cfg.offset)
    for track in tracks:
        if len(held.audio) >= songs:
            break
        try:
            y = load_track(track, sr=run.sr, offset=cfg.offset, seconds=seconds)
        except AudioError as exc:
            held.skipped.append((str(track.path), str(exc)))
            continue
        held.ids.append(track.id)
        held.paths.append(track.path)
        held.audio.append(y)
    if not held.audio:
        reasons = "; ".join(r for _, r in held.skipped[:3])
        raise NoizeNetError(f"{data or run.path}: no usable held-out audio ({reasons})")
    return held


def fit_baseline(run: Any, held: HeldOut | None = None) -> Baseline:
    """LPC-32 fitted on the run's training tracks, re-decoded from the paths in ``run.json``
    with the run's offset and length. If they are gone (a run copied from another machine),
    it is fitted on the held-out tracks instead, which favours the baseline, and says so."""
    from noizenet.analysis.metrics import LPC_ORDER, fit_lpc, lpc_residual_std
    from noizenet.corpus import Track, load_track

    run = _open(run)
    cfg = run.config.data
    train = []
    for t in run.info.tracks("train"):
        try:
            train.append(
                load_track(
                    Track(t["id"], Path(t["path"])),
                    sr=run.sr,
                    offset=cfg.offset,
                    seconds=cfg.seconds,
                )
            )
        except AudioError:
            train = []
            break
    if train:
        fitted_on = f"the run's {len(train)} training tracks"
        tracks = train
    elif held is not None:
        fitted_on = "the held-out tracks (the run's training tracks were not found)"
        tracks = held.audio
    else:
        raise NoizeNetError(f"{run.path}: its training tracks were not found to fit LPC on")
    a = fit_lpc(tracks, order=LPC_ORDER)
    return Baseline(a, lpc_residual_std(tracks, a), fitted_on, train)


def evaluate_run(
    run: Any,
    held: HeldOut,
    baseline: Baseline,
    generation: GenerationConfig | None = None,
    *,
    real: bool = True,
    **overrides: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every metric of ``run`` on ``held``, beside persistence, LPC-32 and real audio.

    ``generation`` (default: 5 s takes primed on 1 s of each track) and ``overrides`` of its fields
    (``gen_seconds`` is its ``seconds``) say how each held-out track's take runs free; its seed
    is always the start of the track itself.

    Returns a JSON-ready dict: ``columns`` (column -> metric -> value), ``per_track`` and the
    settings; and the audio behind it: ``predicted`` and ``generated`` (contender -> one signal
    per track). SNRs pool every predicted sample of every track (the first of each excluded).
    ``real=False`` skips the real-audio column (callers that measure it once themselves).
    """
    from noizenet.analysis import metrics as m
    from noizenet.generate import generate, reproduce
    from noizenet.generate.seeds import SeedSpec, make_seed

    gen = generation_settings(generation, overrides)
    seed_seconds = gen.seed_seconds
    run = _open(run)
    sr = run.sr
    ref_rms = run.info.train_rms
    rng = np.random.default_rng(gen.random_seed)
    ys = []
    preds = {"NoizeNet": [], "persistence": [], "LPC-32": []}
    gens: dict[str, list[np.ndarray]] = {"NoizeNet": [], "LPC-32": []}
    per_track = []
    for track_id, path, y in zip(held.ids, held.paths, held.audio, strict=True):
        rep = reproduce(run, path, seconds=y.size / sr, offset=held.offset, write=False,
                        checkpoint=gen.checkpoint)  # fmt: skip
        y = rep.original
        track_preds = {
            "NoizeNet": rep.predicted,
            "persistence": m.persistence_prediction(y),
            "LPC-32": m.lpc_prediction(y, baseline.a),
        }
        ys.append(y[1:])
        for k, p in track_preds.items():
            preds[k].append(p[1:])
        seed = SeedSpec("song", path, held.offset)
        seed_audio = make_seed(seed, seconds=seed_seconds, sr=sr, rms=ref_rms, rng=rng)
        try:
            audio = generate(run, gen, seed=seed, variations=1, write=False)[0].audio
        except NoizeNetError as exc:  # a model that diverges is a result, not a crash
            if "non-finite" not in str(exc):
                raise
            audio = None
        lpc_take = m.lpc_synthesis(
            baseline.a,
            seed=seed_audio,
            n=round(gen.seconds * sr),
            residual_std=baseline.residual_std,
            rng=rng,
        )
        gens["NoizeNet"].append(audio)
        gens["LPC-32"].append(lpc_take)
        per_track.append(
            {
                "id": track_id,
                "path": str(path),
                "seconds": y.size / sr,
                "snr_db": {k: m.snr_db(y, p) for k, p in track_preds.items()},
                "collapse_s": {
                    "NoizeNet": NON_FINITE
                    if audio is None
                    else m.collapse_time(audio, sr=sr, reference_rms=ref_rms),
                    "LPC-32": m.collapse_time(lpc_take, sr=sr, reference_rms=ref_rms),
                },
            }
        )
    predicted = {
        k: [np.concatenate([y[:1], p]) for y, p in zip(held.audio, v, strict=True)]
        for k, v in preds.items()
    }
    y_all = np.concatenate(ys)
    columns: dict[str, dict[str, Any]] = {c: {} for c in COLUMNS}
    for k, p in preds.items():
        columns[k]["snr_db"] = m.snr_db(y_all, np.concatenate(p), skip=0)
    columns["NoizeNet"]["bits_per_sample"] = m.bits_per_sample(run.model(), run.codec(), held.audio)
    if columns["NoizeNet"]["bits_per_sample"] is not None:  # categorical: the classical floors
        from noizenet.analysis.bits import classical_bits

        train = baseline.train_audio or held.audio  # as the LPC fit (fitted_on says which)
        floors = classical_bits(run.codec(), held.audio, a=baseline.a, train=train)
        for col, values in floors.items():
            columns[col].update(values)
    for k, takes in gens.items():
        columns[k]["collapse_s"] = [t["collapse_s"][k] for t in per_track]
        finite = [t for t in takes if t is not None]  # metrics of the takes that stayed finite
        columns[k]["log_mel_frechet"] = (
            m.log_mel_frechet_distance(finite, held.audio, sr=sr) if finite else None
        )
        columns[k].update(_signal_stats(finite, sr=sr, reference_rms=ref_rms))
    if real:
        if baseline.train_audio:
            columns["real audio"]["log_mel_frechet"] = m.log_mel_frechet_distance(
                baseline.train_audio, held.audio, sr=sr
            )
        columns["real audio"].update(_signal_stats(held.audio, sr=sr, reference_rms=ref_rms))
    summary = {
        "columns": columns,
        "per_track": per_track,
        "generation": {
            "seed": f"the first {seed_seconds:g} s of each held-out track",
            "seconds": gen.seconds,
            "inject": None if gen.inject == "none" else gen.inject,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "random_seed": gen.random_seed,
        },
        "lpc": {"order": int(baseline.a.size - 1), "fitted_on": baseline.fitted_on},
        "reference_rms": ref_rms,
    }
    return summary, {"predicted": predicted, "generated": gens}


def _signal_stats(signals: list[np.ndarray], *, sr: int, reference_rms: float) -> dict[str, Any]:
    """Flatness (of each signal's part before its collapse), DC offset and clipped fraction,
    averaged over signals; flatness None if no signal played for a frame."""
    from noizenet.analysis import metrics as m

    stats = [m.audio_stats(s, sr=sr, reference_rms=reference_rms) for s in signals]
    flat = [s["flatness"] for s in stats if s["flatness"] is not None]

    def mean(key: str) -> float | None:
        return float(np.mean([s[key] for s in stats])) if stats else None

    return {
        "flatness": float(np.mean(flat)) if flat else None,
        "dc_offset": mean("dc_offset"),
        "clipped_fraction": mean("clipped_fraction"),
    }


def evaluate(
    run: Any,
    *,
    data: str | None = None,
    songs: int = 3,
    seconds: float | None = None,
    generation: GenerationConfig | None = None,
    write: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Evaluate a run on held-out tracks and write ``RUN/evaluation.json``.

    Parameters
    ----------
    run : run folder (path or :class:`~noizenet.run.Run`)
    data : folder or ``embedded`` with held-out audio (tracks the run trained on are left out);
        None: the run's own validation tracks
    songs : at most this many held-out tracks
    seconds : seconds of each track (default: the run's ``data.seconds``)
    generation, overrides : how each track's take runs free, as for :func:`evaluate_run`
        (``gen_seconds``, ``seed_seconds``, ``inject``, ``temperature``, ``top_p``,
        ``random_seed``, ``checkpoint``: the weights evaluated)

    A request larger than the machine's memory is refused before any work
    (:func:`noizenet.limits.check_evaluate`).

    Returns
    -------
    dict, the content of ``evaluation.json``; :func:`format_table` prints it.
    """
    if songs < 1:
        raise NoizeNetError(f"--songs must be >= 1, got {songs}")
    gen = generation_settings(generation, overrides)  # checked before any work
    run = _open(run)
    run.choose(gen.checkpoint)  # a checkpoint the run cannot give is refused before the work
    check_evaluate(run, songs=songs, seconds=seconds, gen_seconds=gen.seconds,
                   seed_seconds=gen.seed_seconds)  # fmt: skip
    held = held_out_tracks(run, data=data, songs=songs, seconds=seconds)
    baseline = fit_baseline(run, held)
    result, _ = evaluate_run(
        run,
        held,
        baseline,
        gen,
    )
    result = {
        "run": str(run.path),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "held_out": [
            {"id": i, "path": str(p), "seconds": y.size / run.sr}
            for i, p, y in zip(held.ids, held.paths, held.audio, strict=True)
        ],
        "skipped": [{"path": p, "reason": r} for p, r in held.skipped],
        **result,
    }
    if write:
        atomic_write_json(run.path / "evaluation.json", result)
    return result


# -- presentation -----------------------------------------------------------------------------
ROWS = (
    ("snr_db", "one-step prediction SNR (dB, higher is better)"),
    ("bits_per_sample", "bits per sample on held-out audio (lower is better)"),
    ("bits_fixed_scale", "bits per sample, Laplace residual of fixed scale"),
    ("bits_no_context", "bits per sample without context (training level histogram)"),
    ("collapse_s", "free-running collapse time"),
    ("log_mel_frechet", "log-mel Frechet distance to held-out audio (not FAD; lower is closer)"),
    ("flatness", "spectral flatness before collapse (1: white noise)"),
    ("dc_offset", "DC offset (full scale)"),
    ("clipped_fraction", "clipped fraction"),
)


def format_collapse(values: list[float | str | None] | float | str | None) -> str:
    """``never``, ``12 ms``, ``non-finite``, or for several takes
    ``2/3 takes, median 12 ms`` (takes that went non-finite are counted apart)."""
    if not isinstance(values, list):
        values = [values]
    bad = [v for v in values if isinstance(v, str)]
    hit = [v for v in values if v is not None and not isinstance(v, str)]
    if len(values) == 1:
        if bad:
            return bad[0]
        return "never" if not hit else f"{hit[0] * 1000:.0f} ms"
    if not hit and not bad:
        return "never"
    text = f"{len(hit)}/{len(values)} takes" + (
        f", median {np.median(hit) * 1000:.0f} ms" if hit else ""
    )
    return text + (f", {len(bad)} non-finite" if bad else "")


def format_value(key: str, value: Any) -> str:
    if key == "collapse_s":
        return format_collapse(value)
    if value is None:
        return "-"
    if key == "snr_db" or key.startswith("bits_"):
        return f"{value:.2f}"
    if key == "log_mel_frechet":
        return f"{value:.1f}"
    if key == "clipped_fraction":
        return f"{value:.2%}"
    return f"{value:.4f}" if key == "dc_offset" else f"{value:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def format_table(result: dict[str, Any]) -> str:
    """The evaluation as a Markdown table: one row per metric, one column per contender."""
    cols = result["columns"]
    rows = []
    for key, label in ROWS:
        cells = [format_value(key, cols[c][key]) if key in cols[c] else "" for c in COLUMNS]
        if all(c in ("", "-") for c in cells):
            continue
        rows.append([label, *cells])
    return markdown_table(["metric", *COLUMNS], rows)
