"""A second held-out part, written after the fixes prompted by the first one; measured once, not tuned on."""

from cases import CASES, H, P

H("xss", "CWE-79", "Quart endpoint that echoes a chat message back into an HTML fragment.", '''
from quart import Quart, request

app = Quart(__name__)


@app.post("/chat/echo")
async def echo():
    form = await request.form
    msg = form.get("msg", "")
    @@
''', [
    'return f"<div class=\\"msg\\">{msg}</div>"',
], [
    'return f"<div class=\\"msg\\">{escape(msg)}</div>"',
])

H("xss", "CWE-79", "Flask: build a breadcrumb trail from the path segments of the current URL.", '''
from flask import Flask, request

app = Flask(__name__)


@app.route("/docs/<path:subpath>")
def docs(subpath):
    parts = subpath.split("/")
    @@
    return crumbs + render_doc(subpath)
''', [
    'crumbs = " / ".join(f"<a href=\\"/docs/{p}\\">{p}</a>" for p in parts)',
], [
    'crumbs = " / ".join(f"<a href=\\"/docs/{escape(p)}\\">{escape(p)}</a>" for p in parts)',
])

P("xss", "CWE-79", "Django view that returns an HTML table row for an inline-edit widget.", '''
from django.http import HttpResponse


def row_fragment(request, pk):
    label = request.POST.get("label", "")
    return HttpResponse('<tr data-pk="%d"><td>%s</td></tr>' % (pk, label))
''', '''
from django.http import HttpResponse
from django.utils.html import format_html


def row_fragment(request, pk):
    label = request.POST.get("label", "")
    return HttpResponse(format_html('<tr data-pk="{}"><td>{}</td></tr>', pk, label))
''')

H("sql", "CWE-89", "Look up a product by SKU with the sqlite3 module in a small inventory CLI.", '''
import argparse
import sqlite3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sku")
    args = ap.parse_args()
    db = sqlite3.connect("inventory.db")
    @@
    print(row)


if __name__ == "__main__":
    main()
''', [
    'row = db.execute("SELECT name, qty FROM items WHERE sku = \'" + args.sku + "\'").fetchone()',
], [
    'row = db.execute("SELECT name, qty FROM items WHERE sku = ?", (args.sku,)).fetchone()',
])

H("sql", "CWE-89", "aiosqlite: store a feedback message from a web form.", '''
import aiosqlite
from aiohttp import web


async def feedback(request):
    data = await request.post()
    async with aiosqlite.connect("feedback.db") as db:
        @@
        await db.commit()
    return web.json_response({"ok": True})
''', [
    'await db.execute(f"INSERT INTO feedback (email, body) VALUES (\'{data[\'email\']}\', \'{data[\'body\']}\')")',
], [
    'await db.execute("INSERT INTO feedback (email, body) VALUES (?, ?)", (data["email"], data["body"]))',
])

H("files", "CWE-22", "FastAPI endpoint that returns a generated report by its name.", '''
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

app = FastAPI()
REPORTS = Path("/srv/reports")


@app.get("/reports/{name}")
def get_report(name: str):
    @@
''', [
    'return FileResponse(REPORTS / name)',
    'path = REPORTS / name\nif not path.exists():\n    raise HTTPException(404)\nreturn FileResponse(path)',
], [
    'path = (REPORTS / name).resolve()\nif path.parent != REPORTS.resolve() or not path.exists():\n    raise HTTPException(404)\nreturn FileResponse(path)',
])

P("files", "CWE-22", "Write each uploaded attachment of a Django form into the ticket's folder.", '''
import os

from django.http import JsonResponse


def save_attachments(request, ticket_id):
    folder = f"/srv/tickets/{ticket_id}"
    os.makedirs(folder, exist_ok=True)
    for f in request.FILES.getlist("files"):
        with open(os.path.join(folder, f.name), "wb") as out:
            for chunk in f.chunks():
                out.write(chunk)
    return JsonResponse({"ok": True})
''', '''
import os
import uuid

from django.http import JsonResponse


def save_attachments(request, ticket_id):
    folder = f"/srv/tickets/{int(ticket_id)}"
    os.makedirs(folder, exist_ok=True)
    for f in request.FILES.getlist("files"):
        with open(os.path.join(folder, uuid.uuid4().hex), "wb") as out:
            for chunk in f.chunks():
                out.write(chunk)
    return JsonResponse({"ok": True})
''')

H("archives", "CWE-22", "Import a project template (.tar.gz) that users pick from a URL.", '''
import io
import tarfile

import requests


def import_template(url, dest):
    data = requests.get(url, timeout=30).content
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        @@
''', [
    'tar.extractall(dest)',
], [
    'tar.extractall(dest, filter="data")',
])

H("deserialisation", "CWE-502", "Celery-like worker that loads a task payload from Redis.", '''
import redis

queue = redis.Redis(host="localhost")


def next_task():
    raw = queue.lpop("tasks")
    if raw is None:
        return None
    @@
''', [
    'return pickle.loads(raw)',
    'return dill.loads(raw)',
], [
    'return json.loads(raw)',
])

H("subprocess", "CWE-78", "Flask admin endpoint that runs `du -sh` on a folder chosen by the user.", '''
import subprocess

from flask import Flask, abort, request

app = Flask(__name__)


@app.get("/admin/du")
def du():
    folder = request.args.get("folder", "/srv")
    @@
''', [
    'return subprocess.check_output("du -sh " + folder, shell=True, text=True)',
    'return os.popen(f"du -sh {folder}").read()',
], [
    'if folder not in ALLOWED_FOLDERS:\n    abort(403)\nreturn subprocess.check_output(["du", "-sh", folder], text=True)',
])

