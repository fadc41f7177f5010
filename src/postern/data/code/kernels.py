"""Vulnerability kernels: the step of a program where the flaw lives, as a hole of a composed program.

A kernel is one task step (look up rows, run a tool, read a stored file, ...) of one pattern in
`postern.data.code.patterns` (which gives its CWE and the analyser rules that verify it), written as
statements that take the function's parameter ``«arg»`` and leave the answer in ``«result»``.
`postern.data.code.compose` places a kernel inside varied program structure; the insecure and the
secure twin of a row differ only in the kernel's fill.

Tokens in fills: ``«arg»``, ``«result»``, ``«cfg:KEY»`` (a setting, rendered in the program's config
style, see `compose.CONFIG_DEFAULTS`), ``«logger»`` and the vocabulary names of
`postern.data.code.vocab.make_context`. `kind` says what ``«arg»`` holds (text / path / url /
blob / secret), which decides the benign steps that may touch it; `result_kind` does the same for
``«result»``. No fill contains a comment.
"""

import textwrap
from dataclasses import dataclass

from postern.data.code.patterns import PATTERNS_BY_ID, Fill

# Kernels whose input picks a server-side file, host or database: only callers the operator runs
# (command-line tools, library code) may choose those; behind a web entry the secure twin would let
# any client choose them, which is a flaw of its own.
LOCAL = ("cli", "library")
SERVED = ("flask", "django", "fastapi", "aiohttp", "httpserver", "library")  # not a script: its operator picks its URLs


@dataclass(frozen=True)
class Kernel:
    id: str
    pattern: str
    tasks: tuple[str, ...]
    args: tuple[str, ...]
    kind: str
    result: str
    result_kind: str
    insecure: tuple[Fill, ...]
    secure: tuple[Fill, ...]
    needs: tuple[str, ...] = ()
    prelude: str = ""  # module-level lines shared by both twins (allowlists, secrets from the environment)
    frameworks: tuple[str, ...] | None = None  # entry points it fits; None: all
    logger: bool = False  # the fill itself logs
    prelude_imports: str = ""
    no_tests: bool = False  # no generated test function (its assert would be a finding of the pattern's rule)


def _f(items: list) -> tuple[Fill, ...]:
    out = []
    for it in items:
        code, imports = (it, "") if isinstance(it, str) else it
        out.append(Fill(textwrap.dedent(code).strip("\n"), textwrap.dedent(imports).strip("\n")))
    return tuple(out)


def K(id: str, pattern: str, tasks: list[str], args: str, kind: str, result: str, result_kind: str,  # noqa: N802,A002
      insecure: list, secure: list, needs: str = "", prelude: str = "", frameworks: tuple[str, ...] | None = None,
      logger: bool = False, no_tests: bool = False, prelude_imports: str = "") -> Kernel:
    return Kernel(id, pattern, tuple(tasks), tuple(args.split()), kind, result, result_kind, _f(insecure), _f(secure),
                  tuple(needs.split()), textwrap.dedent(prelude).strip("\n"), frameworks, logger,
                  prelude_imports, no_tests)


