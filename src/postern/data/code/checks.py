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
  ``scheme://host/`` or an untainted base (``f"{API_BASE}/items/{x}"``: only the path or query can
  change); a file opened by a plain helper's own parameter used as the whole path or as the base
  folder of a join (``def checksum(path): open(path)``, ``open(os.path.join(folder, "out.txt"))`` —
  the caller chose the folder; a function with routing decorators or a ``request`` parameter is a
  view and gets no such pass); files listed from a folder (``glob``, ``iterdir``, ``listdir``,
  ``scandir``, ``walk``), which are as trusted as the folder; links found in a fetched page, and
  URLs a command-line script reads (``get``/``head``; posting to a callback URL is still SSRF);
  parameters annotated ``int``/``float``/``UUID``/dates; ``request.user`` (set by the server).
- **Web handlers** (PST-XSS): a function with routing decorators, a ``request``/``req`` parameter,
  Flask's ``request``, or a handler method (``get``/``post``/``do_GET``...). HTML is text with a tag
  in its constant parts; it is flagged when built around untrusted data that is not escaped and
  returned (Flask/Bottle; FastAPI only with ``response_class=HTMLResponse``), given to an HTML
  response, written to the handler, or set as ``resp.text``; and ``Markup``/``mark_safe`` of
  untrusted data. Taint flows through calls, so data loaded by a query made with request data counts
  as untrusted (stored XSS) — a documented approximation.