P("subprocess", "CWE-78", "Backup script run by cron that dumps the database with pg_dump.", '''
import os
import sys


def dump(dbname):
    os.system(f"pg_dump {dbname} > /backups/{dbname}.sql")


if __name__ == "__main__":
    dump(sys.argv[1])
''', '''
import subprocess
import sys


def dump(dbname):
    with open(f"/backups/{dbname}.sql", "wb") as out:
        subprocess.run(["pg_dump", dbname], stdout=out, check=True)


if __name__ == "__main__":
    dump(sys.argv[1])
''')

H("redirects", "CWE-601", "Flask: redirect to the page the user wants after choosing a language.", '''
from flask import Flask, redirect, request, session

app = Flask(__name__)


@app.post("/lang")
def set_lang():
    session["lang"] = request.form["lang"]
    nxt = request.form.get("next", "/")
    @@
''', [
    'return redirect(nxt)',
], [
    'if urlparse(nxt).netloc or urlparse(nxt).scheme:\n    nxt = "/"\nreturn redirect(nxt)',
])

H("ssrf", "CWE-918", "aiohttp endpoint that fetches oEmbed data for a URL a user pastes.", '''
import aiohttp
from aiohttp import web


async def oembed(request):
    target = request.query["url"]
    @@
    return web.json_response(data)
''', [
    'async with aiohttp.ClientSession() as s:\n    async with s.get(target) as r:\n        data = await r.json()',
], [
    'if urlparse(target).hostname not in OEMBED_PROVIDERS:\n    raise web.HTTPBadRequest()\nasync with aiohttp.ClientSession() as s:\n    async with s.get(f"https://{OEMBED_PROVIDERS[urlparse(target).hostname]}/oembed", params={"url": target}) as r:\n        data = await r.json()',
])

H("templates", "CWE-1336", "Flask: render a user's profile bio, which may contain simple formatting.", '''
from flask import Flask, render_template_string

from .models import User

app = Flask(__name__)


@app.route("/u/<int:uid>")
def profile(uid):
    user = User.query.get_or_404(uid)
    @@
''', [
    'return render_template_string("<h1>{{ u.name }}</h1>" + user.bio, u=user)',
], [
    'return render_template_string("<h1>{{ u.name }}</h1><div>{{ u.bio }}</div>", u=user)',
])

H("permissions", "CWE-276", "Create the socket directory for a local service.", '''
import os


def socket_dir(run_dir="/run/myservice"):
    @@
    return os.path.join(run_dir, "api.sock")
''', [
    'os.makedirs(run_dir, mode=0o777, exist_ok=True)',
], [
    'os.makedirs(run_dir, mode=0o750, exist_ok=True)',
])

H("tempfiles", "CWE-377", "Spool a large upload to disk before processing it.", '''
def spool(stream):
    @@
    return path
''', [
    'path = "/tmp/upload.bin"\nwith open(path, "wb") as fh:\n    for chunk in iter(lambda: stream.read(65536), b""):\n        fh.write(chunk)',
], [
    'with tempfile.NamedTemporaryFile(delete=False, suffix=".bin") as fh:\n    for chunk in iter(lambda: stream.read(65536), b""):\n        fh.write(chunk)\n    path = fh.name',
])

H("crypto", "CWE-916", "Store an API client's secret, hashed, when the client is registered.", '''
def register_client(repo, client_id, client_secret):
    @@
    repo.save(client_id, hashed)
''', [
    'hashed = hashlib.sha256(client_secret.encode()).hexdigest()',
    'hashed = hashlib.md5(client_secret.encode()).hexdigest()',
], [
    'hashed = bcrypt.hashpw(client_secret.encode(), bcrypt.gensalt()).decode()',
])

H("crypto", "CWE-295", "httpx client for an internal service with a private CA.", '''
import httpx


def internal_client():
    @@
''', [
    'return httpx.Client(base_url="https://svc.internal", verify=False)',
], [
    'return httpx.Client(base_url="https://svc.internal", verify="/etc/ssl/internal-ca.pem")',
])

H("secrets", "CWE-798", "Settings module for a Django project (production).", '''
DEBUG = False
ALLOWED_HOSTS = ["app.example.com"]
@@
''', [
    'SECRET_KEY = "django-insecure-7f#k2!q9x@m4$z8w&v1r^t6y"',
], [
    'SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]',
])

H("web", "CWE-489", "Start the FastAPI app with uvicorn from the module.", '''
import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
def ping():
    return {"pong": True}


if __name__ == "__main__":
    @@
''', [
    'uvicorn.run("main:app", host="127.0.0.1", port=8000, reload=True, debug=True)',
], [
    'uvicorn.run("main:app", host="127.0.0.1", port=8000)',
])

H("xml", "CWE-611", "Validate a SAML response document from the identity provider (lxml).", '''
def saml_assertion(xml_bytes):
    @@
    return doc.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
''', [
    'doc = lxml.etree.fromstring(xml_bytes, lxml.etree.XMLParser(load_dtd=True))',
], [
    'doc = defusedxml.lxml.fromstring(xml_bytes)',
])

H("codeinjection", "CWE-94", "A bot command that lets admins run a Python snippet to inspect state.", '''
class AdminCommands:
    def __init__(self, state):
        self.state = state

    def on_message(self, text):
        if text.startswith("!py "):
            @@
''', [
    'return str(eval(text[4:], {"state": self.state}))',
], [
    'return str(self.state.get(text[4:].strip(), "unknown key"))',
])
