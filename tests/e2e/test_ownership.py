#!/usr/bin/env python3
"""test_ownership.py — one owner per port and per embedded store.

A second `berth serve` on a port that is already bound must exit at once with one line naming
the address and the reason (libmicrohttpd's SO_REUSEPORT used to let both listen, and the kernel
split connections between two registries). The store folder is locked (flock on berth.lock,
holding the owner's PID) by serve, gc and reindex: a second process names the PID and exits.

    python3 tests/e2e/test_ownership.py --berth build/release/berth
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, Suite, free_port, sha256  # noqa: E402

suite = Suite("e2e-ownership")


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def run_berth(ctx, args, store, port=None, timeout=20):
    """Runs berth with args against store (and port); returns (exit status, stderr text)."""
    env = dict(os.environ)
    env.update({"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": store,
                "REGISTRY_HTTP_ADDR": "127.0.0.1:%d" % (port or free_port()),
                "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
                "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    try:
        p = subprocess.run([ctx.berth] + args, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("berth %s did not exit within %d s (it should have refused)"
                             % (" ".join(args), timeout))
    err = p.stderr.decode("utf-8", "replace")
    if "ERROR: AddressSanitizer" in err or "runtime error:" in err:
        raise AssertionError("sanitizer report:\n" + err)
    return p.returncode, err


def start(ctx, **kw):
    reg = Registry(ctx.berth)
    reg.start(**kw)
    ctx.regs.append(reg)
    return reg


def store_of(reg):
    return os.path.join(reg.data_dir, "store")


def push_blob(reg, repo, data):
    d = sha256(data)
    st, _, body = reg.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data,
                              {"Content-Type": "application/octet-stream"})
    eq(st, 201, "push to the serving registry (%s)" % body[:200])
    return d


def still_serves_everything(reg, repo, d, n=40):
    """Every fresh connection reaches the first server: with two listeners on one port the
    kernel would send some of them to the second, which does not have the blob."""
    for i in range(n):
        st, _, _ = reg.request("HEAD", "/v2/%s/blobs/%s" % (repo, d))
        eq(st, 200, "HEAD on fresh connection %d" % i)


def one_error_line(err, *needles):
    lines = [l for l in err.splitlines() if l.strip()]
    eq(len(lines), 1, "stderr lines (%r)" % err)
    for n in needles:
        if n not in lines[0]:
            raise AssertionError("%r not in the error line %r" % (n, lines[0]))
    return lines[0]


@suite.test
def test_second_serve_on_a_busy_port_exits(ctx):
    a = start(ctx)
    d = push_blob(a, "own/port", os.urandom(1000))
    other = os.path.join(a.data_dir, "other-store")
    t0 = time.time()
    rc, err = run_berth(ctx, ["serve"], other, port=a.port)
    if rc == 0:
        raise AssertionError("second serve on port %d exited 0" % a.port)
    one_error_line(err, "127.0.0.1:%d" % a.port, "Address already in use")
    if time.time() - t0 > 5:
        raise AssertionError("the refusal took %.1f s" % (time.time() - t0))
    still_serves_everything(a, "own/port", d)


@suite.test
def test_port_held_by_another_program(ctx):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    port = s.getsockname()[1]
    try:
        store = os.path.join(ctx.tmp, "port-held")
        rc, err = run_berth(ctx, ["serve"], store, port=port)
        if rc == 0:
            raise AssertionError("serve on a port another program listens on exited 0")
        one_error_line(err, "127.0.0.1:%d" % port, "Address already in use")
    finally:
        s.close()


@suite.test
def test_restart_on_the_same_port_right_after_stop(ctx):
    # SO_REUSEADDR is kept: a restart binds over the last run's TIME_WAIT connections.
    a = start(ctx)
    for _ in range(5):
        a.request("GET", "/v2/")
    port, data_dir = a.port, a.data_dir
    eq(a.stop(), 0, "exit status on SIGTERM")
    a.start(data_dir=data_dir, port=port)
    st, _, _ = a.request("GET", "/v2/")
    eq(st, 200, "GET /v2/ after the restart")


@suite.test
def test_second_serve_on_a_served_store_exits(ctx):
    a = start(ctx)
    d = push_blob(a, "own/store", os.urandom(1000))
    rc, err = run_berth(ctx, ["serve"], store_of(a))
    if rc == 0:
        raise AssertionError("second serve on a served store exited 0")
    one_error_line(err, store_of(a), "process %d" % a.proc.pid)
    still_serves_everything(a, "own/store", d, n=5)
    with open(os.path.join(store_of(a), "berth.lock")) as f:
        eq(f.read().strip(), str(a.proc.pid), "berth.lock holds the server's PID")


@suite.test
def test_gc_and_reindex_refuse_a_served_store(ctx):
    a = start(ctx)
    d = push_blob(a, "own/gc", os.urandom(1000))
    for cmd in (["gc"], ["gc", "--dry-run"], ["reindex"]):
        rc, err = run_berth(ctx, cmd, store_of(a))
        if rc == 0:
            raise AssertionError("berth %s on a served store exited 0" % " ".join(cmd))
        line = one_error_line(err, store_of(a), "process %d" % a.proc.pid)
        if "stop the server" not in line:
            raise AssertionError("berth %s does not say to stop the server: %r"
                                 % (" ".join(cmd), line))
    still_serves_everything(a, "own/gc", d, n=5)
    eq(a.stop(), 0, "exit status on SIGTERM")
    # Once the server is gone, the offline commands take the store.
    rc, err = run_berth(ctx, ["gc", "--grace", "0"], store_of(a))
    eq(rc, 0, "gc exit status after the server stopped (%s)" % err)
    rc, err = run_berth(ctx, ["reindex"], store_of(a))
    eq(rc, 0, "reindex exit status after the server stopped (%s)" % err)


@suite.test
def test_lock_dies_with_the_process(ctx):
    # flock belongs to the process: kill -9 leaves berth.lock behind but not the lock.
    a = start(ctx)
    d = push_blob(a, "own/kill", os.urandom(1000))
    port, data_dir = a.port, a.data_dir
    a.kill9()
    a.start(data_dir=data_dir, port=port)
    st, _, _ = a.request("HEAD", "/v2/own/kill/blobs/%s" % d)
    eq(st, 200, "blob after kill -9 and restart")
    a.kill9()
    rc, err = run_berth(ctx, ["gc", "--dry-run"], store_of(a))
    eq(rc, 0, "gc after kill -9 (%s)" % err)


def setup(args):
    import tempfile

    class Ctx:
        pass
    c = Ctx()
    c.berth = args.berth
    c.regs = []
    c.tmp = tempfile.mkdtemp(prefix="berth-e2e-own-")
    return c


def teardown(ctx):
    import shutil
    problems = []
    for reg in ctx.regs:
        if reg.proc is not None:
            rc = reg.stop()
            if rc not in (0, None):
                problems.append("berth exited with status %s on SIGTERM" % rc)
        problems += ["sanitizer: " + l for l in reg.sanitizer_errors()]
        reg.cleanup()
    shutil.rmtree(ctx.tmp, ignore_errors=True)
    return problems


if __name__ == "__main__":
    suite.main(setup=setup, teardown=teardown)
