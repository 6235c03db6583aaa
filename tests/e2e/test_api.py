#!/usr/bin/env python3
"""test_api.py — end-to-end HTTP tests of the registry API (OCI Distribution Spec v1.1 /
Docker Registry HTTP API v2), written from the spec and the project's behaviour contract.

    python3 tests/e2e/test_api.py [--berth build/release/berth] [--kind berth|distribution] [-k NAME]

One registry (delete enabled) serves most tests; tests that need other settings start their own.
Every test uses its own repository names, so tests are independent of each other and of order.
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, Suite  # noqa: E402

suite = Suite("e2e-api")

# ---------------------------------------------------------------------------------------------
# Media types

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
ALL_MANIFEST_TYPES = [MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST]
ACCEPT = ", ".join(ALL_MANIFEST_TYPES)

EMPTY_JSON = b"{}"
EMPTY_SHA256 = "sha256:" + hashlib.sha256(b"").hexdigest()

# Digests that are malformed (a ':' makes a reference a digest; these fail the grammar or the
# algorithm's length/charset rules).
BAD_DIGESTS = [
    "sha256:totallywrong",
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + "A" * 64,
    "sha256:" + "g" * 64,
    "sha256:",
    ":" + "a" * 64,
    "sha512:" + "a" * 64,
]


# ---------------------------------------------------------------------------------------------
# Small assertion helpers (plain exceptions so that `python3 -O` cannot remove them)

class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


class Cases:
    """Run table-driven cases without stopping at the first failure; done() raises with all
    of them, so one defect does not hide the others."""
    def __init__(self):
        self.errors = []

    @contextlib.contextmanager
    def case(self, what):
        try:
            yield
        except TestFailure as e:
            self.errors.append("[%s] %s" % (what, e))

    def done(self):
        if self.errors:
            raise TestFailure("%d case(s) failed:\n  " % len(self.errors)
                              + "\n  ".join(self.errors))


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data):
    return "sha512:" + hashlib.sha512(data).hexdigest()


_counter = [0]
_counter_lock = threading.Lock()


def uniq(prefix):
    """A repository name no other test uses."""
    with _counter_lock:
        _counter[0] += 1
        n = _counter[0]
    return "api/%s-%d-%s" % (prefix, n, os.urandom(3).hex())


class Resp:
    def __init__(self, method, path, status, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers
        self.body = body

    def h(self, name):
        return self.headers.get(name.lower())

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise TestFailure("%s %s: body is not JSON (%s): %r"
                              % (self.method, self.path, e, self.body[:300]))

    def __repr__(self):
        return "<%s %s -> %d %r %r>" % (self.method, self.path, self.status, self.headers,
                                        self.body[:300])


def _check_common(r):
    v = r.h("Docker-Distribution-API-Version")
    check(v == "registry/2.0",
          "%s %s -> %d: Docker-Distribution-API-Version is %r, want 'registry/2.0'"
          % (r.method, r.path, r.status, v))


def call(reg, method, path, body=None, headers=None, timeout=60):
    """One request on a fresh connection; checks the API-version header on every response."""
    try:
        st, h, b = reg.request(method, path, body=body, headers=headers, timeout=timeout)
    except (http.client.HTTPException, ConnectionError, socket.timeout) as e:
        raise TestFailure("%s %s: broken HTTP response: %r" % (method, path, e))
    r = Resp(method, path, st, h, b)
    _check_common(r)
    return r


def expect(r, status, what=""):
    if r.status != status:
        raise TestFailure("%s%s %s: status %d, want %d; headers %r; body %r"
                          % (what + ": " if what else "", r.method, r.path, r.status, status,
                             r.headers, r.body[:500]))
    return r


def expect_error(r, status, codes, what=""):
    """status must match (an int or a tuple of ints); codes: a string, a collection of
    acceptable codes, or None for "any well-formed error body"."""
    statuses = status if isinstance(status, (tuple, list, set)) else (status,)
    if r.status not in statuses:
        raise TestFailure("%s%s %s: status %d, want %s; headers %r; body %r"
                          % (what + ": " if what else "", r.method, r.path, r.status,
                             "/".join(map(str, statuses)), r.headers, r.body[:500]))
    if r.method == "HEAD":
        eq(r.body, b"", "HEAD %s error body" % r.path)
        return None
    ct = r.h("Content-Type") or ""
    check(ct.split(";")[0].strip().lower() == "application/json",
          "%s %s -> %d: error Content-Type %r, want application/json; body %r"
          % (r.method, r.path, r.status, ct, r.body[:300]))
    j = r.json()
    check(isinstance(j, dict) and isinstance(j.get("errors"), list) and j["errors"],
          "%s %s: error body lacks a non-empty errors list: %r" % (r.method, r.path, j))
    for e in j["errors"]:
        check(isinstance(e, dict) and isinstance(e.get("code"), str)
              and isinstance(e.get("message"), str),
              "%s %s: malformed error entry %r" % (r.method, r.path, e))
    got = [e["code"] for e in j["errors"]]
    if codes is not None:
        want = {codes} if isinstance(codes, str) else set(codes)
        check(got[0] in want,
              "%s %s -> %d: error code %r, want %s (body %r)"
              % (r.method, r.path, r.status, got, " or ".join(sorted(want)), r.body[:300]))
    return got


def location_path(reg, base_path, loc):
    """Resolve a Location header (path, relative or absolute URL) to path?query on reg."""
    check(loc, "missing Location header (request %s)" % base_path)
    full = urllib.parse.urljoin(reg.url(base_path), loc)
    u = urllib.parse.urlsplit(full)
    eq("%s:%s" % (u.hostname, u.port or 80), "127.0.0.1:%d" % reg.port, "Location host of %r" % loc)
    return u.path + ("?" + u.query if u.query else "")


def path_only(reg, base_path, loc):
    return urllib.parse.urlsplit(location_path(reg, base_path, loc)).path


def add_query(path, **params):
    sep = "&" if "?" in path else "?"
    return path + sep + urllib.parse.urlencode(params)


def parse_link_next(link):
    """Return the target of a Link header with rel="next", or None."""
    if not link:
        return None
    for part in link.split(","):
        m = re.match(r'\s*<([^>]*)>\s*;(.*)$', part)
        if m and re.search(r'rel\s*=\s*"?next"?', m.group(2)):
            return m.group(1)
    raise TestFailure("Link header without rel=\"next\": %r" % link)


# ---------------------------------------------------------------------------------------------
# Blob helpers

def start_upload(reg, name, query=""):
    path = "/v2/%s/blobs/uploads/%s" % (name, query)
    r = expect(call(reg, "POST", path), 202, "start upload")
    return location_path(reg, path, r.h("Location")), r


def push_blob(reg, name, data, digest=None):
    """POST + PUT ?digest= with the whole body. Returns the digest."""
    digest = digest or sha256(data)
    loc, _ = start_upload(reg, name)
    r = call(reg, "PUT", add_query(loc, digest=digest), body=data,
             headers={"Content-Type": "application/octet-stream"})
    expect(r, 201, "finish upload of %d bytes" % len(data))
    eq(r.h("Docker-Content-Digest"), digest, "Docker-Content-Digest of blob PUT")
    return digest


def patch_chunk(reg, loc, data, start=None, extra_headers=None):
    h = {"Content-Type": "application/octet-stream"}
    if start is not None:
        h["Content-Range"] = "%d-%d" % (start, start + len(data) - 1)
    if extra_headers:
        h.update(extra_headers)
    return call(reg, "PATCH", loc, body=data, headers=h)


def get_blob(reg, name, digest, headers=None):
    return call(reg, "GET", "/v2/%s/blobs/%s" % (name, digest), headers=headers)


def assert_blob(reg, name, digest, data):
    r = expect(get_blob(reg, name, digest), 200, "GET blob")
    check(r.body == data, "GET /v2/%s/blobs/%s: body differs (%d bytes, want %d)"
          % (name, digest, len(r.body), len(data)))
    eq(r.h("Content-Length"), str(len(data)), "blob Content-Length")
    eq(r.h("Docker-Content-Digest"), digest, "blob Docker-Content-Digest")


def assert_blob_absent(reg, name, digest, codes=("BLOB_UNKNOWN",)):
    expect_error(get_blob(reg, name, digest), 404, codes, "blob %s must be absent" % digest)
    expect_error(call(reg, "HEAD", "/v2/%s/blobs/%s" % (name, digest)), 404, codes)


# ---------------------------------------------------------------------------------------------
# Manifest helpers

def odd_json(doc):
    """Serialise with unusual but valid whitespace (tabs, CRLF, spaces before colons, leading
    and trailing blanks), so byte-exact storage is observable."""
    text = json.dumps(doc, indent="\t ", separators=(" ,", " :\t"), ensure_ascii=False)
    return ("\r\n \t" + text.replace("\n", "\r\n") + " \n\n").encode("utf-8")


def descriptor(mt, data_or_digest, size=None, **extra):
    if isinstance(data_or_digest, bytes):
        d = {"mediaType": mt, "digest": sha256(data_or_digest), "size": len(data_or_digest)}
    else:
        d = {"mediaType": mt, "digest": data_or_digest, "size": size}
    d.update(extra)
    return d


class Pushed:
    def __init__(self, body, mt, digest):
        self.body = body
        self.mt = mt
        self.digest = digest
        self.size = len(body)

    def desc(self, **extra):
        d = {"mediaType": self.mt, "digest": self.digest, "size": self.size}
        d.update(extra)
        return d


def put_manifest(reg, name, ref, body, mt):
    return call(reg, "PUT", "/v2/%s/manifests/%s" % (name, ref), body=body,
                headers={"Content-Type": mt})


def get_manifest(reg, name, ref, method="GET"):
    return call(reg, method, "/v2/%s/manifests/%s" % (name, ref), headers={"Accept": ACCEPT})


def expect_manifest_put(reg, name, ref, body, mt):
    r = put_manifest(reg, name, ref, body, mt)
    expect(r, 201, "PUT manifest %s:%s" % (name, ref))
    d = sha256(body)
    eq(r.h("Docker-Content-Digest"), d, "Docker-Content-Digest of manifest PUT")
    eq(path_only(reg, "/v2/%s/manifests/%s" % (name, ref), r.h("Location")),
       "/v2/%s/manifests/%s" % (name, d), "manifest PUT Location")
    return r


def assert_manifest(reg, name, ref, body, mt, digest=None):
    digest = digest or sha256(body)
    r = expect(get_manifest(reg, name, ref), 200, "GET manifest")
    check(r.body == body, "GET /v2/%s/manifests/%s: body is not byte-identical:\n got %r\nwant %r"
          % (name, ref, r.body[:400], body[:400]))
    eq(r.h("Content-Type"), mt, "manifest Content-Type")
    eq(r.h("Docker-Content-Digest"), digest, "manifest Docker-Content-Digest")
    eq(r.h("Content-Length"), str(len(body)), "manifest Content-Length")
    h = expect(get_manifest(reg, name, ref, "HEAD"), 200, "HEAD manifest")
    eq(h.body, b"", "HEAD manifest body")
    eq(h.h("Content-Type"), mt, "HEAD manifest Content-Type")
    eq(h.h("Docker-Content-Digest"), digest, "HEAD manifest Docker-Content-Digest")
    eq(h.h("Content-Length"), str(len(body)), "HEAD manifest Content-Length")


def assert_manifest_absent(reg, name, ref, codes=("MANIFEST_UNKNOWN",)):
    expect_error(get_manifest(reg, name, ref), 404, codes, "manifest %s must be absent" % ref)
    expect_error(get_manifest(reg, name, ref, "HEAD"), 404, codes)


def push_image(reg, name, ref=None, docker=False, layers=1, extra=None, config_mt=None,
               pretty=True):
    """Push a config and layer blobs, then an image manifest referencing them (under ref, or
    by its digest when ref is None). Returns Pushed."""
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": []},
                      "nonce": os.urandom(8).hex()}).encode()
    push_blob(reg, name, cfg)
    layer_descs = []
    for _ in range(layers):
        data = os.urandom(64 + int.from_bytes(os.urandom(1), "big"))
        push_blob(reg, name, data)
        layer_descs.append(descriptor(MT_DOCKER_LAYER if docker else MT_OCI_LAYER, data))
    mt = MT_DOCKER_MANIFEST if docker else MT_OCI_MANIFEST
    doc = {"schemaVersion": 2, "mediaType": mt,
           "config": descriptor(config_mt or (MT_DOCKER_CONFIG if docker else MT_OCI_CONFIG), cfg),
           "layers": layer_descs}
    if extra:
        doc.update(extra)
    body = odd_json(doc) if pretty else json.dumps(doc, separators=(",", ":")).encode()
    d = sha256(body)
    expect_manifest_put(reg, name, ref or d, body, mt)
    return Pushed(body, mt, d)


def push_index(reg, name, ref, children, docker=False, extra=None):
    mt = MT_DOCKER_LIST if docker else MT_OCI_INDEX
    doc = {"schemaVersion": 2, "mediaType": mt,
           "manifests": [c.desc(platform={"architecture": arch, "os": "linux"})
                         for c, arch in zip(children, ["amd64", "arm64", "s390x", "ppc64le"])]}
    if extra:
        doc.update(extra)
    body = odd_json(doc)
    d = sha256(body)
    expect_manifest_put(reg, name, ref or d, body, mt)
    return Pushed(body, mt, d)


def push_artifact(reg, name, subject, artifact_type=None, config_mt=MT_OCI_EMPTY,
                  annotations=None, ref=None):
    """An OCI 1.1 artifact: empty config ({}), one small layer, optional subject."""
    push_blob(reg, name, EMPTY_JSON)
    layer = os.urandom(32)
    push_blob(reg, name, layer)
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = descriptor(config_mt, EMPTY_JSON)
    doc["layers"] = [descriptor("application/octet-stream", layer)]
    if subject is not None:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    body = json.dumps(doc, indent=1).encode()
    d = sha256(body)
    r = put_manifest(reg, name, ref or d, body, MT_OCI_MANIFEST)
    expect(r, 201, "PUT artifact")
    eq(r.h("Docker-Content-Digest"), d, "artifact Docker-Content-Digest")
    return Pushed(body, MT_OCI_MANIFEST, d), r


def tags_of(reg, name, query=""):
    r = expect(call(reg, "GET", "/v2/%s/tags/list%s" % (name, query)), 200, "tags/list")
    j = r.json()
    eq(j.get("name"), name, "tags/list name")
    return (j.get("tags") or []), r


# ---------------------------------------------------------------------------------------------
# Raw socket helper: see exactly what bytes the server sends (HEAD must carry no body).

def raw_exchange(reg, request_bytes, quiet=0.5):
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=10)
    try:
        s.sendall(request_bytes)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.settimeout(quiet)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        return data
    finally:
        s.close()


# ---------------------------------------------------------------------------------------------
# Fixtures

class Ctx:
    def __init__(self, args):
        self.args = args
        self.reg = None
        self.extra_failures = []


def setup(args):
    ctx = Ctx(args)
    ctx.reg = Registry(args.berth, kind=args.kind).start(delete_enabled=True)
    return ctx


def teardown(ctx):
    out = list(ctx.extra_failures)
    reg = ctx.reg
    rc = reg.stop()
    out += reg.sanitizer_errors()
    if rc != 0:
        out.append("server exited with status %s on SIGTERM; log tail:\n%s"
                   % (rc, reg.log()[-3000:]))
    if not out:
        reg.cleanup()
    else:
        print("server data dir kept: %s" % reg.data_dir)
    return out


@contextlib.contextmanager
def own_registry(ctx, env=None, delete_enabled=True):
    """A separate registry for tests that need other configuration."""
    reg = Registry(ctx.args.berth, kind=ctx.args.kind).start(env=env,
                                                            delete_enabled=delete_enabled)
    try:
        yield reg
    finally:
        rc = reg.stop()
        errs = reg.sanitizer_errors()
        ctx.extra_failures += ["(own registry, env %r) %s" % (env, e) for e in errs]
        if rc != 0:
            ctx.extra_failures.append("own registry (env %r) exited with %s on SIGTERM"
                                      % (env, rc))
        if not errs and rc == 0:
            reg.cleanup()


def corpus_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (os.path.join(here, "..", "testdata", "manifests"),
              "/work/shared/testdata/manifests"):
        if os.path.isdir(d) and any(f.endswith(".json") for f in os.listdir(d)):
            return os.path.normpath(d)
    raise TestFailure("manifest corpus not found (tests/testdata/manifests)")


# =============================================================================================
# Base endpoint and connection handling

@suite.test
def test_base_endpoint(ctx):
    r = expect(call(ctx.reg, "GET", "/v2/"), 200)
    eq(r.json(), {}, "GET /v2/ body")
    check((r.h("Content-Type") or "").startswith("application/json"),
          "GET /v2/ Content-Type %r" % r.h("Content-Type"))
    h = expect(call(ctx.reg, "HEAD", "/v2/"), 200)
    eq(h.body, b"", "HEAD /v2/ body")


@suite.test
def test_keepalive_two_requests_one_connection(ctx):
    c = ctx.reg.connection()
    try:
        c.request("GET", "/v2/")
        r1 = c.getresponse()
        b1 = r1.read()
        eq(r1.status, 200, "first GET /v2/")
        eq(b1.strip(), b"{}", "first body")
        conn_hdr = (r1.getheader("Connection") or "").lower()
        check("close" not in conn_hdr, "first response has Connection: %r" % conn_hdr)
        check(not r1.will_close, "first response would close the connection (HTTP/%s)"
              % r1.version)
        sock_before = c.sock
        c.request("GET", "/v2/")
        r2 = c.getresponse()
        r2.read()
        eq(r2.status, 200, "second GET /v2/ on the same connection")
        check(c.sock is sock_before, "http.client had to reconnect for the second request")
    finally:
        c.close()


@suite.test
def test_keepalive_after_errors_and_bodies(ctx):
    """A 404 with a JSON body, a HEAD, and a blob upload all leave the connection usable."""
    reg = ctx.reg
    name = uniq("keepalive")
    data = os.urandom(3000)
    d = sha256(data)
    c = reg.connection()
    try:
        sock = [None]

        def step(method, path, body, want):
            c.request(method, path, body=body,
                      headers={"Content-Type": "application/octet-stream"} if body else {})
            r = c.getresponse()
            b = r.read()
            eq(r.status, want, "%s %s on a kept-alive connection" % (method, path))
            if sock[0] is not None:
                check(c.sock is sock[0],
                      "connection was not kept alive before %s %s" % (method, path))
            check(not r.will_close, "%s %s response closes the connection" % (method, path))
            sock[0] = c.sock
            return r, b
        step("GET", "/v2/%s/blobs/%s" % (name, d), None, 404)
        step("HEAD", "/v2/%s/blobs/%s" % (name, d), None, 404)
        step("GET", "/v2/%s/manifests/%s" % (name, "nope"), None, 404)
        up = "/v2/%s/blobs/uploads/" % name
        r, _ = step("POST", up, None, 202)
        loc = location_path(reg, up, r.getheader("Location"))
        r, _ = step("PATCH", loc, data[:1000], 202)
        loc = location_path(reg, loc, r.getheader("Location"))
        step("PUT", add_query(loc, digest=d), data[1000:], 201)
        step("HEAD", "/v2/%s/blobs/%s" % (name, d), None, 200)
        _, b = step("GET", "/v2/%s/blobs/%s" % (name, d), None, 200)
        eq(b, data, "blob body on kept-alive connection")
        _, b = step("GET", "/v2/%s/blobs/%s" % (name, d), None, 200)
        eq(b, data, "blob body on kept-alive connection (again)")
    finally:
        c.close()


@suite.test
def test_head_sends_no_body_bytes(ctx):
    """Read the raw socket: a HEAD response (success or error) must end at the blank line, and
    an error's Content-Length and Content-Type must be the GET's (RFC 9110 §8.6, §9.3.2)."""
    reg = ctx.reg
    name = uniq("rawhead")
    data = os.urandom(777)
    d = push_blob(reg, name, data)
    for path, want in (("/v2/%s/blobs/%s" % (name, d), b" 200 "),
                       ("/v2/%s/blobs/%s" % (name, sha256(b"nope")), b" 404 "),
                       ("/v2/%s/manifests/nope" % name, b" 404 "),
                       ("/v2/%s/manifests/.INVALID_MANIFEST_NAME" % name, b" 404 "),
                       ("/v2/%s/blobs/sha256:zz" % name, b" 404 ")):
        raw = raw_exchange(reg, ("HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        head, sep, rest = raw.partition(b"\r\n\r\n")
        check(sep, "HEAD %s: incomplete response %r" % (path, raw[:300]))
        check(want in head.split(b"\r\n")[0], "HEAD %s: status line %r" % (path, head[:80]))
        eq(rest, b"", "bytes after HEAD %s response headers" % path)
        if want == b" 200 ":
            check(re.search(br"(?im)^content-length:\s*777\s*$", head),
                  "HEAD blob: Content-Length 777 missing in %r" % head)
        else:
            g = call(reg, "GET", path)
            h = call(reg, "HEAD", path)
            eq(h.h("Content-Length"), str(len(g.body)), "HEAD %s Content-Length (the GET's)" % path)
            eq(h.h("Content-Type"), g.h("Content-Type"), "HEAD %s Content-Type" % path)


# =============================================================================================
# Names, tags, digests

@suite.test
def test_name_invalid(ctx):
    reg = ctx.reg
    bad = ["UPPER", "a..b", "-a", "a-", "a.", "_a", "a___b", "a//b", "a/-b", "a/B", "a%20b",
           "a:b", ".a", "a/.b"]
    # 256 characters in total is one too many
    long_name = "/".join(["a" * 63] * 3) + "/" + "b" * 64
    eq(len(long_name), 256, "test setup")
    cs = Cases()
    for n in bad + [long_name]:
        with cs.case(n[:20]):
            expect_error(call(reg, "GET", "/v2/%s/tags/list" % n), 400, "NAME_INVALID", n)
    for method, path in (("GET", "/v2/-a/manifests/latest"), ("POST", "/v2/UPPER/blobs/uploads/"),
                         ("GET", "/v2/a..b/blobs/%s" % sha256(b"x")),
                         ("PUT", "/v2/a..b/manifests/latest"),
                         ("POST", "/v2/%s/blobs/uploads/" % long_name),
                         ("GET", "/v2/a__-b/referrers/%s" % sha256(b"x"))):
        with cs.case(method + " " + path[:40]):
            expect_error(call(reg, method, path, body=b"{}" if method == "PUT" else None,
                              headers={"Content-Type": MT_OCI_MANIFEST}), 400, "NAME_INVALID")
    cs.done()


@suite.test
def test_name_valid_edge_cases(ctx):
    reg = ctx.reg
    sfx = os.urandom(3).hex()
    names = ["x%s/a__b" % sfx, "x%s/a---b" % sfx, "x%s/a.b_c-d" % sfx, "x%s/0/1/2/3/4/5" % sfx,
             "x%s/v2" % sfx, "x%s/blobs/uploads" % sfx, "x%s/manifests" % sfx,
             "x%s/tags/list" % sfx]
    long_name = "x" + sfx + "/" + "/".join(["a" * 60] * 4)
    long_name += "b" * (255 - len(long_name))
    eq(len(long_name), 255, "test setup")
    names.append(long_name)
    for n in names:
        data = os.urandom(40)
        d = push_blob(reg, n, data)
        assert_blob(reg, n, d, data)
        img = push_image(reg, n, "latest")
        assert_manifest(reg, n, "latest", img.body, img.mt)
        tags, _ = tags_of(reg, n)
        eq(tags, ["latest"], "tags of %s" % n)


@suite.test
def test_tag_invalid(ctx):
    """A PUT refuses a tag outside the grammar (TAG_INVALID); a GET, HEAD or DELETE of one
    asks for something that cannot exist: 404 MANIFEST_UNKNOWN."""
    reg = ctx.reg
    name = uniq("tagbad")
    img = push_image(reg, name, "ok")
    cs = Cases()
    for tag in ["-start", ".start", "a+b", "a" * 129, "caf%C3%A9", "a%20b"]:
        with cs.case("PUT " + tag[:20]):
            expect_error(put_manifest(reg, name, tag, img.body, img.mt), 400, "TAG_INVALID", tag)
        with cs.case("GET " + tag[:20]):
            expect_error(get_manifest(reg, name, tag), 404, "MANIFEST_UNKNOWN", tag)
        with cs.case("HEAD " + tag[:20]):
            expect_error(get_manifest(reg, name, tag, "HEAD"), 404, None, tag)
        with cs.case("DELETE " + tag[:20]):
            expect_error(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, tag)), 404,
                         "MANIFEST_UNKNOWN", tag)
    cs.done()
    tags, _ = tags_of(reg, name)
    eq(tags, ["ok"], "tags after rejected PUTs")


@suite.test
def test_conformance_invalid_manifest_name(ctx):
    """The distribution-spec conformance suite (v1.1, 01_pull_test.go and 02_push_test.go)
    GETs and HEADs ".INVALID_MANIFEST_NAME" and wants 404; its "Error codes" case GETs
    "sha256:totallywrong" (with a body) and takes 400 or 404."""
    reg = ctx.reg
    name = uniq("conf404")
    img = push_image(reg, name, "tagtest0")
    path = "/v2/%s/manifests/.INVALID_MANIFEST_NAME" % name
    expect_error(call(reg, "GET", path), 404, "MANIFEST_UNKNOWN")
    expect_error(call(reg, "HEAD", path), 404, None)
    expect_error(call(reg, "DELETE", path), 404, "MANIFEST_UNKNOWN")
    expect_error(put_manifest(reg, name, ".INVALID_MANIFEST_NAME", img.body, img.mt), 400,
                 "TAG_INVALID")
    for d in ("sha256:zz", "sha256:totallywrong"):
        r = call(reg, "GET", "/v2/%s/manifests/%s" % (name, d), body=b"blablabla",
                 headers={"Content-Type": MT_OCI_MANIFEST})
        expect_error(r, 404, "MANIFEST_UNKNOWN", d)
        # DIGEST_INVALID's message is about an upload; nothing was uploaded here.
        check(b"did not match uploaded content" not in r.body,
              "GET %s: error message speaks of an upload: %r" % (d, r.body))
    tags, _ = tags_of(reg, name)
    eq(tags, ["tagtest0"], "tags after the requests")
    assert_manifest(reg, name, "tagtest0", img.body, img.mt)


@suite.test
def test_tag_valid_edge_cases(ctx):
    reg = ctx.reg
    name = uniq("tagok")
    img = push_image(reg, name, None)
    tags = ["_", "A", "Z9._-x", "v1.0.0-rc.1_build", "a" * 128, "latest", "__x--y..z"]
    for t in tags:
        expect_manifest_put(reg, name, t, img.body, img.mt)
        assert_manifest(reg, name, t, img.body, img.mt)
    got, _ = tags_of(reg, name)
    eq(sorted(got), sorted(tags), "tags list (order is checked in test_tags_list_sorted)")


@suite.test
def test_reference_too_long(ctx):
    """A reference longer than any tag, digest or upload id gets its endpoint's own answer, as
    a shorter invalid one does, not a bare "no such route" (referrers must never say 404)."""
    reg = ctx.reg
    name = uniq("longref")
    img = push_image(reg, name, "latest")
    long_tag, long_digest = "a" * 300, "sha256:" + "a" * 300
    mpath = "/v2/%s/manifests/%s" % (name, long_tag)
    expect_error(call(reg, "GET", mpath), 404, "MANIFEST_UNKNOWN")
    expect_error(call(reg, "HEAD", mpath), 404, None)
    expect_error(call(reg, "DELETE", mpath), 404, "MANIFEST_UNKNOWN")
    expect_error(put_manifest(reg, name, long_tag, img.body, img.mt), 400, "TAG_INVALID")
    expect_error(put_manifest(reg, name, long_digest, img.body, img.mt), 400, "DIGEST_INVALID")
    expect_error(get_blob(reg, name, long_digest), 404, "BLOB_UNKNOWN")
    expect_error(call(reg, "GET", "/v2/%s/referrers/%s" % (name, long_digest)), 400,
                 "DIGEST_INVALID")
    expect_error(call(reg, "PATCH", "/v2/%s/blobs/uploads/%s" % (name, long_tag), body=b"x",
                      headers={"Content-Type": "application/octet-stream"}),
                 404, "BLOB_UPLOAD_UNKNOWN")
    tags, _ = tags_of(reg, name)
    eq(tags, ["latest"], "tags after the requests")


@suite.test
def test_digest_invalid_manifest_paths(ctx):
    """A malformed digest names no manifest: GET/HEAD/DELETE answer 404 MANIFEST_UNKNOWN (as
    for any reference that is neither a tag nor a digest); a PUT by one is DIGEST_INVALID."""
    reg = ctx.reg
    name = uniq("baddgst")
    img = push_image(reg, name, "latest")
    cs = Cases()
    for d in BAD_DIGESTS:
        with cs.case("GET " + d):
            r = get_manifest(reg, name, d)
            expect_error(r, 404, "MANIFEST_UNKNOWN")
            check(b"did not match uploaded content" not in r.body,
                  "GET %s: error message speaks of an upload: %r" % (d, r.body))
        with cs.case("HEAD " + d):
            expect_error(get_manifest(reg, name, d, "HEAD"), 404, None)
        with cs.case("PUT " + d):
            expect_error(put_manifest(reg, name, d, img.body, img.mt), 400, "DIGEST_INVALID")
        with cs.case("DELETE " + d):
            expect_error(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, d)), 404,
                         "MANIFEST_UNKNOWN")
    cs.done()
    assert_manifest(reg, name, "latest", img.body, img.mt)


@suite.test
def test_digest_invalid_blob_paths(ctx):
    """A malformed digest names no blob: GET/HEAD/DELETE answer 404 BLOB_UNKNOWN, as the
    manifest route answers MANIFEST_UNKNOWN (the conformance suite asks neither; Distribution's
    routes 404 such a path)."""
    reg = ctx.reg
    name = uniq("baddgstb")
    push_blob(reg, name, os.urandom(10))
    cs = Cases()
    for d in BAD_DIGESTS + ["notadigest"]:
        with cs.case("GET " + d):
            r = get_blob(reg, name, d)
            expect_error(r, 404, "BLOB_UNKNOWN")
            check(b"did not match uploaded content" not in r.body,
                  "GET %s: error message speaks of an upload: %r" % (d, r.body))
        with cs.case("HEAD " + d):
            expect_error(call(reg, "HEAD", "/v2/%s/blobs/%s" % (name, d)), 404, None)
        with cs.case("DELETE " + d):
            expect_error(call(reg, "DELETE", "/v2/%s/blobs/%s" % (name, d)), 404,
                         "BLOB_UNKNOWN")
    cs.done()


@suite.test
def test_digest_invalid_upload_params(ctx):
    reg = ctx.reg
    name = uniq("baddgstu")
    data = os.urandom(100)
    cs = Cases()
    for d in BAD_DIGESTS:
        with cs.case("PUT ?digest=" + d):
            loc, _ = start_upload(reg, name)
            expect_error(call(reg, "PUT", add_query(loc, digest=d), body=data,
                              headers={"Content-Type": "application/octet-stream"}),
                         400, "DIGEST_INVALID")
        with cs.case("POST ?digest=" + d):
            expect_error(call(reg, "POST", "/v2/%s/blobs/uploads/?digest=%s"
                              % (name, urllib.parse.quote(d, safe=":")), body=data,
                              headers={"Content-Type": "application/octet-stream"}),
                         400, "DIGEST_INVALID")
    cs.done()
    assert_blob_absent(reg, name, sha256(data))


@suite.test
def test_digest_invalid_referrers(ctx):
    reg = ctx.reg
    name = uniq("baddgstr")
    push_image(reg, name, "latest")
    cs = Cases()
    for d in BAD_DIGESTS + ["latest"]:
        with cs.case(d):
            expect_error(call(reg, "GET", "/v2/%s/referrers/%s" % (name, d)), 400,
                         "DIGEST_INVALID")
    cs.done()


# =============================================================================================
# Blob upload

@suite.test
def test_upload_start_headers(ctx):
    reg = ctx.reg
    name = uniq("upstart")
    path = "/v2/%s/blobs/uploads/" % name
    r = expect(call(reg, "POST", path), 202)
    loc = location_path(reg, path, r.h("Location"))
    lpath = urllib.parse.urlsplit(loc).path
    check(lpath.startswith("/v2/%s/blobs/uploads/" % name) and
          len(lpath) > len("/v2/%s/blobs/uploads/" % name),
          "upload Location %r is not /v2/<name>/blobs/uploads/<uuid>" % r.h("Location"))
    uid = r.h("Docker-Upload-UUID")
    check(uid, "missing Docker-Upload-UUID")
    check(uid in lpath, "Docker-Upload-UUID %r not in Location %r" % (uid, lpath))
    eq(r.h("Content-Length"), "0", "POST upload Content-Length")
    eq(r.body, b"", "POST upload body")
    # Two sessions are distinct.
    r2 = expect(call(reg, "POST", path), 202)
    check(r2.h("Docker-Upload-UUID") != uid, "two uploads got the same UUID %r" % uid)
    # Status of a fresh session: 204, Location.
    s = expect(call(reg, "GET", loc), 204, "GET fresh upload")
    check(s.h("Location"), "GET upload: no Location")
    eq(s.body, b"", "GET upload body")


@suite.test
def test_upload_no_range_before_first_byte(ctx):
    """Decision for distribution-spec#577: "Range: 0-0" would claim one byte, so a session
    that has received nothing sends no Range header at all."""
    reg = ctx.reg
    name = uniq("upnorange")
    path = "/v2/%s/blobs/uploads/" % name
    r = expect(call(reg, "POST", path), 202)
    eq(r.h("Range"), None, "POST Range header with 0 bytes received")
    loc = location_path(reg, path, r.h("Location"))
    s = expect(call(reg, "GET", loc), 204)
    eq(s.h("Range"), None, "GET upload Range with 0 bytes received")
    # An empty PATCH leaves it at zero bytes.
    r = expect(patch_chunk(reg, loc, b""), 202, "empty PATCH")
    eq(r.h("Range"), None, "Range after an empty PATCH")
    loc = location_path(reg, loc, r.h("Location"))
    # One byte: Range 0-0.
    r = expect(patch_chunk(reg, loc, b"x", start=0), 202)
    eq(r.h("Range"), "0-0", "Range after one byte")
    loc = location_path(reg, loc, r.h("Location"))
    s = expect(call(reg, "GET", loc), 204)
    eq(s.h("Range"), "0-0", "GET Range after one byte")
    # The mount fallback session has no Range either.
    r = expect(call(reg, "POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                    % (name, sha256(os.urandom(4)), name)), 202)
    eq(r.h("Range"), None, "mount fallback Range")


@suite.test
def test_upload_chunked_with_content_range(ctx):
    reg = ctx.reg
    name = uniq("upchunk")
    a, b, c = os.urandom(1000), os.urandom(2345), os.urandom(17)
    whole = a + b + c
    loc, _ = start_upload(reg, name)
    off = 0
    for chunk in (a, b):
        r = expect(patch_chunk(reg, loc, chunk, start=off), 202, "PATCH at %d" % off)
        off += len(chunk)
        eq(r.h("Range"), "0-%d" % (off - 1), "PATCH Range")
        check(r.h("Docker-Upload-UUID") is None or r.h("Docker-Upload-UUID") in loc,
              "PATCH Docker-Upload-UUID %r changed" % r.h("Docker-Upload-UUID"))
        eq(r.body, b"", "PATCH response body")
        loc = location_path(reg, loc, r.h("Location"))
        s = expect(call(reg, "GET", loc), 204, "GET upload status")
        eq(s.h("Range"), "0-%d" % (off - 1), "GET upload Range")
        check(s.h("Location"), "GET upload: no Location")
    r = expect(patch_chunk(reg, loc, c, start=off), 202)
    loc = location_path(reg, loc, r.h("Location"))
    d = sha256(whole)
    assert_blob_absent(reg, name, d)  # not visible before the PUT
    r = expect(call(reg, "PUT", add_query(loc, digest=d)), 201, "closing PUT")
    eq(path_only(reg, loc, r.h("Location")), "/v2/%s/blobs/%s" % (name, d), "blob Location")
    eq(r.h("Docker-Content-Digest"), d, "PUT Docker-Content-Digest")
    assert_blob(reg, name, d, whole)
    expect_error(call(reg, "GET", loc), 404, "BLOB_UPLOAD_UNKNOWN", "finished upload")
    expect_error(patch_chunk(reg, loc, b"more", start=len(whole)), 404, "BLOB_UPLOAD_UNKNOWN",
                 "PATCH finished upload")


@suite.test
def test_upload_patch_out_of_order_416(ctx):
    reg = ctx.reg
    name = uniq("up416")
    a, b = os.urandom(500), os.urandom(300)
    loc, _ = start_upload(reg, name)
    # First chunk not at 0.
    r = patch_chunk(reg, loc, a, start=1)
    expect_error(r, 416, None, "PATCH starting at 1 of an empty upload")
    eq(r.h("Range"), None, "Range on 416 of an empty upload (0 bytes: no Range)")
    s = expect(call(reg, "GET", loc), 204)
    eq(s.h("Range"), None, "Range after rejected first chunk")
    r = expect(patch_chunk(reg, loc, a, start=0), 202)
    loc = location_path(reg, loc, r.h("Location"))
    # Retrying the applied chunk, and skipping ahead, are both 416 with the current Range.
    for start, data in ((0, a), (len(a) + 1, b), (len(a) - 1, b)):
        r = patch_chunk(reg, loc, data, start=start)
        expect_error(r, 416, None, "PATCH at %d with %d received" % (start, len(a)))
        eq(r.h("Range"), "0-%d" % (len(a) - 1), "Range on 416")
        s = expect(call(reg, "GET", loc), 204)
        eq(s.h("Range"), "0-%d" % (len(a) - 1), "upload state after 416")
    r = expect(patch_chunk(reg, loc, b, start=len(a)), 202)
    loc = location_path(reg, loc, r.h("Location"))
    d = sha256(a + b)
    expect(call(reg, "PUT", add_query(loc, digest=d)), 201)
    assert_blob(reg, name, d, a + b)


@suite.test
def test_upload_patch_content_range_disagrees_with_body(ctx):
    reg = ctx.reg
    name = uniq("uplen")
    a = os.urandom(100)
    loc, _ = start_upload(reg, name)
    r = expect(patch_chunk(reg, loc, a, start=0), 202)
    loc = location_path(reg, loc, r.h("Location"))
    x = os.urandom(50)
    # Claims 100 bytes, sends 50.
    r = patch_chunk(reg, loc, x, extra_headers={"Content-Range": "100-199"})
    expect_error(r, (400, 416), None, "Content-Range longer than body")
    s = expect(call(reg, "GET", loc), 204, "upload must survive a rejected chunk")
    eq(s.h("Range"), "0-99", "upload state after short body")
    # Claims 10 bytes, sends 50.
    r = patch_chunk(reg, loc, x, extra_headers={"Content-Range": "100-109"})
    expect_error(r, (400, 416), None, "Content-Range shorter than body")
    s = expect(call(reg, "GET", loc), 204)
    eq(s.h("Range"), "0-99", "upload state after long body")
    # Garbage Content-Range.
    for cr in ("bytes", "100-", "abc-def", "200-100"):
        r = patch_chunk(reg, loc, x, extra_headers={"Content-Range": cr})
        expect_error(r, (400, 416), None, "Content-Range %r" % cr)
        s = expect(call(reg, "GET", loc), 204)
        eq(s.h("Range"), "0-99", "upload state after Content-Range %r" % cr)
    r = expect(patch_chunk(reg, loc, x, start=100), 202)
    loc = location_path(reg, loc, r.h("Location"))
    d = sha256(a + x)
    expect(call(reg, "PUT", add_query(loc, digest=d)), 201)
    assert_blob(reg, name, d, a + x)


@suite.test
def test_upload_streamed_patches_append(ctx):
    reg = ctx.reg
    name = uniq("upstream")
    parts = [os.urandom(n) for n in (1, 4096, 333)]
    loc, _ = start_upload(reg, name)
    total = 0
    for p in parts:
        r = expect(patch_chunk(reg, loc, p), 202, "streamed PATCH")
        total += len(p)
        eq(r.h("Range"), "0-%d" % (total - 1), "Range after streamed PATCH")
        loc = location_path(reg, loc, r.h("Location"))
    whole = b"".join(parts)
    d = sha256(whole)
    r = expect(call(reg, "PUT", add_query(loc, digest=d)), 201)
    eq(r.h("Docker-Content-Digest"), d, "digest")
    assert_blob(reg, name, d, whole)


@suite.test
def test_upload_patch_transfer_encoding_chunked(ctx):
    """Docker's way: the whole blob in one PATCH, chunked transfer-encoding, no Content-Range."""
    reg = ctx.reg
    name = uniq("upte")
    pieces = [os.urandom(n) for n in (1, 8191, 65536, 100000, 7)]
    whole = b"".join(pieces)
    loc, _ = start_upload(reg, name)
    c = reg.connection()
    try:
        c.request("PATCH", loc, body=iter(pieces), encode_chunked=True,
                  headers={"Content-Type": "application/octet-stream",
                           "Transfer-Encoding": "chunked"})
        resp = c.getresponse()
        resp.read()
        r = Resp("PATCH", loc, resp.status, {k.lower(): v for k, v in resp.getheaders()}, b"")
    finally:
        c.close()
    _check_common(r)
    expect(r, 202, "chunked PATCH")
    eq(r.h("Range"), "0-%d" % (len(whole) - 1), "Range after chunked PATCH")
    loc = location_path(reg, loc, r.h("Location"))
    d = sha256(whole)
    # Closing PUT, also chunked and carrying a final piece.
    tail = os.urandom(999)
    d = sha256(whole + tail)
    c = reg.connection()
    try:
        c.request("PUT", add_query(loc, digest=d), body=iter([tail[:500], tail[500:]]),
                  encode_chunked=True, headers={"Content-Type": "application/octet-stream",
                                                "Transfer-Encoding": "chunked"})
        resp = c.getresponse()
        resp.read()
        eq(resp.status, 201, "chunked closing PUT")
    finally:
        c.close()
    assert_blob(reg, name, d, whole + tail)


