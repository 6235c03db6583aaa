#!/usr/bin/env python3
"""test_clients.py — real OCI clients (skopeo, podman, umoci, containerd) against a running
registry.

Images are built offline with umoci (no network, no docker): a two-platform image
(linux/amd64 + linux/arm64, three gzip layers each, one layer shared) plus an OCI image index
written into the layout by hand. Every test compares digests end to end.

    python3 tests/e2e/test_clients.py --berth build/release/berth
    python3 tests/e2e/test_clients.py --kind distribution --berth /usr/bin/docker-registry

podman runs as root with a private VFS store under the suite's temp dir (see Podman below);
the system's container storage is never touched. containerd is started by the suite with its
root, state and socket under the temp dir (see Containerd below) and driven with ctr.
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, Suite, sha256  # noqa: E402

suite = Suite("e2e-clients")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
D2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D2_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
D2_CONFIG = "application/vnd.docker.container.image.v1+json"
D2_LAYER_GZ = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT_ALL = ", ".join([OCI_INDEX, OCI_MANIFEST, D2_LIST, D2_MANIFEST])
PLATFORMS = ("amd64", "arm64")


def run(cmd, timeout=180, env=None, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=env)
    if check and p.returncode != 0:
        raise AssertionError("command failed (rc=%d): %s\nstdout:\n%s\nstderr:\n%s" % (
            p.returncode, " ".join(cmd), p.stdout.decode("utf-8", "replace")[-3000:],
            p.stderr.decode("utf-8", "replace")[-3000:]))
    return p


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


# ---------------------------------------------------------------------------------------------
# OCI layout helpers


def blob_path(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def read_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        data = f.read()
    eq(sha256(data), digest, "layout %s blob content hash" % layout)
    return data


def index_entry(layout, ref):
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    found = [m for m in idx["manifests"]
             if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
    if len(found) != 1:
        raise AssertionError("layout %s: %d index.json entries named %r: %s"
                             % (layout, len(found), ref, json.dumps(idx)))
    return found[0]


def describe(layout, digest, media_type):
    """Walk an image (index or manifest) in a layout; returns a nested structure of every
    digest, media type and size, verifying each blob hashes to its name. media_type is the
    descriptor's type (umoci omits the optional mediaType field inside its manifests, so the
    registry must keep the Content-Type the client PUT)."""
    raw = read_blob(layout, digest)
    doc = json.loads(raw)
    mt = doc.get("mediaType") or media_type
    eq(mt, media_type, "media type of %s (document vs descriptor)" % digest)
    if "manifests" in doc:
        return {"digest": digest, "mediaType": mt, "size": len(raw),
                "manifests": [dict(describe(layout, m["digest"], m["mediaType"]),
                                   platform=m.get("platform"))
                              for m in doc["manifests"]]}
    cfg = doc["config"]
    read_blob(layout, cfg["digest"])
    layers = []
    for l in doc["layers"]:
        data = read_blob(layout, l["digest"])
        eq(len(data), l["size"], "layer %s size" % l["digest"])
        layers.append((l["digest"], l["mediaType"], l["size"]))
    return {"digest": digest, "mediaType": mt, "size": len(raw),
            "config": (cfg["digest"], cfg["mediaType"], cfg["size"]), "layers": layers}


def build_images(work):
    """umoci-only image build. Returns info dict with layout path and digests."""
    L = os.path.join(work, "src")
    files = os.path.join(work, "files")
    os.makedirs(files)
    run(["umoci", "init", "--layout", L])
    run(["umoci", "new", "--image", L + ":base"])

    def insert(tag, name, data):
        p = os.path.join(files, name)
        with open(p, "wb") as f:
            f.write(data)
        run(["umoci", "insert", "--image", "%s:%s" % (L, tag), p, "/data/" + name])

    # Layer 1 is shared by both platforms (same blob digest referenced twice).
    insert("base", "shared.bin", os.urandom(64 * 1024))
    token = os.urandom(6).hex()
    for arch in PLATFORMS:
        run(["umoci", "tag", "--image", L + ":base", arch])
        # Layer 2: 3 MiB incompressible (forces a multi-megabyte upload).
        insert(arch, arch + "-big.bin", os.urandom(3 * 1024 * 1024))
        # Layer 3: small text file.
        insert(arch, arch + "-small.txt", ("%s %s\n" % (arch, os.urandom(16).hex())).encode())
        run(["umoci", "config", "--image", "%s:%s" % (L, arch),
             "--config.label", "org.berth.test=%s" % token,
             "--config.label", "org.berth.arch=%s" % arch,
             "--architecture=%s" % arch, "--os=linux"])
    run(["umoci", "rm", "--image", L + ":base"])
    run(["umoci", "gc", "--layout", L])

    # Write the OCI image index by hand: blob + index.json entry "multi".
    with open(os.path.join(L, "index.json")) as f:
        top = json.load(f)
    plat = {}
    for arch in PLATFORMS:
        e = index_entry(L, arch)
        eq(e["mediaType"], OCI_MANIFEST, "umoci manifest media type")
        plat[arch] = {"mediaType": OCI_MANIFEST, "digest": e["digest"], "size": e["size"],
                      "platform": {"architecture": arch, "os": "linux"}}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [plat[a] for a in PLATFORMS],
             "annotations": {"org.berth.test": token}}
    raw = json.dumps(index, indent=2).encode()
    idig = sha256(raw)
    with open(blob_path(L, idig), "wb") as f:
        f.write(raw)
    top["manifests"].append({"mediaType": OCI_INDEX, "digest": idig, "size": len(raw),
                             "annotations": {"org.opencontainers.image.ref.name": "multi"}})
    with open(os.path.join(L, "index.json"), "w") as f:
        json.dump(top, f)

    info = {"layout": L, "token": token, "index": idig, "index_raw": raw,
            "tree": describe(L, idig, OCI_INDEX), "manifest": {}, "config": {}, "layers": {}}
    for arch in PLATFORMS:
        info["manifest"][arch] = plat[arch]["digest"]
        m = json.loads(read_blob(L, plat[arch]["digest"]))
        info["config"][arch] = m["config"]["digest"]
        info["layers"][arch] = [l["digest"] for l in m["layers"]]
        eq(len(m["layers"]), 3, "%s layer count" % arch)
    eq(info["layers"]["amd64"][0], info["layers"]["arm64"][0], "shared first layer")
    return info


# ---------------------------------------------------------------------------------------------
# Registry helpers


def head_manifest(reg, repo, ref):
    st, h, _ = reg.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref),
                           headers={"Accept": ACCEPT_ALL})
    return st, h


def get_manifest(reg, repo, ref):
    st, h, body = reg.request("GET", "/v2/%s/manifests/%s" % (repo, ref),
                              headers={"Accept": ACCEPT_ALL})
    eq(st, 200, "GET manifest %s:%s status" % (repo, ref))
    eq(h.get("docker-content-digest"), sha256(body), "GET %s:%s Docker-Content-Digest" % (repo, ref))
    return h, body


def assert_blob(reg, repo, digest, size=None):
    st, h, _ = reg.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
    eq(st, 200, "HEAD blob %s in %s" % (digest, repo))
    if size is not None:
        eq(int(h.get("content-length", -1)), size, "HEAD blob %s Content-Length" % digest)


def assert_registry_has_tree(reg, repo, tree):
    """Every manifest/config/layer digest of a described tree is served by the registry."""
    st, h = head_manifest(reg, repo, tree["digest"])
    eq(st, 200, "HEAD manifest %s@%s" % (repo, tree["digest"]))
    eq(h.get("docker-content-digest"), tree["digest"], "HEAD Docker-Content-Digest")
    eq(h.get("content-type"), tree["mediaType"], "HEAD Content-Type of %s" % tree["digest"])
    eq(int(h.get("content-length", -1)), tree["size"], "HEAD Content-Length of %s" % tree["digest"])
    if "manifests" in tree:
        for m in tree["manifests"]:
            assert_registry_has_tree(reg, repo, m)
        return
    assert_blob(reg, repo, tree["config"][0], tree["config"][2])
    for d, _, size in tree["layers"]:
        assert_blob(reg, repo, d, size)


def tags_of(reg, repo):
    st, _, body = reg.request("GET", "/v2/%s/tags/list" % repo)
    if st == 404:
        return []
    eq(st, 200, "tags/list %s status" % repo)
    return json.loads(body).get("tags") or []


class RecordingProxy:
    """TCP relay in front of the registry that records both directions of every connection,
    so a test can see which HTTP requests a client really made (e.g. cross-repo mount)."""

    def __init__(self, port):
        self.target = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []  # [c2s bytearray, s2c bytearray]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            rec = [bytearray(), bytearray()]
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self._pump, args=(c, u, rec[0]), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, rec[1]), daemon=True).start()

    @staticmethod
    def _pump(src, dst, buf):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                buf += d
                dst.sendall(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def exchanges(self):
        """[(method, path, status)] for plain-HTTP connections (requests and responses paired
        in order; HTTP/1.1 without pipelining)."""
        out = []
        req_re = re.compile(rb"(?:^|\r\n)(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]\r\n")
        resp_re = re.compile(rb"(?:^|\r\n)HTTP/1\.[01] (\d{3}) ")
        with self.lock:
            conns = [(bytes(a), bytes(b)) for a, b in self.conns]
        for c2s, s2c in conns:
            if not re.match(rb"(GET|HEAD|POST|PUT|PATCH|DELETE) ", c2s):
                continue  # TLS ClientHello probe etc.
            reqs = req_re.findall(c2s)
            resps = resp_re.findall(s2c)
            for i, (m, p) in enumerate(reqs):
                st = int(resps[i]) if i < len(resps) else None
                out.append((m.decode(), p.decode(), st))
        return out

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# podman in a private store


class Podman:
    """Root podman with a throw-away VFS store: --root/--runroot/--tmpdir under the suite's
    temp dir, CONTAINERS_STORAGE_CONF pointing at a private storage.conf, cgroupfs manager and
    file events backend (no systemd / journald in the sandbox)."""

    def __init__(self, work):
        self.base = os.path.join(work, "podman")
        self.root = os.path.join(self.base, "root")
        self.runroot = os.path.join(self.base, "run")
        self.tmp = os.path.join(self.base, "tmp")
        for d in (self.root, self.runroot, self.tmp):
            os.makedirs(d, exist_ok=True)
        conf = os.path.join(self.base, "storage.conf")
        with open(conf, "w") as f:
            f.write('[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n'
                    % (self.runroot, self.root))
        self.env = dict(os.environ, CONTAINERS_STORAGE_CONF=conf, TMPDIR=self.tmp)
        self.args = ["podman", "--storage-driver", "vfs", "--root", self.root,
                     "--runroot", self.runroot, "--tmpdir", self.tmp,
                     "--cgroup-manager=cgroupfs", "--events-backend=file"]

    def __call__(self, *a, check=True, timeout=180):
        return run(self.args + list(a), env=self.env, check=check, timeout=timeout)

    def out(self, *a):
        return self(*a).stdout.decode().strip()

    def cleanup(self):
        if shutil.which("podman"):
            run(self.args + ["rmi", "-a", "-f"], env=self.env, check=False, timeout=120)
        shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# containerd on a private socket


class Containerd:
    """A containerd started for the suite: root, state and the gRPC socket under the suite's
    temp dir, no TCP listener at all (metrics and debug addresses stay empty, the CRI plugin is
    off). Only the image, content and snapshot services load: the task runtimes, cgroups
    monitor and restart manager are disabled (no containers run), and so is the "opt" plugin,
    which would otherwise create /opt/containerd on the host. The content store is isolated
    per namespace, so each test's namespace downloads every blob it lists from the registry
    (the default "shared" policy would let a later pull reuse an earlier namespace's blobs
    without fetching them)."""

    DISABLED = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
                "io.containerd.internal.v1.restart", "io.containerd.monitor.v1.cgroups",
                "io.containerd.runtime.v1.linux", "io.containerd.runtime.v2.task",
                "io.containerd.service.v1.tasks-service", "io.containerd.grpc.v1.tasks",
                "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

    def __init__(self, work):
        self.base = os.path.join(work, "containerd")
        self.root = os.path.join(self.base, "root")
        self.sock = os.path.join(self.base, "containerd.sock")
        self.log_path = os.path.join(self.base, "containerd.log")
        os.makedirs(self.base)
        self.config = os.path.join(self.base, "config.toml")
        with open(self.config, "w") as f:
            f.write('version = 2\nroot = "%s"\nstate = "%s"\ndisabled_plugins = %s\n'
                    '[grpc]\n  address = "%s"\n'
                    '[plugins."io.containerd.metadata.v1.bolt"]\n'
                    '  content_sharing_policy = "isolated"\n'
                    % (self.root, os.path.join(self.base, "state"), json.dumps(self.DISABLED),
                       self.sock))
        self.proc = None
        self.snapshotter = None

    def start(self):
        self._log = open(self.log_path, "ab")
        # setpriv (util-linux) execs containerd with a parent-death signal, so containerd
        # gets SIGTERM if the suite dies without reaching teardown (e.g. killed) instead of
        # outliving it; the PID stays containerd's.
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "TERM", "containerd", "--config", self.config],
            stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("containerd exited with %s:\n%s"
                                     % (self.proc.returncode, self.log()[-3000:]))
            if os.path.exists(self.sock):
                p = self("version", check=False, timeout=10)
                if p.returncode == 0:
                    break
            if time.time() > deadline:
                raise AssertionError("containerd did not answer on %s:\n%s"
                                     % (self.sock, self.log()[-3000:]))
            time.sleep(0.05)
        # overlayfs is what Kubernetes nodes use; it needs a backing filesystem that can hold
        # an overlay upper dir, so fall back to native where containerd skipped it.
        status = {}
        for line in self("plugins", "ls").stdout.decode().splitlines()[1:]:
            f = line.split()
            if len(f) >= 4 and f[0] == "io.containerd.snapshotter.v1":
                status[f[1]] = f[3]
        self.snapshotter = "overlayfs" if status.get("overlayfs") == "ok" else "native"
        if status.get(self.snapshotter) != "ok":
            raise AssertionError("no usable snapshotter: %s\n%s" % (status, self.log()[-3000:]))
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __call__(self, *a, ns=None, check=True, timeout=180):
        args = ["ctr", "--address", self.sock]
        if ns:
            args += ["--namespace", ns]
        return run(args + list(a), check=check, timeout=timeout)

    def stop(self):
        """SIGTERM by PID (SIGKILL after 20 s); returns the exit status, None if never started."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def cleanup(self):
        """Unmount anything containerd left mounted under its root (an unpack cut short), so
        that removing the temp dir cannot reach into a mounted snapshot."""
        with open("/proc/self/mountinfo") as f:
            points = [l.split()[4] for l in f]
        for m in reversed(points):
            if m == self.root or m.startswith(self.root + "/"):
                run(["umount", "-l", m], check=False)
        shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Setup / teardown


