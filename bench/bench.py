#!/usr/bin/env python3
"""bench.py — berth vs CNCF Distribution (Debian's docker-registry 2.8), same machine, same run.

Started by bench/run.sh (which builds bench/loadgen first); see bench/README.md. Both servers run
for the whole run on loopback, each with a fresh data folder under build/bench/; every figure runs
its berth phase then its Distribution phase, with fresh random content each time. Load comes from
wrk and bench/loadgen (C, keep-alive, sendfile); Python only orchestrates and checks.

Environment:
  QUICK=1                 small sizes (~1 minute)
  BENCH_ONLY=a,b          run only these groups: push pull rate tags small many skopeo mirror
  BENCH_PORT_BASE=15800   berth on BASE, Distribution on BASE+1, iperf3 on BASE+2 (... see
                          bench/README.md; the mirror group's three servers on BASE+5..7)
  BENCH_KEEP=1            keep the data folders and images under build/bench afterwards
  BENCH_BLOB_MIB, BENCH_WRK_SECS, BENCH_MANY_TAGS, BENCH_WRK_THREADS   override sizes
"""
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "build", "bench")
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else WORK
LOADGEN = os.path.join(WORK, "loadgen")
WRK_LUA = os.path.join(ROOT, "bench", "wrk.lua")
BERTH = os.path.join(ROOT, "build", "release", "berth")
DIST = shutil.which("docker-registry") or "/usr/bin/docker-registry"
RESULTS = os.path.join(ROOT, "bench", "results")
PIDFILE = os.path.join(WORK, "pids")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCEPT = ",".join([OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
                   "application/vnd.docker.distribution.manifest.v2+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json"])

QUICK = os.environ.get("QUICK", "") not in ("", "0", "false", "no")
MiB = 1 << 20


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v else default


P = {
    "blob": env_int("BENCH_BLOB_MIB", 128 if QUICK else 1024) * MiB,
    "chunks": 3,
    "pull_reps": 3,
    "wrk_secs": env_int("BENCH_WRK_SECS", 3 if QUICK else 10),
    "wrk_conns": 32,
    "wrk_threads": env_int("BENCH_WRK_THREADS", 2),
    "tags": 1000,
    "tag_conc": 8,
    "many_tags": env_int("BENCH_MANY_TAGS", 10000 if QUICK else 100000),
    "small_n": 500 if QUICK else 2000,
    "small_size": 4096,
    "small_conc": 8,
    "layers": 5,
    "layer_size": (8 if QUICK else 40) * MiB,
    "openssl_secs": 1 if QUICK else 3,
    "dd_mib": 256 if QUICK else 1024,
    "iperf_secs": 1 if QUICK else 3,
    "list_reps": 3 if QUICK else 5,
}
ONLY = set(x for x in os.environ.get("BENCH_ONLY", "").split(",") if x)
PORT_BASE = env_int("BENCH_PORT_BASE", 15800)


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def human_bytes(n):
    return "%.0f MiB" % (n / MiB) if n < (1 << 30) else "%g GiB" % (n / (1 << 30))


BLOB_H = human_bytes(P["blob"])


# ------------------------------------------------------------------------------------- processes

def run(args, timeout=900, check=True, env=None, capture=True):
    p = subprocess.run(args, stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None, timeout=timeout, env=env)
    out = p.stdout.decode(errors="replace") if capture else ""
    err = p.stderr.decode(errors="replace") if capture else ""
    if check and p.returncode != 0:
        raise BenchError("%s exited %d: %s %s" % (" ".join(args[:3]), p.returncode,
                                                  out[-1500:], err[-1500:]))
    return p.returncode, out, err


