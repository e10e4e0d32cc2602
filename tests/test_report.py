"""The HTML report: what it shows, that outside strings stay text, and that it works offline.

The last test opens the report of a tiny run in a real browser, headless Chromium (Debian's
package), and checks what only a browser can: no console errors, every figure decoded, every
audio player's WAV decodable, a hostile title shown as text with no script run, a phone-width
layout without sideways scrolling. Screenshots go to ``$NOIZENET_ARTIFACTS`` (``.ci/run`` keeps
them). Without Chromium or Playwright that test is skipped locally but fails in CI
(``CI=true``), where ``.ci/run`` installs both: a browser test that silently never runs protects
nothing.
"""

from __future__ import annotations

import base64
import html.parser
import io
import json
import os
import re
import shutil
import tomllib
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf
import tomli_w

from noizenet.cli import main
from noizenet.report import write_report
from noizenet.report.markup import Html, el, esc
from noizenet.run import read_metrics

# Strings an attacker controls: FMA titles and artists, track ids, file names, config strings.
TITLE = "<script>window.__pwned = 'title'; alert(1)</script>"
TRACK_ID = "<script>alert(1)</script>"
ARTIST = "<img src=x onerror=\"window.__pwned='artist'\">"
FILE_STEM = '"><img src=x onerror=alert(1)>'
CONFIG_STRING = "</td><script>window.__pwned='config'</script>"
CACHE_DIR = "\"><svg onload=alert(1)>'"


@pytest.fixture(scope="module")
def hostile_run(tiny_run, tmp_path_factory) -> Path:
    """A copy of the tiny run with a generated take, a take whose file name is an HTML
    payload, a reproduction of the held-out song, and payloads in run.json and config.toml."""
    from noizenet.generate import generate, reproduce

    run = tmp_path_factory.mktemp("hostile") / "run"
    shutil.copytree(tiny_run.path, run)
    (run / "report.html").unlink(missing_ok=True)
    generate(run, seed="white", seconds=0.3, inject="stall:220:0.02:1.0")
    generate(run, seed="perlin", seconds=0.3, out=run / "audio" / f"{FILE_STEM}.wav")

    info = json.loads((run / "run.json").read_text())
    held_out = info["corpus"]["val"][0]
    reproduce(run, held_out["path"], seconds=0.4)
    held_out.update(id=TRACK_ID, title=TITLE, artist=ARTIST)
    (run / "run.json").write_text(json.dumps(info))
    config = tomllib.loads((run / "config.toml").read_text())
    config["data"]["source"] = CONFIG_STRING
    config["data"]["cache_dir"] = CACHE_DIR
    (run / "config.toml").write_text(tomli_w.dumps(config))
    return run


