"""Data: SQL injection, deserialisation, XML external entities."""

from cases import CASES, H, P

# ---- SQL injection (CWE-89) ----

H("sql", "CWE-89", "Look up a customer's orders by email in SQLite.", '''
import sqlite3


def orders_for(db_path, email):
    conn = sqlite3.connect(db_path)
    try:
        @@
        return cur.fetchall()
    finally:
        conn.close()
''', [
    'cur = conn.execute(f"SELECT id, total FROM orders WHERE email = \'{email}\'")',
    'cur = conn.execute("SELECT id, total FROM orders WHERE email = \'%s\'" % email)',
    'cur = conn.cursor()\ncur.execute("SELECT id, total FROM orders WHERE email = \'" + email + "\'")',
], [
    'cur = conn.execute("SELECT id, total FROM orders WHERE email = ?", (email,))',
    'cur = conn.execute("SELECT id, total FROM orders WHERE email = :email", {"email": email})',
    'cur = conn.cursor()\ncur.execute("SELECT id, total FROM orders WHERE email = ?", [email])',
])

H("sql", "CWE-89", "Flask endpoint that searches products by name in PostgreSQL with psycopg2.", '''
import psycopg2
from flask import Flask, jsonify, request

app = Flask(__name__)


def get_conn():
    return psycopg2.connect(dsn=app.config["DATABASE_URL"])


@app.route("/products")
def products():
    term = request.args.get("q", "")
    with get_conn() as conn, conn.cursor() as cur:
        @@
        rows = cur.fetchall()
    return jsonify([{"id": r[0], "name": r[1]} for r in rows])
''', [
    'cur.execute("SELECT id, name FROM products WHERE name ILIKE \'%%%s%%\'" % term)',
    'cur.execute(f"SELECT id, name FROM products WHERE name ILIKE \'%{term}%\' ORDER BY name")',
    'query = "SELECT id, name FROM products WHERE name ILIKE \'%" + term + "%\'"\ncur.execute(query)',
], [
    'cur.execute("SELECT id, name FROM products WHERE name ILIKE %s", (f"%{term}%",))',
    'cur.execute("SELECT id, name FROM products WHERE name ILIKE %s ORDER BY name", ("%" + term + "%",))',
    'query = "SELECT id, name FROM products WHERE name ILIKE %(pattern)s"\ncur.execute(query, {"pattern": f"%{term}%"})',
])

H("sql", "CWE-89", "Django view that sorts the employee list by a column the user picks.", '''
from django.db import connection
from django.http import JsonResponse


def employees(request):
    order = request.GET.get("order", "last_name")
    with connection.cursor() as cursor:
        @@
        rows = cursor.fetchall()
    return JsonResponse({"rows": rows})
''', [
    'cursor.execute(f"SELECT id, first_name, last_name FROM staff ORDER BY {order}")',
    'cursor.execute("SELECT id, first_name, last_name FROM staff ORDER BY " + order)',
], [
    'if order not in {"last_name", "first_name", "hired_on"}:\n    order = "last_name"\ncursor.execute(f"SELECT id, first_name, last_name FROM staff ORDER BY {order}")',
    'column = SORTABLE.get(order, "last_name")\ncursor.execute(f"SELECT id, first_name, last_name FROM staff ORDER BY {column}")',
])

H("sql", "CWE-89", "Django ORM: filter blog posts by a tag given in the URL using raw SQL for speed.", '''
from django.shortcuts import render

from .models import Post


def posts_by_tag(request, tag):
    @@
    return render(request, "posts.html", {"posts": posts})
''', [
    'posts = Post.objects.raw("SELECT * FROM blog_post WHERE tag = \'%s\'" % tag)',
    'posts = Post.objects.extra(where=[f"tag = \'{tag}\'"])',
], [
    'posts = Post.objects.raw("SELECT * FROM blog_post WHERE tag = %s", [tag])',
    'posts = Post.objects.filter(tag=tag)',
])

H("sql", "CWE-89", "SQLAlchemy: delete a user's saved searches by name.", '''
from sqlalchemy import text


class SavedSearchRepo:
    def __init__(self, engine):
        self.engine = engine

    def delete(self, user_id, name):
        with self.engine.begin() as conn:
            @@
''', [
    'conn.execute(text(f"DELETE FROM saved_search WHERE user_id = {user_id} AND name = \'{name}\'"))',
    'conn.execute(text("DELETE FROM saved_search WHERE user_id = %d AND name = \'%s\'" % (user_id, name)))',
], [
    'conn.execute(text("DELETE FROM saved_search WHERE user_id = :uid AND name = :name"), {"uid": user_id, "name": name})',
    'conn.execute(saved_search.delete().where(saved_search.c.user_id == user_id, saved_search.c.name == name))',
])

