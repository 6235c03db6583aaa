#!/usr/bin/env python3
"""test_client.py — berth's own client (push, pull, cp, tag, ls, inspect, digest, rm, login,
logout) against berth and Distribution (docker-registry), digests compared with what skopeo
sees. Images are built offline with umoci (test_clients.build_images). In-process helpers: a
fake registry serving corrupt blobs (exit code 6), a Bearer token server + proxy in front of
berth, a proxy that drops a PATCH mid-body once (the client must resume from the upload's
Range), and Distribution with htpasswd Basic auth.

    python3 tests/e2e/test_client.py --berth build/release/berth

The client binary under test is --berth; credentials go to a temporary DOCKER_CONFIG/HOME.
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)
import base64
import http.client
import http.server
import json
import os
import shutil
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import warnings

with warnings.catch_warnings():  # crypt (bcrypt via libcrypt) for htpasswd; gone in 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, Suite, free_port, sha256  # noqa: E402
from test_clients import (ACCEPT_ALL, OCI_INDEX, OCI_MANIFEST, assert_registry_has_tree,  # noqa: E402
                          build_images, describe, eq, head_manifest, index_entry, run)

suite = Suite("e2e-client")


def berth(ctx, *a, check=None, stdin=None, timeout=300):
    """Runs the client; returns (rc, stdout bytes, stderr str). check=rc asserts the code."""
    p = subprocess.run([ctx["args"].berth] + list(a), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=ctx["env"], timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    if "AddressSanitizer" in err or "runtime error:" in err:
        raise AssertionError("sanitizer report from client %s:\n%s" % (a, err[-3000:]))
    if check is not None and p.returncode != check:
        raise AssertionError("berth %s: rc=%d, want %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(a), p.returncode, check, p.stdout.decode("utf-8", "replace")[-2000:],
            err[-2000:]))
    return p.returncode, p.stdout, err


def ok(ctx, *a, **kw):
    return berth(ctx, *a, check=0, **kw)[1]


def bjson(ctx, *a):
    return json.loads(ok(ctx, *(list(a[:1]) + ["--json"] + list(a[1:]))))


def ref(reg, rest):
    return "127.0.0.1:%d/%s" % (reg.port, rest)


def need(ctx, step):
    if step in ctx["ok"]:
        return
    if step in ctx["tried"]:
        raise AssertionError("skipped: depends on %s, which failed" % step)
    ctx["tried"].add(step)
    {"build": test_build_layout, "push": test_push_multiplatform}[step](ctx)


def need_dist(ctx):
    if not ctx.get("dist"):
        raise AssertionError("docker-registry not installed (scripts/deps.sh test)")
    return ctx["dist"]


# ---------------------------------------------------------------------------------------------
# In-process HTTP helpers


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(handler_cls, **attrs):
    h = type("H", (handler_cls,), attrs)
    srv = ThreadingServer(("127.0.0.1", 0), h)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class Proxy(Quiet):
    """Forwards every request to target_port. require_token: demand "Bearer <token>" (else 401
    with a challenge naming token_url); serves GET /token itself. drop_patch: the first PATCH
    larger than 1 MiB is forwarded only half-way, then both connections are cut."""
    target_port = 0
    require_token = None
    token_url = ""
    drop_patch = None   # dict(done=False)
    seen = None         # list of (method, path, content-range, status)
    token_auth = None   # list of Authorization headers seen on /token

    def handle_any(self):
        if self.path.startswith("/token"):
            self.token_auth.append(self.headers.get("Authorization"))
            return self.reply(200, json.dumps({"token": self.require_token}).encode(),
                              {"Content-Type": "application/json"})
        if self.require_token and self.headers.get("Authorization") != "Bearer " + self.require_token:
            self.seen.append((self.command, self.path, None, 401))
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}', {
                "WWW-Authenticate": 'Bearer realm="%s",service="test-registry"' % self.token_url,
                "Content-Type": "application/json"})
        n = int(self.headers.get("Content-Length") or 0)
        cr = self.headers.get("Content-Range")
        if (self.command == "PATCH" and self.drop_patch is not None and not self.drop_patch["done"]
                and n > 1024 * 1024):
            self.drop_patch["done"] = True
            half = self.rfile.read(n // 2)
            s = socket.create_connection(("127.0.0.1", self.target_port))
            head = "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (self.path, n)
            for k in ("Content-Type", "Content-Range"):
                if self.headers.get(k):
                    head += "%s: %s\r\n" % (k, self.headers.get(k))
            s.sendall(head.encode() + b"\r\n" + half)
            import time
            time.sleep(0.5)
            s.close()
            self.seen.append((self.command, self.path, cr, "dropped"))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = self.rfile.read(n) if n else None
        c = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=60)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "authorization", "connection", "content-length")}
        if body is not None or self.command in ("PUT", "PATCH", "POST"):
            hdrs["Content-Length"] = str(len(body or b""))
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        self.seen.append((self.command, self.path, cr, r.status))
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) if self.command != "HEAD"
                                               else r.getheader("Content-Length") or 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class BadBlobRegistry(Quiet):
    """Serves one image whose layer bytes do not match the layer digest."""
    manifest = b""
    blobs = {}

    def do_GET(self):
        if self.path == "/v2/":
            return self.reply(200, b"{}")
        if self.path == "/v2/bad/img/manifests/1":
            return self.reply(200, self.manifest, {"Content-Type": OCI_MANIFEST,
                                                   "Docker-Content-Digest": sha256(self.manifest)})
        for d, data in self.blobs.items():
            if self.path == "/v2/bad/img/blobs/" + d:
                return self.reply(200, data, {"Content-Type": "application/octet-stream"})
        self.reply(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')

    do_HEAD = do_GET


# ---------------------------------------------------------------------------------------------
# Setup / teardown


def setup(args):
    for tool in ("skopeo", "umoci"):
        if not shutil.which(tool):
            raise SystemExit("e2e-client: %s not installed (run scripts/deps.sh test)" % tool)
    work = tempfile.mkdtemp(prefix="berth-e2e-client-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    env = dict(os.environ, HOME=home, DOCKER_CONFIG=os.path.join(work, "docker"),
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    ctx = {"args": args, "work": work, "env": env, "ok": set(), "tried": set(), "servers": []}
    ctx["reg"] = Registry(args.berth).start(delete_enabled=True)
    if shutil.which("docker-registry"):
        ctx["dist"] = Registry("docker-registry", kind="distribution").start()
    return ctx


def teardown(ctx):
    problems = []
    for s in ctx["servers"]:
        s.shutdown()
    for k in ("reg", "dist", "dist_auth"):
        r = ctx.get(k)
        if not r:
            continue
        rc = r.stop()
        if k == "reg" and rc not in (0, None):
            problems.append("berth exited with status %s on SIGTERM" % rc)
        if k == "reg":
            problems += ["sanitizer: " + l for l in r.sanitizer_errors()]
            if problems:
                print("---- server log (tail) ----\n" + r.log()[-4000:])
        r.cleanup()
    shutil.rmtree(ctx["work"], ignore_errors=True)
    return problems


# ---------------------------------------------------------------------------------------------
# Tests


@suite.test
def test_build_layout(ctx):
    ctx["tried"].add("build")
    ctx["info"] = build_images(ctx["work"])
    ctx["ok"].add("build")


@suite.test
def test_push_multiplatform(ctx):
    ctx["tried"].add("push")
    need(ctx, "build")
    info, reg = ctx["info"], ctx["reg"]
    out = bjson(ctx, "push", "--insecure", info["layout"] + ":multi", ref(reg, "c/multi:1"))
    eq(out["digest"], info["index"], "pushed index digest")
    eq(out["manifests"], 3, "index + 2 manifests pushed")
    st, h = head_manifest(reg, "c/multi", "1")
    eq((st, h.get("docker-content-digest"), h.get("content-type")), (200, info["index"], OCI_INDEX),
       "HEAD after push")
    assert_registry_has_tree(reg, "c/multi", info["tree"])
    raw = run(["skopeo", "inspect", "--raw", "--tls-verify=false",
               "docker://" + ref(reg, "c/multi:1")]).stdout
    eq(raw, info["index_raw"], "skopeo inspect --raw of the pushed index")
    # Again: every blob is found by HEAD and skipped.
    again = bjson(ctx, "push", "--insecure", info["layout"] + ":multi", ref(reg, "c/multi:1"))
    eq(again["blobsTransferred"], 0, "second push uploads nothing")
    eq(again["blobsExisting"], again["blobs"], "second push: every blob exists")
    # A single-platform image by name; the tag picks the layout entry when no :NAME is given.
    ok(ctx, "push", "--insecure", "-q", info["layout"] + ":arm64", ref(reg, "c/single:arm64"))
    eq(head_manifest(reg, "c/single", "arm64")[1].get("docker-content-digest"),
       info["manifest"]["arm64"], "single-platform push")
    ctx["ok"].add("push")


@suite.test
def test_pull_whole_index_matches_skopeo(ctx):
    need(ctx, "push")
    info, reg = ctx["info"], ctx["reg"]
    out = os.path.join(ctx["work"], "pull-all")
    res = bjson(ctx, "pull", "--insecure", ref(reg, "c/multi:1"), out + ":multi")
    eq(res["digest"], info["index"], "pull result digest")
    e = index_entry(out, "multi")
    eq((e["digest"], e["mediaType"]), (info["index"], OCI_INDEX), "index.json entry")
    eq(describe(out, e["digest"], e["mediaType"]), info["tree"], "pulled tree")
    with open(os.path.join(out, "oci-layout")) as f:
        eq(json.load(f), {"imageLayoutVersion": "1.0.0"}, "oci-layout file")
    # skopeo reads our layout, and pulls the same digests itself.
    sk = os.path.join(ctx["work"], "pull-skopeo")
    run(["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
         "docker://" + ref(reg, "c/multi:1"), "oci:%s:multi" % sk])
    eq(describe(sk, index_entry(sk, "multi")["digest"], OCI_INDEX), info["tree"], "skopeo's pull")
    raw = run(["skopeo", "inspect", "--raw", "oci:%s:multi" % out]).stdout
    eq(sha256(raw), info["index"], "skopeo inspect --raw of our layout")
    # Pulling again downloads nothing.
    res = bjson(ctx, "pull", "--insecure", ref(reg, "c/multi:1"), out + ":multi")
    eq(res["blobsTransferred"], 0, "second pull downloads nothing")


@suite.test
def test_pull_platform(ctx):
    need(ctx, "push")
    info, reg = ctx["info"], ctx["reg"]
    for arch in ("arm64", "amd64"):
        out = os.path.join(ctx["work"], "pull-" + arch)
        ok(ctx, "pull", "--insecure", "-q", "--platform", "linux/" + arch, ref(reg, "c/multi:1"),
           out + ":img")
        e = index_entry(out, "img")
        eq(e["digest"], info["manifest"][arch], "%s manifest picked from the index" % arch)
        eq(e.get("platform"), {"architecture": arch, "os": "linux"}, "index.json platform")
        want = [m for m in info["tree"]["manifests"] if m["digest"] == e["digest"]][0]
        eq(describe(out, e["digest"], e["mediaType"]),
           {k: v for k, v in want.items() if k != "platform"}, "%s tree" % arch)
        blobs = os.listdir(os.path.join(out, "blobs", "sha256"))
        eq(len(blobs), 5, "only that platform's blobs (manifest, config, 3 layers)")
    rc, _, err = berth(ctx, "pull", "--insecure", "--platform", "linux/s390x",
                       ref(reg, "c/multi:1"), os.path.join(ctx["work"], "pull-none"))
    eq(rc, 3, "no such platform: exit 3 (%s)" % err.strip())


@suite.test
def test_cp_same_registry_mounts(ctx):
    need(ctx, "push")
    info, reg = ctx["info"], ctx["reg"]
    before = len(reg.log().splitlines())
    res = bjson(ctx, "cp", "--insecure", ref(reg, "c/multi:1"), ref(reg, "c/mounted:1"))
    eq(res["digest"], info["index"], "copied digest")
    eq(res["blobsTransferred"], 0, "no blob bytes moved")
    if res["blobsMounted"] < 1:
        raise AssertionError("no blob mounted: %r" % res)
    eq(res["blobsMounted"] + res["blobsExisting"], res["blobs"], "every blob mounted or present")
    assert_registry_has_tree(reg, "c/mounted", info["tree"])
    log = reg.log().splitlines()[before:]
    posts = [l for l in log if " POST /v2/c/mounted/blobs/uploads" in l]
    patches = [l for l in log if " PATCH /v2/c/mounted/" in l]
    if not posts or not all(" 201 " in l for l in posts):
        raise AssertionError("mount POSTs should all be 201:\n" + "\n".join(posts or log[-20:]))
    eq(patches, [], "no PATCH into the mounted repository")


@suite.test
def test_cp_berth_distribution_roundtrip(ctx):
    need(ctx, "push")
    dist = need_dist(ctx)
    info, reg = ctx["info"], ctx["reg"]
    res = bjson(ctx, "cp", "--insecure", ref(reg, "c/multi:1"), ref(dist, "d/multi:1"))
    eq(res["digest"], info["index"], "digest on Distribution")
    eq(res["blobsMounted"], 0, "no mounts across registries")
    assert_registry_has_tree(dist, "d/multi", info["tree"])
    raw = run(["skopeo", "inspect", "--raw", "--tls-verify=false",
               "docker://" + ref(dist, "d/multi:1")]).stdout
    eq(raw, info["index_raw"], "index bytes on Distribution")
    res = bjson(ctx, "cp", "--insecure", ref(dist, "d/multi:1"), ref(reg, "c/back:1"))
    eq(res["digest"], info["index"], "digest back on berth")
    assert_registry_has_tree(reg, "c/back", info["tree"])
    # by digest, a single manifest, Distribution → Distribution other repo (mount there too)
    d = info["manifest"]["amd64"]
    res = bjson(ctx, "cp", "--insecure", ref(dist, "d/multi@" + d), ref(dist, "d/amd:x"))
    eq(res["digest"], d, "copy by digest")
    eq(res["blobsTransferred"], 0, "Distribution mounted within itself")


@suite.test
def test_tag_same_and_other_repo(ctx):
    need(ctx, "push")
    info, reg = ctx["info"], ctx["reg"]
    ok(ctx, "tag", "--insecure", "-q", ref(reg, "c/multi:1"), ref(reg, "c/multi:v2"))
    eq(head_manifest(reg, "c/multi", "v2")[1].get("docker-content-digest"), info["index"],
       "tag in the same repository")
    res = bjson(ctx, "tag", "--insecure", ref(reg, "c/multi:1"), ref(reg, "c/tagged:t"))
    eq(res["blobsTransferred"], 0, "tag into another repository moves no layer bytes")
    assert_registry_has_tree(reg, "c/tagged", info["tree"])
    rc, _, err = berth(ctx, "tag", "--insecure", ref(reg, "c/multi:1"), "127.0.0.1:1/x:y")
    eq(rc, 2, "tag across registries is a usage error (%s)" % err.strip())


def check_ls(ctx, r, repo):
    want = sorted("t%02d" % i for i in range(7))
    for t in want:
        ok(ctx, "tag", "--insecure", "-q", ref(r, "c/single:arm64") if r is ctx["reg"]
           else ref(r, "d/multi:1"), ref(r, "%s:%s" % (repo, t)))
    got = ok(ctx, "ls", "--insecure", "--all", "--page-size", "2", ref(r, repo)).decode().split()
    # berth lists in byte order; Distribution 2.8's pages are in storage order: same set, no
    # duplicates, nothing missing.
    eq(got if r is ctx["reg"] else sorted(got), want, "ls --all with 2 per page")
    if r is ctx["reg"]:  # Distribution 2.8 ignores n on tags/list (paginates from 3.0 on)
        eq(len(ok(ctx, "ls", "--insecure", "--page-size", "2", ref(r, repo)).decode().split()), 2,
           "ls without --all: one page")
    j = bjson(ctx, "ls", "--insecure", "--all", ref(r, repo))
    eq(sorted(j["tags"]), want, "ls --json")


@suite.test
def test_ls_pagination_berth(ctx):
    need(ctx, "push")
    check_ls(ctx, ctx["reg"], "c/many")


@suite.test
def test_ls_pagination_distribution(ctx):
    need_dist(ctx)
    need(ctx, "push")
    if not head_manifest(ctx["dist"], "d/multi", "1")[0] == 200:
        ok(ctx, "cp", "--insecure", "-q", ref(ctx["reg"], "c/multi:1"), ref(ctx["dist"], "d/multi:1"))
    check_ls(ctx, ctx["dist"], "d/many")


@suite.test
def test_inspect_and_digest(ctx):
    need(ctx, "push")
    info, reg = ctx["info"], ctx["reg"]
    raw = ok(ctx, "inspect", "--insecure", "--raw", ref(reg, "c/multi:1"))
    eq(raw, info["index_raw"], "inspect --raw bytes")
    j = bjson(ctx, "inspect", "--insecure", ref(reg, "c/multi:1"))
    eq([m["platform"] for m in j["manifests"]], ["linux/amd64", "linux/arm64"], "index platforms")
    for arch in ("amd64", "arm64"):
        j = bjson(ctx, "inspect", "--insecure", "--platform", "linux/" + arch, ref(reg, "c/multi:1"))
        eq(j["digest"], info["manifest"][arch], "inspect --platform digest")
        eq(j["architecture"], arch, "config architecture")
        eq(j["labels"]["org.berth.arch"], arch, "label")
        eq(j["labels"]["org.berth.test"], info["token"], "label")
        eq([l["digest"] for l in j["layers"]], info["layers"][arch], "layers")
        eq(j["totalSize"], sum(l["size"] for l in j["layers"]), "total size")
        sk = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "--override-arch", arch,
                             "docker://" + ref(reg, "c/multi:1")]).stdout)
        eq(j["layers"] and [l["digest"] for l in j["layers"]], sk["Layers"], "skopeo agrees")
    text = ok(ctx, "inspect", "--insecure", "--platform", "linux/amd64", ref(reg, "c/multi:1")).decode()
    if "org.berth.arch=amd64" not in text or info["layers"]["amd64"][1] not in text:
        raise AssertionError("human inspect output lacks labels/layers:\n" + text)
    eq(ok(ctx, "digest", "--insecure", ref(reg, "c/multi:1")).decode().strip(), info["index"],
       "digest")
    eq(bjson(ctx, "digest", "--insecure", ref(reg, "c/multi:1"))["digest"], info["index"],
       "digest --json")
    d = info["manifest"]["arm64"]
    eq(ok(ctx, "digest", "--insecure", ref(reg, "c/multi@" + d)).decode().strip(), d,
       "digest of a by-digest reference")


@suite.test
def test_rm(ctx):
    need(ctx, "push")
    reg = ctx["reg"]
    ok(ctx, "cp", "--insecure", "-q", ref(reg, "c/single:arm64"), ref(reg, "c/del:1"))
    d = ok(ctx, "digest", "--insecure", ref(reg, "c/del:1")).decode().strip()
    eq(ok(ctx, "rm", "--insecure", "-q", ref(reg, "c/del:1")).decode().strip(), d, "rm prints digest")
    eq(head_manifest(reg, "c/del", d)[0], 404, "manifest gone")
    rc, _, err = berth(ctx, "digest", "--insecure", ref(reg, "c/del:1"))
    eq(rc, 3, "digest of a deleted tag: exit 3 (%s)" % err.strip())
    if not err.startswith("berth: ") or "\n" in err.strip():
        raise AssertionError("error should be one 'berth: ...' line: %r" % err)


@suite.test
def test_exit_codes(ctx):
    need(ctx, "push")
    reg, work = ctx["reg"], ctx["work"]
    cases = [
        (3, ["inspect", "--insecure", ref(reg, "c/multi:nope")]),
        (3, ["ls", "--insecure", ref(reg, "c/no-such-repo")]),
        (3, ["pull", "--insecure", ref(reg, "c/no-such-repo:1"), os.path.join(work, "x3")]),
        (5, ["inspect", "--insecure", "127.0.0.1:%d/a/b:1" % free_port()]),
        (5, ["digest", "--insecure", "no-such-host.invalid/a/b:1"]),
        (5, ["digest", "127.0.0.1:%d/a/b:1" % reg.port]),  # TLS against a plain-HTTP registry
        (2, ["inspect", "--insecure", "Not/Valid:ref!"]),
        (2, ["pull"]),
        (2, ["push", "--bogus", "a", "b"]),
        (2, ["push", "--insecure", os.path.join(work, "not-a-layout"), ref(reg, "c/x:1")]),
    ]
    for want, a in cases:
        rc, _, err = berth(ctx, *a)
        eq(rc, want, "exit code of berth %s (stderr %r)" % (" ".join(a), err.strip()))
        if want != 2 and not err.startswith("berth: "):
            raise AssertionError("stderr should start with 'berth: ': %r" % err)


@suite.test
def test_digest_mismatch_exit_6(ctx):
    need(ctx, "build")
    cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = os.urandom(200000)
    m = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": sha256(cfg), "size": len(cfg)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                "digest": sha256(layer), "size": len(layer)}]}).encode()
    bad = bytearray(layer)
    bad[1000] ^= 0xff
    srv = serve(BadBlobRegistry, manifest=m, blobs={sha256(cfg): cfg, sha256(layer): bytes(bad)})
    ctx["servers"].append(srv)
    out = os.path.join(ctx["work"], "pull-bad")
    rc, _, err = berth(ctx, "pull", "--insecure", "127.0.0.1:%d/bad/img:1" % srv.server_address[1], out)
    eq(rc, 6, "corrupt layer: exit 6 (%s)" % err.strip())
    if sha256(layer) not in err:
        raise AssertionError("error should name the blob: %r" % err)
    left = [f for f in os.listdir(os.path.join(out, "blobs")) if f != "sha256"]
    left += os.listdir(os.path.join(out, "blobs", "sha256"))
    if sha256(layer).split(":")[1] in left or any(f.startswith(".tmp") for f in left):
        raise AssertionError("partial/corrupt blob left behind: %r" % left)
    # Copying the corrupt image is refused too, before the destination gets a manifest.
    rc, _, err = berth(ctx, "cp", "--insecure", "127.0.0.1:%d/bad/img:1" % srv.server_address[1],
                       ref(ctx["reg"], "c/bad:1"))
    eq(rc, 6, "cp of a corrupt layer: exit 6 (%s)" % err.strip())
    eq(head_manifest(ctx["reg"], "c/bad", "1")[0], 404, "no manifest written")


@suite.test
def test_resume_interrupted_upload(ctx):
    need(ctx, "push")
    info, reg = ctx["info"], ctx["reg"]
    state = {"done": False}
    seen = []
    srv = serve(Proxy, target_port=reg.port, drop_patch=state, seen=seen, token_auth=[])
    ctx["servers"].append(srv)
    dst = "127.0.0.1:%d/c/resumed:1" % srv.server_address[1]
    # cp streams the source through the PATCH: the retry resumes the source with a Range GET.
    res = bjson(ctx, "cp", "--insecure", ref(reg, "c/single:arm64"), dst)
    eq(res["digest"], info["manifest"]["arm64"], "digest after the resumed copy")
    if not state["done"]:
        raise AssertionError("the proxy never cut a PATCH: %r" % seen)
    arm = [m for m in info["tree"]["manifests"] if m["digest"] == info["manifest"]["arm64"]][0]
    assert_registry_has_tree(reg, "c/resumed", {k: v for k, v in arm.items() if k != "platform"})
    patches = [s for s in seen if s[0] == "PATCH"]
    dropped = [i for i, s in enumerate(patches) if s[3] == "dropped"]
    later = patches[dropped[0] + 1:]
    resumed = [s for s in later if s[2] and not s[2].startswith("0-")]
    status = [s for s in seen if s[0] == "GET" and "/blobs/uploads/" in s[1]]
    if not status:
        raise AssertionError("no GET on the upload URL to learn the offset: %r" % seen)
    if not resumed:
        raise AssertionError("no PATCH continued from a non-zero offset: %r" % patches)
    # push (file source) through the same cut
    state["done"] = False
    del seen[:]
    out = bjson(ctx, "push", "--insecure", info["layout"] + ":amd64",
                "127.0.0.1:%d/c/resumed2:1" % srv.server_address[1])
    eq(out["digest"], info["manifest"]["amd64"], "digest after the resumed push")
    if not state["done"]:
        raise AssertionError("the proxy never cut a push PATCH")


@suite.test
def test_bearer_token_auth(ctx):
    need(ctx, "push")
    info, reg = ctx["info"], ctx["reg"]
    seen, token_auth = [], []
    srv = serve(Proxy, target_port=reg.port, require_token="tok-" + os.urandom(4).hex(),
                seen=seen, token_auth=token_auth)
    srv.RequestHandlerClass.token_url = "http://127.0.0.1:%d/token" % srv.server_address[1]
    ctx["servers"].append(srv)
    host = "127.0.0.1:%d" % srv.server_address[1]
    res = bjson(ctx, "cp", "--insecure", ref(reg, "c/multi:1"), host + "/c/bearer:1")
    eq(res["digest"], info["index"], "copy through the token-protected registry")
    eq(bjson(ctx, "digest", "--insecure", host + "/c/bearer:1")["digest"], info["index"], "digest")
    if not token_auth:
        raise AssertionError("no token requested")
    eq(token_auth[0], None, "anonymous token request when no credentials are stored")
    # tokens are cached: far fewer 401s than requests
    n401 = len([s for s in seen if s[3] == 401])
    if n401 > 8 or n401 > len(seen) // 4:
        raise AssertionError("%d 401s over %d requests: tokens not reused" % (n401, len(seen)))
    # with stored credentials the token request carries them (Basic)
    ok(ctx, "login", "--insecure", "-u", "tokuser", "--password-stdin", host, stdin=b"tokpass\n")
    del token_auth[:]
    ok(ctx, "digest", "--insecure", host + "/c/bearer:1")
    eq(token_auth[-1], "Basic " + base64.b64encode(b"tokuser:tokpass").decode(),
       "token request with the stored credentials")
    ok(ctx, "logout", host)


@suite.test
def test_basic_auth_distribution_login_push_pull(ctx):
    need(ctx, "build")
    need_dist(ctx)
    info, work = ctx["info"], ctx["work"]
    d = os.path.join(work, "dist-auth")
    os.makedirs(d)
    with open(os.path.join(d, "htpasswd"), "w") as f:
        f.write("alice:%s\n" % crypt.crypt("wonderland", crypt.mksalt(crypt.METHOD_BLOWFISH)))
    cfg = os.path.join(d, "config.yml")
    port = free_port()
    with open(cfg, "w") as f:
        f.write("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/store\n"
                "  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%d\n"
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: %s/htpasswd\n"
                % (d, port, d))
    r = Registry("docker-registry", kind="distribution")
    ctx["dist_auth"] = r
    r.start(config=cfg, port=port, data_dir=d)
    host = "127.0.0.1:%d" % port
    conf = os.path.join(ctx["env"]["DOCKER_CONFIG"], "config.json")
    rc, _, err = berth(ctx, "push", "--insecure", info["layout"] + ":amd64", host + "/a/img:1")
    eq(rc, 4, "anonymous push: exit 4 (%s)" % err.strip())
    rc, _, err = berth(ctx, "login", "--insecure", "-u", "alice", "--password-stdin", host,
                       stdin=b"wrong\n")
    eq(rc, 4, "wrong password: exit 4 (%s)" % err.strip())
    if os.path.exists(conf):
        with open(conf) as f:
            if host in json.load(f).get("auths", {}):
                raise AssertionError("wrong password was saved")
    # an existing unrelated key must survive login/logout
    os.makedirs(os.path.dirname(conf), exist_ok=True)
    with open(conf, "w") as f:
        json.dump({"auths": {}, "psFormat": "table {{.ID}}"}, f)
    ok(ctx, "login", "--insecure", "-u", "alice", "--password-stdin", host, stdin=b"wonderland\n")
    eq(stat.S_IMODE(os.stat(conf).st_mode), 0o600, "config.json mode")
    with open(conf) as f:
        c = json.load(f)
    eq(c["auths"][host], {"auth": base64.b64encode(b"alice:wonderland").decode()}, "auths entry")
    eq(c.get("psFormat"), "table {{.ID}}", "unknown keys kept")
    out = bjson(ctx, "push", "--insecure", info["layout"] + ":amd64", host + "/a/img:1")
    eq(out["digest"], info["manifest"]["amd64"], "authenticated push")
    raw = run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", "alice:wonderland",
               "docker://%s/a/img:1" % host]).stdout
    eq(sha256(raw), info["manifest"]["amd64"], "skopeo sees the pushed manifest")
    p = os.path.join(work, "pull-auth")
    ok(ctx, "pull", "--insecure", "-q", host + "/a/img:1", p)
    eq(index_entry(p, "1")["digest"], info["manifest"]["amd64"], "authenticated pull")
    ok(ctx, "logout", host)
    with open(conf) as f:
        c = json.load(f)
    eq(host in c.get("auths", {}), False, "logout removed the entry")
    eq(c.get("psFormat"), "table {{.ID}}", "unknown keys kept by logout")
    rc, _, _ = berth(ctx, "digest", "--insecure", host + "/a/img:1")
    eq(rc, 4, "after logout: exit 4")


if __name__ == "__main__":
    suite.main(setup=setup, teardown=teardown)
