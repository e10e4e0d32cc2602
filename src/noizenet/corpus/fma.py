"""The Free Music Archive (FMA) as a source: ``--data fma:ROOT``.

``ROOT`` is laid out as the dataset ships: ``ROOT/fma_metadata/tracks.csv`` and one or more audio
folders ``ROOT/fma_small``, ``fma_medium``, ``fma_large`` or ``fma_full``, where track 2 is
``000/000002.mp3``. ``tracks.csv`` has a three-line header (column group, column name, index
name ``track_id``) and 52 columns in the groups ``album``, ``artist``, ``set`` and ``track``;
list columns hold Python literals and free-text columns may span lines, so it is read with a
real CSV parser (pandas), and only the columns used here are converted.

Subsets nest: ``set.subset`` is ordered small < medium < large, and choosing "medium" means
every track with subset <= medium, as the dataset's own tools select. Each archive holds the
tracks of its subset and the smaller ones, so tracks are looked up in the first folder that
holds the whole chosen subset: ``fma_<subset>``, then the larger ones, then ``fma_full``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from noizenet.config import FMA_SUBSETS
from noizenet.corpus.track import Track
from noizenet.errors import NoizeNetError

if TYPE_CHECKING:  # pandas is imported when a tracks.csv is read, not before
    import pandas as pd


TRACKS_CSV = Path("fma_metadata") / "tracks.csv"

#: (group, column) of tracks.csv -> the name used here; the rest of the 52 columns are not read
COLUMNS = {
    ("set", "subset"): "subset",
    ("set", "split"): "split",
    ("track", "genre_top"): "genre",
    ("track", "title"): "title",
    ("artist", "name"): "artist",
    ("album", "title"): "album",
    ("track", "license"): "license",
}


def audio_path(folder: Path, track_id: int) -> Path:
    """``folder / "000" / "000002.mp3"`` for track 2 (the dataset's ``get_audio_path``)."""
    tid = f"{int(track_id):06d}"
    return folder / tid[:3] / f"{tid}.mp3"


def audio_folder(root: Path, subset: str) -> Path:
    """The first audio folder under ``root`` that holds every track of ``subset``."""
    if subset not in FMA_SUBSETS:
        raise NoizeNetError(f"data.subset: unknown FMA subset {subset!r}")
    names = [f"fma_{s}" for s in FMA_SUBSETS[FMA_SUBSETS.index(subset) :]] + ["fma_full"]
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise NoizeNetError(
        f"{root}: no audio folder for FMA subset {subset!r} (looked for {', '.join(names)})"
    )


def read_tracks_csv(path: Path) -> pd.DataFrame:
    """Read the columns NoizeNet uses from an FMA ``tracks.csv``.

    Returns a DataFrame indexed by integer track id with the string columns of
    :data:`COLUMNS` ("" where the dataset has no value). Raises a one-line
    :class:`~noizenet.errors.NoizeNetError` naming the file if it is missing or not in the
    dataset's format.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise NoizeNetError(
            f"{path}: no such file (fma:ROOT needs ROOT/{TRACKS_CSV.as_posix()} from "
            "fma_metadata.zip)"
        )
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = [next(reader, None) for _ in range(3)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NoizeNetError(f"{path}: cannot read ({exc})") from None
    groups, names, index = header
    if not groups or not names or not index or index[0] != "track_id":
        raise NoizeNetError(
            f"{path}: not an FMA tracks.csv (expected a three-line header: column groups, "
            "column names, then 'track_id')"
        )
    position = {(g, n): i for i, (g, n) in enumerate(zip(groups, names, strict=False))}
    missing = [f"{g}.{n}" for g, n in COLUMNS if (g, n) not in position]
    if missing:
        raise NoizeNetError(f"{path}: not an FMA tracks.csv (no column {', '.join(missing)})")
    wanted = {0: "track_id", **{position[k]: v for k, v in COLUMNS.items()}}
    try:
        df = pd.read_csv(
            path,
            header=None,
            skiprows=3,
            usecols=sorted(wanted),
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NoizeNetError(f"{path}: cannot parse ({first})") from None
    df = df.rename(columns=wanted)
    ids = pd.to_numeric(df["track_id"], errors="coerce")
    if ids.isna().any():
        row = int(ids.isna().to_numpy().nonzero()[0][0])
        raise NoizeNetError(
            f"{path}: data row {row + 1} has track_id {df['track_id'].iloc[row]!r}, not an integer"
        )
    df.index = ids.astype("int64")
    df.index.name = "track_id"
    return df.drop(columns="track_id")


def fma_tracks(root: Path, *, subset: str = "small") -> list[Track]:
    """Every track of ``subset`` (and the smaller subsets) as :class:`~noizenet.corpus.Track`.

    Ids are the zero-padded six-digit track ids ("099134"); genre is ``track.genre_top``
    ("unknown" where the dataset gives none) and split is ``set.split``. Titles, artists, albums
    and licences are kept for reports.
    """

    root = Path(root).expanduser()
    if not root.is_dir():
        raise NoizeNetError(
            f"{root}: no such folder (fma:ROOT needs ROOT/{TRACKS_CSV.as_posix()} and "
            f"ROOT/fma_{subset}/)"
        )
    df = read_tracks_csv(root / TRACKS_CSV)
    folder = audio_folder(root, subset)
    rank = {s: i for i, s in enumerate(FMA_SUBSETS)}
    chosen = df[df["subset"].map(rank).fillna(len(FMA_SUBSETS)) <= rank[subset]]
    # Plain lists and one Path per track: fma_large lists 106,574 tracks on every run.
    columns = {name: chosen[name].tolist() for name in COLUMNS.values()}
    base = str(folder)
    tracks = []
    for i, tid in enumerate(chosen.index.tolist()):
        tid6 = f"{tid:06d}"
        tracks.append(
            Track(
                id=tid6,
                path=Path(f"{base}/{tid6[:3]}/{tid6}.mp3"),  # as audio_path(folder, tid)
                genre=columns["genre"][i] or "unknown",
                split=columns["split"][i] or None,
                title=columns["title"][i],
                artist=columns["artist"][i],
                album=columns["album"][i],
                license=columns["license"][i],
            )
        )
    return sorted(tracks, key=lambda t: t.id)
