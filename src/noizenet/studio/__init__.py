"""``noizenet studio``: a local web page to browse runs, generate and compare takes, and train.

A small FastAPI app (:mod:`noizenet.studio.app`) serving our own page (``static/``: HTML, CSS
and JS, nothing loaded from the network) over a JSON API. Generation and training go through
the same code as the CLI: :func:`noizenet.generate.generate` in a worker thread, and
``python -m noizenet train`` as a child process.

Why not Gradio, which the ML-audio ecosystem uses: measured on this project's 2-core machine,
``import gradio`` alone took 3.9-4.7 s (the studio must answer within 3 s), it sends usage
analytics unless told not to, and it pulls in ~370 MB of packages; FastAPI and uvicorn import
in well under a second and let the page be our own, escaped, offline markup.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from noizenet.errors import NoizeNetError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8765


def _import_server() -> tuple[Any, Any]:
    try:
        import uvicorn

        from noizenet.studio.app import create_app
    except ImportError as exc:
        raise NoizeNetError(
            f"the studio needs FastAPI and uvicorn ({exc.name} is missing): "
            "pip install 'noizenet[studio]'"
        ) from None
    return uvicorn, create_app


def serve(
    runs_dir: str | Path = "runs",
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    max_upload_mb: float = 200.0,
    log: Any = None,
) -> None:
    """Serve the studio over ``runs_dir`` until Ctrl-C.

    Only this machine can reach it unless ``host`` says otherwise; then a warning is printed,
    since the page can read every run below ``runs_dir``, write takes and start training.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise NoizeNetError(f"{runs_dir}: no such folder (the studio shows the runs below it)")
    if not 0 < port < 65536:
        raise NoizeNetError(f"--port must be 1 to 65535, got {port}")
    if not max_upload_mb > 0:
        raise NoizeNetError(f"--max-upload-mb must be > 0, got {max_upload_mb:g}")
    uvicorn, create_app = _import_server()
    if host not in LOCAL_HOSTS:
        log(
            f"warning: the studio listens on {host}, not only this machine: anyone who can reach "
            f"it can listen to, generate in and train runs below {runs_dir}, with no password"
        )
    app = create_app(runs_dir, max_upload_mb=max_upload_mb, log=log)
    shown = f"[{host}]" if ":" in host else host
    log(f"NoizeNet studio: http://{shown}:{port}/ (runs below {runs_dir}); Ctrl-C stops it")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn shut down, then passes Ctrl-C on
        uvicorn.Server(config).run()
    log("studio stopped")
