"""The decode cache: int16 on disk, memory-mapped views, manifest, lock, parallel workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, run_at_once, tone_song, write_wav

from noizenet.codecs import RawCodec
from noizenet.corpus.cache import FULL_SCALE, DecodeCache, TrackAudio
from noizenet.corpus.stats import Moments, moments
from noizenet.train.encoded import EncodedTrack
from noizenet.train.streams import Streams


def _songs(folder: Path, n: int = 3, seconds: float = 0.5) -> list[Path]:
    return [write_wav(folder / f"s{i}.wav", tone_song(i, seconds)) for i in range(n)]


def test_decoded_track_round_trips_through_int16_and_the_view_slices_like_an_array(tmp_path):
    y = tone_song(0, 0.5)
    path = write_wav(tmp_path / "a.wav", y, subtype="FLOAT")
    cache = DecodeCache(tmp_path / "cache")
    entries, report = cache.ensure([path], workers=1, progress=False)
    entry = entries[path]
    assert (report.decoded, report.reused, entry["status"]) == (1, 0, "ok")
    stored = np.load(cache.dir / entry["file"])
    assert stored.dtype == np.int16 and stored.size == y.size == entry["samples"]
    assert entry["size"] == path.stat().st_size and entry["mtime_ns"] == path.stat().st_mtime_ns
    view = cache.audio(entry)
    assert isinstance(view, TrackAudio) and len(view) == view.size == y.size
    np.testing.assert_allclose(np.asarray(view), y, atol=0.6 / FULL_SCALE)
    np.testing.assert_allclose(view[100:400], y[100:400], atol=0.6 / FULL_SCALE)
    assert view[-1] == pytest.approx(y[-1], abs=1e-4) and view[5:5].size == 0
    part = cache.audio(entry, offset=0.1, seconds=0.2)
    assert (part.start, len(part)) == (round(0.1 * SR), round(0.2 * SR))
    np.testing.assert_allclose(part[:10], y[part.start : part.start + 10], atol=1e-4)


def test_float_files_louder_than_full_scale_keep_their_level(tmp_path):
    y = 1.5 * np.sin(2 * np.pi * 440 * np.arange(SR // 2) / SR).astype(np.float32)
    path = write_wav(tmp_path / "loud.wav", y, subtype="FLOAT")
    cache = DecodeCache(tmp_path / "cache")
    entry = cache.ensure([path], workers=1, progress=False)[0][path]
    assert entry["gain"] == pytest.approx(1.5, rel=1e-3)
    assert np.max(np.abs(np.asarray(cache.audio(entry)))) == pytest.approx(1.5, rel=1e-3)


def test_chunked_moments_equal_the_whole_array_even_with_a_dc_offset():
    rng = np.random.default_rng(0)
    y = (1000.0 + rng.normal(0, 1e-3, 100_003)).astype(np.float64)
    m = moments(y, chunk=4096)
    assert m.n == y.size and m.mean == pytest.approx(y.mean(), rel=1e-12)
    assert m.std == pytest.approx(y.std(), rel=1e-6)
    assert (m.min, m.max) == (y.min(), y.max())
    both = Moments.of_array(y[:10]) + Moments.of_array(y[10:])
    assert both.rms == pytest.approx(np.sqrt(np.mean(y**2)), rel=1e-12)
    assert Moments.of_array(np.zeros(10)).std == 0.0


def test_codec_fit_and_streams_read_memory_mapped_views_like_arrays(tmp_path):
    paths = _songs(tmp_path, 3)
    cache = DecodeCache(tmp_path / "cache")
    entries, _ = cache.ensure(paths, workers=1, progress=False)
    views = [cache.audio(entries[p]) for p in paths]
    arrays = [np.asarray(v) for v in views]
    for scaling in ("corpus", "per-file"):
        a = RawCodec(scaling=scaling).fit(views)
        b = RawCodec(scaling=scaling).fit(arrays)
        assert a.center == pytest.approx(b.center, abs=1e-9)
        assert a.scale == pytest.approx(b.scale, rel=1e-9)
    codec = RawCodec().fit(arrays)
    lazy = Streams([EncodedTrack(v, codec) for v in views], batch=2, chunk=300)
    eager = Streams([codec.encode(a) for a in arrays], batch=2, chunk=300)
    for p, q in zip(lazy.epoch(0, seed=1), eager.epoch(0, seed=1), strict=True):
        np.testing.assert_array_equal(p.x, q.x)
        np.testing.assert_array_equal(p.y, q.y)
        np.testing.assert_array_equal(p.reset, q.reset)


def test_unchanged_files_are_never_decoded_twice_and_a_new_cache_object_agrees(tmp_path):
    paths = _songs(tmp_path, 3)
    root = tmp_path / "cache"
    _, first = DecodeCache(root).ensure(paths, workers=1, progress=False)
    _, again = DecodeCache(root).ensure(paths, workers=1, progress=False)
    assert (first.decoded, again.decoded, again.reused) == (3, 0, 3)
    manifest = json.loads((root / "decoded" / "sr22050" / "manifest.json").read_text())
    assert len(manifest["tracks"]) == 3
    entry = next(iter(manifest["tracks"].values()))
    assert {"source", "size", "mtime_ns", "samples", "status", "reason"} <= set(entry)


def test_a_cache_per_sample_rate(tmp_path):
    path = _songs(tmp_path, 1)[0]
    e1 = DecodeCache(tmp_path / "c", sr=22050).ensure([path], workers=1, progress=False)[0]
    e2 = DecodeCache(tmp_path / "c", sr=8000).ensure([path], workers=1, progress=False)[0]
    assert e1[path]["samples"] == SR // 2 and e2[path]["samples"] == 4000


def test_worker_processes_decode_in_parallel_with_the_same_result(tmp_path):
    paths = _songs(tmp_path, 4)
    paths.append(tmp_path / "junk.wav")
    paths[-1].write_bytes(b"not audio at all" * 40)
    entries, report = DecodeCache(tmp_path / "pool").ensure(paths, workers=2, progress=False)
    serial, _ = DecodeCache(tmp_path / "one").ensure(paths, workers=1, progress=False)
    assert (report.decoded, report.failed) == (5, 1)
    assert entries[paths[-1]]["status"] == "skipped"
    assert "cannot decode audio" in entries[paths[-1]]["reason"]
    for p in paths[:-1]:
        assert entries[p]["samples"] == serial[p]["samples"]
        assert np.array_equal(
            np.load(tmp_path / "pool" / "decoded" / "sr22050" / entries[p]["file"]),
            np.load(tmp_path / "one" / "decoded" / "sr22050" / serial[p]["file"]),
        )


CRASHY_WORKER = """
import os
from noizenet.corpus import cache, decode_worker