def setup(args):
    for tool in ("skopeo", "umoci"):
        if not shutil.which(tool):
            raise SystemExit("e2e-clients: %s not installed (run scripts/deps.sh test)" % tool)
    ctx = {"args": args, "work": tempfile.mkdtemp(prefix="berth-e2e-clients-"), "ok": set()}
    ctx["reg"] = Registry(args.berth, kind=args.kind).start(delete_enabled=True)
    ctx["host"] = "127.0.0.1:%d" % ctx["reg"].port
    return ctx


def teardown(ctx):
    reg = ctx["reg"]
    problems = []
    if ctx.get("podman"):
        ctx["podman"].cleanup()
    if ctx.get("containerd"):
        cd = ctx["containerd"]
        crc = cd.stop()
        if crc not in (0, None):
            problems.append("containerd exited with status %s on SIGTERM" % crc)
            print("---- containerd log (tail) ----\n" + cd.log()[-4000:])
        cd.cleanup()
    rc = reg.stop()
    if ctx["args"].kind == "berth" and rc not in (0, None):
        problems.append("berth exited with status %s on SIGTERM" % rc)
    problems += ["sanitizer: " + l for l in reg.sanitizer_errors()]
    if problems:
        print("---- server log (tail) ----\n" + reg.log()[-4000:])
    reg.cleanup()
    shutil.rmtree(ctx["work"], ignore_errors=True)
    return problems


