"""examples/quickstart.ipynb runs from top to bottom (issue 17), in a kernel of this very
interpreter, and is kept in the repository without outputs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_notebook_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]


def test_the_quickstart_notebook_executes(tmp_path, monkeypatch):
    nbclient = pytest.importorskip(
        "nbclient", reason="nbclient is not installed: pip install -e '.[docs]' runs the notebook"
    )
    nbformat = pytest.importorskip("nbformat", reason="nbformat comes with the docs extra")
    pytest.importorskip("ipykernel", reason="ipykernel comes with the docs extra")
    # a kernel spec of our own, so the kernel is this interpreter (its venv, its noizenet),
    # whatever kernels the machine has installed
    spec = tmp_path / "jupyter" / "kernels" / "noizenet-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "noizenet test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in Jupyter
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="noizenet-test", resources={"metadata": {"path": str(work)}}
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    outs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outs)
    assert "one-step prediction SNR" in text and "persistence" in text  # the evaluation table
    assert any("<audio" in o.get("data", {}).get("text/html", "") for o in outs)  # a player
    assert any("image/png" in o.get("data", {}) for o in outs)  # the spectrogram, drawn inline
    assert list((work / "runs" / "quickstart" / "audio").glob("gen_white_*.wav"))
    print(f"notebook executed in {elapsed:.1f} s")
