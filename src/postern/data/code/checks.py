"""Postern's own static checks, for weaknesses bandit has no rule for.

Every check works on the parsed AST only; the code is never imported or run. They are small and
deliberately conservative, written for generated single-file completions, not a general linter:

- **Untrusted data** ("taint") is anything read from ``request`` (Flask's global or a Django view's
  argument) and every parameter of the enclosing function (except obvious handles such as ``self``,
  ``conn`` or ``logger``). It flows through assignments, f-strings, concatenation, calls,
  attribute access and ``for`` / ``with`` targets, within one function.
- **Sanitisers** end the flow: ``secure_filename``, ``os.path.basename``, ``int``, ``float``,
  ``escape``, ``quote``, ``url_for``, ``safe_join``, ``re.escape``, ``escape_filter_chars``, and
  look-ups in an UPPER_CASE allowlist (``ALLOWED.get(x)``, ``ROUTES[x]``).
- **Validation** also ends it: after ``if <test>: raise/return/abort()/continue`` where the test
  mentions the variable and is a validating test (membership in an UPPER_CASE allowlist,
  ``startswith``/``endswith``/``is_relative_to``/``isinstance``/regex ``fullmatch``..., or a
  comparison of a URL's ``hostname``/``netloc``/``scheme``); inside the body of such an ``if``
  the variable is also treated as validated. Polarity is not checked (a documented approximation).
- **Not flagged**, to stay quiet on ordinary code: an HTTP request whose URL starts with a constant
  ``scheme://host/`` (only the path or query can change), and a file opened by a plain helper's
  own parameter used as the whole path (``def checksum(path): open(path)`` — the caller chose the
  file; a function with decorators or a ``request`` parameter is a view and gets no such pass).

`CHECKS` lists each rule with its CWE and what it flags.
"""

import ast
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

CHECKS: dict[str, tuple[str, str]] = {
    "PST-PATH": ("CWE-22", "a file path built from untrusted data reaches open()/send_file()/os.remove() unvalidated"),
    "PST-UPLOAD": ("CWE-434", "an uploaded file is saved without an extension/type allowlist check"),
    "PST-REDIRECT": ("CWE-601", "redirect() to an untrusted, unvalidated URL"),
    "PST-SSRF": ("CWE-918", "an HTTP request to an untrusted, unvalidated URL"),
    "PST-REGEX": ("CWE-1333", "a regular expression compiled from untrusted data"),
    "PST-MASS": ("CWE-915", "object attributes set from untrusted keys (setattr / **kwargs from the request)"),
    "PST-LDAP": ("CWE-90", "an LDAP search filter built from unescaped untrusted data"),
    "PST-NOSQL": ("CWE-943", "a MongoDB query built from untrusted objects or a $where string"),
    "PST-XPATH": ("CWE-643", "an XPath expression built from untrusted data"),
    "PST-SSTI": ("CWE-1336", "a template compiled from untrusted data"),
    "PST-CORS": ("CWE-942", "CORS that reflects any origin or allows '*' with credentials"),
    "PST-COOKIE": ("CWE-614", "set_cookie() without secure=True and httponly=True"),
    "PST-CSRF": ("CWE-352", "CSRF protection switched off (csrf_exempt, WTF_CSRF_ENABLED = False)"),
    "PST-ERRLEAK": ("CWE-209", "an exception message or traceback returned to the client"),
    "PST-JWT": ("CWE-347", "jwt.decode() without signature verification or with the 'none' algorithm"),
    "PST-TIMING": ("CWE-208", "a secret (token, signature, digest) compared with == instead of compare_digest"),
    "PST-CLEARTEXT": ("CWE-319", "credentials or data sent over http:// or SMTP without TLS"),
    "PST-PERMS": ("CWE-276", "a directory/file created world-writable (mode or umask)"),
    "PST-LOGSECRET": ("CWE-532", "a password, token or key written to a log"),
}


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    message: str


