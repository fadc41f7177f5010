"""More cases across the families, in other shapes: classes, CLIs, async code, tests, services."""

from cases import CASES, H, P

H("xss", "CWE-79", "A Flask error handler that shows the requested path on the 404 page.", '''
from flask import Flask, request

app = Flask(__name__)


@app.errorhandler(404)
def not_found(err):
    @@
''', [
    'return f"<h1>Page not found</h1><p>{request.path} does not exist.</p>", 404',
    'return "<h1>Page not found</h1><p>%s does not exist.</p>" % request.path, 404',
], [
    'return f"<h1>Page not found</h1><p>{escape(request.path)} does not exist.</p>", 404',
    'return render_template("404.html", path=request.path), 404',
])

H("xss", "CWE-79", "Class-based Django view that renders a 'thank you' message with the donor's name.", '''
from django.http import HttpResponse
from django.views import View


class ThanksView(View):
    def get(self, request):
        donor = request.GET.get("donor", "friend")
        amount = request.GET.get("amount", "0")
        @@
''', [
    'return HttpResponse(f"<p>Thank you, {donor}, for your gift of ${amount}!</p>")',
    'html = "<p>Thank you, %s, for your gift of $%s!</p>" % (donor, amount)\nreturn HttpResponse(html)',
], [
    'return HttpResponse(format_html("<p>Thank you, {}, for your gift of ${}!</p>", donor, amount))',
    'return render(request, "thanks.html", {"donor": donor, "amount": amount})',
])

H("xss", "CWE-79", "Flask endpoint that returns an HTML snippet listing the tags a user typed, for an htmx page.", '''
from flask import Flask, request

app = Flask(__name__)


@app.post("/tags/preview")
def tags_preview():
    tags = [t.strip() for t in request.form.get("tags", "").split(",") if t.strip()]
    @@
''', [
    'return "".join(f\'<span class="tag">{t}</span>\' for t in tags)',
    'items = ["<li>" + t + "</li>" for t in tags]\nreturn "<ul>" + "".join(items) + "</ul>"',
], [
    'return "".join(f\'<span class="tag">{escape(t)}</span>\' for t in tags)',
    'items = ["<li>" + escape(t) + "</li>" for t in tags]\nreturn "<ul>" + "".join(items) + "</ul>"',
])

H("xss", "CWE-79", "Starlette endpoint that shows a 'welcome back' banner with the name from a cookie.", '''
from starlette.responses import HTMLResponse


async def banner(request):
    name = request.cookies.get("display_name", "")
    @@
''', [
    'return HTMLResponse(f"<div class=\'banner\'>Welcome back, {name}</div>")',
], [
    'return HTMLResponse(f"<div class=\'banner\'>Welcome back, {html.escape(name)}</div>")',
])

H("templates", "CWE-79", "Render a dashboard widget from a Jinja2 template file with user-provided titles.", '''
from pathlib import Path

import jinja2


def render_widget(title, rows):
    source = Path("widgets/table.html").read_text()
    @@
''', [
    'return jinja2.Template(source).render(title=title, rows=rows)',
    'return jinja2.Environment().from_string(source).render(title=title, rows=rows)',
], [
    'return jinja2.Template(source, autoescape=True).render(title=title, rows=rows)',
    'return jinja2.Environment(autoescape=True).from_string(source).render(title=title, rows=rows)',
])

H("templates", "CWE-1336", "A marketing tool lets staff write email templates with placeholders like {{ name }}.", '''
from flask import Flask, request
from jinja2 import Environment

app = Flask(__name__)


@app.post("/campaigns/preview")
def preview_campaign():
    body = request.form["body"]
    customer = {"name": "Ada", "plan": "pro"}
    @@
''', [
    'return Environment().from_string(body).render(**customer)',
    'return render_template_string(body, **customer)',
], [
    'return SandboxedEnvironment(autoescape=True).from_string(body).render(**customer)',
    'return string.Template(body).safe_substitute(customer)',
])

H("redirects", "CWE-601", "Bottle route that records a click on an ad and forwards the visitor to the ad's URL.", '''
from bottle import redirect, request, route

from .ads import record_click


@route("/click")
def click():
    ad_id = request.query.get("ad")
    dest = request.query.get("to")
    record_click(ad_id)
    @@
''', [
    'redirect(dest)',
], [
    'redirect(AD_TARGETS.get(ad_id, "/"))',
])

