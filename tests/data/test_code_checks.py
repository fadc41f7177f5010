"""Postern's own AST checks: each rule fires on the flaw and not on the fixed code."""

import textwrap

import pytest

from postern.data.code.checks import CHECKS, run_checks


def rules(code: str, only: str) -> list[str]:
    return [f.rule for f in run_checks(textwrap.dedent(code), [only])]


FLASK = "from flask import request, redirect, url_for, abort, send_file\nimport os, re, requests\n"

CASES = {
    "PST-REDIRECT": (
        FLASK + "def v():\n    n = request.args.get('next')\n    return redirect(n)\n",
        FLASK + "def v():\n    n = request.args.get('next')\n    if not n.startswith('/'):\n        abort(400)\n    return redirect(n)\n",
    ),
    "PST-PATH": (
        FLASK + "BASE = '/srv'\ndef v(name):\n    return send_file(os.path.join(BASE, name))\n",
        FLASK + "BASE = '/srv'\ndef v(name):\n    return send_file(os.path.join(BASE, os.path.basename(name)))\n",
    ),
    "PST-SSRF": (
        FLASK + "def v():\n    u = request.args['u']\n    return requests.get(u, timeout=3)\n",
        FLASK + "from urllib.parse import urlparse\ndef v():\n    u = request.args['u']\n"
        "    if urlparse(u).hostname not in {'a.example.com'}:\n        abort(400)\n    return requests.get(u, timeout=3)\n",
    ),
    "PST-REGEX": (
        FLASK + "def v():\n    return re.compile(request.args['q'])\n",
        FLASK + "def v():\n    return re.compile(re.escape(request.args['q']))\n",
    ),
    "PST-MASS": (
        "def v(obj, data):\n    for k, val in data.items():\n        setattr(obj, k, val)\n",
        "def v(obj, data):\n    for k in ('a', 'b'):\n        setattr(obj, k, data[k])\n",
    ),
    "PST-LDAP": (
        "def v(ldap_conn, user):\n    return ldap_conn.search_s('dc=x', 2, f'(uid={user})')\n",
        "from ldap.filter import escape_filter_chars\ndef v(ldap_conn, user):\n"
        "    return ldap_conn.search_s('dc=x', 2, f'(uid={escape_filter_chars(user)})')\n",
    ),
    "PST-NOSQL": (
        FLASK + "def v(db):\n    return db.users.find_one(request.get_json())\n",
        FLASK + "def v(db):\n    q = request.get_json()['name']\n    if not isinstance(q, str):\n        abort(400)\n"
        "    return db.users.find_one({'name': q})\n",
    ),
    "PST-XPATH": (
        "def v(tree, name):\n    return tree.xpath(f\"//u[@n='{name}']\")\n",
        "def v(tree, name):\n    return tree.xpath('//u[@n=$n]', n=name)\n",
    ),
    "PST-SSTI": (
        FLASK + "from flask import render_template_string\ndef v():\n    return render_template_string('<b>' + request.args['x'] + '</b>')\n",
        FLASK + "from flask import render_template_string\ndef v():\n    return render_template_string('<b>{{ x }}</b>', x=request.args['x'])\n",
    ),
    "PST-CORS": (
        FLASK + "def v(resp):\n    resp.headers['Access-Control-Allow-Origin'] = request.headers.get('Origin')\n    return resp\n",
        FLASK + "def v(resp):\n    o = request.headers.get('Origin')\n    if o in {'https://a.example'}:\n"
        "        resp.headers['Access-Control-Allow-Origin'] = o\n    return resp\n",
    ),
    "PST-COOKIE": (
        "def v(resp, t):\n    resp.set_cookie('s', t, secure=True)\n",
        "def v(resp, t):\n    resp.set_cookie('s', t, secure=True, httponly=True)\n",
    ),
    "PST-CSRF": (
        "from django.views.decorators.csrf import csrf_exempt\n@csrf_exempt\ndef v(request):\n    return 1\n",
        "def v(request):\n    return 1\n",
    ),
    "PST-ERRLEAK": (
        "def v():\n    try:\n        work()\n    except Exception as e:\n        return {'error': repr(e)}, 500\n",
        "def v():\n    try:\n        work()\n    except Exception as e:\n        log.exception('x')\n        return {'error': 'internal'}, 500\n",
    ),
    "PST-JWT": (
        "import jwt\ndef v(t):\n    return jwt.decode(t, options={'verify_signature': False})\n",
        "import jwt\ndef v(t, k):\n    return jwt.decode(t, k, algorithms=['HS256'])\n",
    ),
    "PST-TIMING": (
        "def v(sig, expected_sig):\n    return sig == expected_sig\n",
        "import hmac\ndef v(sig, expected_sig):\n    return hmac.compare_digest(sig, expected_sig)\n",
    ),
    "PST-CLEARTEXT": (
        "import requests\ndef v(d):\n    return requests.post('http://pay.example.com/charge', json=d, timeout=5)\n",
        "import requests\ndef v(d):\n    return requests.post('http://localhost:8080/charge', json=d, timeout=5)\n",
    ),
    "PST-PERMS": (
        "import os\ndef v(p):\n    os.makedirs(p, mode=0o777)\n",
        "import os\ndef v(p):\n    os.makedirs(p, mode=0o755)\n",
    ),
    "PST-LOGSECRET": (
        "import logging\nlogger = logging.getLogger()\ndef v(user, password):\n    logger.info('%s %s', user, password)\n",
        "import logging\nlogger = logging.getLogger()\ndef v(user, password):\n    logger.info('login for %s (password given)', user)\n",
    ),
    "PST-UPLOAD": (
        FLASK + "def v():\n    f = request.files['f']\n    f.save('/srv/' + os.path.basename(f.filename))\n",
        FLASK + "def v():\n    f = request.files['f']\n    if not f.filename.endswith('.png'):\n        abort(400)\n"
        "    f.save('/srv/' + os.path.basename(f.filename))\n",
    ),
    "PST-XSS": (
        FLASK + "def v():\n    q = request.args.get('q', '')\n    return f'<h1>Results for {q}</h1>'\n",
        FLASK + "from markupsafe import escape\ndef v():\n    q = request.args.get('q', '')\n    return f'<h1>Results for {escape(q)}</h1>'\n",
    ),
    "PST-AUTOESCAPE": (
        "import jinja2\ndef v(name):\n    return jinja2.Template('<p>{{ n }}</p>', autoescape=False).render(n=name)\n",
        "import jinja2\ndef v(name):\n    return jinja2.Template('<p>{{ n }}</p>', autoescape=True).render(n=name)\n",
    ),
    "PST-DESER": (
        "import yaml\ndef v(text):\n    return yaml.unsafe_load(text)\n",
        "import yaml\ndef v(text):\n    return yaml.safe_load(text)\n",
    ),
    "PST-XXE": (
        "from lxml import etree\ndef v(data):\n    return etree.fromstring(data, etree.XMLParser(resolve_entities=True))\n",
        "from lxml import etree\ndef v(data):\n    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))\n",
    ),
    "PST-CMD": (
        "import asyncio\nasync def v(host):\n    return await asyncio.create_subprocess_shell(f'ping -c 1 {host}')\n",
        "import asyncio\nasync def v(host):\n    return await asyncio.create_subprocess_exec('ping', '-c', '1', host)\n",
    ),
    "PST-CREDS": (
        "import smtplib\ndef v():\n    s = smtplib.SMTP('smtp.example.org')\n    s.login('mailer', 'Winter2024!')\n",
        "import os, smtplib\ndef v():\n    s = smtplib.SMTP('smtp.example.org')\n    s.login('mailer', os.environ['SMTP_PASSWORD'])\n",
    ),
    "PST-TLS": (
        "import ssl\ndef v():\n    ctx = ssl.create_default_context()\n    ctx.check_hostname = False\n    ctx.verify_mode = ssl.CERT_NONE\n    return ctx\n",
        "import ssl\ndef v():\n    return ssl.create_default_context()\n",
    ),
    "PST-PWHASH": (
        "import hashlib\ndef v(password):\n    return hashlib.sha256(password.encode()).hexdigest()\n",
        "import hashlib\ndef v(data):\n    return hashlib.sha256(data).hexdigest()\n",
    ),
    "PST-CIPHER": (
        "from Crypto.Cipher import AES\ndef v(key, data):\n    return AES.new(key, AES.MODE_ECB).encrypt(data)\n",
        "from Crypto.Cipher import AES\ndef v(key, data):\n    c = AES.new(key, AES.MODE_GCM)\n    return c.nonce, c.encrypt_and_digest(data)\n",
    ),
}