@suite.test
def test_upload_put_with_final_chunk(ctx):
    reg = ctx.reg
    name = uniq("upfinal")
    a, b = os.urandom(1234), os.urandom(4321)
    loc, _ = start_upload(reg, name)
    r = expect(patch_chunk(reg, loc, a, start=0), 202)
    loc = location_path(reg, loc, r.h("Location"))
    d = sha256(a + b)
    r = call(reg, "PUT", add_query(loc, digest=d), body=b,
             headers={"Content-Type": "application/octet-stream"})
    expect(r, 201, "PUT with final chunk")
    eq(r.h("Docker-Content-Digest"), d, "digest")
    assert_blob(reg, name, d, a + b)
    # And a session completed by a single PUT carrying all the bytes.
    c = os.urandom(2048)
    loc, _ = start_upload(reg, name)
    r = expect(call(reg, "PUT", add_query(loc, digest=sha256(c)), body=c,
                    headers={"Content-Type": "application/octet-stream"}), 201)
    assert_blob(reg, name, sha256(c), c)


@suite.test
def test_upload_put_wrong_digest(ctx):
    reg = ctx.reg
    name = uniq("upwrong")
    data = os.urandom(600)
    wrong = sha256(data + b"x")
    loc, _ = start_upload(reg, name)
    r = expect(patch_chunk(reg, loc, data, start=0), 202)
    loc = location_path(reg, loc, r.h("Location"))
    expect_error(call(reg, "PUT", add_query(loc, digest=wrong)), 400, "DIGEST_INVALID")
    expect_error(call(reg, "GET", loc), 404, "BLOB_UPLOAD_UNKNOWN",
                 "upload must be gone after a digest mismatch")
    assert_blob_absent(reg, name, wrong)
    assert_blob_absent(reg, name, sha256(data))
    # Wrong digest with the data in the PUT body.
    loc, _ = start_upload(reg, name)
    expect_error(call(reg, "PUT", add_query(loc, digest=wrong), body=data,
                      headers={"Content-Type": "application/octet-stream"}),
                 400, "DIGEST_INVALID")
    expect_error(call(reg, "GET", loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_blob_absent(reg, name, wrong)
    assert_blob_absent(reg, name, sha256(data))
    # A sha512 claim with sha256 data.
    loc, _ = start_upload(reg, name)
    expect_error(call(reg, "PUT", add_query(loc, digest=sha512(data + b"y")), body=data,
                      headers={"Content-Type": "application/octet-stream"}),
                 400, "DIGEST_INVALID")
    assert_blob_absent(reg, name, sha512(data))


@suite.test
def test_upload_put_without_digest(ctx):
    reg = ctx.reg
    name = uniq("upnodgst")
    data = os.urandom(100)
    loc, _ = start_upload(reg, name)
    r = expect(patch_chunk(reg, loc, data, start=0), 202)
    loc = location_path(reg, loc, r.h("Location"))
    expect_error(call(reg, "PUT", loc), 400, "DIGEST_INVALID", "PUT without ?digest")
    loc2, _ = start_upload(reg, name)
    expect_error(call(reg, "PUT", add_query(loc2, digest=""), body=data,
                      headers={"Content-Type": "application/octet-stream"}),
                 400, "DIGEST_INVALID", "PUT with empty ?digest")
    assert_blob_absent(reg, name, sha256(data))


@suite.test
def test_upload_delete(ctx):
    reg = ctx.reg
    name = uniq("updel")
    data = os.urandom(100)
    loc, _ = start_upload(reg, name)
    r = expect(patch_chunk(reg, loc, data, start=0), 202)
    loc = location_path(reg, loc, r.h("Location"))
    expect(call(reg, "DELETE", loc), 204, "DELETE upload")
    expect_error(call(reg, "GET", loc), 404, "BLOB_UPLOAD_UNKNOWN", "GET deleted upload")
    expect_error(patch_chunk(reg, loc, data, start=100), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(call(reg, "PUT", add_query(loc, digest=sha256(data))), 404,
                 "BLOB_UPLOAD_UNKNOWN")
    expect_error(call(reg, "DELETE", loc), 404, "BLOB_UPLOAD_UNKNOWN", "DELETE twice")
    assert_blob_absent(reg, name, sha256(data))


@suite.test
def test_upload_unknown_uuid(ctx):
    reg = ctx.reg
    name = uniq("upunk")
    push_blob(reg, name, b"exists")
    cs = Cases()
    for uid in (os.urandom(16).hex(), "00000000-0000-0000-0000-000000000000", "x"):
        p = "/v2/%s/blobs/uploads/%s" % (name, uid)
        with cs.case("GET " + uid):
            expect_error(call(reg, "GET", p), 404, "BLOB_UPLOAD_UNKNOWN")
        with cs.case("PATCH " + uid):
            expect_error(patch_chunk(reg, p, b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
        with cs.case("PUT " + uid):
            expect_error(call(reg, "PUT", add_query(p, digest=sha256(b"abc")), body=b"abc"),
                         404, "BLOB_UPLOAD_UNKNOWN")
        with cs.case("DELETE " + uid):
            expect_error(call(reg, "DELETE", p), 404, "BLOB_UPLOAD_UNKNOWN")
    # Path traversal in the uuid must not escape.
    for uid in ("..", "..%2F..%2Fetc", "%2e%2e"):
        with cs.case("traversal " + uid):
            r = call(reg, "GET", "/v2/%s/blobs/uploads/%s" % (name, uid))
            check(r.status in (400, 404), "GET upload %r: status %d" % (uid, r.status))
    cs.done()
    assert_blob_absent(reg, name, sha256(b"abc"))


@suite.test
def test_upload_uuid_bound_to_repository(ctx):
    reg = ctx.reg
    a, b = uniq("upa"), uniq("upb")
    push_blob(reg, b, b"b exists")
    data = os.urandom(300)
    loc, r = start_upload(reg, a)
    r = expect(patch_chunk(reg, loc, data[:100], start=0), 202)
    loc = location_path(reg, loc, r.h("Location"))
    u = urllib.parse.urlsplit(loc)
    other = u.path.replace("/v2/%s/" % a, "/v2/%s/" % b, 1) + ("?" + u.query if u.query else "")
    check(other != loc, "test setup: could not rewrite %r" % loc)
    expect_error(call(reg, "GET", other), 404, "BLOB_UPLOAD_UNKNOWN", "A's upload via B")
    expect_error(patch_chunk(reg, other, data[100:], start=100), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(call(reg, "PUT", add_query(other, digest=sha256(data[:100]))), 404,
                 "BLOB_UPLOAD_UNKNOWN")
    expect_error(call(reg, "DELETE", other), 404, "BLOB_UPLOAD_UNKNOWN")
    # Still intact under A.
    s = expect(call(reg, "GET", loc), 204)
    eq(s.h("Range"), "0-99", "A's upload after B's attempts")
    r = expect(patch_chunk(reg, loc, data[100:], start=100), 202)
    loc = location_path(reg, loc, r.h("Location"))
    expect(call(reg, "PUT", add_query(loc, digest=sha256(data))), 201)
    assert_blob(reg, a, sha256(data), data)
    assert_blob_absent(reg, b, sha256(data))
    assert_blob_absent(reg, b, sha256(data[:100]))


@suite.test
def test_upload_monolithic_post(ctx):
    reg = ctx.reg
    name = uniq("mono")
    data = os.urandom(5000)
    d = sha256(data)
    path = "/v2/%s/blobs/uploads/?digest=%s" % (name, d)
    r = expect(call(reg, "POST", path, body=data,
                    headers={"Content-Type": "application/octet-stream"}), 201)
    eq(path_only(reg, path, r.h("Location")), "/v2/%s/blobs/%s" % (name, d), "Location")
    eq(r.h("Docker-Content-Digest"), d, "Docker-Content-Digest")
    assert_blob(reg, name, d, data)
    # The same, with a chunked body (no Content-Length).
    data3 = os.urandom(70000)
    c = reg.connection()
    try:
        c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (name, sha256(data3)),
                  body=iter([data3[:10], data3[10:]]), encode_chunked=True,
                  headers={"Content-Type": "application/octet-stream",
                           "Transfer-Encoding": "chunked"})
        resp = c.getresponse()
        resp.read()
        eq(resp.status, 201, "monolithic POST with a chunked body")
    finally:
        c.close()
    assert_blob(reg, name, sha256(data3), data3)
    # Mismatch
    other = os.urandom(5000)
    r = call(reg, "POST", "/v2/%s/blobs/uploads/?digest=%s" % (name, sha256(other)), body=data,
             headers={"Content-Type": "application/octet-stream"})
    expect_error(r, 400, "DIGEST_INVALID", "monolithic POST mismatch")
    assert_blob_absent(reg, name, sha256(other))
    # data is still there from before, and the failed request did not disturb it
    assert_blob(reg, name, d, data)
    third = os.urandom(10)
    expect_error(call(reg, "POST", "/v2/%s/blobs/uploads/?digest=%s" % (name, sha256(other)),
                      body=third, headers={"Content-Type": "application/octet-stream"}),
                 400, "DIGEST_INVALID")
    assert_blob_absent(reg, name, sha256(third))


@suite.test
def test_blob_sha512(ctx):
    reg = ctx.reg
    name = uniq("sha512")
    data = os.urandom(3000)
    d = sha512(data)
    # chunked session closed with a sha512 digest
    loc, _ = start_upload(reg, name)
    r = expect(patch_chunk(reg, loc, data[:1000], start=0), 202)
    loc = location_path(reg, loc, r.h("Location"))
    r = expect(call(reg, "PUT", add_query(loc, digest=d), body=data[1000:],
                    headers={"Content-Type": "application/octet-stream"}), 201,
               "PUT ?digest=sha512")
    eq(r.h("Docker-Content-Digest"), d, "sha512 Docker-Content-Digest")
    eq(path_only(reg, loc, r.h("Location")), "/v2/%s/blobs/%s" % (name, d), "Location")
    assert_blob(reg, name, d, data)
    h = expect(call(reg, "HEAD", "/v2/%s/blobs/%s" % (name, d)), 200)
    eq(h.h("Content-Length"), str(len(data)), "HEAD sha512 blob length")
    # monolithic POST with sha512
    data2 = os.urandom(77)
    d2 = sha512(data2)
    expect(call(reg, "POST", "/v2/%s/blobs/uploads/?digest=%s" % (name, d2), body=data2,
                headers={"Content-Type": "application/octet-stream"}), 201)
    assert_blob(reg, name, d2, data2)
    r = expect(get_blob(reg, name, d, headers={"Range": "bytes=0-9"}), 206)
    eq(r.body, data[:10], "sha512 blob range")
    expect(call(reg, "DELETE", "/v2/%s/blobs/%s" % (name, d2)), 202)
    assert_blob_absent(reg, name, d2)


@suite.test
def test_blob_zero_length_session(ctx):
    reg = ctx.reg
    name = uniq("zerosess")
    loc, _ = start_upload(reg, name)
    expect(call(reg, "GET", loc), 204)
    r = expect(call(reg, "PUT", add_query(loc, digest=EMPTY_SHA256)), 201)
    eq(r.h("Docker-Content-Digest"), EMPTY_SHA256, "digest of empty blob")
    r = expect(get_blob(reg, name, EMPTY_SHA256), 200)
    eq(r.body, b"", "empty blob body (session)")
    eq(r.h("Content-Length"), "0", "Content-Length (session)")
    h = expect(call(reg, "HEAD", "/v2/%s/blobs/%s" % (name, EMPTY_SHA256)), 200)
    eq(h.h("Content-Length"), "0", "HEAD empty blob Content-Length")
    # The empty blob can be a manifest layer.
    cfg = push_blob(reg, name, EMPTY_JSON)
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
           "config": descriptor(MT_OCI_EMPTY, cfg, 2),
           "layers": [descriptor(MT_OCI_LAYER, EMPTY_SHA256, 0)]}
    expect_manifest_put(reg, name, "empty-layer", json.dumps(doc).encode(), MT_OCI_MANIFEST)


@suite.test
def test_blob_zero_length_monolithic(ctx):
    reg = ctx.reg
    name = uniq("zero")
    path = "/v2/%s/blobs/uploads/?digest=%s" % (name, EMPTY_SHA256)
    r = expect(call(reg, "POST", path, body=b"",
                    headers={"Content-Type": "application/octet-stream"}), 201)
    eq(r.h("Docker-Content-Digest"), EMPTY_SHA256, "digest of empty blob")
    r = expect(get_blob(reg, name, EMPTY_SHA256), 200)
    eq(r.body, b"", "empty blob body")
    eq(r.h("Content-Length"), "0", "empty blob Content-Length")
    eq(r.h("Docker-Content-Digest"), EMPTY_SHA256, "empty blob digest header")
    h = expect(call(reg, "HEAD", "/v2/%s/blobs/%s" % (name, EMPTY_SHA256)), 200)
    eq(h.h("Content-Length"), "0", "HEAD empty blob Content-Length")
    # sha512 of empty as well
    e512 = sha512(b"")
    expect(call(reg, "POST", "/v2/%s/blobs/uploads/?digest=%s" % (name, e512), body=b""), 201)
    r = expect(get_blob(reg, name, e512), 200)
    eq(r.h("Content-Length"), "0", "empty sha512 blob length")


@suite.test
def test_mount_from_repository(ctx):
    reg = ctx.reg
    src, dst = uniq("mountsrc"), uniq("mountdst")
    data = os.urandom(2000)
    d = push_blob(reg, src, data)
    assert_blob_absent(reg, dst, d, codes=("BLOB_UNKNOWN", "NAME_UNKNOWN"))
    path = "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src)
    r = expect(call(reg, "POST", path), 201, "cross-repo mount")
    eq(path_only(reg, path, r.h("Location")), "/v2/%s/blobs/%s" % (dst, d), "mount Location")
    eq(r.h("Docker-Content-Digest"), d, "mount Docker-Content-Digest")
    assert_blob(reg, dst, d, data)
    assert_blob(reg, src, d, data)
    # The mounted blob can back a manifest in dst.
    cfg = push_blob(reg, dst, b'{"mounted":true}')
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
           "config": descriptor(MT_OCI_CONFIG, cfg, 16),
           "layers": [descriptor(MT_OCI_LAYER, d, len(data))]}
    body = json.dumps(doc).encode()
    expect_manifest_put(reg, dst, "v1", body, MT_OCI_MANIFEST)
    # Deleting the blob in src leaves dst's link.
    expect(call(reg, "DELETE", "/v2/%s/blobs/%s" % (src, d)), 202)
    assert_blob_absent(reg, src, d)
    assert_blob(reg, dst, d, data)


@suite.test
def test_mount_not_possible_falls_back_to_upload(ctx):
    reg = ctx.reg
    src, other, dst = uniq("mnsrc"), uniq("mnother"), uniq("mndst")
    data = os.urandom(100)
    d = push_blob(reg, src, data)
    push_blob(reg, other, b"something else")
    cases = [(sha256(os.urandom(8)), src, "unknown digest"),
             (d, other, "source repository lacks the blob"),
             (d, "api/does-not-exist-" + os.urandom(4).hex(), "source repository unknown")]
    for dg, frm, what in cases:
        path = "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, dg, frm)
        r = expect(call(reg, "POST", path), 202, what)
        loc = location_path(reg, path, r.h("Location"))
        check(urllib.parse.urlsplit(loc).path.startswith("/v2/%s/blobs/uploads/" % dst),
              "%s: fallback Location %r" % (what, loc))
        check(r.h("Docker-Upload-UUID"), "%s: no Docker-Upload-UUID" % what)
        expect(call(reg, "GET", loc), 204, what + ": session usable")
        if frm == other:
            # use the session for real
            r = expect(call(reg, "PUT", add_query(loc, digest=d), body=data,
                            headers={"Content-Type": "application/octet-stream"}), 201)
            assert_blob(reg, dst, d, data)
        else:
            expect(call(reg, "DELETE", loc), 204)
    assert_blob_absent(reg, other, d)


@suite.test
def test_mount_without_from(ctx):
    reg = ctx.reg
    src, dst = uniq("mwsrc"), uniq("mwdst")
    data = os.urandom(321)
    d = push_blob(reg, src, data)
    path = "/v2/%s/blobs/uploads/?mount=%s" % (dst, d)
    r = expect(call(reg, "POST", path), 201, "mount without from")
    eq(path_only(reg, path, r.h("Location")), "/v2/%s/blobs/%s" % (dst, d), "Location")
    eq(r.h("Docker-Content-Digest"), d, "digest")
    assert_blob(reg, dst, d, data)
    # Unknown digest without from: a normal session.
    r = expect(call(reg, "POST", "/v2/%s/blobs/uploads/?mount=%s" % (dst, sha256(b"zz"))), 202)
    check(r.h("Location"), "no Location on fallback")


# =============================================================================================
# Blob pull and delete

@suite.test
def test_blob_get_and_head(ctx):
    reg = ctx.reg
    name = uniq("bget")
    data = os.urandom(4097)
    d = push_blob(reg, name, data)
    r = expect(get_blob(reg, name, d), 200)
    eq(r.body, data, "blob body")
    eq(r.h("Content-Length"), str(len(data)), "Content-Length")
    eq(r.h("Docker-Content-Digest"), d, "Docker-Content-Digest")
    eq((r.h("Content-Type") or "").split(";")[0], "application/octet-stream", "Content-Type")
    h = expect(call(reg, "HEAD", "/v2/%s/blobs/%s" % (name, d)), 200)
    eq(h.body, b"", "HEAD body")
    eq(h.h("Content-Length"), str(len(data)), "HEAD Content-Length")
    eq(h.h("Docker-Content-Digest"), d, "HEAD Docker-Content-Digest")
    eq((h.h("Content-Type") or "").split(";")[0], "application/octet-stream", "HEAD Content-Type")
    # Pushing the same content again is fine and idempotent.
    push_blob(reg, name, data)
    assert_blob(reg, name, d, data)


@suite.test
def test_blob_unknown(ctx):
    reg = ctx.reg
    name = uniq("bunk")
    push_blob(reg, name, b"present")
    assert_blob_absent(reg, name, sha256(b"absent"))
    assert_blob_absent(reg, name, sha512(b"absent"))
    expect_error(call(reg, "DELETE", "/v2/%s/blobs/%s" % (name, sha256(b"absent"))), 404,
                 "BLOB_UNKNOWN")


@suite.test
def test_blob_repository_isolation(ctx):
    reg = ctx.reg
    a, b = uniq("isoa"), uniq("isob")
    data = os.urandom(123)
    d = push_blob(reg, a, data)
    push_blob(reg, b, b"b has something")
    assert_blob_absent(reg, b, d)
    assert_blob_absent(reg, uniq("isonone"), d, codes=("BLOB_UNKNOWN", "NAME_UNKNOWN"))
    expect_error(call(reg, "DELETE", "/v2/%s/blobs/%s" % (b, d)), 404, "BLOB_UNKNOWN")
    assert_blob(reg, a, d, data)
    # A manifest in b cannot reference a's blob.
    cfg = push_blob(reg, b, b"{}")
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
           "config": descriptor(MT_OCI_CONFIG, cfg, 2),
           "layers": [descriptor(MT_OCI_LAYER, d, len(data))]}
    expect_error(put_manifest(reg, b, "x", json.dumps(doc).encode(), MT_OCI_MANIFEST), 400,
                 "MANIFEST_BLOB_UNKNOWN")


@suite.test
def test_blob_range_requests(ctx):
    reg = ctx.reg
    name = uniq("brange")
    data = os.urandom(1000)
    size = len(data)
    d = push_blob(reg, name, data)
    cases = [("bytes=0-9", 0, 9), ("bytes=5-", 5, size - 1), ("bytes=-5", size - 5, size - 1),
             ("bytes=990-5000", 990, size - 1), ("bytes=999-999", 999, 999),
             ("bytes=0-", 0, size - 1), ("bytes=-5000", 0, size - 1),
             ("bytes=100-199", 100, 199)]
    cs = Cases()
    for rng, lo, hi in cases:
        with cs.case(rng):
            r = expect(get_blob(reg, name, d, headers={"Range": rng}), 206, rng)
            eq(r.h("Content-Range"), "bytes %d-%d/%d" % (lo, hi, size), "Content-Range")
            eq(r.h("Content-Length"), str(hi - lo + 1), "Content-Length")
            eq(r.h("Docker-Content-Digest"), d, "Docker-Content-Digest")
            check(r.body == data[lo:hi + 1], "%s: wrong bytes" % rng)
    for rng in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 10, size + 20)):
        with cs.case(rng):
            r = get_blob(reg, name, d, headers={"Range": rng})
            eq(r.status, 416, "status for unsatisfiable " + rng)
            eq(r.h("Content-Range"), "bytes */%d" % size, "Content-Range on 416")
    for rng in ("bytes=abc-def", "bytes", "pages=0-4", "bytes=--1", "bytes=x"):
        with cs.case(rng):
            r = expect(get_blob(reg, name, d, headers={"Range": rng}), 200, "malformed " + rng)
            check(r.body == data, "malformed Range %r: body is not the full blob" % rng)
            eq(r.h("Content-Range"), None, "Content-Range on a 200")
    with cs.case("HEAD with Range"):
        r = call(reg, "HEAD", "/v2/%s/blobs/%s" % (name, d), headers={"Range": "bytes=0-9"})
        check(r.status in (200, 206), "HEAD with Range: status %d" % r.status)
        eq(r.body, b"", "HEAD body")
    cs.done()


