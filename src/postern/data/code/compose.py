"""Composed programs: a vulnerability kernel placed inside varied, ordinary program structure.

A composed row is (entry point) x (kernel shape) x (configuration style) x (benign steps before and
after the kernel, some with their own helpers or module state) x (error handling) x (an optional
test) x (the kernel's realisation). Every part is ordinary code a real project has; the parts bring
their own calls (``argparse``, ``logging``, ``time``, ``uuid``, ``json`` ...), so distinct skeletons
and call-sets come from structure, not from renamed identifiers.

The insecure and the secure twin share everything but the kernel's hole (and the imports its
fill needs). Benign steps never touch what would make them a flaw of their own: nothing logs a
secret, nothing validates the kernel's input in a way that would hide the flaw from the verifier,
and servers bind to 127.0.0.1.
"""

import random
import re
from dataclasses import dataclass
from typing import Any

from postern.data.code.kernels import Kernel
from postern.data.code.patterns import PATTERNS_BY_ID, Fill, Shape

# settings a kernel may read: key -> default value expression («tokens» are vocabulary fields)
CONFIG_DEFAULTS = {
    "db_path": '"«db_file»"',
    "base_dir": '"«base_path»"',
    "dest_dir": '"«base_path»/incoming"',
    "templates_dir": '"templates"',
    "ssh_key": '"/etc/«slug»/deploy_key"',
}

# What a kernel's input may go through before the kernel: name -> (kinds, lines, imports, needs, module lines, helper)
# Steps on the input never validate it (no allowlist, startswith, isinstance ...): the insecure twin stays a flaw.
_PRE: dict[str, dict[str, Any]] = {
    "strip": {"kinds": "text path url", "code": "«arg» = «arg».strip()"},
    "required": {"kinds": "text path url blob secret", "code": 'if not «arg»:\n    raise ValueError("«arg» is required")'},
    "too_long": {"kinds": "text path url blob secret", "code": 'if len(«arg») > «limit»:\n    raise ValueError("«arg» is too long")'},
    "log_input": {"kinds": "text path url", "code": '«logger».info("«fn» called with %s", «arg»)', "logger": True},
    "nfkc": {"kinds": "text", "code": '«arg» = unicodedata.normalize("NFKC", «arg»)', "imports": "import unicodedata"},
    "spaces": {"kinds": "text", "code": '«arg» = re.sub(r"\\s+", " ", «arg»)', "imports": "import re"},
    "fspath": {"kinds": "path", "code": "«arg» = os.fspath(«arg»)", "imports": "import os"},
    "to_bytes": {"kinds": "blob", "code": 'if isinstance(«arg», str):\n    «arg» = «arg».encode("utf-8")'},
    "counter": {"kinds": "text path url blob secret", "code": 'CALLS["«fn»"] += 1',
                "module": "CALLS = Counter()", "imports": "from collections import Counter"},
    "rate_limit": {"kinds": "text url", "code": "now = time.monotonic()\nif now - _last_seen.get(«arg», 0.0) < «delay»:\n"
                   '    raise RuntimeError("too many requests")\n_last_seen[«arg»] = now',
                   "module": "_last_seen: dict[str, float] = {}", "imports": "import time"},
    "preview": {"kinds": "text url", "code": "preview = textwrap.shorten(«arg», width=«width»)\n"
                '«logger».debug("working on %s", preview)', "imports": "import textwrap", "logger": True},
    "require_helper": {"kinds": "text path url blob secret", "code": '«arg» = _require(«arg», "«arg»")',
                       "helper": 'def _require(value, label):\n    if not value:\n        raise ValueError(f"{label} is required")\n'
                                 "    return value"},
    "clean_helper": {"kinds": "text", "code": "«arg» = _collapse(«arg»)",
                     "helper": 'def _collapse(text):\n    return " ".join(text.split())'},
    "audit_helper": {"kinds": "text path url", "code": '_audit("«fn»", «arg»)',
                     "helper": 'def _audit(action, detail):\n    AUDIT_TRAIL.append({"action": action, "detail": detail, "at": time.time()})',
                     "module": "AUDIT_TRAIL: list[dict] = []", "imports": "import time"},
    "length_helper": {"kinds": "text path url blob", "code": "_check_length(«arg»)",
                      "helper": "def _check_length(value, limit=«limit»):\n    if len(value) > limit:\n"
                                '        raise ValueError(f"input longer than {limit} characters")'},
    "deadline": {"kinds": "text path url blob secret", "code": "deadline = time.monotonic() + «seconds»",
                 "post": 'if time.monotonic() > deadline:\n    «logger».warning("«fn» ran past its deadline")',
                 "imports": "import time", "logger": True},
}