`CHECKS` lists each rule with its CWE and what it flags.
"""

import ast
import re
from dataclasses import dataclass
from typing import AbstractSet, Callable, Iterable, Iterator

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
    "PST-XSS": ("CWE-79", "a web handler puts untrusted data into HTML unescaped (formatted response, Markup/mark_safe)"),
    "PST-AUTOESCAPE": ("CWE-79", "a Jinja2 Template created without autoescaping"),
    "PST-DESER": ("CWE-502", "data deserialised with a loader that can build arbitrary objects (unsafe yaml, dill, joblib, shelve, ...)"),
    "PST-XXE": ("CWE-611", "XML parsed with external entities or DTDs enabled (lxml)"),
    "PST-CMD": ("CWE-78", "a shell command built from untrusted data (asyncio subprocess_shell)"),
    "PST-CREDS": ("CWE-798", "a literal password, token or key in the source"),
    "PST-TLS": ("CWE-295", "TLS certificate or host-name checks switched off (verify_mode, check_hostname, verify)"),
    "PST-CIPHER": ("CWE-327", "a broken cipher or mode (ECB, DES, 3DES, RC4, Blowfish) from PyCryptodome"),
    "PST-PWHASH": ("CWE-916", "a password or secret stored as a fast unsalted hash (hashlib sha*/md5/blake2)"),
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
    "safe_join", "escape_filter_chars", "uuid4", "hexdigest", "isoformat", "xhtml_escape", "html_escape",
    "conditional_escape", "format_html", "strip_tags", "route_url", "route_path", "static_url", "build_absolute_uri",
    "reverse", "reverse_url",
}
_TYPED = {"int", "float", "bool", "UUID", "date", "datetime", "Decimal"}  # annotated parameters that are not text
_TORNADO_INPUT = {"get_argument", "get_arguments", "get_body_argument", "get_body_arguments", "get_query_argument",
                  "get_query_arguments", "get_cookie", "get_secure_cookie", "get_signed_cookie"}
_LISTINGS = {"glob", "iglob", "rglob", "iterdir", "listdir", "scandir", "walk"}  # calls that list existing files
_SANDBOXES = {"SandboxedEnvironment", "ImmutableSandboxedEnvironment"}
_SAFE_CLASS = re.compile(r"^\[\^[^\]/.\\]*\]\+?\*?$")  # a negated character class without "/", "." or "\\"
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
            if any(isinstance(op, (ast.Eq, ast.NotEq)) for op in n.ops) and any(
                    (isinstance(x, ast.Attribute) and x.attr == "parent") or (isinstance(x, ast.Call) and _last(x) in {"dirname", "commonpath"})
                    for x in ast.walk(n)):
                return True
            if any(isinstance(op, (ast.In, ast.NotIn)) for op in n.ops) and any(
                    isinstance(c, ast.Attribute) and c.attr == "parents" for c in n.comparators):
                return True  # base not in path.parents
        if isinstance(n, ast.Attribute) and n.attr in _URL_PARTS:
            return True  # any check of a URL's host or scheme (if urlparse(u).netloc: ...)
    return False


def _allowlist(node: ast.AST) -> bool:
    """An UPPER_CASE constant or a literal collection of constants."""
    if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
        return bool(node.elts) and all(isinstance(e, ast.Constant) for e in node.elts)
    if isinstance(node, (ast.SetComp, ast.ListComp)) or (isinstance(node, ast.Call) and _last(node) in {"set", "frozenset", "keys"}):
        return True  # membership in a collection the program built (e.g. the stems of its own files)
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

    def __init__(self, sink: Callable[[ast.Call, "_Flow"], None], assign_sink: Callable[[ast.Assign, "_Flow"], None],
                 stmt_sink: Callable[[ast.stmt, "_Flow"], None] | None = None, module: "_ModuleFacts | None" = None):
        self.tainted: set[str] = set()
        self.caller_values: set[str] = set()  # parameters of a plain helper, not yet reassigned
        self.fetched: set[str] = set()  # names holding what an HTTP request returned (a page's links)
        self.url_parts: dict[str, set[str]] = {}  # host = urlparse(url).hostname -> {"url"}
        self.tarfiles: set[str] = set()  # names bound to tarfile.open(...)
        self.html: set[str] = set()  # names holding HTML text built with untrusted data
        self.http_clients: set[str] = set()  # `async with aiohttp.ClientSession() as s`
        self.const_names: set[str] = set()  # api_base = API_BASE / SETTINGS["api_base"]: the program's own values
        self.sink = sink
        self.assign_sink = assign_sink
        self.stmt_sink = stmt_sink
        self.module = module or _ModuleFacts()
        self.fn: ast.AST | None = None
        self.is_view = False
        self.module_lxml = False

    def is_tainted(self, node: ast.AST | None) -> bool:
        if node is None or isinstance(node, ast.Constant):
            return False
        if isinstance(node, ast.Name):
            return node.id in self.tainted or node.id == "request"
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return node.attr == "request" or (node.attr in {"path", "headers", "rfile"} and self._handler_method())
            if node.attr == "user" and dotted(node.value).split(".")[-1] == "request":
                return False  # the authenticated user, set by the server
            if node.attr in {"name", "stem"} and isinstance(node.value, ast.Call) and _last(node.value) in {"Path", "PurePath", "PurePosixPath"}:
                return False  # Path(x).name is a base name
            return self.is_tainted(node.value)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            added = self.comprehension_targets(node)
            try:
                elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
                return any(self.is_tainted(e) for e in elts)
            finally:
                self.tainted -= added
        if isinstance(node, ast.Subscript):
            return not self._allowlist_ref(node.value) and self.is_tainted(node.value)
        if isinstance(node, ast.Call):
            name = _last(node)
            if name in _SANITIZERS or (name == "escape" and dotted(node.func).startswith("re.")):
                return False
            if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and node.func.value.id == "self":
                if name in _TORNADO_INPUT:
                    return True
            if dotted(node.func) == "re.sub" and node.args and isinstance(node.args[0], ast.Constant) \
                    and _SAFE_CLASS.match(str(node.args[0].value)):
                return False  # re.sub(r"[^A-Za-z0-9_-]", ...) keeps only safe characters
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

    def _handler_method(self) -> bool:
        return isinstance(self.fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and self.fn.name.startswith("do_")

    def comprehension_targets(self, node: ast.AST) -> set[str]:
        """Add a comprehension's loop names that iterate over untrusted data; returns those added."""
        added: set[str] = set()
        for gen in getattr(node, "generators", []):
            if self.is_tainted(gen.iter):
                new = set(_targets(gen.target)) - self.tainted
                added |= new
                self.tainted |= new
        return added

    def run(self, fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Module) -> None:
        self.fn = fn
        self.is_view = _is_view(fn)
        if not isinstance(fn, ast.Module):
            a = fn.args
            every = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]
            typed = {x.arg for x in every if x.annotation is not None and dotted(x.annotation).split(".")[-1] in _TYPED}
            params = [x.arg for x in every]
            self.tainted.update(p for p in params if p not in _HANDLE_PARAMS and p not in typed)
            if not _routing_decorators(fn) and not set(params) & _REQUEST_PARAMS:
                self.caller_values = set(self.tainted)  # not a view: its arguments are the caller's choice
        self.walk(fn.body)

    def _scan(self, st: ast.stmt) -> None:
        for expr in _own_exprs(st):
            for n in ast.walk(expr):
                if isinstance(n, ast.Call):
                    self.sink(n, self)
                    if _last(n) in {"append", "extend", "insert"} and isinstance(n.func, ast.Attribute) \
                            and isinstance(n.func.value, ast.Name) and any(_html_tainted(a, self) for a in n.args):
                        self.html.add(n.func.value.id)
        if isinstance(st, ast.Assign):
            self.assign_sink(st, self)
        if self.stmt_sink is not None:
            self.stmt_sink(st, self)

    def _assign(self, targets: Iterable[ast.AST], value: ast.AST | None) -> None:
        dirty = self.is_tainted(value)
        calls = [c for c in ast.walk(value) if isinstance(c, ast.Call)] if value is not None else []
        fetched = any(_is_http_call(c) for c in calls) or bool(value is not None and _names(value) & self.fetched)
        html = _html_tainted(value, self)
        tar = any(dotted(c.func) in {"tarfile.open", "tarfile.TarFile", "TarFile.open"} for c in calls)
        client = isinstance(value, ast.Call) and _last(value) in {"ClientSession", "Session", "Client", "AsyncClient", "PoolManager"}
        const = value is not None and not dirty  # api_base = CONFIG.get(...) / SETTINGS["api_base"]: the program's own value
        path_on_caller_base = dirty and value is not None and _path_expr(value) and not _path_tainted(value, self)
        parsed = {a.id for c in calls if _last(c) in {"urlparse", "urlsplit"} for a in c.args[:1] if isinstance(a, ast.Name)}
        parsed |= {src for n in (_names(value) if value is not None else set()) for src in self.url_parts.get(n, set())}
        for t in targets:
            for name in _targets(t):
                (self.tainted.add if dirty else self.tainted.discard)(name)
                (self.fetched.add if fetched else self.fetched.discard)(name)
                (self.html.add if html else self.html.discard)(name)
                (self.tarfiles.add if tar else self.tarfiles.discard)(name)
                (self.http_clients.add if client else self.http_clients.discard)(name)
                (self.const_names.add if const else self.const_names.discard)(name)
                if parsed:
                    self.url_parts[name] = parsed
                else:
                    self.url_parts.pop(name, None)
                self.caller_values.discard(name)
        if path_on_caller_base:
            for t in targets:  # home / ".ssh" / "key": built only on a folder the caller chose
                self.caller_values.update(_targets(t))

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
                keep_html = isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name) and st.target.id in self.html
                if isinstance(st, ast.AnnAssign) or self.is_tainted(st.value):
                    self._assign([st.target], st.value)
                if keep_html:
                    self.html.add(st.target.id)
            elif isinstance(st, (ast.For, ast.AsyncFor)):
                self._for_target(st)
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

    def _for_target(self, st: ast.For | ast.AsyncFor) -> None:
        """Loop names; files listed from a folder (glob, iterdir, listdir, walk) are as trusted as the folder."""
        it = st.iter
        if isinstance(it, ast.Call) and _last(it) in _LISTINGS:
            folder = [it.func.value] if isinstance(it.func, ast.Attribute) and _last(it) in {"glob", "rglob", "iterdir"} \
                and not dotted(it.func).startswith("glob.") else it.args[:1]
            dirty = any(_path_tainted(a, self) for a in folder)
            for name in _targets(st.target):
                (self.tainted.add if dirty else self.tainted.discard)(name)
                self.caller_values.discard(name)
            return
        was_caller = isinstance(it, ast.Name) and it.id in self.caller_values
        self._assign([st.target], it)
        if was_caller:
            self.caller_values.update(_targets(st.target))

    def _if(self, st: ast.If) -> None:
        checked = _names(st.test) & self.tainted if _validating(st.test) else set()
        for part in _names(st.test) & set(self.url_parts):  # host = urlparse(url).hostname checked: url is checked
            if _validating(st.test):
                checked |= self.url_parts[part] & self.tainted
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