_REQUEST_PARAMS = {"request", "req", "event"}
_HANDLE_PARAMS = {
    "self", "cls", "app", "db", "conn", "con", "connection", "cursor", "cur", "c", "session", "logger",
    "log", "client", "engine", "settings", "config", "sock", "server", "ldap_conn",
}
_SANITIZERS = {
    "secure_filename", "basename", "int", "float", "bool", "len", "escape", "quote", "quote_plus", "url_for",
    "safe_join", "escape_filter_chars", "uuid4", "hexdigest", "isoformat",
}
_VALIDATORS = {
    "startswith", "endswith", "is_relative_to", "commonpath", "fullmatch", "match", "isinstance", "isidentifier",
    "isalnum", "isdigit", "is_safe_url", "url_has_allowed_host_and_scheme", "allowed_file", "is_allowed",
}
_URL_PARTS = {"hostname", "netloc", "scheme", "host"}
_EXITS = {"abort", "exit", "_exit", "HttpResponseBadRequest", "HttpResponseForbidden"}
_SECRET_RE = re.compile(r"pass(wd|word)?$|^pwd$|password|secret|token|api_?key|credit_?card|card_number|cvv|ssn|private_key", re.I)
_COMPARE_SECRET_RE = re.compile(r"token|signature|^sig$|_sig$|digest|hmac|^mac$|_mac$|secret|api_?key|password_hash|pw_hash|otp", re.I)
_HTTP_VERBS = {"get", "post", "put", "patch", "delete", "head", "request", "options", "stream"}
_LOG_METHODS = {"debug", "info", "warning", "warn", "error", "critical", "exception", "log"}


