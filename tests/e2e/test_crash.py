#!/usr/bin/env python3
"""test_crash.py — kill -9 the registry at bad moments, restart it on the same data dir and
port, and check that nothing acknowledged was lost and nothing half-written is visible.

    python3 tests/e2e/test_crash.py --berth build/release/berth
    python3 tests/e2e/test_crash.py --kind distribution --berth /usr/bin/docker-registry

Checks go through HTTP only, plus hashing the finished blob files on disk:
berth keeps <root>/blobs/sha256/<2 hex>/<64 hex> (root = <data_dir>/store); every file under
<root>/blobs must be such a file and hash to its name (no temp files there).
Distribution keeps <root>/docker/registry/v2/blobs/sha256/<2>/<64>/data.
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, Suite, free_port, sha256  # noqa: E402

suite = Suite("e2e-crash")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MiB = 1024 * 1024


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


# ---------------------------------------------------------------------------------------------
# registry lifecycle


def new_registry(ctx):
    reg = Registry(ctx["args"].berth, kind=ctx["args"].kind)
    reg.start(env=ctx["env"])
    ctx["regs"].append(reg)
    return reg


def restart(ctx, reg):
    """kill -9 already happened; start again on the same data dir and port."""
    reg.kill9()
    t0 = time.time()
    reg.start(env=ctx["env"], data_dir=reg.data_dir, port=reg.port)
    return time.time() - t0


# ---------------------------------------------------------------------------------------------
# HTTP helpers


def loc_path(location):
    """Location header (absolute or relative) -> path?query for requests."""
    u = urllib.parse.urlsplit(location)
    return u.path + ("?" + u.query if u.query else "")


def with_digest(loc, digest):
    return loc + ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest, safe="")


def start_upload(reg, repo, conn=None):
    st, h, body = req(reg, "POST", "/v2/%s/blobs/uploads/" % repo, b"", conn=conn)
    eq(st, 202, "POST upload %s (%s)" % (repo, body[:200]))
    return loc_path(h["location"])


def req(reg, method, path, body=None, headers=None, conn=None):
    if conn is None:
        return reg.request(method, path, body=body, headers=headers)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def patch_chunk(reg, loc, data, start, conn=None):
    end = start + len(data) - 1
    st, h, body = req(reg, "PATCH", loc, data, {
        "Content-Type": "application/octet-stream", "Content-Range": "%d-%d" % (start, end),
        "Content-Length": str(len(data))}, conn=conn)
    eq(st, 202, "PATCH %d-%d (%s)" % (start, end, body[:200]))
    eq(h.get("range"), "0-%d" % end, "Range after PATCH %d-%d" % (start, end))
    return loc_path(h["location"]) if "location" in h else loc


def finish_upload(reg, loc, digest, body=b"", conn=None):
    st, h, rbody = req(reg, "PUT", with_digest(loc, digest), body, {
        "Content-Type": "application/octet-stream", "Content-Length": str(len(body))}, conn=conn)
    eq(st, 201, "PUT ?digest=%s (%s)" % (digest, rbody[:200]))
    eq(h.get("docker-content-digest"), digest, "Docker-Content-Digest after upload")
    return h


def raw_request(reg, method, path, headers, body_part):
    """Send request line + headers + the first part of the body on a raw socket; the caller
    kills the server while the rest is still owed."""
    s = socket.create_connection(("127.0.0.1", reg.port))
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (method, path, reg.port)
    head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
    s.sendall(head.encode() + body_part)
    return s


def blob_status(reg, repo, digest):
    st, h, _ = reg.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
    return st, h


def get_blob(reg, repo, digest):
    st, h, body = reg.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
    return st, body


def push_blob(reg, repo, data, conn=None):
    d = sha256(data)
    loc = start_upload(reg, repo, conn)
    finish_upload(reg, loc, d, data, conn)
    return d


def make_manifest(config, layers, note):
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
         "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": n} for d, n in layers],
         "annotations": {"org.berth.crash": note, "nonce": os.urandom(8).hex()}}
    return json.dumps(m, sort_keys=True).encode()


def put_manifest(reg, repo, ref, raw, conn=None):
    return req(reg, "PUT", "/v2/%s/manifests/%s" % (repo, ref), raw,
               {"Content-Type": OCI_MANIFEST}, conn=conn)


def get_manifest(reg, repo, ref):
    return reg.request("GET", "/v2/%s/manifests/%s" % (repo, ref),
                       headers={"Accept": OCI_MANIFEST})


def list_tags(reg, repo):
    st, _, body = reg.request("GET", "/v2/%s/tags/list" % repo)
    if st == 404:
        return []
    eq(st, 200, "tags/list %s (%s)" % (repo, body[:200]))
    return json.loads(body).get("tags") or []


# ---------------------------------------------------------------------------------------------
# on-disk blob check


def check_blob_files(reg):
    """Every file in the finished-blob area is named by the sha256 of its content. Returns
    the set of digests found on disk."""
    root = os.path.join(reg.data_dir, "store")
    if reg.kind == "distribution":
        base = os.path.join(root, "docker", "registry", "v2", "blobs")
        pat = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{64})/data$")
    else:
        base = os.path.join(root, "blobs")
        pat = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{64})$")
    bad, found = [], set()
    for dirpath, _, files in os.walk(base):
        for fn in files:
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, base)
            m = pat.match(rel)
            if not m or m.group(2)[:2] != m.group(1):
                bad.append("stray file in blob dir: %s (%d bytes)" % (rel, os.path.getsize(p)))
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != m.group(2):
                bad.append("blob %s content hashes to %s (%d bytes)"
                           % (rel, h.hexdigest(), os.path.getsize(p)))
            found.add("sha256:" + m.group(2))
    if bad:
        raise AssertionError("blob directory %s:\n  %s" % (base, "\n  ".join(bad[:20])))
    return found


# ---------------------------------------------------------------------------------------------
# setup


def setup(args):
    env = {}
    if args.kind == "distribution":
        # upload _state tokens are HMAC'd with the secret; keep it stable across restarts
        env["REGISTRY_HTTP_SECRET"] = "berth-e2e-crash"
    return {"args": args, "env": env, "regs": []}


def teardown(ctx):
    problems = []
    for reg in ctx["regs"]:
        if reg.proc is not None:
            rc = reg.stop()
            if ctx["args"].kind == "berth" and rc not in (0, None):
                problems.append("berth exited with status %s on SIGTERM" % rc)
        problems += ["sanitizer: " + l for l in reg.sanitizer_errors()]
        reg.cleanup()
    return problems


def alive(reg, what):
    if reg.proc is None or reg.proc.poll() is not None:
        raise AssertionError("server died on its own (%s), status %s:\n%s"
                             % (what, reg.proc and reg.proc.returncode, reg.log()[-3000:]))


# ---------------------------------------------------------------------------------------------
# 1. kill -9 in the middle of a PATCH body


@suite.test
def test_kill_mid_patch_then_resume(ctx):
    """64 MiB chunked upload (8 MiB PATCHes with Content-Range); after 4 acknowledged chunks
    the 5th PATCH body is cut by kill -9. Round 1 stops sending after 3 MiB and waits; rounds
    2-3 stream the body and kill at a random moment, so the server may die mid-write()."""
    reg = new_registry(ctx)
    repo = "crash/big"
    total, chunk = 64 * MiB, 8 * MiB
    for rnd in range(3):
        data = os.urandom(total)
        digest = sha256(data)
        loc = start_upload(reg, repo)
        acked = 0
        for i in range(4):  # 32 MiB acknowledged
            loc = patch_chunk(reg, loc, data[acked:acked + chunk], acked)
            acked += chunk
        eq(blob_status(reg, repo, digest)[0], 404, "blob visible before PUT")
        st, h, _ = reg.request("GET", loc)
        eq((st, h.get("range")), (204, "0-%d" % (acked - 1)), "upload status before crash")

        # chunk 5 on a raw socket, cut by kill -9
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(chunk),
                "Content-Range": "%d-%d" % (acked, acked + chunk - 1)}
        if rnd == 0:
            sent = 3 * MiB
            s = raw_request(reg, "PATCH", loc, hdrs, data[acked:acked + sent])
            time.sleep(0.5)  # let the server consume (and write) all of it
        else:
            s = raw_request(reg, "PATCH", loc, hdrs, b"")
            progress = [0]

            def stream():
                try:
                    while progress[0] < chunk - 256 * 1024:  # never complete the body
                        o = acked + progress[0]
                        s.sendall(data[o:o + 256 * 1024])
                        progress[0] += 256 * 1024
                        time.sleep(0.004)
                except OSError:
                    pass
            t = threading.Thread(target=stream)
            t.start()
            time.sleep(random.uniform(0.02, 0.12))
        alive(reg, "during partial PATCH")
        reg.kill9()
        if rnd != 0:
            t.join()
            sent = progress[0] + 256 * 1024  # upper bound: a sendall may have been mid-way
        s.close()
        restart(ctx, reg)

        eq(blob_status(reg, repo, digest)[0], 404, "blob visible after crash, before PUT")
        st, h, body = reg.request("GET", loc)
        if st == 404:
            print("  note: round %d: upload discarded on restart (404); re-uploading" % rnd)
            loc = start_upload(reg, repo)
            have = 0
        else:
            eq(st, 204, "GET upload after restart (%s)" % body[:200])
            rng = h.get("range")
            have = 0 if rng is None else int(re.fullmatch(r"0-(\d+)", rng).group(1)) + 1
            print("  note: round %d: upload survived; server reports %d bytes (acknowledged %d,"
                  " sent <= %d)" % (rnd, have, acked, acked + sent))
            if not acked <= have <= acked + sent:
                raise AssertionError("upload offset after restart %d outside [acknowledged %d, "
                                     "sent %d]" % (have, acked, acked + sent))
            if "location" in h:
                loc = loc_path(h["location"])
        pos = have
        while pos < total:
            n = min(chunk, total - pos)
            loc = patch_chunk(reg, loc, data[pos:pos + n], pos)
            pos += n
        eq(blob_status(reg, repo, digest)[0], 404, "blob visible before final PUT")
        # a wrong byte anywhere in what the server kept makes this PUT fail (digest mismatch)
        finish_upload(reg, loc, digest)
        st, h = blob_status(reg, repo, digest)
        eq((st, int(h.get("content-length", -1))), (200, total), "HEAD blob after PUT")
        st, got = get_blob(reg, repo, digest)
        eq(st, 200, "GET blob")
        eq(len(got), total, "GET length")
        eq(got == data, True, "GET bytes identical")
        eq(digest in check_blob_files(reg), True, "blob file present on disk")
    reg.stop()


@suite.test
def test_kill_mid_direct_patch(ctx):
    """One 96 MiB PATCH, past the point where berth writes it with O_DIRECT (64 MiB into a
    request), cut by kill -9 after ~70-90 MiB. After the restart the upload holds a prefix of
    what was sent (the background writer's buffers in flight are lost, never garbled) and
    finishing it from the reported offset gives the right blob."""
    reg = new_registry(ctx)
    repo = "crash/direct"
    total = 96 * MiB
    data = os.urandom(total)
    digest = sha256(data)
    loc = start_upload(reg, repo)
    s = raw_request(reg, "PATCH", loc, {"Content-Type": "application/octet-stream",
                                        "Content-Length": str(total),
                                        "Content-Range": "0-%d" % (total - 1)}, b"")
    stop_at = random.randint(70, 90) * MiB
    sent = 0
    while sent < stop_at:
        s.sendall(data[sent:sent + MiB])
        sent += MiB
    time.sleep(0.3)  # let the server take what was sent
    alive(reg, "during the large PATCH")
    reg.kill9()
    s.close()
    restart(ctx, reg)
    st, h, body = reg.request("GET", loc)
    eq(st, 204, "GET upload after restart (%s)" % body[:200])
    rng = h.get("range")
    have = 0 if rng is None else int(re.fullmatch(r"0-(\d+)", rng).group(1)) + 1
    print("  note: server kept %d of %d bytes sent" % (have, sent))
    if have > sent:
        raise AssertionError("upload offset %d beyond the %d bytes sent" % (have, sent))
    loc = loc_path(h["location"]) if "location" in h else loc
    if have < total:
        loc = patch_chunk(reg, loc, data[have:], have)
    finish_upload(reg, loc, digest)  # a wrong byte in the kept prefix fails the digest
    st, got = get_blob(reg, repo, digest)
    eq((st, got == data), (200, True), "blob after resuming")
    reg.stop()


@suite.test
def test_sessions_survive_kill9(ctx):
    """Sessions answered 202 survive a kill -9: one holding an acknowledged chunk at once,
    an empty one once its record is written (berth defers it up to ~200 ms; the test waits
    0.4 s). After the restart each reports its offset, takes its PUT and is published. With
    a per-repository session limit, the sessions held across the restart still count (429),
    and finishing them frees the places."""
    berth = ctx["args"].kind == "berth"
    limit = 12
    env = dict(ctx["env"])
    if berth:
        env["REGISTRY_BERTH_LIMITS_UPLOADSPERREPOSITORY"] = str(limit)
    reg = new_registry(ctx)
    reg.stop()
    reg.start(env=env, data_dir=reg.data_dir, port=reg.port)
    repo = "crash/sessions"
    sessions = []
    for i in range(limit):
        data = os.urandom(4096 + i)
        loc = start_upload(reg, repo)
        acked = 0
        if i % 2:
            acked = len(data) // 2
            loc = patch_chunk(reg, loc, data[:acked], 0)
        sessions.append((loc, data, acked))
    if berth:
        st, _, _ = reg.request("POST", "/v2/%s/blobs/uploads/" % repo)
        eq(st, 429, "POST past the session limit")
    time.sleep(0.4)
    reg.kill9()
    reg.start(env=env, data_dir=reg.data_dir, port=reg.port)
    if berth:
        st, _, _ = reg.request("POST", "/v2/%s/blobs/uploads/" % repo)
        eq(st, 429, "POST past the session limit after the restart")
    for loc, data, acked in sessions:
        digest = sha256(data)
        st, h, body = reg.request("GET", loc)
        eq(st, 204, "GET upload status after kill -9 (%s)" % body[:200])
        eq(h.get("range"), "0-%d" % (acked - 1) if acked else None, "Range after kill -9")
        finish_upload(reg, loc, digest, data[acked:])
        st, h = blob_status(reg, repo, digest)
        eq((st, int(h.get("content-length", -1))), (200, len(data)), "HEAD blob after PUT")
        st, got = get_blob(reg, repo, digest)
        eq((st, got == data), (200, True), "GET blob after PUT")
    start_upload(reg, repo)  # the finished sessions freed their places
    reg.stop()


@suite.test
def test_young_empty_sessions_kill9(ctx):
    """A kill -9 right after POSTs, before their records may be written: after the restart
    each session either answers as before (204, empty) or is cleanly unknown (404 to status
    and PUT), and an unknown one leaves no staged file behind. Pushing again works."""
    reg = new_registry(ctx)
    repo = "crash/young"
    locs = [start_upload(reg, repo) for _ in range(20)]
    reg.kill9()
    reg.start(env=ctx["env"], data_dir=reg.data_dir, port=reg.port)
    updir = os.path.join(reg.data_dir, "store", "uploads")
    kept = lost = 0
    for loc in locs:
        uid = urllib.parse.urlsplit(loc).path.rstrip("/").rsplit("/", 1)[-1]
        st, h, body = reg.request("GET", loc)
        if st == 204:
            kept += 1
            eq(h.get("range"), None, "an empty session has no Range")
            data = os.urandom(1000)
            finish_upload(reg, loc, sha256(data), data)
            eq(blob_status(reg, repo, sha256(data))[0], 200, "blob pushed into a kept session")
            continue
        lost += 1
        eq(st, 404, "status of a lost session (%s)" % body[:200])
        data = os.urandom(1000)
        st, _, body = reg.request("PUT", with_digest(loc, sha256(data)), data,
                                  {"Content-Type": "application/octet-stream"})
        eq(st, 404, "PUT into a lost session")
        eq(b"BLOB_UPLOAD_UNKNOWN" in body, True, "PUT into a lost session: error code")
        if reg.kind == "berth":
            eq(os.path.exists(os.path.join(updir, uid)), False, "staged file of a lost session")
    print("  note: %d sessions kept, %d lost" % (kept, lost))
    push_blob(reg, repo, os.urandom(5000))
    reg.stop()


@suite.test
def test_kill_mid_monolithic_put(ctx):
    """PUT ?digest= with the whole blob as body, killed half-way: the blob must not exist
    after restart and nothing may appear in the blob directory."""
    reg = new_registry(ctx)
    repo = "crash/mono"
    data = os.urandom(16 * MiB)
    digest = sha256(data)
    loc = start_upload(reg, repo)
    s = raw_request(reg, "PUT", with_digest(loc, digest), {
        "Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        data[:9 * MiB])
    time.sleep(0.5)
    alive(reg, "during partial monolithic PUT")
    reg.kill9()
    s.close()
    restart(ctx, reg)
    eq(blob_status(reg, repo, digest)[0], 404, "half-PUT blob visible after restart")
    eq(check_blob_files(reg), set(), "finished blob files after a half PUT")
    push_blob(reg, repo, data)
    st, got = get_blob(reg, repo, digest)
    eq((st, got == data), (200, True), "blob after clean re-upload")
    eq(check_blob_files(reg), {digest}, "blob files")
    reg.stop()


@suite.test
def test_kill_during_upload_finalize(ctx):
    """All chunks PATCHed, then the closing PUT ?digest= (empty body) is sent and the server
    is killed while it verifies/moves the blob, at a few different delays. After restart the
    blob is either completely there (byte-exact) or absent; finishing the upload (or
    re-uploading) then works."""
    reg = new_registry(ctx)
    repo = "crash/finalize"
    outcomes, done = [], set()
    for delay in (0.0, 0.01, 0.03, 0.08):
        data = os.urandom(32 * MiB)
        digest = sha256(data)
        loc = start_upload(reg, repo)
        for off in range(0, len(data), 8 * MiB):
            loc = patch_chunk(reg, loc, data[off:off + 8 * MiB], off)
        s = raw_request(reg, "PUT", with_digest(loc, digest), {"Content-Length": "0"}, b"")
        time.sleep(delay)
        alive(reg, "finalize")
        reg.kill9()
        # did the response make it out before the kill?
        s.settimeout(2)
        try:
            resp = s.recv(4096)
        except OSError:
            resp = b""
        s.close()
        acked = resp.startswith(b"HTTP/1.1 201")
        restart(ctx, reg)
        st, h = blob_status(reg, repo, digest)
        if acked:
            eq(st, 200, "blob acknowledged with 201 before the kill")
        if st == 200:
            eq(int(h.get("content-length", -1)), len(data), "finalized blob size")
            outcomes.append("present")
        else:
            eq(st, 404, "blob after killed finalize")
            st2, h2, _ = reg.request("GET", loc)
            outcomes.append("absent/upload %d" % st2)
            if st2 == 204 and h2.get("range") == "0-%d" % (len(data) - 1):
                finish_upload(reg, loc, digest)
            else:
                push_blob(reg, repo, data)
        st, got = get_blob(reg, repo, digest)
        eq((st, got == data), (200, True), "blob byte-exact after recovery (delay %s)" % delay)
        done.add(digest)
        orphans = check_blob_files(reg) - done
        if orphans:
            outcomes[-1] += " (+%d unreferenced blob files)" % len(orphans)
    print("  note: outcome per kill delay %s: %s" % ((0.0, 0.01, 0.03, 0.08), outcomes))
    reg.stop()


# ---------------------------------------------------------------------------------------------
# 2. kill -9 during a loop of manifest PUTs


@suite.test
def test_kill_during_manifest_puts(ctx):
    reg = new_registry(ctx)
    repo = "crash/manifests"
    cfg = os.urandom(300)
    lay = os.urandom(5000)
    cd, ld = push_blob(reg, repo, cfg), push_blob(reg, repo, lay)
    acked = {}       # tag -> (digest, raw)
    inflight = {}    # worker -> (tag, digest, raw)
    errors = []
    sent = [0]
    lock = threading.Lock()

    def worker(w, n):
        conn = reg.connection(timeout=10)
        for i in range(n):
            tag = "%s%03d" % (w, i)
            raw = make_manifest((cd, len(cfg)), [(ld, len(lay))], tag)
            with lock:
                inflight[w] = (tag, sha256(raw), raw)
            try:
                st, h, body = put_manifest(reg, repo, tag, raw, conn)
            except (OSError, http.client.HTTPException):
                return  # server killed
            with lock:
                if st != 201:
                    errors.append("PUT %s -> %d %s" % (tag, st, body[:200]))
                    return
                if h.get("docker-content-digest") != sha256(raw):
                    errors.append("PUT %s digest header %s" % (tag, h.get("docker-content-digest")))
                acked[tag] = (sha256(raw), raw)
                del inflight[w]
                sent[0] += 1

    threads = [threading.Thread(target=worker, args=(w, 100)) for w in "ab"]
    kill_at = random.randint(20, 180)
    for t in threads:
        t.start()
    while sent[0] < kill_at and any(t.is_alive() for t in threads):
        time.sleep(0.0005)
    alive(reg, "manifest loop")
    reg.kill9()
    for t in threads:
        t.join()
    if errors:
        raise AssertionError("unexpected responses before the kill: %s" % errors[:5])
    print("  note: killed after %d acknowledged PUTs (target %d); in flight: %s"
          % (len(acked), kill_at, sorted(v[0] for v in inflight.values())))
    if len(acked) >= 200:
        print("  note: the loop finished before the kill landed")
    restart(ctx, reg)

    for tag, (d, raw) in sorted(acked.items()):
        st, h, body = get_manifest(reg, repo, tag)
        eq(st, 200, "acknowledged tag %s after restart" % tag)
        eq(body, raw, "manifest bytes for tag %s" % tag)
        eq(h.get("docker-content-digest"), d, "digest for tag %s" % tag)
        st, _, body = get_manifest(reg, repo, d)
        eq((st, body == raw), (200, True), "manifest %s by digest" % d)
    maybe = {v[0]: (v[1], v[2]) for v in inflight.values()}
    tags = list_tags(reg, repo)
    eq(len(tags), len(set(tags)), "tags/list has no duplicates")
    missing = set(acked) - set(tags)
    eq(sorted(missing), [], "acknowledged tags missing from tags/list")
    for tag in tags:
        if tag not in acked and tag not in maybe:
            raise AssertionError("tags/list has tag %r that was never PUT" % tag)
        st, h, body = get_manifest(reg, repo, tag)
        eq(st, 200, "listed tag %s resolves" % tag)
        eq(sha256(body), h.get("docker-content-digest"), "listed tag %s bytes hash to digest" % tag)
        eq(body, (acked.get(tag) or maybe[tag])[1], "listed tag %s has the bytes PUT" % tag)
    for tag, (d, raw) in maybe.items():
        st, _, body = get_manifest(reg, repo, tag)
        if st == 200:
            eq(body, raw, "in-flight tag %s: complete or absent" % tag)
        else:
            eq(st, 404, "in-flight tag %s absent" % tag)
            eq(tag in tags, False, "absent in-flight tag %s not listed" % tag)
            st, _, body = get_manifest(reg, repo, d)
            if st == 200:
                eq(body, raw, "in-flight manifest %s by digest complete" % d)
    check_blob_files(reg)
    reg.stop()


# ---------------------------------------------------------------------------------------------
# 3. repeated random kill -9 during mixed pushes


class Model:
    """What the clients know was acknowledged, plus operations whose outcome is unknown
    because the server died before answering."""

    def __init__(self, repos):
        self.lock = threading.Lock()
        self.blobs = {r: {} for r in repos}        # repo -> digest -> (size, sha of content)
        self.manifests = {r: {} for r in repos}    # repo -> digest -> raw (present)
        self.deleted = {r: set() for r in repos}   # repo -> digests deleted (202)
        self.tags = {r: {} for r in repos}         # repo -> tag -> digest
        self.pending = {}                          # worker -> op tuple
        self.errors = []
        self.ops = 0
        self.verified = set()                      # (repo, digest) blobs already GET-checked


def mixed_worker(reg, model, w, repo, other_repos, stop):
    rnd = random.Random()
    conn = reg.connection(timeout=15)

    def pend(op):
        with model.lock:
            model.pending[w] = op

    def done():
        with model.lock:
            model.pending.pop(w, None)
            model.ops += 1

    def fail(msg):
        with model.lock:
            model.errors.append("%s: %s" % (w, msg))

    try:
        while not stop.is_set():
            with model.lock:
                blobs = dict(model.blobs[repo])
                untagged = [d for d in model.manifests[repo]
                            if d not in model.tags[repo].values()]
                foreign = [(r, d) for r in other_repos for d in model.blobs[r]]
            op = rnd.random()
            if op < 0.35 or len(blobs) < 2:
                size = rnd.choice([rnd.randint(1, 4096), rnd.randint(4096, 256 * 1024),
                                   rnd.randint(MiB, 3 * MiB)])
                data = os.urandom(size)
                d = sha256(data)
                pend(("blob", d, size))
                st, h, body = req(reg, "POST", "/v2/%s/blobs/uploads/" % repo, b"", conn=conn)
                if st != 202:
                    return fail("POST upload -> %d %s" % (st, body[:200]))
                loc = loc_path(h["location"])
                if rnd.random() < 0.5:  # monolithic PUT
                    st, h, body = req(reg, "PUT", with_digest(loc, d), data,
                                      {"Content-Type": "application/octet-stream"}, conn=conn)
                else:  # chunked PATCHes, then an empty PUT
                    pos, step = 0, max(1, size // rnd.randint(2, 4))
                    while pos < size:
                        part = data[pos:pos + step]
                        st, h, body = req(reg, "PATCH", loc, part, {
                            "Content-Type": "application/octet-stream",
                            "Content-Range": "%d-%d" % (pos, pos + len(part) - 1)}, conn=conn)
                        if st != 202:
                            return fail("PATCH -> %d %s" % (st, body[:200]))
                        loc = loc_path(h["location"]) if "location" in h else loc
                        pos += len(part)
                    st, h, body = req(reg, "PUT", with_digest(loc, d), b"", conn=conn)
                if st != 201:
                    return fail("PUT blob -> %d %s" % (st, body[:200]))
                with model.lock:
                    model.blobs[repo][d] = size
                done()
            elif op < 0.45 and foreign:
                src, d = rnd.choice(foreign)
                size = model.blobs[src][d]
                pend(("blob", d, size))
                st, h, body = req(reg, "POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                                  % (repo, d, src), b"", conn=conn)
                if st == 201:
                    with model.lock:
                        model.blobs[repo][d] = size
                elif st == 202:  # mount declined: abandon the upload it opened
                    req(reg, "DELETE", loc_path(h["location"]), conn=conn)
                else:
                    return fail("mount -> %d %s" % (st, body[:200]))
                done()
            elif op < 0.85:
                ds = rnd.sample(sorted(blobs), min(len(blobs), rnd.randint(2, 4)))
                raw = make_manifest((ds[0], blobs[ds[0]]), [(d, blobs[d]) for d in ds[1:]],
                                    "%s-%d" % (w, model.ops))
                d = sha256(raw)
                tag = "%s-t%d" % (w, rnd.randint(0, 4)) if rnd.random() < 0.7 else None
                pend(("manifest", d, raw, tag))
                st, h, body = put_manifest(reg, repo, tag or d, raw, conn)
                if st != 201:
                    return fail("PUT manifest -> %d %s" % (st, body[:200]))
                with model.lock:
                    model.manifests[repo][d] = raw
                    if tag:
                        model.tags[repo][tag] = d
                done()
            elif untagged:
                d = rnd.choice(untagged)
                pend(("delete", d))
                st, h, body = req(reg, "DELETE", "/v2/%s/manifests/%s" % (repo, d), conn=conn)
                if st != 202:
                    return fail("DELETE manifest -> %d %s" % (st, body[:200]))
                with model.lock:
                    model.manifests[repo].pop(d, None)
                    model.deleted[repo].add(d)
                done()
    except (OSError, http.client.HTTPException):
        return  # server went away (kill -9)


def consistency_check(reg, model, worker_repo):
    """After a restart: settle pending ops, then compare the registry against the model."""
    for w, op in list(model.pending.items()):
        repo = worker_repo[w]
        if op[0] == "blob":
            st, h = blob_status(reg, repo, op[1])
            if st == 200:
                eq(int(h.get("content-length", -1)), op[2], "in-flight blob %s size" % op[1])
                model.blobs[repo][op[1]] = op[2]
            else:
                eq(st, 404, "in-flight blob %s" % op[1])
        elif op[0] == "manifest":
            _, d, raw, tag = op
            st, _, body = get_manifest(reg, repo, d)
            if st == 200:
                eq(body, raw, "in-flight manifest %s complete" % d)
                model.manifests[repo][d] = raw
            else:
                eq(st, 404, "in-flight manifest %s" % d)
            if tag:
                st, h, body = get_manifest(reg, repo, tag)
                if st == 200 and h.get("docker-content-digest") == d:
                    eq(body, raw, "in-flight tag %s bytes" % tag)
                    model.manifests[repo][d] = raw
                    model.tags[repo][tag] = d
        elif op[0] == "delete":
            st, _, _ = get_manifest(reg, repo, op[1])
            if st == 404:
                model.manifests[repo].pop(op[1], None)
                model.deleted[repo].add(op[1])
            else:
                eq(st, 200, "in-flight delete %s" % op[1])
    model.pending.clear()

    nblobs = nman = 0
    for repo in model.blobs:
        # full GET + hash for blobs not yet verified and a sample of older ones; HEAD for all
        old = [d for d in model.blobs[repo] if (repo, d) in model.verified]
        sample = set(random.sample(old, min(len(old), 40)))
        for d, size in model.blobs[repo].items():
            if (repo, d) in model.verified and d not in sample:
                st, h = blob_status(reg, repo, d)
                eq((st, int(h.get("content-length", -1))), (200, size),
                   "HEAD acknowledged blob %s in %s" % (d, repo))
            else:
                st, body = get_blob(reg, repo, d)
                eq(st, 200, "acknowledged blob %s in %s" % (d, repo))
                eq((len(body), sha256(body)), (size, d), "blob %s content" % d)
                model.verified.add((repo, d))
            nblobs += 1
        for d, raw in model.manifests[repo].items():
            st, h, body = get_manifest(reg, repo, d)
            eq(st, 200, "acknowledged manifest %s in %s" % (d, repo))
            eq(body, raw, "manifest %s bytes" % d)
            nman += 1
        for d in model.deleted[repo]:
            eq(get_manifest(reg, repo, d)[0], 404, "deleted manifest %s stays deleted" % d)
        listed = list_tags(reg, repo)
        for tag, d in model.tags[repo].items():
            st, h, body = get_manifest(reg, repo, tag)
            eq((st, h.get("docker-content-digest")), (200, d), "tag %s:%s" % (repo, tag))
            eq(tag in listed, True, "tag %s listed" % tag)
        for tag in listed:
            st, h, body = get_manifest(reg, repo, tag)
            eq(st, 200, "listed tag %s:%s resolves" % (repo, tag))
            eq(sha256(body), h.get("docker-content-digest"), "listed tag %s hash" % tag)
        eq(sorted(listed), sorted(model.tags[repo]), "tags/list of %s" % repo)
    files = check_blob_files(reg)
    known = set()
    for repo in model.blobs:
        known |= set(model.blobs[repo]) | set(model.manifests[repo]) | model.deleted[repo]
    return nblobs, nman, len(files), len(files - known)


def crash_during_startup(ctx, reg):
    """Start the server, SIGKILL it a few ms into startup (before or while it opens its
    storage), then start it normally."""
    reg.kill9()
    e = dict(os.environ)
    e.update({"REGISTRY_HTTP_ADDR": "127.0.0.1:%d" % reg.port,
              "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": os.path.join(reg.data_dir, "store"),
              "REGISTRY_STORAGE_DELETE_ENABLED": "true"})
    e.update(ctx["env"])
    args = [reg.binary, "serve"]
    if reg.kind == "distribution":
        args.append(os.path.join(reg.data_dir, "config.yml"))
    with open(os.path.join(reg.data_dir, "startup-kill.log"), "ab") as log:
        p = subprocess.Popen(args, stdout=log, stderr=log, env=e)
        time.sleep(random.uniform(0.0, 0.05))
        p.kill()
        p.wait()
    reg.start(env=ctx["env"], data_dir=reg.data_dir, port=reg.port)


@suite.test
def test_repeated_kill_cycles(ctx):
    reg = new_registry(ctx)
    workers = ["w0", "w1", "w2"]
    worker_repo = {w: "crash/mixed-%s" % w for w in workers}
    model = Model(list(worker_repo.values()))
    rounds = 5
    for rnd in range(rounds):
        stop = threading.Event()
        threads = [threading.Thread(target=mixed_worker, args=(
            reg, model, w, worker_repo[w], [r for x, r in worker_repo.items() if x != w], stop))
            for w in workers]
        ops0 = model.ops
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.4, 2.0))
        alive(reg, "mixed round %d" % rnd)
        last = rnd == rounds - 1
        if last:
            stop.set()
            for t in threads:
                t.join()
            rc = reg.stop()
            if ctx["args"].kind == "berth" and rc != 0:
                raise AssertionError("SIGTERM exit status %s" % rc)
            reg.start(env=ctx["env"], data_dir=reg.data_dir, port=reg.port)
        else:
            reg.kill9()
            stop.set()
            for t in threads:
                t.join()
            restart(ctx, reg)
            if rnd == 2:  # double crash: kill again right after the restart (recovery) ...
                reg.kill9()
                restart(ctx, reg)
            if rnd == 1:  # ... and kill one at a random moment of startup itself
                crash_during_startup(ctx, reg)
        if model.errors:
            raise AssertionError("round %d: unexpected responses: %s" % (rnd, model.errors[:5]))
        pend = dict(model.pending)
        nb, nm, nf, orphans = consistency_check(reg, model, worker_repo)
        print("  round %d: %s, %d ops acknowledged, %d pending at kill; now %d blobs, "
              "%d manifests, %d blob files ok (%d not referenced by any acknowledged op)"
              % (rnd, "SIGTERM" if last else "kill -9", model.ops - ops0, len(pend), nb, nm,
                 nf, orphans), flush=True)
    reg.stop()


# ---------------------------------------------------------------------------------------------
# SIGTERM under traffic, many times: a stop finishes what is in flight and never aborts
# (libmicrohttpd's MHD_quiesce_daemon raced its own epoll workers and could abort the process:
# "Failed to remove listen FD from epoll set"; berth now owns and closes the listening socket).

SIGTERM_CYCLES = int(os.environ.get("BERTH_SIGTERM_CYCLES", "200"))


def fast_start(binary, port, data_dir, env):
    """Start the server and return as soon as it accepts (the harness polls every 50 ms)."""
    e = dict(os.environ)
    e.update(env)
    e.update({"REGISTRY_HTTP_ADDR": "127.0.0.1:%d" % port,
              "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": os.path.join(data_dir, "store"),
              "REGISTRY_STORAGE_DELETE_ENABLED": "true",
              "REGISTRY_LOG_ACCESSLOG_DISABLED": "true",
              "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
              "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    log = open(os.path.join(data_dir, "sigterm.log"), "ab")
    proc = subprocess.Popen([binary, "serve"], stdout=log, stderr=log, env=e)
    log.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited at start with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.003)
    proc.kill()
    raise AssertionError("server did not start")


class Acked:
    """What the server acknowledged, across all cycles: it must all be there afterwards."""
    def __init__(self):
        self.lock = threading.Lock()
        self.blobs = []   # (repo, digest)
        self.tags = []    # (repo, tag, digest)
        self.requests = 0
        self.cut = 0      # requests whose connection closed before an answer (refused/reset)
        self.errors = []

    def count(self):
        with self.lock:
            self.requests += 1

    def add(self, kind, item):
        with self.lock:
            getattr(self, kind).append(item)


def stopping(r):
    """A request that starts while the server drains gets 503 and the connection closes."""
    return (r.getheader("Connection") or "").lower() == "close"


class Draining(Exception):
    """The server answered 503 + Connection: close: it is stopping."""


def term_ask(conn, acked, method, path, body, headers, want):
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    acked.count()
    if r.status == 503 and stopping(r):
        raise Draining()
    if r.status != want:
        raise AssertionError("%s %s answered %d" % (method, path, r.status))
    return data


def term_traffic(port, repo, acked, stop, w):
    """Keep-alive client: blob pushes, tag PUTs, GETs, until stop or the connection dies."""
    conn = None
    n = 0
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            data = os.urandom(512 + random.randrange(4096))
            d = sha256(data)
            term_ask(conn, acked, "POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data,
                     {"Content-Type": "application/octet-stream"}, 201)
            acked.add("blobs", (repo, d))
            raw = make_manifest((d, len(data)), [], "term-%d-%d" % (w, n))
            tag = "t%d-%d-%d" % (w, n, random.randrange(1 << 30))
            term_ask(conn, acked, "PUT", "/v2/%s/manifests/%s" % (repo, tag), raw,
                     {"Content-Type": OCI_MANIFEST}, 201)
            acked.add("tags", (repo, tag, sha256(raw)))
            body = term_ask(conn, acked, "GET", "/v2/%s/manifests/%s" % (repo, tag), None,
                            {"Accept": OCI_MANIFEST}, 200)
            if body != raw:
                raise AssertionError("manifest GET answered other bytes")
            n += 1
        except Draining:
            break
        except (OSError, http.client.HTTPException):
            # The server stopped between requests of this connection (closed, refused or
            # reset): a request never answered is not acknowledged, so nothing is owed.
            with acked.lock:
                acked.cut += 1
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.005)
    if conn is not None:
        conn.close()


def term_worker(port, repo, acked, stop, w):
    try:
        term_traffic(port, repo, acked, stop, w)
    except Exception as e:  # an unexpected answer: reported by the test
        with acked.lock:
            acked.errors.append("worker %d: %s" % (w, e))


def slow_put(port, repo, result):
    """One single-request push whose body trickles in for ~30 ms: SIGTERM lands in the middle,
    and the answer must still be 201 (in-flight requests are finished, not cut). The request
    asks for 100-continue, so the server's interim answer says it has started it."""
    data = os.urandom(256 * 1024)
    d = sha256(data)
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        head = ("POST /v2/%s/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
                "Expect: 100-continue\r\n\r\n" % (repo, d, len(data)))
        s.sendall(head.encode())
        interim = b""
        while b"\r\n\r\n" not in interim:
            piece = s.recv(1)
            if not piece:
                raise OSError("closed before 100 Continue")
            interim += piece
        if not interim.startswith(b"HTTP/1.1 100"):
            raise OSError("no 100 Continue: %r" % interim[:80])
        result["sent_head"] = time.time()
        for i in range(0, len(data), 32768):
            s.sendall(data[i:i + 32768])
            time.sleep(0.004)
        resp = b""
        while b"\r\n\r\n" not in resp:
            piece = s.recv(4096)
            if not piece:
                break
            resp += piece
        result["status"] = resp.split(b" ", 2)[1].decode() if resp.startswith(b"HTTP/") else \
            "no answer (%r)" % resp[:80]
        result["digest"] = d
    except OSError as e:
        result["status"] = "error: %s" % e
    finally:
        s.close()


def verify_acked(port, acked, since, sample):
    """HEADs the blobs and tags acknowledged after since (counts of each), plus a random sample
    of the earlier ones; returns how many were checked."""
    with acked.lock:
        blobs = acked.blobs[since[0]:] + random.sample(acked.blobs[:since[0]],
                                                         min(sample, since[0]))
        tags = acked.tags[since[1]:] + random.sample(acked.tags[:since[1]], min(sample, since[1]))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        for r, d in blobs:
            c.request("HEAD", "/v2/%s/blobs/%s" % (r, d))
            resp = c.getresponse()
            resp.read()
            eq(resp.status, 200, "acknowledged blob %s" % d)
        for r, tag, d in tags:
            c.request("HEAD", "/v2/%s/manifests/%s" % (r, tag), headers={"Accept": OCI_MANIFEST})
            resp = c.getresponse()
            resp.read()
            eq(resp.status, 200, "acknowledged tag %s" % tag)
            eq(resp.getheader("Docker-Content-Digest"), d, "digest of tag %s" % tag)
    finally:
        c.close()
    return len(blobs) + len(tags)


@suite.test
def test_sigterm_under_traffic_cycles(ctx):
    if ctx["args"].kind != "berth":
        return
    data_dir = tempfile.mkdtemp(prefix="berth-e2e-term-")
    port = free_port()
    acked = Acked()
    repo = "term/app"
    t0 = time.time()
    verified = 0
    checked = (0, 0)
    try:
        for cyc in range(SIGTERM_CYCLES):
            proc = fast_start(ctx["args"].berth, port, data_dir, ctx["env"])
            if cyc and cyc % 25 == 0:
                # What was acknowledged since the last look, and a sample of what came before,
                # is still there after all those stops (everything is checked at the end).
                verified += verify_acked(port, acked, checked, 50)
                checked = (len(acked.blobs), len(acked.tags))
            stop = threading.Event()
            threads = [threading.Thread(target=term_worker, args=(port, repo, acked, stop, w))
                       for w in range(3)]
            # Keep-alive connections held open and idle: they must not hold the stop up.
            idle = []
            for _ in range(2):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                c.request("GET", "/v2/")
                c.getresponse().read()
                idle.append(c)
            slow = {}
            st = threading.Thread(target=slow_put, args=(port, repo, slow))
            for t in threads:
                t.start()
            st.start()
            time.sleep(random.uniform(0.005, 0.03))
            while "sent_head" not in slow and st.is_alive():
                time.sleep(0.001)
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("cycle %d: SIGTERM did not stop the server in 30 s" % cyc)
            stop.set()
            for t in threads:
                t.join()
            st.join()
            for c in idle:
                c.close()
            with open(os.path.join(data_dir, "sigterm.log"), "rb") as f:
                log = f.read().decode("utf-8", "replace")
            bad = [l for l in log.splitlines() if "Fatal" in l or "ERROR: AddressSanitizer" in l
                   or "runtime error:" in l or "LeakSanitizer" in l]
            if rc != 0 or bad:
                raise AssertionError("cycle %d: exit status %s on SIGTERM; %s" %
                                     (cyc, rc, "\n".join(bad[-20:] or log.splitlines()[-20:])))
            if acked.errors:
                raise AssertionError("cycle %d: %s" % (cyc, acked.errors[:5]))
            eq(slow.get("status"), "201", "cycle %d: the push in flight at SIGTERM" % cyc)
            acked.add("blobs", (repo, slow["digest"]))
            os.unlink(os.path.join(data_dir, "sigterm.log"))
        proc = fast_start(ctx["args"].berth, port, data_dir, ctx["env"])
        try:
            verified += verify_acked(port, acked, (0, 0), 0)
        finally:
            proc.send_signal(signal.SIGTERM)
            eq(proc.wait(timeout=30), 0, "exit status on the last SIGTERM")
        print("  %d SIGTERM cycles in %.1f s: 0 abnormal exits, %d requests answered, %d cut "
              "between requests, %d in-flight pushes finished, %d checks of acknowledged writes"
              % (SIGTERM_CYCLES, time.time() - t0, acked.requests, acked.cut, SIGTERM_CYCLES,
                 verified), flush=True)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    suite.main(setup=setup, teardown=teardown)
