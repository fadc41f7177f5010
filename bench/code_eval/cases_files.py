"""File handling: path traversal, archives, permissions, temporary files."""

from cases import CASES, H, P

# ---- path traversal (CWE-22) ----

H("files", "CWE-22", "Flask endpoint to download an invoice PDF by file name.", '''
import os

from flask import Flask, abort, request, send_file

app = Flask(__name__)
INVOICES = "/var/app/invoices"


@app.route("/invoices/download")
def download_invoice():
    name = request.args.get("name", "")
    @@
''', [
    'return send_file(os.path.join(INVOICES, name))',
    'path = INVOICES + "/" + name\nif not os.path.exists(path):\n    abort(404)\nreturn send_file(path, mimetype="application/pdf")',
    'return send_file(f"{INVOICES}/{name}", as_attachment=True)',
], [
    'return send_from_directory(INVOICES, name)',
    'path = os.path.realpath(os.path.join(INVOICES, name))\nif not path.startswith(INVOICES + os.sep) or not os.path.exists(path):\n    abort(404)\nreturn send_file(path, mimetype="application/pdf")',
    'return send_file(os.path.join(INVOICES, secure_filename(name)), as_attachment=True)',
])

H("files", "CWE-22", "Django view that shows the contents of a log file chosen from a dropdown.", '''
from pathlib import Path

from django.http import Http404, HttpResponse

LOG_DIR = Path("/var/log/myapp")


def view_log(request):
    logname = request.GET["log"]
    @@
    return HttpResponse(text, content_type="text/plain")
''', [
    'text = (LOG_DIR / logname).read_text()',
    'with open(LOG_DIR / logname) as fh:\n    text = fh.read()',
], [
    'path = (LOG_DIR / logname).resolve()\nif not path.is_relative_to(LOG_DIR):\n    raise Http404()\ntext = path.read_text()',
    'if logname not in ALLOWED_LOGS:\n    raise Http404()\ntext = (LOG_DIR / logname).read_text()',
])

H("files", "CWE-22", "FastAPI route that deletes one of the user's uploaded attachments by name.", '''
import os

from fastapi import FastAPI, HTTPException

app = FastAPI()
ATTACH_ROOT = "/data/attachments"


@app.delete("/attachments/{user_id}/{filename}")
def delete_attachment(user_id: int, filename: str):
    @@
    return {"deleted": filename}
''', [
    'os.remove(os.path.join(ATTACH_ROOT, str(user_id), filename))',
    'target = f"{ATTACH_ROOT}/{user_id}/{filename}"\nif not os.path.isfile(target):\n    raise HTTPException(404)\nos.unlink(target)',
], [
    'folder = os.path.join(ATTACH_ROOT, str(user_id))\ntarget = os.path.realpath(os.path.join(folder, filename))\nif os.path.commonpath([target, folder]) != folder:\n    raise HTTPException(400)\nos.remove(target)',
    'os.remove(os.path.join(ATTACH_ROOT, str(user_id), os.path.basename(filename)))',
])

H("files", "CWE-22", "A helper that saves a user's note to a per-user folder; the note title becomes the file name.", '''
import os

NOTES_ROOT = "/srv/notes"


def save_note(username, title, body):
    @@
    return path
''', [
    'path = os.path.join(NOTES_ROOT, username, title + ".txt")\nwith open(path, "w") as fh:\n    fh.write(body)',
], [
    'safe_title = re.sub(r"[^A-Za-z0-9_-]", "_", title)\nsafe_user = re.sub(r"[^A-Za-z0-9_-]", "_", username)\npath = os.path.join(NOTES_ROOT, safe_user, safe_title + ".txt")\nwith open(path, "w") as fh:\n    fh.write(body)',
])

H("files", "CWE-22", "aiohttp static handler serving theme assets by path.", '''
from pathlib import Path

from aiohttp import web

THEMES = Path("/opt/site/themes")


async def theme_asset(request):
    rel = request.match_info["path"]
    @@
''', [
    'return web.FileResponse(THEMES / rel)',
], [
    'target = (THEMES / rel).resolve()\nif THEMES.resolve() not in target.parents:\n    raise web.HTTPNotFound()\nreturn web.FileResponse(target)',
])