def test_every_rule_has_a_case():
    assert set(CASES) == set(CHECKS)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_flags_the_flaw_and_not_the_fix(rule):
    bad, good = CASES[rule]
    assert rule in rules(bad, rule)
    assert rules(good, rule) == []


def test_a_check_that_does_not_validate_keeps_the_data_untrusted():
    # a truthiness test is not validation, and an `if` that does not exit validates nothing
    code = FLASK + "def v():\n    n = request.args['n']\n    if not n:\n        abort(400)\n    return send_file(n)\n"
    assert rules(code, "PST-PATH") == ["PST-PATH"]
    code = FLASK + "def v():\n    n = request.args['n']\n    if not n.startswith('/srv/'):\n        print('odd')\n    return send_file(n)\n"
    assert rules(code, "PST-PATH") == ["PST-PATH"]


def test_allowlist_lookups_clean_but_request_attributes_do_not():
    clean = FLASK + "ROUTES = {'a': '/a'}\ndef v():\n    return redirect(ROUTES.get(request.args['k'], '/'))\n"
    assert rules(clean, "PST-REDIRECT") == []
    dirty = FLASK + "def v(request):\n    return redirect(request.GET.get('next'))\n"
    assert rules(dirty, "PST-REDIRECT") == ["PST-REDIRECT"]