@suite.test
def test_blob_5mib_three_chunks(ctx):
    reg = ctx.reg
    name = uniq("big")
    data = os.urandom(5 * 1024 * 1024)
    cuts = [0, 2 * 1024 * 1024, 4 * 1024 * 1024 + 12345, len(data)]
    loc, _ = start_upload(reg, name)
    for i in range(3):
        chunk = data[cuts[i]:cuts[i + 1]]
        r = expect(patch_chunk(reg, loc, chunk, start=cuts[i]), 202, "chunk %d" % i)
        eq(r.h("Range"), "0-%d" % (cuts[i + 1] - 1), "Range after chunk %d" % i)
        loc = location_path(reg, loc, r.h("Location"))
    d = sha256(data)
    r = expect(call(reg, "PUT", add_query(loc, digest=d)), 201)
    r = expect(get_blob(reg, name, d), 200)
    check(hashlib.sha256(r.body).hexdigest() == d.split(":")[1] and r.body == data,
          "5 MiB blob did not round-trip (%d bytes)" % len(r.body))
    eq(r.h("Content-Length"), str(len(data)), "Content-Length")
    lo, hi = cuts[1] - 100, cuts[1] + 100
    r = expect(get_blob(reg, name, d, headers={"Range": "bytes=%d-%d" % (lo, hi)}), 206)
    check(r.body == data[lo:hi + 1], "range across chunk boundary")


