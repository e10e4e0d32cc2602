"""``noizenet studio`` in headless Chromium (Debian's package, driven by Playwright as the
report's browser test drives it): a take generated from the page plays, two runs compare,
hostile names stay text, and a training job is started, stopped and resumed from the page.

Skipped without Chromium or Playwright, failed under ``CI=true`` (see tests/test_report.py).
The first test's screenshots go to ``$NOIZENET_ARTIFACTS``: ``studio.png`` (a take just
generated: the README's picture) and ``studio-compare.png``.
"""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("starlette", reason="no studio extra (pip install -e '.[studio]')")

from test_report import CHROMIUM_ARGS, _browser_or_skip, artifacts  # noqa: F401
from test_studio import HOSTILE_RUN, HOSTILE_TAKE, studio, studio_runs  # noqa: F401

# a take's player is ready once the browser read its WAV header
DURATION_JS = """
(a) => new Promise((done) => {
    const report = () => done({duration: a.duration, error: a.error && a.error.code});
    if (a.readyState >= 1 || a.error) return report();
    a.addEventListener('loadedmetadata', report, {once: true});
    a.addEventListener('error', report, {once: true});
})
"""
SLOW_MS = 300_000  # the first generation in a process loads torch and the kernels: slow when busy


def _page(browser, errors, dialogs):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "assert") else 0)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    # a player removed while its WAV loads (the takes filter) cancels the request: not a fault
    page.on(
        "requestfailed",
        lambda r: (
            "ERR_ABORTED" in (r.failure or "")
            or errors.append(f"request failed: {r.url[:80]} ({r.failure})")
        ),
    )

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


def test_studio_generates_compares_and_keeps_names_as_text(studio_runs, tmp_path, artifacts):  # noqa: F811
    sync_playwright, exe = _browser_or_skip()
    root = tmp_path / "runs"
    shutil.copytree(studio_runs, root, symlinks=True)
    with studio(root) as s, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            errors: list[str] = []
            dialogs: list[str] = []
            page = _page(browser, errors, dialogs)
            page.goto(s.url + "/", wait_until="load")
            page.wait_for_selector("body[data-ready='1']")

            # Runs: both runs, the hostile folder name as text in its cell
            names = page.locator("#runs-table td.name").all_inner_texts()
            assert sorted(names) == sorted(["tiny", HOSTILE_RUN])
            assert page.locator("#runs-table svg.loss").count() == 2

            # Generate: a white-noise take of 0.3 s from the tiny run, end to end
            page.locator("#runs-table tr[data-run='tiny'] button.use-run").click()
            assert page.locator("#gen-run").input_value() == "tiny"
            page.locator("input[name=seed][value=white]").check()
            page.fill("#gen-seconds", "0.3")
            page.fill("#gen-seed-seconds", "0.2")
            page.click("#gen-go")
            page.wait_for_selector("#gen-takes audio", timeout=SLOW_MS)
            status = page.inner_text("#gen-status")
            assert (
                status.startswith("done: 0.3 s of audio generated in") and "x real time" in status
            )
            player = page.locator("#gen-takes audio").element_handle()
            meta = player.evaluate(DURATION_JS)
            assert meta["error"] is None and abs(meta["duration"] - 0.3) < 0.01, meta
            assert page.inner_text("#gen-takes h3") == "gen_white_e1_v0.wav"
            assert (root / "tiny" / "audio" / "gen_white_e1_v0.wav").is_file()
            spectrogram = page.locator("#gen-takes img").element_handle()
            spectrogram.evaluate("i => i.decode()")
            assert spectrogram.evaluate("i => i.naturalWidth") > 0
            settings = page.inner_text("#gen-takes dl")
            assert "seconds\n0.3" in settings and "seed\nwhite" in settings, settings
            page.screenshot(path=str(artifacts / "studio.png"), full_page=True)

            # Takes: the hostile run's take, its file name as text; the filter hides it
            page.click("nav button[data-tab=takes]")
            page.select_option("#takes-run", HOSTILE_RUN)
            page.wait_for_selector("#takes-list .card")
            assert page.inner_text("#takes-list h3") == HOSTILE_TAKE
            page.fill("#takes-filter", "no such take")
            page.wait_for_selector("#takes-list p.muted")

            # Compare: the learning rate is the setting that differs; both runs' takes shown
            page.select_option("#cmp-a", "tiny")
            page.select_option("#cmp-b", HOSTILE_RUN)
            page.click("#cmp-go")
            page.wait_for_selector("#cmp-out table")
            text = page.inner_text("#cmp-out")
            assert "train.lr" in text and "0.02" in text and HOSTILE_TAKE in text
            assert page.locator("#cmp-out .cmp-side").count() == 2

            # nothing of the hostile names ran or became markup
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.locator("img[src=x], script:not([src])").count() == 0
            assert dialogs == []
            page.screenshot(path=str(artifacts / "studio-compare.png"), full_page=True)
            assert errors == [], errors
        finally:
            browser.close()
    assert (artifacts / "studio.png").stat().st_size > 10_000
    assert (artifacts / "studio-compare.png").stat().st_size > 10_000


def test_studio_starts_stops_and_resumes_training(tmp_path, song_dir):
    sync_playwright, exe = _browser_or_skip()
    root = tmp_path / "runs"
    root.mkdir()
    with studio(root) as s, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            errors: list[str] = []
            page = _page(browser, errors, [])
            page.goto(s.url + "/", wait_until="load")
            page.wait_for_selector("body[data-ready='1']")
            page.click("nav button[data-tab=train]")
            form = {
                "name": "fresh",
                "data": str(song_dir),
                "hidden": "8",
                "epochs": "500",  # far more than it gets to: it is stopped
                "songs": "2",
                "seconds": "1",
                "batch": "4",
                "chunk": "256",
            }
            for name, value in form.items():
                page.fill(f"#train-form [name={name}]", value)
            page.select_option("#train-preset", "paper")  # the presets come from the server
            assert "MSE LSTM" in page.inner_text("#train-preset-help")
            page.click("#train-go")
            status = page.locator("#train-status")
            # the live loss curve: at least one epoch done while the job runs
            page.wait_for_selector("#train-loss svg", timeout=SLOW_MS)
            assert status.get_attribute("data-run-status") == "training now"
            page.click("#train-stop")
            page.wait_for_selector(
                "#train-status[data-state='stopped (resumable)']", timeout=SLOW_MS
            )
            run = root / "fresh"
            info = json.loads((run / "run.json").read_text())
            assert info["status"] == "interrupted"
            assert page.locator("#train-status").get_attribute("data-run-status") == "interrupted"
            assert "Resume with: noizenet train --resume" in page.inner_text("#train-log")
            done = info["metrics"]["epochs"]
            assert 1 <= done < 500

            page.fill("#train-resume-epochs", str(done + 1))
            page.click("#train-resume")
            page.wait_for_selector("#train-status[data-state='finished']", timeout=SLOW_MS)
            info = json.loads((run / "run.json").read_text())
            assert info["status"] == "complete" and info["metrics"]["epochs"] == done + 1
            assert len(info["resumed"]) == 1
            assert f"epoch {done + 1}/{done + 1}" in page.inner_text("#train-log")
            assert errors == [], errors
        finally:
            browser.close()