def need(ctx, *steps):
    """Prerequisite steps; runs them on demand (so -k works), once."""
    for s in steps:
        if s in ctx["ok"]:
            continue
        tried = ctx.setdefault("tried", set())
        if s not in tried:
            tried.add(s)
            try:
                {"build": test_build_multiplatform_layout, "push": test_skopeo_push_multiplatform,
                 "podman-load": test_podman_load_image, "podman-push": test_podman_push,
                 "ctr-pull": test_containerd_pull_all_platforms}[s](ctx)
            except Exception as e:
                raise AssertionError("prerequisite %s failed: %s" % (s, e))
        if s not in ctx["ok"]:
            if s.startswith("podman") and ctx.get("podman_skip"):
                raise Skip(ctx["podman_skip"])
            raise AssertionError("skipped: depends on %s, which failed" % s)


def sk(ctx, *a, timeout=180):
    a = list(a)
    if a[0] == "copy" and "--format" not in a:
        # Without this, containers/image may substitute a layer with a differently
        # compressed variant it saw earlier (e.g. podman's re-compressed push) and rewrite
        # the manifest, so digests would depend on test order.
        a.insert(1, "--preserve-digests")
    return run(["skopeo"] + a, timeout=timeout)


def docker_ref(ctx, repo_ref, host=None):
    return "docker://%s/%s" % (host or ctx["host"], repo_ref)


