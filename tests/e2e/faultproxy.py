"""faultproxy.py — a fault-injecting HTTP/1.1 reverse proxy in front of a real upstream registry,
for the pull-through mirror's end-to-end tests. Standard library only.

    proxy = FaultProxy("127.0.0.1", upstream_port).start()
    proxy.url()                                   # http://127.0.0.1:<proxy.port>
    proxy.set_fault("status", code=503, path_contains="/manifests/")
    proxy.set_fault("delete_tag", repo="library/alpine", tag="3")
    proxy.clear_faults()                          # or clear_faults("status")
    proxy.count("GET", "/blobs/"); proxy.requests; proxy.reset_counts()
    proxy.stop()                                  # closes every socket, joins every thread

One thread per client connection; client connections are kept alive (HTTP/1.1), and each one
has its own kept-alive upstream connection. Request and response bodies are streamed in pieces
of at most 64 KiB, never held whole. The upstream sees its own host:port in Host, and absolute
URLs to the upstream in `WWW-Authenticate` (the token realm) and `Location` are rewritten to
the proxy, so token fetches and upload sessions go through the proxy (and its faults) too.

Faults (`set_fault(kind, **params)`). Every kind except `refuse` takes the optional filters
`path_contains=` (substring of the request target, query included) and `method=` (a method or
a tuple of them), and `times=N` (the fault acts on the next N matching requests only, then
stays inert until cleared). Setting a kind again replaces the fault with the same key: the
kind and its filters (`delete_tag`: repo and tag; `corrupt_blob`: digest), so several
`status` faults for different paths, or several deleted tags, can be active at once.

    refuse                      listening socket closed (connects get ECONNREFUSED), open
                                connections closed; clearing it listens again on the same port
    hang                        the request is read (headers) and never answered; the
                                connection is closed when the fault is cleared or the proxy stops
    status     code=500         that status and a small JSON error body (code=, message=)
    ratelimit  retry_after=60   429 TOOMANYREQUESTS with Docker Hub's ratelimit-* headers
    unauthorized                401 UNAUTHORIZED (challenge= the WWW-Authenticate value,
                                default 'Bearer realm="<proxy>/token",service="faultproxy"';
                                None for no header)
    delete_tag repo=, tag=      GET/HEAD /v2/<repo>/manifests/<tag> answer 404 MANIFEST_UNKNOWN;
                                the request still goes upstream first and a 401/403 from there
                                is passed through (auth comes before existence, as upstream)
    corrupt_blob digest=        GET /v2/<name>/blobs/<digest>: the body's first byte and one
                                byte per MiB after it are inverted; length and headers unchanged
    slow       bytes_per_sec=   response bodies are sent at that rate (headers at once)
    delay      seconds=         wait that long before forwarding (or answering)

Precedence for one request: `refuse` (no request is read) > `hang` > `delay` (then goes on
to the rest) > the synthetic answers `unauthorized` > `ratelimit` > `status` (among several
matching `status` faults the one set last) > `delete_tag` > forwarding, where `corrupt_blob`
and `slow` both apply to the same body. A synthetic answer reads (discards) the request body
first so the connection stays usable. An unreachable upstream is answered 502 UNAVAILABLE.

`requests` is a list of (method, target, status): status is what the client was answered,
None for a hung request or one whose upstream failed before any answer was possible.
"""
import http.client
import json
import select
import socket
import threading
import time

CHUNK = 64 * 1024
FLIP_EVERY = 1024 * 1024
KINDS = ("refuse", "hang", "status", "ratelimit", "unauthorized", "delete_tag", "corrupt_blob",
         "slow", "delay")
# kind: (required parameters, optional ones), besides path_contains, method and times
_PARAMS = {"refuse": ((), ()), "hang": ((), ()),
           "status": (("code",), ("message", "error_code", "body", "headers")),
           "ratelimit": ((), ("retry_after", "limit", "window", "source", "message")),
           "unauthorized": ((), ("challenge", "message")),
           "delete_tag": (("repo", "tag"), ()), "corrupt_blob": (("digest",), ()),
           "slow": (("bytes_per_sec",), ()), "delay": (("seconds",), ())}