def dotted(node: ast.AST) -> str:
    """`a.b.c` for a Name/Attribute chain (calls in the chain become `()`), '' otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Call):
        base = dotted(node.func)
        return f"{base}()" if base else ""
    return ""


def _last(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _is_const_name(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return bool(name) and name.isupper()


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _arg(call: ast.Call, pos: int, name: str) -> ast.expr | None:
    return call.args[pos] if len(call.args) > pos else _kw(call, name)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _targets(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            yield from _targets(elt)


def _own_exprs(st: ast.stmt) -> list[ast.AST]:
    """The expressions a statement evaluates itself, not those of its nested blocks."""
    if isinstance(st, (ast.If, ast.While)):
        return [st.test]
    if isinstance(st, (ast.For, ast.AsyncFor)):
        return [st.iter]
    if isinstance(st, (ast.With, ast.AsyncWith)):
        return [i.context_expr for i in st.items]
    if isinstance(st, (ast.Try, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    return [st]


def _exits(body: list[ast.stmt]) -> bool:
    last = body[-1]
    if isinstance(last, (ast.Raise, ast.Return, ast.Continue, ast.Break)):
        return True
    return isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and _last(last.value) in _EXITS


def _validating(test: ast.AST) -> bool:
    for n in ast.walk(test):
        if isinstance(n, ast.Call) and _last(n) in _VALIDATORS:
            return True
        if isinstance(n, ast.Compare):
            if any(isinstance(op, (ast.In, ast.NotIn)) for op in n.ops) and any(_allowlist(c) for c in n.comparators):
                return True
            if any(isinstance(x, ast.Attribute) and x.attr in _URL_PARTS for x in ast.walk(n)):
                return True
    return False


def _allowlist(node: ast.AST) -> bool:
    """An UPPER_CASE constant or a literal collection of constants."""
    if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
        return bool(node.elts) and all(isinstance(e, ast.Constant) for e in node.elts)
    return _is_const_name(node)


def _assigned(body: list[ast.stmt]) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                out.update(_targets(t))
        elif isinstance(n, (ast.AnnAssign, ast.AugAssign)):
            out.update(_targets(n.target))
    return out


class _Flow:
    """Walks one function's statements in order, tracking which local names hold untrusted data."""

    def __init__(self, sink: Callable[[ast.Call, "_Flow"], None], assign_sink: Callable[[ast.Assign, "_Flow"], None]):
        self.tainted: set[str] = set()
        self.caller_values: set[str] = set()  # parameters of a plain helper, not yet reassigned
        self.sink = sink
        self.assign_sink = assign_sink

    def is_tainted(self, node: ast.AST | None) -> bool:
        if node is None or isinstance(node, ast.Constant):
            return False
        if isinstance(node, ast.Name):
            return node.id in self.tainted or node.id == "request"
        if isinstance(node, ast.Attribute):
            return self.is_tainted(node.value)
        if isinstance(node, ast.Subscript):
            return not self._allowlist_ref(node.value) and self.is_tainted(node.value)
        if isinstance(node, ast.Call):
            name = _last(node)
            if name in _SANITIZERS or (name == "escape" and dotted(node.func).startswith("re.")):
                return False
            if isinstance(node.func, ast.Attribute) and self._allowlist_ref(node.func.value):
                return False
            if isinstance(node.func, ast.Attribute) and self.is_tainted(node.func.value):
                return True
            return any(self.is_tainted(a) for a in node.args) or any(self.is_tainted(k.value) for k in node.keywords)
        if isinstance(node, (ast.Compare, ast.Lambda)):
            return False
        return any(self.is_tainted(child) for child in ast.iter_child_nodes(node))

    def _allowlist_ref(self, node: ast.AST) -> bool:
        """An UPPER_CASE constant (`ALLOWED`, `settings.ROUTES`) that does not hang off untrusted data."""
        if not _is_const_name(node):
            return False
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        return not (isinstance(root, ast.Name) and (root.id in self.tainted or root.id == "request"))

    def run(self, fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Module) -> None:
        if not isinstance(fn, ast.Module):
            a = fn.args
            params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]]
            self.tainted.update(p for p in params if p not in _HANDLE_PARAMS)
            if not fn.decorator_list and not set(params) & _REQUEST_PARAMS:
                self.caller_values = set(self.tainted)  # not a view: its arguments are the caller's choice
        self.walk(fn.body)

    def _scan(self, st: ast.stmt) -> None:
        for expr in _own_exprs(st):
            for n in ast.walk(expr):
                if isinstance(n, ast.Call):
                    self.sink(n, self)
        if isinstance(st, ast.Assign):
            self.assign_sink(st, self)

    def _assign(self, targets: Iterable[ast.AST], value: ast.AST | None) -> None:
        dirty = self.is_tainted(value)
        for t in targets:
            for name in _targets(t):
                (self.tainted.add if dirty else self.tainted.discard)(name)
                self.caller_values.discard(name)

    def is_caller_value(self, node: ast.AST | None) -> bool:
        """A parameter of a plain (undecorated, non-view) function used as is, or wrapped in Path()."""
        if isinstance(node, ast.Call) and _last(node) in {"Path", "PurePath"} and len(node.args) == 1 and not node.keywords:
            node = node.args[0]
        return isinstance(node, ast.Name) and node.id in self.caller_values

    def walk(self, body: list[ast.stmt]) -> None:
        for st in body:
            self._scan(st)
            if isinstance(st, ast.Assign):
                self._assign(st.targets, st.value)
            elif isinstance(st, (ast.AnnAssign, ast.AugAssign)) and st.value is not None:
                if isinstance(st, ast.AnnAssign) or self.is_tainted(st.value):
                    self._assign([st.target], st.value)
            elif isinstance(st, (ast.For, ast.AsyncFor)):
                self._assign([st.target], st.iter)
                self.walk(st.body)
                self.walk(st.orelse)
            elif isinstance(st, (ast.With, ast.AsyncWith)):
                for item in st.items:
                    if item.optional_vars is not None:
                        self._assign([item.optional_vars], item.context_expr)
                self.walk(st.body)
            elif isinstance(st, ast.If):
                self._if(st)
            elif isinstance(st, ast.While):
                self.walk(st.body)
            elif isinstance(st, ast.Try):
                for block in (st.body, *[h.body for h in st.handlers], st.orelse, st.finalbody):
                    self.walk(block)

    def _if(self, st: ast.If) -> None:
        checked = _names(st.test) & self.tainted if _validating(st.test) else set()
        saved = set(self.tainted)
        self.tainted -= checked
        self.walk(st.body)
        after = set(self.tainted)
        if _exits(st.body):
            self.tainted = (saved | after) - checked
        else:  # validated only where the body replaced the value with a clean one
            fixed = {v for v in checked & _assigned(st.body) if v not in after}
            self.tainted = (saved | after) - fixed
        self.walk(st.orelse)