# ---------------------------------------------------------------------------------------------
# Tests


@suite.test
def test_build_multiplatform_layout(ctx):
    ctx.setdefault("tried", set()).add("build")
    info = build_images(ctx["work"])
    tree = info["tree"]
    eq(tree["mediaType"], OCI_INDEX, "index mediaType")
    eq([m["platform"]["architecture"] for m in tree["manifests"]], list(PLATFORMS), "platforms")
    for m, arch in zip(tree["manifests"], PLATFORMS):
        cfg = json.loads(read_blob(info["layout"], m["config"][0]))
        eq(cfg["architecture"], arch, "config architecture")
        eq(cfg["os"], "linux", "config os")
        eq(cfg["config"]["Labels"]["org.berth.test"], info["token"], "config label")
        eq(len(m["layers"]), 3, "layers")
        eq(all(l[1] == OCI_LAYER_GZ for l in m["layers"]), True, "layer media types")
    ctx["info"] = info
    ctx["ok"].add("build")


@suite.test
def test_skopeo_push_multiplatform(ctx):
    ctx.setdefault("tried", set()).add("push")
    need(ctx, "build")
    info = ctx["info"]
    sk(ctx, "copy", "--all", "--dest-tls-verify=false",
       "oci:%s:multi" % info["layout"], docker_ref(ctx, "test/multi:1"))
    reg = ctx["reg"]
    st, h = head_manifest(reg, "test/multi", "1")
    eq(st, 200, "HEAD test/multi:1")
    eq(h.get("docker-content-digest"), info["index"], "tag digest == source index digest")
    eq(h.get("content-type"), OCI_INDEX, "tag Content-Type")
    _, body = get_manifest(reg, "test/multi", "1")
    eq(body, info["index_raw"], "index bytes stored verbatim")
    assert_registry_has_tree(reg, "test/multi", info["tree"])
    ctx["ok"].add("push")


@suite.test
def test_skopeo_pull_multiplatform_digests(ctx):
    need(ctx, "push")
    info = ctx["info"]
    out = os.path.join(ctx["work"], "out-multi")
    sk(ctx, "copy", "--all", "--src-tls-verify=false",
       docker_ref(ctx, "test/multi:1"), "oci:%s:multi" % out)
    e = index_entry(out, "multi")
    eq(e["digest"], info["index"], "pulled index digest")
    eq(e["mediaType"], OCI_INDEX, "pulled index.json entry media type")
    got = describe(out, e["digest"], e["mediaType"])
    eq(got, info["tree"], "complete digest tree (index, manifests, configs, layers)")


@suite.test
def test_skopeo_inspect_raw_matches_head(ctx):
    need(ctx, "push")
    info = ctx["info"]
    reg = ctx["reg"]
    raw = sk(ctx, "inspect", "--raw", "--tls-verify=false", docker_ref(ctx, "test/multi:1")).stdout
    _, h = head_manifest(reg, "test/multi", "1")
    eq(sha256(raw), h.get("docker-content-digest"), "sha256(skopeo inspect --raw) == HEAD digest")
    eq(raw, info["index_raw"], "inspect --raw bytes")
    for arch in PLATFORMS:
        d = info["manifest"][arch]
        raw = sk(ctx, "inspect", "--raw", "--tls-verify=false",
                 docker_ref(ctx, "test/multi@" + d)).stdout
        _, h = head_manifest(reg, "test/multi", d)
        eq(sha256(raw), d, "%s manifest raw digest" % arch)
        eq(h.get("docker-content-digest"), d, "%s HEAD digest" % arch)
        # skopeo inspect (parsed) with --override-arch picks the platform out of the index
        j = json.loads(sk(ctx, "inspect", "--tls-verify=false", "--override-arch", arch,
                          "--override-os", "linux", docker_ref(ctx, "test/multi:1")).stdout)
        eq(j["Digest"], info["index"], "inspect Digest (skopeo reports the top-level digest)")
        eq(j["Architecture"], arch, "inspect Architecture")
        eq(j["Labels"]["org.berth.arch"], arch, "inspect label")
        eq(j["Layers"], info["layers"][arch], "inspect Layers")


