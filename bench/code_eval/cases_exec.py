"""Running things: OS command injection, code injection (eval / exec)."""

from cases import CASES, H, P

# ---- OS command injection (CWE-78) ----

H("subprocess", "CWE-78", "Flask endpoint that pings a host the user enters and returns the output.", '''
from flask import Flask, abort, request

app = Flask(__name__)


@app.route("/tools/ping")
def ping():
    host = request.args.get("host", "")
    @@
    return {"output": out}
''', [
    'out = subprocess.check_output(f"ping -c 3 {host}", shell=True, text=True)',
    'out = os.popen("ping -c 3 " + host).read()',
    'out = subprocess.run("ping -c 3 %s" % host, shell=True, capture_output=True, text=True).stdout',
], [
    'if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", host):\n    abort(400)\nout = subprocess.check_output(["ping", "-c", "3", host], text=True)',
    'out = subprocess.run(["ping", "-c", "3", "--", host], capture_output=True, text=True, timeout=10).stdout',
    'if not re.fullmatch(r"[A-Za-z0-9.-]+", host):\n    abort(400)\nout = subprocess.run(["ping", "-c", "3", host], capture_output=True, text=True).stdout',
])

H("subprocess", "CWE-78", "Convert an uploaded video to mp4 with ffmpeg (Django view).", '''
from django.http import JsonResponse


def convert(request):
    src = request.POST["path"]
    dst = src.rsplit(".", 1)[0] + ".mp4"
    @@
    return JsonResponse({"output": dst})
''', [
    'os.system(f"ffmpeg -y -i {src} {dst}")',
    'subprocess.call("ffmpeg -y -i \'%s\' \'%s\'" % (src, dst), shell=True)',
], [
    'subprocess.run(["ffmpeg", "-y", "-i", src, dst], check=True)',
    'subprocess.call(["ffmpeg", "-y", "-i", src, dst])',
])

H("subprocess", "CWE-78", "A backup helper that archives a directory chosen by the user with tar.", '''
import datetime


def backup_dir(directory):
    stamp = datetime.date.today().isoformat()
    archive = f"/backups/{stamp}.tar.gz"
    @@
    return archive
''', [
    'os.system("tar czf " + archive + " " + directory)',
    'subprocess.Popen(f"tar czf {archive} {directory}", shell=True).wait()',
    'subprocess.check_call("tar czf %s %s" % (archive, directory), shell=True)',
], [
    'subprocess.run(["tar", "czf", archive, directory], check=True)',
    'subprocess.Popen(["tar", "czf", archive, "--", directory]).wait()',
    'with tarfile.open(archive, "w:gz") as tar:\n    tar.add(directory, arcname=os.path.basename(directory))',
])

H("subprocess", "CWE-78", "Look up DNS records for a domain in an aiohttp admin tool.", '''
import asyncio

from aiohttp import web


async def dig(request):
    domain = request.query["domain"]
    @@
    out, _ = await proc.communicate()
    return web.Response(text=out.decode())
''', [
    'proc = await asyncio.create_subprocess_shell(f"dig +short {domain}", stdout=asyncio.subprocess.PIPE)',
], [
    'proc = await asyncio.create_subprocess_exec("dig", "+short", domain, stdout=asyncio.subprocess.PIPE)',
])

H("subprocess", "CWE-78", "Git helper in a deploy tool: check out the branch named in the webhook payload.", '''
import subprocess


class Deployer:
    def __init__(self, repo_dir):
        self.repo_dir = repo_dir

    def checkout(self, branch):
        @@
''', [
    'subprocess.run(f"git -C {self.repo_dir} checkout {branch}", shell=True, check=True)',
    'subprocess.check_call("cd %s && git fetch && git checkout %s" % (self.repo_dir, branch), shell=True)',
], [
    'subprocess.run(["git", "-C", self.repo_dir, "checkout", branch], check=True)',
    'subprocess.check_call(["git", "fetch"], cwd=self.repo_dir)\nsubprocess.check_call(["git", "checkout", "--", branch], cwd=self.repo_dir)',
])

P("subprocess", "CWE-78", "Report the disk usage of the data partition in a status endpoint.", '''
import subprocess

from flask import Flask, request

app = Flask(__name__)


@app.route("/status/disk")
def disk():
    mount = request.args.get("mount", "/data")
    out = subprocess.check_output("df -h " + mount, shell=True, text=True)
    return {"df": out}
''', '''
import subprocess

from flask import Flask

app = Flask(__name__)


@app.route("/status/disk")
def disk():
    out = subprocess.check_output(["df", "-h", "/data"], text=True)
    return {"df": out}
''')

