#!/usr/bin/env python3
"""test_faultproxy.py — the mirror tests' infrastructure, proven against real upstreams: the
fault proxy (tests/e2e/faultproxy.py) in front of a Docker Hub lookalike (berth with its token
issuer, anonymous pull) and Distribution 2.8 with htpasswd (tests/e2e/upstreams.py). Pass-through
of pulls and pushes with the token flow and Basic auth through the proxy, keep-alive, streamed
big bodies, and each fault mode: refuse, hang, status, ratelimit, unauthorized, delete_tag,
corrupt_blob, slow, delay; counters; no thread or socket left behind.

    python3 tests/e2e/test_faultproxy.py --berth build/release/berth [-k NAME]
"""
import contextlib
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, sha256  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
import upstreams as U  # noqa: E402

suite = Suite("faultproxy")


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def error_code(body):
    return json.loads(body)["errors"][0]["code"]


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def setup(args):
    if not os.path.exists(U.DISTRIBUTION):
        raise SystemExit("faultproxy: %s not installed (scripts/deps.sh test)" % U.DISTRIBUTION)
    work = tempfile.mkdtemp(prefix="berth-e2e-faultproxy-")
    ctx = {"work": work, "ups": []}
    try:
        hub = U.start_hub_like(args.berth, work)
        ctx["ups"].append(hub)
        dist = U.start_distribution_htpasswd(work, "alice", "alice-secret")
        ctx["ups"].append(dist)
        for up in (hub, dist):
            up.content = {"hello": up.seed("library/hello", "1"),
                          "multi": up.seed_index("library/multi", "1"),
                          "slow": up.seed("library/slow", "1",
                                          U.make_image(n_layers=1, layer_size=400 * 1024)),
                          "big": up.seed_big("library/big", "1", 4)}
    except BaseException:
        teardown(ctx)
        raise
    ctx["hub"], ctx["dist"] = hub, dist
    ctx["fds"], ctx["threads"] = open_fds(), threading.active_count()
    return ctx


def teardown(ctx):
    problems = []
    if "fds" in ctx:
        time.sleep(0.1)
        if threading.active_count() != ctx["threads"]:
            problems.append("threads left: %r" % [t.name for t in threading.enumerate()])
        if open_fds() != ctx["fds"]:
            problems.append("file descriptors: %d at the start, %d at the end"
                            % (ctx["fds"], open_fds()))
    for up in ctx["ups"]:
        up.stop()
    shutil.rmtree(ctx["work"], ignore_errors=True)
    return problems


@contextlib.contextmanager
def proxied(up, anonymous=None):
    """A fresh proxy in front of up, and a client through it: anonymous for the hub lookalike
    (anonymous pull), the push credentials for Distribution (Basic)."""
    p = FaultProxy(up.host, up.port).start()
    try:
        yield p, up.client(anonymous=(up.kind == "hub") if anonymous is None else anonymous,
                           port=p.port)
    finally:
        p.stop()


def both(ctx):
    return (ctx["hub"], ctx["dist"])