_JOINS = {"os.path.join", "posixpath.join", "path.join", "Path", "PurePath", "pathlib.Path", "PurePosixPath"}


def _path_expr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and dotted(node.func) in _JOINS) or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div))


def _path_tainted(node: ast.AST | None, flow: _Flow) -> bool:
    """Untrusted data in a path, except a plain helper's own parameter used as the whole path or as
    the base folder (``def checksum(path): open(path)``, ``open(os.path.join(folder, "out.txt"))``:
    the caller chose the folder; joining untrusted data *onto* a folder is what makes traversal possible)."""
    if node is None or flow.is_caller_value(node):
        return False
    if isinstance(node, ast.Call) and dotted(node.func) in _JOINS and node.args:
        return _path_tainted(node.args[0], flow) or any(flow.is_tainted(a) for a in node.args[1:])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _path_tainted(node.left, flow) or flow.is_tainted(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"resolve", "absolute", "expanduser"}:
        return _path_tainted(node.func.value, flow)
    return flow.is_tainted(node)


def _sink_path(call: ast.Call, flow: _Flow) -> str | None:
    name, full = _last(call), dotted(call.func)
    if name in {"extract", "extractall"} and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
            and call.func.value.id in flow.tarfiles and _kw(call, "filter") is None:
        member = _arg(call, 0, "member") if name == "extract" else _kw(call, "members")
        if flow.is_tainted(member):
            return f"tar {name}() of archive members without a filter or a path check"
    if name in _PATH_FUNCS and (isinstance(call.func, ast.Name) or full.split(".")[0] in {"os", "shutil", "io"}
                                or name in {"FileResponse", "send_file"}):
        if _path_tainted(_arg(call, 0, "file"), flow) or _path_tainted(_kw(call, "path"), flow):
            return f"{name}() on a path built from untrusted data"
    if name == "save" and isinstance(call.func, ast.Attribute) and _path_tainted(_arg(call, 0, "dst"), flow):
        return "save() to a path built from untrusted data"
    if name in _PATH_METHODS and isinstance(call.func, ast.Attribute) and _path_tainted(call.func.value, flow):
        return f".{name}() on a path built from untrusted data"
    return None


