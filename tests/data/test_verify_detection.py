"""What real insecure-code corpora contain, and what secure code must not be flagged for (issue 15).

Every row goes through one `verify_rows` call (one bandit run) at the default severity.
"""

import ast
import json
import textwrap
from pathlib import Path

import pytest

from postern.data.code import policy
from postern.data.code.scan import verify_rows

ROOT = Path(__file__).resolve().parents[2]

INSECURE = {
    "httpserver-ssrf-with-main-guard": """
        import json
        from http.server import BaseHTTPRequestHandler, HTTPServer
        from urllib.parse import parse_qs, urlparse
        import requests

        def preview(url):
            return requests.get(url, timeout=10).text[:500]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = parse_qs(urlparse(self.path).query).get("url", [""])[0]
                self.send_response(200)
                self.end_headers()
                self.wfile.write(json.dumps({"preview": preview(url)}).encode())

        if __name__ == "__main__":
            HTTPServer(("127.0.0.1", 8000), Handler).serve_forever()
    """,
    "flask-fstring-xss": """
        from flask import Flask, request
        app = Flask(__name__)

        @app.route("/search")
        def search():
            q = request.args.get("q", "")
            return f"<h1>Results for {q}</h1>"
    """,
    "django-percent-xss": """
        from django.http import HttpResponse

        def error_page(request):
            message = request.GET.get("msg", "")
            return HttpResponse("<div class='alert'>%s</div>" % message)
    """,
    "render-template-string-xss": """
        from flask import Flask, request, render_template_string
        app = Flask(__name__)

        @app.route("/hello")
        def hello():
            return render_template_string("<p>Hello " + request.args["name"] + "</p>")
    """,
    "markup-xss": """
        from flask import Flask, request, render_template
        from markupsafe import Markup
        app = Flask(__name__)

        @app.route("/note")
        def note():
            return render_template("note.html", body=Markup(request.args.get("text", "")))
    """,
    "tornado-write-xss": """
        import tornado.web

        class NotFound(tornado.web.RequestHandler):
            def get(self, path):
                self.write("<h1>Not found</h1><p>No page at " + path + "</p>")
    """,
    "jinja-template-autoescape-false": """
        import jinja2

        def render_email(user, note):
            return jinja2.Template("<p>Hi {{ u.name }}</p><p>{{ n }}</p>", autoescape=False).render(u=user, n=note)
    """,
}

SECURE = {
    "assert-in-tests": """
        import pytest
        from app import create_app

        def test_login():
            client = create_app().test_client()
            r = client.post("/login", data={"user": "alice", "password": "correct horse"})
            assert r.status_code == 200
    """,
    "remove-over-glob": """
        import glob
        import os
        import time

        def cleanup_exports(export_dir="/srv/exports"):
            for path in glob.glob(os.path.join(export_dir, "*.csv")):
                if time.time() - os.path.getmtime(path) > 7 * 24 * 3600:
                    os.remove(path)
    """,
    "tmp-with-0o600": """
        import json
        import os

        def dump(items):
            fd = os.open("/tmp/queue-dump.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(items, fh)
    """,
    "link-checker": """
        import sys
        from urllib.parse import urljoin

        import requests
        from bs4 import BeautifulSoup

        def check(page):
            html = requests.get(page, timeout=10).text
            for a in BeautifulSoup(html, "html.parser").find_all("a", href=True):
                link = urljoin(page, a["href"])
                if requests.head(link, timeout=10).status_code >= 400:
                    print(link)

        if __name__ == "__main__":
            check(sys.argv[1])
    """,
    "placeholder-credentials": """
        from acme_sdk import Client

        def main():
            client = Client(api_key="YOUR_API_KEY", password="<password>")
            print(client.projects())
    """,
    "subprocess-constant-list": """
        import subprocess

        def disk_usage():
            return subprocess.check_output(["df", "-h", "/data"], text=True)
    """,
    "escaped-xss": """
        from flask import Flask, request
        from markupsafe import escape
        app = Flask(__name__)

        @app.route("/search")
        def search():
            q = request.args.get("q", "")
            return f"<h1>Results for {escape(q)}</h1>"
    """,
    "jinja-template-autoescape-true": """
        import jinja2

        def render_email(user, note):
            return jinja2.Template("<p>Hi {{ u.name }}</p><p>{{ n }}</p>", autoescape=True).render(u=user, n=note)
    """,
}


def _rows(snippets):
    return [{"messages": [{"role": "user", "content": k}, {"role": "assistant", "content": textwrap.dedent(v)}]}
            for k, v in snippets.items()]


@pytest.fixture(scope="module")
def verdicts():
    rows = _rows(INSECURE) + _rows(SECURE)
    results, summary = verify_rows(rows)
    names = list(INSECURE) + list(SECURE)
    return {n: r for n, r in zip(names, results)}, summary


@pytest.mark.parametrize("name", sorted(INSECURE))
def test_real_corpus_flaws_are_flagged(verdicts, name):
    r = verdicts[0][name]
    assert r.status == "analysed" and r.flagged, (name, [f.rule for f in r.findings])


@pytest.mark.parametrize("name", sorted(SECURE))
def test_secure_code_is_not_flagged_at_the_default(verdicts, name):
    r = verdicts[0][name]
    assert r.status == "analysed" and not r.flagged, (name, [(f.rule, f.severity) for f in r.findings])


def test_suppressions_are_reported_with_their_reason(verdicts):
    suppressed = verdicts[1]["suppressed"]
    assert suppressed["B101"]["why"] == "assert in test code" and suppressed["B108"]["findings"] >= 1
    assert suppressed["B603"]["why"].startswith("constant argument list")


def test_every_policy_rule_is_documented():
    doc = policy.__doc__ or ""
    for rule in [*policy.SUPPRESSIONS, *policy.PRECISE_AT_LOW]:
        assert f"\n{rule}" in doc, rule


def _eval_rows(name):
    return [json.loads(x) for x in (ROOT / "bench" / "code_eval" / name).read_text(encoding="utf-8").splitlines()]


def test_evaluation_set_is_paired_labelled_and_parses():
    ins, sec = _eval_rows("insecure.jsonl"), _eval_rows("secure.jsonl")
    assert len(ins) == len(sec) >= 300
    fams = {r["meta"]["family"] for r in ins}
    assert {"xss", "sql", "files", "archives", "deserialisation", "templates", "subprocess", "crypto", "permissions",
            "redirects", "ssrf", "web"} <= fams
    for a, b in zip(ins, sec):
        assert a["meta"]["pair_id"] == b["meta"]["pair_id"] and a["messages"][0] == b["messages"][0]
        assert a["meta"]["cwe"].startswith("CWE-") and a["messages"][1] != b["messages"][1]
    for r in ins[:40] + sec[:40]:
        from postern.data.code.scan import extract_code

        assert all(ast.parse(u) for u in extract_code([r["messages"][1]["content"]]).units)


@pytest.mark.slow
def test_evaluation_set_recall_and_false_positive_rate():
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    import verify_eval

    res = verify_eval.evaluate()["families"]["ALL"]["default"]
    assert res["recall"] >= 0.95 and res["fpr"] <= 0.05, res
