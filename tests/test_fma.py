"""The FMA source: a fixture in the dataset's own format, its filters, training on it, the cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from noizenet.cli import main
from noizenet.config import Config
from noizenet.corpus import candidate_pools, list_tracks
from noizenet.corpus.fma import audio_path, read_tracks_csv
from noizenet.errors import ConfigError, NoizeNetError

# tracks.csv as the dataset ships it: 52 columns in four groups, sorted as in the file.
GROUPS = {
    "album": "comments date_created date_released engineer favorites id information listens "
    "producer tags title tracks type",
    "artist": "active_year_begin active_year_end associated_labels bio comments date_created "
    "favorites id latitude location longitude members name related_projects tags website "
    "wikipedia_page",
    "set": "split subset",
    "track": "bit_rate comments composer date_created date_recorded duration favorites "
    "genre_top genres genres_all information interest language_code license listens lyricist "
    "number publisher tags title",
}
COLUMNS = [(g, c) for g, cols in GROUPS.items() for c in cols.split()]

# id, subset, split, genre_top, audio: (sample rate, channels, bitrate mode, compression level)
# or "id3" (a header-only file), "empty" (zero bytes)
TRACKS = [
    (2, "small", "training", "Instrumental", (44100, 2, "CONSTANT", 0.0)),
    (5, "small", "training", "Instrumental", (22050, 1, "VARIABLE", 0.5)),
    (10, "small", "training", "Instrumental", (48000, 2, "CONSTANT", 0.9)),
    (20, "small", "validation", "Instrumental", (32000, 1, "CONSTANT", 0.3)),
    (26, "small", "test", "Instrumental", (16000, 1, "VARIABLE", 0.2)),
    (30, "small", "training", "Classical", (44100, 2, "VARIABLE", 0.8)),
    (46, "small", "validation", "Classical", (8000, 1, "CONSTANT", 0.5)),
    (160, "small", "training", "", (11025, 1, "CONSTANT", 0.5)),
    (99134, "small", "training", "Instrumental", "id3"),
    (108925, "small", "training", "Instrumental", "empty"),
    (140, "medium", "training", "Instrumental", (44100, 2, "CONSTANT", 0.5)),
    (141, "medium", "training", "Rock", (44100, 2, "CONSTANT", 0.5)),
    (150, "large", "training", "Instrumental", (44100, 2, "CONSTANT", 0.5)),
]


def _clip(track_id: int, sr: int, channels: int, seconds: float = 1.0) -> np.ndarray:
    """A second of decaying notes, different for every track."""
    rng = np.random.default_rng(track_id)
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    for k, start in enumerate(np.arange(0, seconds, 0.25)):
        f = rng.choice([220.0, 261.6, 329.6, 392.0]) * (1 + k % 2)
        on = t >= start
        y += on * 0.3 * np.sin(2 * np.pi * f * (t - start)) * np.exp(-6 * (t - start) * on)
    return np.stack([y * (1 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)


def _id3_only(path: Path, size: int = 1700) -> None:
    """A valid ID3v2.4 tag with one title frame, padded to ``size`` bytes, and no audio."""
    body = size - 10
    syncsafe = bytes((body >> s) & 0x7F for s in (21, 14, 7, 0))
    title = b"\x03" + b"Broken clip"
    frame = b"TIT2" + bytes((len(title) >> s) & 0x7F for s in (21, 14, 7, 0)) + b"\x00\x00"
    data = b"ID3\x04\x00\x00" + syncsafe + frame + title
    path.write_bytes(data + b"\x00" * (size - len(data)))


def _row(track_id: int, subset: str, split: str, genre: str) -> dict:
    row = {c: "" for c in COLUMNS}
    row.update(
        {
            ("set", "subset"): subset,
            ("set", "split"): split,
            ("track", "genre_top"): genre,
            ("track", "title"): f'Piece {track_id}, for "strings"',
            ("track", "license"): "Attribution-NonCommercial-ShareAlike 3.0 International",
            ("track", "genres"): [21] if genre else [],
            ("track", "genres_all"): [21, 1235] if genre else [],
            ("track", "tags"): ["ambient", "live take"],
            ("track", "bit_rate"): 256000,
            ("track", "duration"): 30,
            ("track", "date_created"): "2008-11-26 01:48:12",
            ("album", "title"): "Études & Sketches",
            ("album", "tags"): [],
            ("album", "id"): 1,
            ("artist", "name"): "Mëtal Orchestra" if track_id % 2 else "AWOL",
            ("artist", "tags"): ["awol"],
            ("artist", "bio"): "<p>A collective, founded 2003.\nPlays, records, tours.</p>",
            ("artist", "id"): 7,
        }
    )
    return row


def build_fma(root: Path) -> Path:
    """ROOT/fma_metadata/tracks.csv, ROOT/fma_small (small tracks), ROOT/fma_medium (small and
    medium tracks, as the dataset's archives nest); no fma_large."""
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    df = pd.DataFrame(
        [_row(*t[:4]) for t in TRACKS],
        index=pd.Index([t[0] for t in TRACKS], name="track_id"),
        columns=pd.MultiIndex.from_tuples(COLUMNS),
    )
    df.to_csv(meta / "tracks.csv")
    for track_id, subset, _, _, kind in TRACKS:
        for folder in ("fma_small", "fma_medium"):
            if subset == "large" or (subset == "medium" and folder == "fma_small"):
                continue
            path = audio_path(root / folder, track_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "id3":
                _id3_only(path)
            elif kind == "empty":
                path.write_bytes(b"")
            else:
                sr, channels, mode, level = kind
                sf.write(
                    path,
                    _clip(track_id, sr, channels),
                    sr,
                    format="MP3",
                    bitrate_mode=mode,
                    compression_level=level,
                )
    return root


@pytest.fixture(scope="module")
def fma(tmp_path_factory) -> Path:
    return build_fma(tmp_path_factory.mktemp("fma"))


def _cfg(root: Path, **data) -> Config:
    overrides = {"data.source": f"fma:{root}", "data.decode_workers": 1}
    overrides.update({f"data.{k}": v for k, v in data.items()})
    return Config().with_overrides(overrides)


def _ids(root: Path, **data) -> set[str]:
    return {t.id for t in list_tracks(_cfg(root, **data).data)}


def test_fixture_has_the_datasets_three_line_header_and_52_columns(fma):
    lines = (fma / "fma_metadata" / "tracks.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith(",album,album,") and lines[0].endswith(",track")
    assert lines[1].startswith(",comments,date_created,date_released,")
    assert lines[2] == "track_id" + "," * 52
    assert lines[0].count(",") == 52
    assert {p.stat().st_size for p in (fma / "fma_small").rglob("099134.mp3")} == {1700}
    bit_rates = {
        p.stat().st_size // 8 for p in (fma / "fma_small").rglob("*.mp3") if p.stat().st_size > 2000
    }
    assert len(bit_rates) >= 5  # mixed bit rates and sample rates


def test_metadata_is_read_with_lists_quotes_newlines_and_non_ascii(fma):
    df = read_tracks_csv(fma / "fma_metadata" / "tracks.csv")
    assert list(df.index[:3]) == [2, 5, 10]
    assert df.loc[2, "title"] == 'Piece 2, for "strings"'
    assert df.loc[5, "artist"] == "Mëtal Orchestra" and df.loc[5, "album"] == "Études & Sketches"
    assert df.loc[160, "genre"] == "" and df.loc[20, "split"] == "validation"
    tracks = {t.id: t for t in list_tracks(_cfg(fma).data)}
    assert tracks["000002"].license.startswith("Attribution-NonCommercial")
    assert tracks["000160"].genre == "unknown"


def test_filters_select_exactly_the_right_ids(fma):
    small = {"000002", "000005", "000010", "000020", "000026", "000030", "000046", "000160"}
    small |= {"099134", "108925"}
    assert _ids(fma) == small
    assert _ids(fma, genre=["Instrumental"]) == {
        "000002",
        "000005",
        "000010",
        "000020",
        "000026",
        "099134",
        "108925",
    }
    assert _ids(fma, genre="instrumental, CLASSICAL", split=["validation"]) == {"000020", "000046"}
    assert _ids(fma, subset="medium", genre=["Rock"]) == {"000141"}
    assert _ids(fma, subset="medium", genre=["Instrumental"], split=["training"]) == {
        "000002",
        "000005",
        "000010",
        "000140",
        "099134",
        "108925",
    }
    with pytest.raises(ConfigError, match=r"no track of genre 'Rock'.*Classical, Instrumental"):
        _ids(fma, genre=["Rock"])  # Rock is only in the medium subset
    with pytest.raises(NoizeNetError, match="fma_large, fma_full"):
        _ids(fma, subset="large")


def test_track_ids_map_to_the_datasets_paths(fma):
    tracks = {t.id: t for t in list_tracks(_cfg(fma, subset="medium").data)}
    assert tracks["000140"].path == fma / "fma_medium" / "000" / "000140.mp3"
    assert tracks["099134"].path == fma / "fma_medium" / "099" / "099134.mp3"
    small = {t.id: t for t in list_tracks(_cfg(fma).data)}
    assert small["108925"].path == fma / "fma_small" / "108" / "108925.mp3"


def test_the_datasets_split_chooses_validation_and_test_stays_unseen(fma):
    cfg = _cfg(fma, genre=["Instrumental"]).data
    train, val = candidate_pools(list_tracks(cfg), cfg, seed=3)
    assert {t.id for t in train} == {"000002", "000005", "000010", "099134", "108925"}
    assert [t.id for t in val] == ["000020"]
    cfg = _cfg(fma, genre=["Instrumental"], split=["test"]).data
    train, val = candidate_pools(list_tracks(cfg), cfg, seed=3)
    assert val is None and [t.id for t in train] == ["000026"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "three-line header"),
        ("a,b\nc,d\ne,f\n", "three-line header"),
        (",album\n,title\ntrack_id,\n1,x\n", "no column set.subset"),
    ],
)
def test_a_file_that_is_not_tracks_csv_is_a_one_line_error(tmp_path, text, fragment):
    (tmp_path / "fma_metadata").mkdir()
    (tmp_path / "fma_metadata" / "tracks.csv").write_text(text)
    (tmp_path / "fma_small").mkdir()
    with pytest.raises(NoizeNetError, match=fragment) as exc:
        list_tracks(_cfg(tmp_path).data)
    assert "tracks.csv" in str(exc.value) and "\n" not in str(exc.value)


def _train(fma: Path, out: Path, capsys) -> tuple[int, str, dict]:
    code = main(
        [
            "train",
            "--data",
            f"fma:{fma}",
            "--genre",
            "Instrumental",
            "--songs",
            "10",
            "--seconds",
            "1",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--chunk",
            "256",
            "--batch",
            "4",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    text = capsys.readouterr().out
    return code, text, json.loads((out / "run.json").read_text())


def test_training_on_fma_reports_broken_files_and_a_second_run_decodes_nothing(
    fma, tmp_path, capsys
):
    code, text, info = _train(fma, tmp_path / "a", capsys)
    assert code == 0
    corpus = info["corpus"]
    assert {t["id"] for t in corpus["train"]} == {"000002", "000005", "000010"}
    assert [t["id"] for t in corpus["val"]] == ["000020"]  # the dataset's validation split
    assert corpus["train"][0]["license"].startswith("Attribution")
    skipped = {s["id"]: s["reason"] for s in corpus["skipped"]}
    assert skipped == {
        "099134": "only an ID3 tag (1,700 bytes), no audio frames",
        "108925": "empty file (0 bytes)",
    }
    # the summary closes training's output; then the verb's "report: ..." and "run folder: ..."
    last = text.strip().splitlines()[-3]
    assert last.startswith("skipped 2 unusable track(s): ") and "099134" in last
    assert "decode cache: 6 decoded" in text

    cache = Path(Config().data.cache_dir or __import__("os").environ["NOIZENET_CACHE"])
    npys = sorted((cache / "decoded").rglob("*.npy"))
    before = {p: p.stat().st_mtime_ns for p in npys}
    code, text, info = _train(fma, tmp_path / "b", capsys)
    assert code == 0
    assert "decode cache: 0 decoded, 6 reused" in text
    assert {p: p.stat().st_mtime_ns for p in npys} == before
    assert {s["id"] for s in info["corpus"]["skipped"]} == {"099134", "108925"}


def test_data_inspect_lists_every_track_totals_and_the_runs_choice(fma, capsys):
    assert main(["data", "inspect", f"fma:{fma}", "--genre", "Instrumental", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in out[1:8]}
    assert set(rows) == {"000002", "000005", "000010", "000020", "000026", "099134", "108925"}
    assert "only an ID3 tag" in rows["099134"] and "empty file" in rows["108925"]
    assert rows["000020"].split()[2] == "validation" and " val " in rows["000020"]
    assert "48000" in rows["000010"]
    assert any(line.startswith("totals by split:") for line in out)
    assert any("a training run would use" in line for line in out)

    assert main(["data", "inspect", f"fma:{fma}", "--json", "--songs", "2", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["tracks"]) == 10 and len(report["run"]["train"]) == 2
    by_id = {t["id"]: t for t in report["tracks"]}
    assert by_id["000046"]["genre"] == "Classical" and by_id["000046"]["split"] == "validation"
    assert report["totals"]["split"]["test"]["tracks"] == 1


def test_a_changed_source_is_decoded_again(fma, tmp_path):
    from noizenet.corpus.cache import DecodeCache

    root = tmp_path / "copy"
    shutil.copytree(fma, root)
    cache = DecodeCache(tmp_path / "cache")
    paths = sorted((root / "fma_small").rglob("*.mp3"))
    _, first = cache.ensure(paths, workers=1, progress=False)
    assert (first.decoded, first.reused) == (len(paths), 0)
    changed = audio_path(root / "fma_small", 5)
    sf.write(changed, _clip(99, 22050, 1, seconds=0.5), 22050, format="MP3")
    entries, again = cache.ensure(paths, workers=1, progress=False)
    assert (again.decoded, again.reused) == (1, len(paths) - 1)
    assert entries[changed]["samples"] < 0.75 * 22050