H("redirects", "CWE-601", "aiohttp handler that redirects to a language-specific page after setting the language.", '''
from aiohttp import web


async def set_language(request):
    lang = request.query.get("lang", "en")
    back = request.query.get("back", "/")
    @@
    resp.set_cookie("lang", lang, secure=True, httponly=True)
    return resp
''', [
    'resp = web.HTTPFound(back)',
], [
    'if not back.startswith("/") or back.startswith("//"):\n    back = "/"\nresp = web.HTTPFound(back)',
])

H("redirects", "CWE-601", "FastAPI: after a payment provider calls back, send the browser to the shop's return URL.", '''
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

app = FastAPI()


@app.get("/payment/done")
async def payment_done(request: Request):
    return_url = request.query_params.get("return_url", "/orders")
    @@
''', [
    'return RedirectResponse(return_url, status_code=303)',
], [
    'if urlparse(return_url).netloc not in ("", "shop.example.com"):\n    return_url = "/orders"\nreturn RedirectResponse(return_url, status_code=303)',
])

H("ssrf", "CWE-918", "Tornado handler that fetches an iCal feed URL a user subscribes to and returns the event count.", '''
import tornado.web
from tornado.httpclient import AsyncHTTPClient


class CalendarImport(tornado.web.RequestHandler):
    async def post(self):
        feed = self.get_body_argument("feed_url")
        @@
        self.write({"events": resp.body.count(b"BEGIN:VEVENT")})
''', [
    'resp = await AsyncHTTPClient().fetch(feed)',
    'resp = await AsyncHTTPClient().fetch(feed, follow_redirects=True)',
], [
    'if urlparse(feed).hostname not in CALENDAR_HOSTS:\n    raise tornado.web.HTTPError(400)\nresp = await AsyncHTTPClient().fetch(feed, follow_redirects=False)',
])

H("ssrf", "CWE-918", "Django view that checks whether a user's website is up.", '''
import requests
from django.http import JsonResponse


def site_status(request):
    site = request.GET["site"]
    @@
    return JsonResponse({"up": ok})
''', [
    'ok = requests.head(site, timeout=3).ok',
    'ok = requests.get(site, timeout=3, allow_redirects=True).status_code < 400',
], [
    'if urlparse(site).scheme != "https" or urlparse(site).hostname in BLOCKED_HOSTS:\n    return JsonResponse({"error": "bad url"}, status=400)\nok = requests.head(site, timeout=3, allow_redirects=False).ok',
])

P("ssrf", "CWE-918", "Sitemap crawler (a scheduled job) that fetches every URL in our own sitemap to warm the cache.", '''
import requests
from flask import Flask, request

app = Flask(__name__)


@app.post("/warm")
def warm():
    sitemap = request.form["sitemap"]
    urls = requests.get(sitemap, timeout=10).text.split()
    for url in urls:
        requests.get(url, timeout=10)
    return {"warmed": len(urls)}
''', '''
import xml.etree.ElementTree as ET

import requests

SITEMAP = "https://www.example.com/sitemap.xml"
NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def warm_cache():
    root = ET.fromstring(requests.get(SITEMAP, timeout=10).content)
    urls = [loc.text for loc in root.findall("sm:url/sm:loc", NS)]
    for url in urls:
        requests.get(url, timeout=10)
    return len(urls)


if __name__ == "__main__":
    print(warm_cache())
''')

H("files", "CWE-22", "Tornado handler that returns a saved chart image by name.", '''
import os

import tornado.web

CHARTS = "/var/lib/charts"


class ChartHandler(tornado.web.RequestHandler):
    def get(self):
        name = self.get_argument("name")
        @@
''', [
    'with open(os.path.join(CHARTS, name), "rb") as fh:\n    self.write(fh.read())',
], [
    'path = os.path.realpath(os.path.join(CHARTS, name))\nif not path.startswith(CHARTS + os.sep):\n    raise tornado.web.HTTPError(404)\nwith open(path, "rb") as fh:\n    self.write(fh.read())',
])

