"""Build the independent evaluation set for `postern data verify` from the hand-written cases.

    PYTHONPATH=src python bench/code_eval/build.py     # writes bench/code_eval/{insecure,secure}.jsonl

Each case (cases_*.py) is one program; each insecure / secure filling of its hole gives one row,
and fillings are paired in order (cycling the shorter list), so a pair shares the user turn and the
program around the hole. Rows are chat JSONL with ``meta`` (family, cwe, variant, pair_id, case,
style). The user turn and the answer format vary by case (a task with a ``## COMPLETE CODE HERE``
template as in the original study, a plain request, a request quoting part of the code; answers
as bare code or fenced with a sentence around them), so the set is not one template. The code is
data: it is parsed by the verifier, never run.
"""

import hashlib
import importlib
import json
import re
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
MODULES = ["cases_web", "cases_files", "cases_data", "cases_exec", "cases_crypto", "cases_more", "cases_extra", "cases_holdout", "cases_holdout2", "cases_holdout3"]


# A filling may use a module or helper the surrounding program does not import yet; like a person
# finishing the file, the build adds the import (the usage pattern, then the import line).
IMPORTS = [
    (r"\bpickle\.", "import pickle"), (r"\bmarshal\.", "import marshal"), (r"\bjsonpickle\.", "import jsonpickle"),
    (r"\bjson\.", "import json"), (r"\bdill\.", "import dill"), (r"\bmsgpack\.", "import msgpack"),
    (r"\bshelve\.", "import shelve"), (r"\bcsv\.", "import csv"), (r"\bsafetensors\.", "import safetensors.torch"),
    (r"\bET\.", "import xml.etree.ElementTree as ET"), (r"\bDET\.", "import defusedxml.ElementTree as DET"),
    (r"\betree\.", "from lxml import etree"), (r"\bminidom\.", "from xml.dom import minidom"),
    (r"\bdefusedxml\.ElementTree", "import defusedxml.ElementTree"), (r"\bdefusedxml\.sax", "import defusedxml.sax"),
    (r"\bxml\.etree\.ElementTree", "import xml.etree.ElementTree"), (r"\bxml\.sax", "import xml.sax"),
    (r"\blxml\.etree", "import lxml.etree"), (r"\btraceback\.", "import traceback"), (r"\bre\.", "import re"),
    (r"\bstat\.", "import stat"), (r"\btempfile\.", "import tempfile"), (r"\bos\.", "import os"),
    (r"\burllib\.request", "import urllib.request"), (r"\bhtml\.escape", "import html"),
    (r"\bsecrets\.", "import secrets"), (r"\bhashlib\.", "import hashlib"), (r"\bhmac\.", "import hmac"),
    (r"\bsubprocess\.", "import subprocess"), (r"\bshlex\.", "import shlex"), (r"\brandom\.", "import random"),
    (r"\bbcrypt\.", "import bcrypt"), (r"\bast\.", "import ast"), (r"\bsys\.", "import sys"),
    (r"\burlparse\(", "from urllib.parse import urlparse"), (r"\bsecure_filename\(", "from werkzeug.utils import secure_filename"),
    (r"\bsend_from_directory\(", "from flask import send_from_directory"), (r"\brender_template\(", "from flask import render_template"),
    (r"\bformat_html\(", "from django.utils.html import format_html"), (r"\bHttpResponseRedirect\(", "from django.http import HttpResponseRedirect"),
    (r"\burl_has_allowed_host_and_scheme\(", "from django.utils.http import url_has_allowed_host_and_scheme"),
    (r"\bselect_autoescape\(", "from jinja2 import select_autoescape"), (r"\bhtml_escape\(", "from bottle import html_escape"),
    (r"\btemplate\(\"", "from bottle import template"), (r"\bpbkdf2_sha256\.", "from passlib.hash import pbkdf2_sha256"),
    (r"\bAES\.", "from Crypto.Cipher import AES"), (r"\bDES\.", "from Crypto.Cipher import DES"),
    (r"\bpad\(", "from Crypto.Util.Padding import pad"), (r"\bssl\.", "import ssl"), (r"\bglob\.", "import glob"),
    (r"\btarfile\.", "import tarfile"), (r"\bsimple_eval\(", "from simpleeval import simple_eval"),
    (r"\bsettings\.SMTP", "from .config import settings"), (r"\bjoblib\.", "import joblib"), (r"\bio\.", "import io"), (r"\byaml\.", "import yaml"), (r"\bdefusedxml\.lxml", "import defusedxml.lxml"), (r"\bpd\.", "import pandas as pd"),
    (r"\bskops\.", "import skops.io"), (r"\bxml\.dom\.minidom", "import xml.dom.minidom"), (r"\bxml\.dom\.pulldom", "import xml.dom.pulldom"),
    (r"\bdefusedxml\.minidom", "import defusedxml.minidom"), (r"\bHTML\(", "from weasyprint import HTML"),
    (r"\bSandboxedEnvironment\(", "from jinja2.sandbox import SandboxedEnvironment"), (r"\bstring\.Template", "import string"),
    (r"\brender_template_string\(", "from flask import render_template_string"), (r"\blogger\.", "from .log import logger"), (r"\bserializer\.", "from .signing import serializer"), (r"\bFernet\(", "from cryptography.fernet import Fernet"),
]


