#!/usr/bin/env python3
"""test_mirror.py — the pull-through mirror against real upstream registries behind a fault
proxy: the three addressing styles, serve-stale under every fault, the circuit breaker, tags
moved or deleted upstream, blobs streamed once to many readers, a corrupt upstream blob, and
kill -9 in the middle of a fetch.

    python3 tests/e2e/test_mirror.py --berth build/release/berth

Upstreams: a berth with token auth and anonymous pull (a Docker Hub lookalike, token flow
included) and Debian's Distribution 2.8 with htpasswd, each behind a FaultProxy that counts
what reaches it (upstream requests are counted there, never guessed).
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, Suite  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
from upstreams import (MT_MANIFEST, RegistryClient, make_image, pull,  # noqa: E402
                       start_distribution_htpasswd, start_hub_like)

suite = Suite("e2e-mirror")
MiB = 1024 * 1024
ACCEPT = "application/vnd.oci.image.index.v1+json, " + MT_MANIFEST


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def mirror_config(ctx, extra="", keepdeleted=True):
    return """version: 0.1
berth:
  mirror:
    timeout: 1s
    breaker: 3s
    keepdeleted: %s
    upstreams:
      - prefix: docker.io
        url: http://127.0.0.1:%d
        default: true
      - prefix: quay.io
        url: http://127.0.0.1:%d
        username: %s
        password: %s