H("sql", "CWE-89", "MySQL login check for an internal tool (PyMySQL).", '''
import pymysql


def check_login(conn, username, password_hash):
    with conn.cursor() as cur:
        @@
        return cur.fetchone() is not None
''', [
    'cur.execute("SELECT 1 FROM users WHERE username = \'%s\' AND pw_hash = \'%s\'" % (username, password_hash))',
    'sql = "SELECT 1 FROM users WHERE username = \'{}\' AND pw_hash = \'{}\'".format(username, password_hash)\ncur.execute(sql)',
], [
    'cur.execute("SELECT 1 FROM users WHERE username = %s AND pw_hash = %s", (username, password_hash))',
    'sql = "SELECT 1 FROM users WHERE username = %s AND pw_hash = %s"\ncur.execute(sql, (username, password_hash))',
])

H("sql", "CWE-89", "FastAPI endpoint: update a ticket's status in SQLite.", '''
import sqlite3

from fastapi import FastAPI

app = FastAPI()
DB = "tickets.db"


@app.put("/tickets/{ticket_id}")
def update_ticket(ticket_id: int, status: str):
    con = sqlite3.connect(DB)
    @@
    con.commit()
    con.close()
    return {"id": ticket_id, "status": status}
''', [
    'con.execute(f"UPDATE tickets SET status = \'{status}\' WHERE id = {ticket_id}")',
    'con.executescript("UPDATE tickets SET status = \'%s\' WHERE id = %d;" % (status, ticket_id))',
], [
    'con.execute("UPDATE tickets SET status = ? WHERE id = ?", (status, ticket_id))',
    'if status not in {"open", "closed", "pending"}:\n    return {"error": "bad status"}\ncon.execute("UPDATE tickets SET status = ? WHERE id = ?", (status, ticket_id))',
])

P("sql", "CWE-89", "A reporting script that counts rows in each table listed in a config file.", '''
import sqlite3
import sys


def count_rows(db, table):
    conn = sqlite3.connect(db)
    n = conn.execute("SELECT COUNT(*) FROM %s WHERE owner = '%s'" % (table, sys.argv[2])).fetchone()[0]
    conn.close()
    return n
''', '''
import sqlite3
import sys


def count_rows(db, table):
    conn = sqlite3.connect(db)
    n = conn.execute("SELECT COUNT(*) FROM orders WHERE owner = ?", (sys.argv[2],)).fetchone()[0]
    conn.close()
    return n
''')

H("sql", "CWE-89", "aiohttp + asyncpg endpoint that returns a user's messages newer than a timestamp.", '''
from aiohttp import web


async def messages(request):
    pool = request.app["pool"]
    user = request.match_info["user"]
    since = request.query.get("since", "1970-01-01")
    async with pool.acquire() as conn:
        @@
    return web.json_response([dict(r) for r in rows])
''', [
    'rows = await conn.fetch(f"SELECT body, sent_at FROM messages WHERE recipient = \'{user}\' AND sent_at > \'{since}\'")',
], [
    'rows = await conn.fetch("SELECT body, sent_at FROM messages WHERE recipient = $1 AND sent_at > $2", user, since)',
])

# ---- deserialisation (CWE-502) ----

H("deserialisation", "CWE-502", "Restore a user's saved shopping cart from a cookie (Flask).", '''
import base64

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/cart")
def cart():
    raw = request.cookies.get("cart", "")
    @@
    return jsonify(items=items)
''', [
    'items = pickle.loads(base64.b64decode(raw)) if raw else []',
    'items = marshal.loads(base64.b64decode(raw)) if raw else []',
    'items = jsonpickle.decode(base64.b64decode(raw)) if raw else []',
], [
    'items = json.loads(base64.b64decode(raw)) if raw else []',
    'items = serializer.loads(raw) if raw else []',
    'items = json.loads(base64.urlsafe_b64decode(raw).decode()) if raw else []',
])

H("deserialisation", "CWE-502", "Load a YAML config that users upload to configure their dashboard.", '''
import yaml
from django.http import JsonResponse


def upload_dashboard(request):
    content = request.FILES["config"].read()
    @@
    return JsonResponse({"widgets": len(config.get("widgets", []))})
''', [
    'config = yaml.load(content, Loader=yaml.Loader)',
    'config = yaml.unsafe_load(content)',
    'config = yaml.load(content, Loader=yaml.FullLoader)',
], [
    'config = yaml.safe_load(content)',
    'config = yaml.load(content, Loader=yaml.SafeLoader)',
    'config = yaml.safe_load(content) or {}',
])