@suite.test
def test_blob_delete(ctx):
    reg = ctx.reg
    name = uniq("bdel")
    data = os.urandom(50)
    d = push_blob(reg, name, data)
    keep = push_blob(reg, name, os.urandom(51))
    r = expect(call(reg, "DELETE", "/v2/%s/blobs/%s" % (name, d)), 202)
    assert_blob_absent(reg, name, d)
    expect_error(call(reg, "DELETE", "/v2/%s/blobs/%s" % (name, d)), 404, "BLOB_UNKNOWN",
                 "second DELETE")
    expect_error(call(reg, "DELETE", "/v2/%s/blobs/%s" % (name, sha256(b"never"))), 404,
                 "BLOB_UNKNOWN")
    expect(call(reg, "HEAD", "/v2/%s/blobs/%s" % (name, keep)), 200, "other blob kept")
    # Re-push after delete works.
    push_blob(reg, name, data)
    assert_blob(reg, name, d, data)


@suite.test
def test_delete_disabled(ctx):
    with own_registry(ctx, delete_enabled=False) as reg:
        name = uniq("nodel")
        data = os.urandom(64)
        d = push_blob(reg, name, data)
        img = push_image(reg, name, "latest")
        expect_error(call(reg, "DELETE", "/v2/%s/blobs/%s" % (name, d)), 405, "UNSUPPORTED")
        expect_error(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, img.digest)), 405,
                     "UNSUPPORTED")
        expect_error(call(reg, "DELETE", "/v2/%s/manifests/latest" % name), 405, "UNSUPPORTED")
        assert_blob(reg, name, d, data)
        assert_manifest(reg, name, "latest", img.body, img.mt)
        assert_manifest(reg, name, img.digest, img.body, img.mt)


