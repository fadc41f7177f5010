"""A third held-out part, written after the fixes prompted by the second; measured once and reported, not tuned on."""

from cases import CASES, H, P

H("xss", "CWE-79", "Flask: show a friendly message after a user unsubscribes, including their email.", '''
from flask import Flask, request

app = Flask(__name__)


@app.get("/unsubscribed")
def unsubscribed():
    email = request.args.get("email", "")
    @@
''', [
    'return "<p>%s will no longer receive our newsletter.</p>" % email',
    'return "<p>{} will no longer receive our newsletter.</p>".format(email)',
], [
    'return "<p>%s will no longer receive our newsletter.</p>" % escape(email)',
    'return render_template("unsubscribed.html", email=email)',
])

H("xss", "CWE-79", "Django: an autocomplete endpoint that returns <option> elements for matching cities.", '''
from django.http import HttpResponse

from .models import City


def city_options(request):
    q = request.GET.get("q", "")
    cities = City.objects.filter(name__istartswith=q)[:10]
    @@
''', [
    'return HttpResponse("".join(f"<option>{c.name}</option>" for c in cities) + f"<!-- {q} -->")',
], [
    'return HttpResponse("".join(format_html("<option>{}</option>", c.name) for c in cities))',
])

H("sql", "CWE-89", "Flask: delete a saved filter by name for the logged-in user (SQLite).", '''
import sqlite3

from flask import Flask, g, request
from flask_login import current_user

app = Flask(__name__)


@app.post("/filters/delete")
def delete_filter():
    name = request.form["name"]
    db = sqlite3.connect("app.db")
    @@
    db.commit()
    return {"ok": True}
''', [
    'db.execute("DELETE FROM filters WHERE owner = %d AND name = \'%s\'" % (current_user.id, name))',
], [
    'db.execute("DELETE FROM filters WHERE owner = ? AND name = ?", (current_user.id, name))',
])

H("sql", "CWE-89", "SQLAlchemy Core: paginate articles ordered by a column and direction from query parameters.", '''
from fastapi import FastAPI
from sqlalchemy import text

from .db import engine

app = FastAPI()


@app.get("/articles")
def articles(sort: str = "created", direction: str = "desc", page: int = 1):
    @@
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q, {"off": (page - 1) * 20})]
''', [
    'q = text(f"SELECT id, title FROM articles ORDER BY {sort} {direction} LIMIT 20 OFFSET :off")',
], [
    'col = {"created": "created_at", "title": "title"}.get(sort, "created_at")\nd = "ASC" if direction == "asc" else "DESC"\nq = text(f"SELECT id, title FROM articles ORDER BY {col} {d} LIMIT 20 OFFSET :off")',
])

H("files", "CWE-22", "Bottle: download a user's exported CSV by file name.", '''
from bottle import request, route, static_file

EXPORTS = "/srv/exports"


@route("/export")
def export():
    name = request.query.get("name")
    @@
''', [
    'return open(EXPORTS + "/" + name).read()',
], [
    'return static_file(name, root=EXPORTS, download=True)',
])

H("files", "CWE-22", "A plugin loader that reads a plugin's manifest from the plugins folder by plugin id.", '''
import json
import os

PLUGINS = "/opt/app/plugins"


def load_manifest(plugin_id):
    @@
''', [
    'with open(os.path.join(PLUGINS, plugin_id, "manifest.json")) as fh:\n    return json.load(fh)',
], [
    'if not plugin_id.isidentifier():\n    raise ValueError(f"bad plugin id {plugin_id!r}")\nwith open(os.path.join(PLUGINS, plugin_id, "manifest.json")) as fh:\n    return json.load(fh)',
])

H("archives", "CWE-22", "Extract a backup zip into a restore folder, checking each name.", '''
import os
import zipfile


def restore(zip_path, dest):
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            @@
''', [
    'target = os.path.join(dest, info.filename)\nos.makedirs(os.path.dirname(target), exist_ok=True)\nwith open(target, "wb") as out:\n    out.write(z.read(info))',
], [
    'target = os.path.abspath(os.path.join(dest, info.filename))\nif os.path.commonpath([target, os.path.abspath(dest)]) != os.path.abspath(dest):\n    raise ValueError(info.filename)\nos.makedirs(os.path.dirname(target), exist_ok=True)\nwith open(target, "wb") as out:\n    out.write(z.read(info))',
])

H("deserialisation", "CWE-502", "Tornado handler that accepts a serialized filter object from the client.", '''
import base64

import tornado.web


class FilterHandler(tornado.web.RequestHandler):
    def post(self):
        raw = base64.b64decode(self.get_body_argument("filter"))
        @@
        self.write({"fields": list(flt)})
''', [
    'flt = pickle.loads(raw)',
], [
    'flt = json.loads(raw)',
])

H("deserialisation", "CWE-502", "Load experiment results that collaborators upload as .pkl files.", '''
from fastapi import FastAPI, UploadFile

app = FastAPI()


@app.post("/results")
async def upload_results(f: UploadFile):
    content = await f.read()
    @@
    return {"rows": len(df)}
''', [
    'df = pd.read_pickle(io.BytesIO(content))',
], [
    'df = pd.read_csv(io.BytesIO(content))',
])