def test_findings_carry_lines_and_unknown_rules_are_ignored():
    code = FLASK + "\n\ndef v():\n    return redirect(request.args['n'])\n"
    (f,) = run_checks(code)
    assert f.rule == "PST-REDIRECT" and f.line == 6 and "redirect" in f.message
    assert run_checks(code, ["NOPE"]) == []


def test_invalid_code_raises_syntax_error():
    with pytest.raises(SyntaxError):
        run_checks("def f(:\n")


def test_ssrf_with_a_fixed_origin_is_not_flagged():
    fixed = ("import requests\ndef v(item_id):\n"
             "    return requests.get(f'https://api.example.com/items/{item_id}', timeout=3)\n")
    assert rules(fixed, "PST-SSRF") == []
    fmt = "import requests\ndef v(q):\n    return requests.get('https://api.example.com/s?q={}'.format(q), timeout=3)\n"
    assert rules(fmt, "PST-SSRF") == []
    for url in ("f'https://{host}/items'", "'https://api.example.com' + path", "f'http://api.example.com{path}'", "base + '/x'"):
        code = f"import requests\ndef v(host, path, base):\n    return requests.get({url}, timeout=3)\n"
        assert rules(code, "PST-SSRF") == ["PST-SSRF"], url


def test_a_plain_helper_may_open_the_path_its_caller_gave():
    helper = "def checksum(path):\n    with open(path, 'rb') as fh:\n        return fh.read()\n"
    assert rules(helper, "PST-PATH") == []
    assert rules("from pathlib import Path\ndef read(p):\n    return Path(p).read_text()\n", "PST-PATH") == []
    built = "import os\ndef read(name):\n    return open(os.path.join('/srv', name)).read()\n"
    assert rules(built, "PST-PATH") == ["PST-PATH"]
    view = FLASK + "@app.route('/f/<name>')\ndef f(name):\n    return send_file(name)\n"
    assert rules(view, "PST-PATH") == ["PST-PATH"]
    django = "def f(request, name):\n    return open(name).read()\n"
    assert rules(django, "PST-PATH") == ["PST-PATH"]
    replaced = FLASK + "def f(name):\n    name = request.args['n']\n    return send_file(name)\n"
    assert rules(replaced, "PST-PATH") == ["PST-PATH"]