_ANSWERS = ("unauthorized", "ratelimit", "status")  # precedence among synthetic answers
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "proxy-authenticate", "proxy-authorization"}
RATELIMIT_MESSAGE = ("You have reached your pull rate limit. You may increase the limit by "
                     "authenticating and upgrading: https://www.docker.com/increase-rate-limit")
_STATUS_CODES = {400: "UNSUPPORTED", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
                 429: "TOOMANYREQUESTS", 503: "UNAVAILABLE"}


_ANY = object()


class _ClientGone(Exception):
    """The client closed (or broke) its connection."""


class _UpstreamFailed(Exception):
    """The upstream could not be reached or broke off before a response."""


def error_body(code, message, detail=None):
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


class _Fault:
    def __init__(self, kind, params):
        if kind not in KINDS:
            raise ValueError("unknown fault kind %r (one of %s)" % (kind, ", ".join(KINDS)))
        p = dict(params)
        self.kind = kind
        self.path_contains = p.pop("path_contains", None)
        m = p.pop("method", None)
        self.methods = None if m is None else ({m} if isinstance(m, str) else set(m))
        self.remaining = p.pop("times", None)
        self.params = p
        self.released = threading.Event()  # hang: set when the fault is cleared
        for k in _PARAMS[kind][0]:
            if k not in p:
                raise ValueError("fault %s needs %s=" % (kind, k))
        extra = set(p) - set(_PARAMS[kind][0]) - set(_PARAMS[kind][1])
        if extra or (kind == "refuse" and (self.path_contains or self.methods or self.remaining)):
            raise ValueError("fault %s: unknown parameters %s" % (kind, sorted(extra) or
                                                                  "(refuse takes none)"))
        if kind == "slow" and p["bytes_per_sec"] <= 0:
            raise ValueError("slow: bytes_per_sec must be > 0")

    def key(self):
        base = (self.kind, self.path_contains,
                tuple(sorted(self.methods)) if self.methods else None)
        if self.kind == "delete_tag":
            return base + (self.params["repo"], self.params["tag"])
        if self.kind == "corrupt_blob":
            return base + (self.params["digest"],)
        return base

    def matches(self, method, target):
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        if self.path_contains is not None and self.path_contains not in target:
            return False
        path = target.split("?", 1)[0]
        if self.kind == "delete_tag":
            return (method in ("GET", "HEAD") and
                    path == "/v2/%s/manifests/%s" % (self.params["repo"], self.params["tag"]))
        if self.kind == "corrupt_blob":
            return (method == "GET" and path.startswith("/v2/") and
                    path.endswith("/blobs/" + self.params["digest"]))
        return True

    def take(self):
        if self.remaining is not None:
            self.remaining -= 1
        return self


class _Plan:
    """The faults that act on one request, chosen (and their `times` used) under the lock."""
    hang = delay = answer = delete_tag = slow = None
    corrupt = False


class _Request:
    def __init__(self, method, target, version, headers):
        self.method, self.target, self.version, self.headers = method, target, version, headers

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def tokens(self, name):
        out = set()
        for k, v in self.headers:
            if k.lower() == name.lower():
                out |= {t.strip().lower() for t in v.split(",") if t.strip()}
        return out


