"""The studio's HTTP side (Starlette, the core of FastAPI, without FastAPI's 1 s of import):
one static page (our own HTML, CSS and JS, nothing from the network)
and a small JSON API over RUNS_DIR.

Every path the browser sends is resolved and checked against RUNS_DIR
(:func:`noizenet.studio.runs.inside`); files are served only with the suffixes in
:data:`~noizenet.studio.runs.SERVED_SUFFIXES`. Errors reach the page as ``{"error": "one line"}``
with a 4xx status; a bug is one line on the page and a traceback in the terminal.
"""

from __future__ import annotations

import math
import re
import secrets
import shutil
import tempfile
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from noizenet.errors import NoizeNetError
from noizenet.report.folder import read_run
from noizenet.studio import runs as R
from noizenet.studio.jobs import Generations, Trainings

STATIC = {  # the page's files, by URL name: no path from the browser reaches the package folder
    "studio.js": "text/javascript; charset=utf-8",
    "studio.css": "text/css; charset=utf-8",
}
# the page runs only its own script, loads nothing from elsewhere, and cannot be framed
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
SEED_KINDS = ("white", "perlin", "silence", "upload", "val")
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")  # new run folders the page creates


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None:
        raise R.RefusedError(f"{name}: missing")
    return value


def create_app(
    runs_dir: str | Path, *, max_upload_mb: float = 200.0, log: Any = print
) -> Starlette:
    """The studio's web app over ``runs_dir`` (see :func:`noizenet.studio.serve`)."""
    root = Path(runs_dir).resolve()
    max_bytes = int(max_upload_mb * 1024 * 1024)
    generations = Generations(log=log)
    trainings = Trainings()
    uploads_dir = Path(tempfile.mkdtemp(prefix="noizenet-studio-"))
    uploads: dict[str, Path] = {}  # upload id -> decoded-and-checked seed song

    def api(work: Any, status: int = 200) -> Any:
        """A JSON endpoint: ``work(request)`` runs in a worker thread (it reads run folders);
        its dict is the answer."""

        async def endpoint(request: Request) -> Response:
            body = await _json(request) if request.method == "POST" else None
            result = await run_in_threadpool(work, request, body)
            return JSONResponse(result, status_code=status)

        return endpoint

    # -- the page ------------------------------------------------------------------------
    async def index(_request: Request) -> Response:
        page = resources.files("noizenet.studio").joinpath("static/index.html").read_bytes()
        return Response(page, media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise R.RefusedError("no such file", 404)
        data = resources.files("noizenet.studio").joinpath(f"static/{name}").read_bytes()
        return Response(data, media_type=STATIC[name])

    async def file(request: Request) -> Response:
        """A WAV or PNG below RUNS_DIR, by its path relative to it."""
        target = R.inside(root, _param(request, "path"))
        if target.suffix.lower() not in R.SERVED_SUFFIXES:
            raise R.RefusedError("only audio (.wav) and figures (.png) are served", 403)
        if not target.is_file():
            raise R.RefusedError("no such file", 404)
        return FileResponse(target)

    # -- runs and takes ------------------------------------------------------------------
    def list_runs(_request: Request, _body: Any) -> dict[str, Any]:
        busy = trainings.running()
        out, problems = [], []
        for run_dir in R.find_runs(root):
            try:
                out.append(R.summary(root, read_run(run_dir), busy))
            except NoizeNetError as exc:
                problems.append(_one_line(exc).replace(str(root), "RUNS_DIR"))
        return {"root": root.name, "runs": out, "problems": problems}

    def run_details(request: Request, _body: Any) -> dict[str, Any]:
        run_dir = R.open_run_dir(root, _param(request, "run"))
        folder = read_run(run_dir)
        return {
            **R.summary(root, folder, trainings.running()),
            "checkpoints": R.checkpoint_choices(run_dir),
            "takes": R.takes(root, folder),
        }

    def compare(request: Request, _body: Any) -> dict[str, Any]:
        a = R.open_run_dir(root, _param(request, "a"))
        return R.compare(root, a, R.open_run_dir(root, _param(request, "b")))

    # -- generation ----------------------------------------------------------------------
    async def upload(request: Request) -> Response:
        """A seed song as the raw request body, at most --max-upload-mb, decoded as the CLI
        decodes it before it is accepted."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise R.RefusedError(_too_big(max_upload_mb), 413)
        token = secrets.token_hex(8)
        folder = uploads_dir / token
        folder.mkdir()
        target = folder / _plain_name(request.query_params.get("name", "upload"))
        size = 0
        with open(target, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    fh.close()
                    shutil.rmtree(folder, ignore_errors=True)
                    raise R.RefusedError(_too_big(max_upload_mb), 413)
                fh.write(chunk)
        try:
            seconds = await run_in_threadpool(_check_song, target)
        except NoizeNetError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            # the message names the file as the user knows it, not our temporary folder
            raise R.RefusedError(_one_line(exc).replace(str(target), target.name), 400) from None
        uploads[token] = target
        return JSONResponse({"upload": token, "name": target.name, "seconds": seconds})

    def start_generation(_request: Request, body: dict[str, Any]) -> dict[str, Any]:
        run_dir = R.open_run_dir(root, _field(body, "run", str))
        kwargs = _generation_kwargs(body, run_dir, uploads)
        choice = _field(body, "checkpoint", str, "last")
        if choice not in R.checkpoint_choices(run_dir):
            raise R.RefusedError(f"checkpoint {choice!r} is not available for this run", 400)
        kwargs["checkpoint"] = choice
        return generations.start(run_dir, kwargs).view()

    def generation_status(request: Request, _body: Any) -> dict[str, Any]:
        job = generations.get(R.open_run_dir(root, _param(request, "run")))
        if job is None:
            return {"state": "idle"}
        return {**job.view(), "takes": [R.run_id(root, p) for p in job.takes]}

    # -- training ------------------------------------------------------------------------
    def list_presets(_request: Request, _body: Any) -> dict[str, Any]:
        from noizenet.config import DEFAULT_PRESET, PRESETS

        return {
            "presets": [{"name": n, "help": p.help} for n, p in PRESETS.items()],
            "default": DEFAULT_PRESET or "paper",  # what train applies without --preset
        }

    def start_training(_request: Request, body: dict[str, Any]) -> dict[str, Any]:
        name = _field(body, "name", str)
        if not RUN_NAME.match(name):
            raise R.RefusedError(
                "run name: letters, digits, '.', '_' and '-' only (a new folder in RUNS_DIR)"
            )
        run_dir = R.inside(root, name)
        if (run_dir / "run.json").exists():
            raise R.RefusedError(f"{name} already holds a run: resume it instead", 409)
        args = ["--data", _data_source(_field(body, "data", str)), "--out", str(run_dir)]
        trainings.start(run_dir, args + _train_flags(body))
        return {"run": name, "state": "running"}

    def resume_training(_request: Request, body: dict[str, Any]) -> dict[str, Any]:
        rid = _field(body, "run", str)
        run_dir = R.open_run_dir(root, rid)
        args = ["--resume", str(run_dir)]
        if body.get("epochs") not in (None, ""):
            args += ["--epochs", str(_integer("epochs", body["epochs"]))]
        trainings.start(run_dir, args)
        return {"run": rid, "state": "running"}

    def stop_training(_request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return trainings.stop(R.open_run_dir(root, _field(body, "run", str))).view()

    def training_status(request: Request, _body: Any) -> dict[str, Any]:
        run_dir = R.inside(root, _param(request, "run"))
        job = trainings.get(run_dir)
        out: dict[str, Any] = job.view() if job else {"state": "idle", "log": ""}
        if (run_dir / "run.json").is_file():
            out["summary"] = R.summary(root, read_run(run_dir), trainings.running())
        return out

    async def refused(_request: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, R.RefusedError) else 400
        return JSONResponse({"error": _one_line(exc)}, status_code=status)

    async def bug(_request: Request, exc: Exception) -> Response:
        log("".join(traceback.format_exception(exc)))
        return JSONResponse({"error": f"unexpected error: {_one_line(exc)}"}, status_code=500)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(trainings.stop_all)
        shutil.rmtree(uploads_dir, ignore_errors=True)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/file", file),
        Route("/api/runs", api(list_runs)),
        Route("/api/run", api(run_details)),
        Route("/api/compare", api(compare)),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/generate", api(start_generation, 202), methods=["POST"]),
        Route("/api/generate", api(generation_status)),
        Route("/api/presets", api(list_presets)),
        Route("/api/train", api(start_training, 202), methods=["POST"]),
        Route("/api/train", api(training_status)),
        Route("/api/train/resume", api(resume_training, 202), methods=["POST"]),
        Route("/api/train/stop", api(stop_training), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Headers)],
        exception_handlers={NoizeNetError: refused, Exception: bug},
        lifespan=lifespan,
    )
    app.state.root = root
    app.state.generations = generations
    app.state.trainings = trainings
    return app


class _Headers:
    """ASGI middleware: every answer carries the page's content security policy."""

    HEADERS = (
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    )

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


# -- request checking ----------------------------------------------------------------------
async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise R.RefusedError("expected a JSON object") from None
    if not isinstance(body, dict):
        raise R.RefusedError("expected a JSON object")
    return body


_MISSING = object()


def _field(body: dict[str, Any], name: str, kind: type, default: Any = _MISSING) -> Any:
    value = body.get(name, default)
    if value is _MISSING:
        raise R.RefusedError(f"{name}: missing")
    if kind is str and not isinstance(value, str):
        raise R.RefusedError(f"{name}: expected text")
    return value


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise R.RefusedError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise R.RefusedError(f"{name}: expected a finite number, got {value!r}")
    return number


def _integer(name: str, value: Any) -> int:
    number = _number(name, value)
    if number != int(number):
        raise R.RefusedError(f"{name}: expected a whole number, got {value!r}")
    return int(number)


def _generation_kwargs(
    body: dict[str, Any], run_dir: Path, uploads: dict[str, Path]
) -> dict[str, Any]:
    """The page's form as :func:`noizenet.generate.generate`'s keyword arguments; the checks
    the CLI makes before calling it, the rest is generate's own (it names the parameter)."""
    from noizenet.generate.seeds import SeedSpec

    kind = _field(body, "seed", str)
    if kind not in SEED_KINDS:
        raise R.RefusedError(f"seed: one of {', '.join(SEED_KINDS)}, got {kind!r}")
    offset = _number("offset", body.get("offset", 0))
    if offset < 0:
        raise R.RefusedError("offset must be >= 0 seconds")
    if kind == "upload":
        path = uploads.get(_field(body, "upload", str))
        if path is None:
            raise R.RefusedError("upload a seed song first")
        seed = SeedSpec("song", path, offset)
    elif kind == "val":
        seed = SeedSpec("song", R.val_song_path(run_dir, _integer("val", body.get("val"))), offset)
    else:
        seed = SeedSpec(kind)
    kwargs = {
        "seed": seed,
        "seconds": _number("seconds", body.get("seconds", 10)),
        "seed_seconds": _number("seed_seconds", body.get("seed_seconds", 1)),
        "temperature": str(body.get("temperature", "1.0")),
        "top_p": _number("top_p", body.get("top_p", 1)),
        "variations": _integer("variations", body.get("variations", 1)),
        "random_seed": _integer("random_seed", body.get("random_seed", 0)),
    }
    for name in ("seconds", "seed_seconds"):
        if kwargs[name] <= 0:
            raise R.RefusedError(f"{name} must be > 0")
    if not 1 <= kwargs["variations"] <= 64:
        raise R.RefusedError("variations: 1 to 64")
    if kwargs["random_seed"] < 0:
        raise R.RefusedError("random_seed must be >= 0")
    return kwargs


# form field -> config setting: what the Train page sets (flags and types from the config)
TRAIN_FIELDS = {
    "preset": "preset",
    "max_time": "train.max_time",
    "model": "model.cell",
    "codec": "codec.name",
    "hidden": "model.hidden",
    "layers": "model.layers",
    "epochs": "train.epochs",
    "songs": "data.songs",
    "seconds": "data.seconds",
    "val_songs": "data.val_songs",
    "batch": "train.batch",
    "chunk": "train.chunk",
    "lr": "train.lr",
    "seed": "seed",
}


def _train_flags(body: dict[str, Any]) -> list[str]:
    """Form fields as ``noizenet train`` flags; values are checked by train itself (its
    one-line message appears in the log), here only for their type."""
    from noizenet.config import flag_specs

    specs = {spec.dest: spec for spec in flag_specs()}
    args = []
    for name, dest in TRAIN_FIELDS.items():
        value, spec = body.get(name), specs[dest]
        if value in (None, ""):
            continue
        if spec.dest == "train.max_time" and isinstance(value, str) and ":" in value:
            if not re.fullmatch(r"[0-9]{1,4}(:[0-9]{1,2}){1,2}", value):
                raise R.RefusedError(f"{name}: expected SECONDS or [HH:]MM:SS, not {value!r}")
        elif spec.kind is int:
            value = _integer(name, value)
        elif spec.kind is float:
            value = _number(name, value)
        elif not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", value):
            raise R.RefusedError(f"{name}: unexpected value {value!r}")
        args += [spec.flag, str(value)]
    return args


def _data_source(text: str) -> str:
    """The training data: ``embedded`` or an existing folder on this machine."""
    text = text.strip()
    if text == "embedded":
        return text
    folder = Path(text).expanduser()
    if not text or not folder.is_dir():
        raise R.RefusedError(f"data: {text!r} is not a folder on this machine (or use 'embedded')")
    return str(folder.resolve())


def _plain_name(name: str) -> str:
    """An uploaded file's name, kept as the user gave it (it names the takes), without any
    folder part: never a path."""
    name = name.replace("\x00", "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        name = "upload"
    return name[-120:]


def _too_big(limit_mb: float) -> str:
    return f"the file is larger than the upload limit ({limit_mb:g} MB; see --max-upload-mb)"


def _check_song(path: Path) -> float:
    """Decode ``path`` with the CLI's checks; its length in seconds."""
    from noizenet.audio import SAMPLE_RATE, load

    y = load(path, sr=SAMPLE_RATE)
    return round(y.size / SAMPLE_RATE, 2)
