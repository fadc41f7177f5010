"""A held-out part, written after the verifier was tuned on the rest and never used to tune it.

Measured once (see the note of issue 15); its rows carry ``meta.split = "holdout"``.
"""

from cases import CASES, H, P

H("xss", "CWE-79", "Sanic handler that shows a coupon code the user entered on a confirmation page.", '''
from sanic import Sanic
from sanic.response import html

app = Sanic("shop")


@app.post("/coupon")
async def apply_coupon(request):
    code = request.form.get("code", "")
    @@
''', [
    'return html(f"<p>Coupon <b>{code}</b> applied.</p>")',
    'return html("<p>Coupon <b>%s</b> applied.</p>" % code)',
], [
    'return html(f"<p>Coupon <b>{escape(code)}</b> applied.</p>")',
    'return html("<p>Coupon <b>%s</b> applied.</p>" % escape(code))',
])

H("xss", "CWE-79", "Flask view rendering a list of search suggestions as <li> items.", '''
from flask import Flask, request

from .suggest import suggestions_for

app = Flask(__name__)


@app.route("/suggest")
def suggest():
    prefix = request.args.get("p", "")
    items = suggestions_for(prefix)
    @@
''', [
    'body = "<ul>"\nfor item in items:\n    body += "<li>" + item + "</li>"\nbody += "</ul><p>for " + prefix + "</p>"\nreturn body',
], [
    'body = "<ul>"\nfor item in items:\n    body += "<li>" + escape(item) + "</li>"\nbody += "</ul><p>for " + escape(prefix) + "</p>"\nreturn body',
])

P("xss", "CWE-79", "Falcon resource that greets the user by the name in the query string.", '''
import falcon


class Greeting:
    def on_get(self, req, resp):
        name = req.get_param("name") or "there"
        resp.content_type = "text/html"
        resp.text = f"<h2>Hello {name}</h2>"
''', '''
import html

import falcon


class Greeting:
    def on_get(self, req, resp):
        name = req.get_param("name") or "there"
        resp.content_type = "text/html"
        resp.text = f"<h2>Hello {html.escape(name)}</h2>"
''')

H("sql", "CWE-89", "Count a user's unread notifications (psycopg 3).", '''
import psycopg


def unread_count(conninfo, user_id, kind):
    with psycopg.connect(conninfo) as conn:
        @@
''', [
    'return conn.execute(f"SELECT count(*) FROM notes WHERE user_id = {user_id} AND kind = \'{kind}\' AND NOT read").fetchone()[0]',
], [
    'return conn.execute("SELECT count(*) FROM notes WHERE user_id = %s AND kind = %s AND NOT read", (user_id, kind)).fetchone()[0]',
])

H("sql", "CWE-89", "Django management command that deactivates accounts matching a domain.", '''
from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("domain")

    def handle(self, *args, **options):
        with connection.cursor() as cur:
            @@
''', [
    'cur.execute("UPDATE auth_user SET is_active = false WHERE email LIKE \'%%@" + options["domain"] + "\'")',
], [
    'cur.execute("UPDATE auth_user SET is_active = false WHERE email LIKE %s", ["%@" + options["domain"]])',
])

H("files", "CWE-22", "Serve a user's avatar image by file name (Flask).", '''
import os

from flask import Flask, request, send_file

app = Flask(__name__)
AVATARS = "/srv/avatars"


@app.route("/avatar")
def avatar():
    fname = request.args["f"]
    @@
''', [
    'return send_file(AVATARS + os.sep + fname, mimetype="image/png")',
    'full = os.path.normpath(os.path.join(AVATARS, fname))\nreturn send_file(full, mimetype="image/png")',
], [
    'return send_from_directory(AVATARS, fname, mimetype="image/png")',
    'full = os.path.normpath(os.path.join(AVATARS, fname))\nif not full.startswith(AVATARS + os.sep):\n    return "", 404\nreturn send_file(full, mimetype="image/png")',
])

P("files", "CWE-22", "Purge old session files from the session folder at start-up.", '''
import os

from flask import Flask, request

app = Flask(__name__)
SESSIONS = "/var/lib/app/sessions"


@app.post("/sessions/purge")
def purge():
    os.unlink(os.path.join(SESSIONS, request.form["sid"]))
    return "", 204
''', '''
import os
import time
from pathlib import Path

SESSIONS = Path("/var/lib/app/sessions")
MAX_AGE = 24 * 3600


def purge_old_sessions():
    now = time.time()
    for entry in os.scandir(SESSIONS):
        if entry.is_file() and now - entry.stat().st_mtime > MAX_AGE:
            os.remove(entry.path)
''')

H("archives", "CWE-22", "Unpack a theme zip that an admin uploads, with shutil.", '''
import shutil


def install_theme(zip_path, themes_dir):
    @@
    return themes_dir
''', [
    'import tarfile\nwith tarfile.open(zip_path) as tf:\n    tf.extractall(themes_dir)',
], [
    'shutil.unpack_archive(zip_path, themes_dir, filter="data")',
])

H("deserialisation", "CWE-502", "Load user preferences from a cookie-sized blob (Bottle).", '''
import base64

from bottle import request, route


@route("/prefs")
def prefs():
    blob = base64.b64decode(request.get_cookie("prefs", ""))
    @@
    return {"theme": data.get("theme", "light")}
''', [
    'data = pickle.loads(blob)',
    'data = yaml.load(blob, Loader=yaml.Loader)',
], [
    'data = json.loads(blob or b"{}")',
    'data = yaml.safe_load(blob) or {}',
])