# ---- taint sinks -----------------------------------------------------------------------------

_PATH_FUNCS = {"open", "send_file", "FileResponse", "remove", "unlink", "rmtree", "copyfile", "copy", "move", "listdir"}
_PATH_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "unlink"}


def _path_tainted(node: ast.AST | None, flow: _Flow) -> bool:
    """Untrusted data in a path, except a plain helper's own parameter used as the whole path
    (``def checksum(path): open(path)``: the caller chose the file; joining it onto a base folder
    is what makes traversal possible)."""
    return flow.is_tainted(node) and not flow.is_caller_value(node)


def _sink_path(call: ast.Call, flow: _Flow) -> str | None:
    name, full = _last(call), dotted(call.func)
    if name in _PATH_FUNCS and (isinstance(call.func, ast.Name) or full.split(".")[0] in {"os", "shutil", "io"}):
        if _path_tainted(_arg(call, 0, "file"), flow) or _path_tainted(_kw(call, "path"), flow):
            return f"{name}() on a path built from untrusted data"
    if name in _PATH_METHODS and isinstance(call.func, ast.Attribute) and _path_tainted(call.func.value, flow):
        return f".{name}() on a path built from untrusted data"
    return None


def _sink_redirect(call: ast.Call, flow: _Flow) -> str | None:
    if _last(call) in {"redirect", "HttpResponseRedirect", "RedirectResponse"}:
        if flow.is_tainted(_arg(call, 0, "url")) or flow.is_tainted(_kw(call, "location")):
            return "redirect to an untrusted URL"
    return None


_FIXED_ORIGIN = re.compile(r"^[a-zA-Z][\w+.-]*://[^/?#{}\s@\\]+[/?#]")


def _fixed_origin(url: ast.AST | None) -> bool:
    """A URL whose constant start already holds scheme, host and the "/" after it
    (``f"https://api.example.com/items/{x}"``): untrusted data can only change the path or query."""
    while isinstance(url, ast.BinOp) and isinstance(url.op, ast.Add):
        url = url.left
    if isinstance(url, ast.JoinedStr) and url.values:
        url = url.values[0]
    elif isinstance(url, ast.Call) and isinstance(url.func, ast.Attribute) and url.func.attr == "format":
        url = url.func.value
        if isinstance(url, ast.Constant) and isinstance(url.value, str):
            return bool(_FIXED_ORIGIN.match(url.value.split("{", 1)[0]))
    return isinstance(url, ast.Constant) and isinstance(url.value, str) and bool(_FIXED_ORIGIN.match(url.value))


def _sink_ssrf(call: ast.Call, flow: _Flow) -> str | None:
    full, name = dotted(call.func), _last(call)
    root = full.split(".")[0].lower()
    http = (root in {"requests", "httpx"} or any(w in root for w in ("session", "client", "http"))) and name in _HTTP_VERBS
    if http or name == "urlopen":
        url = _arg(call, 1, "url") if name == "request" else _arg(call, 0, "url")
        if flow.is_tainted(url) and not _fixed_origin(url):
            return f"{full}() fetches an untrusted URL"
    return None


def _sink_regex(call: ast.Call, flow: _Flow) -> str | None:
    full = dotted(call.func)
    if full.startswith("re.") and _last(call) in {"compile", "search", "match", "fullmatch", "findall", "finditer", "sub", "split"}:
        if flow.is_tainted(_arg(call, 0, "pattern")):
            return f"{full}() with an untrusted pattern"
    return None