# =============================================================================================
# Manifests

@suite.test
def test_manifest_oci_roundtrip(ctx):
    reg = ctx.reg
    name = uniq("moci")
    img = push_image(reg, name, "v1", layers=3,
                     extra={"annotations": {"u": "caf\u00e9 \u2603", "k": "v"}})
    check(b"\r\n" in img.body and b"\t" in img.body and "\u2603".encode() in img.body,
          "test setup: odd whitespace/UTF-8 expected")
    assert_manifest(reg, name, "v1", img.body, img.mt)
    assert_manifest(reg, name, img.digest, img.body, img.mt)
    # JSON escapes that a re-serialiser would change.
    cfg = push_blob(reg, name, EMPTY_JSON)
    body = ('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s",'
            '"size":2},"layers":[],"annotations":{"e":"caf\\u00e9\\/\\t","n":"1.0e0"}}'
            % (MT_OCI_MANIFEST, MT_OCI_EMPTY, cfg)).encode()
    expect_manifest_put(reg, name, "escapes", body, MT_OCI_MANIFEST)
    assert_manifest(reg, name, "escapes", body, MT_OCI_MANIFEST)
    # A manifest PUT with chunked transfer-encoding (no Content-Length).
    c = reg.connection()
    try:
        c.request("PUT", "/v2/%s/manifests/chunked" % name,
                  body=iter([img.body[:100], img.body[100:]]), encode_chunked=True,
                  headers={"Content-Type": img.mt, "Transfer-Encoding": "chunked"})
        resp = c.getresponse()
        resp.read()
        eq(resp.status, 201, "chunked manifest PUT")
        eq(resp.getheader("Docker-Content-Digest"), img.digest, "chunked manifest digest")
    finally:
        c.close()
    assert_manifest(reg, name, "chunked", img.body, img.mt)
    tags, _ = tags_of(reg, name)
    eq(sorted(tags), ["chunked", "escapes", "v1"], "tags")


@suite.test
def test_manifest_put_by_digest(ctx):
    reg = ctx.reg
    name = uniq("mbyd")
    img = push_image(reg, name, None)  # PUT by its digest
    assert_manifest(reg, name, img.digest, img.body, img.mt)
    # Re-PUT same bytes by digest is idempotent
    expect_manifest_put(reg, name, img.digest, img.body, img.mt)
    # Digest that doesn't match the body
    other = img.body + b" "
    expect_error(put_manifest(reg, name, img.digest, other, img.mt), 400, "DIGEST_INVALID")
    assert_manifest_absent(reg, name, sha256(other))
    wrong = sha256(b"whatever")
    expect_error(put_manifest(reg, name, wrong, img.body, img.mt), 400, "DIGEST_INVALID")
    assert_manifest_absent(reg, name, wrong)
    assert_manifest(reg, name, img.digest, img.body, img.mt)


@suite.test
def test_manifest_sha512(ctx):
    reg = ctx.reg
    name = uniq("m512")
    cfg = push_blob(reg, name, EMPTY_JSON)
    layer = os.urandom(99)
    push_blob(reg, name, layer, digest=sha512(layer))
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
           "config": descriptor(MT_OCI_EMPTY, cfg, 2),
           "layers": [descriptor(MT_OCI_LAYER, sha512(layer), len(layer))]}
    body = odd_json(doc)
    d512 = sha512(body)
    r = put_manifest(reg, name, d512, body, MT_OCI_MANIFEST)
    expect(r, 201, "PUT manifest by sha512 digest")
    check(r.h("Docker-Content-Digest") in (d512, sha256(body)),
          "Docker-Content-Digest %r" % r.h("Docker-Content-Digest"))
    r = expect(get_manifest(reg, name, d512), 200, "GET manifest by sha512")
    eq(r.body, body, "manifest bytes by sha512")
    eq(r.h("Content-Type"), MT_OCI_MANIFEST, "Content-Type")
    check(r.h("Docker-Content-Digest") in (d512, sha256(body)),
          "GET Docker-Content-Digest %r" % r.h("Docker-Content-Digest"))
    expect(get_manifest(reg, name, d512, "HEAD"), 200)
    # Mismatching sha512 reference
    expect_error(put_manifest(reg, name, sha512(body + b"x"), body, MT_OCI_MANIFEST), 400,
                 "DIGEST_INVALID")
    # Also by tag: referencing a sha512 layer blob works.
    expect_manifest_put(reg, name, "t", body, MT_OCI_MANIFEST)
    assert_manifest(reg, name, "t", body, MT_OCI_MANIFEST)


@suite.test
def test_manifest_oci_index(ctx):
    reg = ctx.reg
    name = uniq("mindex")
    c1 = push_image(reg, name, None)
    c2 = push_image(reg, name, None)
    idx = push_index(reg, name, "multi", [c1, c2])
    assert_manifest(reg, name, "multi", idx.body, MT_OCI_INDEX)
    assert_manifest(reg, name, idx.digest, idx.body, MT_OCI_INDEX)
    # Index referencing a missing child
    missing = Pushed(b"{}", MT_OCI_MANIFEST, sha256(os.urandom(8)))
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
           "manifests": [c1.desc(), missing.desc()]}
    body = json.dumps(doc).encode()
    expect_error(put_manifest(reg, name, "broken", body, MT_OCI_INDEX), 400,
                 "MANIFEST_BLOB_UNKNOWN")
    assert_manifest_absent(reg, name, "broken")
    assert_manifest_absent(reg, name, sha256(body))
    # A child that exists only in another repository does not count.
    other = uniq("mindex-other")
    c3 = push_image(reg, other, None)
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [c3.desc()]}
    expect_error(put_manifest(reg, name, "foreign", json.dumps(doc).encode(), MT_OCI_INDEX),
                 400, "MANIFEST_BLOB_UNKNOWN")
    # Nested index
    nested = push_index(reg, name, "nested", [idx, c2])
    assert_manifest(reg, name, "nested", nested.body, MT_OCI_INDEX)


@suite.test
def test_manifest_docker_schema2_and_list(ctx):
    reg = ctx.reg
    name = uniq("mdocker")
    a = push_image(reg, name, "amd64", docker=True, layers=2)
    assert_manifest(reg, name, "amd64", a.body, MT_DOCKER_MANIFEST)
    b = push_image(reg, name, None, docker=True)
    lst = push_index(reg, name, "list", [a, b], docker=True)
    assert_manifest(reg, name, "list", lst.body, MT_DOCKER_LIST)
    assert_manifest(reg, name, lst.digest, lst.body, MT_DOCKER_LIST)
    missing = Pushed(b"", MT_DOCKER_MANIFEST, sha256(os.urandom(8)))
    doc = {"schemaVersion": 2, "mediaType": MT_DOCKER_LIST,
           "manifests": [a.desc(platform={"architecture": "amd64", "os": "linux"}),
                         missing.desc(platform={"architecture": "arm64", "os": "linux"})]}
    expect_error(put_manifest(reg, name, "broken", json.dumps(doc).encode(), MT_DOCKER_LIST),
                 400, "MANIFEST_BLOB_UNKNOWN")


@suite.test
def test_manifest_artifact_empty_config(ctx):
    reg = ctx.reg
    name = uniq("martifact")
    art, r = push_artifact(reg, name, None, artifact_type="application/vnd.example.thing+json",
                           ref="art")
    eq(r.h("OCI-Subject"), None, "OCI-Subject without subject")
    assert_manifest(reg, name, "art", art.body, MT_OCI_MANIFEST)
    assert_blob(reg, name, sha256(EMPTY_JSON), EMPTY_JSON)