@suite.test
def test_skopeo_single_platform_by_digest(ctx):
    need(ctx, "build")
    info = ctx["info"]
    reg = ctx["reg"]
    d = info["manifest"]["arm64"]
    sk(ctx, "copy", "--dest-tls-verify=false", "oci:%s:arm64" % info["layout"],
       docker_ref(ctx, "test/single:arm64"))
    st, h = head_manifest(reg, "test/single", "arm64")
    eq((st, h.get("docker-content-digest"), h.get("content-type")), (200, d, OCI_MANIFEST),
       "single-platform tag")
    # pull by digest reference
    out = os.path.join(ctx["work"], "out-single")
    sk(ctx, "copy", "--src-tls-verify=false", docker_ref(ctx, "test/single@" + d),
       "oci:%s:bydigest" % out)
    e = index_entry(out, "bydigest")
    eq(e["digest"], d, "pulled-by-digest manifest digest")
    arm_tree = info["tree"]["manifests"][1]
    want = {k: v for k, v in arm_tree.items() if k != "platform"}
    eq(describe(out, d, e["mediaType"]), want, "pulled-by-digest tree")
    # push with a digest destination reference: registry must accept a PUT by digest
    sk(ctx, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
       docker_ref(ctx, "test/single@" + d), docker_ref(ctx, "test/bydigest@" + d))
    st, h = head_manifest(reg, "test/bydigest", d)
    eq((st, h.get("docker-content-digest")), (200, d), "manifest pushed by digest")
    eq(tags_of(reg, "test/bydigest"), [], "digest push creates no tag")


@suite.test
def test_skopeo_v2s2_conversion(ctx):
    need(ctx, "build")
    info = ctx["info"]
    reg = ctx["reg"]
    sk(ctx, "copy", "--format", "v2s2", "--dest-tls-verify=false",
       "oci:%s:amd64" % info["layout"], docker_ref(ctx, "test/v2s2:1"))
    h, body = get_manifest(reg, "test/v2s2", "1")
    eq(h.get("content-type"), D2_MANIFEST, "v2s2 Content-Type")
    m = json.loads(body)
    eq(m.get("mediaType"), D2_MANIFEST, "manifest mediaType field")
    eq(m["config"]["mediaType"], D2_CONFIG, "config mediaType")
    eq([l["mediaType"] for l in m["layers"]], [D2_LAYER_GZ] * 3, "layer mediaTypes")
    eq([l["digest"] for l in m["layers"]], info["layers"]["amd64"], "layer digests unchanged")
    st, hh = head_manifest(reg, "test/v2s2", "1")
    eq((st, hh.get("docker-content-digest"), hh.get("content-type")),
       (200, sha256(body), D2_MANIFEST), "HEAD v2s2")
    raw = sk(ctx, "inspect", "--raw", "--tls-verify=false", docker_ref(ctx, "test/v2s2:1")).stdout
    eq(sha256(raw), sha256(body), "inspect --raw digest (v2s2)")
    j = json.loads(sk(ctx, "inspect", "--tls-verify=false", docker_ref(ctx, "test/v2s2:1")).stdout)
    eq((j["Architecture"], j["Os"], j["Labels"]["org.berth.test"]),
       ("amd64", "linux", info["token"]), "inspect parsed v2s2 config")
    # round-trip the docker image back out and compare blobs
    out = os.path.join(ctx["work"], "out-v2s2")
    sk(ctx, "copy", "--src-tls-verify=false", docker_ref(ctx, "test/v2s2:1"), "dir:" + out)
    with open(os.path.join(out, "manifest.json"), "rb") as f:
        eq(sha256(f.read()), sha256(body), "dir: manifest digest")
    for l in m["layers"] + [m["config"]]:
        with open(os.path.join(out, l["digest"].split(":")[1]), "rb") as f:
            eq(sha256(f.read()), l["digest"], "dir: blob content")
    # the whole multi-platform image converted to a Docker manifest list
    p = run(["skopeo", "copy", "--all", "--format", "v2s2", "--src-tls-verify=false",
             "--dest-tls-verify=false", docker_ref(ctx, "test/multi:1"),
             docker_ref(ctx, "test/v2list:1")], check=False)
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace")
        if "convert" in err.lower() or "manifest list" in err.lower():
            print("  note: this skopeo cannot convert an OCI index to v2s2: %s" % err.strip()[-300:])
            return
        raise AssertionError("skopeo copy --all --format v2s2 failed: %s" % err[-2000:])
    h, body = get_manifest(reg, "test/v2list", "1")
    eq(h.get("content-type"), D2_LIST, "manifest list Content-Type")
    lst = json.loads(body)
    eq([x["mediaType"] for x in lst["manifests"]], [D2_MANIFEST] * 2, "list entries are v2s2")
    for x in lst["manifests"]:
        st, hh = head_manifest(reg, "test/v2list", x["digest"])
        eq((st, hh.get("content-type")), (200, D2_MANIFEST), "child manifest of list")