KERNELS: tuple[Kernel, ...] = (
    K("sql-select", "sql-string-query",
      ["look up «entities_text» by their «field»", "find every «entity_text» with a given «field»",
       "list the «entities_text» matching a «field» the user gives"],
      "«field» value term", "text", "rows", "rows",
      ["""
       «conn» = sqlite3.connect(«cfg:db_path»)
       rows = «conn».execute(f"SELECT * FROM «table» WHERE «field» = '{«arg»}'").fetchall()
       «conn».close()
       """,
       """
       «conn» = sqlite3.connect(«cfg:db_path»)
       «cur» = «conn».cursor()
       «cur».execute("SELECT * FROM «table» WHERE «field» = '%s'" % «arg»)
       rows = «cur».fetchall()
       «conn».close()
       """],
      ["""
       «conn» = sqlite3.connect(«cfg:db_path»)
       rows = «conn».execute("SELECT * FROM «table» WHERE «field» = ?", («arg»,)).fetchall()
       «conn».close()
       """,
       """
       «conn» = sqlite3.connect(«cfg:db_path»)
       «cur» = «conn».cursor()
       «cur».execute("SELECT * FROM «table» WHERE «field» = ?", [«arg»])
       rows = «cur».fetchall()
       «conn».close()
       """],
      needs="db_path"),
    K("sql-search", "sql-string-query",
      ["search «entities_text» whose «field» contains a text", "offer a substring search over «entities_text» by «field»"],
      "query term needle", "text", "matches", "rows",
      [("""
        with closing(sqlite3.connect(«cfg:db_path»)) as «conn»:
            matches = «conn».execute("SELECT id, «field2» FROM «table» WHERE «field» LIKE '%" + «arg» + "%'").fetchall()
        """, "from contextlib import closing"),
       ("""
        with closing(sqlite3.connect(«cfg:db_path»)) as «conn»:
            sql = "SELECT id, «field2» FROM «table» WHERE «field» LIKE '%{}%'".format(«arg»)
            matches = «conn».execute(sql).fetchall()
        """, "from contextlib import closing")],
      [("""
        with closing(sqlite3.connect(«cfg:db_path»)) as «conn»:
            matches = «conn».execute("SELECT id, «field2» FROM «table» WHERE «field» LIKE ?", (f"%{«arg»}%",)).fetchall()
        """, "from contextlib import closing")],
      needs="db_path"),
    K("sql-delete", "sql-string-query",
      ["delete the «entities_text» that have a given «field»", "remove «entity_text» records by «field»"],
      "«field» key value", "text", "removed", "count",
      ["""
       query = "DELETE FROM «table» WHERE «field» = '%s'" % «arg»
       with sqlite3.connect(«cfg:db_path») as «conn»:
           removed = «conn».execute(query).rowcount
       """,
       """
       with sqlite3.connect(«cfg:db_path») as «conn»:
           removed = «conn».execute(f"DELETE FROM «table» WHERE «field» = '{«arg»}'").rowcount
       """],
      ["""
       query = "DELETE FROM «table» WHERE «field» = :value"
       with sqlite3.connect(«cfg:db_path») as «conn»:
           removed = «conn».execute(query, {"value": «arg»}).rowcount
       """,
       """
       with sqlite3.connect(«cfg:db_path») as «conn»:
           removed = «conn».execute("DELETE FROM «table» WHERE «field» = ?", («arg»,)).rowcount
       """],
      needs="db_path"),
    K("sql-update", "sql-string-query",
      ["mark the «entities_text» with a given «field» as archived", "set the «field2» of «entities_text» chosen by «field»"],
      "«field» selector", "text", "changed", "count",
      ["""
       «conn» = sqlite3.connect(«cfg:db_path»)
       «conn».execute("UPDATE «table» SET «field2» = 'archived' WHERE «field» = '" + «arg» + "'")
       «conn».commit()
       changed = «conn».total_changes
       «conn».close()
       """],
      ["""
       «conn» = sqlite3.connect(«cfg:db_path»)
       «conn».execute("UPDATE «table» SET «field2» = 'archived' WHERE «field» = ?", («arg»,))
       «conn».commit()
       changed = «conn».total_changes
       «conn».close()
       """],
      needs="db_path"),
    K("cmd-ping", "shell-subprocess",
      ["check whether a host is reachable with ping", "run a quick ping against a host the operator names"],
      "host hostname target", "text", "reachable", "bool",
      ["""
       completed = subprocess.run(f"ping -c 1 {«arg»}", shell=True, capture_output=True, timeout=15)
       reachable = completed.returncode == 0
       """,
       """
       completed = subprocess.run("ping -c 1 " + «arg», shell=True, capture_output=True)
       reachable = completed.returncode == 0
       """],
      ["""
       completed = subprocess.run(["ping", "-c", "1", «arg»], capture_output=True, timeout=15)
       reachable = completed.returncode == 0
       """,
       """
       completed = subprocess.run(["ping", "-c", "1", "--", «arg»], capture_output=True)
       reachable = completed.returncode == 0
       """]),
    K("cmd-convert", "shell-subprocess",
      ["convert a stored «file_noun» to PDF with pandoc", "render a «file_noun» document as PDF using the pandoc tool"],
      "source «path» document", "path", "output", "path",
      ["""
       output = «arg» + ".pdf"
       subprocess.run(f"pandoc {«arg»} -o {output}", shell=True, check=True)
       """,
       """
       output = «arg» + ".pdf"
       subprocess.check_call("pandoc " + «arg» + " -o " + output, shell=True)
       """],
      ["""
       output = «arg» + ".pdf"
       subprocess.run(["pandoc", «arg», "-o", output], check=True)
       """,
       """
       output = «arg» + ".pdf"
       subprocess.check_call(["pandoc", «arg», "-o", output])
       """], frameworks=LOCAL),
    K("cmd-disk-usage", "shell-subprocess",
      ["report how much disk space a «file_noun» folder uses", "show the size of a storage folder chosen by the admin"],
      "folder directory subdir", "path", "usage", "text",
      ["""
       usage = subprocess.check_output(f"du -sh {«arg»}", shell=True, text=True).split()[0]
       """],
      ["""
       usage = subprocess.check_output(["du", "-sh", «arg»], text=True).split()[0]
       """], frameworks=LOCAL),
    K("cmd-archive", "os-system",
      ["pack the «file_noun» folder into an archive with a chosen name", "back up the «files» directory under a given name"],
      "«name» label archive_name", "text", "archive", "path",
      ["""
       archive = f"/backups/{«arg»}.tar.gz"
       os.system(f"tar czf {archive} «base_path»")
       """,
       """
       archive = "/backups/" + «arg» + ".zip"
       os.system("zip -r " + archive + " «base_path»")
       """],
      [("""
        archive = f"/backups/{«arg»}.tar.gz"
        subprocess.run(["tar", "czf", archive, "«base_path»"], check=True)
        """, "import subprocess"),
       ("""
        archive = "/backups/" + «arg» + ".zip"
        subprocess.run(["zip", "-r", archive, "«base_path»"], check=True)
        """, "import subprocess")], frameworks=LOCAL),
    K("cmd-lookup", "os-system",
      ["look up the DNS records of a domain", "show whois information for a domain name"],
      "domain host name", "text", "report", "text",
      ["""
       report = os.popen(f"nslookup {«arg»}").read()
       """,
       """
       report = os.popen("whois " + «arg»).read()
       """],
      [("""
        report = subprocess.run(["nslookup", «arg»], capture_output=True, text=True).stdout
        """, "import subprocess"),
       ("""
        report = subprocess.run(["whois", «arg»], capture_output=True, text=True).stdout
        """, "import subprocess")]),
    K("eval-literal", "eval-input",
      ["turn a settings dictionary typed into a form into a Python dict", "parse a list of «field» values written as a Python literal"],
      "text expression literal", "text", "parsed", "object",
      ["""
       parsed = eval(«arg»)
       """,
       """
       parsed = eval(«arg», {"__builtins__": {}})
       """],
      [("""
        parsed = ast.literal_eval(«arg»)
        """, "import ast")]),
    K("pickle-blob", "pickle-untrusted",
      ["restore a saved «entity_text» state sent back by the client", "load a cached «entity_text» object from a base64 string"],
      "blob state encoded", "blob", "state", "object",
      [("""
        state = pickle.loads(base64.b64decode(«arg»))
        """, "import base64\nimport pickle"),
       ("""
        raw_bytes = base64.urlsafe_b64decode(«arg»)
        state = pickle.loads(raw_bytes)
        """, "import base64\nimport pickle")],
      [("""
        state = json.loads(base64.b64decode(«arg»))
        """, "import base64\nimport json"),
       ("""
        raw_bytes = base64.urlsafe_b64decode(«arg»)
        state = json.loads(raw_bytes.decode("utf-8"))
        """, "import base64\nimport json")]),
    K("yaml-config", "yaml-load",
      ["read a YAML document of «entity_text» settings that a user uploads", "import «entities_text» from a YAML text"],
      "document text yaml_text", "blob", "settings", "object",
      [("""
        settings = yaml.load(«arg», Loader=yaml.Loader)
        """, "import yaml"),
       ("""
        settings = yaml.load(«arg», Loader=yaml.FullLoader) or {}
        """, "import yaml")],
      [("""
        settings = yaml.safe_load(«arg»)
        """, "import yaml"),
       ("""
        settings = yaml.load(«arg», Loader=yaml.SafeLoader) or {}
        """, "import yaml")]),
    K("xml-parse", "xml-external-entities",
      ["read «entities_text» from an XML document a partner sends", "parse an uploaded XML feed of «entities_text»"],
      "xml_text document feed", "blob", "names", "rows",
      [("""
        root = ET.fromstring(«arg»)
        names = [node.findtext("«field»") for node in root.iter("«entity»")]
        """, "import xml.etree.ElementTree as ET"),
       ("""
        tree = minidom.parseString(«arg»)
        names = [node.getAttribute("«field»") for node in tree.getElementsByTagName("«entity»")]
        """, "from xml.dom import minidom")],
      [("""
        root = DET.fromstring(«arg»)
        names = [node.findtext("«field»") for node in root.iter("«entity»")]
        """, "import defusedxml.ElementTree as DET"),
       ("""
        tree = defused_minidom.parseString(«arg»)
        names = [node.getAttribute("«field»") for node in tree.getElementsByTagName("«entity»")]
        """, "from defusedxml import minidom as defused_minidom")]),
    K("markup-banner", "markup-xss",
      ["build the HTML banner that greets a visitor by «field»", "show the search text back above the results as HTML"],
      "«field» label text", "text", "html", "text",
      [("""
        html = Markup(f"<p>Results for <b>{«arg»}</b></p>")
        """, "from markupsafe import Markup"),
       ("""
        html = Markup("<h2>" + «arg» + "</h2>")
        """, "from markupsafe import Markup")],
      [("""
        html = Markup("<p>Results for <b>{}</b></p>").format(«arg»)
        """, "from markupsafe import Markup"),
       ("""
        html = Markup("<h2>%s</h2>") % «arg»
        """, "from markupsafe import Markup")]),
    K("mark-safe-badge", "django-mark-safe",
      ["render a small HTML badge with a label the user picked", "produce the HTML label shown next to a «entity_text»"],
      "label caption tag", "text", "badge", "text",
      [("""
        badge = mark_safe(f'<span class="badge">{«arg»}</span>')
        """, "from django.utils.safestring import mark_safe"),
       ("""
        badge = mark_safe('<span class="badge">' + «arg» + '</span>')
        """, "from django.utils.safestring import mark_safe")],
      [("""
        badge = format_html('<span class="badge">{}</span>', «arg»)
        """, "from django.utils.html import format_html")]),
    K("template-preview", "template-injection",
      ["preview the «field» a user typed as a heading", "render a short greeting that includes the «field» from the form"],
      "«field» title heading", "text", "page", "text",
      [("""
        page = jinja2.Template(f"<h2>Preview: {«arg»}</h2>").render()
        """, "import jinja2"),
       ("""
        source = "<h2>Hello " + «arg» + "</h2>"
        page = jinja2.Environment(autoescape=True).from_string(source).render()
        """, "import jinja2")],
      [("""
        page = jinja2.Environment(autoescape=True).from_string("<h2>Preview: {{ value }}</h2>").render(value=«arg»)
        """, "import jinja2")]),
    K("jinja-page", "jinja-autoescape",
      ["render the HTML page of a «entity_text» from a Jinja2 template", "fill the «entity_text» page template with a value from the user"],
      "«field» title value", "text", "page", "text",
      [("""
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(«cfg:templates_dir»))
        page = env.get_template("«entity».html").render(value=«arg»)
        """, "import jinja2"),
       ("""
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(«cfg:templates_dir»), autoescape=False)
        page = env.get_template("«entity».html").render(value=«arg»)
        """, "import jinja2")],
      [("""
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(«cfg:templates_dir»), autoescape=True)
        page = env.get_template("«entity».html").render(value=«arg»)
        """, "import jinja2"),
       ("""
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(«cfg:templates_dir»), autoescape=jinja2.select_autoescape())
        page = env.get_template("«entity».html").render(value=«arg»)
        """, "import jinja2")],
      needs="templates_dir"),
    K("password-hash", "weak-password-hash",
      ["hash a new password before it is stored", "compute the stored hash for a password a user sets"],
      "password new_password passphrase", "secret", "hashed", "secret",
      [("""
        hashed = hashlib.md5(«arg».encode()).hexdigest()
        """, "import hashlib"),
       ("""
        hashed = hashlib.sha1(«arg».encode("utf-8")).hexdigest()
        """, "import hashlib")],
      [("""
        salt = os.urandom(16)
        hashed = salt.hex() + ":" + hashlib.pbkdf2_hmac("sha256", «arg».encode(), salt, 200_000).hex()
        """, "import hashlib\nimport os"),
       ("""
        salt = os.urandom(16)
        hashed = salt.hex() + ":" + hashlib.scrypt(«arg».encode("utf-8"), salt=salt, n=2**14, r=8, p=1).hex()
        """, "import hashlib\nimport os")], frameworks=LOCAL),
    K("file-checksum", "weak-hash-integrity",
      ["compute the checksum recorded for an uploaded «file_noun»", "fingerprint the bytes of a «file_noun» so changes are noticed"],
      "data content payload", "blob", "checksum", "text",
      [("""
        checksum = hashlib.md5(«arg»).hexdigest()
        """, "import hashlib"),
       ("""
        digest = hashlib.sha1()
        digest.update(«arg»)
        checksum = digest.hexdigest()
        """, "import hashlib")],
      [("""
        checksum = hashlib.sha256(«arg»).hexdigest()
        """, "import hashlib"),
       ("""
        digest = hashlib.sha256()
        digest.update(«arg»)
        checksum = digest.hexdigest()
        """, "import hashlib")]),
    K("reset-token", "insecure-random",
      ["issue a password-reset token for a user and keep it until it is mailed", "create the one-time login code for a user"],
      "username email user_id", "text", "issued", "bool",
      [("""
        alphabet = string.ascii_letters + string.digits
        PENDING_RESETS[«arg»] = "".join(random.choice(alphabet) for _ in range(32))
        issued = True
        """, "import random\nimport string"),
       ("""
        PENDING_RESETS[«arg»] = f"{random.randint(100000, 999999)}"
        issued = True
        """, "import random")],
      [("""
        PENDING_RESETS[«arg»] = secrets.token_urlsafe(32)
        issued = True
        """, "import secrets"),
       ("""
        PENDING_RESETS[«arg»] = f"{secrets.randbelow(900000) + 100000}"
        issued = True
        """, "import secrets")],
      prelude="PENDING_RESETS: dict[str, str] = {}"),
    K("temp-export", "mktemp-race",
      ["write an export of «entities_text» to a temporary CSV file", "stage a report in a temporary file before it is mailed"],
      "content rows_text csv_text", "text", "tmp_path", "path",
      [("""
        tmp_path = tempfile.mktemp(suffix=".csv")
        with open(tmp_path, "w", encoding="utf-8") as fh:
            fh.write(«arg»)
        """, "import tempfile")],
      [("""
        fd, tmp_path = tempfile.mkstemp(suffix=".csv")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(«arg»)
        """, "import os\nimport tempfile")]),
    K("tmp-scratch", "hardcoded-tmp",
      ["keep a scratch copy of an uploaded «file_noun» while it is processed", "save a draft of a «entity_text» to a scratch file"],
      "content draft body", "text", "scratch", "path",
      [("""
        scratch = "/tmp/«slug»_draft.txt"
        with open(scratch, "w", encoding="utf-8") as fh:
            fh.write(«arg»)
        """)],
      [("""
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
            fh.write(«arg»)
            scratch = fh.name
        """, "import tempfile")]),
    K("share-file", "permissive-chmod",
      ["save a generated «file_noun» and make it readable by the web server", "write a «file_noun» to the shared folder with the right permissions"],
      "content body text", "text", "target", "path",
      [("""
        target = os.path.join(«cfg:base_dir», "latest.txt")
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(«arg»)
        os.chmod(target, 0o777)
        """, "import os")],
      [("""
        target = os.path.join(«cfg:base_dir», "latest.txt")
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(«arg»)
        os.chmod(target, 0o640)
        """, "import os")],
      needs="base_dir"),
    K("make-workdir", "world-writable-dir",
      ["create the working folder for a new «entity_text» import", "set up a per-job directory where workers drop «file_noun» files"],
      "job_id batch run_id", "text", "workdir", "path",
      [("""
        workdir = os.path.join(«cfg:base_dir», "jobs", f"job-{int(«arg»)}")
        os.makedirs(workdir, mode=0o777, exist_ok=True)
        """, "import os")],
      [("""
        workdir = os.path.join(«cfg:base_dir», "jobs", f"job-{int(«arg»)}")
        os.makedirs(workdir, mode=0o750, exist_ok=True)
        """, "import os")],
      needs="base_dir"),
    K("tar-unpack", "tar-extract",
      ["unpack an uploaded tarball of «file_noun» files", "extract a backup archive of «entities_text» into the data folder"],
      "archive_path bundle tarball", "path", "members", "rows",
      [("""
        with tarfile.open(«arg») as tar:
            members = tar.getnames()
            tar.extractall(«cfg:dest_dir»)
        """, "import tarfile")],
      [("""
        with tarfile.open(«arg») as tar:
            members = tar.getnames()
            tar.extractall(«cfg:dest_dir», filter="data")
        """, "import tarfile")],
      needs="dest_dir", frameworks=LOCAL),
    K("zip-unpack", "zip-slip",
      ["import a zip of «file_noun» files entry by entry", "unzip a bundle of «file_noun» files into the import folder"],
      "archive_path bundle upload_zip", "path", "written", "rows",
      [("""
        written = []
        with zipfile.ZipFile(«arg») as zf:
            for member in zf.infolist():
                target = os.path.join(«cfg:dest_dir», member.filename)
                with zf.open(member) as src, open(target, "wb") as out:
                    out.write(src.read())
                written.append(target)
        """, "import os\nimport zipfile")],
      [("""
        written = []
        root_dir = os.path.realpath(«cfg:dest_dir»)
        with zipfile.ZipFile(«arg») as zf:
            for member in zf.infolist():
                target = os.path.realpath(os.path.join(root_dir, member.filename))
                if not target.startswith(root_dir + os.sep):
                    raise ValueError("archive entry outside the import folder")
                with zf.open(member) as src, open(target, "wb") as out:
                    out.write(src.read())
                written.append(target)
        """, "import os\nimport zipfile")],
      needs="dest_dir", frameworks=LOCAL),
    K("read-stored", "path-traversal",
      ["return a stored «file_noun» by its file name", "read one of the saved «file_noun» files that a user asks for"],
      "«name» filename doc_name", "path", "content", "text",
      [("""
        with open(os.path.join(«cfg:base_dir», «arg»), encoding="utf-8") as fh:
            content = fh.read()
        """, "import os"),
       ("""
        content = (Path(«cfg:base_dir») / «arg»).read_text(encoding="utf-8")
        """, "from pathlib import Path")],
      [("""
        with open(os.path.join(«cfg:base_dir», os.path.basename(«arg»)), encoding="utf-8") as fh:
            content = fh.read()
        """, "import os"),
       ("""
        root = Path(«cfg:base_dir»).resolve()
        candidate = (root / «arg»).resolve()
        if not candidate.is_relative_to(root):
            raise PermissionError("file outside the storage folder")
        content = candidate.read_text(encoding="utf-8")
        """, "from pathlib import Path")],
      needs="base_dir"),
    K("delete-stored", "path-traversal",
      ["delete a stored «file_noun» that the user no longer needs", "remove an uploaded «file_noun» by name"],
      "«name» filename doc_name", "path", "deleted", "path",
      [("""
        deleted = os.path.join(«cfg:base_dir», «arg»)
        os.remove(deleted)
        """, "import os")],
      [("""
        deleted = os.path.realpath(os.path.join(«cfg:base_dir», «arg»))
        if not deleted.startswith(os.path.realpath(«cfg:base_dir») + os.sep):
            raise PermissionError("file outside the storage folder")
        os.remove(deleted)
        """, "import os")],
      needs="base_dir"),
    K("link-preview", "ssrf-fetch",
      ["fetch a link a user pastes and return the start of the page", "download an image URL a user submits and report its size"],
      "«url» link page_url", "url", "preview", "text",
      [("""
        «resp» = requests.get(«arg», timeout=10)
        preview = «resp».text[:500]
        """, "import requests"),
       ("""
        «resp» = httpx.get(«arg», timeout=10, follow_redirects=True)
        preview = «resp».text[:500]
        """, "import httpx")],
      [("""
        if urlparse(«arg»).hostname not in ALLOWED_HOSTS:
            raise ValueError("host not allowed")
        «resp» = requests.get(«arg», timeout=10, allow_redirects=False)
        preview = «resp».text[:500]
        """, "from urllib.parse import urlparse\nimport requests"),
       ("""
        if urlparse(«arg»).hostname not in ALLOWED_HOSTS:
            raise ValueError("host not allowed")
        «resp» = httpx.get(«arg», timeout=10)
        preview = «resp».text[:500]
        """, "from urllib.parse import urlparse\nimport httpx")],
      prelude='ALLOWED_HOSTS = {"images.«slug»-cdn.com", "static.«slug»-cdn.com"}', frameworks=SERVED),
    K("webhook-send", "ssrf-fetch",
      ["deliver a «entity_text» event to the callback URL a customer configured", "notify a partner's webhook URL that a «entity_text» changed"],
      "callback_url hook_url «url»", "url", "status", "count",
      [("""
        status = requests.post(«arg», json={"event": "«entity».updated"}, timeout=10).status_code
        """, "import requests")],
      [("""
        if urlparse(«arg»).scheme != "https" or urlparse(«arg»).hostname not in WEBHOOK_HOSTS:
            raise ValueError("webhook host not allowed")
        status = requests.post(«arg», json={"event": "«entity».updated"}, timeout=10, allow_redirects=False).status_code
        """, "from urllib.parse import urlparse\nimport requests")],
      prelude='WEBHOOK_HOSTS = {"hooks.«slug».example.com"}'),
    K("login-redirect", "open-redirect",
      ["send a user back to the page given in the next parameter after login", "finish sign-in by redirecting to where the user came from"],
      "next_url target return_to", "url", "response", "response",
      [("""
        response = redirect(«arg»)
        """, "from flask import redirect"),
       ("""
        response = redirect(«arg» or "/")
        """, "from flask import redirect")],
      [("""
        if not «arg».startswith("/") or «arg».startswith("//"):
            «arg» = "/"
        response = redirect(«arg»)
        """, "from flask import redirect"),
       ("""
        if urlparse(«arg»).netloc not in TRUSTED_HOSTS:
            return redirect(url_for("index"))
        response = redirect(«arg»)
        """, "from urllib.parse import urlparse\nfrom flask import redirect, url_for")],
      prelude='TRUSTED_HOSTS = {"", "«slug».example.com", "www.«slug».example.com"}', frameworks=("flask",)),
    K("tls-status", "tls-verify-disabled",
      ["ask the internal inventory API for a «entity_text»'s status", "poll the partner API for the state of a «entity_text»"],
      "«entity»_id item_id key", "text", "payload", "object",
      [("""
        url = f"https://inventory.«slug».example.com/api/«entities»/{quote(«arg», safe='')}"
        payload = requests.get(url, timeout=10, verify=False).json()
        """, "from urllib.parse import quote\nimport requests")],
      [("""
        url = f"https://inventory.«slug».example.com/api/«entities»/{quote(«arg», safe='')}"
        payload = requests.get(url, timeout=10).json()
        """, "from urllib.parse import quote\nimport requests"),
       ("""
        url = f"https://inventory.«slug».example.com/api/«entities»/{quote(«arg», safe='')}"
        payload = requests.get(url, timeout=10, verify="/etc/ssl/certs/ca-certificates.crt").json()
        """, "from urllib.parse import quote\nimport requests")]),
    K("ssl-context", "ssl-unverified-context",
      ["open an HTTPS connection to a partner host and read its health page", "check the health endpoint of a host over HTTPS"],
      "host hostname server", "text", "status", "count",
      [("""
        context = ssl._create_unverified_context()
        connection = http.client.HTTPSConnection(«arg», context=context, timeout=10)
        connection.request("GET", "/health")
        status = connection.getresponse().status
        """, "import http.client\nimport ssl")],
      [("""
        context = ssl.create_default_context()
        connection = http.client.HTTPSConnection(«arg», context=context, timeout=10)
        connection.request("GET", "/health")
        status = connection.getresponse().status
        """, "import http.client\nimport ssl")], frameworks=LOCAL),
    K("rsa-keypair", "weak-rsa-key",
      ["generate the signing key pair for a new tenant", "create an RSA key for signing «entity_text» exports"],
      "tenant owner label", "text", "pem", "secret",
      [("""
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        """, "from cryptography.hazmat.primitives import serialization\nfrom cryptography.hazmat.primitives.asymmetric import rsa")],
      [("""
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        """, "from cryptography.hazmat.primitives import serialization\nfrom cryptography.hazmat.primitives.asymmetric import rsa")]),
    K("encrypt-note", "ecb-mode",
      ["encrypt a private note before it is stored", "encrypt a «entity_text» field at rest with AES"],
      "note text secret_note", "secret", "ciphertext", "secret",
      [("""
        padder = padding.PKCS7(128).padder()
        padded = padder.update(«arg».encode()) + padder.finalize()
        encryptor = Cipher(algorithms.AES(DATA_KEY), modes.ECB()).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
        """, "from cryptography.hazmat.primitives import padding\nfrom cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes")],
      [("""
        nonce = os.urandom(12)
        ciphertext = nonce + AESGCM(DATA_KEY).encrypt(nonce, «arg».encode(), None)
        """, "import os\nfrom cryptography.hazmat.primitives.ciphers.aead import AESGCM")],
      prelude='DATA_KEY = bytes.fromhex(os.environ["«SLUG»_DATA_KEY"])'),
    K("ssh-run", "ssh-autoadd-host",
      ["list the release folders on a server over SSH", "see which builds are deployed on a server, over SSH"],
      "host server hostname", "text", "output", "rows",
      [("""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(«arg», username="deploy", key_filename=«cfg:ssh_key»)
        output = sorted(client.open_sftp().listdir("/srv/releases"))
        client.close()
        """, "import paramiko")],
      [("""
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(«arg», username="deploy", key_filename=«cfg:ssh_key»)
        output = sorted(client.open_sftp().listdir("/srv/releases"))
        client.close()
        """, "import paramiko")],
      needs="ssh_key", frameworks=LOCAL),
    K("password-log", "log-secrets",
      ["change a user's password and record the change in the log", "store a new password for an account and log the event"],
      "password new_password user_password", "secret", "updated", "bool",
      ["""
       «logger».info("password change: new password %s", «arg»)
       updated = bool(«arg»)
       """,
       """
       «logger».debug(f"setting password to {«arg»}")
       updated = bool(«arg»)
       """],
      ["""
       «logger».info("password change requested")
       updated = bool(«arg»)
       """,
       """
       «logger».debug("setting a new password of length %d", len(«arg»))
       updated = bool(«arg»)
       """],
      logger=True),
    K("token-check", "timing-compare",
      ["check an API token presented by a client", "accept a webhook only when its signature matches"],
      "token signature api_key", "secret", "accepted", "bool",
      [("""
        expected = hmac.new(SIGNING_KEY, b"«slug»", hashlib.sha256).hexdigest()
        accepted = «arg» == expected
        """, "import hashlib\nimport hmac")],
      [("""
        expected = hmac.new(SIGNING_KEY, b"«slug»", hashlib.sha256).hexdigest()
        accepted = hmac.compare_digest(«arg», expected)
        """, "import hashlib\nimport hmac")],
      prelude='SIGNING_KEY = os.environ["«SLUG»_SIGNING_KEY"].encode()'),
    K("jwt-claims", "jwt-unverified",
      ["read the user id from a bearer token", "get the claims of a JSON web token sent by the client"],
      "token bearer jwt_token", "secret", "claims", "object",
      [("""
        claims = jwt.decode(«arg», options={"verify_signature": False})
        """, "import jwt"),
       ("""
        claims = jwt.decode(«arg», JWT_SECRET, algorithms=["HS256", "none"])
        """, "import jwt")],
      [("""
        claims = jwt.decode(«arg», JWT_SECRET, algorithms=["HS256"])
        """, "import jwt")],
      prelude='JWT_SECRET = os.environ["«SLUG»_JWT_SECRET"]'),
    K("regex-filter", "regex-injection",
      ["filter the «entity_text» names with a search pattern the user types", "highlight «entities_text» whose «field» matches a search text"],
      "pattern search_text needle", "text", "hits", "rows",
      [("""
        matcher = re.compile(«arg»)
        hits = [item for item in KNOWN_«ENTITIES» if matcher.search(item)]
        """, "import re")],
      [("""
        matcher = re.compile(re.escape(«arg»))
        hits = [item for item in KNOWN_«ENTITIES» if matcher.search(item)]
        """, "import re")],
      prelude='KNOWN_«ENTITIES» = ("alpha", "beta", "gamma")'),
    K("db-credentials", "hardcoded-credentials",
      ["open the reporting database connection for «entities_text»", "connect to the PostgreSQL database that holds «entities_text»"],
      "schema dbname database", "text", "«conn»", "object",
      [("""
        «conn» = psycopg2.connect(host="db.internal", dbname=«arg», user="«slug»", password="«pw»")
        """, "import psycopg2")],
      [("""
        «conn» = psycopg2.connect(host="db.internal", dbname=«arg», user="«slug»", password=os.environ["«SLUG»_DB_PASSWORD"])
        """, "import os\nimport psycopg2")], frameworks=LOCAL),
    K("torch-weights", "torch-load",
      ["load a model checkpoint a user uploads", "restore saved model weights from a path"],
      "checkpoint weights_path model_file", "path", "state", "object",
      [("""
        state = torch.load(«arg»)
        """, "import torch"),
       ("""
        state = torch.load(«arg», map_location="cpu")
        """, "import torch")],
      [("""
        state = torch.load(«arg», weights_only=True)
        """, "import torch"),
       ("""
        state = torch.load(«arg», map_location="cpu", weights_only=True)
        """, "import torch")], frameworks=LOCAL),
    K("exec-rule", "exec-hook",
      ["apply a small automation rule an admin typed for a «entity_text»", "run the update rule configured for «entities_text»"],
      "rule source snippet", "text", "outcome", "object",
      ["""
       namespace = {"«entity»": {"«field»": "", "«field2»": ""}}
       exec(«arg», namespace)
       outcome = namespace["«entity»"]
       """,
       """
       namespace = {"«entity»": {"«field»": "", "«field2»": ""}}
       exec(compile(«arg», "<rule>", "exec"), namespace)
       outcome = namespace["«entity»"]
       """],
      ["""
       outcome = {"«field»": "", "«field2»": ""}
       key, _, value = «arg».partition("=")
       if key.strip() not in outcome:
           raise KeyError(key.strip())
       outcome[key.strip()] = value.strip()
       """]),
    K("tls-gateway", "weak-tls-version",
      ["open a TLS connection to a payment gateway and report the protocol used",
       "check which TLS version a partner gateway negotiates"],
      "host gateway_host server", "text", "version", "text",
      [("""
        with socket.create_connection((«arg», 443), timeout=10) as sock:
            with ssl.wrap_socket(sock, ssl_version=ssl.PROTOCOL_TLSv1) as tls:
                version = tls.version()
        """, "import socket\nimport ssl")],
      [("""
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((«arg», 443), timeout=10) as sock:
            with context.wrap_socket(sock, server_hostname=«arg») as tls:
                version = tls.version()
        """, "import socket\nimport ssl")], frameworks=LOCAL),
    K("ldap-account", "ldap-injection",
      ["find a staff account in the company directory by username", "look up the directory entry of a user before granting access"],
      "username uid login", "text", "entries", "rows",
      [("""
        query = f"(uid={«arg»})"
        entries = DIRECTORY.search_s("ou=people,dc=«slug»,dc=org", ldap.SCOPE_SUBTREE, query)
        """, "import ldap"),
       ("""
        query = "(&(objectClass=person)(uid=" + «arg» + "))"
        entries = DIRECTORY.search_s("ou=people,dc=«slug»,dc=org", ldap.SCOPE_SUBTREE, query)
        """, "import ldap")],
      [("""
        query = f"(uid={escape_filter_chars(«arg»)})"
        entries = DIRECTORY.search_s("ou=people,dc=«slug»,dc=org", ldap.SCOPE_SUBTREE, query)
        """, "import ldap\nfrom ldap.filter import escape_filter_chars")],
      prelude='DIRECTORY = ldap.initialize("ldaps://ldap.«slug».example.com")', prelude_imports="import ldap"),
    K("mongo-lookup", "nosql-injection",
      ["find one «entity_text» in MongoDB from JSON search criteria", "look up a «entity_text» document by the «field» in a JSON request"],
      "criteria_json query_json filter_json", "text", "found", "object",
      [("""
        criteria = json.loads(«arg»)
        found = COLLECTION.find_one({"$where": f"this.«field» == '{criteria.get('«field»')}'"}, {"_id": 0})
        """, "import json"),
       ("""
        criteria = json.loads(«arg»)
        found = COLLECTION.find_one({"«field»": criteria.get("«field»")}, {"_id": 0})
        """, "import json"),
       ("""
        found = COLLECTION.find_one(json.loads(«arg»), {"_id": 0})
        """, "import json")],
      [("""
        criteria = json.loads(«arg»)
        value = criteria.get("«field»")
        if not isinstance(value, str):
            raise TypeError("«field» must be a string")
        found = COLLECTION.find_one({"«field»": value}, {"_id": 0})
        """, "import json")],
      prelude='COLLECTION = MongoClient("mongodb://localhost:27017")["«slug»"]["«table»"]', prelude_imports="from pymongo import MongoClient"),
    K("xpath-find", "xpath-injection",
      ["find the ids of «entities_text» with a given «field» in the XML catalogue", "query the XML catalogue for a «entity_text» by «field»"],
      "«field» value term", "text", "ids", "rows",
      [("""
        matches = CATALOGUE.xpath(f"//«entity»[@«field»='{«arg»}']")
        ids = [node.get("id") for node in matches]
        """),
       ("""
        matches = CATALOGUE.xpath("//«entity»[@«field»='" + «arg» + "']")
        ids = [node.get("id") for node in matches]
        """)],
      [("""
        matches = CATALOGUE.xpath("//«entity»[@«field»=$value]", value=«arg»)
        ids = [node.get("id") for node in matches]
        """)],
      prelude='CATALOGUE = etree.ElementTree(file="«slug»_catalogue.xml", parser=etree.XMLParser(resolve_entities=False))', prelude_imports="from lxml import etree"),
    K("billing-charge", "cleartext-transport",
      ["charge a saved card token through the billing service", "send a card token to the billing API for a «entity_text»"],
      "card_token payment_token card", "secret", "receipt", "object",
      [("""
        receipt = requests.post("http://billing.«slug».example.com/api/charge", json={"card": «arg», "amount": 100}, timeout=10).json()
        """, "import requests")],
      [("""
        receipt = requests.post("https://billing.«slug».example.com/api/charge", json={"card": «arg», "amount": 100}, timeout=10).json()
        """, "import requests")]),
    K("profile-update", "mass-assignment",
      ["apply a JSON update to a «entity_text» profile", "update the «field» and «field2» of a «entity_text» from posted JSON"],
      "changes_json body patch", "text", "record", "object",
      [("""
        record = «Entity»Record()
        for key, value in json.loads(«arg»).items():
            setattr(record, key, value)
        """, "import json")],
      [("""
        record = «Entity»Record()
        changes = json.loads(«arg»)
        for key in ("«field»", "«field2»"):
            if key in changes:
                setattr(record, key, changes[key])
        """, "import json")],
      prelude='@dataclass\nclass «Entity»Record:\n    «field»: str = ""\n    «field2»: str = ""\n    is_admin: bool = False', prelude_imports="from dataclasses import dataclass"),
    K("quantity-parse", "error-details-leak",
      ["read a quantity a user typed and report problems back", "parse the amount field of an order form"],
      "amount quantity raw_amount", "text", "quantity", "object",
      [("""
        try:
            quantity = Decimal(«arg»)
        except InvalidOperation as exc:
            return {"error": f"invalid amount: {exc}"}
        """, "from decimal import Decimal, InvalidOperation"),
       ("""
        try:
            quantity = Decimal(«arg»)
        except InvalidOperation:
            return {"error": traceback.format_exc()}
        """, "import traceback\nfrom decimal import Decimal, InvalidOperation")],
      [("""
        try:
            quantity = Decimal(«arg»)
        except InvalidOperation:
            return {"error": "invalid amount"}
        """, "from decimal import Decimal, InvalidOperation")]),
    K("session-cookie", "insecure-cookie",
      ["start a session for a signed-in user and store its token in a cookie", "hand a signed-in user their session cookie"],
      "username user_id account", "text", "response", "response",
      [("""
        session_token = secrets.token_urlsafe(32)
        SESSIONS[session_token] = «arg»
        response = make_response({"ok": True})
        response.set_cookie("«slug»_session", session_token)
        """, "import secrets\nfrom flask import make_response"),
       ("""
        session_token = secrets.token_urlsafe(32)
        SESSIONS[session_token] = «arg»
        response = make_response({"ok": True})
        response.set_cookie("«slug»_session", session_token, max_age=3600)
        """, "import secrets\nfrom flask import make_response")],
      [("""
        session_token = secrets.token_urlsafe(32)
        SESSIONS[session_token] = «arg»
        response = make_response({"ok": True})
        response.set_cookie("«slug»_session", session_token, secure=True, httponly=True, samesite="Lax")
        """, "import secrets\nfrom flask import make_response")],
      prelude="SESSIONS: dict[str, str] = {}", frameworks=("flask",)),
    K("django-search", "django-raw-sql",
      ["search «entities_text» by «field» with the Django ORM", "return the ids of «entities_text» whose «field» contains a text"],
      "term query q", "text", "ids", "rows",
      [("""
        ids = [obj.pk for obj in «Entity».objects.raw(f"SELECT * FROM «table» WHERE «field» LIKE '%{«arg»}%'")]
        """, "from .models import «Entity»"),
       ("""
        ids = [obj.pk for obj in «Entity».objects.extra(where=[f"«field» LIKE '%%{«arg»}%%'"])]
        """, "from .models import «Entity»")],
      [("""
        ids = [obj.pk for obj in «Entity».objects.filter(«field»__icontains=«arg»)]
        """, "from .models import «Entity»"),
       ("""
        ids = [obj.pk for obj in «Entity».objects.raw("SELECT * FROM «table» WHERE «field» LIKE %s", [f"%{«arg»}%"])]
        """, "from .models import «Entity»")],
      frameworks=("django",)),
    K("admin-check", "assert-authorization",
      ["allow an action only for administrators", "check that the caller has the admin role before a deletion"],
      "role user_role caller_role", "text", "allowed", "bool",
      ["""
       assert «arg» == "admin", "admins only"
       allowed = True
       """,
       """
       assert «arg» in ("admin", "owner")
       allowed = True
       """],
      ["""
       if «arg» != "admin":
           raise PermissionError("admins only")
       allowed = True
       """,
       """
       if «arg» not in ("admin", "owner"):
           raise PermissionError("admins only")
       allowed = True
       """],
      no_tests=True, frameworks=("library",)),
)


def _check() -> None:
    for k in KERNELS:
        if k.pattern not in PATTERNS_BY_ID:
            raise ValueError(f"kernel {k.id}: unknown pattern {k.pattern}")


_check()
KERNELS_BY_PATTERN: dict[str, tuple[Kernel, ...]] = {}
for _k in KERNELS:
    KERNELS_BY_PATTERN[_k.pattern] = KERNELS_BY_PATTERN.get(_k.pattern, ()) + (_k,)