class _Tags(html.parser.HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> _Tags:
    p = _Tags()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_markup_escapes_text_and_attributes_but_not_markup():
    assert esc("<b>&") == "&lt;b&gt;&amp;"
    assert el("p", "<i>", el("b", "x")) == "<p>&lt;i&gt;<b>x</b></p>"
    assert el("a", "t", href='"><script>', class_="k") == (
        '<a href="&quot;&gt;&lt;script&gt;" class="k">t</a>'
    )
    assert el("audio", controls=True, muted=False) == "<audio controls></audio>"
    assert esc(Html("<b>")) == "<b>"


def test_report_shows_every_part_and_escapes_outside_strings(hostile_run, tmp_path):
    out = write_report([hostile_run], tmp_path / "r.html", progress=False)
    page = parse(out)
    tags = [t for t, _ in page.tags]
    text = "".join(page.text)

    # outside strings arrive as text, never as markup
    assert "script" not in tags and "svg" not in tags
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert attrs.get("src") != "x"
    for payload in (TITLE, TRACK_ID, ARTIST, FILE_STEM + ".wav", CONFIG_STRING, CACHE_DIR):
        assert payload in text, payload

    # an audio player for every WAV of the run (two of them the takes made at the end of
    # training) and one for the original song, each resolving to a real file beside the page
    audio = [a["src"] for t, a in page.tags if t == "audio"]
    wavs = sorted((hostile_run / "audio").glob("*.wav"))
    trained = {t["file"].removeprefix("audio/") for t in read_metrics(hostile_run)[-1]["takes"]}
    assert len(wavs) == 5 and len(trained) == 2 and len(audio) == len(wavs) + 1
    resolved = {(out.parent / unquote(src)).resolve() for src in audio}
    assert {w.resolve() for w in wavs} <= resolved
    original = next(p for p in resolved if p.name.startswith("original_"))
    assert original.parent == tmp_path / "r_files"
    assert sf.info(str(original)).frames == round(0.4 * 22050)  # as long as the reproduction

    # every figure has alt text and exists; each WAV has its views (drawn now where missing)
    imgs = [a for t, a in page.tags if t == "img"]
    assert all(a.get("alt") for a in imgs)
    assert all((out.parent / unquote(a["src"])).is_file() for a in imgs)
    srcs = " ".join(unquote(a["src"]) for a in imgs)
    for wav in wavs:  # the training takes' timeline has small spectrograms instead
        suffix = "strip" if wav.name in trained else "views"
        assert f"{wav.stem}_{suffix}.png" in srcs, wav.name
    assert "figures/loss.png" in srcs
    rep = next(w for w in wavs if w.stem.startswith("reproduction_"))
    assert (hostile_run / "figures" / f"{rep.stem}_views.png").is_file()

    # tables: metrics per epoch, the held-out track's title and artist, settings vs defaults
    assert "Per epoch (metrics.jsonl)" in text and "One-step prediction SNR" in text
    snr = float(re.search(r"SNR (-?[\d.]+) dB", text).group(1))
    assert -50 < snr < 100
    assert "Training tracks (3)" in text and "Validation tracks (1)" in text
    assert "seed white, after 2 epochs, noise injection stall, variation 0" in text


def test_evaluation_json_is_shown_when_present(tiny_run, tmp_path):
    # the shape ``noizenet evaluate`` writes: model and baselines as columns of one table
    evaluation = {
        "columns": {
            "NoizeNet": {"snr_db": 15.19, "collapse_s": [0.001], "flatness": None},
            "persistence": {"snr_db": 21.62},
            "LPC-32": {"snr_db": 44.78, "collapse_s": [None]},
        },
        "held_out": [{"id": "guitar/song 2", "seconds": 1.0}],
        "lpc": {"order": 32, "fitted_on": "held-out <b>songs</b>"},
        "created": "2026-11-24T07:11:39+0000",
    }
    runs = []
    for name in ("a", "b"):
        run = tmp_path / name
        shutil.copytree(tiny_run.path, run)
        (run / "evaluation.json").write_text(json.dumps(evaluation))
        runs.append(run)
    source = write_report(runs, tmp_path / "r.html", progress=False).read_text()
    matrix = source[source.index("Measured on held-out tracks, beside the baselines") :]
    matrix = matrix[: matrix.index("</table>")]
    assert '<th scope="col">persistence</th><th scope="col">LPC-32</th>' in matrix
    assert '<th scope="row">snr db</th><td>15.19</td><td>21.62</td><td>44.78</td>' in matrix
    assert '<th scope="row">collapse s</th><td>0.001</td><td></td><td>-</td>' in matrix
    text = "".join(parse(tmp_path / "r.html").text)
    assert "Held-out tracks" in text and "held-out <b>songs</b>" in text
    # the numbers line up run by run in the comparison table
    assert "evaluation.columns.persistence.snr db" in text


def test_inline_report_needs_nothing_beside_it(hostile_run, tmp_path):
    out = write_report([hostile_run], tmp_path / "mail.html", inline=True, progress=False)
    page = parse(out)
    srcs = [a["src"] for t, a in page.tags if t in ("img", "audio")]
    assert srcs and all(
        s.startswith(("data:image/png;base64,", "data:audio/wav;base64,")) for s in srcs
    )
    assert list(tmp_path.iterdir()) == [out]  # no files folder beside it
    audio = [s for s in srcs if s.startswith("data:audio")]
    y, sr = sf.read(io.BytesIO(base64.b64decode(audio[0].split(",", 1)[1])))
    assert sr == 22050 and y.size > 0 and np.all(np.isfinite(y))


def test_several_runs_are_compared_in_aligned_tables(tiny_run, tmp_path):
    runs = []
    for name, cell in (("a", "lstm"), ("b", "gru")):
        run = tmp_path / name / "tiny"  # same folder name: the report must tell them apart
        shutil.copytree(tiny_run.path, run)
        config = tomllib.loads((run / "config.toml").read_text())
        config["model"]["cell"] = cell
        (run / "config.toml").write_text(tomli_w.dumps(config))
        runs.append(run)
    out = write_report(runs, tmp_path / "compare.html", progress=False)
    source = out.read_text()
    text = "".join(parse(out).text)
    assert "a/tiny" in text and "b/tiny" in text
    differ = source[source.index("Settings that differ") :]
    differ = differ[: differ.index("</table>")]
    assert differ.count('<tr class="diff">') == 1 and "model.<wbr>cell" in differ
    assert "lstm" in differ and "gru" in differ
    assert (tmp_path / "compare_files" / "loss_comparison.png").stat().st_size > 1000
    assert 'href="#run-1"' in source and 'id="run-2"' in source


def test_train_writes_the_report(tiny_run):
    text = "".join(parse(tiny_run.path / "report.html").text)
    assert f"Run {tiny_run.path.name}" in text and "Final metrics" in text


def test_report_cli(tiny_run, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(tiny_run.path), "--out", str(out), "--quiet"]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nowhere: not a NoizeNet run folder" in err and "\n" not in err
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0 and "--inline" in capsys.readouterr().out


# -- in a real browser ------------------------------------------------------------------
# Playwright adds --headless and a fresh --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Resolves once every <audio> has its metadata (or an error); the timeout only keeps a broken
# page from hanging the suite, it is not a performance assertion.
AUDIO_METADATA_JS = """
() => Promise.all(Array.from(document.querySelectorAll('audio')).map(a => new Promise(done => {
    const report = () => done({src: a.currentSrc.slice(0, 60), duration: a.duration,
                               error: a.error ? a.error.code : null});
    if (a.readyState >= 1 || a.error) return report();
    a.addEventListener('loadedmetadata', report, {once: true});
    a.addEventListener('error', report, {once: true});
    setTimeout(report, 30000);
    if (a.networkState === HTMLMediaElement.NETWORK_EMPTY) a.load();
})))
"""
IMAGES_JS = """
async () => {
    await Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)));
    return Array.from(document.images).map(i => ({src: i.getAttribute('src').slice(0, 60),
                                                  width: i.naturalWidth, alt: i.alt}));
}
"""


def _browser_or_skip():
    """Playwright's sync API and the Chromium binary; skip (fail in CI) when missing."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    exe = os.environ.get("NOIZENET_CHROMIUM") or shutil.which("chromium")
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[test]')"
    if exe is None:
        problem = "no chromium on PATH (Debian: apt-get install chromium)"
    if problem:
        if in_ci:
            pytest.fail(f"browser test cannot run in CI: {problem}")
        pytest.skip(f"browser test skipped: {problem}")
    return sync_playwright, exe


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("NOIZENET_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("inline", [False, True], ids=["linked", "inline"])
def test_report_in_headless_chromium(hostile_run, tmp_path, artifacts, inline):
    sync_playwright, exe = _browser_or_skip()
    out = write_report([hostile_run], tmp_path / "report.html", inline=inline, progress=False)
    n_wavs = len(list((hostile_run / "audio").glob("*.wav")))
    mode = "inline" if inline else "linked"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            dialogs: list[str] = []
            page.on(
                "console", lambda m: errors.append(m.text) if m.type in ("error", "assert") else 0
            )
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url[:80]}"))

            def on_dialog(dialog):
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.goto(out.as_uri(), wait_until="load")

            images = page.evaluate(IMAGES_JS)
            assert len(images) >= n_wavs + 2  # every take, the original, the loss curve
            for img in images:
                assert img["width"] > 0, f"image did not load: {img}"
                assert img["alt"].strip(), f"image without alt text: {img}"

            players = page.evaluate(AUDIO_METADATA_JS)
            assert len(players) == n_wavs + 1  # every WAV of the run, and the original song
            for a in players:
                assert a["error"] is None and a["duration"] > 0, f"audio not decodable: {a}"

            # hostile strings are text on the page, and nothing of theirs ran
            text = page.inner_text("body")
            for payload in (TITLE, TRACK_ID, ARTIST, FILE_STEM + ".wav"):
                assert payload in text, payload
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert (
                page.evaluate("document.querySelectorAll('script, svg, img[src=\"x\"]').length")
                == 0
            )
            assert dialogs == []

            page.screenshot(path=str(artifacts / f"report-{mode}-desktop.png"), full_page=True)
            page.set_viewport_size({"width": 375, "height": 800})
            page.evaluate(IMAGES_JS)
            # the page fits a phone's width: wide tables scroll inside their own box
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.screenshot(path=str(artifacts / f"report-{mode}-phone.png"), full_page=True)
            assert errors == [], errors
        finally:
            browser.close()
    assert (artifacts / f"report-{mode}-phone.png").stat().st_size > 10_000