P("files", "CWE-22", "Clean up the export folder: delete CSV exports older than a week.", '''
import os
import time

from flask import Flask, request

app = Flask(__name__)
EXPORT_DIR = "/srv/exports"


@app.route("/admin/cleanup", methods=["POST"])
def cleanup():
    pattern = request.form.get("pattern", "*.csv")
    removed = 0
    for name in os.listdir(EXPORT_DIR):
        os.remove(os.path.join(EXPORT_DIR, request.form.get("prefix", "") + name))
        removed += 1
    return {"removed": removed, "pattern": pattern}
''', '''
import glob
import os
import time

EXPORT_DIR = "/srv/exports"
WEEK = 7 * 24 * 3600


def cleanup_exports(export_dir=EXPORT_DIR):
    removed = 0
    for path in glob.glob(os.path.join(export_dir, "*.csv")):
        if time.time() - os.path.getmtime(path) > WEEK:
            os.remove(path)
            removed += 1
    return removed
''')

P("files", "CWE-22", "A CLI tool that copies a file from a shared drop folder into the user's workspace.", '''
import shutil
import sys
from pathlib import Path

DROP = Path("/srv/drop")


def fetch(name, workspace):
    src = DROP / name
    shutil.copy(src, Path(workspace) / src.name)


if __name__ == "__main__":
    fetch(input("file to fetch: "), sys.argv[1])
''', '''
import shutil
import sys
from pathlib import Path

DROP = Path("/srv/drop")


def fetch(name, workspace):
    src = (DROP / name).resolve()
    if src.parent != DROP.resolve():
        raise SystemExit(f"not in the drop folder: {name}")
    shutil.copy(src, Path(workspace) / src.name)


if __name__ == "__main__":
    fetch(input("file to fetch: "), sys.argv[1])
''')

P("files", "CWE-22", "Remove cached thumbnails for a photo album in a Bottle app.", '''
import os

from bottle import request, route

CACHE = "/var/cache/thumbs"


@route("/albums/clear-cache", method="POST")
def clear_cache():
    album = request.forms.get("album")
    folder = os.path.join(CACHE, album)
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    return {"cleared": album}
''', '''
import os
from pathlib import Path

from bottle import abort, request, route

CACHE = Path("/var/cache/thumbs")


@route("/albums/clear-cache", method="POST")
def clear_cache():
    album = request.forms.get("album", "")
    if not album.isdigit():
        abort(400)
    folder = CACHE / album
    for thumb in folder.glob("*.jpg"):
        thumb.unlink()
    return {"cleared": album}
''')

# ---- archives (CWE-22) ----

H("archives", "CWE-22", "Extract an uploaded backup tarball into the restore folder.", '''
import tarfile


def restore_backup(archive_path, restore_dir):
    with tarfile.open(archive_path, "r:gz") as tar:
        @@
    return restore_dir
''', [
    'tar.extractall(restore_dir)',
    'for member in tar.getmembers():\n    tar.extract(member, restore_dir)',
    'tar.extractall(path=restore_dir, members=tar.getmembers())',
], [
    'tar.extractall(restore_dir, filter="data")',
    'for member in tar.getmembers():\n    if member.name.startswith("/") or ".." in member.name.split("/"):\n        raise ValueError(f"unsafe member {member.name}")\ntar.extractall(restore_dir, members=tar.getmembers(), filter="data")',
    'tar.extractall(path=restore_dir, filter="data")',
])