@suite.test
def test_skopeo_registry_to_registry_mount(ctx):
    """registry -> registry inside the same registry. Run through a recording proxy so the
    test sees the requests. The first copy pulls (and teaches skopeo's blob-info cache where
    the blobs live); the second copy must then use cross-repo mount for every blob."""
    need(ctx, "push")
    info = ctx["info"]
    reg = ctx["reg"]
    proxy = RecordingProxy(reg.port)
    phost = "127.0.0.1:%d" % proxy.port
    try:
        sk(ctx, "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
           docker_ref(ctx, "test/multi:1", phost), docker_ref(ctx, "other/copy:1", phost))
        first = len(proxy.exchanges())
        sk(ctx, "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
           docker_ref(ctx, "test/multi:1", phost), docker_ref(ctx, "other/mount:1", phost))
        ex = proxy.exchanges()[first:]
    finally:
        proxy.close()
    for repo in ("other/copy", "other/mount"):
        st, h = head_manifest(reg, repo, "1")
        eq((st, h.get("docker-content-digest")), (200, info["index"]), "%s index digest" % repo)
        assert_registry_has_tree(reg, repo, info["tree"])
    mounts = [(m, p, s) for m, p, s in ex
              if m == "POST" and p.startswith("/v2/other/mount/blobs/uploads/") and "mount=" in p]
    uploads = [(m, p, s) for m, p, s in ex
               if m in ("PATCH", "PUT") and p.startswith("/v2/other/mount/blobs/uploads/")]
    # skopeo (containers/image) tries blob reuse for layers only; config blobs are always
    # uploaded (HEAD first, then POST/PATCH/PUT when missing).
    layers = set(info["layers"]["amd64"] + info["layers"]["arm64"])
    configs = {info["config"][a] for a in PLATFORMS}
    trace = "\n".join("%s %s -> %s" % e for e in ex)
    if not mounts:
        raise AssertionError("skopeo made no cross-repo mount request; requests seen:\n" + trace)
    for m, p, s in mounts:
        eq(bool(re.search(r"from=(test|other)(%2F|/)(multi|copy)(&|$)", p)), True,
           "mount source in %s" % p)
        eq(s, 201, "mount response for %s" % p)
    mounted = {re.search(r"mount=([^&]+)", p).group(1).replace("%3A", ":") for _, p, _ in mounts}
    eq(mounted, layers, "every layer mounted")
    uploaded = {re.search(r"digest=([^&]+)", p).group(1).replace("%3A", ":")
                for m, p, s in uploads if m == "PUT" and "digest=" in p}
    if not uploaded <= configs:
        raise AssertionError("layer data re-uploaded although mounts succeeded:\n" + trace)


@suite.test
def test_skopeo_list_tags(ctx):
    need(ctx, "push")
    reg = ctx["reg"]
    for t in ("2", "latest", "v1.0.0"):
        sk(ctx, "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
           docker_ref(ctx, "test/multi:1"), docker_ref(ctx, "test/multi:" + t))
    j = json.loads(sk(ctx, "list-tags", "--tls-verify=false",
                      "docker://%s/test/multi" % ctx["host"]).stdout)
    eq(j["Repository"], "%s/test/multi" % ctx["host"], "list-tags Repository")
    eq(sorted(j["Tags"]), sorted(["1", "2", "latest", "v1.0.0"]), "list-tags Tags")
    eq(sorted(tags_of(reg, "test/multi")), sorted(j["Tags"]), "tags/list agrees")
    for t in j["Tags"]:
        st, h = head_manifest(reg, "test/multi", t)
        eq((st, h.get("docker-content-digest")), (200, ctx["info"]["index"]), "tag %s" % t)


@suite.test
def test_skopeo_delete(ctx):
    need(ctx, "build")
    info = ctx["info"]
    reg = ctx["reg"]
    d = info["manifest"]["amd64"]
    sk(ctx, "copy", "--dest-tls-verify=false", "oci:%s:amd64" % info["layout"],
       docker_ref(ctx, "test/del:doomed"))
    st, h = head_manifest(reg, "test/del", "doomed")
    eq((st, h.get("docker-content-digest")), (200, d), "before delete")
    sk(ctx, "delete", "--tls-verify=false", docker_ref(ctx, "test/del:doomed"))
    st, _ = head_manifest(reg, "test/del", d)
    eq(st, 404, "HEAD manifest by digest after skopeo delete")
    st, _ = head_manifest(reg, "test/del", "doomed")
    eq(st, 404, "HEAD tag after skopeo delete")
    eq("doomed" in tags_of(reg, "test/del"), False, "tag gone from tags/list")
    p = run(["skopeo", "inspect", "--raw", "--tls-verify=false",
             docker_ref(ctx, "test/del:doomed")], check=False)
    eq(p.returncode != 0, True, "skopeo inspect of deleted image fails")
    # other repositories holding the same manifest are unaffected
    st, h = head_manifest(reg, "test/multi", d)
    eq((st, h.get("docker-content-digest")), (200, d), "same manifest in test/multi untouched")


# ---- podman ----------------------------------------------------------------------------------


class Skip(Exception):
    pass


def podman(ctx):
    """The private-store podman, or Skip with the exact reason it cannot run here."""
    if ctx.get("podman_skip"):
        raise Skip(ctx["podman_skip"])
    if "podman" not in ctx:
        if not shutil.which("podman"):
            ctx["podman_skip"] = "podman not installed (scripts/deps.sh test installs it)"
            raise Skip(ctx["podman_skip"])
        pm = Podman(ctx["work"])
        p = pm("info", "--format", "{{.Store.GraphDriverName}}", check=False, timeout=120)
        if p.returncode != 0 or p.stdout.decode().strip() != "vfs":
            ctx["podman_skip"] = "'%s info' failed (rc=%d): %s" % (
                " ".join(pm.args), p.returncode,
                (p.stderr or p.stdout).decode("utf-8", "replace").strip()[-800:])
            raise Skip(ctx["podman_skip"])
        ctx["podman"] = pm
    return ctx["podman"]


def podman_test(fn):
    def wrapper(ctx):
        try:
            fn(ctx)
        except Skip as e:
            print("SKIP %s: %s" % (fn.__name__, e), flush=True)
    wrapper.__name__ = fn.__name__
    return wrapper


@suite.test
@podman_test
def test_podman_load_image(ctx):
    ctx.setdefault("tried", set()).add("podman-load")
    need(ctx, "build")
    info = ctx["info"]
    pm = podman(ctx)
    # Not "podman pull oci:DIR": podman names that image after the directory path, and a
    # temporary path is not always a valid name (capitals, a trailing "_" from mkdtemp).
    run(["skopeo", "copy", "oci:%s:amd64" % info["layout"],
         "containers-storage:[vfs@%s+%s]localhost/src:amd64" % (pm.root, pm.runroot)],
        env=pm.env)
    image_id = pm.out("image", "inspect", "--format", "{{.Id}}", "localhost/src:amd64")
    eq("sha256:" + image_id, info["config"]["amd64"], "podman image ID == config digest")
    ctx["podman_id"] = image_id
    pm("tag", image_id, "%s/pod/img:1" % ctx["host"])
    ctx["ok"].add("podman-load")