def loadgen(*args, timeout=900):
    """Runs loadgen; returns its JSON; raises on any failed request (with the first error)."""
    p = subprocess.run([LOADGEN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode(errors="replace").strip()
    err = p.stderr.decode(errors="replace").strip()
    try:
        j = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError("loadgen %s: no result (exit %d): %s" % (args[0], p.returncode, err[-1500:]))
    if p.returncode != 0 or j.get("errors"):
        raise BenchError("loadgen %s: %d failed request(s); first: %s" %
                         (args[0], j.get("errors", -1), j.get("first_error") or err[-800:]))
    return j


def port_free(port):
    s = socket.socket()
    try:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    finally:
        s.close()
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME-WAIT leftovers are fine
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def listening(port):
    """True when some socket listens on port (read from /proc, without connecting)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVERS = []


def write_pidfile():
    with open(PIDFILE, "w") as f:
        for s in SERVERS:
            if s.proc and s.proc.poll() is None:
                f.write("%d %s\n" % (s.proc.pid, os.path.basename(s.binary)))


class Server:
    def __init__(self, kind, port, role="", upstream=None):
        """kind: "berth" or "dist". role (mirror group): "" (the run's two registries),
        "upstream" (a plain berth with its access log on, to count what reaches it), "mirror"
        (berth with berth.mirror, default upstream `upstream`) or "proxy" (Distribution with
        proxy.remoteurl `upstream`)."""
        self.kind = kind  # "berth" or "dist"
        self.role = role
        self.upstream = upstream
        self.name = {"": "berth" if kind == "berth" else "Distribution", "upstream": "upstream berth",
                     "mirror": "berth mirror", "proxy": "Dist. proxy"}[role]
        self.port = port
        self.addr = "127.0.0.1:%d" % port
        tag = kind + ("-" + role if role else "")
        self.root = os.path.join(WORK, tag + "-data")
        self.binary = BERTH if kind == "berth" else DIST
        self.log_path = os.path.join(WORK, tag + ".log")
        self.cfg_path = os.path.join(WORK, tag + "-config.yml")
        self.proc = None

    def start(self):
        to_trash(self.root)
        empty_trash()
        os.makedirs(self.root)
        env = dict(os.environ)
        if self.kind == "berth":
            env.update({
                "REGISTRY_HTTP_ADDR": self.addr,
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": self.root,
                "REGISTRY_STORAGE_DELETE_ENABLED": "true",
                "REGISTRY_LOG_ACCESSLOG_DISABLED": "false" if self.role == "upstream" else "true",
                "REGISTRY_LOG_LEVEL": "info" if self.role == "upstream" else "warn",
            })
            args = [self.binary, "serve"]
            if self.role == "mirror":
                # the mirror's upstreams are a list: YAML only (the rest stays in REGISTRY_*)
                with open(self.cfg_path, "w") as f:
                    f.write("version: 0.1\n"
                            "berth:\n  mirror:\n    timeout: 3s\n    upstreams:\n"
                            "      - prefix: docker.io\n        url: http://%s\n"
                            "        default: true\n" % self.upstream.addr)
                args.append(self.cfg_path)
        else:
            with open(self.cfg_path, "w") as f:
                f.write("version: 0.1\n"
                        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                        "storage:\n  filesystem:\n    rootdirectory: %s\n"
                        "  cache:\n    blobdescriptor: inmemory\n"
                        "  delete:\n    enabled: true\n"
                        "http:\n  addr: %s\n" % (self.root, self.addr))
                if self.role == "proxy":
                    f.write("proxy:\n  remoteurl: http://%s\n" % self.upstream.addr)
            args = [self.binary, "serve", self.cfg_path]
            for k in list(env):
                if k.startswith("REGISTRY_"):
                    del env[k]
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=self.logf, env=env,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        SERVERS.append(self)
        write_pidfile()
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("%s exited at start (%d): %s" % (self.name, self.proc.returncode,
                                                                  self.log_tail()))
            try:
                st, _, _ = self.request("GET", "/v2/")
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError("%s did not answer GET /v2/ within 20 s: %s" % (self.name, self.log_tail()))

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise BenchError("%s died (exit %s): %s" % (self.name, self.proc.returncode,
                                                       self.log_tail()))

    def cpu(self):
        """utime+stime of the server process, seconds."""
        self.check_alive()
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_kb(self, key):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def request(self, method, path, body=None, headers=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def stop(self):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


TRASH = os.path.join(WORK, "trash")


def to_trash(path):
    if os.path.exists(path):
        os.makedirs(TRASH, exist_ok=True)
        os.rename(path, os.path.join(TRASH, "%s-%d-%d" % (os.path.basename(path), os.getpid(), time.time_ns())))


def empty_trash():
    if os.path.isdir(TRASH):
        t0 = time.monotonic()
        log("removing earlier runs' data (%s) before measuring ..." % os.path.relpath(TRASH, ROOT))
        run(["rm", "-rf", TRASH], check=False, timeout=3600)
        log("  removed in %.0f s" % (time.monotonic() - t0))


def stop_all():
    for s in SERVERS:
        try:
            t0 = time.monotonic()
            s.stop()
            if time.monotonic() - t0 > 3:
                log("note: %s took %.0f s to stop" % (s.name, time.monotonic() - t0))
        except Exception as e:  # keep going: every server must be stopped
            log("warning: stopping %s: %s" % (s.name, e))
    try:
        os.unlink(PIDFILE)
    except OSError:
        pass


def on_signal(signum, frame):
    raise SystemExit("interrupted by signal %d" % signum)


# ------------------------------------------------------------------------------ registry helpers

def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def loc_path(loc):
    if loc.startswith("http://") or loc.startswith("https://"):
        rest = loc.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return loc


def push_blob(srv, repo, data):
    """POST + PUT (works on both); verified."""
    d = sha256(data)
    st, h, b = srv.request("POST", "/v2/%s/blobs/uploads/" % repo)
    if st != 202:
        raise BenchError("%s: POST /v2/%s/blobs/uploads/ -> %d %s" % (srv.name, repo, st, b[:300]))
    loc = loc_path(h["location"])
    path = loc + ("&" if "?" in loc else "?") + "digest=" + d
    st, h, b = srv.request("PUT", path, data, {"Content-Type": "application/octet-stream"})
    if st != 201 or h.get("docker-content-digest") != d:
        raise BenchError("%s: PUT %s -> %d %s" % (srv.name, path, st, b[:300]))
    return d


def make_image(srv, repo, layer_size=1024):
    """Pushes a fresh random config + layer; returns (manifest bytes, digest, layer digest)."""
    rnd = os.urandom(16).hex()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": {"bench": rnd}},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = os.urandom(layer_size)
    cd = push_blob(srv, repo, config)
    ld = push_blob(srv, repo, layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": ld, "size": len(layer)}],
    }, indent=3).encode()
    return manifest, sha256(manifest), ld


def verify_blob(srv, repo, digest, size):
    st, h, b = srv.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
    if st != 200 or h.get("docker-content-digest") != digest or int(h.get("content-length", -1)) != size:
        raise BenchError("%s: HEAD blob %s after push -> %d, length %s, digest %s" %
                         (srv.name, digest, st, h.get("content-length"), h.get("docker-content-digest")))


def disk_sync():
    t0 = time.monotonic()
    os.sync()
    return time.monotonic() - t0


# ---------------------------------------------------------------------------------------- results

ROWS = []
ERRORS = []


def row(group, name, unit, better, values, cpu=None, note=""):
    """values: {"berth": number|None|str, "dist": ...}; better: "higher" or "lower"."""
    b, d = values.get("berth"), values.get("dist")
    ratio = None
    if isinstance(b, (int, float)) and isinstance(d, (int, float)) and b > 0 and d > 0:
        ratio = b / d if better == "higher" else d / b
    r = {"group": group, "figure": name, "unit": unit, "better": better, "berth": b,
         "distribution": d, "ratio_berth_better": ratio, "note": note,
         "cpu_s": {k: round(v, 3) for k, v in (cpu or {}).items()},
         "background_cpu_pct": {k: round(v.bg, 1) for k, v in (cpu or {}).items() if hasattr(v, "bg")}}
    ROWS.append(r)
    return r


def fail(group, what, srv, e):
    msg = "%s [%s] %s: %s" % (group, srv.name if srv else "-", what, e)
    ERRORS.append(msg)
    log("  ERROR " + msg)


def fmt(v, unit):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if unit == "requests":
        return "%d" % v
    if unit in ("MB/s",):
        return "%.0f" % v
    if v >= 1000:
        return "%.0f" % v
    if v >= 100:
        return "%.1f" % v
    if v >= 1:
        return "%.2f" % v
    return "%.3f" % v


def machine_busy():
    """Seconds of CPU time the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK_TCK


def own_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class CpuS(float):
    """Server CPU seconds of one phase, with .bg: % of the machine used by other work meanwhile."""
    bg = 0.0


def phase(srv, fn):
    """Runs fn() as srv's phase: returns (result, server CPU seconds used). Also notes how busy
    the machine was with other work meanwhile (neither the servers nor this benchmark's tools)."""
    srv.check_alive()
    others = [s for s in SERVERS if s is not srv and s.alive()]
    c0, b0, o0, t0 = srv.cpu(), machine_busy(), own_cpu(), time.monotonic()
    x0 = sum(s.cpu() for s in others)
    res = fn()
    c1, b1, o1, t1 = srv.cpu(), machine_busy(), own_cpu(), time.monotonic()
    x1 = sum(s.cpu() for s in others)
    bg = max(0.0, (b1 - b0) - (c1 - c0) - (o1 - o0) - (x1 - x0))
    pct = 100.0 * bg / max(1e-3, (t1 - t0) * os.cpu_count())
    c = CpuS(c1 - c0)
    c.bg = pct
    return res, c


def want(group):
    return not ONLY or group in ONLY


# ------------------------------------------------------------------------------- machine limits

LIMITS = {}


def dd_write():
    """The disk's own speed: dd of dd_mib MiB with fdatasync, in bytes/s."""
    f = os.path.join(WORK, "dd.tmp")
    try:
        _, _, err = run(["dd", "if=/dev/zero", "of=" + f, "bs=1M", "count=%d" % P["dd_mib"],
                         "conv=fdatasync"])
    finally:
        if os.path.exists(f):
            os.unlink(f)
    m = re.search(r"(\d+) bytes .* copied, ([\d.,]+) s", err)
    if not m:
        raise BenchError("cannot parse dd output: %s" % err)
    return int(m.group(1)) / float(m.group(2).replace(",", "."))


# A minimal HTTP server that answers every GET with one file through blocking sendfile (a thread
# per connection): the ceiling for serving that page-cached file to bench/loadgen on this machine.
SENDFILE_SERVER = r"""
import os, socket, sys, threading
path, digest, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(path)
head = ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nDocker-Content-Digest: %s\r\n"
        "Content-Type: application/octet-stream\r\n\r\n" % (size, digest)).encode()
def serve(c):
    with c, open(path, "rb") as f:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            buf = buf.split(b"\r\n\r\n", 1)[1]
            c.sendall(head)
            off = 0
            while off < size:
                off += os.sendfile(c.fileno(), f.fileno(), off, size - off)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def sendfile_ceiling(path, digest, conc):
    """MB/s of loadgen pulling `path` from the minimal sendfile server (median of pull_reps)."""
    port = PORT_BASE + 3
    p = subprocess.Popen([sys.executable, "-c", SENDFILE_SERVER, path, digest, str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if p.stdout.readline().strip() != b"ready":
            raise BenchError("sendfile server did not start")
        rates = sorted(loadgen("pull", "-a", "127.0.0.1:%d" % port, "-r", "x", "-d", digest,
                               "-s", os.path.getsize(path), "-c", conc)["bytes_per_s"] / 1e6
                       for _ in range(P["pull_reps"]))
        return statistics.median(rates)
    finally:
        p.terminate()
        p.wait(5)


def measure_limits():
    log("== machine limits")
    _, out, _ = run(["openssl", "speed", "-seconds", str(P["openssl_secs"]), "-bytes", "16384",
                     "-evp", "sha256"])
    m = [ln for ln in out.splitlines() if ln.startswith("sha256")]
    if not m:
        raise BenchError("cannot parse openssl speed output: %s" % out[-500:])
    LIMITS["sha256_16k_bytes_per_s"] = float(m[-1].split()[-1].rstrip("k")) * 1000
    log("  openssl speed -evp sha256 (16 KiB blocks): %.0f MB/s" % (LIMITS["sha256_16k_bytes_per_s"] / 1e6))

    LIMITS["dd_write_bytes_per_s"] = dd_write()
    LIMITS["dd_mib"] = P["dd_mib"]
    log("  dd bs=1M count=%d conv=fdatasync: %.0f MB/s" % (P["dd_mib"], LIMITS["dd_write_bytes_per_s"] / 1e6))

    f = os.path.join(WORK, "dd.tmp")
    try:
        _, _, err = run(["dd", "if=/dev/zero", "of=" + f, "bs=4k", "count=200", "oflag=dsync"])
    finally:
        if os.path.exists(f):
            os.unlink(f)
    m = re.search(r"(\d+) bytes .* copied, ([\d.,]+) s", err)
    if not m:
        raise BenchError("cannot parse dd output: %s" % err)
    LIMITS["dsync_4k_write_ms"] = float(m.group(2).replace(",", ".")) / 200 * 1e3
    log("  dd bs=4k count=200 oflag=dsync: %.2f ms per synchronous 4 KiB write" % LIMITS["dsync_4k_write_ms"])

    port = PORT_BASE + 2
    for label, extra in (("iperf3", []), ("iperf3 -Z (sendfile)", ["-Z"])):
        srv = subprocess.Popen(["iperf3", "-s", "-1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for _ in range(50):  # wait for the listener without connecting (-1: one test only)
                if listening(port):
                    break
                time.sleep(0.1)
            _, out, _ = run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(P["iperf_secs"]),
                             "-J"] + extra, timeout=60)
            j = json.loads(out)
            if "error" in j or "sum_received" not in j.get("end", {}):
                raise BenchError("iperf3: %s" % j.get("error", out[-300:]))
            bps = j["end"]["sum_received"]["bits_per_second"] / 8
        finally:
            if srv.poll() is None:
                srv.terminate()
            srv.wait(5)
        key = "loopback_tcp_bytes_per_s" + ("_sendfile" if extra else "")
        LIMITS[key] = bps
        log("  loopback TCP, %s, 1 stream: %.0f MB/s" % (label, bps / 1e6))
        time.sleep(0.3)


# ------------------------------------------------------------------------------------ the figures

STATE = {}  # per server kind: digests shared between groups


def gen_file(path, size):
    _, out, _ = run([LOADGEN, "gen", path, str(size)])
    return out.strip()


def g_push(servers):
    log("== %s blob push" % BLOB_H)
    modes = [("mono", "POST + PUT ?digest= (monolithic)"),
             ("single", "single POST ?digest="),
             ("chunked", "chunked, %d PATCH + PUT" % P["chunks"])]
    for mode, label in modes:
        vals, cpu = {}, {}
        for srv in servers:
            f = os.path.join(SHM, "berth-bench-%s-%s.bin" % (srv.kind, mode))
            try:
                if mode == "single" and srv.kind == "dist":
                    # Distribution 2.8 answers a POST ?digest= with a session (202) instead of
                    # taking the body: confirm on a small blob, then mark n/a.
                    data = os.urandom(4096)
                    st, _, _ = srv.request("POST", "/v2/bench/probe/blobs/uploads/?digest=" + sha256(data),
                                           data, {"Content-Type": "application/octet-stream"})
                    vals[srv.kind] = "n/a (%d)" % st if st != 201 else "probe 201?"
                    continue
                digest = gen_file(f, P["blob"])
                disk_sync()
                repo = "bench/big-" + mode
                j, c = phase(srv, lambda: loadgen("push", "-a", srv.addr, "-r", repo, "-f", f,
                                                  "-d", digest, "-m", mode, "-k", P["chunks"]))
                sync_s = disk_sync()
                verify_blob(srv, repo, digest, P["blob"])
                vals[srv.kind] = j["bytes_per_s"] / 1e6
                cpu[srv.kind] = c
                if mode == "mono":
                    STATE.setdefault(srv.kind, {})["big"] = (repo, digest)
                log("  %-12s %-34s %7.0f MB/s  (%.2f s; then sync %.2f s; server CPU %.2f s)" %
                    (srv.name, label, vals[srv.kind], j["secs"], sync_s, c))
            except BenchError as e:
                vals[srv.kind] = "ERROR"
                fail("push", label, srv, e)
            finally:
                if os.path.exists(f):
                    os.unlink(f)
        note = "Distribution 2.8 answers POST ?digest= with 202 (a session): unsupported" if mode == "single" else ""
        if isinstance(vals.get("berth"), float) and LIMITS.get("dd_write_bytes_per_s"):
            # This VM's disk drifts by ±25% within a run; a dd right before each push did not
            # make the comparison steadier (46-72% in one run), so the run's dd is the yardstick.
            pct = 100 * vals["berth"] * 1e6 / LIMITS["dd_write_bytes_per_s"]
            log("  berth at %.0f%% of the disk (dd at the start of the run)" % pct)
            note = (note + "; " if note else "") + "berth at %.0f%% of the run's dd" % pct
        row("push", "%s blob push, %s" % (BLOB_H, label), "MB/s", "higher", vals, cpu, note)


def g_pull(servers):
    log("== %s blob pull" % BLOB_H)
    ceiling = {}
    for conc in (1, 4):
        vals, cpu = {}, {}
        label = "%s blob pull, %s" % (BLOB_H, "1 stream" if conc == 1 else "%d parallel streams (aggregate)" % conc)
        for srv in servers:
            try:
                if "big" not in STATE.get(srv.kind, {}):
                    raise BenchError("no blob pushed (push group failed or skipped)")
                repo, digest = STATE[srv.kind]["big"]

                def pulls():
                    return [loadgen("pull", "-a", srv.addr, "-r", repo, "-d", digest, "-s", P["blob"],
                                    "-c", conc) for _ in range(P["pull_reps"])]
                if conc == 1:
                    # Untimed, first: the bytes really are the blob, and the timed pulls then
                    # read a page-cached blob on both (berth writes large uploads with O_DIRECT,
                    # which leaves nothing of them in the page cache).
                    loadgen("pull", "-a", srv.addr, "-r", repo, "-d", digest, "-s", P["blob"], "-c", 1, "-v")
                js, c = phase(srv, pulls)
                if srv.kind == "berth":
                    # The ceiling for this transfer: the same page-cached file to the same client
                    # through a minimal blocking-sendfile server (iperf3 -Z resends one small
                    # cache-hot buffer, which a 1 GiB blob is not).
                    hx = digest.split(":", 1)[1]
                    ceiling[conc] = sendfile_ceiling(os.path.join(srv.root, "blobs", "sha256", hx[:2], hx),
                                                     digest, conc)
                rates = sorted(j["bytes_per_s"] / 1e6 for j in js)
                vals[srv.kind] = statistics.median(rates)
                cpu[srv.kind] = CpuS(c / len(js))
                cpu[srv.kind].bg = c.bg
                log("  %-12s %-40s %7.0f MB/s  (median of %s MB/s; server CPU %.2f s per pull)" %
                    (srv.name, label, vals[srv.kind], "/".join("%.0f" % r for r in rates), cpu[srv.kind]))
            except BenchError as e:
                vals[srv.kind] = "ERROR"
                fail("pull", label, srv, e)
        note = (("same blob, page-cached on both" if conc == 1 else "%d x the whole blob at once" % conc) +
                "; median of %d" % P["pull_reps"])
        if conc in ceiling and isinstance(vals.get("berth"), float):
            LIMITS["sendfile_same_file_bytes_per_s_%d_streams" % conc] = ceiling[conc] * 1e6
            pct = 100 * vals["berth"] / ceiling[conc]
            log("  berth at %.0f%% of a minimal sendfile server of the same file (%.0f MB/s)" % (pct, ceiling[conc]))
            note += "; berth at %.0f%% of a minimal sendfile server of the same file to the same client (%.0f MB/s)" % (pct, ceiling[conc])
        row("pull", label, "MB/s", "higher", vals, cpu, note)


def wrk_get(srv, path, secs):
    env = dict(os.environ, WRK_METHOD="GET", WRK_ACCEPT=ACCEPT)
    args = ["wrk", "-t", str(P["wrk_threads"]), "-c", str(P["wrk_conns"]), "-d", "%ds" % secs,
            "--latency", "-s", WRK_LUA, "http://%s%s" % (srv.addr, path)]
    _, out, _ = run(args, env=env, timeout=secs + 60)
    m = re.search(r"^WRKJSON (.*)$", out, re.M)
    if not m:
        raise BenchError("no WRKJSON line from wrk: %s" % out[-800:])
    j = json.loads(m.group(1))
    errs = sum(j[k] for k in ("status_errors", "connect", "read", "write", "timeout"))
    if errs:
        raise BenchError("wrk GET %s: %d errors (non-2xx/3xx, socket or timeouts): %s" %
                         (path, errs, m.group(1)))
    if j["requests"] == 0:
        raise BenchError("wrk GET %s: no request completed" % path)
    return {"per_s": j["requests"] / (j["duration_us"] / 1e6), "p99_ms": j["p99_us"] / 1e3,
            "p50_ms": j["p50_us"] / 1e3, "requests": j["requests"]}


NGINX_CONF = """worker_processes %(workers)d;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %(dir)s/tmp;
  proxy_temp_path %(dir)s/tmp;
  fastcgi_temp_path %(dir)s/tmp;
  uwsgi_temp_path %(dir)s/tmp;
  scgi_temp_path %(dir)s/tmp;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:%(port)d;
    root %(dir)s/html;
    default_type "%(mt)s";
  }
}
"""


class StaticServer:
    addr = ""


def nginx_static_get(body, media_type, secs):
    """wrk against nginx (one worker per core, sendfile) serving `body` as a static file: the
    ceiling the issue names for a manifest GET on this machine, measured in the same run."""
    if not shutil.which("nginx"):
        raise BenchError("nginx not installed (scripts/deps.sh bench installs nginx-light)")
    d = os.path.join(WORK, "nginx")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "html"))
    os.makedirs(os.path.join(d, "tmp"))
    with open(os.path.join(d, "html", "manifest"), "wb") as f:
        f.write(body)
    port = PORT_BASE + 4
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"workers": os.cpu_count() or 1, "dir": d, "port": port, "mt": media_type})
    p = subprocess.Popen(["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(50):
            if listening(port):
                break
            if p.poll() is not None:
                raise BenchError("nginx exited with %d" % p.returncode)
            time.sleep(0.1)
        srv = StaticServer()
        srv.addr = "127.0.0.1:%d" % port
        st = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        st.request("GET", "/manifest")
        r = st.getresponse()
        got = r.read()
        st.close()
        if r.status != 200 or got != body:
            raise BenchError("nginx GET /manifest -> %d, body matches: %s" % (r.status, got == body))
        return wrk_get(srv, "/manifest", secs)
    finally:
        if p.poll() is None:
            p.terminate()
        p.wait(10)


def hammer(srv, method, path, secs, digest, accept=None):
    args = ["hammer", "-a", srv.addr, "-M", method, "-P", path, "-c", P["wrk_conns"],
            "-T", P["wrk_threads"], "-D", secs, "-d", digest]
    if accept:
        args += ["-H", "Accept: " + accept]
    return loadgen(*args, timeout=secs + 60)


def g_rate(servers):
    secs = P["wrk_secs"]
    log("== request rates (%d connections, %d s each)" % (P["wrk_conns"], secs))
    repo = "bench/rate"
    for srv in servers:
        try:
            manifest, md, ld = make_image(srv, repo, 64 * 1024)
            st, h, b = srv.request("PUT", "/v2/%s/manifests/latest" % repo, manifest,
                                   {"Content-Type": OCI_MANIFEST})
            if st != 201:
                raise BenchError("PUT manifest -> %d %s" % (st, b[:300]))
            st, h, b = srv.request("GET", "/v2/%s/manifests/latest" % repo, headers={"Accept": ACCEPT})
            if st != 200 or b != manifest or h.get("docker-content-digest") != md:
                raise BenchError("GET manifest -> %d, body matches: %s" % (st, b == manifest))
            st, h, _ = srv.request("HEAD", "/v2/%s/manifests/latest" % repo, headers={"Accept": ACCEPT})
            if st != 200 or int(h.get("content-length", -1)) != len(manifest):
                raise BenchError("HEAD manifest -> %d, Content-Length %s (want %d)" %
                                 (st, h.get("content-length"), len(manifest)))
            verify_blob(srv, repo, ld, 64 * 1024)
            STATE.setdefault(srv.kind, {})["rate"] = (md, ld)
        except BenchError as e:
            fail("rate", "setup", srv, e)
    figs = [
        ("manifest GET by tag (wrk)", lambda s, st: wrk_get(s, "/v2/%s/manifests/latest" % repo, secs)),
        ("manifest HEAD by tag (loadgen)", lambda s, st: hammer(s, "HEAD", "/v2/%s/manifests/latest" % repo,
                                                                 secs, st[0], ACCEPT)),
        ("blob HEAD (loadgen)", lambda s, st: hammer(s, "HEAD", "/v2/%s/blobs/%s" % (repo, st[1]), secs, st[1])),
    ]
    if not QUICK:
        figs.append(("manifest GET by tag (loadgen; cross-checks wrk)",
                     lambda s, st: hammer(s, "GET", "/v2/%s/manifests/latest" % repo, secs, st[0], ACCEPT)))
    for label, fn in figs:
        rate, p99, cpu, note = {}, {}, {}, ""
        for srv in servers:
            try:
                st = STATE.get(srv.kind, {}).get("rate")
                if not st:
                    raise BenchError("setup failed")
                j, c = phase(srv, lambda: fn(srv, st))
                rate[srv.kind], p99[srv.kind], cpu[srv.kind] = j["per_s"], j["p99_ms"], c
                log("  %-12s %-48s %8.0f req/s  p99 %7.2f ms  (server CPU %.2f s)" %
                    (srv.name, label, j["per_s"], j["p99_ms"], c))
            except BenchError as e:
                rate[srv.kind] = p99[srv.kind] = "ERROR"
                fail("rate", label, srv, e)
        if "(wrk)" in label and isinstance(rate.get("berth"), float):
            # The same bytes as a static file from nginx, with the same wrk: what this machine
            # gives a manifest GET, tail included, with client and server sharing its cores.
            try:
                st, h, body = servers[0].request("GET", "/v2/%s/manifests/latest" % repo,
                                                 headers={"Accept": ACCEPT})
                j = nginx_static_get(body, h.get("content-type", OCI_MANIFEST), secs)
                LIMITS["nginx_static_get_per_s"] = j["per_s"]
                LIMITS["nginx_static_get_p99_ms"] = j["p99_ms"]
                log("  %-12s %-48s %8.0f req/s  p99 %7.2f ms" %
                    ("nginx", "the same bytes as a static file (wrk)", j["per_s"], j["p99_ms"]))
                note = ("nginx (%d workers, sendfile) serving the same bytes as a static file to the same wrk: "
                        "%.0f req/s, p99 %.2f ms" % (os.cpu_count() or 1, j["per_s"], j["p99_ms"]))
            except BenchError as e:
                log("  note: no nginx reference: %s" % e)
        row("rate", label + ", req/s", "req/s", "higher", rate, cpu, note)
        row("rate", label + ", p99 latency", "ms", "lower", p99, note=note)


def list_time(srv, path, reps):
    """Median seconds of GET path (curl's time_total); returns (secs, body, headers)."""
    times = []
    out = os.path.join(WORK, "list.json")
    hdr = os.path.join(WORK, "list.hdr")
    for _ in range(reps):
        _, o, _ = run(["curl", "-s", "-o", out, "-D", hdr, "-w", "%{http_code} %{time_total}",
                       "http://%s%s" % (srv.addr, path)], timeout=300)
        code, t = o.split()
        if code != "200":
            with open(out, "rb") as f:
                raise BenchError("GET %s -> %s %s" % (path, code, f.read()[:300]))
        times.append(float(t))
    with open(out, "rb") as f:
        body = json.loads(f.read())
    with open(hdr) as f:
        headers = f.read()
    return statistics.median(times), body, headers


def g_tags(servers):
    n = P["tags"]
    log("== %d tag PUTs (%d concurrent) and the tag list" % (n, P["tag_conc"]))
    repo = "bench/tags"
    vals, p99, cpu, lvals, lcpu = {}, {}, {}, {}, {}
    for srv in servers:
        try:
            manifest, md, _ = make_image(srv, repo)
            mf = os.path.join(WORK, "manifest-%s.json" % srv.kind)
            with open(mf, "wb") as f:
                f.write(manifest)
            j, c = phase(srv, lambda: loadgen("tags", "-a", srv.addr, "-r", repo, "-n", n, "-c", P["tag_conc"],
                                              "-f", mf, "-t", OCI_MANIFEST, "-p", "t"))
            vals[srv.kind], p99[srv.kind], cpu[srv.kind] = j["per_s"], j["p99_ms"], c
            log("  %-12s %d tag PUTs: %7.0f tags/s  p99 %.1f ms  (server CPU %.2f s)" %
                (srv.name, n, j["per_s"], j["p99_ms"], c))
            (t, body, _), c = phase(srv, lambda: list_time(srv, "/v2/%s/tags/list" % repo, P["list_reps"]))
            want_tags = ["t%06d" % i for i in range(n)]
            if sorted(body.get("tags") or []) != want_tags:
                raise BenchError("tags/list returned %d tags, want exactly the %d pushed" %
                                 (len(body.get("tags") or []), n))
            lvals[srv.kind], lcpu[srv.kind] = t * 1e3, c
            log("  %-12s tags/list of %d: %.2f ms (median of %d)" % (srv.name, n, t * 1e3, P["list_reps"]))
        except BenchError as e:
            vals.setdefault(srv.kind, "ERROR")
            lvals.setdefault(srv.kind, "ERROR")
            fail("tags", "tag PUT / list", srv, e)
    row("tags", "%d tag PUTs, %d concurrent" % (n, P["tag_conc"]), "tags/s", "higher", vals, cpu)
    row("tags", "%d tag PUTs, p99 latency" % n, "ms", "lower", p99)
    row("tags", "tags/list, %d tags (full)" % n, "ms", "lower", lvals, lcpu, "median of %d" % P["list_reps"])


def dist_write_tags(srv, repo, md, first, n):
    """Distribution's own layout for a tag: _manifests/tags/<tag>/{current,index/sha256/<hex>}/link
    (written by loadgen distfs, in C: Python's os calls would take ~40 s for 100,000 tags)."""
    base = os.path.join(srv.root, "docker", "registry", "v2", "repositories", repo, "_manifests", "tags")
    if not os.path.isdir(base):
        raise BenchError("no %s: the first tag PUT did not create it" % base)
    loadgen("distfs", base, md, "t", first, n)


def g_many(servers):
    n = P["many_tags"]
    log("== %d tags: listing" % n)
    repo = "bench/many"
    push_vals, push_cpu = {}, {}
    full, fullc, page, pagec, mid, midc = {}, {}, {}, {}, {}, {}
    for srv in servers:
        try:
            manifest, md, _ = make_image(srv, repo)
            mf = os.path.join(WORK, "manifest-many-%s.json" % srv.kind)
            with open(mf, "wb") as f:
                f.write(manifest)
            if srv.kind == "berth":
                j, c = phase(srv, lambda: loadgen("tags", "-a", srv.addr, "-r", repo, "-n", n,
                                                  "-c", P["tag_conc"], "-f", mf, "-t", OCI_MANIFEST, "-p", "t",
                                                  timeout=1800))
                push_vals[srv.kind], push_cpu[srv.kind] = j["per_s"], c
                log("  %-12s %d tag PUTs over HTTP: %.0f tags/s (%.1f s, p99 %.1f ms)" %
                    (srv.name, n, j["per_s"], j["secs"], j["p99_ms"]))
            else:
                # Its tag directories live in tmpfs (a symlink): 5 directories + 2 files a tag make
                # ~700,000 inodes, which take this VM's IOPS-limited disk 15+ minutes to delete.
                tags_dir = os.path.join(srv.root, "docker", "registry", "v2", "repositories", repo,
                                        "_manifests", "tags")
                shm_tags = os.path.join(SHM, "berth-bench-dist-tags")
                run(["rm", "-rf", shm_tags], check=False, timeout=600)
                os.makedirs(shm_tags)
                os.makedirs(os.path.dirname(tags_dir), exist_ok=True)
                os.symlink(shm_tags, tags_dir)
                # one real PUT (the manifest revision, the first tag), the rest written directly
                st, _, b = srv.request("PUT", "/v2/%s/manifests/t000000" % repo, manifest,
                                       {"Content-Type": OCI_MANIFEST})
                if st != 201:
                    raise BenchError("PUT manifest -> %d %s" % (st, b[:300]))
                t0 = time.monotonic()
                dist_write_tags(srv, repo, md, 1, n - 1)
                push_vals[srv.kind] = "n/a (files)"
                log("  %-12s %d tags written into its filesystem layout in %.1f s" %
                    (srv.name, n - 1, time.monotonic() - t0))
            disk_sync()
            (t, body, _), c = phase(srv, lambda: list_time(srv, "/v2/%s/tags/list" % repo, P["list_reps"]))
            got = body.get("tags") or []
            if sorted(got) != ["t%06d" % i for i in range(n)]:
                raise BenchError("full tags/list returned %d tags, not the %d expected" % (len(got), n))
            if got != sorted(got):
                log("  note: %s's full tag list is not sorted" % srv.name)
            full[srv.kind], fullc[srv.kind] = t * 1e3, c
            (t, body, hdr), c = phase(srv, lambda: list_time(srv, "/v2/%s/tags/list?n=1000" % repo, P["list_reps"]))
            got = body.get("tags") or []
            if srv.kind == "dist" and len(got) == n:
                # Distribution 2.8 ignores n (and last) on tags/list: it always sends every tag
                page[srv.kind] = mid[srv.kind] = "n/a (ignores n)"
                log("  %-12s ignores n= on tags/list: every %d tags came back (%.1f ms); full list %.1f ms" %
                    (srv.name, n, t * 1e3, full[srv.kind]))
                continue
            if got != ["t%06d" % i for i in range(1000)]:
                raise BenchError("tags/list?n=1000 returned %d tags (first %s)" % (len(got), got[:1]))
            if "rel=\"next\"" not in hdr:
                log("  note: %s sent no Link rel=\"next\" header for the first page" % srv.name)
            page[srv.kind], pagec[srv.kind] = t * 1e3, c
            last = "t%06d" % (n // 2 - 1)
            (t, body, hdr), c = phase(srv, lambda: list_time(srv, "/v2/%s/tags/list?n=1000&last=%s" % (repo, last),
                                                             P["list_reps"]))
            got = body.get("tags") or []
            if got != ["t%06d" % i for i in range(n // 2, n // 2 + 1000)]:
                raise BenchError("tags/list?n=1000&last=%s returned %d tags (first %s)" % (last, len(got), got[:1]))
            mid[srv.kind], midc[srv.kind] = t * 1e3, c
            log("  %-12s list %d tags: full %.1f ms, first page (n=1000) %.2f ms, middle page %.2f ms" %
                (srv.name, n, full[srv.kind], page[srv.kind], mid[srv.kind]))
        except BenchError as e:
            for d in (full, page, mid):
                d.setdefault(srv.kind, "ERROR")
            fail("many", "%d tags" % n, srv, e)
    row("many", "%d tag PUTs over HTTP, %d concurrent" % (n, P["tag_conc"]), "tags/s", "higher",
        push_vals, push_cpu, "Distribution's tags were written into its filesystem layout, in tmpfs (too slow over HTTP)")
    row("many", "tags/list, %d tags (full)" % n, "ms", "lower", full, fullc, "median of %d" % P["list_reps"])
    row("many", "tags/list, %d tags, first page n=1000" % n, "ms", "lower", page, pagec)
    row("many", "tags/list, %d tags, middle page n=1000&last=" % n, "ms", "lower", mid, midc)


def g_small(servers):
    n, size, conc = P["small_n"], P["small_size"], P["small_conc"]
    log("== %d x %d KiB blob pushes (%d concurrent)" % (n, size // 1024, conc))
    for mode, label in (("single", "single POST ?digest="), ("two", "POST + PUT")):
        vals, p99, cpu = {}, {}, {}
        for srv in servers:
            if mode == "single" and srv.kind == "dist":
                vals[srv.kind] = "n/a"
                continue
            try:
                # The other server's previous phase may have left dirty pages (Distribution
                # never syncs): write them out now so neither pays for the other's writes.
                disk_sync()
                j, c = phase(srv, lambda: loadgen("blobs", "-a", srv.addr, "-r", "bench/small-" + mode,
                                                  "-n", n, "-s", size, "-c", conc, "-m", mode))
                vals[srv.kind], p99[srv.kind], cpu[srv.kind] = j["per_s"], j["p99_ms"], c
                log("  %-12s %-22s %7.0f blobs/s  p99 %.1f ms  (server CPU %.2f s)" %
                    (srv.name, label, j["per_s"], j["p99_ms"], c))
            except BenchError as e:
                vals[srv.kind] = "ERROR"
                fail("small", label, srv, e)
        note = "Distribution 2.8 has no single-request push" if mode == "single" else ""
        row("small", "%d x %d KiB blob push, %s" % (n, size // 1024, label), "blobs/s", "higher", vals, cpu, note)
        row("small", "%d KiB blob push, %s, p99 latency" % (size // 1024, label), "ms", "lower", p99)


def build_oci_image(layout, layers=None, layer_size=None):
    layers = P["layers"] if layers is None else layers
    layer_size = P["layer_size"] if layer_size is None else layer_size
    shutil.rmtree(layout, ignore_errors=True)
    src = layout + "-src"
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", layout + ":latest"])
    for i in range(layers):
        f = os.path.join(src, "layer%d.bin" % i)
        gen_file(f, layer_size)
        run(["umoci", "insert", "--image", layout + ":latest", f, "/data/layer%d.bin" % i])
        os.unlink(f)
    run(["umoci", "gc", "--layout", layout])
    shutil.rmtree(src, ignore_errors=True)
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    ms = [m for m in idx["manifests"]
          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"]
    if len(ms) != 1:
        raise BenchError("umoci layout has %d manifests tagged latest" % len(ms))
    total = sum(os.path.getsize(os.path.join(layout, "blobs", "sha256", b))
                for b in os.listdir(os.path.join(layout, "blobs", "sha256")))
    return ms[0]["digest"], total


def verify_layout(layout, want_digest):
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    ds = [m["digest"] for m in idx["manifests"]]
    if ds != [want_digest]:
        raise BenchError("copied-out layout holds %s, want %s" % (ds, want_digest))
    bdir = os.path.join(layout, "blobs", "sha256")
    for b in os.listdir(bdir):
        h = hashlib.sha256()
        with open(os.path.join(bdir, b), "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
        if h.hexdigest() != b:
            raise BenchError("copied-out blob %s has sha256 %s" % (b, h.hexdigest()))
    with open(os.path.join(bdir, want_digest.split(":", 1)[1]), "rb") as f:
        m = json.load(f)
    for d in [m["config"]] + m["layers"]:
        if not os.path.exists(os.path.join(bdir, d["digest"].split(":", 1)[1])):
            raise BenchError("copied-out layout lacks %s" % d["digest"])
    return len(m["layers"])


def g_skopeo(servers):
    log("== skopeo copy of a %d-layer image (%d x %s random layers, built with umoci)" %
        (P["layers"], P["layers"], human_bytes(P["layer_size"])))
    vin, vout, cin, cout = {}, {}, {}, {}
    size_note = ""
    for srv in servers:
        layout = os.path.join(WORK, "img-%s" % srv.kind)
        out = os.path.join(WORK, "img-%s-out" % srv.kind)
        try:
            t0 = time.monotonic()
            digest, total = build_oci_image(layout)
            size_note = "image %.0f MiB" % (total / MiB)
            log("  built %s (%s, %s) in %.1f s" % (layout, digest[:19], size_note, time.monotonic() - t0))
            disk_sync()
            ref = "docker://%s/bench/img:v1" % srv.addr
            dfile = os.path.join(WORK, "skopeo-digest")

            def copy_in():
                t = time.monotonic()
                run(["skopeo", "copy", "-q", "--preserve-digests", "--dest-tls-verify=false",
                     "--digestfile", dfile, "oci:%s:latest" % layout, ref], timeout=600)
                return time.monotonic() - t
            t, c = phase(srv, copy_in)
            with open(dfile) as f:
                pushed = f.read().strip()
            if pushed != digest:
                raise BenchError("skopeo pushed %s, the layout holds %s" % (pushed, digest))
            st, h, _ = srv.request("HEAD", "/v2/bench/img/manifests/v1", headers={"Accept": ACCEPT})
            if st != 200 or h.get("docker-content-digest") != digest:
                raise BenchError("HEAD manifest after copy -> %d %s" % (st, h.get("docker-content-digest")))
            vin[srv.kind], cin[srv.kind] = t, c
            disk_sync()
            shutil.rmtree(out, ignore_errors=True)

            def copy_out():
                t = time.monotonic()
                run(["skopeo", "copy", "-q", "--preserve-digests", "--src-tls-verify=false",
                     ref, "oci:%s:latest" % out], timeout=600)
                return time.monotonic() - t
            t, c = phase(srv, copy_out)
            nl = verify_layout(out, digest)
            if nl != P["layers"]:
                raise BenchError("copied-out image has %d layers" % nl)
            vout[srv.kind], cout[srv.kind] = t, c
            log("  %-12s skopeo copy in %.2f s (server CPU %.2f s), out %.2f s (server CPU %.2f s); digests verified" %
                (srv.name, vin[srv.kind], cin[srv.kind], vout[srv.kind], cout[srv.kind]))
        except BenchError as e:
            vin.setdefault(srv.kind, "ERROR")
            vout.setdefault(srv.kind, "ERROR")
            fail("skopeo", "copy", srv, e)
        finally:
            if os.environ.get("BENCH_KEEP") != "1":
                shutil.rmtree(out, ignore_errors=True)
                shutil.rmtree(layout, ignore_errors=True)
    row("skopeo", "skopeo copy oci: -> registry (%d layers)" % P["layers"], "s", "lower", vin, cin, size_note)
    row("skopeo", "skopeo copy registry -> oci:", "s", "lower", vout, cout, size_note)


# ------------------------------------------------------------------------------ pull-through mirror

MIRROR_PREFIX = "docker.io"


def mpath(srv, repo):
    """repo as srv's clients name it: under the prefix on berth's mirror, un-prefixed on
    Distribution's proxy (it proxies un-prefixed names only) and on the upstream itself."""
    return MIRROR_PREFIX + "/" + repo if srv.role == "mirror" else repo


class UpstreamLog:
    """The requests that reached the upstream, from its access log (berth writes a request's
    line when it completes)."""

    def __init__(self, srv):
        self.srv = srv
        self.off = 0

    def mark(self):
        self.off = os.path.getsize(self.srv.log_path)

    def since(self, settle=0.3, limit=15):
        """[(method, path, status)] logged since mark(), once the log stopped growing."""
        prev = os.path.getsize(self.srv.log_path)
        deadline = time.time() + limit
        while time.time() < deadline:
            time.sleep(settle)
            cur = os.path.getsize(self.srv.log_path)
            if cur == prev:
                break
            prev = cur
        with open(self.srv.log_path, "rb") as f:
            f.seek(self.off)
            data = f.read().decode(errors="replace")
        out = []
        for ln in data.splitlines():
            m = re.search(r" access \S+ (\S+) (\S+) (\d+) ", ln)
            if m:
                out.append((m.group(1), m.group(2), int(m.group(3))))
        return out


def req_kind(method, path):
    if re.fullmatch(r"/v2/?", path):
        return method + " /v2/"
    if "/manifests/sha256:" in path:
        return method + " manifest by digest"
    if "/manifests/" in path:
        return method + " manifest by tag"
    if "/blobs/" in path:
        return method + " blob"
    return method + " other"


def req_summary(reqs):
    counts = {}
    for m, p, _ in reqs:
        k = req_kind(m, p)
        counts[k] = counts.get(k, 0) + 1
    return ", ".join("%s x%d" % kv for kv in sorted(counts.items())) or "none"


def mirror_status(srv):
    st, _, b = srv.request("GET", "/berth/v1/mirror")
    if st != 200:
        raise BenchError("GET /berth/v1/mirror -> %d %s" % (st, b[:300]))
    return json.loads(b)["upstreams"][0]


def check_mirror_status(srv, before, what):
    """berth's mirror answered every request of the phase from a live upstream: nothing stale,
    no upstream error, the breaker closed."""
    after = mirror_status(srv)
    bad = []
    if not after.get("up"):
        bad.append("upstream marked down (%s)" % after.get("last_error"))
    for k in ("stale", "errors"):
        if after.get(k, 0) != before.get(k, 0):
            bad.append("%s %d -> %d" % (k, before.get(k, 0), after.get(k, 0)))
    if bad:
        raise BenchError("%s: berth's mirror status: %s; last error: %s" %
                         (what, "; ".join(bad), after.get("last_error")))
    return after


def open_fds(srv):
    return len(os.listdir("/proc/%d/fd" % srv.proc.pid))


def stored_path(srv, digest):
    hx = digest.split(":", 1)[1]
    if srv.kind == "berth":
        return os.path.join(srv.root, "blobs", "sha256", hx[:2], hx)
    return os.path.join(srv.root, "docker", "registry", "v2", "blobs", "sha256", hx[:2], hx, "data")


def wait_stored(srv, digest, size, limit=60):
    """Waits until srv's store holds the blob (a mirror may still be publishing it, and
    Distribution's proxy commits it after the client has every byte)."""
    path = stored_path(srv, digest)
    deadline = time.time() + limit
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) == size:
            return
        time.sleep(0.1)
    raise BenchError("%s did not store %s within %d s (%s)" % (srv.name, digest, limit, path))


class Podman:
    """Root podman with a throw-away VFS store and its own registries.conf, as the client tests
    run it (tests/e2e/test_clients.py)."""

    def __init__(self, base, insecure):
        self.base = base
        shutil.rmtree(base, ignore_errors=True)
        self.root, self.runroot, self.tmp = (os.path.join(base, d) for d in ("root", "run", "tmp"))
        for d in (self.root, self.runroot, self.tmp):
            os.makedirs(d)
        storage = os.path.join(base, "storage.conf")
        with open(storage, "w") as f:
            f.write('[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n' % (self.runroot, self.root))
        regs = os.path.join(base, "registries.conf")
        with open(regs, "w") as f:
            f.write("unqualified-search-registries = []\n")
            for addr in insecure:
                f.write('[[registry]]\nlocation = "%s"\ninsecure = true\n' % addr)
        self.env = dict(os.environ, CONTAINERS_STORAGE_CONF=storage, CONTAINERS_REGISTRIES_CONF=regs,
                        TMPDIR=self.tmp)
        self.args = ["podman", "--storage-driver", "vfs", "--root", self.root, "--runroot", self.runroot,
                     "--tmpdir", self.tmp, "--cgroup-manager=cgroupfs", "--events-backend=file"]

    def __call__(self, *a, check=True, timeout=300):
        return run(self.args + list(a), env=self.env, check=check, timeout=timeout)

    def usable(self):
        if not shutil.which("podman"):
            return "podman not installed"
        rc, out, err = self("info", "--format", "{{.Store.GraphDriverName}}", check=False, timeout=120)
        if rc != 0 or out.strip() != "vfs":
            return "podman info failed (%d): %s" % (rc, (err or out).strip()[-300:])
        return None

    def cleanup(self):
        if shutil.which("podman"):
            self("rmi", "-a", "-f", check=False, timeout=120)
        shutil.rmtree(self.base, ignore_errors=True)


def mirror_cold(up, ulog, pair, out):
    """Cold pull-through: a fresh blob on the upstream per phase, GET once directly, through
    berth's mirror and through Distribution's proxy; the client hashes every byte it gets."""
    size = P["blob"]
    for mode, srv in [("direct", up)] + pair:
        f = os.path.join(SHM, "berth-bench-mirror-%s.bin" % mode)
        try:
            digest = gen_file(f, size)
            disk_sync()
            repo = "bench/cold-" + mode
            loadgen("push", "-a", up.addr, "-r", repo, "-f", f, "-d", digest, "-m", "mono")
            verify_blob(up, repo, digest, size)
            os.unlink(f)
            # Untimed: the upstream's copy is the blob, and it is page-cached for every phase
            # alike (berth writes large uploads with O_DIRECT, which leaves none of it cached).
            loadgen("pull", "-a", up.addr, "-r", repo, "-d", digest, "-s", size, "-c", 1, "-v")
            disk_sync()
            before = mirror_status(srv) if srv.role == "mirror" else None
            ulog.mark()
            j, c = phase(srv, lambda: loadgen("pull", "-a", srv.addr, "-r", mpath(srv, repo), "-d", digest,
                                              "-s", size, "-c", 1, "-v"))
            if srv is not up:
                wait_stored(srv, digest, size)
            reqs = ulog.since()
            gets = sum(1 for m, p, _ in reqs if m == "GET" and p.endswith("/blobs/" + digest))
            if srv.role == "mirror":
                check_mirror_status(srv, before, "cold pull")
                if gets != 1:
                    raise BenchError("the upstream saw %d GETs of the blob, want 1 (%s)" % (gets, req_summary(reqs)))
            r = {"mbps": j["bytes_per_s"] / 1e6, "head_ms": j["first_byte_s"] * 1e3,
                 "body_ms": j["first_body_byte_s"] * 1e3, "cpu": c, "up": req_summary(reqs),
                 "repo": repo, "digest": digest}
            if mode == "direct":
                # For scale: the same GET without the client hashing (not cold either way).
                r["unhashed_mbps"] = loadgen("pull", "-a", up.addr, "-r", repo, "-d", digest, "-s", size,
                                             "-c", 1)["bytes_per_s"] / 1e6
            out[mode] = r
            log("  %-14s cold %s GET %7.0f MB/s, first byte %.1f ms (first body byte %.1f ms); sha256 "
                "checked; server CPU %.2f s; upstream saw: %s" %
                (srv.name if srv is not up else "direct", BLOB_H, r["mbps"], r["head_ms"], r["body_ms"],
                 c, r["up"]))
        except BenchError as e:
            out[mode] = None
            fail("mirror", "cold pull (%s)" % mode, srv, e)
        finally:
            if os.path.exists(f):
                os.unlink(f)
    d = out.get("direct")
    vals, first, share, cpu = {}, {}, {}, {}
    for mode, srv in pair:
        r = out.get(mode)
        vals[srv.kind] = r["mbps"] if r else "ERROR"
        first[srv.kind] = r["body_ms"] if r else "ERROR"
        if r:
            cpu[srv.kind] = r["cpu"]
        if r and d:
            share[srv.kind] = r["mbps"] / d["mbps"]
    note = "client hashes every byte (loadgen pull -v); fresh blob per phase; upstream page-cached"
    if d:
        note += "; direct from the upstream %.0f MB/s (%.0f MB/s without the client hashing)" % (
            d["mbps"], d["unhashed_mbps"])
    for mode, srv in pair:
        if out.get(mode):
            note += "; %s's upstream requests: %s" % (srv.name, out[mode]["up"])
    b, ds = vals.get("berth"), vals.get("dist")
    if isinstance(b, float) and isinstance(ds, float):
        log("  berth mirror / Distribution proxy: %.2fx (target >= 1.5)" % (b / ds))
    if "berth" in share:
        log("  berth mirror / direct: %.2f (target >= 0.8)" % share["berth"])
    row("mirror", "%s cold pull-through (not cached), 1 stream" % BLOB_H, "MB/s", "higher", vals, cpu,
        note + "; target berth/Distribution >= 1.5")
    row("mirror", "%s GET direct from the upstream (reference; client hashes)" % BLOB_H, "MB/s", "higher",
        {"berth": d["mbps"] if d else "ERROR"}, {"berth": d["cpu"]} if d else None,
        "the upstream is a plain berth, its blob page-cached; %.0f MB/s without the client hashing" %
        d["unhashed_mbps"] if d else "")
    row("mirror", "cold pull-through / direct", "x", "higher", share, note="target berth >= 0.8")
    row("mirror", "cold pull-through, time to first body byte", "ms", "lower", first,
        note=("direct from the upstream: %.2f ms; " % d["body_ms"] if d else "") +
        "response headers: " + ", ".join("%s %.2f ms" % (srv.name, out[m]["head_ms"])
                                         for m, srv in pair if out.get(m)))


def mirror_warm(up, ulog, pair, cold, servers):
    """Cached pulls through each: the cold group's blob, a manifest by digest (wrk), and the same
    from normal repositories (the upstream's blob; a manifest pushed to the run's berth and
    Distribution)."""
    size = P["blob"]
    secs = P["wrk_secs"]
    vals, cpu, ups = {}, {}, {}
    for mode, srv in pair:
        try:
            r = cold.get(mode)
            if not r:
                raise BenchError("no cold pull (it failed)")
            repo = mpath(srv, r["repo"])
            # untimed, first: the cached bytes are the blob, and page-cached (as in the pull group)
            loadgen("pull", "-a", srv.addr, "-r", repo, "-d", r["digest"], "-s", size, "-c", 1, "-v")
            ulog.mark()
            js, c = phase(srv, lambda: [loadgen("pull", "-a", srv.addr, "-r", repo, "-d", r["digest"],
                                                "-s", size, "-c", 1) for _ in range(P["pull_reps"])])
            reqs = ulog.since()
            if srv.role == "mirror" and reqs:
                raise BenchError("a cached blob reached the upstream: %s" % req_summary(reqs))
            rates = sorted(j["bytes_per_s"] / 1e6 for j in js)
            vals[srv.kind] = statistics.median(rates)
            cpu[srv.kind] = CpuS(c / len(js))
            cpu[srv.kind].bg = c.bg
            ups[srv.kind] = req_summary(reqs)
            log("  %-14s warm %s GET %7.0f MB/s (median of %s); upstream saw: %s" %
                (srv.name, BLOB_H, vals[srv.kind], "/".join("%.0f" % x for x in rates), ups[srv.kind]))
        except BenchError as e:
            vals[srv.kind] = "ERROR"
            fail("mirror", "warm blob GET", srv, e)
    ref = {}
    try:
        r = cold.get("direct")
        if not r:
            raise BenchError("no blob on the upstream (the direct cold pull failed)")
        js, c = phase(up, lambda: [loadgen("pull", "-a", up.addr, "-r", r["repo"], "-d", r["digest"],
                                           "-s", size, "-c", 1) for _ in range(P["pull_reps"])])
        ref["berth"] = statistics.median(j["bytes_per_s"] / 1e6 for j in js)
        log("  %-14s %s GET from a normal repository %7.0f MB/s" % ("upstream berth", BLOB_H, ref["berth"]))
    except BenchError as e:
        ref["berth"] = "ERROR"
        fail("mirror", "normal-repository blob GET", up, e)
    row("mirror", "%s warm (cached) blob GET through the mirror, 1 stream" % BLOB_H, "MB/s", "higher", vals, cpu,
        "median of %d, page-cached; upstream requests: %s" %
        (P["pull_reps"], "; ".join("%s %s" % (s.name, ups[s.kind]) for _, s in pair if s.kind in ups)))
    row("mirror", "%s blob GET, berth normal repository (reference)" % BLOB_H, "MB/s", "higher", ref,
        note="the upstream (a plain berth; access log on), same size, page-cached; median of %d" % P["pull_reps"])

    # a manifest by digest
    repo = "bench/mirrored"
    rate, p99, mcpu, mups = {}, {}, {}, {}
    try:
        manifest, md, ld = make_image(up, repo, 64 * 1024)
        st, _, b = up.request("PUT", "/v2/%s/manifests/latest" % repo, manifest, {"Content-Type": OCI_MANIFEST})
        if st != 201:
            raise BenchError("upstream PUT manifest -> %d %s" % (st, b[:300]))
        STATE["mirror_manifest"] = (repo, manifest, md)
    except BenchError as e:
        fail("mirror", "setup", up, e)
        return
    for _, srv in pair:
        try:
            for ref_ in ("latest", md):  # by tag first: that fetches it into the cache
                st, h, b = srv.request("GET", "/v2/%s/manifests/%s" % (mpath(srv, repo), ref_),
                                       headers={"Accept": ACCEPT})
                if st != 200 or b != manifest or h.get("docker-content-digest") != md:
                    raise BenchError("GET manifest %s -> %d, body matches: %s" % (ref_, st, b == manifest))
            before = mirror_status(srv) if srv.role == "mirror" else None
            ulog.mark()
            j, c = phase(srv, lambda: wrk_get(srv, "/v2/%s/manifests/%s" % (mpath(srv, repo), md), secs))
            reqs = ulog.since()
            if srv.role == "mirror":
                check_mirror_status(srv, before, "manifest GET by digest")
                if reqs:
                    raise BenchError("a cached digest reached the upstream: %s" % req_summary(reqs))
            rate[srv.kind], p99[srv.kind], mcpu[srv.kind] = j["per_s"], j["p99_ms"], c
            mups[srv.kind] = req_summary(reqs)
            log("  %-14s warm manifest GET by digest (wrk) %8.0f req/s  p99 %7.2f ms  (server CPU %.2f s); "
                "upstream saw: %s" % (srv.name, j["per_s"], j["p99_ms"], c, mups[srv.kind]))
        except BenchError as e:
            rate[srv.kind] = p99[srv.kind] = "ERROR"
            fail("mirror", "warm manifest GET by digest", srv, e)
    ref, refp, refc = {}, {}, {}
    for srv in servers:
        try:
            m2, md2, _ = make_image(srv, "bench/mirror-ref", 64 * 1024)
            st, _, b = srv.request("PUT", "/v2/bench/mirror-ref/manifests/latest", m2, {"Content-Type": OCI_MANIFEST})
            if st != 201:
                raise BenchError("PUT manifest -> %d %s" % (st, b[:300]))
            st, h, b = srv.request("GET", "/v2/bench/mirror-ref/manifests/" + md2, headers={"Accept": ACCEPT})
            if st != 200 or b != m2 or h.get("docker-content-digest") != md2:
                raise BenchError("GET manifest by digest -> %d, body matches: %s" % (st, b == m2))
            j, c = phase(srv, lambda: wrk_get(srv, "/v2/bench/mirror-ref/manifests/" + md2, secs))
            ref[srv.kind], refp[srv.kind], refc[srv.kind] = j["per_s"], j["p99_ms"], c
            log("  %-14s manifest GET by digest, normal repository (wrk) %8.0f req/s  p99 %7.2f ms  (server CPU %.2f s)" %
                (srv.name, j["per_s"], j["p99_ms"], c))
        except BenchError as e:
            ref[srv.kind] = refp[srv.kind] = "ERROR"
            fail("mirror", "normal-repository manifest GET by digest", srv, e)
    note = "upstream requests: " + "; ".join("%s %s" % (s.name, mups[s.kind]) for _, s in pair if s.kind in mups)
    row("mirror", "warm manifest GET by digest through the mirror (wrk), req/s", "req/s", "higher", rate, mcpu, note)
    row("mirror", "warm manifest GET by digest through the mirror, p99 latency", "ms", "lower", p99, note=note)
    rnote = "the run's berth and Distribution (not mirrors), a manifest pushed to each"
    row("mirror", "manifest GET by digest, normal repository (wrk; reference), req/s", "req/s", "higher",
        ref, refc, rnote)
    row("mirror", "manifest GET by digest, normal repository, p99 latency", "ms", "lower", refp, note=rnote)


def mirror_podman(up, ulog, pair):
    """Upstream requests of one warm pull of a cached tag: the image is pulled once through each
    (which caches it), deleted from the client, pulled again while the upstream's log is counted."""
    layout = os.path.join(WORK, "img-mirror")
    pm = Podman(os.path.join(WORK, "podman"), [s.addr for _, s in pair])
    vals, notes = {}, []
    client = "podman pull"
    try:
        digest, _ = build_oci_image(layout, 1, MiB)
        with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])) as f:
            m = json.load(f)
        config = m["config"]["digest"]
        blobs = [(d["digest"], d["size"]) for d in [m["config"]] + m["layers"]]
        dfile = os.path.join(WORK, "skopeo-digest")
        run(["skopeo", "copy", "-q", "--preserve-digests", "--dest-tls-verify=false", "--digestfile", dfile,
             "oci:%s:latest" % layout, "docker://%s/bench/pod:v1" % up.addr], timeout=300)
        with open(dfile) as f:
            if f.read().strip() != digest:
                raise BenchError("skopeo pushed another digest than the layout's %s" % digest)
        why = pm.usable()
        if why:
            client = "skopeo copy (%s)" % why
            log("  note: %s: counting a skopeo copy instead" % why)
        for _, srv in pair:
            try:
                ref = "%s/%s:v1" % (srv.addr, mpath(srv, "bench/pod"))
                t = {}
                for warm in (False, True):
                    if warm:
                        ulog.mark()
                    t0 = time.monotonic()
                    if why:
                        outd = os.path.join(WORK, "img-mirror-out")
                        shutil.rmtree(outd, ignore_errors=True)
                        run(["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + ref,
                             "oci:%s:latest" % outd], timeout=300)
                        if verify_layout(outd, digest) != 1:
                            raise BenchError("copied-out image has not 1 layer")
                        shutil.rmtree(outd, ignore_errors=True)
                    else:
                        pm("pull", "-q", "--tls-verify=false", ref)
                        iid = pm("image", "inspect", "--format", "{{.Id}}", ref)[1].strip()
                        if "sha256:" + iid != config:
                            raise BenchError("podman image ID %s, want the config %s" % (iid, config))
                        rd = pm("image", "inspect", "--format", "{{.Digest}}", ref)[1].strip()
                        if rd != digest:
                            raise BenchError("podman pulled manifest %s, want %s" % (rd, digest))
                        pm("rmi", "-a", "-f")
                    t[warm] = time.monotonic() - t0
                    if not warm:
                        for d, n in blobs:  # Distribution's proxy stores blobs after serving them
                            wait_stored(srv, d, n)
                        ulog.since()
                reqs = ulog.since()
                vals[srv.kind] = len(reqs)
                notes.append("%s: %s" % (srv.name, req_summary(reqs)))
                log("  %-14s warm %s of a cached tag: %d upstream request(s): %s (cold %.2f s, warm %.2f s)" %
                    (srv.name, client.split(" (")[0], len(reqs), req_summary(reqs), t[False], t[True]))
            except BenchError as e:
                vals[srv.kind] = "ERROR"
                fail("mirror", "warm %s" % client, srv, e)
    finally:
        pm.cleanup()
        shutil.rmtree(layout, ignore_errors=True)
    row("mirror", "upstream requests per warm %s of a cached tag" % client.split(" (")[0], "requests", "lower",
        vals, note="; ".join(notes) + ("" if client == "podman pull" else "; " + client) +
        "; berth expected: 1 HEAD")


def mirror_tags(up, ulog, pair):
    """Manifest GET by tag through each: every request asks the upstream (berth: one HEAD)."""
    secs = P["wrk_secs"]
    repo, manifest, md = STATE["mirror_manifest"]
    rate, p99, cpu, notes = {}, {}, {}, []
    for _, srv in pair:
        try:
            st, h, b = srv.request("GET", "/v2/%s/manifests/latest" % mpath(srv, repo), headers={"Accept": ACCEPT})
            if st != 200 or b != manifest or h.get("docker-content-digest") != md or "warning" in h:
                raise BenchError("GET manifest by tag -> %d, body matches: %s, Warning: %s" %
                                 (st, b == manifest, h.get("warning")))
            before = mirror_status(srv) if srv.role == "mirror" else None
            fd0 = open_fds(srv)
            ulog.mark()
            j, c = phase(srv, lambda: wrk_get(srv, "/v2/%s/manifests/latest" % mpath(srv, repo), secs))
            reqs = ulog.since()
            fd1 = open_fds(srv)
            heads = sum(1 for m, p, _ in reqs if req_kind(m, p) == "HEAD manifest by tag")
            per = len(reqs) / j["requests"]
            rate[srv.kind], p99[srv.kind], cpu[srv.kind] = j["per_s"], j["p99_ms"], c
            notes.append("%s: %.2f upstream requests per GET (%s)%s" %
                         (srv.name, per, req_summary(reqs),
                          ", its open fds %d -> %d" % (fd0, fd1) if srv.role == "mirror" else ""))
            log("  %-14s manifest GET by tag (wrk) %8.0f req/s  p99 %7.2f ms  (server CPU %.2f s); %d requests, "
                "upstream saw: %s; open fds %d -> %d" %
                (srv.name, j["per_s"], j["p99_ms"], c, j["requests"], req_summary(reqs), fd0, fd1))
            if srv.role == "mirror":
                check_mirror_status(srv, before, "manifest GET by tag")
                # Every GET was checked with the upstream, but concurrent checks of one tag share
                # one HEAD: at least one, never more than one per GET (those in flight when wrk
                # stopped too), and nothing but HEADs.
                if not 1 <= heads <= j["requests"] + P["wrk_conns"] or heads != len(reqs):
                    raise BenchError("%d GETs by tag made %d upstream HEADs (%s), want 1 to one each" %
                                     (j["requests"], heads, req_summary(reqs)))
                if fd1 - fd0 > P["wrk_conns"] + 16:
                    log("  note: berth's mirror holds %d more open files after %d GETs by tag "
                        "(a leak: see bench/README.md)" % (fd1 - fd0, j["requests"]))
        except BenchError as e:
            rate[srv.kind] = p99[srv.kind] = "ERROR"
            fail("mirror", "manifest GET by tag", srv, e)
    note = "; ".join(notes)
    row("mirror", "manifest GET by tag through the mirror (wrk; asks the upstream), req/s", "req/s", "higher",
        rate, cpu, note)
    row("mirror", "manifest GET by tag through the mirror, p99 latency", "ms", "lower", p99, note=note)


def g_mirror(servers):
    log("== pull-through mirror: berth's mirror and Distribution's proxy of one upstream (a plain berth)")
    up = Server("berth", PORT_BASE + 5, "upstream")
    bm = Server("berth", PORT_BASE + 6, "mirror", up)
    dp = Server("dist", PORT_BASE + 7, "proxy", up)
    pair = [("berth", bm), ("dist", dp)]
    mine = [up, bm, dp]
    try:
        for s in mine:
            s.start()
        log("  upstream berth pid %d on %s, berth mirror pid %d on %s, Distribution proxy pid %d on %s" %
            (up.proc.pid, up.addr, bm.proc.pid, bm.addr, dp.proc.pid, dp.addr))
        ulog = UpstreamLog(up)
        cold = {}
        mirror_cold(up, ulog, pair, cold)
        mirror_warm(up, ulog, pair, cold, servers)
        mirror_podman(up, ulog, pair)
        if "mirror_manifest" in STATE:
            # last: berth's mirror leaks per GET by tag (see bench/README.md)
            mirror_tags(up, ulog, pair)
        for s in mine:
            s.check_alive()
    finally:
        for s in mine:
            try:
                s.stop()
            except Exception as e:  # keep going: every server must be stopped
                log("warning: stopping %s: %s" % (s.name, e))
        write_pidfile()
        if os.environ.get("BENCH_KEEP") != "1":
            for s in mine:
                to_trash(s.root)


# ------------------------------------------------------------------------------------------ report

def print_table():
    headers = ["figure", "unit", "berth", "Distribution", "ratio", "CPU s berth", "CPU s Dist", "bg load"]
    lines = []
    for r in ROWS:
        ratio = r["ratio_berth_better"]
        lines.append([r["figure"], r["unit"] + (" ↑" if r["better"] == "higher" else " ↓"),
                      fmt(r["berth"], r["unit"]), fmt(r["distribution"], r["unit"]),
                      "%.2fx" % ratio if ratio else "-",
                      "%.2f" % r["cpu_s"]["berth"] if "berth" in r["cpu_s"] else "",
                      "%.2f" % r["cpu_s"]["dist"] if "dist" in r["cpu_s"] else "",
                      "/".join("%.0f%%" % r["background_cpu_pct"][k] for k in ("berth", "dist")
                               if k in r["background_cpu_pct"])])
    w = [max(len(str(x)) for x in col) for col in zip(headers, *lines)] if lines else [len(h) for h in headers]
    def out(cells):
        print("  ".join(str(c).ljust(w[i]) if i < 2 else str(c).rjust(w[i]) for i, c in enumerate(cells)))
    print()
    print("berth vs Distribution %s — %s mode; ↑ higher is better, ↓ lower is better; "
          "ratio > 1 means berth is better (berth/Dist for ↑, Dist/berth for ↓); CPU s = server "
          "utime+stime in that phase; bg load = machine CPU used by other processes during the "
          "berth/Distribution phase (noise)" %
          (DIST_VERSION, "QUICK" if QUICK else "full"))
    out(headers)
    out(["-" * x for x in w])
    for ln in lines:
        out(ln)
    print()
    print("machine limits (same run): sha256 %.0f MB/s (openssl speed -evp sha256, 16 KiB blocks); "
          "disk write %.0f MB/s (dd %d MiB, fdatasync), %.2f ms per 4 KiB O_DSYNC write; loopback TCP %.0f MB/s (iperf3), %.0f MB/s (iperf3 -Z, sendfile)" %
          (LIMITS.get("sha256_16k_bytes_per_s", 0) / 1e6, LIMITS.get("dd_write_bytes_per_s", 0) / 1e6,
           LIMITS.get("dd_mib", 0), LIMITS.get("dsync_4k_write_ms", 0),
           LIMITS.get("loopback_tcp_bytes_per_s", 0) / 1e6,
           LIMITS.get("loopback_tcp_bytes_per_s_sendfile", 0) / 1e6))


DIST_VERSION = ""


def main():
    global DIST_VERSION
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    for path in (BERTH, DIST, LOADGEN):
        if not os.access(path, os.X_OK):
            raise BenchError("missing executable %s" % path)
    for tool in ("wrk", "curl", "skopeo", "umoci", "openssl", "iperf3", "dd"):
        if not shutil.which(tool):
            raise BenchError("missing tool %s (make bench installs it: scripts/deps.sh bench)" % tool)
    ports = [PORT_BASE + i for i in range(8)]
    busy = [p for p in ports if listening(p) or not port_free(p)]
    if busy:
        raise BenchError("port(s) %s on 127.0.0.1 already in use; set BENCH_PORT_BASE" % busy)
    DIST_VERSION = run([DIST, "--version"])[1].strip().split()[-1]
    started = time.time()
    log("berth bench (%s): blobs %s, wrk %d s, %d tags for listing; work dir %s" %
        ("QUICK" if QUICK else "full", BLOB_H, P["wrk_secs"], P["many_tags"], WORK))
    load1 = os.getloadavg()[0]
    if load1 > 1.5:
        log("note: load average is %.1f before the run: other work on this %d-core machine makes numbers noisy"
            % (load1, os.cpu_count()))
    empty_trash()
    measure_limits()
    run_b0, run_o0, run_t0 = machine_busy(), own_cpu(), time.monotonic()

    servers = [Server("berth", PORT_BASE), Server("dist", PORT_BASE + 1)]
    rss = {}
    try:
        for s in servers:
            s.start()
        log("servers: berth pid %d on %s, Distribution %s pid %d on %s" %
            (servers[0].proc.pid, servers[0].addr, DIST_VERSION, servers[1].proc.pid, servers[1].addr))
        groups = [("push", g_push), ("pull", g_pull), ("rate", g_rate), ("tags", g_tags),
                  ("small", g_small), ("many", g_many), ("skopeo", g_skopeo), ("mirror", g_mirror)]
        for name, fn in groups:
            if want(name):
                t0 = time.monotonic()
                try:
                    fn(servers)
                except BenchError as e:  # a whole group failed: keep the rest of the run
                    fail(name, "group", None, e)
                log("   (%s: %.0f s)" % (name, time.monotonic() - t0))
            for s in servers:
                if not s.alive():
                    raise BenchError("%s died during %s: %s" % (s.name, name, s.log_tail()))
        total_cpu = {}
        for s in servers:
            rss[s.kind] = s.status_kb("VmHWM") / 1024
            total_cpu[s.kind] = s.cpu()
        row("server", "server peak RSS (VmHWM at the end of the run)", "MiB", "lower", rss)
        row("server", "server CPU over the whole run (utime+stime)", "s", "lower", total_cpu,
            note="includes fixed-duration phases, where a faster server does more work")
        # Fixed-work phases only (the same bytes and requests for both servers): the fair
        # CPU comparison. The req/s phases run for a fixed time instead.
        # Only phases both servers ran (berth-only ones, like the single POST or the 100,000
        # tag PUTs that Distribution gets written to disk directly, would count against berth).
        fixed = {}
        for r in ROWS:
            # the mirror group's servers are other processes (berth's mirror, Distribution's proxy)
            if r["group"] in ("rate", "server", "mirror") or set(r["cpu_s"]) != {"berth", "dist"}:
                continue
            for k, v in r["cpu_s"].items():
                fixed[k] = fixed.get(k, 0.0) + v
        if fixed:
            row("server", "server CPU in fixed-work phases both ran (all but req/s)", "s", "lower",
                fixed)
        per_req = {}
        for r in ROWS:
            if r["group"] == "rate" and r["unit"] == "req/s":
                for k, v in r["cpu_s"].items():
                    val = r["berth"] if k == "berth" else r["distribution"]
                    if isinstance(val, (int, float)) and val > 0:
                        per_req.setdefault(k, []).append(v / val)
        if per_req:
            # CPU-seconds per (req/s over the phase) ∝ CPU per request; shown in µs/request
            # assuming the phase's duration.
            secs = P["wrk_secs"]
            row("server", "server CPU per request in req/s phases", "us", "lower",
                {k: 1e6 * sum(v) / len(v) / secs for k, v in per_req.items()})
    finally:
        stop_all()
    # servers were waited for by stop_all(): their CPU is in own_cpu() now
    run_bg = max(0.0, (machine_busy() - run_b0) - (own_cpu() - run_o0))
    run_bg_pct = 100.0 * run_bg / max(1e-3, (time.monotonic() - run_t0) * os.cpu_count())
    if run_bg_pct > 5:
        log("note: other processes used %.0f%% of the machine's CPU during the run (%.0f CPU s): "
            "numbers are noisy; rerun a figure with BENCH_ONLY=<group> when the machine is quieter"
            % (run_bg_pct, run_bg))
    t = servers[0].log_tail(6000).strip()
    if t:
        log("\nberth logged (warn level and above; %s), last lines:\n%s" %
            (servers[0].log_path, "\n".join(t.splitlines()[-30:])))
    try:
        with open(servers[1].log_path, errors="replace") as f:
            lines = f.read().splitlines()
        codes = {}
        for ln in lines:
            m = re.search(r'err.code="([^"]+)"', ln)
            k = m.group(1) if m else (re.search(r"level=(\w+)", ln) or [None, "other"])[1]
            codes[k] = codes.get(k, 0) + 1
        if codes:
            log("Distribution logged %d lines (%s): %s" % (len(lines), servers[1].log_path,
                ", ".join("%s x%d" % kv for kv in sorted(codes.items()))))
    except OSError:
        pass
    run(["rm", "-rf", os.path.join(SHM, "berth-bench-dist-tags")], check=False, timeout=600)
    if os.environ.get("BENCH_KEEP") != "1":
        for s in servers:
            to_trash(s.root)
        if os.path.isdir(TRASH):
            # Deleting many small files is slow on this VM's disk (each freed block is a discard
            # against an IOPS limit): do it in the background, at idle I/O priority. The next
            # run finishes the job before it measures anything.
            subprocess.Popen(["nice", "-n", "19", "ionice", "-c", "3", "rm", "-rf", TRASH],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
            log("data folders moved to %s: being deleted in the background" % os.path.relpath(TRASH, ROOT))

    print_table()
    result = {
        "mode": "quick" if QUICK else "full",
        "only": sorted(ONLY) or "all",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "load_avg_at_start": load1, "background_cpu_pct_during_run": round(run_bg_pct, 1)},
        "versions": {"distribution": DIST_VERSION,
                     "berth_git": run(["git", "-C", ROOT, "describe", "--always", "--dirty"], check=False)[1].strip()},
        "params": P,
        "limits": LIMITS,
        "figures": ROWS,
        "errors": ERRORS,
    }
    path = os.path.join(RESULTS, "latest.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    if not ONLY:  # a complete run also stays as latest-quick.json / latest-full.json
        shutil.copyfile(path, os.path.join(RESULTS, "latest-%s.json" % result["mode"]))
    print("results: %s (took %.0f s)" % (os.path.relpath(path, os.getcwd()), time.time() - started))
    if ERRORS:
        print("\n%d ERROR(S):" % len(ERRORS))
        for e in ERRORS:
            print("  " + e)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench: FAILED: %s" % e, file=sys.stderr)
        stop_all()
        sys.exit(1)