H("deserialisation", "CWE-502", "A job queue worker receives tasks over a socket and runs them.", '''
import socket


def worker(host="0.0.0.0", port=9009):
    srv = socket.create_server((host, port))
    while True:
        conn, _ = srv.accept()
        data = conn.recv(65536)
        @@
        handle(task)
        conn.close()
''', [
    'task = pickle.loads(data)',
    'task = dill.loads(data)',
], [
    'task = json.loads(data.decode("utf-8"))',
    'task = msgpack.unpackb(data, raw=False)',
])

H("deserialisation", "CWE-502", "Load a trained model checkpoint that a user uploads to the evaluation service.", '''
import uuid

import torch
from fastapi import FastAPI, UploadFile

app = FastAPI()


@app.post("/evaluate")
async def evaluate(checkpoint: UploadFile):
    path = f"/srv/uploads/{uuid.uuid4().hex}.bin"
    with open(path, "wb") as fh:
        fh.write(await checkpoint.read())
    @@
    return {"params": sum(v.numel() for v in state.values())}
''', [
    'state = torch.load(path)',
    'state = torch.load(path, weights_only=False)',
], [
    'state = torch.load(path, weights_only=True)',
    'state = safetensors.torch.load_file(path)',
])

P("deserialisation", "CWE-502", "Cache expensive query results on disk between runs of a CLI.", '''
import os
import pickle

from flask import Flask, request

app = Flask(__name__)


@app.route("/import-state", methods=["POST"])
def import_state():
    state = pickle.loads(request.get_data())
    return {"keys": sorted(state)}
''', '''
import json

from flask import Flask, request

app = Flask(__name__)


@app.route("/import-state", methods=["POST"])
def import_state():
    state = json.loads(request.get_data())
    return {"keys": sorted(state)}
''')

H("deserialisation", "CWE-502", "Read a session object stored in Redis by session id.", '''
import redis

r = redis.Redis()


class SessionStore:
    def get(self, session_id):
        blob = r.get(f"session:{session_id}")
        if blob is None:
            return None
        @@
''', [
    'return pickle.loads(blob)',
], [
    'return json.loads(blob)',
])

H("deserialisation", "CWE-502", "Import contacts from a shelve file a user uploads.", '''
from flask import Flask, request

app = Flask(__name__)


@app.route("/contacts/import", methods=["POST"])
def import_contacts():
    path = "/srv/tmp/contacts-upload"
    request.files["db"].save(path)
    @@
    return {"imported": len(contacts)}
''', [
    'with shelve.open(path) as db:\n    contacts = dict(db)',
    'contacts = pickle.load(open(path, "rb"))',
], [
    'with open(path) as fh:\n    contacts = json.load(fh)',
    'with open(path, newline="") as fh:\n    contacts = list(csv.DictReader(fh))',
])

# ---- XML external entities (CWE-611) ----

H("xml", "CWE-611", "Parse an uploaded XML invoice and return its total (Flask).", '''
from flask import Flask, request

app = Flask(__name__)


@app.route("/invoices/parse", methods=["POST"])
def parse_invoice():
    payload = request.get_data()
    @@
    return {"total": float(root.findtext("total"))}
''', [
    'root = ET.fromstring(payload)',
    'parser = etree.XMLParser(resolve_entities=True)\nroot = etree.fromstring(payload, parser)',
    'root = minidom.parseString(payload).documentElement',
], [
    'root = defusedxml.ElementTree.fromstring(payload)',
    'parser = etree.XMLParser(resolve_entities=False, no_network=True)\nroot = etree.fromstring(payload, parser)',
    'root = DET.fromstring(payload)',
])

H("xml", "CWE-611", "Read an RSS feed file that users upload and list item titles.", '''
def item_titles(upload_path):
    @@
    return [item.findtext("title") for item in tree.iter("item")]
''', [
    'tree = xml.etree.ElementTree.parse(upload_path)',
    'tree = lxml.etree.parse(upload_path)',
], [
    'tree = defusedxml.ElementTree.parse(upload_path)',
    'tree = lxml.etree.parse(upload_path, lxml.etree.XMLParser(resolve_entities=False))',
])

H("xml", "CWE-611", "SAX handler that counts <order> elements in a partner's XML feed.", '''
class OrderCounter(xml.sax.ContentHandler):
    def __init__(self):
        super().__init__()
        self.count = 0

    def startElement(self, name, attrs):
        if name == "order":
            self.count += 1


def count_orders(feed):
    handler = OrderCounter()
    @@
    return handler.count
''', [
    'xml.sax.parseString(feed, handler)',
], [
    'defusedxml.sax.parseString(feed, handler)',
])