real = cache.decode_task


def decode_task(source, out, file, sr):  # a decoder that segfaults on one file
    if os.path.basename(source) == "crash.wav":
        os._exit(139)
    return real(source, out, file, sr)


cache.decode_task = decode_task
decode_worker.main()
"""


def test_a_decoder_crash_skips_that_file_and_the_rest_decode(tmp_path, monkeypatch):
    from noizenet.corpus import cache as cache_module

    (tmp_path / "crashy_worker.py").write_text(CRASHY_WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cache_module, "WORKER_MODULE", "crashy_worker")
    paths = _songs(tmp_path, 3)
    paths.insert(1, write_wav(tmp_path / "crash.wav", tone_song(9, 0.3)))
    entries, report = DecodeCache(tmp_path / "c").ensure(paths, workers=2, progress=False)
    crashed = entries[paths[1]]
    assert crashed["status"] == "skipped"
    assert crashed["reason"] == "the decoder process died on this file (exit code 139)"
    assert [entries[p]["status"] for p in paths if p != paths[1]] == ["ok", "ok", "ok"]
    assert report.decoded == 4 and report.failed == 1


_ENSURE = """
import sys
from pathlib import Path
from noizenet.corpus.cache import DecodeCache
paths = [Path(p) for p in sys.argv[2:]]
print("started", flush=True)
_, report = DecodeCache(Path(sys.argv[1])).ensure(
    paths, workers=1, progress=False, log=lambda m: print(m, flush=True)
)
print("decoded", report.decoded, "reused", report.reused, flush=True)
"""


def test_a_process_waiting_for_the_lock_finds_the_work_done(tmp_path):
    import fcntl

    paths = _songs(tmp_path, 3)
    root = tmp_path / "cache"
    cache = DecodeCache(root)
    cache.dir.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    with open(cache.dir / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # we are the builder another rank waits for
        proc = subprocess.Popen(
            [sys.executable, "-c", _ENSURE, str(root), *map(str, paths)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout.readline().strip() == "started"
        assert proc.stdout.readline().startswith("waiting for another process")
        entries = cache.manifest()
        found = dict.fromkeys(paths)
        cache._build(paths, entries, found, workers=1, progress=False)
        fcntl.flock(lock, fcntl.LOCK_UN)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert out.strip() == "decoded 0 reused 3"


def test_processes_building_at_once_decode_every_file_exactly_once(tmp_path):
    paths = _songs(tmp_path, 6, seconds=1.0)
    outs = run_at_once(_ENSURE, str(tmp_path / "cache"), *map(str, paths))
    decoded = [int(o.strip().splitlines()[-1].split()[1]) for o in outs]
    assert sum(decoded) == len(paths)
    manifest = DecodeCache(tmp_path / "cache").manifest()
    assert len(manifest) == len(paths) and all(e["status"] == "ok" for e in manifest.values())
    assert not list((tmp_path / "cache").rglob("*.tmp*"))


def test_reads_do_not_keep_the_track_resident(tmp_path):
    """Each read maps and unmaps: after reading a whole long track, no map stays open."""
    y = np.tile(tone_song(1, 1.0), 20)  # 20 s
    path = write_wav(tmp_path / "long.wav", y)
    cache = DecodeCache(tmp_path / "cache")
    view = cache.audio(cache.ensure([path], workers=1, progress=False)[0][path])
    for start in range(0, len(view), 4096):
        view[start : start + 4096]
    maps = Path(f"/proc/{os.getpid()}/maps")
    if maps.exists():
        assert str(view.path) not in maps.read_text()


def test_a_missing_file_is_reported_not_cached(tmp_path):
    cache = DecodeCache(tmp_path / "cache")
    entries, report = cache.ensure([tmp_path / "gone.mp3"], workers=1, progress=False)
    assert entries[tmp_path / "gone.mp3"]["reason"] == "no such file"
    assert report.decoded == 0 and cache.manifest() == {}


def test_a_corrupt_manifest_is_rebuilt(tmp_path):
    paths = _songs(tmp_path, 1)
    cache = DecodeCache(tmp_path / "cache")
    cache.ensure(paths, workers=1, progress=False)
    cache.manifest_path.write_text("{not json")
    _, report = cache.ensure(paths, workers=1, progress=False)
    assert report.decoded == 1 and len(cache.manifest()) == 1


def test_an_unwritable_cache_is_a_one_line_error(tmp_path):
    from noizenet.errors import NoizeNetError

    paths = _songs(tmp_path, 1)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NoizeNetError, match="cannot write the decode cache") as exc:
        DecodeCache(tmp_path / "file").ensure(paths, workers=1, progress=False)
    assert "\n" not in str(exc.value)


def test_a_full_disk_stops_the_build_instead_of_blaming_the_songs(tmp_path, monkeypatch):
    from noizenet.errors import NoizeNetError

    def no_space(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    paths = _songs(tmp_path, 2)
    monkeypatch.setattr(np, "save", no_space)
    cache = DecodeCache(tmp_path / "cache")
    with pytest.raises(NoizeNetError, match="No space left on device"):
        cache.ensure(paths, workers=1, progress=False)
    assert all(e["status"] != "skipped" for e in cache.manifest().values())


def test_two_names_of_one_file_are_decoded_once(tmp_path):
    path = _songs(tmp_path, 1)[0]
    link = tmp_path / "link.wav"
    link.symlink_to(path)
    entries, report = DecodeCache(tmp_path / "c").ensure([path, link], workers=1, progress=False)
    assert report.decoded == 1 and entries[path] == entries[link]