H("files", "CWE-22", "A Flask route that writes an uploaded translation file for a language code.", '''
import os

from flask import Flask, abort, request

app = Flask(__name__)
LOCALES = "/srv/app/locales"


@app.put("/locales/<lang>")
def put_locale(lang):
    @@
    return {"ok": True}
''', [
    'with open(os.path.join(LOCALES, lang + ".json"), "wb") as fh:\n    fh.write(request.get_data())',
    'request.files["file"].save(f"{LOCALES}/{lang}.json")',
], [
    'if not re.fullmatch(r"[a-z]{2}(_[A-Z]{2})?", lang):\n    abort(400)\nwith open(os.path.join(LOCALES, lang + ".json"), "wb") as fh:\n    fh.write(request.get_data())',
    'if lang not in SUPPORTED_LANGS:\n    abort(404)\nrequest.files["file"].save(f"{LOCALES}/{lang}.json")',
])

P("files", "CWE-22", "Rotate the app's own log files: delete all but the newest five.", '''
import os

from fastapi import FastAPI

app = FastAPI()
LOGS = "/var/log/app"


@app.post("/logs/rotate")
def rotate(keep: int = 5, prefix: str = "app"):
    names = sorted(os.listdir(LOGS))
    for name in names[:-keep]:
        os.remove(os.path.join(LOGS, prefix + "/" + name))
    return {"kept": keep}
''', '''
import os
from pathlib import Path

LOGS = Path("/var/log/app")


def rotate(keep=5):
    files = sorted(LOGS.glob("app-*.log"), key=os.path.getmtime)
    for old in files[:-keep]:
        old.unlink()
    return len(files[-keep:])
''')

H("archives", "CWE-22", "Restore a user's project from a zip in a Django view.", '''
import zipfile
from pathlib import Path

from django.http import JsonResponse

PROJECTS = Path("/srv/projects")


def restore_project(request, project_id):
    target = PROJECTS / str(project_id)
    archive = zipfile.ZipFile(request.FILES["archive"])
    @@
    return JsonResponse({"files": len(archive.namelist())})
''', [
    'for name in archive.namelist():\n    (target / name).parent.mkdir(parents=True, exist_ok=True)\n    (target / name).write_bytes(archive.read(name))',
], [
    'for name in archive.namelist():\n    dest = (target / name).resolve()\n    if not dest.is_relative_to(target.resolve()):\n        return JsonResponse({"error": "bad archive"}, status=400)\n    dest.parent.mkdir(parents=True, exist_ok=True)\n    dest.write_bytes(archive.read(name))',
])

H("archives", "CWE-22", "Unpack a dataset tarball that the user gives on the command line.", '''
import argparse
import tarfile


def main():
    p = argparse.ArgumentParser()
    p.add_argument("archive")
    p.add_argument("--dest", default="data")
    args = p.parse_args()
    with tarfile.open(args.archive) as tar:
        @@


if __name__ == "__main__":
    main()
''', [
    'tar.extractall(args.dest)',
], [
    'tar.extractall(args.dest, filter="data")',
])

H("deserialisation", "CWE-502", "Receive game state from the client over a websocket (aiohttp).", '''
from aiohttp import web


async def ws_handler(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        @@
        await ws.send_json({"ok": True, "turn": state.get("turn")})
    return ws
''', [
    'state = pickle.loads(msg.data if isinstance(msg.data, bytes) else msg.data.encode("latin-1"))',
], [
    'state = json.loads(msg.data)',
])

H("deserialisation", "CWE-502", "Import a saved scikit-learn model that users upload.", '''
from flask import Flask, request

app = Flask(__name__)


@app.post("/models")
def upload_model():
    blob = request.files["model"].read()
    @@
    return {"classes": list(map(str, model.classes_))}
''', [
    'model = pickle.loads(blob)',
    'model = joblib.load(io.BytesIO(blob))',
], [
    'model = skops.io.loads(blob, trusted=[])',
    'model = onnx_model_from_bytes(blob)',
])

H("xml", "CWE-611", "Parse a SOAP request body in a Django view.", '''
from django.http import HttpResponse


def soap_endpoint(request):
    @@
    action = doc.getElementsByTagName("Action")[0].firstChild.data
    return HttpResponse(f"<ok>{len(action)}</ok>", content_type="text/xml")
''', [
    'doc = xml.dom.minidom.parseString(request.body)',
    'doc = xml.dom.pulldom.parseString(request.body)',
], [
    'doc = defusedxml.minidom.parseString(request.body)',
    'doc = defusedxml.minidom.parseString(request.body.decode("utf-8"))',
])