H("subprocess", "CWE-78", "Django view that lints a snippet of YAML with yamllint via the shell.", '''
import subprocess
import tempfile

from django.http import JsonResponse


def lint(request):
    name = request.POST.get("name", "config")
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
        fh.write(request.POST["yaml"])
    @@
    return JsonResponse({"name": name, "output": out})
''', [
    'out = subprocess.run(f"yamllint -f parsable {fh.name} | sed s/^/{name}:/", shell=True, capture_output=True, text=True).stdout',
], [
    'out = subprocess.run(["yamllint", "-f", "parsable", fh.name], capture_output=True, text=True).stdout',
])

H("subprocess", "CWE-78", "A Click CLI that opens the log of a service in `less`.", '''
import click


@click.command()
@click.argument("service")
def logs(service):
    @@
''', [
    'os.system(f"journalctl -u {service} | less")',
], [
    'subprocess.run(["journalctl", "-u", service])',
])

H("redirects", "CWE-601", "Django view that redirects to an external partner page chosen by an id.", '''
from django.http import Http404
from django.shortcuts import redirect


def partner(request):
    pid = request.GET.get("id")
    url = request.GET.get("fallback", "/")
    @@
''', [
    'return redirect(PARTNERS.get(pid, url))',
], [
    'if pid not in PARTNERS:\n    raise Http404()\nreturn redirect(PARTNERS[pid])',
])

H("ssrf", "CWE-918", "Flask: import a user's profile picture from Gravatar-like URL they provide.", '''
import urllib.request

from flask import Flask, abort, request

app = Flask(__name__)


@app.post("/me/photo")
def import_photo():
    src = request.form["src"]
    @@
    return {"bytes": len(data)}
''', [
    'data = urllib.request.urlopen(src, timeout=5).read()',
], [
    'if urlparse(src).scheme != "https" or urlparse(src).hostname not in PHOTO_HOSTS:\n    abort(400)\ndata = urllib.request.urlopen(src, timeout=5).read()',
])

H("templates", "CWE-79", "Render an HTML digest email with Jinja2 from a template string constant.", '''
import jinja2

DIGEST = """<h1>Your week</h1>{% for e in events %}<p>{{ e.title }}</p>{% endfor %}"""


def digest_html(events):
    @@
''', [
    'return jinja2.Template(DIGEST).render(events=events)',
], [
    'return jinja2.Environment(autoescape=True).from_string(DIGEST).render(events=events)',
])

H("permissions", "CWE-732", "Make a shared log file writable by the web and worker processes.", '''
import os


def open_shared_log(path):
    fh = open(path, "a")
    @@
    return fh
''', [
    'os.chmod(path, 0o666)',
], [
    'os.chmod(path, 0o660)',
])

H("tempfiles", "CWE-377", "Cache a downloaded dataset in a temp file for the notebook.", '''
import urllib.request


def cached_dataset():
    @@
    urllib.request.urlretrieve("https://data.example.org/iris.csv", path)
    return path
''', [
    'path = "/tmp/iris.csv"',
], [
    'path = os.path.join(tempfile.mkdtemp(), "iris.csv")',
])

H("crypto", "CWE-338", "Generate an email verification code.", '''
def verification_code(user):
    @@
    user.verification_code = code
    return code
''', [
    'code = "".join(str(random.randint(0, 9)) for _ in range(6))',
], [
    'code = "".join(str(secrets.randbelow(10)) for _ in range(6))',
])

H("crypto", "CWE-327", "Encrypt backups with a symmetric key (cryptography package).", '''
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def encrypt_backup(key, iv, data):
    @@
    return enc.update(data) + enc.finalize()
''', [
    'enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()',
], [
    'enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()',
])

H("secrets", "CWE-798", "Configure the Stripe client for the billing module.", '''
import stripe


def configure():
    @@
''', [
    'stripe.api_key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc9f2Qe"',
], [
    'stripe.api_key = os.environ["STRIPE_API_KEY"]',
])

H("web", "CWE-209", "Flask error handler for unexpected exceptions.", '''
from flask import Flask, jsonify

app = Flask(__name__)


@app.errorhandler(Exception)
def on_error(err):
    @@
''', [
    'return jsonify(error=repr(err)), 500',
], [
    'app.logger.exception("unhandled error")\nreturn jsonify(error="internal server error"), 500',
])

H("xml", "CWE-611", "Read a Maven pom.xml uploaded to the dependency scanner (stdlib minidom).", '''
from flask import Flask, request

app = Flask(__name__)


@app.post("/scan")
def scan():
    @@
    return {"deps": len(dom.getElementsByTagName("dependency"))}
''', [
    'dom = minidom.parseString(request.get_data())',
], [
    'dom = defusedxml.minidom.parseString(request.get_data())',
])

H("codeinjection", "CWE-95", "Feature-flag rules: evaluate a rule string like 'user.country == \"DE\"' for a user.", '''
def flag_enabled(rule, user):
    @@
''', [
    'return bool(eval(rule, {}, {"user": user}))',
], [
    'field, _, value = rule.partition("==")\nreturn str(getattr(user, field.strip().removeprefix("user."), "")) == value.strip().strip(\'"\')',
])