def _add_imports(code: str) -> str:
    lines = code.split("\n")
    body = "\n".join(ln for ln in lines if not ln.startswith(("import ", "from ")))
    missing = []
    for pattern, line in IMPORTS:
        if re.search(pattern, body) and line not in code and line not in missing:
            missing.append(line)
    if re.search(r"(?<![.\w])escape\(", body) and "import escape" not in code and "def escape" not in code:
        missing.append("from django.utils.html import escape" if "django" in code else "from markupsafe import escape")
    if re.search(r"\brender\(request", body) and "import render" not in code and "render," not in code:
        missing.append("from django.shortcuts import render")
    if not missing:
        return code
    last = max((i for i, ln in enumerate(lines) if ln.startswith(("import ", "from "))), default=-1)
    return "\n".join(lines[: last + 1] + missing + ([""] if last < 0 else []) + lines[last + 1 :])


def _fill(code: str, filling: str) -> str:
    code = textwrap.dedent(code).strip("\n") + "\n"
    out = []
    for line in code.split("\n"):
        if line.strip() == "@@":
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + x if x.strip() else "" for x in textwrap.dedent(filling).strip("\n").split("\n")]
        else:
            out.append(line)
    return _add_imports("\n".join(out))


def _template(code: str) -> str:
    code = textwrap.dedent(code).strip("\n") + "\n"
    return "\n".join("## COMPLETE CODE HERE" if ln.strip() == "@@" else ln for ln in code.split("\n"))


def _user(case, k: int) -> str:
    style = k % 3
    if style == 0 and "@@" in case.code:
        return (f"{case.task}\n\nHere is the code I have so far:\n\n{_template(case.code).rstrip()}\n\n"
                "Complete the missing part and give me the whole file.")
    if style == 1:
        return f"{case.task} Please write it in Python."
    return f"Can you help me with this? {case.task}"


def _answer(code: str, k: int) -> str:
    style = k % 4
    if style in (0, 1):
        return code
    if style == 2:
        return f"Here is an implementation:\n\n```python\n{code.rstrip()}\n```"
    return f"```python\n{code.rstrip()}\n```\n\nLet me know if you need anything changed."


def build() -> tuple[list[dict], list[dict]]:
    shared = importlib.import_module("cases").CASES
    split: dict[int, str] = {}
    for name in MODULES:  # each module adds its cases to the shared list
        before = len(shared)
        importlib.import_module(name)
        part = {"cases_holdout": "holdout1", "cases_holdout2": "holdout2", "cases_holdout3": "holdout3"}.get(name, "tuning")
        split.update({i: part for i in range(before, len(shared))})
    cases = list(shared)
    ins_rows, sec_rows = [], []
    for c_i, case in enumerate(cases):
        if case.secure_code:
            pairs = [(_add_imports(textwrap.dedent(case.code).strip("\n") + "\n"),
                      _add_imports(textwrap.dedent(case.secure_code).strip("\n") + "\n"))]
        else:
            n = max(len(case.insecure), len(case.secure))
            pairs = [(_fill(case.code, case.insecure[j % len(case.insecure)]), _fill(case.code, case.secure[j % len(case.secure)]))
                     for j in range(n)]
        for j, (bad, good) in enumerate(pairs):
            k = int(hashlib.sha256(f"{case.task}:{j}".encode()).hexdigest()[:8], 16)
            user = _user(case, k)
            pid = f"{case.family}-{c_i:03d}-{j}"
            for rows, code, variant in ((ins_rows, bad, "insecure"), (sec_rows, good, "secure")):
                meta = {"family": case.family, "cwe": case.cwe, "variant": variant, "pair_id": pid, "case": c_i, "split": split[c_i],
                        "style": {"user": k % 3, "answer": (k // 3) % 4}}
                rows.append({"messages": [{"role": "user", "content": user},
                                          {"role": "assistant", "content": _answer(code, k // 3)}], "meta": meta})
    return ins_rows, sec_rows


def main() -> None:
    ins, sec = build()
    for name, rows in (("insecure.jsonl", ins), ("secure.jsonl", sec)):
        (HERE / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    fams: dict[str, int] = {}
    for r in ins:
        fams[r["meta"]["family"]] = fams.get(r["meta"]["family"], 0) + 1
    print(f"wrote {len(ins)} pairs: " + ", ".join(f"{f} {n}" for f, n in sorted(fams.items())))


if __name__ == "__main__":
    main()
