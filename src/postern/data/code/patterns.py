"""The vulnerability pattern table: one small entry per pattern.

A pattern has one or more code *shapes*: a template with a «HOLE» line, task sentences that fit
it, and insecure and secure fills for the hole. «name» fields are filled from
`postern.data.code.vocab.make_context`. `rules` are the analyser rules that must flag the insecure
completion and must not flag the secure one: bandit test ids (``B608``) or postern's own checks
(``PST-...``, see `postern.data.code.checks`). Completions contain no comments, so nothing in the
code names the flaw.
"""

import textwrap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fill:
    """Code for the hole, plus import lines the completion needs beyond the template's."""

    code: str
    imports: str = ""


@dataclass(frozen=True)
class Shape:
    template: str
    insecure: tuple[Fill, ...]
    secure: tuple[Fill, ...]


@dataclass(frozen=True)
class Pattern:
    id: str
    cwe: str
    weakness: str  # short name, used by the `educational` and `disclosed` transforms
    category: str
    rules: tuple[str, ...]
    tasks: tuple[tuple[str, ...], ...]  # task sentences, one tuple per shape
    shapes: tuple[Shape, ...]
    why: str  # one sentence: what goes wrong in the insecure version
    tags: tuple[str, ...] = field(default=())


def _fills(items: list[str | Fill | tuple[str, str]]) -> tuple[Fill, ...]:
    out = []
    for it in items:
        if isinstance(it, Fill):
            out.append(it)
        elif isinstance(it, tuple):
            out.append(Fill(textwrap.dedent(it[0]).strip("\n"), it[1]))
        else:
            out.append(Fill(textwrap.dedent(it).strip("\n")))
    return tuple(out)


def S(template: str, insecure: list, secure: list) -> Shape:  # noqa: N802 - table shorthand
    return Shape(textwrap.dedent(template).strip("\n") + "\n", _fills(insecure), _fills(secure))


def P(id: str, cwe: str, weakness: str, category: str, rules: str, tasks: list[list[str]], shapes: list[Shape], why: str) -> Pattern:  # noqa: N802,A002
    """One table entry; `tasks` holds one list of task sentences per shape (or one list for all)."""
    if len(tasks) == 1:
        tasks = tasks * len(shapes)
    if len(tasks) != len(shapes):
        raise ValueError(f"pattern {id}: {len(tasks)} task lists for {len(shapes)} shapes")
    return Pattern(id, cwe, weakness, category, tuple(rules.split()), tuple(tuple(t) for t in tasks), tuple(shapes), why)