class _Client:
    def __init__(self, sock):
        self.sock = sock
        self.rfile = sock.makefile("rb", buffering=CHUNK)
        self.up = None
        self.closed = threading.Event()
        self.thread = None

    def shutdown(self):
        """From another thread: unblock whatever the handler waits on; it closes the rest."""
        self.closed.set()
        for s in (self.sock, self.up.sock if self.up is not None else None):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class FaultProxy:
    def __init__(self, upstream_host, upstream_port, upstream_timeout=120):
        self.upstream_host = upstream_host
        self.upstream_port = int(upstream_port)
        self.upstream_timeout = upstream_timeout
        self.port = None
        self._lock = threading.Condition(threading.RLock())
        self._faults = []
        self._requests = []
        self._clients = set()
        self._lsock = None
        self._refusing = False
        self._stopping = False
        self._gen = self._applied = 0
        self._bind_error = None
        self._wake_r = self._wake_w = None
        self._accept_thread = None
        self.accepted = 0  # client connections accepted so far

    # --- public API -----------------------------------------------------------------------

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        self._lsock = self._listen(0)
        self.port = self._lsock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name="faultproxy-accept-%d" % self.port)
        self._accept_thread.start()
        return self

    def stop(self):
        with self._lock:
            if self._accept_thread is None:
                return
            self._stopping = True
            for f in self._faults:
                f.released.set()
        self._wake()
        self._accept_thread.join(10)
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            c.shutdown()
        for c in clients:
            c.thread.join(10)
        with self._lock:
            if self._lsock is not None:
                self._lsock.close()
                self._lsock = None
            self._accept_thread = None
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def set_fault(self, kind, **params):
        f = _Fault(kind, params)
        with self._lock:
            old = [x for x in self._faults if x.key() == f.key()]
            self._faults = [x for x in self._faults if x.key() != f.key()] + [f]
        for x in old:
            x.released.set()
        if kind == "refuse":
            self._set_refusing(True)
        return f

    def clear_faults(self, kind=None):
        with self._lock:
            gone = [f for f in self._faults if kind is None or f.kind == kind]
            self._faults = [f for f in self._faults if f not in gone]
            refusing = any(f.kind == "refuse" for f in self._faults)
        for f in gone:
            f.released.set()
        if not refusing:
            self._set_refusing(False)

    def faults(self):
        with self._lock:
            return [(f.kind, dict(f.params)) for f in self._faults]

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def count(self, method=None, path_contains=None, status=_ANY):
        """Requests seen with that method, target substring and answer status (None for the
        hung ones); an argument left out matches anything."""
        with self._lock:
            return sum(1 for m, p, s in self._requests
                       if (method is None or m == method)
                       and (path_contains is None or path_contains in p)
                       and (status is _ANY or s == status))

    def reset_counts(self):
        with self._lock:
            self._requests = []
            self.accepted = 0

    def open_connections(self):
        with self._lock:
            return len(self._clients)

    # --- listening ------------------------------------------------------------------------

    @staticmethod
    def _listen(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(128)
        except OSError:
            s.close()
            raise
        return s

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _set_refusing(self, on):
        with self._lock:
            if self._refusing == on or self._accept_thread is None:
                self._refusing = on
                return
            self._refusing = on
            self._gen += 1
            gen = self._gen
            self._wake()
            while self._applied < gen and not self._stopping:
                self._lock.wait(1)
            deadline = time.monotonic() + 5
            while (not on and self._lsock is None and not self._stopping
                   and time.monotonic() < deadline):
                self._lock.wait(0.05)  # the accept loop retries the bind every 50 ms
            err = self._bind_error if not on and self._lsock is None else None
            clients = list(self._clients) if on else []
        for c in clients:
            c.shutdown()
        if err:
            raise RuntimeError("faultproxy: cannot listen on port %d again: %s" % (self.port, err))

    def _accept_loop(self):
        while True:
            with self._lock:
                want = not self._stopping and not self._refusing
                if want and self._lsock is None:
                    try:  # TIME_WAIT is fine with SO_REUSEADDR; another listener is not
                        self._lsock = self._listen(self.port)
                        self._bind_error = None
                    except OSError as e:
                        self._bind_error = e  # clear_faults raises it; this loop retries
                elif not want and self._lsock is not None:
                    self._lsock.close()
                    self._lsock = None
                self._applied = self._gen
                self._lock.notify_all()
                if self._stopping:
                    return
                ls = self._lsock
            rl = [self._wake_r] + ([ls] if ls is not None else [])
            r, _, _ = select.select(rl, [], [], 1.0 if ls is not None or not want else 0.05)
            if self._wake_r in r:
                self._wake_r.recv(4096)
            if ls is not None and ls in r:
                try:
                    sock, _ = ls.accept()
                except OSError:
                    continue
                self._spawn(sock)

    def _spawn(self, sock):
        with self._lock:
            if self._stopping or self._refusing:
                sock.close()
                return
            c = _Client(sock)
            c.thread = threading.Thread(target=self._serve, args=(c,), daemon=True,
                                        name="faultproxy-conn-%d" % self.port)
            self._clients.add(c)
            self.accepted += 1
        c.thread.start()

    # --- one client connection ------------------------------------------------------------

    def _serve(self, c):
        try:
            while not c.closed.is_set():
                req = self._read_request(c)
                if req is None or not self._handle(c, req):
                    break
        except (_ClientGone, OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            with self._lock:
                self._clients.discard(c)
            if c.up is not None:
                c.up.close()
            for x in (c.rfile, c.sock):
                try:
                    x.close()
                except OSError:
                    pass

    def _read_request(self, c):
        line = b"\r\n"
        while line in (b"\r\n", b"\n"):
            line = c.rfile.readline(65537)
            if not line:
                return None
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError("bad request line %r" % line[:100])
        method, target, version = parts
        if target.startswith("http://") or target.startswith("https://"):
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        headers = []
        while True:
            h = c.rfile.readline(65537)
            if not h:
                raise _ClientGone()
            if h in (b"\r\n", b"\n"):
                break
            if len(headers) >= 256:
                raise ValueError("too many headers")
            k, sep, v = h.decode("latin-1").partition(":")
            if not sep:
                raise ValueError("bad header line")
            headers.append((k.strip(), v.strip()))
        return _Request(method, target, version, headers)

    def _body(self, c, req):
        """A generator of the request body's pieces (de-chunked), or None without a body."""
        if "chunked" in req.tokens("transfer-encoding"):
            return self._chunked_body(c)
        cl = req.header("content-length")
        if cl is None or int(cl) == 0:
            return None
        return self._sized_body(c, int(cl))

    def _sized_body(self, c, n):
        while n > 0:
            data = c.rfile.read1(min(n, CHUNK))
            if not data:
                raise _ClientGone()
            n -= len(data)
            yield data

    def _chunked_body(self, c):
        while True:
            line = c.rfile.readline(1024)
            if not line:
                raise _ClientGone()
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers
                    t = c.rfile.readline(65537)
                    if not t:
                        raise _ClientGone()
                    if t in (b"\r\n", b"\n"):
                        return
            while size > 0:
                data = c.rfile.read1(min(size, CHUNK))
                if not data:
                    raise _ClientGone()
                size -= len(data)
                yield data
            if c.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise ValueError("bad chunk")

    def _plan(self, method, target):
        p = _Plan()
        with self._lock:
            faults = list(self._faults)
            for f in faults:
                if f.kind == "hang" and f.matches(method, target):
                    p.hang = f.take()
                    return p
            for f in faults:
                if f.kind == "delay" and f.matches(method, target):
                    p.delay = f.take()
                    break
            for kind in _ANSWERS:
                for f in reversed(faults):
                    if f.kind == kind and f.matches(method, target):
                        p.answer = f.take()
                        return p
            for f in faults:
                if f.kind == "delete_tag" and f.matches(method, target):
                    p.delete_tag = f.take()
                    return p
            for f in faults:
                if f.kind == "corrupt_blob" and f.matches(method, target):
                    f.take()
                    p.corrupt = True
                if f.kind == "slow" and p.slow is None and f.matches(method, target):
                    p.slow = f.take()
        return p

    def _record(self, req, status):
        with self._lock:
            self._requests.append((req.method, req.target, status))

    def _handle(self, c, req):
        """Answer one request; returns whether the client connection stays open."""
        keep = req.version == "HTTP/1.1" and "close" not in req.tokens("connection")
        plan = self._plan(req.method, req.target)
        if plan.hang is not None:
            self._record(req, None)
            while not plan.hang.released.wait(0.05):
                if c.closed.is_set():
                    break
            return False
        if req.header("expect") and req.header("expect").lower() == "100-continue":
            c.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._body(c, req)
        if plan.delay is not None:
            if c.closed.wait(plan.delay.params["seconds"]):
                return False
        if plan.answer is not None:
            for _ in body or ():
                pass
            st, hdrs, data = self._synthetic(plan.answer)
            return self._answer(c, req, st, hdrs, data, keep)
        try:
            resp = self._forward(c, req, body)
        except _UpstreamFailed as e:
            self._record(req, 502)
            data = error_body("UNAVAILABLE", "faultproxy: upstream failed: %s" % e)
            self._answer(c, req, 502, [], data, False, record=False)
            return False
        if plan.delete_tag is not None and resp.status not in (401, 403):
            resp.read()
            tag = plan.delete_tag.params["tag"]
            return self._answer(c, req, 404, [], error_body(
                "MANIFEST_UNKNOWN", "manifest unknown", "unknown tag=%s" % tag), keep)
        return self._relay(c, req, resp, plan, keep)

    def _synthetic(self, f):
        p = f.params
        if f.kind == "unauthorized":
            ch = p.get("challenge", 'Bearer realm="%s",service="faultproxy"' % self.url("/token"))
            return 401, ([("WWW-Authenticate", ch)] if ch else []), error_body(
                "UNAUTHORIZED", p.get("message", "authentication required"))
        if f.kind == "ratelimit":
            w = p.get("window", 21600)
            return 429, [("ratelimit-limit", "%d;w=%d" % (p.get("limit", 100), w)),
                         ("ratelimit-remaining", "0;w=%d" % w),
                         ("docker-ratelimit-source", p.get("source", "127.0.0.1")),
                         ("Retry-After", str(p.get("retry_after", 60)))], \
                error_body("TOOMANYREQUESTS", p.get("message", RATELIMIT_MESSAGE))
        code = int(p["code"])
        if "body" in p:
            data = p["body"] if isinstance(p["body"], bytes) else p["body"].encode()
        else:
            data = error_body(p.get("error_code", _STATUS_CODES.get(code, "UNKNOWN")),
                              p.get("message", "faultproxy: injected status %d" % code))
        return code, list(p.get("headers", [])), data

    def _answer(self, c, req, status, headers, data, keep, record=True):
        if record:
            self._record(req, status)
        hs = [("Content-Type", "application/json; charset=utf-8"),
              ("Docker-Distribution-Api-Version", "registry/2.0")] + list(headers)
        hs.append(("Content-Length", str(len(data))))
        self._send_head(c, status, None, hs, keep, data if req.method != "HEAD" else b"")
        return keep

    @staticmethod
    def _send_head(c, status, reason, headers, keep, body=b""):
        reason = reason or http.client.responses.get(status, "Status")
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        lines += ["%s: %s" % (k, v) for k, v in headers]
        if not keep:
            lines.append("Connection: close")
        c.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _upstream(self, c):
        if c.up is not None and c.up.sock is not None:
            r, _, _ = select.select([c.up.sock], [], [], 0)
            if r:  # a kept-alive connection the upstream has closed (or junk): start over
                c.up.close()
        if c.up is None:
            c.up = http.client.HTTPConnection(self.upstream_host, self.upstream_port,
                                              timeout=self.upstream_timeout, blocksize=CHUNK)
        return c.up

    def _forward(self, c, req, body):
        drop = HOP_BY_HOP | {"host", "content-length", "expect"} | req.tokens("connection")
        hs = [("Host", "%s:%d" % (self.upstream_host, self.upstream_port))]
        hs += [(k, v) for k, v in req.headers if k.lower() not in drop]
        chunked = "chunked" in req.tokens("transfer-encoding")
        if chunked:
            hs.append(("Transfer-Encoding", "chunked"))
        elif body is not None:
            hs.append(("Content-Length", req.header("content-length")))
        for attempt in (0, 1):
            up = self._upstream(c)
            reused = up.sock is not None
            try:
                up.putrequest(req.method, req.target, skip_host=True, skip_accept_encoding=True)
                for k, v in hs:
                    up.putheader(k, v)
                up.endheaders()
                if body is not None:
                    for piece in body:
                        up.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    if chunked:
                        up.send(b"0\r\n\r\n")
                return up.getresponse()
            except _ClientGone:
                raise
            except (OSError, http.client.HTTPException) as e:
                up.close()
                if c.closed.is_set():
                    raise _ClientGone()
                if attempt == 0 and reused and body is None:
                    continue
                raise _UpstreamFailed("%s: %s" % (type(e).__name__, e))

    def _rewrite(self, value):
        src = "://%s:%d" % (self.upstream_host, self.upstream_port)
        return value.replace(src, "://127.0.0.1:%d" % self.port)

    def _relay(self, c, req, resp, plan, keep):
        hs, cl = [], None
        drop = set(HOP_BY_HOP)
        for v in resp.headers.get_all("connection") or []:
            drop |= {t.strip().lower() for t in v.split(",")}
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk == "content-length":
                cl = v
                continue
            if lk in drop:
                continue
            if lk in ("www-authenticate", "location"):
                v = self._rewrite(v)
            hs.append((k, v))
        bodiless = req.method == "HEAD" or resp.status in (204, 304) or resp.status < 200
        chunked = False
        if bodiless:
            if cl is not None:
                hs.append(("Content-Length", cl))
        elif cl is not None and not resp.chunked:
            hs.append(("Content-Length", cl))
        elif req.version == "HTTP/1.1":
            chunked = True
            hs.append(("Transfer-Encoding", "chunked"))
        else:
            keep = False  # HTTP/1.0 client, length unknown: the close ends the body
        self._record(req, resp.status)
        self._send_head(c, resp.status, resp.reason, hs, keep)
        if bodiless:
            resp.read()
            return keep
        sent = 0
        t0 = time.monotonic()
        rate = plan.slow.params["bytes_per_sec"] if plan.slow is not None else None
        while True:
            try:
                data = resp.read1(CHUNK)
            except (OSError, http.client.HTTPException):
                if c.up is not None:
                    c.up.close()
                return False  # upstream broke off mid-body: so does the client's response
            if not data:
                break
            if plan.corrupt:
                data = _flip(data, sent)
            if rate is None:
                self._send_piece(c, data, chunked)
                sent += len(data)
                continue
            step = max(1, min(len(data), int(rate) // 20))
            for i in range(0, len(data), step):
                piece = data[i:i + step]
                wait = t0 + sent / rate - time.monotonic()
                if wait > 0 and c.closed.wait(wait):
                    raise _ClientGone()
                self._send_piece(c, piece, chunked)
                sent += len(piece)
        if chunked:
            c.sock.sendall(b"0\r\n\r\n")
        return keep

    @staticmethod
    def _send_piece(c, data, chunked):
        if chunked:
            c.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            c.sock.sendall(data)


def _flip(data, offset):
    """Invert the byte at body offset 0 and every FLIP_EVERY bytes after it."""
    first = (-offset) % FLIP_EVERY
    if first >= len(data):
        return data
    b = bytearray(data)
    for i in range(first, len(b), FLIP_EVERY):
        b[i] ^= 0xFF
    return bytes(b)