def raw_request(port, method, path, headers=None, timeout=5):
    """One request on a fresh connection, no auth dance."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Pass-through


@suite.test
def test_hub_like_token_flow_through_proxy(ctx):
    hub = ctx["hub"]
    with proxied(hub) as (p, c):
        st, h, _ = raw_request(p.port, "GET", "/v2/")
        eq(st, 401, "anonymous GET /v2/")
        eq(h["www-authenticate"], 'Bearer realm="%s",service="registry.docker.io"'
           % p.url("/auth/token"), "challenge with the realm rewritten to the proxy")
        direct = raw_request(hub.port, "GET", "/v2/")[1]["www-authenticate"]
        check(hub.url("/auth/token") in direct, "the upstream's own realm: %s" % direct)
        got = U.pull(c, "library/hello", "1")
        img = hub.content["hello"]
        eq(set(got), {img.digest, img.config_digest, *img.layer_digests}, "pulled digests")
        got = U.pull(c, "library/multi", "1")
        eq(len(got), 1 + 2 * 4, "index + 2 x (manifest, config, 2 layers)")
        check(c.token_fetches and all(r == p.url("/auth/token") for r in c.token_fetches),
              "token fetched through the proxy: %r" % c.token_fetches)
        check(p.count("GET", "/auth/token") >= 2, "token requests counted: %r" % p.requests)
        # Anonymous may not push; the pusher may, and the token flow for push also goes through.
        pc = hub.client(port=p.port)
        U.push_image(pc, "library/pushed", "1", U.make_image())
        check(p.count("GET", "scope=repository%3Alibrary%2Fpushed%3Apull%2Cpush") == 1,
              "push token through the proxy: %r" % p.requests[-8:])
        eq(len(U.pull(hub.client(anonymous=True), "library/pushed", "1")), 4, "pushed")


@suite.test
def test_distribution_basic_through_proxy(ctx):
    dist = ctx["dist"]
    with proxied(dist) as (p, c):
        st, h, _ = raw_request(p.port, "GET", "/v2/")
        eq((st, h.get("www-authenticate")), (401, 'Basic realm="distribution"'), "challenge")
        eq(len(U.pull(c, "library/hello", "1")), 4, "pull of manifest, config, 2 layers")
        eq(len(U.pull(c, "library/multi", "1")), 9, "pull of the index")
        # Distribution's Location is absolute, built from Host: the proxy rewrites it.
        st, h, _ = c.request("POST", "/v2/library/loc/blobs/uploads/")
        eq(st, 202, "POST upload")
        check(h["location"].startswith(p.url("/v2/library/loc/blobs/uploads/")),
              "Location rewritten to the proxy: %s" % h["location"])
        d = U.push_image(c, "library/loc", "1", U.make_image())
        eq(sha256(dist.client().get_manifest("library/loc", "1")[2]), d, "pushed via the proxy")
        st, _, body = c.get_manifest("library/hello", "nope")
        eq((st, error_code(body)), (404, "MANIFEST_UNKNOWN"), "errors pass through")


@suite.test
def test_keepalive_and_head(ctx):
    for up in both(ctx):
        with proxied(up) as (p, c):
            U.pull(c, "library/hello", "1")  # authenticates the client
            auth = c.authorization("library/hello")
            img = up.content["hello"]
            p.reset_counts()
            conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
            try:
                for _ in range(3):
                    conn.request("HEAD", "/v2/library/hello/manifests/1",
                                 headers={"Authorization": auth, "Accept": U.ACCEPT})
                    r = conn.getresponse()
                    eq((r.status, r.read()), (200, b""), "%s HEAD" % up.kind)
                    eq(r.getheader("Content-Length"), str(img.size), "HEAD Content-Length")
                    eq(r.getheader("Docker-Content-Digest"), img.digest, "HEAD digest")
                    conn.request("GET", "/v2/library/hello/blobs/%s" % img.layer_digests[0],
                                 headers={"Authorization": auth})
                    r = conn.getresponse()
                    eq(sha256(r.read()), img.layer_digests[0], "%s blob over keep-alive" % up.kind)
            finally:
                conn.close()
            eq(p.accepted, 1, "%s: six requests on one client connection" % up.kind)
            eq(p.count(), 6, "six requests counted")


@suite.test
def test_big_bodies_stream_both_ways(ctx):
    for up in both(ctx):
        with proxied(up, anonymous=False) as (p, c):
            big = U.BigBlob(48, seed=up.kind)
            tracemalloc.start()
            try:
                c.push_blob("library/bigpush", big.chunks(), big.digest, big.size)
                st, d, n = c.blob_digest("library/bigpush", big.digest)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            eq((st, d, n), (200, big.digest, big.size), "%s: 48 MiB up and down" % up.kind)
            check(peak < 8 * U.MiB, "%s: peak Python allocation %.1f MiB while 48 MiB went "
                  "through the proxy both ways: something buffers" % (up.kind, peak / U.MiB))
            img = up.content["big"]
            eq(len(U.pull(c, "library/big", "1")), 3, "image with a 4 MiB layer")
            check(img.big.digest in img.layer_digests, "big layer in the manifest")


@suite.test
def test_chunked_and_expect_request_bodies(ctx):
    for up in both(ctx):
        with proxied(up, anonymous=False) as (p, c):
            data = os.urandom(300 * 1024)
            for how in ("chunked", "expect"):
                st, h, _ = c.request("POST", "/v2/library/chunked/blobs/uploads/")
                eq(st, 202, "POST upload")
                path = h["location"].replace(p.url(), "")
                path += ("&" if "?" in path else "?") + "digest=" + sha256(data)
                auth = c.authorization("library/chunked")
                if how == "chunked":  # http.client chunk-encodes an iterable without a length
                    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
                    try:
                        conn.request("PUT", path, body=iter([data[:1000], data[1000:]]),
                                     headers={"Authorization": auth})
                        r = conn.getresponse()
                        r.read()
                    finally:
                        conn.close()
                    eq(r.status, 201, "%s: chunked PUT through the proxy" % up.kind)
                else:  # curl's way for big bodies: wait for 100 Continue
                    s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
                    try:
                        s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                                   "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                                   % (path, auth, len(data))).encode())
                        eq(s.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n", "100 Continue")
                        s.sendall(data)
                        check(s.recv(100).startswith(b"HTTP/1.1 201 "), "%s: PUT after 100"
                              % up.kind)
                    finally:
                        s.close()
                eq(c.blob_digest("library/chunked", sha256(data))[1], sha256(data), "stored")


@suite.test
def test_concurrent_clients(ctx):
    for up in both(ctx):
        with proxied(up) as (p, c):
            errors = []

            def one():
                try:
                    cl = up.client(anonymous=(up.kind == "hub"), port=p.port)
                    U.pull(cl, "library/multi", "1")
                except Exception as e:  # noqa: BLE001 (reported below)
                    errors.append(repr(e))
            ts = [threading.Thread(target=one) for _ in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            eq(errors, [], "%s: 8 concurrent pulls through one proxy" % up.kind)
            check(p.accepted >= 8 * 9, "one connection per request: %d" % p.accepted)


@suite.test
def test_fault_parameters_checked(ctx):
    p = FaultProxy("127.0.0.1", 9).start()
    try:
        for kind, params in (("nonsense", {}), ("status", {}), ("status", {"cod": 500}),
                             ("slow", {"bytes_per_sec": 0}), ("refuse", {"path_contains": "x"}),
                             ("delete_tag", {"repo": "a"}), ("delay", {"second": 1})):
            try:
                p.set_fault(kind, **params)
                raise AssertionError("accepted %s %r" % (kind, params))
            except ValueError:
                pass
        eq(p.faults(), [], "nothing set")
        p.set_fault("status", code=500, path_contains="/a")
        p.set_fault("status", code=502, path_contains="/b")
        p.set_fault("status", code=503, path_contains="/a")
        eq(sorted(f[1]["code"] for f in p.faults()), [502, 503], "same filters replace")
        p.clear_faults("status")
        eq(p.faults(), [], "cleared")
    finally:
        p.stop()


@suite.test
def test_upstream_down_is_502(ctx):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    nobody = port.getsockname()[1]
    port.close()
    p = FaultProxy("127.0.0.1", nobody).start()
    try:
        st, _, body = raw_request(p.port, "GET", "/v2/")
        eq((st, error_code(body)), (502, "UNAVAILABLE"), "nothing listens upstream")
        eq(p.requests, [("GET", "/v2/", 502)], "counted")
    finally:
        p.stop()


# ---------------------------------------------------------------------------------------------
# Faults


@suite.test
def test_refuse_then_recover_on_same_port(ctx):
    for up in both(ctx):
        with proxied(up) as (p, c):
            port = p.port
            hc = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            hc.request("GET", "/v2/")
            r = hc.getresponse()
            eq((r.status, r.will_close), (401, False), "a kept-alive connection")
            r.read()
            idle = hc.sock
            p.set_fault("refuse")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                raise AssertionError("connect succeeded while refusing")
            except ConnectionRefusedError:
                pass
            try:
                eq(idle.recv(65536), b"", "the open connection was closed")
            except ConnectionResetError:
                pass
            hc.close()
            try:
                c.get_manifest("library/hello", "1")
                raise AssertionError("a request got through while refusing")
            except ConnectionRefusedError:
                pass
            p.clear_faults()
            eq(p.port, port, "same port")
            eq(len(U.pull(c, "library/hello", "1")), 4, "%s: pull after recovery" % up.kind)


@suite.test
def test_hang_then_recover(ctx):
    for up in both(ctx):
        with proxied(up) as (p, c):
            U.pull(c, "library/hello", "1")
            p.set_fault("hang", path_contains="/manifests/")
            t0 = time.monotonic()
            try:
                c.request("GET", "/v2/library/hello/manifests/1", timeout=0.5)
                raise AssertionError("a hung request was answered")
            except (socket.timeout, TimeoutError):
                pass
            check(time.monotonic() - t0 < 3, "timed out on the client's schedule")
            eq(c.request("GET", "/v2/library/hello/blobs/%s"
                         % up.content["hello"].config_digest)[0], 200, "other paths pass")
            s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
            s.sendall(b"GET /v2/library/hello/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)
            eq(p.count(path_contains="/manifests/", status=None), 2, "hung requests counted")
            p.clear_faults()
            eq(s.recv(100), b"", "the hung connection is closed once the fault is cleared")
            s.close()
            eq(c.get_manifest("library/hello", "1")[0], 200, "%s: recovered" % up.kind)


@suite.test
def test_status(ctx):
    for up in both(ctx):
        with proxied(up) as (p, c):
            U.pull(c, "library/hello", "1")
            p.set_fault("status", code=500, path_contains="/manifests/")
            st, h, body = c.get_manifest("library/hello", "1")
            eq((st, error_code(body)), (500, "UNKNOWN"), "%s manifest GET" % up.kind)
            eq(h["content-type"], "application/json; charset=utf-8", "JSON body")
            st, h, body = c.request("HEAD", "/v2/library/hello/manifests/1")
            eq((st, body), (500, b""), "HEAD: status, no body")
            eq(c.request("GET", "/v2/library/hello/blobs/%s"
                         % up.content["hello"].config_digest)[0], 200, "blobs pass")
            p.set_fault("status", code=503)  # everything, set last
            eq(c.request("GET", "/v2/")[0], 503, "503 everywhere")
            eq(c.get_manifest("library/hello", "1")[0], 503, "the last set wins")
            p.clear_faults()
            p.set_fault("status", code=502, times=1)
            eq(c.get_manifest("library/hello", "1")[0], 502, "times=1: the first")
            eq(c.get_manifest("library/hello", "1")[0], 200, "times=1: then through")
            # A synthetic answer reads the request body: the connection stays usable.
            p.set_fault("status", code=500, method="PUT")
            conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
            try:
                conn.request("PUT", "/v2/library/x/manifests/1", body=b"x" * 200000)
                r = conn.getresponse()
                eq((r.status, error_code(r.read())), (500, "UNKNOWN"), "PUT with a body")
                conn.request("GET", "/v2/")
                eq(conn.getresponse().status, 401, "same connection, next request")
            finally:
                conn.close()


@suite.test
def test_ratelimit(ctx):
    for up in both(ctx):
        with proxied(up) as (p, c):
            p.set_fault("ratelimit", retry_after=7, path_contains="/manifests/")
            st, h, body = c.get_manifest("library/hello", "1")
            eq(st, 429, "%s: rate limited" % up.kind)
            eq((h["ratelimit-limit"], h["ratelimit-remaining"], h["docker-ratelimit-source"],
                h["retry-after"]), ("100;w=21600", "0;w=21600", "127.0.0.1", "7"), "headers")
            e = json.loads(body)["errors"][0]
            eq(e["code"], "TOOMANYREQUESTS", "code")
            check(e["message"].startswith("You have reached your pull rate limit."), e["message"])
            eq(raw_request(p.port, "GET", "/v2/")[0], 401, "other paths pass")


@suite.test
def test_unauthorized(ctx):
    hub = ctx["hub"]
    for up in both(ctx):
        with proxied(up) as (p, c):
            p.set_fault("unauthorized")
            for path in ("/v2/", "/v2/library/hello/manifests/1", "/auth/token?service=x"):
                st, h, body = raw_request(p.port, "GET", path)
                eq((st, error_code(body)), (401, "UNAUTHORIZED"), "%s %s" % (up.kind, path))
                check("faultproxy" in h["www-authenticate"], h["www-authenticate"])
            st, _, _ = c.get_manifest("library/hello", "1")
            eq(st, 401, "%s: the client cannot get past it" % up.kind)
            if up is hub:
                eq(c.token_fetches, [p.url("/token")], "one token try, refused as well")
            p.clear_faults()
            eq(c.get_manifest("library/hello", "1")[0], 200, "through again")


@suite.test
def test_delete_tag_with_corrupt_blob(ctx):
    for up in both(ctx):
        img = up.content["hello"]
        with proxied(up) as (p, c):
            p.set_fault("delete_tag", repo="library/hello", tag="1")
            p.set_fault("corrupt_blob", digest=img.layer_digests[0])
            if up.kind == "hub":  # auth first: an anonymous request is challenged, as upstream
                st, h, _ = raw_request(p.port, "GET", "/v2/library/hello/manifests/1")
                eq(st, 401, "unauthenticated request to a deleted tag")
            st, h, body = c.get_manifest("library/hello", "1")
            eq((st, error_code(body)), (404, "MANIFEST_UNKNOWN"), "%s: deleted tag" % up.kind)
            eq(json.loads(body)["errors"][0]["detail"], "unknown tag=1", "Hub's detail")
            st, _, body = c.request("HEAD", "/v2/library/hello/manifests/1")
            eq((st, body), (404, b""), "HEAD of the deleted tag")
            st, _, body = c.get_manifest("library/hello", img.digest)
            eq((st, sha256(body)), (200, img.digest), "by digest: still there")
            eq(c.get_manifest("library/multi", "1")[0], 200, "other repositories' tags")
            eq(c.blob_digest("library/hello", img.layer_digests[1]),
               (200, img.layer_digests[1], len(img.blobs[img.layer_digests[1]])), "other blob")
            st, d, n = c.blob_digest("library/hello", img.layer_digests[0])
            eq((st, n), (200, len(img.blobs[img.layer_digests[0]])), "corrupt: same length")
            check(d != img.layer_digests[0], "corrupt: the digest does not match")
            p.clear_faults("delete_tag")
            eq(c.get_manifest("library/hello", "1")[0], 200, "tag back once the fault is cleared")
            eq(c.blob_digest("library/hello", img.layer_digests[0])[1] != img.layer_digests[0],
               True, "corrupt_blob still on")


@suite.test
def test_corrupt_blob_keeps_headers(ctx):
    for up in both(ctx):
        big = up.content["big"].big
        with proxied(up) as (p, c):
            direct = up.client(anonymous=(up.kind == "hub"))
            path = "/v2/library/big/blobs/%s" % big.digest
            p.set_fault("corrupt_blob", digest=big.digest)
            r1, r2 = direct.open("GET", path), c.open("GET", path)
            try:
                body1, body2 = r1.read(), r2.read()
            finally:
                r1.close()
                r2.close()
            eq(r2.status, 200, "status")
            for k in ("content-length", "docker-content-digest", "content-type", "etag"):
                eq(r2.headers.get(k), r1.headers.get(k), "%s: header %s unchanged" % (up.kind, k))
            eq(len(body2), big.size, "same length")
            diff = [i for i in range(0, len(body1), 4096) if body1[i:i + 4096] != body2[i:i + 4096]]
            eq(len(diff), 4, "one flipped byte per MiB of the 4 MiB blob")
            eq(sha256(body1), big.digest, "direct is intact")
            check(sha256(body2) != big.digest, "corrupted through the proxy")
            st, h, body = c.request("GET", path, headers={"Range": "bytes=0-9"})
            eq((st, len(body)), (206, 10), "range through the fault")
            check(body != body1[:10], "range corrupted too")


@suite.test
def test_slow_streams_first_bytes_early(ctx):
    for up in both(ctx):
        img = up.content["slow"]
        layer = img.layer_digests[0]
        size = len(img.blobs[layer])
        with proxied(up) as (p, c):
            U.pull(c, "library/hello", "1")  # authenticated
            rate = size / 1.0  # ~1 s for the whole layer
            p.set_fault("slow", bytes_per_sec=rate, path_contains="/blobs/")
            t0 = time.monotonic()
            st, _, body = c.get_manifest("library/slow", "1")
            eq(st, 200, "manifest")
            check(time.monotonic() - t0 < 0.5, "the manifest (%d bytes) is not slowed much"
                  % len(body))
            t0 = time.monotonic()
            r = c.open("GET", "/v2/library/slow/blobs/%s" % layer)
            try:
                first = r.read1(4096)
                t_first = time.monotonic() - t0
                rest = r.read()
                t_all = time.monotonic() - t0
            finally:
                r.close()
            eq(sha256(first + rest), layer, "%s: intact, only slow" % up.kind)
            check(t_all >= 0.7, "%s: the whole body took %.2fs at %d B/s" % (up.kind, t_all, rate))
            check(t_first < t_all / 3, "%s: first bytes after %.2fs of %.2fs"
                  % (up.kind, t_first, t_all))


@suite.test
def test_delay(ctx):
    for up in both(ctx):
        with proxied(up) as (p, c):
            U.pull(c, "library/hello", "1")
            p.set_fault("delay", seconds=0.6)
            t0 = time.monotonic()
            eq(c.get_manifest("library/hello", "1")[0], 200, "delayed, then answered")
            check(time.monotonic() - t0 >= 0.55, "%s: delayed" % up.kind)
            p.set_fault("status", code=503)
            t0 = time.monotonic()
            eq(c.get_manifest("library/hello", "1")[0], 503, "delay + status")
            check(time.monotonic() - t0 >= 0.55, "the delay comes before a synthetic answer")
            p.clear_faults()
            t0 = time.monotonic()
            eq(c.get_manifest("library/hello", "1")[0], 200, "cleared")
            check(time.monotonic() - t0 < 0.5, "fast again")


@suite.test
def test_counters(ctx):
    hub = ctx["hub"]
    with proxied(hub) as (p, c):
        U.pull(c, "library/hello", "1")
        img = hub.content["hello"]
        want = [("GET", "/v2/library/hello/manifests/1", 401),
                ("GET", "/auth/token?service=registry.docker.io&scope=repository%3Alibrary"
                 "%2Fhello%3Apull", 200),
                ("GET", "/v2/library/hello/manifests/1", 200)]
        want += [("GET", "/v2/library/hello/blobs/%s" % d, 200)
                 for d in [img.config_digest] + img.layer_digests]
        eq(p.requests, want, "requests in order")
        eq(p.count(), 6, "all")
        eq(p.count("GET"), 6, "GET")
        eq(p.count("HEAD"), 0, "HEAD")
        eq(p.count(path_contains="/blobs/"), 3, "blobs")
        eq(p.count("GET", "/manifests/1"), 2, "manifest GETs")
        eq(p.count(status=401), 1, "challenges")
        p.reset_counts()
        eq((p.requests, p.count()), ([], 0), "reset")
        c.request("HEAD", "/v2/library/hello/manifests/1")
        eq(p.requests, [("HEAD", "/v2/library/hello/manifests/1", 200)], "after reset")


@suite.test
def test_stop_closes_everything(ctx):
    hub = ctx["hub"]
    fds, threads = open_fds(), threading.active_count()
    p = FaultProxy(hub.host, hub.port).start()
    socks = [socket.create_connection(("127.0.0.1", p.port), timeout=5) for _ in range(3)]
    socks[0].sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    socks[0].recv(65536)
    p.set_fault("hang")
    socks[1].sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    p.set_fault("delay", seconds=30, path_contains="/nothing")
    time.sleep(0.2)
    eq(p.open_connections(), 3, "three client connections")
    t0 = time.monotonic()
    p.stop()
    took = time.monotonic() - t0
    check(took < 2, "stop with a hung request took %.2fs" % took)
    for s in socks:
        try:
            while s.recv(65536):  # the first one's response body, then EOF
                pass
        except ConnectionResetError:
            pass
        s.close()
    eq(threading.active_count(), threads, "threads joined")
    eq(open_fds(), fds, "no socket left open")
    try:
        socket.create_connection(("127.0.0.1", p.port), timeout=2).close()
        raise AssertionError("still listening after stop")
    except ConnectionRefusedError:
        pass


if __name__ == "__main__":
    suite.main(setup=setup, teardown=teardown)