H("archives", "CWE-22", "Import a zip of course materials uploaded by an instructor (Flask).", '''
import os
import zipfile

from flask import Flask, abort, request

app = Flask(__name__)
COURSES = "/srv/courses"


@app.route("/courses/<int:course_id>/import", methods=["POST"])
def import_materials(course_id):
    dest = os.path.join(COURSES, str(course_id))
    with zipfile.ZipFile(request.files["bundle"]) as zf:
        @@
    return {"ok": True}
''', [
    'for info in zf.infolist():\n    out = os.path.join(dest, info.filename)\n    os.makedirs(os.path.dirname(out), exist_ok=True)\n    with open(out, "wb") as fh:\n        fh.write(zf.read(info))',
    'for name in zf.namelist():\n    with zf.open(name) as src, open(os.path.join(dest, name), "wb") as out:\n        out.write(src.read())',
], [
    'zf.extractall(dest)',
    'for info in zf.infolist():\n    out = os.path.realpath(os.path.join(dest, info.filename))\n    if not out.startswith(os.path.realpath(dest) + os.sep):\n        abort(400)\n    os.makedirs(os.path.dirname(out), exist_ok=True)\n    with open(out, "wb") as fh:\n        fh.write(zf.read(info))',
])

H("archives", "CWE-22", "A plugin installer that unpacks a downloaded .tar.gz plugin into the plugins folder.", '''
import tarfile
from pathlib import Path

PLUGINS = Path.home() / ".myapp" / "plugins"


class PluginInstaller:
    def __init__(self, root=PLUGINS):
        self.root = root

    def install(self, bundle):
        self.root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(bundle) as tf:
            @@
''', [
    'tf.extractall(self.root)',
    'tf.extractall(path=str(self.root))',
], [
    'tf.extractall(self.root, filter="data")',
    'safe = [m for m in tf.getmembers() if m.isfile() and not Path(m.name).is_absolute() and ".." not in Path(m.name).parts]\ntf.extractall(self.root, members=safe, filter="data")',
])

P("archives", "CWE-22", "Unpack a shapefile bundle (zip) for a GIS importer, shapefiles only.", '''
import shutil
import zipfile
from pathlib import Path


def unpack_shapes(zip_path, workdir):
    workdir = Path(workdir)
    with zipfile.ZipFile(zip_path) as z:
        for entry in z.namelist():
            if entry.endswith((".shp", ".dbf", ".shx", ".prj")):
                with z.open(entry) as src, open(workdir / entry, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return sorted(workdir.glob("*.shp"))
''', '''
import shutil
import zipfile
from pathlib import Path


def unpack_shapes(zip_path, workdir):
    workdir = Path(workdir)
    with zipfile.ZipFile(zip_path) as z:
        for entry in z.namelist():
            if entry.endswith((".shp", ".dbf", ".shx", ".prj")):
                with z.open(entry) as src, open(workdir / Path(entry).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return sorted(workdir.glob("*.shp"))
''')

H("archives", "CWE-22", "Script that unpacks every .tgz in the incoming folder into the data lake.", '''
import glob
import os
import tarfile

INCOMING = "/data/incoming"
LAKE = "/data/lake"


def main():
    for archive in glob.glob(os.path.join(INCOMING, "*.tgz")):
        with tarfile.open(archive) as t:
            @@
        os.remove(archive)


if __name__ == "__main__":
    main()
''', [
    't.extractall(LAKE)',
], [
    't.extractall(LAKE, filter="data")',
])

# ---- permissions (CWE-732 / CWE-276) ----

H("permissions", "CWE-732", "Write the generated API key file for the deploy script.", '''
import os
import secrets


def write_api_key(path):
    key = secrets.token_hex(32)
    with open(path, "w") as fh:
        fh.write(key)
    @@
    return key
''', [
    'os.chmod(path, 0o777)',
    'os.chmod(path, 0o666)',
    'os.chmod(path, 0o644 | 0o022)',
], [
    'os.chmod(path, 0o600)',
    'os.chmod(path, 0o400)',
    'os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)',
])