%s""" % ("true" if keepdeleted else "false", ctx.hub_px.port, ctx.dist_px.port,
         ctx.dist.user, ctx.dist.password, extra)


def start_mirror(ctx, data_dir=None, port=None, **kw):
    path = os.path.join(ctx.tmp, "mirror-%d.yml" % len(ctx.mirrors))
    with open(path, "w") as f:
        f.write(mirror_config(ctx, **kw))
    reg = Registry(ctx.berth)
    reg.start(config=path, data_dir=data_dir, port=port)
    ctx.mirrors.append(reg)
    return reg


def client(reg):
    return RegistryClient("127.0.0.1", reg.port)


def get(reg, path, headers=None, timeout=30):
    h = {"Accept": ACCEPT}
    h.update(headers or {})
    return reg.request("GET", path, headers=h, timeout=timeout)


def reset(ctx):
    for px in (ctx.hub_px, ctx.dist_px):
        px.clear_faults()
        px.reset_counts()


def fresh(ctx):
    """No fault, counters at zero, and the main mirror's breakers closed (a test left by a
    failure may have tripped them)."""
    reset(ctx)
    deadline = time.time() + 10
    while time.time() < deadline:
        st, _, body = ctx.m.request("GET", "/berth/v1/mirror")
        if st == 200 and all(u["up"] for u in json.loads(body)["upstreams"]):
            return
        time.sleep(0.2)
    raise AssertionError("the breakers stayed open")


def wait_up(ctx, reg, repo="docker.io/library/hello"):
    """Waits until the breaker lets the upstream be asked again (3 s) and it answered."""
    deadline = time.time() + 10
    while time.time() < deadline:
        st, h, _ = get(reg, "/v2/%s/manifests/1" % repo)
        if st == 200 and "warning" not in h:
            return
        time.sleep(0.25)
    raise AssertionError("the upstream never came back for %s" % repo)


# ---------------------------------------------------------------------------------------------


@suite.test
def test_three_addressing_styles_share_one_cache(ctx):
    fresh(ctx)
    reset(ctx)
    m = ctx.m
    c = client(m)
    want = ctx.hello_digest
    got = pull(c, "docker.io/library/hello", "1")  # 1. path prefix
    if want not in got:
        raise AssertionError("prefixed pull did not get %s" % want)
    blobs_fetched = ctx.hub_px.count("GET", "/blobs/")
    if blobs_fetched != 3:
        raise AssertionError("first pull fetched %d blobs from the upstream, want 3"
                             % blobs_fetched)
    ctx.hub_px.reset_counts()
    # 2. containerd: ?ns=docker.io on un-prefixed paths
    st, h, body = get(m, "/v2/library/hello/manifests/1?ns=docker.io")
    eq(st, 200, "GET ?ns=docker.io")
    eq(h.get("docker-content-digest"), want, "digest via ?ns=")
    for d in ctx.hello_blobs:
        st, _, b = m.request("GET", "/v2/library/hello/blobs/%s?ns=docker.io" % d)
        eq((st, "sha256:" + hashlib.sha256(b).hexdigest()), (200, d), "blob via ?ns=")
    # 3. Docker's registry-mirrors: un-prefixed names, Docker Hub's library/ rule
    got3 = pull(c, "hello", "1")
    if want not in got3:
        raise AssertionError("un-prefixed pull did not get %s" % want)
    eq(ctx.hub_px.count("GET", "/blobs/"), 0, "blob GETs upstream for the cached image")
    eq(ctx.hub_px.count("HEAD", "/manifests/1"), 2, "tag checks upstream (one per pull)")
    eq(ctx.hub_px.count(), 2, "upstream requests for two warm pulls")
    # One repository in the catalog for all three.
    st, _, body = m.request("GET", "/v2/_catalog")
    repos = json.loads(body)["repositories"]
    eq([r for r in repos if "hello" in r], ["docker.io/library/hello"], "cached repositories")


@suite.test
def test_second_upstream_with_credentials(ctx):
    fresh(ctx)
    reset(ctx)
    c = client(ctx.m)
    got = pull(c, "quay.io/team/tool", "2.0")
    if ctx.tool_digest not in got:
        raise AssertionError("quay.io pull did not get %s" % ctx.tool_digest)
    if ctx.dist_px.count() == 0:
        raise AssertionError("the Distribution upstream was never asked")
    log = ctx.m.log()
    if ctx.dist.password in log:
        raise AssertionError("the upstream's password is in the mirror's log")


@suite.test
def test_pushes_into_a_mirrored_prefix_are_refused(ctx):
    fresh(ctx)
    m = ctx.m
    for path in ("/v2/docker.io/library/hello/blobs/uploads/",
                 "/v2/quay.io/team/tool/blobs/uploads/"):
        st, _, body = m.request("POST", path)
        eq(st, 405, "POST %s" % path)
        eq(json.loads(body)["errors"][0]["code"], "UNSUPPORTED", "code for %s" % path)
    st, _, _ = m.request("PUT", "/v2/docker.io/library/hello/manifests/x", b"{}",
                         {"Content-Type": MT_MANIFEST})
    eq(st, 405, "manifest PUT into a mirrored prefix")
    # Other repositories stay a normal registry, even un-prefixed ones with a default upstream.
    reset(ctx)
    data = os.urandom(3000)
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    st, _, body = m.request("POST", "/v2/team/app/blobs/uploads/?digest=" + d, data,
                            {"Content-Type": "application/octet-stream"})
    eq(st, 201, "push to a local repository (%s)" % body[:200])
    st, _, b = m.request("GET", "/v2/team/app/blobs/" + d)
    eq((st, b), (200, data), "pull from the local repository")
    eq(ctx.hub_px.count(), 0, "upstream requests for a local repository")


@suite.test
def test_by_digest_never_asks_the_upstream(ctx):
    fresh(ctx)
    c = client(ctx.m)
    pull(c, "docker.io/library/hello", "1")
    reset(ctx)
    got = pull(c, "docker.io/library/hello", ctx.hello_digest)
    eq(ctx.hub_px.count(), 0, "upstream requests for a cached digest (%r)" % got)


def check_stale(ctx, m, what):
    st, h, body = get(m, "/v2/docker.io/library/hello/manifests/1")
    eq(st, 200, "cached tag while the upstream %s (%s)" % (what, body[:200]))
    eq(h.get("docker-content-digest"), ctx.hello_digest, "cached digest (%s)" % what)
    w = h.get("warning", "")
    if not w.startswith('299 - "served from cache:'):
        raise AssertionError("Warning header while the upstream %s: %r" % (what, w))
    st, h, body = get(m, "/v2/docker.io/library/never-pulled/manifests/1")
    eq(st, 503, "uncached tag while the upstream %s" % what)
    err = json.loads(body)["errors"][0]
    eq(err["code"], "UNAVAILABLE", "error code (%s)" % what)
    if "docker.io" not in (err.get("detail") or ""):
        raise AssertionError("the error does not name the upstream: %r" % err)
    return err["detail"]


@suite.test
def test_serve_stale_under_every_fault(ctx):
    fresh(ctx)
    m = ctx.m
    pull(client(m), "docker.io/library/hello", "1")
    faults = [("refuse", {}, "connect"), ("status", {"code": 500}, "500"),
              ("status", {"code": 503}, "503"), ("unauthorized", {}, "401"),
              ("ratelimit", {"retry_after": 4}, "429"), ("hang", {}, "")]
    for kind, params, cause in faults:
        reset(ctx)
        wait_up(ctx, m)
        reset(ctx)
        ctx.hub_px.set_fault(kind, **params)
        t0 = time.time()
        detail = check_stale(ctx, m, kind)
        took = time.time() - t0
        if cause and cause.lower() not in detail.lower():
            raise AssertionError("%s: the error does not say why: %r" % (kind, detail))
        if took > 3.5:
            raise AssertionError("%s: answers took %.2f s (timeout is 1 s)" % (kind, took))
        # The breaker is open now: one failure per interval, answers at once.
        n = ctx.hub_px.count(status=None) + ctx.hub_px.count()
        t0 = time.time()
        for _ in range(20):
            st, h, _ = get(m, "/v2/docker.io/library/hello/manifests/1")
            eq(st, 200, "cached tag with the breaker open (%s)" % kind)
        per = (time.time() - t0) / 20
        if per > 0.05:
            raise AssertionError("%s: %.1f ms per cached GET with the breaker open"
                                 % (kind, per * 1000))
        eq(ctx.hub_px.count(status=None) + ctx.hub_px.count(), n,
           "upstream requests with the breaker open (%s)" % kind)
        if kind == "ratelimit":
            st, _, body = m.request("GET", "/berth/v1/mirror")
            up = [u for u in json.loads(body)["upstreams"] if u["prefix"] == "docker.io"][0]
            if up["up"] or up["down_for_seconds"] < 3:
                raise AssertionError("Retry-After 4 not honoured: %r" % up)
    reset(ctx)
    wait_up(ctx, m)


@suite.test
def test_tag_moved_upstream_old_digest_stays(ctx):
    fresh(ctx)
    m = ctx.m
    c = client(m)
    old = pull(c, "docker.io/library/moving", "1")
    img = make_image()
    ctx.hub.seed("library/moving", "1", img)
    reset(ctx)
    st, h, body = get(m, "/v2/docker.io/library/moving/manifests/1")
    eq(st, 200, "moved tag")
    new_digest = h.get("docker-content-digest")
    if new_digest in old:
        raise AssertionError("the mirror kept serving the old content of a moved tag")
    pull(c, "docker.io/library/moving", "1")
    ctx.hub_px.set_fault("refuse")
    old_manifest = list(old)[0]  # pull() lists the top manifest first
    eq(pull(c, "docker.io/library/moving", old_manifest), old,
       "the old content by digest, upstream down")
    reset(ctx)


@suite.test
def test_tag_deleted_upstream(ctx):
    fresh(ctx)
    m = ctx.m
    pull(client(m), "docker.io/library/hello", "1")
    reset(ctx)
    wait_up(ctx, m)
    ctx.hub_px.set_fault("delete_tag", repo="library/hello", tag="1")
    st, h, _ = get(m, "/v2/docker.io/library/hello/manifests/1")
    eq(st, 200, "a tag deleted upstream, keepdeleted on")
    if "deleted upstream" not in h.get("warning", ""):
        raise AssertionError("Warning for a deleted tag: %r" % h.get("warning"))
    strict = start_mirror(ctx, keepdeleted=False)
    ctx.hub_px.clear_faults()
    pull(client(strict), "docker.io/library/hello", "1")
    ctx.hub_px.set_fault("delete_tag", repo="library/hello", tag="1")
    st, _, body = get(strict, "/v2/docker.io/library/hello/manifests/1")
    eq(st, 404, "a tag deleted upstream, keepdeleted off (%s)" % body[:200])
    strict.stop()
    reset(ctx)


@suite.test
def test_corrupt_upstream_blob_is_cut_off_and_not_kept(ctx):
    fresh(ctx)
    m = ctx.m
    ctx.hub.seed("library/corrupt", "1", make_image(layer_size=300000))
    st, h, body = get(m, "/v2/docker.io/library/corrupt/manifests/1")
    eq(st, 200, "manifest")
    d = json.loads(body)["layers"][0]["digest"]
    size = json.loads(body)["layers"][0]["size"]
    reset(ctx)
    ctx.hub_px.set_fault("corrupt_blob", digest=d)
    conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=30)
    conn.request("GET", "/v2/docker.io/library/corrupt/blobs/" + d)
    r = conn.getresponse()
    got = b""
    try:
        got = r.read()
        whole = True
    except http.client.IncompleteRead as e:
        got = e.partial
        whole = False
    conn.close()
    if whole and r.status == 200 and len(got) == size:
        raise AssertionError("a blob that does not match its digest was served whole")
    if len(got) >= size:
        raise AssertionError("%d of %d bytes of a corrupt blob reached the client"
                             % (len(got), size))
    ctx.hub_px.clear_faults()
    # Nothing was kept: the next pull fetches again and gets the right bytes.
    ctx.hub_px.reset_counts()
    st, _, b = m.request("GET", "/v2/docker.io/library/corrupt/blobs/" + d)
    eq((st, "sha256:" + hashlib.sha256(b).hexdigest()), (200, d), "blob after the fault")
    eq(ctx.hub_px.count("GET", "/blobs/" + d), 1, "upstream GETs of the blob after the fault")


@suite.test
def test_concurrent_pulls_of_one_uncached_layer_single_flight(ctx):
    fresh(ctx)
    m = ctx.m
    mib = ctx.big_mib
    img = ctx.hub.seed_big("library/big", "1", mib)
    big = img.big
    st, _, body = get(m, "/v2/docker.io/library/big/manifests/1")
    eq(st, 200, "manifest of the big image")
    reset(ctx)
    # Throttled upstream: the layer takes a few seconds, so readers overlap with the fetch.
    ctx.hub_px.set_fault("slow", bytes_per_sec=mib * MiB // 3, path_contains="/blobs/")
    results = [None] * 20
    t_start = time.time()

    def reader(i):
        conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=120)
        try:
            conn.request("GET", "/v2/docker.io/library/big/blobs/" + big.digest)
            r = conn.getresponse()
            h = hashlib.sha256()
            n = 0
            first = None
            while True:
                piece = r.read(1024 * 1024)
                if not piece:
                    break
                if first is None:
                    first = time.time()
                h.update(piece)
                n += len(piece)
            results[i] = (r.status, "sha256:" + h.hexdigest(), n, first)
        except Exception as e:  # reported below
            results[i] = ("error", str(e), 0, None)
        finally:
            conn.close()
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_end = time.time()
    for i, r in enumerate(results):
        eq(r[:3], (200, big.digest, big.size), "reader %d" % i)
    eq(ctx.hub_px.count("GET", "/blobs/" + big.digest), 1, "upstream GETs of the layer")
    first = min(r[3] for r in results)
    if first - t_start > (t_end - t_start) * 0.5:
        raise AssertionError("first bytes after %.1f s of %.1f s: not streamed"
                             % (first - t_start, t_end - t_start))
    ctx.hub_px.clear_faults()
    # Range on the cached blob.
    st, h, b = m.request("GET", "/v2/docker.io/library/big/blobs/" + big.digest,
                         headers={"Range": "bytes=1000-1999"})
    eq((st, len(b)), (206, 1000), "Range on the cached layer")
    print("  %d readers x %d MiB in %.1f s, first byte after %.2f s, 1 upstream GET"
          % (len(results), mib, t_end - t_start, first - t_start), flush=True)


@suite.test
def test_kill9_mid_fetch_nothing_partial(ctx):
    fresh(ctx)
    data_dir = tempfile.mkdtemp(prefix="berth-e2e-mirror-kill-")
    m = start_mirror(ctx, data_dir=data_dir)
    img = ctx.hub.seed_big("library/killme", "1", 16, seed=7)
    big = img.big
    st, _, _ = get(m, "/v2/docker.io/library/killme/manifests/1")
    eq(st, 200, "manifest")
    reset(ctx)
    ctx.hub_px.set_fault("slow", bytes_per_sec=4 * MiB, path_contains="/blobs/")
    conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=60)
    conn.request("GET", "/v2/docker.io/library/killme/blobs/" + big.digest)
    r = conn.getresponse()
    r.read(2 * MiB)  # mid-fetch
    port = m.port
    m.kill9()
    conn.close()
    ctx.hub_px.clear_faults()
    m.start(config=os.path.join(ctx.tmp, "mirror-%d.yml" % (len(ctx.mirrors) - 1)),
            data_dir=data_dir, port=port)
    st, _, _ = m.request("HEAD", "/v2/docker.io/library/killme/blobs/" + big.digest)
    ctx.hub_px.reset_counts()
    st, _, b = m.request("GET", "/v2/docker.io/library/killme/blobs/" + big.digest)
    eq((st, "sha256:" + hashlib.sha256(b).hexdigest(), len(b)), (200, big.digest, big.size),
       "the layer after kill -9 mid-fetch")
    # Nothing in the blob store but whole, verified blobs.
    store = os.path.join(data_dir, "store", "blobs", "sha256")
    for sub in os.listdir(store):
        for name in os.listdir(os.path.join(store, sub)):
            with open(os.path.join(store, sub, name), "rb") as f:
                eq(hashlib.sha256(f.read()).hexdigest(), name, "blob file %s" % name)
    m.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@suite.test
def test_everything_cached_pulls_with_every_upstream_dead(ctx):
    fresh(ctx)
    c = client(ctx.m)
    pulled = {}
    for repo, ref in (("docker.io/library/hello", "1"), ("docker.io/library/multi", "1"),
                      ("quay.io/team/tool", "2.0")):
        pulled[(repo, ref)] = pull(c, repo, ref)
    ctx.hub_px.set_fault("refuse")
    ctx.dist_px.set_fault("refuse")
    for (repo, ref), want in pulled.items():
        eq(pull(c, repo, ref), want, "%s:%s with every upstream down" % (repo, ref))
        top = [d for d in want][0]
        eq(pull(c, repo, top), want, "%s@%s with every upstream down" % (repo, top))
    st, _, body = get(ctx.m, "/v2/quay.io/team/never/manifests/1")
    eq(st, 503, "uncached with the upstream down")
    if "quay.io" not in json.loads(body)["errors"][0]["detail"]:
        raise AssertionError("error does not name quay.io: %r" % body)
    st, _, body = ctx.m.request("GET", "/berth/v1/mirror")
    ups = {u["prefix"]: u for u in json.loads(body)["upstreams"]}
    for p in ("docker.io", "quay.io"):
        if ups[p]["up"] or not ups[p].get("last_error"):
            raise AssertionError("status of %s: %r" % (p, ups[p]))
        for k in ("hits", "misses", "stale", "bytes_fetched", "bytes_served_from_cache"):
            if k not in ups[p]:
                raise AssertionError("status lacks %s" % k)
    reset(ctx)


@suite.test
def test_referrers_come_with_the_image(ctx):
    fresh(ctx)
    img = ctx.hub.seed("library/signed", "1")
    hc = ctx.hub.client()
    st, h, body = hc.get_manifest("library/signed", "1")
    subject = h["docker-content-digest"]
    empty = b"{}"
    hc.push_blob("library/signed", empty)
    sig = json.dumps({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": "sha256:" + hashlib.sha256(empty).hexdigest(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": "sha256:" + hashlib.sha256(empty).hexdigest(), "size": 2}],
        "subject": {"mediaType": MT_MANIFEST, "digest": subject, "size": len(body)},
    }, sort_keys=True).encode()
    sig_digest = "sha256:" + hashlib.sha256(sig).hexdigest()
    eq(hc.put_manifest("library/signed", sig_digest, sig, MT_MANIFEST), sig_digest,
       "referrer pushed upstream")
    pull(client(ctx.m), "docker.io/library/signed", "1")
    ctx.hub_px.set_fault("refuse")
    st, _, body = get(ctx.m, "/v2/docker.io/library/signed/referrers/" + subject)
    eq(st, 200, "referrers of a mirrored image, upstream down")
    got = [d["digest"] for d in json.loads(body)["manifests"]]
    eq(got, [sig_digest], "referrers of the mirrored image")
    st, _, b = get(ctx.m, "/v2/docker.io/library/signed/manifests/" + sig_digest)
    eq((st, b), (200, sig), "the referrer itself, upstream down")
    reset(ctx)
    del img


@suite.test
def test_a_crowd_checking_one_tag_costs_one_head(ctx):
    fresh(ctx)
    pull(client(ctx.m), "docker.io/library/hello", "1")
    reset(ctx)
    ctx.hub_px.set_fault("delay", seconds=0.5, path_contains="/manifests/")
    res = []

    def one():
        st, h, _ = get(ctx.m, "/v2/docker.io/library/hello/manifests/1")
        res.append((st, h.get("docker-content-digest"), h.get("warning")))
    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eq(res, [(200, ctx.hello_digest, None)] * 20, "answers to 20 concurrent tag GETs")
    n = ctx.hub_px.count("HEAD", "/manifests/1")
    if n > 2:
        raise AssertionError("%d upstream HEADs for 20 concurrent checks of one tag" % n)
    reset(ctx)


@suite.test
def test_tag_checks_leak_nothing(ctx):
    # Regression: each check ran on a thread of its own that left its SQLite connection (a
    # handle and two descriptors) behind; past the descriptor limit every check failed.
    fresh(ctx)
    pull(client(ctx.m), "docker.io/library/hello", "1")
    fds = lambda: len(os.listdir("/proc/%d/fd" % ctx.m.proc.pid))
    for _ in range(20):
        get(ctx.m, "/v2/docker.io/library/hello/manifests/1")
    before = fds()
    conn = http.client.HTTPConnection("127.0.0.1", ctx.m.port, timeout=30)
    for i in range(400):
        conn.request("GET", "/v2/docker.io/library/hello/manifests/1", headers={"Accept": ACCEPT})
        r = conn.getresponse()
        r.read()
        eq(r.status, 200, "tag GET %d" % i)
    conn.close()
    after = fds()
    if after > before + 8:
        raise AssertionError("descriptors grew from %d to %d over 400 tag checks"
                             % (before, after))


def berth_cli(ctx, *args, timeout=120):
    import subprocess
    p = subprocess.run([ctx.berth] + list(args), capture_output=True, timeout=timeout,
                       env=dict(os.environ, HOME=ctx.tmp))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@suite.test
def test_sync_prefetches_a_semver_range(ctx):
    fresh(ctx)
    for tag in ("3.18.0", "3.19.1", "3.20.0", "2.9.0", "edge"):
        ctx.hub.seed("library/alpine", tag)
    rc, out, err = berth_cli(ctx, "mirror", "sync", "--insecure", "--semver", "^3",
                             "127.0.0.1:%d/docker.io/library/alpine" % ctx.m.port)
    eq(rc, 0, "berth mirror sync exit status (%s %s)" % (out, err))
    if "3 tags" not in out:
        raise AssertionError("sync output: %r" % out)
    if ctx.hub_px.count("GET", "/blobs/") < 9:
        raise AssertionError("sync fetched %d blobs, want 9" % ctx.hub_px.count("GET", "/blobs/"))
    ctx.hub_px.set_fault("refuse")
    c = client(ctx.m)
    for tag in ("3.18.0", "3.19.1", "3.20.0"):
        pull(c, "docker.io/library/alpine", tag)
    for tag in ("2.9.0", "edge"):
        st, _, _ = get(ctx.m, "/v2/docker.io/library/alpine/manifests/" + tag)
        eq(st, 503, "a tag outside the range, upstream down")
    # Errors are one line and a non-zero exit.
    rc, out, err = berth_cli(ctx, "mirror", "sync", "--insecure",
                             "127.0.0.1:%d/team/not-mirrored" % ctx.m.port)
    if rc == 0 or "not a mirrored repository" not in err:
        raise AssertionError("sync of a local repository: %d %r %r" % (rc, out, err))
    rc, out, err = berth_cli(ctx, "mirror", "status", "--insecure", "127.0.0.1:%d" % ctx.m.port)
    eq(rc, 0, "berth mirror status exit status (%s)" % err)
    if "docker.io" not in out or "DOWN" not in out or "quay.io" not in out:
        raise AssertionError("status output: %r" % out)
    reset(ctx)


@suite.test
def test_scheduled_sync_fills_the_cache(ctx):
    fresh(ctx)
    ctx.hub.seed("library/sched", "1.0.0")
    m = start_mirror(ctx, extra="""    sync:
      - repository: docker.io/library/sched
        semver: ">=1"
        interval: 1h