H("xml", "CWE-611", "Convert an uploaded XML bank statement into rows (lxml).", '''
def statement_rows(xml_bytes):
    @@
    return [(tx.get("date"), float(tx.get("amount"))) for tx in root.iter("tx")]
''', [
    'root = lxml.etree.fromstring(xml_bytes)',
    'root = lxml.etree.fromstring(xml_bytes, lxml.etree.XMLParser(load_dtd=True, no_network=False))',
], [
    'root = lxml.etree.fromstring(xml_bytes, lxml.etree.XMLParser(resolve_entities=False, no_network=True))',
    'root = defusedxml.ElementTree.fromstring(xml_bytes)',
])

H("tempfiles", "CWE-377", "Render a PDF to a scratch file before uploading it to S3.", '''
def render_and_upload(html, s3, bucket, key):
    @@
    s3.upload_file(path, bucket, key)
''', [
    'path = "/tmp/render.pdf"\nHTML(string=html).write_pdf(path)',
    'path = tempfile.mktemp(suffix=".pdf")\nHTML(string=html).write_pdf(path)',
], [
    'with tempfile.NamedTemporaryFile(suffix=".pdf", delete=False) as fh:\n    path = fh.name\nHTML(string=html).write_pdf(path)',
    'fd, path = tempfile.mkstemp(suffix=".pdf")\nos.close(fd)\nHTML(string=html).write_pdf(path)',
])

H("tempfiles", "CWE-377", "A test fixture that writes a sample config file for the loader tests.", '''
import pytest

from app.config import load


@pytest.fixture
def config_file():
    @@
    return path


def test_loads_port(config_file):
    assert load(config_file)["port"] == 8080
''', [
    'path = "/tmp/test-config.yml"\nopen(path, "w").write("port: 8080\\n")',
], [
    'fd, path = tempfile.mkstemp(suffix=".yml")\nwith os.fdopen(fd, "w") as fh:\n    fh.write("port: 8080\\n")',
])

H("permissions", "CWE-732", "Write the SSH private key that the deploy bot uses.", '''
from pathlib import Path


def store_deploy_key(pem: bytes, home: Path):
    key_path = home / ".ssh" / "deploy_key"
    key_path.parent.mkdir(mode=0o700, exist_ok=True)
    key_path.write_bytes(pem)
    @@
    return key_path
''', [
    'key_path.chmod(0o666)',
    'os.chmod(key_path, 0o777)',
], [
    'key_path.chmod(0o600)',
    'os.chmod(key_path, 0o600)',
])

H("permissions", "CWE-276", "Create the upload folder for a shared hosting account.", '''
import os


def make_upload_dir(account):
    path = f"/home/{account}/public_html/uploads"
    @@
    return path
''', [
    'os.mkdir(path, 0o777)',
    'os.makedirs(path, exist_ok=True)\nos.chmod(path, 0o777)',
], [
    'os.mkdir(path, 0o755)',
    'os.makedirs(path, mode=0o750, exist_ok=True)',
])

H("sql", "CWE-89", "Peewee/SQLite: a search helper used by the CLI to find books by author.", '''
import sqlite3


class Library:
    def __init__(self, path):
        self.db = sqlite3.connect(path)

    def by_author(self, author):
        @@
''', [
    'return self.db.execute("SELECT title FROM books WHERE author LIKE \'%" + author + "%\'").fetchall()',
    'q = f"SELECT title FROM books WHERE author LIKE \'%{author}%\'"\nreturn self.db.execute(q).fetchall()',
], [
    'return self.db.execute("SELECT title FROM books WHERE author LIKE ?", (f"%{author}%",)).fetchall()',
    'q = "SELECT title FROM books WHERE author LIKE ?"\nreturn self.db.execute(q, ("%" + author + "%",)).fetchall()',
])

H("sql", "CWE-89", "Bottle API that returns the count of events of a type, from MySQL.", '''
from bottle import get, request

from .db import connect


@get("/events/count")
def count_events():
    kind = request.query.kind
    conn = connect()
    cur = conn.cursor()
    @@
    return {"count": cur.fetchone()[0]}
''', [
    'cur.execute("SELECT COUNT(*) FROM events WHERE kind = \'%s\'" % kind)',
    'cur.execute("SELECT COUNT(*) FROM events WHERE kind = \'" + kind + "\'")',
], [
    'cur.execute("SELECT COUNT(*) FROM events WHERE kind = %s", (kind,))',
])