def _sink_mass(call: ast.Call, flow: _Flow) -> str | None:
    name = _last(call)
    if name == "setattr" and len(call.args) >= 2 and flow.is_tainted(call.args[1]):
        return "setattr() with an untrusted attribute name"
    for k in call.keywords:
        if k.arg is None and flow.is_tainted(k.value) and (name[:1].isupper() or name in {"create", "update", "update_or_create"}):
            return f"{name}(**...) with untrusted fields"
    if name == "update" and dotted(call.func).endswith("__dict__.update") and any(flow.is_tainted(a) for a in call.args):
        return "__dict__.update() with untrusted fields"
    return None


def _sink_ldap(call: ast.Call, flow: _Flow) -> str | None:
    if _last(call) in {"search_s", "search", "search_ext_s", "search_st", "search_ext"} and isinstance(call.func, ast.Attribute):
        if dotted(call.func).split(".")[0] != "re" and any(flow.is_tainted(a) for a in [*call.args, *(k.value for k in call.keywords)]):
            return "LDAP search filter built from untrusted data"
    return None


_MONGO = {"find", "find_one", "find_one_and_update", "update_one", "update_many", "delete_one", "delete_many", "count_documents"}


def _sink_nosql(call: ast.Call, flow: _Flow) -> str | None:
    if _last(call) not in _MONGO or not call.args:
        return None
    query = call.args[0]
    if isinstance(query, ast.Dict):
        for key, value in zip(query.keys, query.values):
            if isinstance(key, ast.Constant) and key.value == "$where" and not isinstance(value, ast.Constant):
                return "$where query built from data"
            if flow.is_tainted(value):
                return "query field taken from untrusted data unchecked"
    elif isinstance(query, (ast.Call, ast.Attribute, ast.Subscript, ast.Name)) and flow.is_tainted(query):
        return "query object taken from untrusted data"
    return None


def _sink_xpath(call: ast.Call, flow: _Flow) -> str | None:
    if _last(call) == "xpath" and flow.is_tainted(_arg(call, 0, "_path")):
        return "XPath expression built from untrusted data"
    return None


def _sink_ssti(call: ast.Call, flow: _Flow) -> str | None:
    if _last(call) in {"render_template_string", "Template", "from_string"} and flow.is_tainted(_arg(call, 0, "source")):
        return f"{_last(call)}() with an untrusted template"
    return None


def _assign_cors(st: ast.Assign, flow: _Flow) -> str | None:
    for t in st.targets:
        if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant):
            if str(t.slice.value).lower() == "access-control-allow-origin" and flow.is_tainted(st.value):
                return "Access-Control-Allow-Origin reflects the request's origin"
    return None


_CALL_SINKS: dict[str, Callable[[ast.Call, _Flow], str | None]] = {
    "PST-PATH": _sink_path,
    "PST-REDIRECT": _sink_redirect,
    "PST-SSRF": _sink_ssrf,
    "PST-REGEX": _sink_regex,
    "PST-MASS": _sink_mass,
    "PST-LDAP": _sink_ldap,
    "PST-NOSQL": _sink_nosql,
    "PST-XPATH": _sink_xpath,
    "PST-SSTI": _sink_ssti,
}
_ASSIGN_SINKS: dict[str, Callable[[ast.Assign, _Flow], str | None]] = {"PST-CORS": _assign_cors}


# ---- whole-module rules ----------------------------------------------------------------------