@suite.test
def test_manifest_missing_blobs(ctx):
    reg = ctx.reg
    name = uniq("mmissing")
    cfg_data = b'{"a":1}'
    cfg = push_blob(reg, name, cfg_data)
    layer = os.urandom(10)
    ld = push_blob(reg, name, layer)
    absent = sha256(os.urandom(10))
    variants = {
        "layer": {"config": descriptor(MT_OCI_CONFIG, cfg, len(cfg_data)),
                  "layers": [descriptor(MT_OCI_LAYER, ld, 10), descriptor(MT_OCI_LAYER, absent, 10)]},
        "config": {"config": descriptor(MT_OCI_CONFIG, absent, 10),
                   "layers": [descriptor(MT_OCI_LAYER, ld, 10)]},
    }
    for what, parts in variants.items():
        doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST}
        doc.update(parts)
        body = json.dumps(doc).encode()
        expect_error(put_manifest(reg, name, what, body, MT_OCI_MANIFEST), 400,
                     "MANIFEST_BLOB_UNKNOWN", "missing " + what)
        assert_manifest_absent(reg, name, what)
        assert_manifest_absent(reg, name, sha256(body))
    # Docker schema2 with a missing layer.
    doc = {"schemaVersion": 2, "mediaType": MT_DOCKER_MANIFEST,
           "config": descriptor(MT_DOCKER_CONFIG, cfg, len(cfg_data)),
           "layers": [descriptor(MT_DOCKER_LAYER, absent, 10)]}
    expect_error(put_manifest(reg, name, "dock", json.dumps(doc).encode(), MT_DOCKER_MANIFEST),
                 400, "MANIFEST_BLOB_UNKNOWN")


@suite.test
def test_manifest_subject_missing_is_accepted(ctx):
    reg = ctx.reg
    name = uniq("msubject")
    subj_digest = sha256(os.urandom(16))
    subject = {"mediaType": MT_OCI_MANIFEST, "digest": subj_digest, "size": 1234}
    art, r = push_artifact(reg, name, subject, artifact_type="application/vnd.example.sig",
                           annotations={"org.example": "early"})
    eq(r.h("OCI-Subject"), subj_digest, "OCI-Subject response header")
    assert_manifest(reg, name, art.digest, art.body, MT_OCI_MANIFEST)
    # The referrer is listed for the (still absent) subject.
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (name, subj_digest)), 200)
    j = r.json()
    eq([m["digest"] for m in j["manifests"]], [art.digest], "referrers of absent subject")
    # Now push a real subject with the same shape? (digests can't be forced) - push one and
    # check the artifact with a real subject also gets OCI-Subject.
    img = push_image(reg, name, "base")
    art2, r = push_artifact(reg, name, img.desc(), artifact_type="application/vnd.example.sig")
    eq(r.h("OCI-Subject"), img.digest, "OCI-Subject for existing subject")


@suite.test
def test_manifest_invalid_bodies(ctx):
    reg = ctx.reg
    name = uniq("minvalid")
    cfg = push_blob(reg, name, EMPTY_JSON)
    good = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
            "config": descriptor(MT_OCI_EMPTY, cfg, 2), "layers": []}
    good_text = json.dumps(good)
    expect_manifest_put(reg, name, "good", good_text.encode(), MT_OCI_MANIFEST)
    dup = good_text[:-1] + ', "layers": [{"mediaType": "%s", "digest": "%s", "size": 2}]}' % (
        MT_OCI_LAYER, cfg)
    dup_schema = '{"schemaVersion": 2, "schemaVersion": 2,' + good_text[1:]
    invalid = {
        "not json": b"{not json",
        "empty body": b"",
        "truncated": good_text[:-1].encode(),
        "trailing garbage": good_text.encode() + b" x",
        "two documents": (good_text + good_text).encode(),
        "array": b"[]",
        "string": b'"manifest"',
        "duplicate layers key": dup.encode(),
        "duplicate schemaVersion": dup_schema.encode(),
        "schemaVersion 1": json.dumps(dict(good, schemaVersion=1)).encode(),
        "schemaVersion 3": json.dumps(dict(good, schemaVersion=3)).encode(),
        "schemaVersion string": json.dumps(dict(good, schemaVersion="2")).encode(),
        "no config": json.dumps({k: v for k, v in good.items() if k != "config"}).encode(),
        "layers not a list": json.dumps(dict(good, layers={})).encode(),
        "mediaType differs from Content-Type": json.dumps(dict(good,
                                                               mediaType=MT_OCI_INDEX)).encode(),
        "invalid UTF-8": good_text.replace('"layers"', '"annotations": {"x": "\xff"}, "layers"')
        .encode("latin-1"),
        "NUL byte": good_text.encode().replace(b'"layers"', b'"annotations": {"x\x00": "v"}, "layers"'),
    }
    cs = Cases()
    for what, body in invalid.items():
        with cs.case(what):
            r = put_manifest(reg, name, "bad", body, MT_OCI_MANIFEST)
            expect_error(r, 400, "MANIFEST_INVALID")
    # schema1 Content-Type with a schema1 body
    s1 = json.dumps({"schemaVersion": 1, "name": name, "tag": "bad", "architecture": "amd64",
                     "fsLayers": [], "history": []}).encode()
    for mt in ("application/vnd.docker.distribution.manifest.v1+json", MT_SCHEMA1_SIGNED):
        with cs.case("schema1 as " + mt):
            expect_error(put_manifest(reg, name, "bad", s1, mt), 400, "MANIFEST_INVALID")
    # A malformed digest inside a descriptor: MANIFEST_INVALID or DIGEST_INVALID (ambiguous),
    # never MANIFEST_BLOB_UNKNOWN and never a 5xx.
    for bad in ("sha256:xyz", "", "sha256:" + "A" * 64, "nodigest"):
        with cs.case("config digest %r" % bad):
            body = json.dumps(dict(good, config=dict(good["config"], digest=bad))).encode()
            expect_error(put_manifest(reg, name, "bad", body, MT_OCI_MANIFEST), 400,
                         ("MANIFEST_INVALID", "DIGEST_INVALID"))
    with cs.case("nothing stored"):
        assert_manifest_absent(reg, name, "bad")
    cs.done()
    assert_manifest(reg, name, "good", good_text.encode(), MT_OCI_MANIFEST)


@suite.test
def test_manifest_size_limit(ctx):
    with own_registry(ctx, env={"REGISTRY_BERTH_LIMITS_MANIFESTSIZE": "4096"}) as reg:
        name = uniq("msize")
        cfg = push_blob(reg, name, EMPTY_JSON)

        def sized(n):
            doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                   "config": descriptor(MT_OCI_EMPTY, cfg, 2), "layers": [],
                   "annotations": {"pad": ""}}
            base = len(json.dumps(doc).encode())
            doc["annotations"]["pad"] = "x" * (n - base)
            body = json.dumps(doc).encode()
            eq(len(body), n, "test setup: manifest size")
            return body
        big = sized(5000)
        r = put_manifest(reg, name, "big", big, MT_OCI_MANIFEST)
        expect_error(r, 413, None, "5000-byte manifest with a 4096 limit")
        assert_manifest_absent(reg, name, "big")
        assert_manifest_absent(reg, name, sha256(big))
        just = sized(4096)
        expect_manifest_put(reg, name, "limit", just, MT_OCI_MANIFEST)
        assert_manifest(reg, name, "limit", just, MT_OCI_MANIFEST)
        over = sized(4097)
        eq(put_manifest(reg, name, "over", over, MT_OCI_MANIFEST).status, 413, "4097 bytes")
        # The server is still healthy afterwards (also on a chunked body over the limit).
        c = reg.connection()
        try:
            c.request("PUT", "/v2/%s/manifests/chunked" % name,
                      body=iter([big[:3000], big[3000:]]), encode_chunked=True,
                      headers={"Content-Type": MT_OCI_MANIFEST, "Transfer-Encoding": "chunked"})
            resp = c.getresponse()
            resp.read()
            eq(resp.status, 413, "chunked manifest over the limit")
        except (ConnectionError, http.client.HTTPException) as e:
            raise TestFailure("chunked oversized manifest: connection error %r" % e)
        finally:
            c.close()
        expect(call(reg, "GET", "/v2/"), 200)


@suite.test
def test_manifest_4mib_accepted(ctx):
    reg = ctx.reg
    name = uniq("m4mib")
    cfg = push_blob(reg, name, EMPTY_JSON)
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
           "config": descriptor(MT_OCI_EMPTY, cfg, 2), "layers": [], "annotations": {"pad": ""}}
    target = 4 * 1024 * 1024
    base = len(json.dumps(doc).encode())
    doc["annotations"]["pad"] = "p" * (target - base)
    body = json.dumps(doc).encode()
    eq(len(body), target, "test setup")
    expect_manifest_put(reg, name, "huge", body, MT_OCI_MANIFEST)
    assert_manifest(reg, name, "huge", body, MT_OCI_MANIFEST)


@suite.test
def test_manifest_retag_index_image(ctx):
    reg = ctx.reg
    name = uniq("mretag")
    c1 = push_image(reg, name, None)
    c2 = push_image(reg, name, None)
    idx = push_index(reg, name, "t", [c1, c2])
    assert_manifest(reg, name, "t", idx.body, MT_OCI_INDEX)
    expect_manifest_put(reg, name, "t", c1.body, c1.mt)
    assert_manifest(reg, name, "t", c1.body, MT_OCI_MANIFEST)
    expect_manifest_put(reg, name, "t", idx.body, idx.mt)
    assert_manifest(reg, name, "t", idx.body, MT_OCI_INDEX)
    d = push_image(reg, name, None, docker=True)
    expect_manifest_put(reg, name, "t", d.body, d.mt)
    assert_manifest(reg, name, "t", d.body, MT_DOCKER_MANIFEST)
    # Previously tagged manifests are still there by digest.
    assert_manifest(reg, name, idx.digest, idx.body, MT_OCI_INDEX)
    assert_manifest(reg, name, c1.digest, c1.body, MT_OCI_MANIFEST)
    tags, _ = tags_of(reg, name)
    eq(tags, ["t"], "tags after retagging")


@suite.test
def test_manifest_unknown(ctx):
    reg = ctx.reg
    name = uniq("munk")
    push_image(reg, name, "exists")
    assert_manifest_absent(reg, name, "nope")
    assert_manifest_absent(reg, name, sha256(b"nope"))
    assert_manifest_absent(reg, uniq("munk-none"), "latest",
                           codes=("NAME_UNKNOWN", "MANIFEST_UNKNOWN"))
    assert_manifest_absent(reg, uniq("munk-none"), sha256(b"x"),
                           codes=("NAME_UNKNOWN", "MANIFEST_UNKNOWN"))
    # A blob's digest is not a manifest.
    bd = push_blob(reg, name, os.urandom(20))
    assert_manifest_absent(reg, name, bd)


@suite.test
def test_manifest_delete_by_digest(ctx):
    reg = ctx.reg
    name = uniq("mdeld")
    img = push_image(reg, name, "t1")
    expect_manifest_put(reg, name, "t2", img.body, img.mt)
    other = push_image(reg, name, "other")
    r = expect(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, img.digest)), 202)
    assert_manifest_absent(reg, name, img.digest)
    assert_manifest_absent(reg, name, "t1")
    assert_manifest_absent(reg, name, "t2")
    tags, _ = tags_of(reg, name)
    eq(tags, ["other"], "tags after deleting the manifest")
    assert_manifest(reg, name, "other", other.body, other.mt)
    expect_error(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, img.digest)), 404,
                 "MANIFEST_UNKNOWN", "second DELETE")
    # Push it again: it comes back.
    expect_manifest_put(reg, name, "t1", img.body, img.mt)
    assert_manifest(reg, name, "t1", img.body, img.mt)


@suite.test
def test_manifest_delete_by_tag(ctx):
    reg = ctx.reg
    name = uniq("mdelt")
    img = push_image(reg, name, "t1")
    expect_manifest_put(reg, name, "t2", img.body, img.mt)
    expect(call(reg, "DELETE", "/v2/%s/manifests/t1" % name), 202, "DELETE by tag")
    assert_manifest_absent(reg, name, "t1")
    assert_manifest(reg, name, "t2", img.body, img.mt)
    assert_manifest(reg, name, img.digest, img.body, img.mt)
    tags, _ = tags_of(reg, name)
    eq(tags, ["t2"], "tags after deleting t1")
    expect_error(call(reg, "DELETE", "/v2/%s/manifests/t1" % name), 404, "MANIFEST_UNKNOWN",
                 "DELETE deleted tag")


@suite.test
def test_manifest_delete_unknown(ctx):
    reg = ctx.reg
    name = uniq("mdelu")
    push_image(reg, name, "x")
    expect_error(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, sha256(b"nope"))), 404,
                 "MANIFEST_UNKNOWN")
    expect_error(call(reg, "DELETE", "/v2/%s/manifests/nope" % name), 404, "MANIFEST_UNKNOWN")


@suite.test
def test_corpus_valid_with_missing_blobs(ctx):
    reg = ctx.reg
    d = corpus_dir()
    files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
    check(len(files) >= 10, "corpus has only %d files" % len(files))
    n_checked = 0
    cs = Cases()
    for f in files:
        body = open(os.path.join(d, f), "rb").read()
        doc = json.loads(body)
        mt = doc.get("mediaType") or (MT_OCI_INDEX if "manifests" in doc else MT_OCI_MANIFEST)
        refs = [doc["config"]] if "config" in doc else []
        refs += doc.get("layers") or []
        refs += doc.get("manifests") or []
        name = uniq("corpus")
        with cs.case(f):
            r = put_manifest(reg, name, "c", body, mt)
            if not refs:
                expect(r, 201, f)
                eq(r.h("Docker-Content-Digest"), sha256(body), f + " digest")
                assert_manifest(reg, name, "c", body, mt)
                assert_manifest(reg, name, sha256(body), body, mt)
            else:
                expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN", f)
                assert_manifest_absent(reg, name, sha256(body),
                                       codes=("MANIFEST_UNKNOWN", "NAME_UNKNOWN"))
        n_checked += 1
    cs.done()
    check(n_checked == len(files), "checked all")


@suite.test
def test_corpus_roundtrip_with_blobs(ctx):
    """oras-artifact-duplicate-layer-digests.json references {} / "foo" / "bar": push those and
    the real manifest is accepted and served byte-for-byte under its published digest."""
    reg = ctx.reg
    path = os.path.join(corpus_dir(), "oras-artifact-duplicate-layer-digests.json")
    body = open(path, "rb").read()
    want = "sha256:fd6ed2f36b5465244d5dc86cb4e7df0ab8a9d24adc57825099f522fe009a22bb"
    eq(sha256(body), want, "corpus file digest")
    name = uniq("corpusrt")
    for blob in (EMPTY_JSON, b"foo", b"bar"):
        push_blob(reg, name, blob)
    expect_manifest_put(reg, name, want, body, MT_OCI_MANIFEST)
    assert_manifest(reg, name, want, body, MT_OCI_MANIFEST)
    expect_manifest_put(reg, name, "v1", body, MT_OCI_MANIFEST)
    assert_manifest(reg, name, "v1", body, MT_OCI_MANIFEST)
    # Helm chart manifest without a mediaType field: media type comes from the request.
    helm = open(os.path.join(corpus_dir(), "helm-chart-manifest-bitnami-nginx.json"), "rb").read()
    check(b'"mediaType":"application/vnd.oci.image.manifest' not in helm.replace(b" ", b"")[:80],
          "test setup")
    expect_error(put_manifest(reg, name, "helm", helm, MT_OCI_MANIFEST), 400,
                 "MANIFEST_BLOB_UNKNOWN", "helm chart without blobs")


