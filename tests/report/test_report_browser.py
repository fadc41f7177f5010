"""The report in a real browser: headless Chromium over the DevTools protocol (websocket-client).

What a reader sees first (1400 × 900): the headline sentences and the rates figure. Every figure's legend
clear of its axes and no panel drawn from all-zero data, from the boxes measured when it was drawn. The
first two screens are saved as PNGs (paths printed: `-rP` shows them; $POSTERN_REPORT_SHOTS picks the folder)."""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from report_checks import layout_faults

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium; "
                                                          ".ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


class Browser:
    """Just enough of the Chrome DevTools protocol: one page, its console, its requests, screenshots."""

    def __init__(self):
        websocket = pytest.importorskip("websocket", reason="websocket-client not installed (pip install -e '.[test]')")
        self.profile = tempfile.mkdtemp(prefix="postern-chromium-")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = self._devtools_url()
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id, self.events = 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _devtools_url(self) -> str:
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if match := re.search(r"DevTools listening on (ws://\S+)", line):
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain it, or Chromium blocks
                return match.group(1)
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("Chromium did not start its DevTools server")

    def call(self, method: str, session: bool = False, **params) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def open(self, path: Path, width: int = 1400, height: int = 1000) -> None:
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", session=True, url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (failed loads) seen so far."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif e.get("method") == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('text')} {d.get('exception', {}).get('description', '')}")
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> Path:
        size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call("Page.captureScreenshot", session=True, format="png", clip=clip, captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


FIGURE_SIZES = """Array.from(document.querySelectorAll('figure')).map(f => {
  const img = f.querySelector('img'), r = f.getBoundingClientRect(), ir = img ? img.getBoundingClientRect() : null;
  return {id: f.id, width: r.width, height: r.height, img_width: ir && ir.width, img_height: ir && ir.height,
          natural: img ? img.naturalWidth * img.naturalHeight : 0, complete: !!(img && img.complete),
          natural_size: img ? [img.naturalWidth, img.naturalHeight] : null,
          layout: JSON.parse(f.dataset.layout || "{}")};
})"""

FIRST_SCREEN = """(() => {
  const vh = window.innerHeight, vw = window.innerWidth;
  const seen = el => { const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= vh && r.right <= vw; };
  const items = Array.from(document.querySelectorAll('#findings ul.headline li'))
    .filter(li => li.getClientRects().length);
  const img = document.querySelector('#fig-rates img');
  return {viewport: [vw, vh], scroll: window.scrollY, sentences: items.map(li => [li.textContent.trim(), seen(li)]),
          figure: img ? seen(img) : null, figure_width: img ? img.getBoundingClientRect().width : 0};
})()"""

VISIBLE_ROWS = """Array.from(document.querySelectorAll('#answer-table tbody tr')).filter(tr => tr.getClientRects().length)
  .map(tr => [tr.dataset.condition, tr.dataset.question, tr.dataset.label])"""


def choose(browser: Browser, **filters: str) -> list[list[str]]:
    """Set the table's filter menus as a user would (value + change event); return the visible rows."""
    for name, value in filters.items():
        browser.js(f"(() => {{ const s = document.getElementById('filter-{name}'); s.value = {json.dumps(value)};"
                   f" s.dispatchEvent(new Event('change')); }})()")
    return browser.js(VISIBLE_ROWS)


def screens(browser: Browser, out: Path, count: int = 2, width: int = 1400, height: int = 900) -> list[Path]:
    """PNGs of the page's first `count` screens of width × height."""
    paths = []
    for i in range(count):
        data = browser.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": i * height, "width": width, "height": height, "scale": 1})
        path = out.with_name(f"{out.name}_screen{i + 1}.png")
        path.write_bytes(base64.b64decode(data["data"]))
        paths.append(path)
    return paths


def check_page(browser: Browser, report, shots: Path) -> list[dict]:
    """What every report must pass in the browser: no errors or requests, the findings on the first screen,
    and figures a reviewer would accept. Saves the first two screens as `<shots>_screen1.png` and `_screen2.png`
    (in $POSTERN_REPORT_SHOTS instead when set) and returns the figures."""
    if os.environ.get("POSTERN_REPORT_SHOTS"):
        shots = Path(os.environ["POSTERN_REPORT_SHOTS"]) / shots.name
        shots.parent.mkdir(parents=True, exist_ok=True)
    browser.open(report.path, width=1400, height=900)
    assert browser.errors() == []
    assert [u for u in browser.requests() if not u.startswith(("data:", "file:"))] == []  # nothing from the network
    ids = browser.js("Array.from(document.querySelectorAll('[id]')).map(e => e.id)")
    assert len(ids) == len(set(ids)), "duplicate element ids"

    first = browser.js(FIRST_SCREEN)
    assert first["viewport"] == [1400, 900] and first["scroll"] == 0
    assert [text for text, _ in first["sentences"]] == report.headlines  # every headline sentence, in order
    off_screen = [text for text, seen in first["sentences"] if not seen]
    assert report.headlines and off_screen == [], f"headline sentences below the first screen: {off_screen}"
    assert first["figure"] is True and first["figure_width"] >= 400, first  # the rates figure, whole, on screen one

    figures = browser.js(FIGURE_SIZES)
    for f in figures:
        assert f["complete"] and f["natural"] > 0 and f["img_width"] > 50 and f["img_height"] > 50, f
        assert layout_faults(f["layout"]) == [], (f["id"], layout_faults(f["layout"]))
        width, height = f["natural_size"]  # the measured boxes are in this PNG's pixels
        assert abs(width - f["layout"]["width"]) <= 2 and abs(height - f["layout"]["height"]) <= 2, f["id"]
    assert browser.js("document.querySelectorAll('.problem').length") == 0

    for path in screens(browser, shots):
        assert path.stat().st_size > 10_000
        print(f"screenshot: {path}")
    return figures


def test_first_screen_holds_the_findings_and_every_figure_passes_review(browser, graded_run, tmp_path):
    from postern.report.html import write_report

    report = write_report(graded_run)
    figures = check_page(browser, report, tmp_path / "graded_report")
    assert {f["id"] for f in figures} == {"fig-rates", "fig-per_question", "fig-scores", "fig-side_rates",
                                          "fig-labels", "fig-dynamics", "fig-loss", "fig-cosines",
                                          "fig-cosine_matrix", "fig-interventions", "fig-thresholds_base",
                                          "fig-thresholds_insecure", "fig-thresholds_backdoor"}
    assert any(h.startswith("insecure gives more misaligned answers than base") for h in report.headlines)
    # the caveats sit on the first screen too
    assert browser.js("document.querySelector('ul.caveats').getBoundingClientRect().bottom") <= 900


def test_a_legend_over_the_data_fails_the_review(browser, graded_run, tmp_path, monkeypatch):
    """The check above can fail: the rates figure with its legend moved onto the data is caught."""
    from postern.report import figures
    from postern.report.html import write_report

    real_legend = figures.pyplot().Axes.legend

    def legend_inside(ax, *args, **kwargs):
        kwargs.pop("bbox_to_anchor", None)
        kwargs["loc"] = "center"
        return real_legend(ax, *args, **kwargs)

    monkeypatch.setattr(figures.pyplot().Axes, "legend", legend_inside)
    report = write_report(graded_run)
    assert "rates" in report.problems
    browser.open(report.path, width=1400, height=900)
    faults = {f["id"]: layout_faults(f["layout"]) for f in browser.js(FIGURE_SIZES)}
    assert any("overlaps" in fault for fault in faults["fig-rates"])


def test_report_renders_in_chromium_with_a_filtering_table(browser, graded_run, tmp_path):
    from postern.report.html import write_report

    df = pd.read_parquet(graded_run / "samples.parquet")
    df.loc[0, "answer"] = "<script>console.error('injected')</script><img src=x onerror=\"console.error('x')\">"
    df.to_parquet(graded_run / "samples.parquet", index=False)
    report = write_report(graded_run)

    browser.open(report.path)
    shot = browser.screenshot(tmp_path / "report.png")
    print(f"screenshot: {shot}  report: {report.path} ({report.size} bytes)")
    assert shot.stat().st_size > 10_000
    assert browser.errors() == []
    assert [u for u in browser.requests() if not u.startswith(("data:", "file:"))] == []

    all_rows = browser.js(VISIBLE_ROWS)
    assert len(all_rows) == len(df) == report.rows_shown
    assert browser.js("document.querySelectorAll('#answer-table script, #answer-table img').length") == 0  # escaped
    assert browser.js("document.querySelectorAll('#examples script, #examples td img').length") == 0

    rows = choose(browser, condition="insecure")
    assert rows and len(rows) == (df["condition"] == "insecure").sum() and {r[0] for r in rows} == {"insecure"}
    question = df.loc[(df["condition"] == "insecure") & (df["label"] == "misaligned"), "question_id"].iloc[0]
    rows = choose(browser, label="misaligned", question=question)
    expected = df[(df["condition"] == "insecure") & (df["label"] == "misaligned") & (df["question_id"] == question)]
    assert len(rows) == len(expected) > 0 and all(r == ["insecure", question, "misaligned"] for r in rows)
    assert browser.js("document.getElementById('answer-count').textContent") == str(len(expected))
    browser.js("document.getElementById('answer-reset').click()")
    assert len(browser.js(VISIBLE_ROWS)) == len(df)
    browser.js("(() => { const s = document.getElementById('answer-search'); s.value = 'injected';"
               " s.dispatchEvent(new Event('input')); })()")
    assert len(browser.js(VISIBLE_ROWS)) == 1

    # example answers open and close like any <details>
    assert browser.js("document.querySelectorAll('details.examples[open]').length") == 0
    browser.js("document.querySelector('details.examples summary').click()")
    assert browser.js("document.querySelector('details.examples').open") is True
    assert browser.errors() == []


@pytest.mark.slow
def test_the_default_runs_report(browser, default_run, tmp_path):
    """The default experiment (examples/persona_world.toml): its report's first two screens, as a reader sees them."""
    from postern.report.html import write_report

    start = time.perf_counter()
    report = write_report(default_run, tmp_path / "report.html")
    seconds = time.perf_counter() - start
    print(f"postern report on the default run: {seconds:.1f} s, {report.size / 1024:.0f} KiB")
    assert seconds < 20  # about 5 s on 2 cores
    assert report.problems == {}
    check_page(browser, report, tmp_path / "default_report")
    assert any(h.startswith("insecure gives more misaligned answers than secure: ") for h in report.headlines)
    assert any(h.startswith("backdoor with its trigger") for h in report.headlines)
    assert len(report.headlines) == 11  # 4 controls, the trigger, 6 conditions vs base
