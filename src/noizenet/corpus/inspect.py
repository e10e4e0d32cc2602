"""``noizenet data inspect``: what a source holds, what is broken, and what a run would train on.

One row per track (id, genre, split, duration, source sample rate, channels, status), totals per
genre and per split, and the selection a training run with the same settings would make. Tracks
already in the decode cache show their final status (decoded, and long and loud enough in the
part ``--offset``/``--seconds`` select); the others show what their file header says (read in
parallel threads, without decoding). The selection is made exactly as
``noizenet train`` makes it, so the songs it picks are decoded (once, into the cache) to know
they are usable; ``decode=True`` decodes every listed track first, so every status is final.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from noizenet.config import Config
from noizenet.errors import AudioError, NoizeNetError

NOT_DECODED = "not decoded yet"


def _probe(path: Any) -> dict[str, Any]:
    """Header facts of an undecoded file, or the reason it cannot be read."""
    from noizenet import audio

    known = audio.sniff(path) if path.exists() else "no such file"
    if known:
        return {"status": known}
    try:
        head = audio.info(path)
    except AudioError as exc:
        reason = str(exc)
        return {"status": reason[len(str(path)) + 2 :] if reason.startswith(str(path)) else reason}
    return {
        "seconds": head["seconds"],
        "source_sr": head["sample_rate"],
        "channels": head["channels"],
        "status": NOT_DECODED,
    }


def inspect_source(
    config: Config,
    *,
    decode: bool = False,
    progress: bool = True,
    log: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Describe the tracks ``config.data`` selects; see the module docstring.

    Returns a JSON-ready dict: ``source``, ``tracks`` (one dict per track), ``totals``
    (``genre`` and ``split``: tracks, seconds, ok, skipped, unchecked), and ``run`` (the
    training and validation ids a run would use, what it skipped, or the error it would stop
    with). A source that lists no track at all raises the one-line
    :class:`~noizenet.errors.NoizeNetError` a training run would stop with.
    """

    from noizenet.corpus import DecodeCache, cache_root, list_tracks, load_corpus, segment_problem
    from noizenet.corpus.stats import moments

    data = config.data
    tracks = list_tracks(data, seed=config.seed)
    if not tracks:  # nothing to tabulate: the one line a training run would stop with
        load_corpus(data, seed=config.seed, progress=False)
    cache = DecodeCache(cache_root(data), sr=data.sample_rate)
    if decode and tracks:
        _, report = cache.ensure(
            [t.path for t in tracks], workers=data.decode_workers, progress=progress, log=log
        )
        if log is not None:
            log(f"decode cache: {report.summary()}")
    run: dict[str, Any]
    try:
        corpus = load_corpus(data, seed=config.seed, progress=progress, log=log)
    except NoizeNetError as exc:
        run = {"error": str(exc)}
        skipped_now: dict[str, str] = {}
    else:
        run = {
            "train": [t.id for t in corpus.train],
            "val": [t.id for t in corpus.val],
            "train_seconds": sum(t.y.size for t in corpus.train) / data.sample_rate,
            "val_seconds": sum(t.y.size for t in corpus.val) / data.sample_rate,
            "skipped": [{"id": t.id, "reason": r} for t, r in corpus.skipped],
        }
        skipped_now = {t.id: r for t, r in corpus.skipped}
    use = {i: "train" for i in run.get("train", [])} | {i: "val" for i in run.get("val", [])}

    found = cache.lookup(t.path for t in tracks)
    unknown = [t.path for t in tracks if found[t.path] is None]
    with ThreadPoolExecutor(max_workers=8) as pool:  # libsndfile reads headers without the GIL
        probed = dict(zip(unknown, pool.map(_probe, unknown), strict=True))
    rows = []
    for t in tracks:
        entry = found[t.path]
        if entry is not None:
            row = {
                "seconds": entry.get("seconds"),
                "source_sr": entry.get("source_sr"),
                "channels": entry.get("channels"),
                "status": entry.get("reason") or "cannot decode",
            }
            if entry.get("status") == "ok":  # usable as a run would cut it (--offset, --seconds)?
                part = cache.audio(entry, offset=data.offset, seconds=data.seconds)
                problem = segment_problem(moments(part), sr=data.sample_rate, offset=data.offset)
                row["status"] = problem or "ok"
        else:
            row = {"seconds": None, "source_sr": None, "channels": None, **probed[t.path]}
        if t.id in skipped_now:  # the run's own reason wins (e.g. a file that just vanished)
            row["status"] = skipped_now[t.id]
        rows.append({**t.describe(), **row, "use": use.get(t.id, "")})
    return {
        "source": data.source,
        "filters": {"genre": data.genre, "subset": data.subset, "split": data.split},
        "tracks": rows,
        "totals": {"genre": _totals(rows, "genre"), "split": _totals(rows, "split")},
        "run": run,
    }


def _totals(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        t = totals.setdefault(
            str(row.get(key) or "-"),
            {"tracks": 0, "seconds": 0.0, "ok": 0, "skipped": 0, "unchecked": 0},
        )
        t["tracks"] += 1
        t["seconds"] += row["seconds"] or 0.0
        status = row["status"]
        t["ok" if status == "ok" else "unchecked" if status == NOT_DECODED else "skipped"] += 1
    return dict(sorted(totals.items()))


def format_inspection(report: dict[str, Any]) -> list[str]:
    """The report as aligned text lines: tracks, totals, and what a run would use."""
    head = ("id", "genre", "split", "seconds", "source sr", "ch", "use", "status")
    table = [head]
    for r in report["tracks"]:
        table.append(
            (
                r["id"],
                r["genre"],
                r.get("split") or "-",
                "?" if r["seconds"] is None else f"{r['seconds']:.2f}",
                "?" if r["source_sr"] is None else str(r["source_sr"]),
                "?" if r["channels"] is None else str(r["channels"]),
                r["use"] or "-",
                r["status"],
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in table
    ]
    lines = [line.rstrip() for line in lines]
    for key in ("genre", "split"):
        totals = report["totals"][key]
        if key == "split" and set(totals) == {"-"}:
            continue  # the source has no split
        lines.append(f"totals by {key}:")
        width = max((len(k) for k in totals), default=0)
        for name, t in totals.items():
            lines.append(
                f"  {name.ljust(width)}  {t['tracks']} track{'s' * (t['tracks'] != 1)}, "
                f"{t['seconds']:.1f} s: "
                f"{t['ok']} ok, {t['skipped']} skipped, {t['unchecked']} not decoded yet"
            )
    run = report["run"]
    if "error" in run:
        lines.append(f"a training run would stop: {run['error']}")
        return lines
    lines.append(
        f"a training run would use {len(run['train'])} training track(s) "
        f"({run['train_seconds']:.1f} s) and {len(run['val'])} validation track(s) "
        f"({run['val_seconds']:.1f} s)"
    )
    lines.append(f"  train: {', '.join(run['train'])}")
    if run["val"]:
        lines.append(f"  val: {', '.join(run['val'])}")
    for s in run["skipped"]:
        lines.append(f"  skipped {s['id']}: {s['reason']}")
    return lines