@suite.test
def test_corpus_invalid(ctx):
    reg = ctx.reg
    d = os.path.join(corpus_dir(), "invalid")
    files = sorted(os.listdir(d))
    check(len(files) >= 5, "invalid corpus has only %d files" % len(files))
    cs = Cases()
    for f in files:
        body = open(os.path.join(d, f), "rb").read()
        mt = None
        try:
            doc = json.loads(body)
            if isinstance(doc.get("mediaType"), str):
                mt = doc["mediaType"]
            elif doc.get("schemaVersion") == 1:
                mt = MT_SCHEMA1_SIGNED if "signatures" in doc else \
                    "application/vnd.docker.distribution.manifest.v1+json"
        except ValueError:
            mt = MT_DOCKER_MANIFEST  # YAML claiming to be a schema2 manifest
        mt = mt or MT_OCI_MANIFEST
        name = uniq("corpusbad")
        # With its own media type, and with the most common one (so the rejection is about
        # the content, not only the Content-Type).
        for ct in [mt] + ([MT_OCI_MANIFEST] if mt != MT_OCI_MANIFEST else []):
            with cs.case("%s as %s" % (f, ct)):
                r = put_manifest(reg, name, "bad", body, ct)
                expect_error(r, 400, "MANIFEST_INVALID")
        with cs.case(f + " not stored"):
            assert_manifest_absent(reg, name, "bad", codes=("MANIFEST_UNKNOWN", "NAME_UNKNOWN"))
    cs.done()


# =============================================================================================
# Tags list

@suite.test
def test_tags_list_sorted(ctx):
    reg = ctx.reg
    name = uniq("tags")
    img = push_image(reg, name, None)
    tags = ["b", "a", "B", "_x", "a.1", "a-1", "1", "Z", "a_1", "aa", "A0", "0", "a"*128, "a9"]
    for t in tags:
        expect_manifest_put(reg, name, t, img.body, img.mt)
    got, r = tags_of(reg, name)
    eq(got, sorted(tags), "tags in byte order")
    check((r.h("Content-Type") or "").startswith("application/json"),
          "tags Content-Type %r" % r.h("Content-Type"))
    eq(r.h("Link"), None, "Link without n")


def walk_pages(reg, first_path, list_key, n):
    """Follow Link rel=next from first_path; every page but the last must have exactly n
    entries. Returns the concatenation."""
    out = []
    path = first_path
    pages = 0
    while True:
        r = expect(call(reg, "GET", path), 200, "page")
        items = r.json().get(list_key) or []
        nxt = parse_link_next(r.h("Link"))
        pages += 1
        check(pages < 10000, "pagination does not terminate")
        if nxt is None:
            check(len(items) <= n, "last page has %d > n=%d entries" % (len(items), n))
            out += items
            return out
        eq(len(items), n, "entries on a page followed by Link (%s)" % path)
        target = location_path(reg, path, nxt)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        eq(q.get("n"), [str(n)], "n in Link %r" % nxt)
        eq(q.get("last"), [items[-1]], "last in Link %r" % nxt)
        out += items
        path = target


@suite.test
def test_tags_pagination(ctx):
    reg = ctx.reg
    name = uniq("tagpage")
    img = push_image(reg, name, None)
    tags = sorted(["t%02d" % i for i in range(11)] + ["A", "_z", "x.y"])
    for t in tags:
        expect_manifest_put(reg, name, t, img.body, img.mt)
    # n=3: exactly 3 plus a Link we parse.
    r = expect(call(reg, "GET", "/v2/%s/tags/list?n=3" % name), 200)
    j = r.json()
    eq(j["tags"], tags[:3], "first page")
    nxt = parse_link_next(r.h("Link"))
    check(nxt, "no Link when more remain")
    target = urllib.parse.urlsplit(location_path(reg, "/v2/", nxt))
    eq(target.path, "/v2/%s/tags/list" % name, "Link path")
    eq(urllib.parse.parse_qs(target.query), {"n": ["3"], "last": [tags[2]]}, "Link query")
    for n in (1, 2, 3, 5, 13):
        eq(walk_pages(reg, "/v2/%s/tags/list?n=%d" % (name, n), "tags", n), tags,
           "union of pages with n=%d" % n)
    # last is exclusive, with and without n
    got, _ = tags_of(reg, name, "?last=%s" % tags[4])
    eq(got, tags[5:], "last exclusive")
    got, _ = tags_of(reg, name, "?n=2&last=%s" % tags[4])
    eq(got, tags[5:7], "n=2 after last")
    got, _ = tags_of(reg, name, "?last=t045")  # not a tag: strictly greater ones
    eq(got, [t for t in tags if t > "t045"], "last that is not a tag")
    got, r = tags_of(reg, name, "?last=%s" % tags[-1])
    eq(got, [], "last = final tag")
    eq(r.h("Link"), None, "Link after the final tag")
    # n=0
    got, r = tags_of(reg, name, "?n=0")
    eq(got, [], "n=0")
    eq(r.h("Link"), None, "Link with n=0")
    # n bigger than count
    got, r = tags_of(reg, name, "?n=%d" % (len(tags) + 5))
    eq(got, tags, "n > count")
    eq(r.h("Link"), None, "Link with n > count")
    got, r = tags_of(reg, name, "?n=%d" % len(tags))
    eq(got, tags, "n = count")


@suite.test
def test_tags_full_listing_spans_batches(ctx):
    """The full listing is streamed in batches of 2048 rows: every tag once, in order, across
    batch boundaries, with and without last."""
    reg = ctx.reg
    name = uniq("tagmany")
    img = push_image(reg, name, None)
    tags = sorted("v%04d" % i for i in range(2100))
    for t in tags:
        expect_manifest_put(reg, name, t, img.body, img.mt)
    got, r = tags_of(reg, name, "")
    eq(got, tags, "full listing of %d tags" % len(tags))
    eq(r.h("Content-Type"), "application/json", "Content-Type")
    eq(r.h("Link"), None, "no Link on a full listing")
    got, _ = tags_of(reg, name, "?last=%s" % tags[10])
    eq(got, tags[11:], "full listing after last")
    got, _ = tags_of(reg, name, "?last=%s" % tags[2047])
    eq(got, tags[2048:], "last at a batch boundary")
    r = expect(call(reg, "HEAD", "/v2/%s/tags/list" % name), 200, "HEAD tags/list")
    eq(r.body, b"", "HEAD body")


@suite.test
def test_tags_unknown_repository(ctx):
    reg = ctx.reg
    expect_error(call(reg, "GET", "/v2/%s/tags/list" % uniq("tagnone")), 404, "NAME_UNKNOWN")
    expect_error(call(reg, "GET", "/v2/%s/tags/list?n=5" % uniq("tagnone")), 404, "NAME_UNKNOWN")


@suite.test
def test_tags_bad_n(ctx):
    reg = ctx.reg
    name = uniq("tagbadn")
    push_image(reg, name, "x")
    for q in ("n=-1", "n=abc", "n=1x"):
        r = call(reg, "GET", "/v2/%s/tags/list?%s" % (name, q))
        expect_error(r, 400, None, q)


@suite.test
def test_tags_after_blob_only_push(ctx):
    """A repository with a blob but no tags lists as an empty tag list (not 500)."""
    reg = ctx.reg
    name = uniq("tagempty")
    push_blob(reg, name, os.urandom(10))
    r = call(reg, "GET", "/v2/%s/tags/list" % name)
    if r.status == 200:
        eq(r.json().get("tags") or [], [], "tags of blob-only repository")
    else:
        expect_error(r, 404, "NAME_UNKNOWN")


# =============================================================================================
# Catalog

@suite.test
def test_catalog(ctx):
    reg = ctx.reg
    pfx = "cat" + os.urandom(3).hex()
    # byte order vs. per-component order: "a-b" < "a.b" < "a/z" < "a0" < "a_c"
    mine = ["%s/a/z" % pfx, "%s/a-b" % pfx, "%s/a.b" % pfx, "%s/a0" % pfx, "%s/a_c" % pfx,
            "%s/a" % pfx]
    for i, n in enumerate(mine):
        if i % 2:
            push_blob(reg, n, os.urandom(5))      # blob only
        else:
            push_image(reg, n, "latest")
    full = walk_pages(reg, "/v2/_catalog?n=1000", "repositories", 1000)
    eq(full, sorted(full), "catalog in byte order")
    eq(len(full), len(set(full)), "catalog has no duplicates")
    got = [x for x in full if x.startswith(pfx + "/")]
    eq(got, sorted(mine), "my repositories in catalog")
    r = expect(call(reg, "GET", "/v2/_catalog"), 200)
    j = r.json()
    check(isinstance(j.get("repositories"), list), "catalog body %r" % j)
    for n in (1, 3, 7):
        eq(walk_pages(reg, "/v2/_catalog?n=%d" % n, "repositories", n), full,
           "catalog pages with n=%d" % n)
    # Link target shape
    r = expect(call(reg, "GET", "/v2/_catalog?n=2"), 200)
    nxt = parse_link_next(r.h("Link"))
    check(nxt, "catalog n=2 without Link (%d repositories)" % len(full))
    t = urllib.parse.urlsplit(location_path(reg, "/v2/", nxt))
    eq(t.path, "/v2/_catalog", "catalog Link path")
    eq(urllib.parse.parse_qs(t.query), {"n": ["2"], "last": [r.json()["repositories"][-1]]},
       "catalog Link query")
    # last exclusive
    r = expect(call(reg, "GET", "/v2/_catalog?n=3&last=%s" % urllib.parse.quote(sorted(mine)[1],
                                                                               safe="")), 200)
    eq(r.json()["repositories"], [x for x in full if x > sorted(mine)[1]][:3], "catalog last")
    r = expect(call(reg, "GET", "/v2/_catalog?n=2&last=%s" % sorted(mine)[0]), 200)  # raw '/'
    eq(r.json()["repositories"], [x for x in full if x > sorted(mine)[0]][:2],
       "catalog last with a raw '/'")
    r = expect(call(reg, "GET", "/v2/_catalog?n=0"), 200)
    eq(r.json().get("repositories") or [], [], "catalog n=0")
    eq(r.h("Link"), None, "catalog Link with n=0")
    r = expect(call(reg, "GET", "/v2/_catalog?n=%d" % (len(full) + 10)), 200)
    eq(r.json()["repositories"], full, "catalog n > count")
    eq(r.h("Link"), None, "catalog Link with n > count")
    for q in ("n=-1", "n=abc"):
        expect_error(call(reg, "GET", "/v2/_catalog?" + q), 400, None, "catalog " + q)


# =============================================================================================
# Referrers

@suite.test
def test_referrers_unknown_subject_is_empty(ctx):
    reg = ctx.reg
    name = uniq("refnone")
    push_image(reg, name, "x")
    for repo in (name, uniq("refnorepo")):
        r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (repo, sha256(os.urandom(4)))), 200)
        eq((r.h("Content-Type") or "").split(";")[0], MT_OCI_INDEX, "referrers Content-Type")
        j = r.json()
        eq(j.get("schemaVersion"), 2, "schemaVersion")
        eq(j.get("mediaType"), MT_OCI_INDEX, "mediaType")
        eq(j.get("manifests"), [], "manifests")


@suite.test
def test_referrers_list_and_filter(ctx):
    reg = ctx.reg
    name = uniq("refs")
    img = push_image(reg, name, "base")
    sig, _ = push_artifact(reg, name, img.desc(), artifact_type="application/vnd.example.sig",
                           annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
                                        "x": "y"})
    sbom, _ = push_artifact(reg, name, img.desc(), artifact_type=None,
                            config_mt="application/vnd.example.sbom.config")
    unrelated, _ = push_artifact(reg, name, None, artifact_type="application/vnd.example.sig")
    other_img = push_image(reg, name, "other")
    push_artifact(reg, name, other_img.desc(), artifact_type="application/vnd.example.sig")
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (name, img.digest)), 200)
    eq((r.h("Content-Type") or "").split(";")[0], MT_OCI_INDEX, "Content-Type")
    j = r.json()
    eq(j.get("schemaVersion"), 2, "schemaVersion")
    eq(j.get("mediaType"), MT_OCI_INDEX, "mediaType")
    by = {m["digest"]: m for m in j["manifests"]}
    eq(sorted(by), sorted([sig.digest, sbom.digest]), "referrer digests")
    s = by[sig.digest]
    eq(s.get("mediaType"), MT_OCI_MANIFEST, "sig mediaType")
    eq(s.get("size"), sig.size, "sig size")
    eq(s.get("artifactType"), "application/vnd.example.sig", "sig artifactType")
    eq(s.get("annotations"), {"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
                              "x": "y"}, "sig annotations")
    b = by[sbom.digest]
    eq(b.get("size"), sbom.size, "sbom size")
    eq(b.get("mediaType"), MT_OCI_MANIFEST, "sbom mediaType")
    eq(b.get("artifactType"), "application/vnd.example.sbom.config",
       "artifactType from config.mediaType")
    check(b.get("annotations") in (None, {}), "sbom annotations %r" % b.get("annotations"))
    # Filter
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s?artifactType=%s"
                    % (name, img.digest, urllib.parse.quote("application/vnd.example.sig", safe=""))),
               200)
    eq(r.h("OCI-Filters-Applied"), "artifactType", "OCI-Filters-Applied")
    eq([m["digest"] for m in r.json()["manifests"]], [sig.digest], "filtered referrers")
    # artifactType values usually contain '+', which must survive query decoding (%2B).
    plus, _ = push_artifact(reg, name, img.desc(), artifact_type="application/spdx+json")
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s?artifactType=application%%2Fspdx%%2Bjson"
                    % (name, img.digest)), 200)
    eq(r.h("OCI-Filters-Applied"), "artifactType", "OCI-Filters-Applied ('+' type)")
    eq([m["digest"] for m in r.json()["manifests"]], [plus.digest], "filter with '+' in the type")
    eq(r.json()["manifests"][0].get("artifactType"), "application/spdx+json", "artifactType")
    expect(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, plus.digest)), 202)
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s?artifactType=application/vnd.none"
                    % (name, img.digest)), 200)
    eq(r.h("OCI-Filters-Applied"), "artifactType", "OCI-Filters-Applied (no match)")
    eq(r.json()["manifests"], [], "filter without matches")
    # Referrers are per repository.
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (uniq("refother"), img.digest)), 200)
    eq(r.json()["manifests"], [], "referrers of another repository")
    # Tagging a referrer does not list it twice; deleting only the tag keeps it listed.
    expect_manifest_put(reg, name, "sig-tag", sig.body, sig.mt)
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (name, img.digest)), 200)
    eq(sorted(m["digest"] for m in r.json()["manifests"]), sorted([sig.digest, sbom.digest]),
       "referrers after tagging a referrer")
    expect(call(reg, "DELETE", "/v2/%s/manifests/sig-tag" % name), 202)
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (name, img.digest)), 200)
    eq(sorted(m["digest"] for m in r.json()["manifests"]), sorted([sig.digest, sbom.digest]),
       "referrers after deleting only the referrer's tag")
    # A referrer pushed by tag is listed too.
    bytag, _ = push_artifact(reg, name, img.desc(), artifact_type="application/vnd.example.att",
                             ref="att")
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (name, img.digest)), 200)
    eq(sorted(m["digest"] for m in r.json()["manifests"]),
       sorted([sig.digest, sbom.digest, bytag.digest]), "referrers incl. one pushed by tag")
    expect(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, bytag.digest)), 202)
    # Deleting a referrer removes it.
    expect(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, sig.digest)), 202)
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (name, img.digest)), 200)
    eq([m["digest"] for m in r.json()["manifests"]], [sbom.digest], "after deleting sig")
    eq(unrelated.digest not in [m["digest"] for m in r.json()["manifests"]], True, "unrelated")


