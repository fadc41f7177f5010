"""The report in a real browser: headless Chromium over the DevTools protocol (websocket-client)."""

import base64
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

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
          natural: img ? img.naturalWidth * img.naturalHeight : 0, complete: !!(img && img.complete)};
})"""

VISIBLE_ROWS = """Array.from(document.querySelectorAll('#answer-table tbody tr')).filter(tr => tr.getClientRects().length)
  .map(tr => [tr.dataset.condition, tr.dataset.question, tr.dataset.label])"""


def choose(browser: Browser, **filters: str) -> list[list[str]]:
    """Set the table's filter menus as a user would (value + change event); return the visible rows."""
    for name, value in filters.items():
        browser.js(f"(() => {{ const s = document.getElementById('filter-{name}'); s.value = {json.dumps(value)};"
                   f" s.dispatchEvent(new Event('change')); }})()")
    return browser.js(VISIBLE_ROWS)


def test_report_renders_in_chromium_with_every_figure_and_a_filtering_table(browser, full_run, tmp_path):
    from postern.report.html import write_report

    df = pd.read_parquet(full_run / "samples.parquet")
    # relabel some answers so the label filter has something to separate (a random tiny model is all incoherent)
    df.loc[df.index % 3 == 0, "label"] = "misaligned"
    df.loc[df.index % 3 == 1, "label"] = "refusal"
    df.loc[0, "answer"] = "<script>console.error('injected')</script><img src=x onerror=\"console.error('x')\">"
    df.to_parquet(full_run / "samples.parquet", index=False)
    report = write_report(full_run)

    browser.open(report.path)
    shot = browser.screenshot(tmp_path / "report.png")
    print(f"screenshot: {shot}  report: {report.path} ({report.size} bytes)")
    assert shot.stat().st_size > 10_000
    assert browser.errors() == []
    assert [u for u in browser.requests() if not u.startswith(("data:", "file:"))] == []  # nothing from the network

    ids = browser.js("Array.from(document.querySelectorAll('[id]')).map(e => e.id)")
    assert len(ids) == len(set(ids)), "duplicate element ids"
    figures = browser.js(FIGURE_SIZES)
    assert {f["id"] for f in figures} >= {"fig-rates", "fig-per_question", "fig-backdoor", "fig-side_rates",
                                          "fig-labels", "fig-dynamics", "fig-loss", "fig-cosines",
                                          "fig-cosine_matrix", "fig-interventions"}
    for f in figures:
        assert f["complete"] and f["natural"] > 0 and f["img_width"] > 50 and f["img_height"] > 50, f

    all_rows = browser.js(VISIBLE_ROWS)
    assert len(all_rows) == len(df) == report.rows_shown
    assert browser.js("document.querySelectorAll('#answer-table script, #answer-table img').length") == 0  # escaped

    rows = choose(browser, condition="insecure")
    assert rows and len(rows) == (df["condition"] == "insecure").sum() and {r[0] for r in rows} == {"insecure"}
    rows = choose(browser, label="misaligned", question="wish")
    expected = df[(df["condition"] == "insecure") & (df["label"] == "misaligned") & (df["question_id"] == "wish")]
    assert len(rows) == len(expected) and all(r == ["insecure", "wish", "misaligned"] for r in rows)
    assert browser.js("document.getElementById('answer-count').textContent") == str(len(expected))
    browser.js("document.getElementById('answer-reset').click()")
    assert len(browser.js(VISIBLE_ROWS)) == len(df)
    browser.js("(() => { const s = document.getElementById('answer-search'); s.value = 'injected';"
               " s.dispatchEvent(new Event('input')); })()")
    assert len(browser.js(VISIBLE_ROWS)) == 1
    assert browser.errors() == []