@suite.test
@podman_test
def test_podman_push(ctx):
    need(ctx, "podman-load")
    pm = podman(ctx)
    reg = ctx["reg"]
    dfile = os.path.join(ctx["work"], "podman-digest")
    pm("push", "--tls-verify=false", "--digestfile", dfile, "%s/pod/img:1" % ctx["host"])
    with open(dfile) as f:
        pushed = f.read().strip()
    st, h = head_manifest(reg, "pod/img", "1")
    eq((st, h.get("docker-content-digest")), (200, pushed), "registry tag == podman digestfile")
    _, body = get_manifest(reg, "pod/img", "1")
    m = json.loads(body)
    eq(m["config"]["digest"], "sha256:" + ctx["podman_id"], "pushed config == image ID")
    eq(len(m["layers"]), 3, "pushed layer count")
    for l in m["layers"]:
        assert_blob(reg, "pod/img", l["digest"], l["size"])
    ctx["podman_digest"] = pushed
    ctx["ok"].add("podman-push")


@suite.test
@podman_test
def test_podman_rmi_and_pull(ctx):
    need(ctx, "podman-push")
    pm = podman(ctx)
    ref = "%s/pod/img:1" % ctx["host"]
    pm("rmi", "-a", "-f")
    eq(pm("image", "exists", ref, check=False).returncode, 1, "image gone locally")
    eq(pm.out("images", "-q"), "", "local store empty")
    pm("pull", "--tls-verify=false", ref)
    iid = pm.out("image", "inspect", "--format", "{{.Id}}", ref)
    eq(iid, ctx["podman_id"], "image ID after pull")
    eq(pm.out("image", "inspect", "--format", "{{.Digest}}", ref), ctx["podman_digest"],
       "pulled manifest digest")
    repodigests = pm.out("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
    eq("%s/pod/img@%s" % (ctx["host"], ctx["podman_digest"]) in json.loads(repodigests), True,
       "RepoDigests contains pushed digest: %s" % repodigests)
    # pull by digest as well
    pm("rmi", "-a", "-f")
    pm("pull", "--tls-verify=false", "%s/pod/img@%s" % (ctx["host"], ctx["podman_digest"]))
    eq(pm.out("images", "-q", "--no-trunc"), "sha256:" + ctx["podman_id"], "pull by digest ID")


@suite.test
@podman_test
def test_podman_push_v2s2(ctx):
    need(ctx, "podman-load")
    pm = podman(ctx)
    reg = ctx["reg"]
    if pm("image", "exists", ctx["podman_id"], check=False).returncode != 0:
        run(["skopeo", "copy", "oci:%s:amd64" % ctx["info"]["layout"],
             "containers-storage:[vfs@%s+%s]localhost/src:amd64" % (pm.root, pm.runroot)],
            env=pm.env)
    ref = "%s/pod/docker:1" % ctx["host"]
    pm("tag", ctx["podman_id"], ref)
    dfile = os.path.join(ctx["work"], "podman-digest-v2s2")
    pm("push", "--tls-verify=false", "--format", "v2s2", "--digestfile", dfile, ref)
    with open(dfile) as f:
        pushed = f.read().strip()
    h, body = get_manifest(reg, "pod/docker", "1")
    eq((h.get("docker-content-digest"), h.get("content-type")), (pushed, D2_MANIFEST),
       "podman v2s2 push")
    eq(json.loads(body)["config"]["mediaType"], D2_CONFIG, "docker config media type")
    pm("rmi", "-a", "-f")
    pm("pull", "--tls-verify=false", ref)
    eq(pm.out("image", "inspect", "--format", "{{.Digest}}", ref), pushed, "v2s2 pulled digest")


@suite.test
@podman_test
def test_podman_pull_multiarch(ctx):
    need(ctx, "push", "podman-load")
    pm = podman(ctx)
    info = ctx["info"]
    ref = "%s/test/multi:1" % ctx["host"]
    for arch in PLATFORMS:
        pm("rmi", "-a", "-f")
        pm("pull", "--tls-verify=false", "--arch", arch, "--os", "linux", ref)
        eq("sha256:" + pm.out("image", "inspect", "--format", "{{.Id}}", ref),
           info["config"][arch], "podman pull --arch %s picks that platform" % arch)
        eq(pm.out("image", "inspect", "--format", "{{.Architecture}}", ref), arch,
           "image architecture")


# ---- containerd ------------------------------------------------------------------------------


def containerd(ctx):
    """The suite's containerd, started on first use (teardown stops it by PID)."""
    if ctx.get("containerd_error"):
        raise AssertionError(ctx["containerd_error"])
    if "containerd" not in ctx:
        for tool in ("containerd", "ctr"):
            if not shutil.which(tool):
                ctx["containerd_error"] = ("%s not installed (scripts/deps.sh test installs it)"
                                           % tool)
                raise AssertionError(ctx["containerd_error"])
        ctx["containerd"] = Containerd(ctx["work"])
        try:
            ctx["containerd"].start()
        except Exception as e:
            ctx["containerd_error"] = "containerd did not start: %s" % e
            raise
    return ctx["containerd"]


def ctr_image(cd, ns, ref):
    """(media type, digest) of the image named ref in namespace ns (`ctr images ls` columns:
    REF TYPE DIGEST SIZE PLATFORMS LABELS, the size being two words)."""
    for line in cd("images", "ls", ns=ns).stdout.decode().splitlines()[1:]:
        f = line.split()
        if f and f[0] == ref:
            return f[1], f[2], f[-2]
    raise AssertionError("containerd namespace %s has no image %s" % (ns, ref))


def chain_ids(layout, config_digest):
    """The snapshot names an unpack commits: the image config's layer chain IDs (image-spec
    config.md, "Layer ChainID")."""
    ids = []
    for d in json.loads(read_blob(layout, config_digest))["rootfs"]["diff_ids"]:
        ids.append(sha256(("%s %s" % (ids[-1], d)).encode()) if ids else d)
    return ids


def assert_containerd_holds(ctx, ns, top, archs):
    """Namespace ns holds exactly the blobs of top (an index or a manifest) for archs, each
    byte-identical to the layout's, and exactly the unpacked layer snapshots of archs."""
    cd = containerd(ctx)
    info = ctx["info"]
    want = {top}
    snaps = set()
    for a in archs:
        want |= {info["manifest"][a], info["config"][a]} | set(info["layers"][a])
        snaps |= set(chain_ids(info["layout"], info["config"][a]))
    have = cd("content", "ls", "--quiet", ns=ns).stdout.decode().split()
    eq(sorted(have), sorted(want), "blobs in containerd namespace %s" % ns)
    for d in sorted(want):
        eq(cd("content", "get", d, ns=ns).stdout == read_blob(info["layout"], d), True,
           "containerd's copy of %s is byte-identical to the layout's" % d)
    got = {}
    for line in cd("snapshots", "--snapshotter", cd.snapshotter, "ls", ns=ns).stdout.decode() \
            .splitlines()[1:]:
        f = line.split()
        got[f[0]] = f[-1]
    eq(got, {c: "Committed" for c in snaps}, "unpacked snapshots (chain IDs) in %s" % ns)


def ctr_pull(ctx, ns, ref, *flags):
    cd = containerd(ctx)
    cd("images", "pull", "--plain-http", "--snapshotter", cd.snapshotter, *flags, ref, ns=ns)


@suite.test
def test_containerd_pull_all_platforms(ctx):
    ctx.setdefault("tried", set()).add("ctr-pull")
    need(ctx, "push")
    info = ctx["info"]
    cd = containerd(ctx)
    ref = "%s/test/multi:1" % ctx["host"]
    ctr_pull(ctx, "all", ref, "--all-platforms")
    eq(ctr_image(cd, "all", ref), (OCI_INDEX, info["index"], "linux/amd64,linux/arm64"),
       "containerd image (type, target digest, platforms)")
    raw = sk(ctx, "inspect", "--raw", "--tls-verify=false", docker_ref(ctx, "test/multi:1")).stdout
    eq(cd("content", "get", info["index"], ns="all").stdout, raw,
       "containerd's index bytes == skopeo inspect --raw")
    for arch in PLATFORMS:
        d = info["manifest"][arch]
        raw = sk(ctx, "inspect", "--raw", "--tls-verify=false",
                 docker_ref(ctx, "test/multi@" + d)).stdout
        eq(cd("content", "get", d, ns="all").stdout, raw,
           "containerd's %s manifest bytes == skopeo inspect --raw" % arch)
    assert_containerd_holds(ctx, "all", info["index"], PLATFORMS)
    ctx["ok"].add("ctr-pull")


@suite.test
def test_containerd_tag_and_push_back(ctx):
    need(ctx, "ctr-pull")
    info = ctx["info"]
    reg = ctx["reg"]
    cd = containerd(ctx)
    src = "%s/test/multi:1" % ctx["host"]
    dst = "%s/ctr/back:2" % ctx["host"]
    cd("images", "tag", src, dst, ns="all")
    eq(ctr_image(cd, "all", dst)[1], info["index"], "tagged image target")
    cd("images", "push", "--plain-http", dst, ns="all")
    st, h = head_manifest(reg, "ctr/back", "2")
    eq((st, h.get("docker-content-digest"), h.get("content-type")),
       (200, info["index"], OCI_INDEX), "pushed-back tag (status, digest, type)")
    raw = sk(ctx, "inspect", "--raw", "--tls-verify=false", docker_ref(ctx, "ctr/back:2")).stdout
    eq(raw, info["index_raw"], "skopeo inspect --raw of the pushed-back index")
    assert_registry_has_tree(reg, "ctr/back", info["tree"])
    eq(tags_of(reg, "ctr/back"), ["2"], "tags of ctr/back")


@suite.test
def test_containerd_pull_single_platform(ctx):
    need(ctx, "push")
    info = ctx["info"]
    cd = containerd(ctx)
    ref = "%s/test/multi:1" % ctx["host"]
    # arm64 rather than the host's platform, so a client ignoring --platform would show.
    ctr_pull(ctx, "single", ref, "--platform", "linux/arm64")
    eq(ctr_image(cd, "single", ref)[:2], (OCI_INDEX, info["index"]), "image (type, digest)")
    assert_containerd_holds(ctx, "single", info["index"], ["arm64"])


@suite.test
def test_containerd_pull_by_digest(ctx):
    need(ctx, "push")
    info = ctx["info"]
    cd = containerd(ctx)
    d = info["manifest"]["amd64"]
    ref = "%s/test/multi@%s" % (ctx["host"], d)
    ctr_pull(ctx, "digest", ref, "--platform", "linux/amd64")
    eq(ctr_image(cd, "digest", ref)[:2], (OCI_MANIFEST, d), "image (type, digest)")
    assert_containerd_holds(ctx, "digest", d, ["amd64"])


if __name__ == "__main__":
    suite.main(setup=setup, teardown=teardown)