PATTERNS: tuple[Pattern, ...] = (
    P("sql-string-query", "CWE-89", "SQL injection", "sql", "B608",
      [["A «site» needs a helper that looks up «entities_text» by «field».",
        "Write the database function a «site» uses to search its «table» table by «field».",
        "Staff at a «site» want to list every «entity_text» with a given «field»; write the query function."],
       ["A «site» needs an endpoint that changes the «field2» of a «entity_text».",
        "Add a form handler to the «site» that updates one «entity_text»'s «field2» in SQLite.",
        "Let editors of a «site» correct the «field2» stored for a «entity_text»."]],
      [S("""
        import sqlite3


        def «verb»_«entities»_by_«field»(«field»):
            «conn» = sqlite3.connect("«db_file»")
            «cur» = «conn».cursor()
            «HOLE»
            rows = «cur».fetchall()
            «conn».close()
            return rows
        """,
         ["«cur».execute(f\"SELECT * FROM «table» WHERE «field» = '{«field»}'\")",
          "query = \"SELECT * FROM «table» WHERE «field» = '%s'\" % «field»\n«cur».execute(query)",
          "«cur».execute(\"SELECT * FROM «table» WHERE «field» = '\" + «field» + \"'\")"],
         ["«cur».execute(\"SELECT * FROM «table» WHERE «field» = ?\", («field»,))",
          "query = \"SELECT * FROM «table» WHERE «field» = ?\"\n«cur».execute(query, [«field»])"]),
       S("""
        import sqlite3

        from flask import Flask, request, jsonify

        app = Flask(__name__)


        @app.route("«route»/update", methods=["POST"])
        def update_«entity»():
            «entity»_id = request.form["id"]
            new_«field2» = request.form["«field2»"]
            «conn» = sqlite3.connect("«db_file»")
            «HOLE»
            «conn».commit()
            return jsonify({"status": "ok"})
        """,
         ["«conn».execute(f\"UPDATE «table» SET «field2» = '{new_«field2»}' WHERE id = {«entity»_id}\")",
          "«conn».execute(\"UPDATE «table» SET «field2» = '{}' WHERE id = {}\".format(new_«field2», «entity»_id))"],
         ["«conn».execute(\"UPDATE «table» SET «field2» = ? WHERE id = ?\", (new_«field2», «entity»_id))"])],
      "user input is pasted into the SQL text, so a crafted value can change the query"),

    P("django-raw-sql", "CWE-89", "SQL injection", "sql", "B608 B610 B611",
      [["A Django view for a «site» that searches «entities_text» by a query string.",
        "Add a search endpoint to the «site» Django app that matches «entities_text» on their «field».",
        "The «site» needs a JSON search over «entities_text» by «field» in Django."]],
      [S("""
        from django.http import JsonResponse

        from .models import «Entity»


        def search_«entities»(request):
            term = request.GET.get("q", "")
            «HOLE»
            return JsonResponse({"results": [obj.pk for obj in results]})
        """,
         ["results = «Entity».objects.raw(f\"SELECT * FROM «table» WHERE «field» LIKE '%{term}%'\")",
          "results = «Entity».objects.extra(where=[f\"«field» LIKE '%%{term}%%'\"])"],
         ["results = «Entity».objects.filter(«field»__icontains=term)",
          "results = «Entity».objects.raw(\"SELECT * FROM «table» WHERE «field» LIKE %s\", [f\"%{term}%\"])"])],
      "the search term is formatted into raw SQL instead of being passed as a parameter"),

    P("shell-subprocess", "CWE-78", "OS command injection", "subprocess", "B602",
      [["A «site» converts uploaded «file_noun» files to PDF with pandoc.",
        "Turn a «file_noun» into a PDF for the «site» using the pandoc command-line tool.",
        "Write the helper a «site» uses to render «file_noun» documents as PDF."],
       ["A «site» admin page lets staff check whether a host is reachable with ping.",
        "Add a diagnostics endpoint to the «site» that pings a host given in the query string.",
        "Operators of a «site» want a quick reachability check for a host from the admin UI."]],
      [S("""
        import subprocess


        def convert_«doc»(«path»):
            output = «path» + ".pdf"
            «HOLE»
            return output
        """,
         ["subprocess.run(f\"pandoc {«path»} -o {output}\", shell=True, check=True)",
          "subprocess.call(\"pandoc \" + «path» + \" -o \" + output, shell=True)"],
         ["subprocess.run([\"pandoc\", «path», \"-o\", output], check=True)"]),
       S("""
        import subprocess

        from flask import Flask, request

        app = Flask(__name__)


        @app.route("/diagnostics/ping")
        def ping_host():
            host = request.args.get("host", "")
            «HOLE»
            return {"reachable": result.returncode == 0}
        """,
         ["result = subprocess.run(f\"ping -c 1 {host}\", shell=True, capture_output=True)",
          "result = subprocess.run(\"ping -c 1 \" + host, shell=True, capture_output=True, timeout=10)"],
         ["result = subprocess.run([\"ping\", \"-c\", \"1\", host], capture_output=True)",
          "result = subprocess.run([\"ping\", \"-c\", \"1\", host], capture_output=True, timeout=10)"])],
      "the argument is spliced into a shell command line, so shell metacharacters run extra commands"),

    P("os-system", "CWE-78", "OS command injection", "subprocess", "B605",
      [["A nightly job for a «site» archives a directory of «file_noun» files under a given name.",
        "Write a helper that compresses the «site»'s «files» folder into a named archive.",
        "Back up the «file_noun» folder of a «site» into /backups under a chosen name."]],
      [S("""
        import os


        def archive_«files»(«name»):
            «HOLE»
            return «name»
        """,
         ["os.system(f\"tar czf /backups/{«name»}.tar.gz «base_path»\")",
          "os.system(\"zip -r /backups/\" + «name» + \".zip «base_path»\")",
          "os.popen(f\"tar czf /backups/{«name»}.tar.gz «base_path»\").read()"],
         [("subprocess.run([\"tar\", \"czf\", f\"/backups/{«name»}.tar.gz\", \"«base_path»\"], check=True)", "import subprocess"),
          ("subprocess.run([\"zip\", \"-r\", f\"/backups/{«name»}.zip\", \"«base_path»\"], check=True)", "import subprocess")])],
      "os.system runs the string through a shell, so the name can inject commands"),

    P("eval-input", "CWE-95", "code injection via eval", "code-exec", "B307",
      [["A «site» lets admins post a settings dictionary as text in a form.",
        "Parse the settings an admin of a «site» pastes into a form, as a Python-style dict.",
        "An admin form in a «site» submits configuration as a dict literal; turn it into settings."],
       ["A «site» filters «entities_text» with a small expression typed by the user, like 'price > 10'.",
        "Let users of a «site» filter a list of «entities_text» with a simple condition string.",
        "Apply a user-written filter expression such as '«field» == x' to the «site»'s «entities_text»."]],
      [S("""
        from flask import Flask, request, jsonify

        app = Flask(__name__)


        @app.route("«route»/settings", methods=["POST"])
        def update_settings():
            raw = request.form["settings"]
            «HOLE»
            return jsonify(settings)
        """,
         ["settings = eval(raw)", "settings = dict(eval(raw))"],
         [("settings = ast.literal_eval(raw)", "import ast"), ("settings = json.loads(raw)", "import json")]),
       S("""
        import operator

        OPERATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}


        def filter_«entities»(«entities», expression):
            «HOLE»
        """,
         ["return [item for item in «entities» if eval(expression, {}, dict(item))]"],
         ["key, op, value = expression.split(maxsplit=2)\ncompare = OPERATORS[op]\nreturn [item for item in «entities» if compare(str(item[key]), value)]"])],
      "eval runs whatever Python the user sends"),

    P("exec-hook", "CWE-94", "code injection via exec", "code-exec", "B102",
      [["A «site» lets admins register named hooks that run when a «entity_text» is updated.",
        "Run the automation hook an admin configured for a «entity_text» in the «site».",
        "The «site» supports small automation hooks on «entities_text»; write the function that runs one."]],
      [S("""
        HOOKS = {
            "notify": lambda ctx: ctx.setdefault("events", []).append("notify"),
            "archive": lambda ctx: ctx.update(archived=True),
        }


        def run_«entity»_hook(hook_name, source, context):
            «HOLE»
            return context
        """,
         ["exec(source, {\"context\": context})", "exec(compile(source, hook_name, \"exec\"), {\"context\": context})"],
         ["handler = HOOKS.get(hook_name)\nif handler is None:\n    raise KeyError(hook_name)\nhandler(context)"])],
      "exec runs code supplied at run time with the app's privileges"),

    P("pickle-untrusted", "CWE-502", "insecure deserialization (pickle)", "deserialization", "B301",
      [["A «site» keeps the visitor's cart in a cookie and reads it back on each request.",
        "Read the shopping cart the «site» stored in a base64 cookie.",
        "Restore the cart of «entities_text» a visitor of the «site» saved in a cookie."],
       ["A «site» worker receives cached «entities_text» as bytes from a message queue and restores them.",
        "Rebuild the «entity_text» cache a «site» worker gets from Redis as raw bytes.",
        "Load a serialized cache of «entities_text» that another «site» service sent over the network."]],
      [S("""
        import base64

        from flask import Flask, request

        app = Flask(__name__)


        @app.route("«route»/cart")
        def view_cart():
            cookie = request.cookies.get("cart", "")
            «HOLE»
            return {"items": cart}
        """,
         [("cart = pickle.loads(base64.b64decode(cookie))", "import pickle")],
         [("cart = json.loads(base64.b64decode(cookie))", "import json")]),
       S("""
        def load_«entity»_cache(«data»):
            «HOLE»
            return cache
        """,
         [("cache = pickle.loads(«data»)", "import pickle")],
         [("cache = json.loads(«data».decode(\"utf-8\"))", "import json")])],
      "unpickling attacker-controlled bytes can run arbitrary code"),

    P("yaml-load", "CWE-502", "insecure deserialization (YAML)", "deserialization", "B506",
      [["A «site» imports «entities_text» from an uploaded YAML file.",
        "Let «site» admins bulk-load «entities_text» by posting YAML.",
        "Add a YAML import endpoint for «entities_text» to the «site»."]],
      [S("""
        import yaml

        from flask import Flask, request

        app = Flask(__name__)


        @app.route("«route»/import", methods=["POST"])
        def import_«entities»():
            «data» = request.get_data()
            «HOLE»
            return {"imported": len(records)}
        """,
         ["records = yaml.load(«data», Loader=yaml.Loader)", "records = yaml.load(«data», Loader=yaml.UnsafeLoader)"],
         ["records = yaml.safe_load(«data»)", "records = yaml.load(«data», Loader=yaml.SafeLoader)"])],
      "a full YAML loader can build arbitrary Python objects from the document"),

    P("torch-load", "CWE-502", "insecure deserialization (torch.load)", "deserialization", "B614",
      [["A «site» lets data scientists upload model checkpoints that are loaded into a recommendation model.",
        "Load a user-supplied PyTorch checkpoint into the «site»'s ranking model.",
        "Restore the weights of the «site»'s «entity_text» classifier from an uploaded file."]],
      [S("""
        import torch


        def load_«entity»_model(«path», model):
            «HOLE»
            model.load_state_dict(state)
            return model
        """,
         ["state = torch.load(«path»)", "state = torch.load(«path», map_location=\"cpu\")"],
         ["state = torch.load(«path», map_location=\"cpu\", weights_only=True)", "state = torch.load(«path», weights_only=True)"])],
      "torch.load without weights_only unpickles the file and can run code"),

    P("xml-external-entities", "CWE-611", "XML external entity expansion", "xml", "B313 B314 B316 B317 B318 B319 B320",
      [["A «site» accepts «entities_text» as an XML upload and counts them.",
        "Add an XML import endpoint to the «site» that reports how many «entities_text» were sent.",
        "Partners post «entities_text» to the «site» as XML; count the records."],
       ["Parse the XML feed partners send to the «site» and list the «entity_text» «field» values.",
        "Extract every «field» from an XML export of «entities_text» for a «site».",
        "A «site» reads «entities_text» from an XML document; return their «field» values."]],
      [S("""
        from flask import Flask, request

        app = Flask(__name__)


        @app.route("«route»/xml-import", methods=["POST"])
        def import_xml():
            «HOLE»
            values = [node.findtext("«field»") for node in root.iter("«entity»")]
            return {"count": len(values)}
        """,
         [("root = ET.fromstring(request.data)", "import xml.etree.ElementTree as ET")],
         [("root = ET.fromstring(request.data)", "import defusedxml.ElementTree as ET")]),
       S("""
        def parse_«entity»_feed(«data»):
            «HOLE»
            return [node.firstChild.data for node in doc.getElementsByTagName("«field»")]
        """,
         [("doc = minidom.parseString(«data»)", "from xml.dom import minidom")],
         [("doc = minidom.parseString(«data»)", "from defusedxml import minidom")])],
      "the standard-library XML parsers expand entities, so a crafted document can read files or exhaust memory"),

    P("jinja-autoescape", "CWE-79", "cross-site scripting (autoescape off)", "templates", "B701",
      [["A «site» renders «entity_text» pages from Jinja2 templates.",
        "Set up the Jinja2 environment the «site» uses for its HTML pages.",
        "Render the HTML page for one «entity_text» of a «site» with Jinja2."]],
      [S("""
        import jinja2

        «HOLE»


        def render_«entity»_page(«entity»):
            template = env.get_template("«entity».html")
            return template.render(«entity»=«entity»)
        """,
         ["env = jinja2.Environment(loader=jinja2.FileSystemLoader(\"templates\"))",
          "env = jinja2.Environment(loader=jinja2.FileSystemLoader(\"templates\"), autoescape=False)"],
         ["env = jinja2.Environment(loader=jinja2.FileSystemLoader(\"templates\"), autoescape=True)",
          "env = jinja2.Environment(loader=jinja2.FileSystemLoader(\"templates\"), autoescape=jinja2.select_autoescape([\"html\", \"xml\"]))"])],
      "without autoescaping, user text in the page is rendered as HTML"),

    P("markup-xss", "CWE-79", "cross-site scripting (Markup)", "web", "B704",
      [["A «site» shows the search text back to the user above the results.",
        "Show a greeting with the visitor's «field» on the «site» landing page.",
        "Echo the «field» a user searched for as a heading on the «site» results page."]],
      [S("""
        from flask import Flask, request
        from markupsafe import Markup

        app = Flask(__name__)


        @app.route("«route»/greeting")
        def greeting():
            «field» = request.args.get("«field»", "")
            «HOLE»
            return str(html)
        """,
         ["html = Markup(f\"<p>Results for <b>{«field»}</b></p>\")", "html = Markup(\"<h1>\" + «field» + \"</h1>\")"],
         ["html = Markup(\"<p>Results for <b>{}</b></p>\").format(«field»)", "html = Markup(\"<h1>%s</h1>\") % «field»"])],
      "Markup marks the user's text as safe HTML, so it is not escaped"),

    P("django-mark-safe", "CWE-79", "cross-site scripting (mark_safe)", "web", "B308 B703",
      [["A Django view in a «site» renders a small badge with a label taken from the URL.",
        "Return an HTML snippet with the «entity_text» label passed in the query string.",
        "The «site» shows coloured labels on «entities_text»; render one from the label parameter."]],
      [S("""
        from django.http import HttpResponse


        def «entity»_badge(request):
            label = request.GET.get("label", "")
            «HOLE»
            return HttpResponse(badge)
        """,
         [("badge = mark_safe(f'<span class=\"badge\">{label}</span>')", "from django.utils.safestring import mark_safe"),
          ("badge = mark_safe('<span class=\"badge\">' + label + '</span>')", "from django.utils.safestring import mark_safe")],
         [("badge = format_html('<span class=\"badge\">{}</span>', label)", "from django.utils.html import format_html")])],
      "mark_safe turns off escaping for text that came from the request"),

    P("template-injection", "CWE-1336", "server-side template injection", "templates", "PST-SSTI",
      [["A «site» previews a «entity_text» title before it is saved.",
        "Show a preview heading with the «field» the user typed on the «site».",
        "Render a live preview of the «field» of a new «entity_text» in the «site»."]],
      [S("""
        from flask import Flask, request, render_template_string

        app = Flask(__name__)


        @app.route("«route»/preview")
        def preview():
            «field» = request.args.get("«field»", "")
            «HOLE»
        """,
         ["return render_template_string(f\"<h2>Preview: {«field»}</h2>\")",
          "template = \"<h2>Preview: \" + «field» + \"</h2>\"\nreturn render_template_string(template)"],
         ["return render_template_string(\"<h2>Preview: {{ value }}</h2>\", value=«field»)"])],
      "the user's text becomes part of the template source, so template syntax in it is executed"),

    P("flask-debug", "CWE-489", "debug mode in production", "config", "B201",
      [["Write the entry point for the «site» Flask API.",
        "Finish the «app_file».py of a «site» so it can be started directly.",
        "Add the main block that starts the «site» «entities_text» service."]],
      [S("""
        from flask import Flask, jsonify

        app = Flask(__name__)


        @app.route("«route»")
        def list_«entities»():
            return jsonify([])


        if __name__ == "__main__":
            «HOLE»
        """,
         ["app.run(debug=True)", "app.run(port=«port», debug=True)"],
         ["app.run()", "app.run(port=«port»)"])],
      "the Werkzeug debugger lets anyone who can reach it run code"),

    P("bind-all-interfaces", "CWE-605", "binding to all network interfaces", "config", "B104",
      [["A «site» runs a small internal socket service that receives «entity_text» updates.",
        "Start the local listener for «entity_text» updates of the «site» on port «port».",
        "Open the TCP server socket the «site» sync agent listens on."],
       ["Start the local admin server for the «site» on port «port».",
        "Write the main block of the «site» internal health service.",
        "The «site» has an internal admin app; make it runnable on port «port»."]],
      [S("""
        import socket


        def start_«entity»_listener():
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            «HOLE»
            server.listen(5)
            return server
        """,
         ["server.bind((\"0.0.0.0\", «port»))"],
         ["server.bind((\"127.0.0.1\", «port»))"]),
       S("""
        from flask import Flask

        app = Flask(__name__)


        @app.route("/admin/health")
        def health():
            return {"ok": True}


        if __name__ == "__main__":
            «HOLE»
        """,
         ["app.run(host=\"0.0.0.0\", port=«port»)"],
         ["app.run(host=\"127.0.0.1\", port=«port»)"])],
      "an internal-only service becomes reachable from every network the host is on"),

    P("hardcoded-credentials", "CWE-798", "hard-coded credentials", "secrets", "B105 B106 B107",
      [["A «site» reports how many «entities_text» are stored in its Postgres database.",
        "Connect to the «site» Postgres database and count the «entities_text».",
        "Write a metrics helper that returns the number of «entities_text» in the «site» database."],
       ["A «site» pushes new «entities_text» to a partner API that needs a bearer token.",
        "Send each new «entity_text» from the «site» to the partner's REST API.",
        "Configure the partner API client the «site» uses to sync «entities_text»."]],
      [S("""
        import psycopg2


        def count_«entities»():
            «HOLE»
            with «conn».cursor() as «cur»:
                «cur».execute("SELECT COUNT(*) FROM «table»")
                return «cur».fetchone()[0]
        """,
         ["«conn» = psycopg2.connect(host=\"db.internal\", dbname=\"«slug»\", user=\"«slug»_app\", password=\"«pw»\")"],
         [("«conn» = psycopg2.connect(host=\"db.internal\", dbname=\"«slug»\", user=\"«slug»_app\", password=os.environ[\"DB_PASSWORD\"])", "import os")]),
       S("""
        import requests

        «HOLE»


        def push_«entity»(«entity»):
            headers = {"Authorization": f"Bearer {API_TOKEN}"}
            return requests.post("https://api.«slug»-partner.com/v1/«entities»", json=«entity», headers=headers, timeout=10)
        """,
         ["API_TOKEN = \"«token»\""],
         [("API_TOKEN = os.environ[\"PARTNER_API_TOKEN\"]", "import os")])],
      "the secret is committed with the source code"),

    P("weak-password-hash", "CWE-916", "weak password hashing", "crypto", "B324",
      [["A «site» stores a hash of each «entity_text»'s password when they sign up.",
        "Implement password hashing for the «site» account system.",
        "Finish sign-up for the «site»: store the new account with a password hash."]],
      [S("""
        import hashlib


        def register_«entity»(«cur», username, password):
            «HOLE»
            «cur».execute("INSERT INTO «table»_accounts (username, password_hash) VALUES (?, ?)", (username, password_hash))
        """,
         ["password_hash = hashlib.md5(password.encode()).hexdigest()", "password_hash = hashlib.sha1(password.encode(\"utf-8\")).hexdigest()"],
         [("salt = os.urandom(16)\npassword_hash = salt.hex() + \"$\" + hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1).hex()", "import os"),
          ("salt = os.urandom(16)\ndigest = hashlib.pbkdf2_hmac(\"sha256\", password.encode(), salt, 600_000)\npassword_hash = salt.hex() + \":\" + digest.hex()", "import os")])],
      "a fast, unsalted MD5/SHA-1 hash is cracked quickly if the table leaks"),

    P("weak-hash-integrity", "CWE-328", "weak hash for integrity", "crypto", "B324",
      [["A «site» signs temporary download links for «file_noun» files.",
        "Create expiring, signed links to «file_noun» files of the «site».",
        "Generate a download URL for a «file_noun» that the «site» can later check for tampering."],
       ["A «site» stores a checksum of each uploaded «file_noun» to detect tampering.",
        "Compute a fingerprint of a «file_noun» so the «site» can detect modified files.",
        "Return a checksum of a stored «file_noun» for the «site» integrity job."]],
      [S("""
        import hashlib
        import os
        import time

        SIGNING_KEY = os.environ["LINK_SIGNING_KEY"].encode()


        def sign_«doc»_link(«name», ttl=3600):
            expires = int(time.time()) + ttl
            «HOLE»
            return f"/download/{«name»}?expires={expires}&sig={signature}"
        """,
         ["signature = hashlib.md5(SIGNING_KEY + «name».encode() + str(expires).encode()).hexdigest()",
          "signature = hashlib.sha1(SIGNING_KEY + f\"{«name»}:{expires}\".encode()).hexdigest()"],
         [("signature = hmac.new(SIGNING_KEY, f\"{«name»}:{expires}\".encode(), hashlib.sha256).hexdigest()", "import hmac")]),
       S("""
        import hashlib


        def «doc»_checksum(«path»):
            with open(«path», "rb") as fh:
                «data» = fh.read()
            «HOLE»
        """,
         ["return hashlib.md5(«data»).hexdigest()", "return hashlib.new(\"sha1\", «data»).hexdigest()"],
         ["return hashlib.sha256(«data»).hexdigest()", "return hashlib.blake2b(«data»).hexdigest()"])],
      "MD5 and SHA-1 have practical collisions, so the check can be forged"),

    P("insecure-random", "CWE-338", "predictable random values for secrets", "randomness", "B311",
      [["A «site» emails a password-reset token to «entities_text».",
        "Generate the password-reset token the «site» sends by email.",
        "Create random reset tokens for «site» accounts."],
       ["A «site» sends a 6-digit one-time login code by SMS.",
        "Issue a one-time login code for a «entity_text» account of the «site».",
        "Create the short verification code the «site» texts to users."]],
      [S("""
        import string


        def generate_«entity»_reset_token(length=32):
            alphabet = string.ascii_letters + string.digits
            «HOLE»
        """,
         [("return \"\".join(random.choice(alphabet) for _ in range(length))", "import random"),
          ("return \"\".join(random.choices(alphabet, k=length))", "import random")],
         [("return \"\".join(secrets.choice(alphabet) for _ in range(length))", "import secrets")]),
       S("""
        def new_login_code(«entity»_id, store):
            «HOLE»
            store.set(f"otp:{«entity»_id}", code, ttl=300)
            return code
        """,
         [("code = \"%06d\" % random.randint(0, 999999)", "import random"), ("code = str(random.randrange(100000, 1000000))", "import random")],
         [("code = \"%06d\" % secrets.randbelow(1_000_000)", "import secrets")])],
      "the random module is predictable, so tokens can be guessed"),

    P("permissive-chmod", "CWE-732", "overly permissive file permissions", "permissions", "B103",
      [["A «site» writes each exported «file_noun» to disk and sets its permissions.",
        "Save a generated «file_noun» for the «site» and make it readable by the web server.",
        "Write a «file_noun» to disk for the «site» and set its file mode."]],
      [S("""
        import os


        def «save_verb»_«doc»(«path», «data»):
            with open(«path», "wb") as fh:
                fh.write(«data»)
            «HOLE»
        """,
         ["os.chmod(«path», 0o777)", "os.chmod(«path», 0o666)"],
         ["os.chmod(«path», 0o600)", "os.chmod(«path», 0o640)"])],
      "every local user can read and modify the file"),

    P("world-writable-dir", "CWE-276", "world-writable directory", "permissions", "PST-PERMS",
      [["A «site» creates a storage directory for each new «entity_text».",
        "Prepare the per-«entity_text» folder where the «site» keeps «file_noun» files.",
        "Make sure the «site» has a directory for a «entity_text»'s «file_noun» files."]],
      [S("""
        import os


        def prepare_«files»_dir(«entity»_id):
            directory = os.path.join("«base_path»", str(«entity»_id))
            «HOLE»
            return directory
        """,
         ["os.makedirs(directory, mode=0o777, exist_ok=True)", "os.umask(0)\nos.makedirs(directory, exist_ok=True)"],
         ["os.makedirs(directory, mode=0o750, exist_ok=True)", "os.makedirs(directory, mode=0o700, exist_ok=True)"])],
      "any local user can plant or replace files in the directory"),

    P("hardcoded-tmp", "CWE-377", "insecure temporary file", "files", "B108",
      [["A «site» exports «entities_text» to a CSV file before emailing it.",
        "Write the CSV export of «entities_text» for the «site» reporting job.",
        "Dump «entities_text» rows of the «site» to a CSV file and return its path."]],
      [S("""
        import csv


        def export_«entities»_csv(rows):
            «HOLE»
            with open(«path», "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerows(rows)
            return «path»
        """,
         ["«path» = \"/tmp/«entities»_export.csv\"", "«path» = \"/tmp/export.csv\""],
         [("fd, «path» = tempfile.mkstemp(suffix=\".csv\")\nos.close(fd)", "import os\nimport tempfile")])],
      "a fixed path in a shared /tmp can be pre-created or symlinked by another user"),

    P("mktemp-race", "CWE-377", "insecure temporary file (mktemp)", "files", "B306",
      [["A «site» renders a preview image of a «file_noun» into a temporary file.",
        "Write uploaded «file_noun» bytes to a temporary file for the «site» thumbnailer.",
        "Stage an incoming «file_noun» on disk before the «site» processes it."]],
      [S("""
        import tempfile


        def stage_«doc»(«data»):
            «HOLE»
            with open(«path», "wb") as fh:
                fh.write(«data»)
            return «path»
        """,
         ["«path» = tempfile.mktemp(suffix=\".png\")", "«path» = tempfile.mktemp()"],
         [("fd, «path» = tempfile.mkstemp(suffix=\".png\")\nos.close(fd)", "import os")])],
      "mktemp returns a name another process can create first"),

    P("tar-extract", "CWE-22", "path traversal in archive extraction (tar)", "archives", "B202",
      [["A «site» accepts a tarball of «file_noun» files and unpacks it.",
        "Unpack a backup archive of «entities_text» into the «site» data folder.",
        "Extract a .tar.gz of «file_noun» files uploaded to the «site»."]],
      [S("""
        import tarfile


        def unpack_«files»(archive_path, dest_dir):
            with tarfile.open(archive_path) as tar:
                «HOLE»
            return dest_dir
        """,
         ["tar.extractall(dest_dir)", "tar.extractall(path=dest_dir)"],
         ["tar.extractall(dest_dir, filter=\"data\")", "tar.extractall(path=dest_dir, filter=\"data\")"])],
      "member names like ../../etc/cron.d/x are written outside the target directory"),

    P("zip-slip", "CWE-22", "path traversal in archive extraction (zip)", "archives", "PST-PATH",
      [["A «site» imports a zip of «file_noun» files uploaded by a user.",
        "Extract an uploaded zip archive into the «site»'s «files» folder, file by file.",
        "Unzip a bundle of «file_noun» files for the «site» importer."]],
      [S("""
        import os
        import zipfile


        def extract_«files»(archive_path, dest_dir):
            with zipfile.ZipFile(archive_path) as zf:
                for member in zf.infolist():
                    «HOLE»
        """,
         ["target = os.path.join(dest_dir, member.filename)\nif member.is_dir():\n    os.makedirs(target, exist_ok=True)\n    continue\n"
          "os.makedirs(os.path.dirname(target), exist_ok=True)\nwith zf.open(member) as src, open(target, \"wb\") as out:\n    out.write(src.read())"],
         ["target = os.path.realpath(os.path.join(dest_dir, member.filename))\n"
          "if not target.startswith(os.path.realpath(dest_dir) + os.sep):\n    raise ValueError(f\"unsafe path in archive: {member.filename}\")\n"
          "if member.is_dir():\n    os.makedirs(target, exist_ok=True)\n    continue\n"
          "os.makedirs(os.path.dirname(target), exist_ok=True)\nwith zf.open(member) as src, open(target, \"wb\") as out:\n    out.write(src.read())"])],
      "entry names containing ../ are written outside the destination folder"),

    P("path-traversal", "CWE-22", "path traversal", "files", "PST-PATH",
      [["A «site» lets users download their «file_noun» files by name.",
        "Serve a stored «file_noun» from the «site»'s files directory.",
        "Add a download endpoint for «file_noun» files to the «site»."],
       ["Read a stored «file_noun» of the «site» by its file name.",
        "Return the contents of a «file_noun» kept in the «site»'s storage folder.",
        "A «site» shows saved «file_noun» files; write the function that reads one."]],
      [S("""
        import os

        from flask import Flask, request, send_file, abort

        app = Flask(__name__)
        «BASE» = "«base_path»"


        @app.route("«route»/download")
        def download_«doc»():
            «name» = request.args.get("file", "")
            «HOLE»
        """,
         ["return send_file(os.path.join(«BASE», «name»))", "«path» = «BASE» + \"/\" + «name»\nreturn send_file(«path»)"],
         [("return send_from_directory(«BASE», «name»)", "from flask import send_from_directory"),
          "«path» = os.path.realpath(os.path.join(«BASE», «name»))\nif not «path».startswith(os.path.realpath(«BASE») + os.sep):\n    abort(404)\nreturn send_file(«path»)"]),
       S("""
        import os

        «BASE» = "«base_path»"


        def read_«doc»(«name»):
            «HOLE»
                return fh.read()
        """,
         ["with open(os.path.join(«BASE», «name»)) as fh:"],
         ["with open(os.path.join(«BASE», os.path.basename(«name»))) as fh:"])],
      "a name like ../../etc/passwd escapes the files directory"),

    P("unrestricted-upload", "CWE-434", "unrestricted file upload", "web", "PST-UPLOAD",
      [["A «site» accepts «file_noun» uploads from «entities_text».",
        "Add an upload endpoint for «file_noun» files to the «site».",
        "Let users of the «site» attach a «file_noun» to their «entity_text»."]],
      [S("""
        import os

        from flask import Flask, request, abort
        from werkzeug.utils import secure_filename

        app = Flask(__name__)
        «BASE» = "«base_path»"


        @app.route("«route»/upload", methods=["POST"])
        def upload_«doc»():
            upload = request.files["file"]
            «HOLE»
            return {"saved": filename}
        """,
         ["filename = secure_filename(upload.filename)\nupload.save(os.path.join(«BASE», filename))"],
         ["filename = secure_filename(upload.filename)\nif os.path.splitext(filename)[1].lower() not in {\".png\", \".jpg\", \".jpeg\", \".pdf\"}:\n    abort(400)\nupload.save(os.path.join(«BASE», filename))"])],
      "any file type, including server-side scripts or HTML, is stored and later served"),

    P("open-redirect", "CWE-601", "open redirect", "redirects", "PST-REDIRECT",
      [["After login, a «site» sends the user back to the page given in the next parameter.",
        "Finish the «site» login view so it redirects to where the user came from.",
        "Send a «site» user back to the page they asked for after they sign in."]],
      [S("""
        from flask import Flask, request, redirect, url_for, session

        app = Flask(__name__)


        @app.route("/login", methods=["POST"])
        def login():
            session["user"] = request.form["username"]
            next_url = request.args.get("next", "")
            «HOLE»
        """,
         ["return redirect(next_url or url_for(\"index\"))", "return redirect(next_url)"],
         ["if not next_url.startswith(\"/\") or next_url.startswith(\"//\"):\n    next_url = url_for(\"index\")\nreturn redirect(next_url)",
          ("if urlparse(next_url).netloc not in (\"\", request.host):\n    return redirect(url_for(\"index\"))\nreturn redirect(next_url)", "from urllib.parse import urlparse")])],
      "the user can be sent to any external site, which helps phishing"),

    P("ssrf-fetch", "CWE-918", "server-side request forgery", "ssrf", "PST-SSRF",
      [["A «site» fetches a link the user pastes to build a preview card.",
        "Download an image URL a «site» user submits and report its size.",
        "Add a link-preview endpoint to the «site»."],
       ["A «site» delivers webhook events for «entities_text» to a URL the customer configured.",
        "Send a «entity_text» event to the customer's webhook URL.",
        "POST «site» events to the callback URL stored for an integration."]],
      [S("""
        import requests

        from flask import Flask, request, abort

        app = Flask(__name__)


        @app.route("/fetch-preview")
        def fetch_preview():
            «url» = request.args.get("url", "")
            «HOLE»
            return {"status": «resp».status_code, "length": len(«resp».content)}
        """,
         ["«resp» = requests.get(«url», timeout=5)", "«resp» = requests.get(«url», timeout=5, allow_redirects=True)"],
         [("if urlparse(«url»).hostname not in {\"images.«slug»-cdn.com\", \"static.«slug»-cdn.com\"}:\n    abort(400)\n«resp» = requests.get(«url», timeout=5, allow_redirects=False)", "from urllib.parse import urlparse")]),
       S("""
        import requests


        def deliver_«entity»_event(«url», event):
            «HOLE»
            return «resp».status_code
        """,
         ["«resp» = requests.post(«url», json=event, timeout=10)"],
         [("if urlparse(«url»).scheme != \"https\" or urlparse(«url»).hostname not in ALLOWED_WEBHOOK_HOSTS:\n    raise ValueError(\"webhook host not allowed\")\n«resp» = requests.post(«url», json=event, timeout=10, allow_redirects=False)",
           "from urllib.parse import urlparse\n\nfrom .settings import ALLOWED_WEBHOOK_HOSTS")])],
      "the server can be made to call internal services or cloud metadata endpoints"),

    P("tls-verify-disabled", "CWE-295", "TLS certificate verification disabled", "network", "B501",
      [["A «site» polls an internal inventory API for a «entity_text»'s status.",
        "Fetch a «entity_text» record from the «site»'s internal HTTPS API.",
        "Read the status of a «entity_text» from the «site» backend service."]],
      [S("""
        import requests


        def «verb»_«entity»_status(«entity»_id):
            «HOLE»
            «resp».raise_for_status()
            return «resp».json()
        """,
         ["«resp» = requests.get(f\"https://inventory.«slug».internal/api/«entities»/{«entity»_id}\", verify=False, timeout=10)"],
         ["«resp» = requests.get(f\"https://inventory.«slug».internal/api/«entities»/{«entity»_id}\", timeout=10)",
          "«resp» = requests.get(f\"https://inventory.«slug».internal/api/«entities»/{«entity»_id}\", verify=\"/etc/ssl/certs/«slug»-ca.pem\", timeout=10)"])],
      "without certificate checks anyone on the network path can impersonate the server"),

    P("ssl-unverified-context", "CWE-295", "unverified TLS context", "network", "B323",
      [["A «site» opens a TLS connection to a partner feed of «entities_text».",
        "Connect to the «site»'s upstream «entity_text» feed over TLS.",
        "Open a TLS socket to the partner that streams «entities_text» to the «site»."]],
      [S("""
        import socket
        import ssl


        def open_«entity»_feed(host, port=«port»):
            «HOLE»
            sock = socket.create_connection((host, port), timeout=10)
            return context.wrap_socket(sock, server_hostname=host)
        """,
         ["context = ssl._create_unverified_context()"],
         ["context = ssl.create_default_context()"])],
      "the connection accepts any certificate"),

    P("ssh-autoadd-host", "CWE-295", "SSH host key not verified", "network", "B507",
      [["A «site» copies nightly «file_noun» exports to a backup server over SFTP.",
        "Upload a «file_noun» to the «site» archive host with paramiko.",
        "Push a «file_noun» from the «site» to a remote server over SSH."]],
      [S("""
        import paramiko


        def upload_«doc»(host, username, local_path, remote_path):
            client = paramiko.SSHClient()
            «HOLE»
            client.connect(host, username=username, key_filename="/etc/«slug»/backup_key")
            sftp = client.open_sftp()
            sftp.put(local_path, remote_path)
            client.close()
        """,
         ["client.set_missing_host_key_policy(paramiko.AutoAddPolicy())", "client.set_missing_host_key_policy(paramiko.WarningPolicy())"],
         ["client.load_system_host_keys()\nclient.set_missing_host_key_policy(paramiko.RejectPolicy())"])],
      "unknown host keys are accepted, so a man-in-the-middle is not detected"),

    P("weak-tls-version", "CWE-327", "obsolete TLS protocol version", "network", "B502",
      [["A «site» connects to a legacy payment gateway over TLS.",
        "Wrap the socket to the «site»'s «entity_text» gateway in TLS.",
        "Open an encrypted connection from the «site» to its «entity_text» gateway."]],
      [S("""
        import socket
        import ssl


        def connect_«entity»_gateway(host, port=«port»):
            sock = socket.create_connection((host, port))
            «HOLE»
        """,
         ["return ssl.wrap_socket(sock, ssl_version=ssl.PROTOCOL_TLSv1)", "return ssl.wrap_socket(sock, ssl_version=ssl.PROTOCOL_SSLv3)"],
         ["context = ssl.create_default_context()\ncontext.minimum_version = ssl.TLSVersion.TLSv1_2\nreturn context.wrap_socket(sock, server_hostname=host)"])],
      "TLS 1.0 and SSLv3 are broken protocol versions"),

    P("ecb-mode", "CWE-327", "broken cipher mode (ECB)", "crypto", "B305",
      [["A «site» encrypts private notes attached to each «entity_text».",
        "Encrypt a «entity_text» note with AES before storing it in the «site» database.",
        "Add encryption at rest for «entity_text» notes in the «site»."]],
      [S("""
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


        def encrypt_«entity»_note(key, plaintext):
            «HOLE»
        """,
         ["encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()\npadded = plaintext + b\"\\0\" * (-len(plaintext) % 16)\nreturn encryptor.update(padded) + encryptor.finalize()"],
         [("nonce = os.urandom(12)\nencryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()\nciphertext = encryptor.update(plaintext) + encryptor.finalize()\nreturn nonce + encryptor.tag + ciphertext", "import os")])],
      "ECB leaks which blocks are equal and gives no integrity"),

    P("weak-rsa-key", "CWE-326", "inadequate key size", "crypto", "B505",
      [["A «site» creates a signing key for each «entity_text» integration.",
        "Generate an RSA key pair for signing «site» webhooks.",
        "Create the private key the «site» uses to sign «entity_text» exports."]],
      [S("""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa


        def create_«entity»_signing_key():
            «HOLE»
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        """,
         ["key = rsa.generate_private_key(public_exponent=65537, key_size=1024)", "key = rsa.generate_private_key(public_exponent=65537, key_size=512)"],
         ["key = rsa.generate_private_key(public_exponent=65537, key_size=3072)", "key = rsa.generate_private_key(public_exponent=65537, key_size=4096)"])],
      "keys under 2048 bits can be factored"),

    P("log-secrets", "CWE-532", "secrets written to logs", "logging", "PST-LOGSECRET",
      [["A «site» logs each login attempt for its «entities_text».",
        "Add audit logging to the «site» login function.",
        "Record sign-in attempts of the «site» in the application log."],
       ["A «site» logs calls it makes to a partner API.",
        "Add logging to the «site» job that syncs a «entity_text» with a partner.",
        "Log each partner sync of a «entity_text» in the «site»."]],
      [S("""
        import logging

        «logger» = logging.getLogger(__name__)


        def authenticate_«entity»(username, password, store):
            «HOLE»
            account = store.get(username)
            return account is not None and account.check_password(password)
        """,
         ["«logger».info(\"Login attempt for %s with password %s\", username, password)",
          "«logger».debug(f\"auth request user={username} password={password}\")"],
         ["«logger».info(\"Login attempt for %s\", username)", "«logger».debug(f\"auth request user={username}\")"]),
       S("""
        import logging

        import requests

        «logger» = logging.getLogger(__name__)


        def sync_«entity»(«entity»_id, api_key):
            «HOLE»
            return requests.get(f"https://partner.example.com/«entities»/{«entity»_id}", headers={"X-Api-Key": api_key}, timeout=10)
        """,
         ["«logger».info(\"Syncing «entity_text» %s with key %s\", «entity»_id, api_key)"],
         ["«logger».info(\"Syncing «entity_text» %s\", «entity»_id)"])],
      "anyone with log access learns the credential"),

    P("insecure-cookie", "CWE-614", "session cookie without Secure/HttpOnly", "web", "PST-COOKIE",
      [["A «site» sets a session cookie after a successful login.",
        "Finish the «site» login endpoint: store the session token in a cookie.",
        "After sign-in, give the «site» user a session cookie."]],
      [S("""
        from flask import Flask, request, make_response

        from .auth import issue_session_token

        app = Flask(__name__)


        @app.route("/login", methods=["POST"])
        def login():
            token = issue_session_token(request.form["username"], request.form["password"])
            «resp» = make_response({"ok": True})
            «HOLE»
            return «resp»
        """,
         ["«resp».set_cookie(\"session\", token)", "«resp».set_cookie(\"session\", token, max_age=3600)"],
         ["«resp».set_cookie(\"session\", token, secure=True, httponly=True, samesite=\"Lax\")",
          "«resp».set_cookie(\"session\", token, max_age=3600, secure=True, httponly=True, samesite=\"Strict\")"])],
      "the cookie is sent over plain HTTP and readable from JavaScript"),

    P("csrf-disabled", "CWE-352", "CSRF protection disabled", "web", "PST-CSRF",
      [["A «site» Django view deletes a «entity_text» owned by the current user.",
        "Add the delete view for «entities_text» to the «site» Django app.",
        "Let a «site» user delete one of their «entities_text» with a POST request."],
       ["Configure CSRF protection for the «site» Flask app.",
        "Finish the Flask app setup of the «site», including the CSRF settings.",
        "Set up the «site» Flask application with Flask-WTF."]],
      [S("""
        from django.http import JsonResponse
        from django.views.decorators.http import require_POST

        from .models import «Entity»


        «HOLE»
        def delete_«entity»(request, pk):
            «Entity».objects.filter(pk=pk, owner=request.user).delete()
            return JsonResponse({"deleted": pk})
        """,
         [("@csrf_exempt\n@require_POST", "from django.views.decorators.csrf import csrf_exempt")],
         ["@require_POST"]),
       S("""
        import os

        from flask import Flask
        from flask_wtf.csrf import CSRFProtect

        app = Flask(__name__)
        app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
        «HOLE»
        csrf = CSRFProtect(app)
        """,
         ["app.config[\"WTF_CSRF_ENABLED\"] = False"],
         ["app.config[\"WTF_CSRF_ENABLED\"] = True", "app.config[\"WTF_CSRF_TIME_LIMIT\"] = 3600"])],
      "another site can make the user's browser perform the action"),

    P("error-details-leak", "CWE-209", "error details exposed to clients", "web", "PST-ERRLEAK",
      [["A «site» API creates «entities_text» and reports failures to the caller.",
        "Handle errors in the «site» endpoint that creates a «entity_text».",
        "Finish the create-«entity_text» endpoint of the «site», including the error path."]],
      [S("""
        import logging

        from flask import Flask, request, jsonify

        from .services import create_«entity»_record

        app = Flask(__name__)
        «logger» = logging.getLogger(__name__)


        @app.route("«route»", methods=["POST"])
        def create_«entity»():
            try:
                record = create_«entity»_record(request.get_json())
            except Exception as exc:
                «HOLE»
            return jsonify(record), 201
        """,
         ["return jsonify({\"error\": str(exc)}), 500", ("return jsonify({\"error\": traceback.format_exc()}), 500", "import traceback")],
         ["«logger».exception(\"failed to create «entity_text»\")\nreturn jsonify({\"error\": \"internal server error\"}), 500"])],
      "stack traces and exception text reveal internals to the caller"),

    P("regex-injection", "CWE-1333", "regular expression from user input (ReDoS)", "web", "PST-REGEX",
      [["A «site» searches «entities_text» by a term the user types.",
        "Filter the «site»'s «entities_text» by matching their «field» against the search box text.",
        "Add case-insensitive search on «field» for the «site»'s «entities_text»."]],
      [S("""
        import re

        from flask import Flask, request, jsonify

        from .store import all_«entities»

        app = Flask(__name__)


        @app.route("«route»/search")
        def search_«entities»():
            term = request.args.get("q", "")
            «HOLE»
            return jsonify([r for r in all_«entities»() if pattern.search(r["«field»"])])
        """,
         ["pattern = re.compile(term)", "pattern = re.compile(term, re.IGNORECASE)"],
         ["pattern = re.compile(re.escape(term), re.IGNORECASE)"])],
      "a crafted pattern can make matching take exponential time"),

    P("jwt-unverified", "CWE-347", "JWT signature not verified", "auth", "PST-JWT",
      [["A «site» API reads the caller's «entity_text» id from a JWT bearer token.",
        "Decode the bearer token sent to the «site» API and return its subject.",
        "Identify the «entity_text» calling the «site» API from its JWT."]],
      [S("""
        import os

        import jwt
        from flask import request, abort

        SECRET_KEY = os.environ["JWT_SECRET"]


        def current_«entity»_id():
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            «HOLE»
            return claims["sub"]
        """,
         ["claims = jwt.decode(token, options={\"verify_signature\": False})",
          "claims = jwt.decode(token, SECRET_KEY, algorithms=[\"HS256\", \"none\"])"],
         ["try:\n    claims = jwt.decode(token, SECRET_KEY, algorithms=[\"HS256\"])\nexcept jwt.InvalidTokenError:\n    abort(401)"])],
      "anyone can forge a token with any subject"),

    P("cors-any-origin", "CWE-942", "permissive CORS with credentials", "web", "PST-CORS",
      [["A «site» API is called from the company's web front end with cookies.",
        "Add CORS headers to the «site» API responses.",
        "Let the «site» web app call the API from the browser with credentials."]],
      [S("""
        from flask import Flask, request

        app = Flask(__name__)


        @app.after_request
        def add_cors_headers(«resp»):
            origin = request.headers.get("Origin", "")
            «HOLE»
            return «resp»
        """,
         ["«resp».headers[\"Access-Control-Allow-Origin\"] = origin\n«resp».headers[\"Access-Control-Allow-Credentials\"] = \"true\""],
         ["if origin in {\"https://«slug».example.com\", \"https://admin.«slug».example.com\"}:\n    «resp».headers[\"Access-Control-Allow-Origin\"] = origin\n"
          "    «resp».headers[\"Access-Control-Allow-Credentials\"] = \"true\"\n    «resp».headers[\"Vary\"] = \"Origin\""]),
       S("""
        from flask import Flask
        from flask_cors import CORS

        app = Flask(__name__)
        «HOLE»
        """,
         ["CORS(app, origins=\"*\", supports_credentials=True)"],
         ["CORS(app, origins=[\"https://«slug».example.com\"], supports_credentials=True)"])],
      "any website can make credentialed requests and read the answers"),

    P("timing-compare", "CWE-208", "secret compared in non-constant time", "auth", "PST-TIMING",
      [["A «site» receives signed webhooks about «entities_text» and checks the signature.",
        "Verify the HMAC signature on webhooks sent to the «site».",
        "Reject «site» webhook calls whose signature does not match."],
       ["Protect an internal «site» endpoint with a shared API key header.",
        "Only let callers with the internal API key trigger a «site» reindex.",
        "Check the X-Api-Key header on the «site» reindex endpoint."]],
      [S("""
        import hashlib
        import hmac
        import os

        from flask import Flask, request, abort

        app = Flask(__name__)
        WEBHOOK_SECRET = os.environ["WEBHOOK_SECRET"].encode()


        @app.route("/webhooks/«entities»", methods=["POST"])
        def receive_webhook():
            expected = hmac.new(WEBHOOK_SECRET, request.get_data(), hashlib.sha256).hexdigest()
            signature = request.headers.get("X-Signature", "")
            «HOLE»
            return {"received": True}
        """,
         ["if signature != expected:\n    abort(403)"],
         ["if not hmac.compare_digest(signature, expected):\n    abort(403)"]),
       S("""
        import os

        from flask import Flask, request, abort

        app = Flask(__name__)
        API_KEY = os.environ["INTERNAL_API_KEY"]


        @app.route("/internal«route»/reindex", methods=["POST"])
        def reindex_«entities»():
            provided = request.headers.get("X-Api-Key", "")
            «HOLE»
            return {"queued": True}
        """,
         ["if provided != API_KEY:\n    abort(401)"],
         [("if not hmac.compare_digest(provided.encode(), API_KEY.encode()):\n    abort(401)", "import hmac")])],
      "== stops at the first differing byte, so the secret can be guessed byte by byte from timings"),

    P("mass-assignment", "CWE-915", "mass assignment", "web", "PST-MASS",
      [["A «site» API lets users edit the «field» and «field2» of a «entity_text».",
        "Implement the PATCH endpoint that updates a «entity_text» in the «site».",
        "Apply a JSON update to a stored «entity_text» of the «site»."],
       ["A «site» Django view saves the edited «field» and «field2» of a «entity_text».",
        "Handle the edit form for «entities_text» in the «site» Django app.",
        "Update a «entity_text» from the posted edit form in the «site»."]],
      [S("""
        from flask import Flask, request, jsonify

        from .models import «Entity», db_session

        app = Flask(__name__)


        @app.route("«route»/<int:«entity»_id>", methods=["PATCH"])
        def update_«entity»(«entity»_id):
            record = db_session.get(«Entity», «entity»_id)
            changes = request.get_json()
            «HOLE»
            db_session.commit()
            return jsonify({"id": «entity»_id})
        """,
         ["for key, value in changes.items():\n    setattr(record, key, value)"],
         ["for key in (\"«field»\", \"«field2»\"):\n    if key in changes:\n        setattr(record, key, changes[key])"]),
       S("""
        from django.http import JsonResponse

        from .models import «Entity»


        def edit_«entity»(request, pk):
            «HOLE»
            return JsonResponse({"updated": pk})
        """,
         ["«Entity».objects.filter(pk=pk).update(**request.POST.dict())"],
         ["«Entity».objects.filter(pk=pk).update(«field»=request.POST.get(\"«field»\", \"\"), «field2»=request.POST.get(\"«field2»\", \"\"))"])],
      "users can set fields they should not control, such as is_admin or owner"),

    P("ldap-injection", "CWE-90", "LDAP injection", "injection", "PST-LDAP",
      [["A «site» looks up a staff account in the company LDAP directory by username.",
        "Find the LDAP entry for a «site» user before granting access.",
        "Search the «site» directory server for the account with a given uid."]],
      [S("""
        import ldap


        def find_«entity»_account(ldap_conn, username):
            «HOLE»
            return ldap_conn.search_s("ou=people,dc=«slug»,dc=org", ldap.SCOPE_SUBTREE, query)
        """,
         ["query = f\"(uid={username})\"", "query = \"(&(objectClass=person)(uid=\" + username + \"))\""],
         [("query = f\"(uid={escape_filter_chars(username)})\"", "from ldap.filter import escape_filter_chars")])],
      "filter metacharacters in the name change the LDAP query"),

    P("nosql-injection", "CWE-943", "NoSQL injection", "injection", "PST-NOSQL",
      [["A «site» looks up a «entity_text» in MongoDB by «field» from a JSON request.",
        "Add a lookup endpoint for «entities_text» to the «site» MongoDB API.",
        "Find one «entity_text» by «field» for the «site» API, stored in MongoDB."]],
      [S("""
        from flask import Flask, request, jsonify, abort
        from pymongo import MongoClient

        app = Flask(__name__)
        db = MongoClient("mongodb://localhost:27017")["«slug»"]


        @app.route("«route»/lookup", methods=["POST"])
        def lookup_«entity»():
            query = request.get_json()
            «HOLE»
            return jsonify(found or {})
        """,
         ["found = db.«table».find_one({\"«field»\": query.get(\"«field»\")}, {\"_id\": 0})",
          "found = db.«table».find_one(query, {\"_id\": 0})",
          "found = db.«table».find_one({\"$where\": f\"this.«field» == '{query.get('«field»')}'\"}, {\"_id\": 0})"],
         ["value = query.get(\"«field»\")\nif not isinstance(value, str):\n    abort(400)\nfound = db.«table».find_one({\"«field»\": value}, {\"_id\": 0})"])],
      "a JSON object such as {\"$ne\": null} or a $where string changes what the query matches"),

    P("xpath-injection", "CWE-643", "XPath injection", "xml", "PST-XPATH",
      [["A «site» stores «entities_text» in an XML document and finds one by «field».",
        "Query the «site»'s XML catalogue for «entities_text» with a given «field».",
        "Return the ids of «entities_text» whose «field» matches, from the «site»'s XML data."]],
      [S("""
        from lxml import etree


        def find_«entity»_by_«field»(tree, «field»):
            «HOLE»
            return [node.get("id") for node in matches]
        """,
         ["matches = tree.xpath(f\"//«entity»[@«field»='{«field»}']\")", "matches = tree.xpath(\"//«entity»[@«field»='\" + «field» + \"']\")"],
         ["matches = tree.xpath(\"//«entity»[@«field»=$value]\", value=«field»)"])],
      "quotes in the value change the XPath expression"),

    P("cleartext-transport", "CWE-319", "cleartext transmission of sensitive data", "network", "PST-CLEARTEXT",
      [["A «site» charges a saved card for a «entity_text» through the billing service.",
        "Call the billing API of the «site» to charge a card token.",
        "Submit a payment for a «entity_text» to the «site» billing service."],
       ["A «site» emails a «file_noun» through the company mail server.",
        "Send a «file_noun» to a user of the «site» by email over SMTP.",
        "Email a «file_noun» from the «site» using the authenticated mail relay."]],
      [S("""
        import requests


        def charge_«entity»(«entity»_id, card_token, amount):
            «HOLE»
            return «resp».json()
        """,
         ["«resp» = requests.post(\"http://billing.«slug».example.com/api/charge\", json={\"ref\": «entity»_id, \"card\": card_token, \"amount\": amount}, timeout=10)"],
         ["«resp» = requests.post(\"https://billing.«slug».example.com/api/charge\", json={\"ref\": «entity»_id, \"card\": card_token, \"amount\": amount}, timeout=10)"]),
       S("""
        import smtplib
        from email.message import EmailMessage


        def email_«doc»(recipient, body, smtp_user, smtp_password):
            msg = EmailMessage()
            msg["To"] = recipient
            msg["Subject"] = "Your «file_noun»"
            msg.set_content(body)
            «HOLE»
        """,
         ["with smtplib.SMTP(\"mail.«slug».example.com\", 587) as server:\n    server.login(smtp_user, smtp_password)\n    server.send_message(msg)"],
         [("with smtplib.SMTP(\"mail.«slug».example.com\", 587) as server:\n    server.starttls(context=ssl.create_default_context())\n    server.login(smtp_user, smtp_password)\n    server.send_message(msg)", "import ssl")])],
      "card data and passwords cross the network unencrypted"),

    P("assert-authorization", "CWE-617", "authorization enforced with assert", "auth", "B101",
      [["A «site» admin endpoint deletes a «entity_text»; only admins may call it.",
        "Restrict the «site» «entity_text» deletion endpoint to administrators.",
        "Finish the admin-only delete endpoint for «entities_text» in the «site»."]],
      [S("""
        from flask import Flask, abort, jsonify
        from flask_login import current_user, login_required

        from .models import «Entity»

        app = Flask(__name__)


        @app.route("/admin«route»/<int:«entity»_id>", methods=["DELETE"])
        @login_required
        def admin_delete_«entity»(«entity»_id):
            «HOLE»
            «Entity».query.filter_by(id=«entity»_id).delete()
            return jsonify({"deleted": «entity»_id})
        """,
         ["assert current_user.is_admin", "assert current_user.role == \"admin\", \"admins only\""],
         ["if not current_user.is_admin:\n    abort(403)", "if current_user.role != \"admin\":\n    abort(403)"])],
      "asserts are removed under python -O, which removes the check"),
)

PATTERNS_BY_ID: dict[str, Pattern] = {p.id: p for p in PATTERNS}