# Steps around the kernel: (before, after)
# steps that do the same job (an inline check and the helper doing that check): at most one of each
_ROLES = {"required": "presence", "require_helper": "presence", "too_long": "length", "length_helper": "length",
          "spaces": "whitespace", "clean_helper": "whitespace"}


def _one_per_role(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for n in names:
        role = _ROLES.get(n, n)
        if role not in seen:
            seen.add(role)
            out.append(n)
    return out


_PAIRS: dict[str, dict[str, Any]] = {
    "timer": {"pre": "started = time.perf_counter()", "post": '«logger».debug("«fn» took %.3f s", time.perf_counter() - started)',
              "imports": "import time", "logger": True},
    "request_id": {"pre": "request_id = uuid.uuid4().hex[:12]", "post": '«logger».info("request %s finished", request_id)',
                   "imports": "import uuid", "logger": True},
    "received": {"pre": "received_at = datetime.now(timezone.utc)",
                 "post": '«logger».debug("«fn» finished %s after start", datetime.now(timezone.utc) - received_at)',
                 "imports": "from datetime import datetime, timezone", "logger": True},
    "cache": {"pre": "cached = _cache.get(«arg»)\nif cached is not None:\n    return cached", "post": "_cache[«arg»] = «result»",
              "module": "_cache: dict = {}", "no_kinds": "secret blob", "no_results": "response secret"},
}

# Steps on the kernel's result: name -> (result kinds, code, imports)
_POST: dict[str, dict[str, Any]] = {
    "none_check": {"results": "rows text path object secret", "code": 'if «result» is None:\n    raise LookupError("«fn» found nothing")'},
    "log_count": {"results": "rows", "code": '«logger».info("«fn» returned %d rows", len(«result»))', "logger": True},
    "log_value": {"results": "count bool path text", "code": '«logger».debug("«fn» result: %r", «result»)', "logger": True},
    "sorted": {"results": "rows", "code": "«result» = sorted(«result», key=str)"},
    "listify": {"results": "rows", "code": "«result» = list(«result»)"},
    "truncate": {"results": "text", "code": "«result» = «result»[:«limit»]"},
    "stamp": {"results": "rows text path object count bool", "code":
              '«result» = {"«res_key»": «result», "generated_at": datetime.now(timezone.utc).isoformat()}',
              "imports": "from datetime import datetime, timezone"},
    "json_size": {"results": "rows object count text", "code": 'encoded = json.dumps(«result», default=str)\n'
                  '«logger».debug("«fn» payload is %d bytes", len(encoded))', "imports": "import json", "logger": True},
    "empty_warn": {"results": "rows text", "code": 'if not «result»:\n    «logger».warning("«fn» produced nothing")', "logger": True},
    "path_exists": {"results": "path", "code": 'if not os.path.exists(«result»):\n    raise FileNotFoundError(«result»)',
                    "imports": "import os"},
    "int_cast": {"results": "count", "code": "«result» = int(«result»)"},
}

_LOGGERS = (
    ("logger = logging.getLogger(__name__)", "logger"),
    ('log = logging.getLogger("«slug»")', "log"),
    ('logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")\nlogger = logging.getLogger(__name__)', "logger"),
    ('logger = logging.getLogger("«slug».«entities»")\nlogger.setLevel(logging.DEBUG)', "logger"),
)

_ERRORS = ("OSError", "ValueError", "Exception", "(OSError, ValueError)", "RuntimeError")


_SECRET_WORD = re.compile(r"token|secret|pass|key|sig|cookie|jwt|hash", re.I)


def _noun(kernel: Kernel) -> str:
    """A word for function and route names; never one that reads as a secret (a function called
    `issue_token` whose result is printed would look like a secret written to a log)."""
    parts = [p for p in kernel.id.split("-") if not _SECRET_WORD.search(p)]
    return parts[-1] if parts else "action"


def _validates_in_block(kernel: Kernel) -> bool:
    """A secure fill that validates with an `if` and is checked by a data-flow rule: postern's checks
    see that validation only at function level, not inside a `try` or `with` block."""
    rules = PATTERNS_BY_ID[kernel.pattern].rules
    return any(r.startswith("PST-") for r in rules) and any("if " in f.code for f in kernel.secure)


def _lines(text: str, indent: int = 0) -> list[str]:
    pad = " " * indent
    return [pad + ln if ln.strip() else "" for ln in text.split("\n")]


@dataclass
class Composed:
    """One composed program: its template (with «HOLE»), the two fills and what it is made of."""

    shape: Shape
    insecure: Fill
    secure: Fill
    ctx: dict[str, str]
    task: str
    parts: dict[str, Any]


def _config(style: str, keys: list[str], ctx: dict[str, str]) -> tuple[list[str], dict[str, str], list[str]]:
    """Module lines, key -> reference expression, imports for one configuration style."""
    if not keys:
        return [], {}, []
    vals = {k: CONFIG_DEFAULTS[k] for k in keys}
    up = {k: k.upper() for k in keys}
    slug = ctx["slug"].upper()
    if style == "constants":
        return [f"{up[k]} = {v}" for k, v in vals.items()], dict(up), []
    if style == "environment":
        return ([f'{up[k]} = os.environ.get("{slug}_{up[k]}", {v})' for k, v in vals.items()], dict(up), ["import os"])
    if style == "dict":
        body = ["SETTINGS = {"] + [f'    "{k}": {v},' for k, v in vals.items()] + ["}"]
        return body, {k: f'SETTINGS["{k}"]' for k in keys}, []
    if style == "dataclass":
        body = ["@dataclass(frozen=True)", "class Settings:"] + [f"    {k}: str = {v}" for k, v in vals.items()]
        return body + ["", "", "SETTINGS = Settings()"], {k: f"SETTINGS.{k}" for k in keys}, ["from dataclasses import dataclass"]
    if style == "json":
        body = ['with open("«slug»_settings.json", encoding="utf-8") as settings_file:', "    SETTINGS = json.load(settings_file)"]
        return body, {k: f'SETTINGS.get("{k}", {v})' for k, v in vals.items()}, ["import json"]
    if style == "ini":
        body = ["CONFIG = configparser.ConfigParser()", 'CONFIG.read("«slug».ini")']
        return body, {k: f'CONFIG.get("«slug»", "{k}", fallback={v})' for k, v in vals.items()}, ["import configparser"]
    raise ValueError(style)


CONFIG_STYLES = ("constants", "environment", "dict", "dataclass", "json", "ini")


def _sample_arg(kind: str) -> str:
    return {"text": '"example"', "path": '"report.txt"', "url": '"https://images.«slug»-cdn.com/logo.png"',
            "blob": '"e30="', "secret": '"example-value"'}[kind]


class _Builder:
    def __init__(self, rng: random.Random, kernel: Kernel, ctx: dict[str, str]):
        self.rng, self.k, self.ctx = rng, kernel, ctx
        self.imports: set[str] = set()
        self.module: list[str] = []
        self.helpers: list[str] = []
        self.uses_logger = kernel.logger
        self.parts: dict[str, Any] = {}

    def add_imports(self, text: str | None) -> None:
        for ln in (text or "").split("\n"):
            if ln.strip():
                self.imports.add(ln)

    # -- the kernel function -------------------------------------------------------------
    def steps(self) -> tuple[list[str], list[str]]:
        k, rng = self.k, self.rng
        pre_names = [n for n, s in _PRE.items() if k.kind in s["kinds"].split()]
        pairs = [n for n, s in _PAIRS.items() if k.kind not in s.get("no_kinds", "").split()
                 and k.result_kind not in s.get("no_results", "").split()]
        posts = [n for n, s in _POST.items() if k.result_kind in s["results"].split()]
        chosen_pre = _one_per_role(rng.sample(pre_names, rng.choice((0, 1, 1, 2, 2))))
        chosen_pairs = rng.sample(pairs, rng.choice((0, 0, 0, 1, 1)))
        chosen_post = rng.sample(posts, min(len(posts), rng.choice((0, 1, 1))))
        self.parts.update(pre=chosen_pre, pairs=chosen_pairs, post=chosen_post)
        before: list[str] = []
        after: list[str] = []
        for name in chosen_pairs:
            s = _PAIRS[name]
            before += s["pre"].split("\n")
            after_pair = s["post"].split("\n")
            after = after_pair + after if name == "cache" else after + after_pair
            self._use(s)
        for name in chosen_pre:
            s = _PRE[name]
            before += s["code"].split("\n")
            if "post" in s:
                after += s["post"].split("\n")
            self._use(s)
        for name in chosen_post:
            s = _POST[name]
            after = s["code"].split("\n") + after
            self._use(s)
        return before, after

    def _use(self, s: dict[str, Any]) -> None:
        self.add_imports(s.get("imports"))
        if s.get("logger"):
            self.uses_logger = True
        if s.get("module") and s["module"] not in self.module:
            self.module.append(s["module"])
        if s.get("helper") and s["helper"] not in self.helpers:
            self.helpers.append(s["helper"])

    def body(self) -> list[str]:
        before, after = self.steps()
        wrap = self.rng.choice(("plain", "plain", "plain", "try_log", "try_wrap", "try_return", "lock"))
        if self.k.result_kind == "response" and wrap == "try_return" or wrap != "plain" and _validates_in_block(self.k):
            wrap = "plain"
        self.parts["wrap"] = wrap
        exc = self.rng.choice(_ERRORS)
        if wrap == "plain":
            core = ["«HOLE»"]
        elif wrap == "lock":
            core = ["with _LOCK:", "    «HOLE»"]
            self.module.append("_LOCK = threading.Lock()")
            self.add_imports("import threading")
        elif wrap == "try_log":
            core = ["try:", "    «HOLE»", f"except {exc} as exc:", '    «logger».error("«fn» failed: %s", exc)', "    raise"]
            self.uses_logger = True
        elif wrap == "try_wrap":
            core = ["try:", "    «HOLE»", f"except {exc} as exc:", '    raise RuntimeError("«fn» failed") from exc']
        else:
            core = ["try:", "    «HOLE»", f"except {exc}:", '    «logger».exception("«fn» failed")', "    return None"]
            self.uses_logger = True
        return before + core + after + ["return «result»"]

    def kernel(self) -> tuple[list[str], str]:
        """The kernel as a function or a method; returns its lines and how callers reach it."""
        annotate = self.rng.random() < 0.4
        arg = "«arg»: str" if annotate and self.k.kind != "blob" else "«arg»"
        body = self.body()
        shape = self.rng.choice(("function", "function", "method", "static"))
        self.parts["kernel_shape"] = shape
        if shape == "function":
            return [f"def «fn»({arg}):"] + _lines("\n".join(body), 4), "«fn»"
        init = self.rng.choice((
            ["def __init__(self):", "    self.calls = 0"],
            ["def __init__(self, name=\"«slug»\"):", "    self.name = name"],
            ["def __init__(self):", "    self.created_at = time.time()"],
        ))
        if "time.time" in init[1]:
            self.add_imports("import time")
        if shape == "static":
            lines = ["class «Entity»Tools:", "    @staticmethod", f"    def «fn»({arg}):"] + _lines("\n".join(body), 8)
            return lines, "«Entity»Tools.«fn»"
        lines = ["class «Entity»Service:"] + _lines("\n".join(init), 4) + [""] + [f"    def «fn»(self, {arg}):"]
        lines += _lines("\n".join(body), 8)
        holder = self.rng.choice(("service", "SERVICE"))
        return lines + ["", "", f"{holder} = «Entity»Service()"], f"{holder}.«fn»"

    # -- the entry point ---------------------------------------------------------------------
    def entry(self, call: str) -> tuple[list[str], str]:
        options = list(_ENTRIES)
        if self.k.frameworks is not None:
            options = [e for e in options if _ENTRIES[e][0] in self.k.frameworks]
        name = self.rng.choice(options)
        self.parts["entry"] = name
        framework, imports, code, phrase = _ENTRIES[name]
        self.parts["framework"] = framework
        self.add_imports(imports)
        respond = "«call»(«arg»)" if self.k.result_kind == "response" else None
        text = code(self.rng, respond)
        return _lines(text.replace("«call»", call)), phrase


def _flask(rng: random.Random, respond: str | None) -> str:
    ret = respond and f"return {respond}"
    v = rng.randrange(4)
    if v == 0:
        body = ['«arg» = request.args.get("«arg»", "")', ret or 'return jsonify({"«res_key»": «call»(«arg»)})']
        head = ['@app.route("«endpoint»")', "def «handler»():"]
    elif v == 1:
        body = ['«arg» = request.form.get("«arg»")', "if «arg» is None:", "    abort(400)", ret or "return jsonify(«res_key»=«call»(«arg»))"]
        head = ['@app.route("«endpoint»", methods=["POST"])', "def «handler»():"]
    elif v == 2:
        body = ["payload = request.get_json(silent=True) or {}", '«arg» = payload.get("«arg»", "")',
                ret or 'return {"«res_key»": «call»(«arg»)}, 200']
        head = ['@app.post("«endpoint»")', "def «handler»():"]
    else:
        body = [ret or "return jsonify(«call»(«arg»))"]
        head = ['@app.get("«endpoint»/<«arg»>")', "def «handler»(«arg»):"]
    out = ["app = Flask(__name__)", "", ""] + head + _lines("\n".join(body), 4)
    if rng.random() < 0.4:
        out += ["", "", 'if __name__ == "__main__":', f'    app.run(host="127.0.0.1", port=«port»)']
    return "\n".join(out)


def _django(rng: random.Random, respond: str | None) -> str:
    v = rng.randrange(3)
    if v == 0:
        out = ["def «handler»(request):", '    «arg» = request.GET.get("«arg»", "")',
               '    return JsonResponse({"«res_key»": «call»(«arg»)})']
    elif v == 1:
        out = ["@require_POST", "def «handler»(request):", '    «arg» = request.POST.get("«arg»")', "    if not «arg»:",
               '        return HttpResponseBadRequest("missing «arg»")', '    return JsonResponse({"«res_key»": «call»(«arg»)})']
    else:
        out = ["class «Entity»View(View):", "    def get(self, request):", '        «arg» = request.GET.get("«arg»", "")',
               '        return JsonResponse({"«res_key»": «call»(«arg»)})']
    if rng.random() < 0.5:
        view = "«Entity»View.as_view()" if v == 2 else "«handler»"
        out += ["", "", f'urlpatterns = [path("«route_rel»/", {view})]']
    return "\n".join(out)


def _fastapi(rng: random.Random, respond: str | None) -> str:
    v = rng.randrange(3)
    if v == 0:
        out = ["app = FastAPI()", "", "", '@app.get("«endpoint»")', "def «handler»(«arg»: str):",
               '    return {"«res_key»": «call»(«arg»)}']
    elif v == 1:
        out = ["app = FastAPI()", "", "", "class «Entity»Request(BaseModel):", "    «arg»: str", "", "",
               '@app.post("«endpoint»")', "def «handler»(body: «Entity»Request):", '    return {"«res_key»": «call»(body.«arg»)}']
    else:
        out = ["app = FastAPI()", "", "", '@app.get("«endpoint»/{«arg»}")', "async def «handler»(«arg»: str):", "    try:",
               '        return {"«res_key»": «call»(«arg»)}', "    except ValueError:",
               '        raise HTTPException(status_code=400, detail="invalid «arg»")']
    if rng.random() < 0.4:
        out += ["", "", 'if __name__ == "__main__":', "    uvicorn.run(app, host=\"127.0.0.1\", port=«port»)"]
    return "\n".join(out)


def _aiohttp(rng: random.Random, respond: str | None) -> str:
    if rng.random() < 0.5:
        out = ["async def «handler»(request):", '    «arg» = request.query.get("«arg»", "")',
               '    return web.json_response({"«res_key»": «call»(«arg»)})', "", "",
               "app = web.Application()", 'app.router.add_get("«endpoint»", «handler»)']
    else:
        out = ["routes = web.RouteTableDef()", "", "", '@routes.post("«endpoint»")', "async def «handler»(request):",
               "    form = await request.post()", '    «arg» = form.get("«arg»", "")',
               '    return web.json_response({"«res_key»": «call»(«arg»)})', "", "",
               "app = web.Application()", "app.add_routes(routes)"]
    if rng.random() < 0.5:
        out += ["", "", 'if __name__ == "__main__":', '    web.run_app(app, host="127.0.0.1", port=«port»)']
    return "\n".join(out)


def _httpserver(rng: random.Random, respond: str | None) -> str:
    if rng.random() < 0.5:
        method = ["    def do_GET(self):", "        params = parse_qs(urlparse(self.path).query)",
                  '        «arg» = params.get("«arg»", [""])[0]']
    else:
        method = ["    def do_POST(self):", '        length = int(self.headers.get("Content-Length", 0))',
                  '        «arg» = self.rfile.read(length).decode("utf-8")']
    out = ["class «Entity»Handler(BaseHTTPRequestHandler):"] + method + [
        '        body = json.dumps({"«res_key»": «call»(«arg»)}, default=str).encode("utf-8")',
        "        self.send_response(200)", '        self.send_header("Content-Type", "application/json")',
        '        self.send_header("Content-Length", str(len(body)))', "        self.end_headers()", "        self.wfile.write(body)",
        "", "", "def serve():", '    server = HTTPServer(("127.0.0.1", «port»), «Entity»Handler)', "    server.serve_forever()"]
    if rng.random() < 0.5:
        out += ["", "", 'if __name__ == "__main__":', "    serve()"]
    return "\n".join(out)


def _argparse(rng: random.Random, respond: str | None) -> str:
    if rng.random() < 0.5:
        out = ["def main(argv=None):", '    parser = argparse.ArgumentParser(description="«summary»")',
               '    parser.add_argument("«arg»")', "    args = parser.parse_args(argv)", "    outcome = «call»(args.«arg»)", "    print(outcome)", "    return 0"]
    else:
        out = ["def main(argv=None):", '    parser = argparse.ArgumentParser(prog="«slug»-«arg»")',
               '    parser.add_argument("--«arg»", required=True)', '    parser.add_argument("--json", action="store_true")',
               "    args = parser.parse_args(argv)", "    result = «call»(args.«arg»)",
               "    print(json.dumps(result, default=str) if args.json else result)", "    return 0"]
    return "\n".join(out + ["", "", 'if __name__ == "__main__":', "    sys.exit(main())"])


def _argv(rng: random.Random, respond: str | None) -> str:
    if rng.random() < 0.5:
        return "\n".join(['if __name__ == "__main__":', "    if len(sys.argv) != 2:",
                          '        sys.exit(f"usage: {sys.argv[0]} «arg»")', "    print(«call»(sys.argv[1]))"])
    return "\n".join(["def main():", "    for line in sys.stdin:", "        line = line.strip()", "        if line:",
                      "            print(«call»(line))", "", "", 'if __name__ == "__main__":', "    main()"])


def _click(rng: random.Random, respond: str | None) -> str:
    return "\n".join(["@click.command()", '@click.argument("«arg»")', "def cli(«arg»):", "    click.echo(«call»(«arg»))",
                      "", "", 'if __name__ == "__main__":', "    cli()"])


def _library(rng: random.Random, respond: str | None) -> str:
    return '__all__ = ["«fn»"]' if rng.random() < 0.5 else ""


_ENTRIES = {
    "flask": ("flask", "from flask import Flask, abort, jsonify, request", _flask, "It is served by a small Flask app."),
    "django": ("django", "from django.http import HttpResponseBadRequest, JsonResponse\nfrom django.urls import path\n"
               "from django.views import View\nfrom django.views.decorators.http import require_POST", _django,
               "It is part of a Django project."),
    "fastapi": ("fastapi", "from fastapi import FastAPI, HTTPException\nfrom pydantic import BaseModel\nimport uvicorn", _fastapi,
                "It is exposed through a FastAPI service."),
    "aiohttp": ("aiohttp", "from aiohttp import web", _aiohttp, "It runs inside an aiohttp web server."),
    "httpserver": ("httpserver", "import json\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\n"
                   "from urllib.parse import parse_qs, urlparse", _httpserver, "It is served with the standard library's http.server."),
    "argparse": ("cli", "import argparse\nimport json\nimport sys", _argparse, "It is a command-line tool."),
    "argv": ("cli", "import sys", _argv, "It is a small script run from the shell."),
    "click": ("cli", "import click", _click, "It is a click command-line tool."),
    "library": ("library", "", _library, "It is a helper module other code imports."),
}


def _test(rng: random.Random, kind: str, call: str) -> tuple[list[str], str]:
    sample = _sample_arg(kind)
    if rng.random() < 0.5:
        return ["def test_«fn»_returns_a_value():", f"    assert {call}({sample}) is not None"], ""
    return (["class «Entity»Test(unittest.TestCase):", "    def test_«fn»(self):", f"        self.assertIsNotNone({call}({sample}))"],
            "import unittest")


def _tidy_imports(lines: set[str]) -> list[str]:
    plain = sorted(ln for ln in lines if ln.startswith("import "))
    froms = sorted(ln for ln in lines if ln.startswith("from "))
    future = [ln for ln in froms if ln.startswith("from __future__")]
    froms = [ln for ln in froms if ln not in future]
    return future + plain + froms


def compose(rng: random.Random, kernel: Kernel, ctx: dict[str, str], fills: tuple[int, int] | None = None) -> Composed:
    """Draw one program around `kernel` (deterministic for the state of `rng`); `fills` picks the
    (insecure, secure) realisations instead of drawing them."""
    b = _Builder(rng, kernel, ctx)
    ins_i, sec_i = rng.randrange(len(kernel.insecure)), rng.randrange(len(kernel.secure))
    if fills is not None:
        ins_i, sec_i = fills
    kernel_lines, call = b.kernel()
    entry_lines, phrase = b.entry(call)
    test_lines: list[str] = []
    if kernel.result_kind != "response" and not kernel.no_tests and rng.random() < 0.25:
        test_lines, test_import = _test(rng, kernel.kind, call)
        b.add_imports(test_import)
    style = rng.choice(CONFIG_STYLES)
    cfg_lines, refs, cfg_imports = _config(style, list(kernel.needs), ctx)
    b.parts["config"] = style if kernel.needs else None
    for imp in cfg_imports:
        b.add_imports(imp)
    prelude = _lines(kernel.prelude) if kernel.prelude else []
    if "os." in kernel.prelude:
        b.add_imports("import os")
    b.add_imports(kernel.prelude_imports)
    logger_lines: list[str] = []
    log_name = "logger"
    if b.uses_logger:
        text, log_name = rng.choice(_LOGGERS)
        logger_lines = _lines(text)
        b.add_imports("import logging")
    if rng.random() < 0.3:
        b.add_imports("from __future__ import annotations")
    blocks = [(_tidy_imports(b.imports), 0), (cfg_lines + prelude, 1), (logger_lines, 1), (b.module, 1)]
    blocks += [(_lines(h), 2) for h in b.helpers] + [(kernel_lines, 2), (entry_lines, 2), (test_lines, 2)]
    out: list[str] = []
    for block, gap in blocks:
        if not any(ln.strip() for ln in block):
            continue
        if out:
            out += [""] * max(gap, 2 if block[0].startswith("@") else 1)
        out += block
    template = "\n".join(out) + "\n"
    arg = rng.choice(kernel.args)
    noun = _noun(kernel)
    words = {"«arg»": arg, "«result»": kernel.result, "«logger»": log_name, "«limit»": str(rng.choice((64, 128, 200, 256, 512, 1024))),
             "«delay»": rng.choice(("0.5", "1.0", "0.25")), "«width»": str(rng.choice((40, 60, 80))),
             "«seconds»": str(rng.choice((2, 5, 10, 30))), "«fn»": f"{rng.choice(_VERBS[kernel.result_kind])}_«entity»_{noun}",
             "«handler»": f"{rng.choice(('handle', 'serve', 'api', 'view', 'endpoint'))}_«entity»_{noun}",
             "«res_key»": rng.choice(("result", "data", kernel.result.strip("«»"), "value")),
             "«summary»": kernel.tasks[0].capitalize(), "«route_rel»": f"«entities»/{noun}"}
    words["«endpoint»"] = f"«route»/{noun}"

    def sub(text: str) -> str:
        for key, ref in refs.items():
            text = text.replace(f"«cfg:{key}»", ref)
        for _ in range(2):
            for key, val in words.items():
                text = text.replace(key, val)
        return text

    ins, sec = kernel.insecure[ins_i], kernel.secure[sec_i]
    template = sub(template)
    task = rng.choice(kernel.tasks)
    b.parts.update(kernel=kernel.id, fill={"insecure": ins_i, "secure": sec_i})
    return Composed(Shape(template, (), ()), Fill(sub(ins.code), ins.imports), Fill(sub(sec.code), sec.imports), ctx,
                    f"A «site» needs code to {task}. {phrase}", b.parts)


_VERBS = {
    "rows": ("find", "list", "load", "collect"), "count": ("apply", "update", "run"), "bool": ("check", "verify", "confirm"),
    "text": ("render", "build", "read", "make"), "path": ("prepare", "write", "create", "export"),
    "object": ("parse", "load", "decode", "open"), "secret": ("generate", "issue", "derive", "make"),
    "response": ("finish", "complete", "route"),
}
