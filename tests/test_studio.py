"""``noizenet studio`` over plain HTTP (no browser): path traversal, upload limits, broken
uploads, one generation at a time, generation end to end, and the command line.

The server is the real one (uvicorn on a free port, in a thread); requests go through
``http.client``, which sends paths exactly as written (no ``..`` clean-up on the way).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import tomli_w

pytest.importorskip(
    "starlette", reason="the studio extra is not installed (pip install -e '.[studio]')"
)
pytest.importorskip("uvicorn")

from noizenet.studio import runs as R
from noizenet.studio.app import create_app

HOSTILE_RUN = "<img src=x onerror=alert(1)>"
HOSTILE_TAKE = '"><img src=x onerror=window.__pwned=1>.wav'


@pytest.fixture(scope="session")
def studio_runs(tmp_path_factory, song_dir) -> Path:
    """RUNS_DIR with a tiny trained run (hidden 8, 1 epoch, 1 s songs), and a copy of it under
    a hostile name with another learning rate and a take whose file name is markup."""
    from noizenet.config import Config
    from noizenet.train import train

    root = tmp_path_factory.mktemp("studio") / "runs"
    cfg = Config().with_overrides(
        {
            "data.source": str(song_dir),
            "data.songs": 2,
            "data.seconds": 1.0,
            "data.val_songs": 1,
            "model.hidden": 8,
            "train.epochs": 1,
            "train.batch": 4,
            "train.chunk": 256,
        }
    )
    train(cfg, root / "tiny", progress=False, log=lambda *a: None)
    other = root / HOSTILE_RUN
    shutil.copytree(root / "tiny", other)
    config = tomllib.loads((other / "config.toml").read_text())
    config["train"]["lr"] = 0.02
    (other / "config.toml").write_text(tomli_w.dumps(config))
    (other / "audio").mkdir(exist_ok=True)
    shutil.copy(next(song_dir.rglob("*.wav")), other / "audio" / HOSTILE_TAKE)
    return root


class Served:
    """The studio app served by uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("the studio did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def request(self, method: str, path: str, body=None, headers=None, **kw):
        """(status, parsed JSON or raw bytes) of one request, path sent as written."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            if isinstance(body, dict):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {}, **kw)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        kind = response.getheader("content-type", "")
        return response.status, (json.loads(data) if "json" in kind else data)

    def get(self, url: str, **params):
        return self.request("GET", url + ("?" + urlencode(params) if params else ""))

    def post(self, path: str, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def wait_generation(self, run: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, job = self.get("/api/generate", run=run)
            if job["state"] != "running":
                return job
            time.sleep(0.2)
        raise AssertionError("generation did not finish")


@contextlib.contextmanager
def studio(root: Path, **kwargs) -> Iterator[Served]:
    logged: list[str] = []
    with Served(create_app(root, log=logged.append, **kwargs)) as served:
        served.logged = logged
        yield served


# -- paths never leave RUNS_DIR ----------------------------------------------------------------
def test_inside_refuses_every_way_out(tmp_path):
    root = tmp_path / "runs"
    (root / "a").mkdir(parents=True)
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    (root / "link.wav").symlink_to(tmp_path / "secret.wav")
    assert R.inside(root, "a") == (root / "a").resolve()
    for bad in ("../secret.wav", "a/../../secret.wav", "/etc/passwd", "link.wav", "a/../.."):
        with pytest.raises(R.RefusedError) as info:
            R.inside(root, bad)
        assert info.value.status == 403, bad
    with pytest.raises(R.RefusedError):
        R.inside(root, "a\x00b")


def test_http_path_traversal_is_refused(studio_runs, tmp_path):
    secret = studio_runs.parent / "secret.wav"
    shutil.copy(next((studio_runs / HOSTILE_RUN / "audio").glob("*.wav")), secret)
    (studio_runs / "escape.wav").symlink_to(secret)
    try:
        with studio(studio_runs) as s:
            for path in (
                "/file?path=../secret.wav",
                "/file?path=%2e%2e%2fsecret.wav",
                "/file?path=tiny/../../secret.wav",
                "/file?path=" + quote(str(secret), safe=""),
                "/file?path=escape.wav",
                "/api/run?run=..",
                "/api/train?run=../x",
                "/api/compare?a=tiny&b=..%2F..",
            ):
                status, body = s.request("GET", path)
                assert status == 403, (path, status, body)
                assert "outside the runs folder" in body["error"]
            # the folder's other files are not served either, only audio and figures
            status, body = s.get("/file", path="tiny/config.toml")
            assert status == 403 and "only audio" in body["error"]
            status, body = s.get("/static/../app.py")
            assert status == 404
            status, body = s.post("/api/generate", {"run": "../..", "seed": "white"})
            assert status == 403
            # and what is inside is served
            status, wav = s.get("/file", path=f"{HOSTILE_RUN}/audio/{HOSTILE_TAKE}")
            assert status == 200 and wav[:4] == b"RIFF"
    finally:
        (studio_runs / "escape.wav").unlink()


# -- uploads -----------------------------------------------------------------------------------
def test_upload_limit_refuses_large_files_declared_or_streamed(studio_runs, song_dir):
    wav = next(song_dir.rglob("*.wav")).read_bytes()  # 1 s of 16-bit audio: about 44 kB
    assert len(wav) > 20_000
    with studio(studio_runs, max_upload_mb=0.02) as s:  # 20 kB
        status, body = s.post("/api/upload?name=big.wav", wav)
        assert status == 413 and "upload limit (0.02 MB" in body["error"]
        # no Content-Length: counted while it streams in
        chunks = iter([wav[:10_000], wav[10_000:]])
        status, body = s.post(
            "/api/upload?name=big.wav",
            chunks,
            headers={"Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        assert status == 413 and "--max-upload-mb" in body["error"], body
    with studio(studio_runs) as s:
        status, body = s.post("/api/upload?name=" + quote("../../up/fine.wav"), wav)
        assert status == 200, body
        assert body["name"] == "fine.wav" and body["seconds"] == 1.0  # no folder part kept


def test_broken_upload_gives_one_line_not_a_trace(studio_runs):
    with studio(studio_runs) as s:
        status, body = s.post("/api/upload?name=song.mp3", b"\x00" * 4096)
        assert status == 400
        assert body["error"].startswith("song.mp3: ")
        assert "noizenet-studio-" not in body["error"]  # our temporary folder stays ours
        status, body = s.post("/api/upload?name=empty.wav", b"")
        assert status == 400 and body["error"] == "empty.wav: empty file (0 bytes)"
        status, body = s.post("/api/generate", {"run": "tiny", "seed": "upload", "upload": "x"})
        assert status == 400 and "upload a seed song first" in body["error"]
        status, body = s.post("/api/generate", b"{not json", headers={"Content-Type": "x"})
        assert status == 400 and body["error"] == "expected a JSON object"
        for field, value in (("seconds", "ten"), ("seed", "song:/etc/passwd"), ("val", 7)):
            form = {"run": "tiny", "seed": "val" if field == "val" else "white", field: value}
            status, body = s.post("/api/generate", form)
            assert status == 400, (field, body)
        assert not any("Traceback" in line for line in s.logged)


# -- generation ------------------------------------------------------------------------------
def test_second_generation_of_a_run_is_refused_while_one_runs(studio_runs, monkeypatch):
    from noizenet.studio import jobs

    release = threading.Event()
    calls = []

    def held(job):  # stands in for generate() until the test lets it finish
        calls.append(job.kwargs)
        release.wait(60)

    monkeypatch.setattr(jobs, "generate_takes", held)
    with studio(studio_runs) as s:
        status, first = s.post("/api/generate", {"run": "tiny", "seed": "white", "seconds": 2})
        assert status == 202 and first["state"] == "running"
        status, second = s.post("/api/generate", {"run": "tiny", "seed": "perlin"})
        assert status == 409 and "already running for this run" in second["error"]
        # another run is not held up by this one
        status, _ = s.post("/api/generate", {"run": HOSTILE_RUN, "seed": "white"})
        assert status == 202
        release.set()
        assert s.wait_generation("tiny")["state"] == "done"
        status, _ = s.post("/api/generate", {"run": "tiny", "seed": "silence"})
        assert status == 202
        s.wait_generation("tiny")
    assert [c["seed"].kind for c in calls] == ["white", "white", "silence"]


def test_generation_writes_the_take_generate_names_with_its_views(studio_runs, tmp_path):
    run = tmp_path / "runs" / "one"
    shutil.copytree(studio_runs / "tiny", run)
    with studio(run.parent) as s:
        _, details = s.get("/api/run", run="one")
        form = {"run": "one", "seed": "val", "val": 0, "seconds": 0.3, "seed_seconds": 0.2}
        status, _ = s.post("/api/generate", form)
        assert status == 202
        job = s.wait_generation("one")
        assert job["state"] == "done", job
        assert job["rtf"] > 0 and job["generation_s"] <= job["elapsed_s"]
        song = Path(details["val_songs"][0]["label"]).stem
        name = f"gen_song-{song}_e1_v0.wav"
        assert job["takes"] == [f"one/audio/{name}"]
        import soundfile as sf

        assert sf.info(str(run / "audio" / name)).frames == round(0.3 * 22050)
        _, details = s.get("/api/run", run="one")
        take = next(t for t in details["takes"] if t["name"] == name)
        assert take["spectrogram"] == f"one/audio/gen_song-{song}_e1_v0_spectrogram.png"
        assert take["settings"]["seed"] == f"song-{song}"
        # a song of the user's, uploaded: the take is named after it, as generate names it
        wav = next(iter(sorted((studio_runs / HOSTILE_RUN / "audio").glob("*.wav")))).read_bytes()
        _, up = s.post("/api/upload?name=" + quote("my song.wav"), wav)
        form = {"run": "one", "seed": "upload", "upload": up["upload"], "offset": 0.1}
        assert s.post("/api/generate", {**form, "seconds": 0.2})[0] == 202
        job = s.wait_generation("one")
        assert job["takes"] == ["one/audio/gen_song-my song_e1_v0.wav"], job
        assert job["settings"]["seed"] == "song:my song.wav@0.1"
        # generate's own checks reach the page as its one-line message
        s.post("/api/generate", {"run": "one", "seed": "white", "top_p": 2})
        job = s.wait_generation("one")
        assert job["state"] == "error" and "generation.top_p: must be <= 1" in job["error"]


# -- runs ------------------------------------------------------------------------------------
def test_runs_are_listed_newest_first_with_status_and_compared(studio_runs):
    with studio(studio_runs) as s:
        status, body = s.get("/api/runs")
        assert status == 200
        ids = [r["id"] for r in body["runs"]]
        assert set(ids) == {"tiny", HOSTILE_RUN}
        tiny = next(r for r in body["runs"] if r["id"] == "tiny")
        assert tiny["status"] == "complete" and tiny["epochs"] == 1
        assert tiny["model"] == {"cell": "lstm", "hidden": 8, "layers": 1}
        assert tiny["losses"][0]["epoch"] == 1 and tiny["val_songs"][0]["index"] == 0
        status, cmp = s.get("/api/compare", a="tiny", b=HOSTILE_RUN)
        assert status == 200
        assert cmp["settings"] == [["train.lr", 0.01, 0.02]]
        # besides the takes training made at the run's end (named by their checkpoint)
        assert [t["name"] for t in cmp["takes_b"] if "_ckpt-epoch" not in t["name"]] == [
            HOSTILE_TAKE
        ]


def test_status_of_a_run_killed_while_training(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    assert R.status_of(run, {"status": "training"}, set()) == "stopped (killed while training)"
    assert R.status_of(run, {"status": "training"}, {run.resolve()}) == "training now"
    assert R.status_of(run, {"status": "diverged"}, set()) == "diverged"


def test_page_is_our_own_offline_markup_and_never_parses_data_as_html():
    from importlib import resources

    static = resources.files("noizenet.studio").joinpath("static")
    js = static.joinpath("studio.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in js.split("\n", 3)[-1], sink  # the header comment names them
    for name in ("index.html", "studio.js", "studio.css"):
        text = static.joinpath(name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "//cdn" not in text, name


# -- command line ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_studio_serves_and_warns_when_listening_beyond_this_machine(studio_runs):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "noizenet", "studio", str(studio_runs), "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--host", "0.0.0.0"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stderr.readline()
        assert first.startswith("warning: the studio listens on 0.0.0.0"), first
        assert f"http://0.0.0.0:{port}/" in proc.stderr.readline()
        for _ in range(300):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                page = conn.getresponse()
                break
            except OSError:
                time.sleep(0.05)
        assert page.status == 200 and b"NoizeNet studio" in page.read()
        assert "script-src 'self'" in page.getheader("content-security-policy")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    bad = subprocess.run(
        [*cmd[:4], str(studio_runs / "nope")], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"noizenet studio: error: {studio_runs / 'nope'}: no such folder "
        "(the studio shows the runs below it)"
    )


def test_train_form_is_checked_before_anything_starts(studio_runs, song_dir):
    with studio(studio_runs) as s:
        form = {"name": "new", "data": str(song_dir), "hidden": "8"}
        for change, status, words in (
            ({"name": "../out"}, 400, "run name: letters"),
            ({"name": "tiny"}, 409, "already holds a run"),
            ({"data": str(song_dir / "nope")}, 400, "is not a folder"),
            ({"hidden": "eight"}, 400, "hidden: expected a number"),
            ({"model": "lstm --force"}, 400, "model: unexpected value"),
        ):
            got, body = s.post("/api/train", {**form, **change})
            assert (got, words in body["error"]) == (status, True), (change, body)
        assert s.post("/api/train/stop", {"run": "tiny"}) == (
            409,
            {"error": "this run is not training"},
        )
    assert not (studio_runs / "new").exists()


def test_train_form_sends_the_preset_and_only_the_fields_typed_beside_it(studio_runs):
    from noizenet.config import PRESETS
    from noizenet.studio.app import _train_flags

    with studio(studio_runs) as s:
        got, body = s.get("/api/presets")
    assert got == 200 and [p["name"] for p in body["presets"]] == list(PRESETS)
    assert body["default"] == "mulaw"  # what train applies without --preset
    assert all(p["help"] for p in body["presets"])
    # blank fields are the preset's: they must not reach train as flags that override it
    form = {"preset": "mulaw", "max_time": "10:00", "hidden": "", "lr": "", "model": ""}
    assert _train_flags(form) == ["--preset", "mulaw", "--max-time", "10:00"]
    assert _train_flags({"preset": "mulaw", "hidden": "64"}) == [
        "--preset", "mulaw", "--hidden", "64"
    ]  # fmt: skip
    assert _train_flags({"max_time": "90"}) == ["--max-time", "90.0"]
    with pytest.raises(Exception, match="max_time: expected SECONDS"):
        _train_flags({"max_time": "1:2:3:4"})


def test_checkpoints_offered_are_the_kept_ones_and_generation_reports_live_progress(
    studio_runs, tmp_path
):
    """Issue 16: last, best and every kept epoch are offered; a take from epoch:1 is named so,
    and the job reports generate's own progress (seconds done, real-time factor)."""
    run = tmp_path / "runs" / "one"
    shutil.copytree(studio_runs / "tiny", run)
    with studio(run.parent) as s:
        _, details = s.get("/api/run", run="one")
        assert details["checkpoints"] == ["last", "best", "epoch:1"]
        form = {"run": "one", "seed": "white", "seconds": 0.3, "checkpoint": "epoch:1"}
        assert s.post("/api/generate", form)[0] == 202
        job = s.wait_generation("one")
        assert job["state"] == "done", job
        # named as generate names it (training's own take of epoch 1 holds the plain name)
        assert job["takes"] == ["one/audio/gen_white_e1_ckpt-epoch1_v0_1.wav"]
        assert job["done_s"] == 0.3 and job["live_rtf"] > 0
        status, _ = s.post("/api/generate", {**form, "checkpoint": "epoch:7"})
        assert status == 400