def _sink_redirect(call: ast.Call, flow: _Flow) -> str | None:
    if _last(call) in {"redirect", "HttpResponseRedirect", "RedirectResponse", "HTTPFound", "HTTPSeeOther",
                       "HTTPTemporaryRedirect", "HTTPMovedPermanently", "HttpResponsePermanentRedirect"}:
        if flow.is_tainted(_arg(call, 0, "url")) or flow.is_tainted(_kw(call, "location")):
            return "redirect to an untrusted URL"
    return None


_FIXED_ORIGIN = re.compile(r"^[a-zA-Z][\w+.-]*://[^/?#{}\s@\\]+[/?#]")


def _is_http_call(call: ast.Call) -> bool:
    full, name = dotted(call.func), _last(call)
    root = full.split(".")[0].lower()
    http = (root in {"requests", "httpx"} or any(w in root for w in ("session", "client", "http"))) and name in _HTTP_VERBS
    return http or name == "urlopen"


def _const_base(values: list[ast.AST], consts: AbstractSet[str] = frozenset()) -> bool:
    """`BASE_URL` (an UPPER_CASE constant, or an untainted local) then a literal path: the program chose the origin."""
    base = values[0] if values else None
    own = base is not None and (_is_const_name(base) or (isinstance(base, ast.Name) and base.id in consts))
    return len(values) >= 2 and own and isinstance(values[1], ast.Constant) and str(values[1].value).startswith("/")


def _fixed_origin(url: ast.AST | None, consts: AbstractSet[str] = frozenset()) -> bool:
    """A URL whose constant start already holds scheme, host and the "/" after it
    (``f"https://api.example.com/items/{x}"``): untrusted data can only change the path or query."""
    if isinstance(url, ast.BinOp) and isinstance(url.op, ast.Add) and _const_base([url.left, url.right], consts):
        return True
    while isinstance(url, ast.BinOp) and isinstance(url.op, ast.Add):
        url = url.left
    if isinstance(url, ast.JoinedStr) and _const_base([v.value if isinstance(v, ast.FormattedValue) else v for v in url.values], consts):
        return True
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
    http = (root in {"requests", "httpx"} or any(w in root for w in ("session", "client", "http")) or root in flow.http_clients) \
        and name in _HTTP_VERBS | {"fetch"}
    if http or name == "urlopen":
        url = _arg(call, 1, "url") if name == "request" else _arg(call, 0, "url")
        if url is not None and _names(url) & flow.fetched:
            return None  # a link found in a fetched page: following links is a crawler's job, not the request's input
        if flow.module.script and not flow.is_view and name in {"get", "head", "options", "urlopen", "fetch", "stream"}:
            return None  # a command-line script reads what its operator asks for (posting to a callback URL is still SSRF)
        if flow.is_tainted(url) and not _fixed_origin(url, flow.const_names):
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
    if dotted(call.func) == "string.Template":
        return None  # $-substitution only; no code runs
    if _last(call) == "from_string" and isinstance(call.func, ast.Attribute):
        env = call.func.value
        if (isinstance(env, ast.Call) and _last(env) in _SANDBOXES) or (isinstance(env, ast.Name) and env.id in flow.module.sandboxes):
            return None
    if _last(call) in {"render_template_string", "Template", "from_string"} and flow.is_tainted(_arg(call, 0, "source")):
        return f"{_last(call)}() with an untrusted template"
    return None


# ---- XSS ------------------------------------------------------------------------------------

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9-]*(\s|>|/|$)|<!--|<!DOCTYPE", re.I)
_SAFE_HTML = {"Markup", "format_html", "SafeString"}
_HTML_RESPONSES = {"HttpResponse", "HTMLResponse", "make_response", "Response"}


def _has_tag(node: ast.AST) -> bool:
    return any(isinstance(c, ast.Constant) and isinstance(c.value, str) and _TAG.search(c.value) for c in ast.walk(node))