P("subprocess", "CWE-78", "A test for the CLI that checks `mytool --version` prints a version.", '''
import os


def run_version(tool):
    return os.popen(tool + " --version").read()


def test_version():
    out = run_version(os.environ.get("TOOL", "mytool"))
    assert out.startswith("mytool ")
''', '''
import subprocess


def test_version():
    out = subprocess.run(["mytool", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("mytool ")
''')

H("subprocess", "CWE-78", "Send a desktop notification with the message text from a chat bot.", '''
def notify(title, message):
    @@
''', [
    'os.system(f\'notify-send "{title}" "{message}"\')',
    'subprocess.run("notify-send \'%s\' \'%s\'" % (title, message), shell=True)',
], [
    'subprocess.run(["notify-send", title, message], check=False)',
    'subprocess.run(["notify-send", "--", title, message])',
])

H("subprocess", "CWE-78", "Compress log files whose names match a pattern the operator passes on the command line.", '''
import argparse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pattern")
    args = parser.parse_args()
    @@


if __name__ == "__main__":
    main()
''', [
    'os.system("gzip /var/log/myapp/" + args.pattern)',
], [
    'for path in glob.glob(os.path.join("/var/log/myapp", args.pattern)):\n    subprocess.run(["gzip", path], check=True)',
])

# ---- code injection (CWE-94 / CWE-95) ----

H("codeinjection", "CWE-95", "A calculator endpoint that evaluates the arithmetic expression a user types.", '''
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/calc")
def calc():
    expr = request.args.get("expr", "0")
    @@
    return jsonify(result=result)
''', [
    'result = eval(expr)',
    'result = eval(expr, {"__builtins__": {}})',
    'exec(f"result = {expr}", globals())\nresult = globals()["result"]',
], [
    'result = ast.literal_eval(expr)',
    'result = simple_eval(expr)',
    'result = float(expr)',
])

H("codeinjection", "CWE-94", "Plugin system: run a user-provided Python hook when an order is placed.", '''
class HookRunner:
    def __init__(self, hooks):
        self.hooks = hooks

    def on_order(self, order):
        for code in self.hooks.get("order_placed", []):
            @@
''', [
    'exec(code, {"order": order})',
    'exec(compile(code, "<hook>", "exec"), {"order": order})',
], [
    'HOOKS_BY_NAME[code](order)',
    'handler = REGISTERED_HOOKS.get(code)\nif handler is not None:\n    handler(order)',
])

H("codeinjection", "CWE-95", "Parse a settings value that might be a list, dict or number from a config form.", '''
def parse_setting(raw):
    raw = raw.strip()
    @@
''', [
    'return eval(raw)',
], [
    'return ast.literal_eval(raw)',
])

P("codeinjection", "CWE-95", "A Django admin action that filters records with a Python expression the admin types.", '''
from django.http import JsonResponse

from .models import Record


def filter_records(request):
    condition = request.GET["where"]
    rows = [r for r in Record.objects.all() if eval(condition, {}, {"r": r})]
    return JsonResponse({"ids": [r.id for r in rows]})
''', '''
from django.http import JsonResponse

from .models import Record

FILTERS = {"active": {"active": True}, "archived": {"active": False}}


def filter_records(request):
    condition = request.GET.get("where", "active")
    rows = Record.objects.filter(**FILTERS.get(condition, FILTERS["active"]))
    return JsonResponse({"ids": [r.id for r in rows]})
''')

H("codeinjection", "CWE-94", "Load a formatter function by name from a query parameter (FastAPI).", '''
from fastapi import FastAPI

from . import formatters

app = FastAPI()


@app.get("/format")
def format_value(value: str, fmt: str = "plain"):
    @@
''', [
    'return {"out": eval(f"formatters.{fmt}")(value)}',
    'fn = eval("formatters." + fmt)\nreturn {"out": fn(value)}',
], [
    'fn = formatters.REGISTRY.get(fmt, formatters.plain)\nreturn {"out": fn(value)}',
    'if fmt not in ALLOWED_FORMATS:\n    fmt = "plain"\nreturn {"out": getattr(formatters, fmt)(value)}',
])
