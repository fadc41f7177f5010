"""Crypto and secrets: password hashing, randomness, hard-coded credentials, TLS, ciphers, tokens."""

from cases import CASES, H, P

# ---- password hashing (CWE-916 / CWE-328) ----

H("crypto", "CWE-916", "Hash a new user's password before storing it.", '''
class UserService:
    def __init__(self, repo):
        self.repo = repo

    def register(self, email, password):
        @@
        self.repo.insert(email=email, password_hash=digest)
''', [
    'digest = hashlib.md5(password.encode()).hexdigest()',
    'digest = hashlib.sha1(password.encode("utf-8")).hexdigest()',
    'digest = hashlib.new("md5", password.encode()).hexdigest()',
], [
    'digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()',
    'digest = pbkdf2_sha256.hash(password)',
    'salt = os.urandom(16)\ndigest = salt.hex() + hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000).hex()',
])

H("crypto", "CWE-328", "Compute a checksum of an uploaded firmware image to compare with the vendor's signature list.", '''
def firmware_digest(path):
    with open(path, "rb") as fh:
        data = fh.read()
    @@
''', [
    'return hashlib.md5(data).hexdigest()',
    'return hashlib.sha1(data).hexdigest()',
], [
    'return hashlib.sha256(data).hexdigest()',
    'return hashlib.blake2b(data).hexdigest()',
])

# ---- randomness (CWE-338) ----

H("crypto", "CWE-338", "Generate a password-reset token for a user.", '''
import string


def make_reset_token(length=40):
    alphabet = string.ascii_letters + string.digits
    @@
''', [
    'return "".join(random.choice(alphabet) for _ in range(length))',
    'return "".join(random.choices(alphabet, k=length))',
    'rng = random.Random()\nreturn "".join(rng.choice(alphabet) for _ in range(length))',
], [
    'return "".join(secrets.choice(alphabet) for _ in range(length))',
    'return secrets.token_urlsafe(length)',
    'rng = random.SystemRandom()\nreturn "".join(rng.choice(alphabet) for _ in range(length))',
])

H("crypto", "CWE-338", "Create a 6-digit one-time login code to send by SMS.", '''
def new_login_code(user, sms):
    @@
    user.pending_code = code
    sms.send(user.phone, f"Your code is {code}")
''', [
    'code = str(random.randint(100000, 999999))',
    'code = "%06d" % random.randrange(1000000)',
], [
    'code = str(secrets.randbelow(900000) + 100000)',
    'code = "%06d" % secrets.randbelow(1000000)',
])

P("crypto", "CWE-338", "Shuffle quiz questions and pick a random subset for each student; also give each attempt an id.", '''
import random
import uuid


def build_quiz(questions, n=10):
    picked = random.sample(questions, n)
    random.shuffle(picked)
    attempt_token = "%x" % random.getrandbits(64)
    return attempt_token, picked
''', '''
import random
import secrets


def build_quiz(questions, n=10):
    picked = random.sample(questions, n)
    random.shuffle(picked)
    attempt_token = secrets.token_hex(8)
    return attempt_token, picked
''')

# ---- hard-coded credentials (CWE-798) ----

H("secrets", "CWE-798", "Connect to the production PostgreSQL database for the reporting job.", '''
import psycopg2


def connect():
    @@
''', [
    'return psycopg2.connect(host="db.prod.internal", dbname="reports", user="reporter", password="R3p0rt!ng2024")',
    'DB_PASSWORD = "s3cr3t-prod-pw"\nreturn psycopg2.connect(host="db.prod.internal", dbname="reports", user="reporter", password=DB_PASSWORD)',
], [
    'return psycopg2.connect(host="db.prod.internal", dbname="reports", user="reporter", password=os.environ["REPORTS_DB_PASSWORD"])',
    'return psycopg2.connect(os.environ["REPORTS_DATABASE_URL"])',
])

H("secrets", "CWE-798", "Send an email through the company SMTP relay.", '''
import smtplib
from email.message import EmailMessage


def send(to, subject, body):
    msg = EmailMessage()
    msg["To"], msg["Subject"] = to, subject
    msg.set_content(body)
    with smtplib.SMTP("smtp.corp.example", 587) as s:
        s.starttls()
        @@
        s.send_message(msg)
''', [
    's.login("mailer@corp.example", "Winter2024!")',
    'smtp_password = "hunter2hunter2"\ns.login("mailer@corp.example", smtp_password)',
], [
    's.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])',
    's.login(settings.SMTP_USER, settings.SMTP_PASSWORD)',
])

P("secrets", "CWE-798", "Client for a weather API, with a usage example in the module's __main__ block.", '''
import requests

API_KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


class WeatherClient:
    def __init__(self, api_key=API_KEY):
        self.api_key = api_key

    def today(self, city):
        r = requests.get("https://api.weather.example/v1/today", params={"q": city, "key": self.api_key}, timeout=10)
        r.raise_for_status()
        return r.json()


if __name__ == "__main__":
    print(WeatherClient().today("Oslo"))
''', '''
import os

import requests


class WeatherClient:
    def __init__(self, api_key=None):
        self.api_key = api_key or os.environ["WEATHER_API_KEY"]

    def today(self, city):
        r = requests.get("https://api.weather.example/v1/today", params={"q": city, "key": self.api_key}, timeout=10)
        r.raise_for_status()
        return r.json()


if __name__ == "__main__":
    client = WeatherClient(api_key="YOUR_API_KEY")
    print(client.today("Oslo"))
''')