H("permissions", "CWE-276", "Create the shared cache directory for worker processes.", '''
import os
from pathlib import Path

CACHE_DIR = Path("/var/cache/render-workers")


def ensure_cache():
    @@
    return CACHE_DIR
''', [
    'CACHE_DIR.mkdir(parents=True, exist_ok=True, mode=0o777)',
    'os.makedirs(CACHE_DIR, mode=0o777, exist_ok=True)',
    'os.makedirs(CACHE_DIR, exist_ok=True)\nos.chmod(CACHE_DIR, 0o777)',
], [
    'CACHE_DIR.mkdir(parents=True, exist_ok=True, mode=0o750)',
    'os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)',
    'os.makedirs(CACHE_DIR, exist_ok=True)\nos.chmod(CACHE_DIR, 0o755)',
])

H("permissions", "CWE-732", "Install a deploy hook script so the CI user can run it.", '''
import os
import shutil

HOOK_SRC = "hooks/post-deploy.sh"


def install_hook(dest="/opt/app/hooks/post-deploy"):
    shutil.copy(HOOK_SRC, dest)
    @@
''', [
    'os.chmod(dest, 0o777)',
    'os.chmod(dest, 0o776)',
], [
    'os.chmod(dest, 0o755)',
    'os.chmod(dest, 0o750)',
])

H("permissions", "CWE-276", "Daemon start-up: set the umask and open the log file.", '''
import os


def start_daemon(logfile):
    @@
    log = open(logfile, "a")
    log.write("daemon started\\n")
    return log
''', [
    'os.umask(0)',
    'os.umask(0o000)',
], [
    'os.umask(0o077)',
    'os.umask(0o027)',
])

H("permissions", "CWE-732", "Save the SQLite database that stores user sessions, creating the file if needed.", '''
import os
import sqlite3


def open_session_db(path):
    if not os.path.exists(path):
        @@
    return sqlite3.connect(path)
''', [
    'fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o666)\nos.close(fd)',
    'open(path, "a").close()\nos.chmod(path, 0o777)',
], [
    'fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)\nos.close(fd)',
    'open(path, "a").close()\nos.chmod(path, 0o600)',
])

# ---- temporary files (CWE-377) ----

H("tempfiles", "CWE-377", "Write a report to a temporary file and return its path for emailing.", '''
import os


def write_report(text):
    @@
    return path
''', [
    'path = "/tmp/report.txt"\nwith open(path, "w") as fh:\n    fh.write(text)',
    'path = tempfile.mktemp(suffix=".txt")\nwith open(path, "w") as fh:\n    fh.write(text)',
    'path = os.path.join("/tmp", "report-%d.txt" % os.getpid())\nwith open(path, "w") as fh:\n    fh.write(text)',
], [
    'fd, path = tempfile.mkstemp(suffix=".txt")\nwith os.fdopen(fd, "w") as fh:\n    fh.write(text)',
    'with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:\n    fh.write(text)\n    path = fh.name',
    'path = "/tmp/report-%d.txt" % os.getpid()\nfd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)\nwith os.fdopen(fd, "w") as fh:\n    fh.write(text)',
])

H("tempfiles", "CWE-377", "Store the lock file for a cron job so two runs don't overlap.", '''
import os
import sys


def acquire_lock():
    @@
    return lock_path
''', [
    'lock_path = "/tmp/nightly-sync.lock"\nif os.path.exists(lock_path):\n    sys.exit("already running")\nopen(lock_path, "w").write(str(os.getpid()))',
], [
    'lock_path = "/tmp/nightly-sync.lock"\ntry:\n    fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)\nexcept FileExistsError:\n    sys.exit("already running")\nos.write(fd, str(os.getpid()).encode())',
])

P("tempfiles", "CWE-377", "Download an archive to a scratch folder before unpacking it.", '''
import os
import urllib.request


def download(url):
    scratch = "/tmp/downloads"
    os.makedirs(scratch, exist_ok=True)
    dest = os.path.join(scratch, "archive.tar.gz")
    urllib.request.urlretrieve(url, dest)
    return dest
''', '''
import os
import tempfile
import urllib.request


def download(url):
    scratch = tempfile.mkdtemp(prefix="downloads-")
    dest = os.path.join(scratch, "archive.tar.gz")
    urllib.request.urlretrieve(url, dest)
    return dest
''')