""")
    deadline = time.time() + 20
    while time.time() < deadline and ctx.hub_px.count("GET", "library/sched/blobs/") < 3:
        time.sleep(0.2)
    eq(ctx.hub_px.count("GET", "library/sched/blobs/"), 3, "blobs the scheduled sync fetched")
    time.sleep(0.3)
    ctx.hub_px.set_fault("refuse")
    pull(client(m), "docker.io/library/sched", "1.0.0")
    m.stop()
    reset(ctx)


def setup(args):
    class Ctx:
        pass
    c = Ctx()
    c.berth = args.berth
    c.tmp = tempfile.mkdtemp(prefix="berth-e2e-mirror-")
    c.mirrors = []
    c.big_mib = int(os.environ.get("BERTH_MIRROR_BIG_MIB", "256"))
    c.hub = start_hub_like("build/release/berth", c.tmp)
    c.dist = start_distribution_htpasswd(c.tmp, "alice", "dist-secret-pw")
    c.hub_px = FaultProxy("127.0.0.1", c.hub.port).start()
    c.dist_px = FaultProxy("127.0.0.1", c.dist.port).start()
    hello = c.hub.seed("library/hello", "1")
    st, h, body = c.hub.client().get_manifest("library/hello", "1")
    c.hello_digest = h["docker-content-digest"]
    m = json.loads(body)
    c.hello_blobs = [m["config"]["digest"]] + [l["digest"] for l in m["layers"]]
    c.hub.seed_index("library/multi", "1")
    c.hub.seed("library/moving", "1")
    c.dist.seed("team/tool", "2.0")
    st, h, _ = c.dist.client().get_manifest("team/tool", "2.0")
    c.tool_digest = h["docker-content-digest"]
    del hello
    c.m = start_mirror(c)
    return c


def teardown(ctx):
    problems = []
    for reg in ctx.mirrors:
        if reg.proc is not None:
            rc = reg.stop()
            if rc not in (0, None):
                problems.append("mirror exited with status %s on SIGTERM" % rc)
        problems += ["sanitizer: " + l for l in reg.sanitizer_errors()]
        reg.cleanup()
    for px in (ctx.hub_px, ctx.dist_px):
        px.stop()
    ctx.hub.stop()
    ctx.dist.stop()
    shutil.rmtree(ctx.tmp, ignore_errors=True)
    return problems


if __name__ == "__main__":
    suite.main(setup=setup, teardown=teardown)