H("subprocess", "CWE-78", "FastAPI endpoint that runs `whois` for a domain.", '''
import subprocess

from fastapi import FastAPI, HTTPException

app = FastAPI()


@app.get("/whois")
def whois(domain: str):
    @@
    return {"raw": result}
''', [
    'result = subprocess.getoutput(f"whois {domain}")',
    'result = subprocess.check_output("whois " + domain, shell=True, text=True)',
], [
    'if not re.fullmatch(r"[a-z0-9.-]+", domain):\n    raise HTTPException(400)\nresult = subprocess.run(["whois", domain], capture_output=True, text=True, timeout=20).stdout',
    'result = subprocess.check_output(["whois", "--", domain], text=True)',
])

H("subprocess", "CWE-78", "Print the git log of the repository for the release notes script.", '''
import sys


def release_notes(since_tag):
    @@
    return log.splitlines()


if __name__ == "__main__":
    print("\\n".join(release_notes(sys.argv[1])))
''', [
    'log = os.popen(f"git log --oneline {since_tag}..HEAD").read()',
    'log = subprocess.check_output(f"git log --oneline {since_tag}..HEAD", shell=True, text=True)',
], [
    'log = subprocess.check_output(["git", "log", "--oneline", f"{since_tag}..HEAD"], text=True)',
    'log = subprocess.run(["git", "log", "--oneline", since_tag + "..HEAD"], capture_output=True, text=True, check=True).stdout',
])

H("codeinjection", "CWE-95", "A spreadsheet-like tool computes a column from a formula the user writes, e.g. 'price * qty'.", '''
def compute_column(rows, formula):
    out = []
    for row in rows:
        @@
    return out
''', [
    'out.append(eval(formula, {}, dict(row)))',
], [
    'out.append(simple_eval(formula, names=dict(row)))',
])

H("web", "CWE-489", "Run the Django-like Werkzeug dev server for the admin tool.", '''
from werkzeug.serving import run_simple

from admin.wsgi import application

if __name__ == "__main__":
    @@
''', [
    'run_simple("0.0.0.0", 8000, application, use_debugger=True, use_reloader=True)',
], [
    'run_simple("127.0.0.1", 8000, application, use_reloader=True)',
])

H("web", "CWE-614", "Django login view that sets a cookie remembering the last username.", '''
from django.contrib.auth import authenticate, login
from django.shortcuts import redirect


def login_view(request):
    user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
    if user is None:
        return redirect("/login?failed=1")
    login(request, user)
    response = redirect("/")
    @@
    return response
''', [
    'response.set_cookie("session_hint", request.session.session_key)',
], [
    'response.set_cookie("session_hint", request.session.session_key, secure=True, httponly=True, samesite="Strict")',
])

H("web", "CWE-209", "FastAPI exception handler for database errors.", '''
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

app = FastAPI()


@app.exception_handler(SQLAlchemyError)
async def db_error(request: Request, exc: SQLAlchemyError):
    @@
''', [
    'return JSONResponse(status_code=500, content={"error": str(exc), "query": str(getattr(exc, "statement", ""))})',
], [
    'logger.exception("database error on %s", request.url.path)\nreturn JSONResponse(status_code=500, content={"error": "database error"})',
])

H("secrets", "CWE-798", "Configure the boto3 client for the nightly S3 export.", '''
import boto3


def s3_client():
    @@
''', [
    'return boto3.client("s3", aws_access_key_id="AKIA4QX7PLM2ZR8TNWEB", aws_secret_access_key="q8Zr1vTnM3wXk9LpB2sYh7GdF4cJ0aUe5RiOyNtK")',
], [
    'return boto3.client("s3")',
])

H("secrets", "CWE-798", "Connect to Redis for the rate limiter.", '''
import redis


def limiter_store():
    @@
''', [
    'return redis.Redis(host="cache.prod", port=6379, password="r3d1s-pr0d-p4ss")',
], [
    'return redis.Redis(host="cache.prod", port=6379, password=os.environ.get("REDIS_PASSWORD"))',
])

H("crypto", "CWE-338", "Assign a random session id to a new websocket client.", '''
class Hub:
    def __init__(self):
        self.clients = {}

    def join(self, ws):
        @@
        self.clients[session_id] = ws
        return session_id
''', [
    'session_id = "%032x" % random.getrandbits(128)',
], [
    'session_id = secrets.token_hex(16)',
])

H("crypto", "CWE-916", "Check a user's password at login against the stored hash.", '''
def check_password(user, password):
    @@
''', [
    'return user.password_hash == hashlib.md5(password.encode()).hexdigest()',
], [
    'return bcrypt.checkpw(password.encode(), user.password_hash.encode())',
])