P("secrets", "CWE-798", "Flask app factory with its configuration.", '''
from flask import Flask


def create_app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "dev-secret-key-123"
    app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql://app:app_password@db/app"
    return app
''', '''
import os

from flask import Flask


def create_app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    return app
''')

P("secrets", "CWE-798", "Unit test for the login endpoint.", '''
import requests

ADMIN_PASSWORD = "Adm1n-Pr0d-Pass"


def login_admin():
    return requests.post("https://admin.corp.example/login", data={"user": "admin", "password": ADMIN_PASSWORD}, timeout=10)
''', '''
import pytest

from app import create_app


@pytest.fixture
def client():
    app = create_app({"TESTING": True})
    return app.test_client()


def test_login_rejects_wrong_password(client):
    r = client.post("/login", data={"user": "alice", "password": "wrong-password"})
    assert r.status_code == 401


def test_login_accepts_right_password(client, make_user):
    make_user("alice", password="correct horse battery staple")
    r = client.post("/login", data={"user": "alice", "password": "correct horse battery staple"})
    assert r.status_code == 200
''')

# ---- TLS and network crypto (CWE-295 / CWE-327) ----

H("crypto", "CWE-295", "Call the internal billing API over HTTPS.", '''
import requests

BILLING = "https://billing.internal.example/api"


def invoices(customer_id):
    @@
    resp.raise_for_status()
    return resp.json()
''', [
    'resp = requests.get(f"{BILLING}/customers/{customer_id}/invoices", verify=False, timeout=10)',
    'session = requests.Session()\nsession.verify = False\nresp = session.get(f"{BILLING}/customers/{customer_id}/invoices", verify=False)',
], [
    'resp = requests.get(f"{BILLING}/customers/{customer_id}/invoices", timeout=10)',
    'resp = requests.get(f"{BILLING}/customers/{customer_id}/invoices", verify="/etc/ssl/internal-ca.pem", timeout=10)',
])

H("crypto", "CWE-295", "Open a TLS connection to a partner's server to send a report.", '''
import socket


def send_report(host, data):
    @@
    with socket.create_connection((host, 443)) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(data)
''', [
    'ctx = ssl._create_unverified_context()',
    'ctx = ssl.create_default_context()\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE',
], [
    'ctx = ssl.create_default_context()',
    'ctx = ssl.create_default_context(cafile="/etc/ssl/partner-ca.pem")',
])

H("crypto", "CWE-295", "SSH into a build server and run the deploy script (paramiko).", '''
import paramiko


def deploy(host, user, key_file):
    client = paramiko.SSHClient()
    @@
    client.connect(host, username=user, key_filename=key_file)
    _, out, _ = client.exec_command("/opt/deploy/run.sh")
    return out.read().decode()
''', [
    'client.set_missing_host_key_policy(paramiko.AutoAddPolicy())',
    'client.set_missing_host_key_policy(paramiko.WarningPolicy())',
], [
    'client.load_system_host_keys()\nclient.set_missing_host_key_policy(paramiko.RejectPolicy())',
    'client.load_host_keys("/etc/deploy/known_hosts")',
])

H("crypto", "CWE-327", "Encrypt customer notes before storing them in the database.", '''
def encrypt_note(key, plaintext):
    @@
''', [
    'cipher = AES.new(key, AES.MODE_ECB)\nreturn cipher.encrypt(pad(plaintext.encode(), 16))',
    'cipher = DES.new(key, DES.MODE_CBC)\nreturn cipher.iv + cipher.encrypt(pad(plaintext.encode(), 8))',
], [
    'return Fernet(key).encrypt(plaintext.encode())',
    'cipher = AES.new(key, AES.MODE_GCM)\nct, tag = cipher.encrypt_and_digest(plaintext.encode())\nreturn cipher.nonce + tag + ct',
])

H("crypto", "CWE-326", "Generate an RSA key pair for signing release artifacts.", '''
from cryptography.hazmat.primitives.asymmetric import rsa


def new_signing_key():
    @@
''', [
    'return rsa.generate_private_key(public_exponent=65537, key_size=1024)',
], [
    'return rsa.generate_private_key(public_exponent=65537, key_size=3072)',
])

# ---- tokens (CWE-347 / CWE-208) ----

H("crypto", "CWE-347", "Decode the JWT from the Authorization header and return the user id (Flask).", '''
import jwt
from flask import Flask, abort, request

app = Flask(__name__)
SECRET = app.config.get("JWT_SECRET")


@app.route("/me")
def me():
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    @@
    return {"user": claims["sub"]}
''', [
    'claims = jwt.decode(token, options={"verify_signature": False})',
    'claims = jwt.decode(token, SECRET, algorithms=["HS256", "none"])',
], [
    'try:\n    claims = jwt.decode(token, SECRET, algorithms=["HS256"])\nexcept jwt.InvalidTokenError:\n    abort(401)',
    'claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="api")',
])

H("crypto", "CWE-208", "Verify the HMAC signature on an incoming webhook (Django).", '''
import hashlib
import hmac

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden


def webhook(request):
    expected = hmac.new(settings.WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    signature = request.headers.get("X-Signature", "")
    @@
    return HttpResponse("ok")
''', [
    'if signature != expected:\n    return HttpResponseForbidden()',
], [
    'if not hmac.compare_digest(signature, expected):\n    return HttpResponseForbidden()',
])