H("subprocess", "CWE-78", "Thumbnail images with ImageMagick in a Celery task; the file name comes from the upload.", '''
from celery import shared_task


@shared_task
def make_thumbnail(upload_name):
    src = f"/srv/uploads/{upload_name}"
    dst = f"/srv/thumbs/{upload_name}.png"
    @@
''', [
    'os.system(f"convert {src} -thumbnail 200x200 {dst}")',
    'subprocess.run(f"convert {src} -thumbnail 200x200 {dst}", shell=True, check=True)',
], [
    'subprocess.run(["convert", src, "-thumbnail", "200x200", dst], check=True)',
])

P("subprocess", "CWE-78", "A helper for tests that starts the dev database container.", '''
import os


def start_db(name):
    os.system("docker run -d --name " + name + " postgres:16")
''', '''
import subprocess


def start_db():
    subprocess.run(["docker", "run", "-d", "--name", "test-db", "postgres:16"], check=True)
''')

H("redirects", "CWE-601", "Starlette endpoint that redirects after a newsletter unsubscribe.", '''
from starlette.responses import RedirectResponse


async def unsubscribe(request):
    await request.app.state.newsletter.remove(request.query_params["email"])
    goto = request.query_params.get("goto", "/")
    @@
''', [
    'return RedirectResponse(goto)',
], [
    'if not goto.startswith("/") or goto.startswith("//"):\n    goto = "/"\nreturn RedirectResponse(goto)',
])

H("ssrf", "CWE-918", "Flask endpoint that validates a user's OpenID issuer by fetching its discovery document.", '''
import requests
from flask import Flask, abort, request

app = Flask(__name__)


@app.post("/sso/issuer")
def check_issuer():
    issuer = request.json["issuer"].rstrip("/")
    @@
    return {"ok": "authorization_endpoint" in doc}
''', [
    'doc = requests.get(issuer + "/.well-known/openid-configuration", timeout=5).json()',
], [
    'if urlparse(issuer).hostname not in TRUSTED_ISSUERS:\n    abort(400)\ndoc = requests.get(issuer + "/.well-known/openid-configuration", timeout=5).json()',
])

H("templates", "CWE-79", "Render a notification email body from a Jinja2 template stored in the database.", '''
from jinja2 import Environment


def render_notification(template_source, user):
    @@
    return env.from_string(template_source).render(user=user)
''', [
    'env = Environment()',
], [
    'env = Environment(autoescape=True)',
])

H("permissions", "CWE-732", "Save the downloaded TLS private key for the reverse proxy.", '''
from pathlib import Path


def save_key(pem):
    path = Path("/etc/proxy/tls.key")
    path.write_text(pem)
    @@
''', [
    'path.chmod(0o644 | 0o002)',
    'os.chmod(path, 0o777)',
], [
    'path.chmod(0o600)',
])

H("tempfiles", "CWE-377", "Write the generated nginx config to a staging file before moving it into place.", '''
import os


def stage_config(text):
    @@
    return staging
''', [
    'staging = "/tmp/nginx.conf.new"\nwith open(staging, "w") as fh:\n    fh.write(text)',
], [
    'fd, staging = tempfile.mkstemp(prefix="nginx-", suffix=".conf")\nwith os.fdopen(fd, "w") as fh:\n    fh.write(text)',
])

H("crypto", "CWE-338", "Generate an invite code for a private beta.", '''
def invite_code():
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    @@
''', [
    'return "".join(random.choice(alphabet) for _ in range(10))',
], [
    'return "".join(secrets.choice(alphabet) for _ in range(10))',
])

H("secrets", "CWE-798", "Connect to MongoDB for the analytics job.", '''
from pymongo import MongoClient


def analytics_db():
    @@
    return client["analytics"]
''', [
    'client = MongoClient("mongodb://analytics:Sup3rS3cret!@mongo.prod:27017/")',
    'client = MongoClient(host="mongo.prod", username="analytics", password="Sup3rS3cret!")',
], [
    'client = MongoClient(os.environ["ANALYTICS_MONGO_URI"])',
])

H("web", "CWE-614", "Flask: store the user's cart id in a cookie.", '''
from flask import Flask, make_response

app = Flask(__name__)


@app.post("/cart")
def new_cart():
    resp = make_response({"ok": True})
    @@
    return resp
''', [
    'resp.set_cookie("cart_id", new_cart_id(), samesite="Lax")',
], [
    'resp.set_cookie("cart_id", new_cart_id(), samesite="Lax", secure=True, httponly=True)',
])

H("xml", "CWE-611", "Parse a GPX track a user uploads (ElementTree).", '''
from flask import Flask, request

app = Flask(__name__)


@app.post("/tracks")
def upload_track():
    @@
    return {"points": len(root.findall(".//{*}trkpt"))}
''', [
    'root = ET.fromstring(request.files["gpx"].read())',
], [
    'root = DET.fromstring(request.files["gpx"].read())',
])

H("codeinjection", "CWE-95", "Command-line unit converter that evaluates an expression like '3 * 2.54'.", '''
import sys


def main():
    expr = " ".join(sys.argv[1:])
    @@


if __name__ == "__main__":
    main()
''', [
    'print(eval(expr))',
], [
    'print(simple_eval(expr))',
])