def _rule_upload(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        attrs = {n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
        saves = [c for c in ast.walk(fn) if isinstance(c, ast.Call) and _last(c) == "save" and isinstance(c.func, ast.Attribute)]
        checked = any(isinstance(n, (ast.If, ast.IfExp)) and _checks_type(n.test) for n in ast.walk(fn))
        if saves and attrs & {"files", "FILES"} and not checked:
            yield saves[0].lineno, "uploaded file saved without checking its type"


def _checks_type(test: ast.AST) -> bool:
    words = {"endswith", "splitext", "suffix", "mimetype", "content_type", "allowed_file", "is_allowed"}
    for n in ast.walk(test):
        name = n.attr if isinstance(n, ast.Attribute) else n.id if isinstance(n, ast.Name) else ""
        if name in words or (name.isupper() and "ALLOWED" in name):
            return True
    return False


def _rule_cookie(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and _last(n) == "set_cookie":
            if not (_is_true(_kw(n, "secure")) and _is_true(_kw(n, "httponly"))):
                yield n.lineno, "cookie set without secure=True and httponly=True"


def _rule_csrf(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for d in n.decorator_list:
                if dotted(d.func if isinstance(d, ast.Call) else d).split(".")[-1] in {"csrf_exempt", "exempt"}:
                    yield d.lineno, "view exempted from CSRF protection"
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and n.value.value is False:
            for t in n.targets:
                key = t.id if isinstance(t, ast.Name) else t.slice.value if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) else ""
                if isinstance(key, str) and key.endswith("CSRF_ENABLED"):
                    yield n.lineno, f"{key} = False"


def _rule_errleak(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for h in ast.walk(tree):
        if not isinstance(h, ast.ExceptHandler):
            continue
        for n in ast.walk(ast.Module(body=h.body, type_ignores=[])):
            value = n.value if isinstance(n, ast.Return) else None
            if isinstance(n, ast.Call) and _last(n) in {"jsonify", "make_response", "Response", "HttpResponse", "JsonResponse", "abort"}:
                value = n
            if value is None:
                continue
            leaks_name = h.name is not None and h.name in _names(value)
            leaks_tb = any(isinstance(c, ast.Call) and dotted(c.func).startswith("traceback.") for c in ast.walk(value))
            if leaks_name or leaks_tb:
                yield n.lineno, "exception details sent to the client"
                break


def _rule_jwt(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and dotted(n.func).endswith("jwt.decode")):
            continue
        options, algs = _kw(n, "options"), _kw(n, "algorithms")
        off = isinstance(options, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == "verify_signature" and isinstance(v, ast.Constant) and v.value is False
            for k, v in zip(options.keys, options.values)
        )
        none_alg = algs is not None and any(isinstance(c, ast.Constant) and str(c.value).lower() == "none" for c in ast.walk(algs))
        verify = _kw(n, "verify")
        if off or none_alg or (isinstance(verify, ast.Constant) and verify.value is False):
            yield n.lineno, "JWT decoded without verifying its signature"


def _secretish(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        return _last(node) in {"hexdigest", "digest"} or _secretish(node.func)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return bool(_COMPARE_SECRET_RE.search(str(node.slice.value))) or _secretish(node.value)
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return bool(name) and bool(_COMPARE_SECRET_RE.search(name))


def _rule_timing(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if isinstance(n, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in n.ops):
            sides = [n.left, *n.comparators]
            if any(isinstance(s, ast.Constant) for s in sides):
                continue
            if any(_secretish(s) for s in sides):
                yield n.lineno, "secret compared with == (not constant time)"


def _rule_cleartext(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            full = dotted(n.func)
            if full.split(".")[0] in {"requests", "httpx"} or _last(n) == "urlopen":
                url = n.args[0] if n.args else _kw(n, "url")
                first = url.values[0] if isinstance(url, ast.JoinedStr) and url.values else url
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and _plain_http(first.value):
                    yield n.lineno, "request sent over plain http://"
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            calls = [dotted(c.func) for c in ast.walk(n) if isinstance(c, ast.Call)]
            if any(c.endswith("smtplib.SMTP") for c in calls) and any(c.endswith(".login") for c in calls):
                if not any(c.endswith(".starttls") for c in calls):
                    yield n.lineno, "SMTP login without STARTTLS"
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str):
            if _plain_http(n.value.value) and any(isinstance(t, ast.Name) and t.id.isupper() and "URL" in t.id for t in n.targets):
                yield n.lineno, "endpoint configured with plain http://"


def _plain_http(url: str) -> bool:
    return url.startswith("http://") and not re.match(r"http://(localhost|127\.0\.0\.1|\[::1\])([:/]|$)", url)


def _rule_perms(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        full, name = dotted(n.func), _last(n)
        mode = None
        if full in {"os.makedirs", "os.mkdir"} or (name == "mkdir" and isinstance(n.func, ast.Attribute)):
            mode = _arg(n, 1, "mode") if full.startswith("os.") else _kw(n, "mode")
        elif full == "os.open":
            mode = _arg(n, 2, "mode")
        elif full == "os.umask" and n.args and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, int):
            if not n.args[0].value & 0o002:
                yield n.lineno, f"umask {oct(n.args[0].value)} leaves new files world-writable"
            continue
        if isinstance(mode, ast.Constant) and isinstance(mode.value, int) and mode.value & 0o002:
            yield n.lineno, f"created with world-writable mode {oct(mode.value)}"


def _logs_secret(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and _last(node) in {"mask", "redact", "len", "hash_value", "fingerprint"}:
        return False
    if isinstance(node, ast.Name) and _SECRET_RE.search(node.id):
        return True
    if isinstance(node, ast.Attribute) and _SECRET_RE.search(node.attr):
        return True
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and _SECRET_RE.search(str(node.slice.value)):
        return True
    return any(_logs_secret(c) for c in ast.iter_child_nodes(node) if not isinstance(c, ast.Constant))


def _rule_logsecret(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        receiver = dotted(n.func.value).lower() if isinstance(n.func, ast.Attribute) else ""
        is_log = _last(n) in _LOG_METHODS and ("log" in receiver.split(".")[-1] if receiver else False)
        if (is_log or _last(n) == "print" and isinstance(n.func, ast.Name)) and any(
            _logs_secret(a) for a in [*n.args, *(k.value for k in n.keywords)]
        ):
            yield n.lineno, "secret value written to a log"


_MODULE_RULES: dict[str, Callable[[ast.Module], Iterator[tuple[int, str]]]] = {
    "PST-UPLOAD": _rule_upload,
    "PST-COOKIE": _rule_cookie,
    "PST-CSRF": _rule_csrf,
    "PST-ERRLEAK": _rule_errleak,
    "PST-JWT": _rule_jwt,
    "PST-TIMING": _rule_timing,
    "PST-CLEARTEXT": _rule_cleartext,
    "PST-PERMS": _rule_perms,
    "PST-LOGSECRET": _rule_logsecret,
}


def _cors_config(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and _last(n) == "CORS" and _is_true(_kw(n, "supports_credentials")):
            if any(isinstance(c, ast.Constant) and c.value == "*" for c in ast.walk(n)):
                yield n.lineno, "CORS allows any origin with credentials"


def run_checks(code: str, rules: Iterable[str] | None = None) -> list[Finding]:
    """Run postern's checks (all, or only `rules`) over one file's source. Raises SyntaxError."""
    wanted = set(CHECKS) if rules is None else set(rules) & set(CHECKS)
    tree = ast.parse(code)
    found: list[Finding] = []
    for rule in wanted & set(_MODULE_RULES):
        found += [Finding(rule, line, msg) for line, msg in _MODULE_RULES[rule](tree)]
    if "PST-CORS" in wanted:
        found += [Finding("PST-CORS", line, msg) for line, msg in _cors_config(tree)]
    call_rules = {r: _CALL_SINKS[r] for r in wanted & set(_CALL_SINKS)}
    assign_rules = {r: _ASSIGN_SINKS[r] for r in wanted & set(_ASSIGN_SINKS)}
    if call_rules or assign_rules:
        found += _run_flow(tree, call_rules, assign_rules)
    return sorted(set(found), key=lambda f: (f.line, f.rule))


def _run_flow(tree: ast.Module, call_rules: dict, assign_rules: dict) -> list[Finding]:
    found: list[Finding] = []

    def on_call(call: ast.Call, flow: _Flow) -> None:
        for rule, check in call_rules.items():
            msg = check(call, flow)
            if msg:
                found.append(Finding(rule, call.lineno, msg))

    def on_assign(st: ast.Assign, flow: _Flow) -> None:
        for rule, check in assign_rules.items():
            msg = check(st, flow)
            if msg:
                found.append(Finding(rule, st.lineno, msg))

    scopes: list[ast.Module | ast.FunctionDef | ast.AsyncFunctionDef] = [tree]
    scopes += [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for scope in scopes:
        _Flow(on_call, on_assign).run(scope)
    return found