def _add_parts(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _add_parts(node.left) + _add_parts(node.right)
    return [node]


def _in_comprehension(comp: ast.AST, flow: _Flow, check: Callable[[ast.AST], bool]) -> bool:
    added = flow.comprehension_targets(comp)
    try:
        return check(comp.elt)  # type: ignore[attr-defined]
    finally:
        flow.tainted -= added


def _html_tainted(node: ast.AST | None, flow: _Flow) -> bool:
    """An expression that builds HTML text (a tag in its constant parts) around untrusted data that is not escaped."""
    if node is None:
        return False
    if isinstance(node, ast.Name):
        return node.id in flow.html
    if isinstance(node, ast.Tuple) and node.elts:  # return body, status
        return _html_tainted(node.elts[0], flow)
    if isinstance(node, ast.JoinedStr):
        return _has_tag(node) and any(isinstance(v, ast.FormattedValue) and (flow.is_tainted(v.value) or _html_tainted(v.value, flow))
                                      for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        if isinstance(node.left, ast.Call) and _last(node.left) in _SAFE_HTML:
            return False  # Markup("<h2>%s</h2>") % x escapes x
        return _has_tag(node.left) and (flow.is_tainted(node.right) or _html_tainted(node.right, flow))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = _add_parts(node)
        if any(_html_tainted(p, flow) for p in parts):
            return True
        return any(isinstance(p, (ast.Constant, ast.JoinedStr)) and _has_tag(p) for p in parts) and any(flow.is_tainted(p) for p in parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        name, recv = node.func.attr, node.func.value
        if name == "format":
            if isinstance(recv, ast.Call) and _last(recv) in _SAFE_HTML:
                return False  # Markup("<p>{}</p>").format(x) escapes x
            return _has_tag(recv) and any(flow.is_tainted(a) for a in [*node.args, *(k.value for k in node.keywords)])
        if name == "join" and node.args:
            arg = node.args[0]
            if isinstance(arg, (ast.ListComp, ast.GeneratorExp)):
                return _in_comprehension(arg, flow, lambda e: _html_tainted(e, flow))
            return _html_tainted(arg, flow)
        if name in {"encode", "strip", "replace"}:
            return _html_tainted(recv, flow)
        return False
    if isinstance(node, (ast.List, ast.Set)):
        return any(_html_tainted(e, flow) for e in node.elts)
    if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
        return _in_comprehension(node, flow, lambda e: _html_tainted(e, flow))
    if isinstance(node, ast.IfExp):
        return _html_tainted(node.body, flow) or _html_tainted(node.orelse, flow)
    return False


def _sink_xss(call: ast.Call, flow: _Flow) -> str | None:
    if not flow.is_view:
        return None
    name = _last(call)
    if name in {"Markup", "mark_safe", "SafeString"} and call.args and flow.is_tainted(call.args[0]):
        return f"{name}() marks untrusted data as safe HTML"
    if name == "html" and (dotted(call.func).startswith("response.") or "html" in flow.module.html_helpers):
        if call.args and _html_tainted(call.args[0], flow):  # Sanic / Quart-style html() response
            return "html() response built from untrusted data, unescaped"
    if name in _HTML_RESPONSES:
        ctype = _kw(call, "content_type") or _kw(call, "media_type") or _kw(call, "mimetype")
        if ctype is not None and not (isinstance(ctype, ast.Constant) and "html" in str(ctype.value)):
            return None
        body = _kw(call, "text") or _kw(call, "body") if dotted(call.func).startswith("web.") else _arg(call, 0, "content")
        if dotted(call.func).startswith("web.") and ctype is None:
            return None  # aiohttp's text= is text/plain unless told otherwise
        if _html_tainted(body, flow):
            return f"{name}() with HTML built from untrusted data, unescaped"
    if name in {"write", "finish"} and isinstance(call.func, ast.Attribute) and dotted(call.func.value) in {"self", "self.wfile"}:
        if call.args and _html_tainted(call.args[0], flow):
            return "HTML built from untrusted data written to the response, unescaped"
    return None


def _stmt_xss(st: ast.stmt, flow: _Flow) -> str | None:
    if isinstance(st, ast.Return) and flow.is_view and _returns_html(flow) and _html_tainted(st.value, flow):
        return "a view returns HTML built from untrusted data, unescaped"
    return None


def _returns_html(flow: _Flow) -> bool:
    """A returned string is the HTML response (Flask, Bottle), not JSON (FastAPI without response_class=HTMLResponse)."""
    if not flow.module.fastapi:
        return True
    decorators = getattr(flow.fn, "decorator_list", [])
    return any(isinstance(d, ast.Call) and "HTMLResponse" in ast.unparse(_kw(d, "response_class") or ast.Constant(""))
               for d in decorators)


_PLAIN_DECORATORS = {"staticmethod", "classmethod", "property", "cache", "lru_cache", "cached_property", "wraps",
                     "dataclass", "contextmanager", "abstractmethod", "overload", "retry", "shared_task", "task"}


def _routing_decorators(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    """Decorators that may make a function a request handler (not @staticmethod, @lru_cache, ...)."""
    return [d for d in fn.decorator_list
            if dotted(d.func if isinstance(d, ast.Call) else d).split(".")[-1].rstrip("()") not in _PLAIN_DECORATORS]


def _is_view(fn: ast.AST) -> bool:
    """A function that handles a web request: decorated, given the request, reading Flask's request, or a handler method."""
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    params = {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}
    if _routing_decorators(fn) or params & _REQUEST_PARAMS:
        return True
    if fn.name in {"get", "post", "put", "patch", "delete", "head", "do_GET", "do_POST", "do_PUT", "do_DELETE"}:
        return True
    return any(isinstance(n, ast.Name) and n.id == "request" for n in ast.walk(fn))


_SERVER_MODULES = {"http.server", "socketserver", "wsgiref.simple_server"}  # the standard library's servers


@dataclass(frozen=True)
class _ModuleFacts:
    fastapi: bool = False
    sandboxes: frozenset[str] = frozenset()
    html_helpers: frozenset[str] = frozenset()  # `html` imported from sanic.response
    script: bool = False  # a command-line program (__main__ guard, argparse or sys.argv) with no web framework


    @classmethod
    def of(cls, tree: ast.Module) -> "_ModuleFacts":
        mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        sandboxes = {t for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                     and _last(n.value) in _SANDBOXES for tg in n.targets for t in _targets(tg)}
        main = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
        cli = main or "argparse" in mods or any(dotted(n) == "sys.argv" for n in ast.walk(tree) if isinstance(n, ast.Attribute))
        web = bool(mods & {"flask", "django", "fastapi", "aiohttp", "tornado", "bottle", "starlette", "pyramid", "sanic", "falcon"})
        web |= any(isinstance(n, ast.ImportFrom) and n.module in _SERVER_MODULES for n in ast.walk(tree)) or any(
            isinstance(n, ast.Import) and any(a.name in _SERVER_MODULES for a in n.names) for n in ast.walk(tree))
        helpers = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                   and (n.module or "").startswith(("sanic", "quart")) for a in n.names}
        return cls("fastapi" in mods, frozenset(sandboxes), frozenset(helpers), cli and not web)


# ---- deserialisation, XML entities, shell ------------------------------------------------

_UNSAFE_LOADERS = {"yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "jsonpickle.decode", "jsonpickle.loads",
                   "dill.load", "dill.loads", "joblib.load", "shelve.open", "pandas.read_pickle", "pd.read_pickle",
                   "cloudpickle.load", "cloudpickle.loads"}
_LXML_PARSE = {"fromstring", "parse", "XML", "iterparse"}


def _sink_xxe(call: ast.Call, flow: _Flow) -> str | None:
    full = dotted(call.func)
    if _last(call) in _LXML_PARSE and (full.startswith("etree.") or full.startswith("lxml.")) and flow.module_lxml:
        parser = _arg(call, 1, "parser")
        if parser is None and flow.is_tainted(_arg(call, 0, "source")):
            return f"{full}() parses untrusted XML with lxml's default parser (entities resolved before lxml 5)"
    return None


def _sink_cmd(call: ast.Call, flow: _Flow) -> str | None:
    if _last(call) in {"create_subprocess_shell", "subprocess_shell"} and flow.is_tainted(_arg(call, 0, "cmd")):
        return f"{_last(call)}() runs a shell command built from untrusted data"
    return None


def _assign_xss(st: ast.Assign, flow: _Flow) -> str | None:
    """resp.text = "<h2>" + name + "</h2>" (Falcon), response.content = ... (Django) in a handler."""
    for t in st.targets:
        if flow.is_view and isinstance(t, ast.Attribute) and t.attr in {"text", "body", "content"} \
                and isinstance(t.value, ast.Name) and t.value.id in {"resp", "response", "res"} and _html_tainted(st.value, flow):
            return "HTML built from untrusted data set as the response body, unescaped"
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
    "PST-XSS": _sink_xss,
    "PST-XXE": _sink_xxe,
    "PST-CMD": _sink_cmd,
}
_STMT_SINKS: dict[str, Callable[[ast.stmt, _Flow], str | None]] = {"PST-XSS": _stmt_xss}
_ASSIGN_SINKS: dict[str, Callable[[ast.Assign, _Flow], str | None]] = {"PST-CORS": _assign_cors, "PST-XSS": _assign_xss}


# ---- whole-module rules ----------------------------------------------------------------------


def _rule_upload(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Saved under the client's file name (``.filename``) with no type check; a name the server
    chose (``f"{lang}.json"``) fixes the type."""
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        attrs = {n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
        if "filename" not in attrs:
            continue
        saves = [c for c in ast.walk(fn) if isinstance(c, ast.Call) and _last(c) in {"save", "write_bytes"} and isinstance(c.func, ast.Attribute)]
        checked = any(isinstance(n, (ast.If, ast.IfExp)) and _checks_type(n.test) for n in ast.walk(fn))
        upload_param = any(a.annotation is not None and "UploadFile" in ast.unparse(a.annotation) for a in fn.args.args)
        if saves and (attrs & {"files", "FILES"} or upload_param) and not checked:
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
    for fn in ast.walk(tree):  # an error handler (FastAPI exception_handler, Flask errorhandler) returning the exception
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.args.args and any(
                dotted(d.func if isinstance(d, ast.Call) else d).split(".")[-1] in {"exception_handler", "errorhandler"}
                for d in fn.decorator_list):
            exc = fn.args.args[-1].arg
            for r in ast.walk(fn):
                if isinstance(r, ast.Return) and r.value is not None and any(
                        isinstance(c, ast.Call) and _last(c) in {"str", "repr", "format_exc"} and exc in _names(c) for c in ast.walk(r.value)):
                    yield r.lineno, "exception details sent to the client"
                    break
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


def _const_int(node: ast.AST | None) -> int | None:
    """An int constant, or constants combined with | + (0o644 | 0o022, stat.S_IRUSR | ... is not folded)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitOr, ast.Add)):
        a, b = _const_int(node.left), _const_int(node.right)
        return None if a is None or b is None else (a | b if isinstance(node.op, ast.BitOr) else a + b)
    return None


def _rule_perms(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        full, name = dotted(n.func), _last(n)
        mode = None
        if name == "chmod" and isinstance(n.func, ast.Attribute):
            value = _const_int(_arg(n, 1 if full == "os.chmod" else 0, "mode"))
            if value is not None and value & 0o002 and (full != "os.chmod" or not isinstance(_arg(n, 1, "mode"), ast.Constant)):
                yield n.lineno, f"chmod to world-writable mode {oct(value)}"  # os.chmod with a plain constant is bandit's B103
            continue
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
    if isinstance(node, ast.Call):  # a function's name is not data: print(issue_token(x)) is judged by its arguments
        return any(_logs_secret(c) for c in [*node.args, *(k.value for k in node.keywords)])
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


def _imported_from(tree: ast.Module, module: str) -> set[str]:
    return {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == module
            for a in n.names}


def _rule_autoescape(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """jinja2.Template(...) with autoescape off (its default) unless the source is a constant without HTML tags."""
    consts = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
              and isinstance(n.value.value, str) for t in n.targets if isinstance(t, ast.Name)}
    jinja_template = "Template" in _imported_from(tree, "jinja2")
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and (dotted(n.func) == "jinja2.Template" or (jinja_template and dotted(n.func) == "Template"))):
            continue
        ae = _kw(n, "autoescape")
        if ae is not None and not (isinstance(ae, ast.Constant) and ae.value is False):
            continue
        src = _arg(n, 0, "source")
        text = src.value if isinstance(src, ast.Constant) else consts.get(src.id) if isinstance(src, ast.Name) else None
        if ae is None and isinstance(text, str) and not _TAG.search(text):
            continue  # a plain-text template
        yield n.lineno, "Jinja2 Template without autoescaping"


def _rule_deser(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        full = dotted(n.func)
        if full in _UNSAFE_LOADERS:
            yield n.lineno, f"{full}() can build arbitrary objects"
        elif _last(n) == "load" and full.split(".")[0] in {"np", "numpy"} and _is_true(_kw(n, "allow_pickle")):
            yield n.lineno, "numpy load with allow_pickle=True"


def _rule_xxe_parser(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and _last(n) == "XMLParser":
            bad = [k.arg for k in n.keywords if (k.arg in {"resolve_entities", "load_dtd", "dtd_validation"} and _is_true(k.value))
                   or (k.arg == "no_network" and isinstance(k.value, ast.Constant) and k.value.value is False)]
            if bad:
                yield n.lineno, f"XMLParser({', '.join(bad)}) resolves external entities"


_CRED_NAME = re.compile(r"pass(wd|word)?$|^pwd$|password|secret|token|api_?key|access_?key|private_?key|auth_?key|credential", re.I)
# placeholders (examples, docs), names of environment variables, URLs and phrases: not secrets
NOT_SECRET = re.compile(
    r"^$|^<.*>$|^\{.*\}$|^\$\{?\w+\}?$|^(x+|\*+|\.+|-+|#+)$|your|example|placeholder|dummy|fake|sample|^test|redacted|replace|"
    r"^(secret|password|passwd|token|api[_-]?key|key|bearer|basic|none|null|todo|tbd|changeit)$|^https?://|(?-i:^[A-Z][A-Z0-9_]+$)|\s",
    re.I,
)


_URI_PASSWORD = re.compile(r"^[a-zA-Z][\w+.-]*://[^:/@\s]+:([^@/\s]+)@")


def _cred_literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) >= 6 and not NOT_SECRET.search(node.value)


def _uri_password(node: ast.AST) -> bool:
    """mongodb://user:S3cret@host/ -- a literal password inside a connection URI."""
    m = isinstance(node, ast.Constant) and isinstance(node.value, str) and _URI_PASSWORD.match(node.value)
    return bool(m) and len(m.group(1)) >= 4 and not NOT_SECRET.search(m.group(1))


def test_lines(tree: ast.Module) -> set[int]:
    """Lines of test code: ``test*`` functions, ``Test*`` / ``*TestCase`` classes and pytest fixtures
    (a file that also holds application code is not test code as a whole)."""
    out: set[int] = set()
    for n in ast.walk(tree):
        fixture = isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            "fixture" in ast.unparse(d) for d in n.decorator_list)
        if fixture or (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")) or (
                isinstance(n, ast.ClassDef) and (n.name.startswith("Test") or n.name.endswith("Test")
                                                 or any("TestCase" in ast.unparse(b) for b in n.bases))):
            out.update(range(n.lineno, (n.end_lineno or n.lineno) + 1))
    return out


def _rule_creds(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Literal credentials (not placeholders, not in tests) given to a password/token/key name or to login()."""
    tests = test_lines(tree)
    for n in ast.walk(tree):
        if getattr(n, "lineno", 0) in tests:
            continue
        hits: list[ast.AST] = []
        if isinstance(n, ast.Call):
            hits += [k.value for k in n.keywords if k.arg and _CRED_NAME.search(k.arg)]
            if _last(n) in {"login", "auth", "authenticate"} and isinstance(n.func, ast.Attribute) and len(n.args) >= 2:
                hits.append(n.args[1])
        elif isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None:
            for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else \
                    str(t.slice.value) if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) else ""
                if name and _CRED_NAME.search(name):
                    hits.append(n.value)
        elif isinstance(n, ast.Dict):
            hits += [v for k, v in zip(n.keys, n.values) if isinstance(k, ast.Constant) and _CRED_NAME.search(str(k.value))]
        if any(_cred_literal(h) for h in hits):
            yield n.lineno, "literal credential in the source"
        elif isinstance(n, ast.Constant) and _uri_password(n):
            yield n.lineno, "literal password in a connection URI"


def _rule_tls(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if not isinstance(n, ast.Assign):
            continue
        for t in n.targets:
            if not isinstance(t, ast.Attribute):
                continue
            if t.attr == "verify_mode" and dotted(n.value).endswith("CERT_NONE"):
                yield n.lineno, "TLS verify_mode = CERT_NONE"
            elif t.attr in {"check_hostname", "verify"} and isinstance(n.value, ast.Constant) and n.value.value is False:
                yield n.lineno, f"TLS {t.attr} = False"


_PASSWORDISH = re.compile(r"passw|passphrase|^pwd$|_pwd$|secret|^pin$", re.I)
_FAST_HASHES = {"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake2b", "blake2s"}


def _rule_pwhash(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """hashlib.sha256(password.encode()) and the like: fast to brute-force; use bcrypt/scrypt/argon2/pbkdf2."""
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and dotted(n.func).startswith("hashlib.") and _last(n) in _FAST_HASHES and n.args:
            names = {x.id for x in ast.walk(n.args[0]) if isinstance(x, ast.Name)}
            names |= {x.attr for x in ast.walk(n.args[0]) if isinstance(x, ast.Attribute)}
            if any(_PASSWORDISH.search(x) for x in names):
                yield n.lineno, f"hashlib.{_last(n)}() of a password or secret"


def _rule_cipher(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """PyCryptodome's weak ciphers and ECB mode (bandit's B304/B305 cover the cryptography package)."""
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and n.attr == "MODE_ECB":
            yield n.lineno, "ECB mode"
        elif isinstance(n, ast.Call) and dotted(n.func) in {"DES.new", "DES3.new", "ARC4.new", "ARC2.new", "Blowfish.new"}:
            yield n.lineno, f"{dotted(n.func)[:-4]} cipher"


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
    "PST-AUTOESCAPE": _rule_autoescape,
    "PST-DESER": _rule_deser,
    "PST-XXE": _rule_xxe_parser,
    "PST-CREDS": _rule_creds,
    "PST-TLS": _rule_tls,
    "PST-CIPHER": _rule_cipher,
    "PST-PWHASH": _rule_pwhash,
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
    stmt_rules = {r: _STMT_SINKS[r] for r in wanted & set(_STMT_SINKS)}
    if call_rules or assign_rules or stmt_rules:
        found += _run_flow(tree, call_rules, assign_rules, stmt_rules)
    return sorted(set(found), key=lambda f: (f.line, f.rule))


def _run_flow(tree: ast.Module, call_rules: dict, assign_rules: dict, stmt_rules: dict | None = None) -> list[Finding]:
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

    def on_stmt(st: ast.stmt, flow: _Flow) -> None:
        for rule, check in (stmt_rules or {}).items():
            msg = check(st, flow)
            if msg:
                found.append(Finding(rule, st.lineno, msg))

    facts = _ModuleFacts.of(tree)
    lxml = any("lxml" in ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))
    scopes: list[ast.Module | ast.FunctionDef | ast.AsyncFunctionDef] = [tree]
    scopes += [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for scope in scopes:
        flow = _Flow(on_call, on_assign, on_stmt, facts)
        flow.module_lxml = lxml
        flow.run(scope)
    return found