@suite.test
def test_referrers_index_subject_and_sha512(ctx):
    reg = ctx.reg
    name = uniq("refidx")
    c = push_image(reg, name, None)
    idx = push_index(reg, name, "idx", [c])
    # An index can itself be a referrer (OCI 1.1: index with subject + artifactType).
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
           "artifactType": "application/vnd.example.bundle", "manifests": [c.desc()],
           "subject": idx.desc(), "annotations": {"k": "v"}}
    body = json.dumps(doc).encode()
    r = expect(put_manifest(reg, name, sha256(body), body, MT_OCI_INDEX), 201)
    eq(r.h("OCI-Subject"), idx.digest, "OCI-Subject of index referrer")
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (name, idx.digest)), 200)
    ms = r.json()["manifests"]
    eq(len(ms), 1, "one referrer")
    eq(ms[0].get("digest"), sha256(body), "digest")
    eq(ms[0].get("mediaType"), MT_OCI_INDEX, "mediaType")
    eq(ms[0].get("artifactType"), "application/vnd.example.bundle", "artifactType")
    eq(ms[0].get("annotations"), {"k": "v"}, "annotations")
    eq(ms[0].get("size"), len(body), "size")
    # sha512 subject digest in the referrers path is accepted.
    r = expect(call(reg, "GET", "/v2/%s/referrers/%s" % (name, sha512(b"s"))), 200)
    eq(r.json()["manifests"], [], "sha512 referrers")


# =============================================================================================
# Routing

@suite.test
def test_unknown_routes(ctx):
    reg = ctx.reg
    name = uniq("routes")
    push_image(reg, name, "x")
    cs = Cases()
    for p in ("/v2/%s/unknown" % name, "/v2/%s/blobs" % name, "/v2/%s/manifests/" % name,
              "/v2/%s" % name, "/v2/_catalog/extra", "/v2/%s/tags" % name, "/v2/%s/" % name,
              "/v2/%s/referrers" % name, "/v2/%s/blobs/" % name):
        with cs.case(p):
            expect_error(call(reg, "GET", p), 404, None)
    cs.done()


@suite.test
def test_wrong_method(ctx):
    reg = ctx.reg
    name = uniq("methods")
    img = push_image(reg, name, "x")
    d = push_blob(reg, name, b"blob")
    cases = [("PUT", "/v2/"), ("DELETE", "/v2/"), ("POST", "/v2/%s/manifests/x" % name),
             ("PATCH", "/v2/%s/manifests/x" % name), ("DELETE", "/v2/%s/tags/list" % name),
             ("POST", "/v2/%s/tags/list" % name), ("PUT", "/v2/%s/blobs/%s" % (name, d)),
             ("POST", "/v2/%s/blobs/%s" % (name, d)), ("PATCH", "/v2/%s/blobs/%s" % (name, d)),
             ("DELETE", "/v2/_catalog"), ("PUT", "/v2/%s/referrers/%s" % (name, img.digest)),
             ("GET", "/v2/%s/blobs/uploads/" % name)]
    cs = Cases()
    for method, path in cases:
        with cs.case(method + " " + path):
            r = call(reg, method, path, body=b"" if method in ("PUT", "POST", "PATCH") else None)
            expect_error(r, (405, 404), None)
    cs.done()
    assert_manifest(reg, name, "x", img.body, img.mt)


@suite.test
def test_keepalive_after_rejected_bodies(ctx):
    """Requests rejected before their body is used must still have the body consumed (or the
    connection closed): leftover bytes must never be parsed as the next request."""
    reg = ctx.reg
    name = uniq("kabody")
    push_blob(reg, name, b"seed")
    body = os.urandom(200 * 1024)
    loc, _ = start_upload(reg, name)
    cfg = push_blob(reg, name, EMPTY_JSON)
    missing = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
               "config": descriptor(MT_OCI_EMPTY, cfg, 2),
               "layers": [descriptor(MT_OCI_LAYER, sha256(b"absent"), 6)],
               "annotations": {"pad": "z" * 100000}}
    steps = [
        ("PATCH", loc, body, {"Content-Range": "5-%d" % (5 + len(body) - 1)}, 416),
        ("PATCH", "/v2/%s/blobs/uploads/%s" % (name, os.urandom(16).hex()), body, {}, 404),
        ("POST", "/v2/%s/blobs/uploads/?digest=%s" % (name, sha256(b"other")), body, {}, 400),
        ("PUT", "/v2/%s/manifests/%s" % (name, sha256(b"x")), body,
         {"Content-Type": MT_OCI_MANIFEST}, 400),
        ("PUT", "/v2/%s/manifests/m" % name, json.dumps(missing).encode(),
         {"Content-Type": MT_OCI_MANIFEST}, 400),
        ("PUT", "/v2/UPPER/manifests/m", body, {"Content-Type": MT_OCI_MANIFEST}, 400),
        ("POST", "/v2/%s/blobs/uploads/?digest=sha256:bad" % name, body, {}, 400),
    ]
    c = reg.connection()
    try:
        for method, path, b, h, want in steps:
            hh = {"Content-Type": "application/octet-stream"}
            hh.update(h)
            try:
                c.request(method, path, body=b, headers=hh)
                r = c.getresponse()
                r.read()
            except (ConnectionError, http.client.HTTPException) as e:
                # The server may close after an error; http.client does not retry on its own.
                raise TestFailure("%s %s: connection error %r (the server must answer before "
                                  "closing)" % (method, path[:60], e))
            eq(r.status, want, "%s %s" % (method, path[:60]))
            c.request("GET", "/v2/")
            r = c.getresponse()
            rb = r.read()
            eq((r.status, rb.strip()), (200, b"{}"),
               "GET /v2/ after a rejected %s %s on the same connection" % (method, path[:60]))
    finally:
        c.close()
    s = expect(call(reg, "GET", loc), 204)
    eq(s.h("Range"), None, "upload untouched by the rejected PATCH")


@suite.test
def test_manifest_repository_isolation(ctx):
    reg = ctx.reg
    a, b = uniq("misoa"), uniq("misob")
    cfg_data = b'{"iso":1}'
    layer = os.urandom(33)
    for n in (a, b):
        push_blob(reg, n, cfg_data)
        push_blob(reg, n, layer)
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
           "config": descriptor(MT_OCI_CONFIG, cfg_data), "layers": [descriptor(MT_OCI_LAYER, layer)]}
    body = odd_json(doc)
    d = sha256(body)
    expect_manifest_put(reg, a, "t", body, MT_OCI_MANIFEST)
    push_image(reg, b, "other")
    assert_manifest_absent(reg, b, d)
    assert_manifest_absent(reg, b, "t")
    expect_error(call(reg, "DELETE", "/v2/%s/manifests/%s" % (b, d)), 404, "MANIFEST_UNKNOWN")
    # Same bytes in b, then delete in a: b keeps it.
    expect_manifest_put(reg, b, "t", body, MT_OCI_MANIFEST)
    expect(call(reg, "DELETE", "/v2/%s/manifests/%s" % (a, d)), 202)
    assert_manifest_absent(reg, a, d)
    assert_manifest(reg, b, "t", body, MT_OCI_MANIFEST)
    assert_manifest(reg, b, d, body, MT_OCI_MANIFEST)
    tags, _ = tags_of(reg, b)
    eq(sorted(tags), ["other", "t"], "b's tags")


@suite.test
def test_blob_16mib_single_chunked_patch(ctx):
    """One PATCH streaming 16 MiB with chunked transfer-encoding (how Docker pushes layers)."""
    reg = ctx.reg
    name = uniq("big16")
    piece = os.urandom(1024 * 1024)
    pieces = [piece[i:] + piece[:i] for i in range(16)]
    whole = b"".join(pieces)
    d = sha256(whole)
    loc, _ = start_upload(reg, name)
    c = reg.connection(timeout=120)
    try:
        c.request("PATCH", loc, body=iter(pieces), encode_chunked=True,
                  headers={"Content-Type": "application/octet-stream",
                           "Transfer-Encoding": "chunked"})
        resp = c.getresponse()
        resp.read()
        eq(resp.status, 202, "16 MiB chunked PATCH")
        eq(resp.getheader("Range"), "0-%d" % (len(whole) - 1), "Range")
        loc = location_path(reg, loc, resp.getheader("Location"))
    finally:
        c.close()
    expect(call(reg, "PUT", add_query(loc, digest=d)), 201)
    r = expect(get_blob(reg, name, d), 200)
    check(r.body == whole, "16 MiB blob did not round-trip")
    r = expect(get_blob(reg, name, d, headers={"Range": "bytes=%d-%d" % (len(whole) - 10, len(whole) + 5)}), 206)
    eq(r.body, whole[-10:], "tail range")


@suite.test
def test_restart_keeps_everything(ctx):
    """Stop (SIGTERM, exit 0) and start again on the same data directory: blobs, manifests,
    tags, catalog and referrers are all still there."""
    reg = Registry(ctx.args.berth, kind=ctx.args.kind).start(delete_enabled=True)
    data_dir = reg.data_dir
    reg2 = None
    try:
        name = uniq("restart")
        data = os.urandom(5000)
        d = push_blob(reg, name, data)
        img = push_image(reg, name, "v1")
        expect_manifest_put(reg, name, "v2", img.body, img.mt)
        art, _ = push_artifact(reg, name, img.desc(), artifact_type="application/vnd.example.sig")
        gone = push_image(reg, name, "gone")
        expect(call(reg, "DELETE", "/v2/%s/manifests/%s" % (name, gone.digest)), 202)
        cs = Cases()
        rc = reg.stop()
        with cs.case("first run"):
            eq(rc, 0, "exit status on SIGTERM")
        ctx.extra_failures += ["(restart test, first run) " + e for e in reg.sanitizer_errors()]
        reg2 = Registry(ctx.args.berth, kind=ctx.args.kind).start(data_dir=data_dir,
                                                                  delete_enabled=True)
        assert_blob(reg2, name, d, data)
        assert_manifest(reg2, name, "v1", img.body, img.mt)
        assert_manifest(reg2, name, img.digest, img.body, img.mt)
        assert_manifest_absent(reg2, name, gone.digest)
        tags, _ = tags_of(reg2, name)
        eq(sorted(tags), ["v1", "v2"], "tags after restart")
        full = walk_pages(reg2, "/v2/_catalog?n=1000", "repositories", 1000)
        check(name in full, "%s missing from the catalog after restart" % name)
        r = expect(call(reg2, "GET", "/v2/%s/referrers/%s" % (name, img.digest)), 200)
        eq([m["digest"] for m in r.json()["manifests"]], [art.digest], "referrers after restart")
        # And it keeps working.
        push_image(reg2, name, "v3")
        cs.done()
    finally:
        reg.stop()
        if reg2 is not None:
            rc2 = reg2.stop()
            ctx.extra_failures += ["(restart test, second run) " + e
                                   for e in reg2.sanitizer_errors()]
            if rc2 != 0:
                ctx.extra_failures.append("restarted registry exited with %s on SIGTERM" % rc2)
        shutil.rmtree(data_dir, ignore_errors=True)


# =============================================================================================
# Concurrency

@suite.test
def test_concurrent_same_blob(ctx):
    reg = ctx.reg
    name = uniq("conc")
    data = os.urandom(1024 * 1024 + 17)
    d = sha256(data)
    barrier = threading.Barrier(2)
    results = [None, None]

    def worker(i):
        try:
            loc, _ = start_upload(reg, name)
            half = len(data) // 2
            r = expect(patch_chunk(reg, loc, data[:half], start=0), 202)
            loc = location_path(reg, loc, r.h("Location"))
            r = expect(patch_chunk(reg, loc, data[half:], start=half), 202)
            loc = location_path(reg, loc, r.h("Location"))
            barrier.wait(timeout=30)
            r = call(reg, "PUT", add_query(loc, digest=d))
            results[i] = (r.status, r.h("Docker-Content-Digest"))
        except Exception as e:  # noqa: BLE001
            results[i] = ("exception", repr(e))
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    eq(results, [(201, d), (201, d)], "both concurrent PUTs")
    assert_blob(reg, name, d, data)


@suite.test
def test_concurrent_patches_same_session(ctx):
    """Several clients race the same chunk into one session: exactly one wins, the others get
    a 4xx (416), and the session holds the chunk exactly once."""
    reg = ctx.reg
    name = uniq("concpatch")
    a = os.urandom(256 * 1024)
    b = os.urandom(1000)
    loc, _ = start_upload(reg, name)
    n = 6
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=30)
            r = patch_chunk(reg, loc, a, start=0)
            results[i] = (r.status, r.h("Location"))
        except Exception as e:  # noqa: BLE001
            results[i] = ("exception", repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    statuses = [r[0] for r in results]
    eq(statuses.count(202), 1, "number of winning PATCHes (%r)" % statuses)
    for st in statuses:
        check(st == 202 or (isinstance(st, int) and 400 <= st < 500),
              "loser status %r (all: %r)" % (st, statuses))
    win_loc = [r[1] for r in results if r[0] == 202][0]
    loc = location_path(reg, loc, win_loc)
    s = expect(call(reg, "GET", loc), 204)
    eq(s.h("Range"), "0-%d" % (len(a) - 1), "session size after the race")
    r = expect(patch_chunk(reg, loc, b, start=len(a)), 202)
    loc = location_path(reg, loc, r.h("Location"))
    expect(call(reg, "PUT", add_query(loc, digest=sha256(a + b))), 201)
    assert_blob(reg, name, sha256(a + b), a + b)


@suite.test
def test_concurrent_tag_pushes(ctx):
    reg = ctx.reg
    name = uniq("conctags")
    img = push_image(reg, name, None)
    errors = []
    n = 12

    def worker(i):
        try:
            for k in range(3):
                r = put_manifest(reg, name, "t%02d-%d" % (i, k), img.body, img.mt)
                if r.status != 201:
                    errors.append((i, k, r.status, r.body[:200]))
        except Exception as e:  # noqa: BLE001
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    eq(errors, [], "errors during concurrent tag pushes")
    tags, _ = tags_of(reg, name)
    eq(sorted(tags), sorted("t%02d-%d" % (i, k) for i in range(n) for k in range(3)),
       "all concurrently pushed tags present")


if __name__ == "__main__":
    suite.main(setup=setup, teardown=teardown)
