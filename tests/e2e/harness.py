"""harness.py — start a real registry process for end-to-end tests and talk HTTP to it.

Used by every tests/e2e/test_*.py. Standard library only.

    reg = Registry(binary)            # berth (default) or kind="distribution" for docker-registry
    reg.start(env={...})              # temp data dir, ephemeral port on 127.0.0.1
    status, headers, body = reg.request("GET", "/v2/")
    reg.stop()                        # SIGTERM, wait; reg.kill9() for crash tests
    reg.sanitizer_errors()            # ASan/UBSan reports found in the server's stderr

A test file builds a Suite, registers tests with @suite.test, and calls suite.main(); it prints
"<suite>: N passed, N failed" as its last line.
"""
import argparse
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    def __init__(self, binary, kind="berth"):
        self.binary = binary
        self.kind = kind
        self.proc = None
        self.port = None
        self.data_dir = None
        self.stderr_path = None
        self._own_dir = False

    def start(self, env=None, data_dir=None, config=None, delete_enabled=True, port=None):
        """Start the server; env adds/overrides environment variables (REGISTRY_* keys)."""
        if data_dir is None:
            data_dir = tempfile.mkdtemp(prefix="berth-e2e-")
            self._own_dir = True
        self.data_dir = data_dir
        self.port = port or free_port()
        e = dict(os.environ)
        e.update({
            "REGISTRY_HTTP_ADDR": "127.0.0.1:%d" % self.port,
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": os.path.join(data_dir, "store"),
            "REGISTRY_STORAGE_DELETE_ENABLED": "true" if delete_enabled else "false",
            "REGISTRY_LOG_LEVEL": "info",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        if env:
            e.update(env)
        args = [self.binary, "serve"]
        if config:
            args.append(config)
        elif self.kind == "distribution":
            cfg = os.path.join(data_dir, "config.yml")
            with open(cfg, "w") as f:
                f.write("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp\n"
                        "http:\n  addr: 127.0.0.1:5000\n")
            args.append(cfg)
        self.stderr_path = os.path.join(data_dir, "server-%d.log" % self.port)
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._stderr, stderr=self._stderr, env=e)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                st, _, _ = self.request("GET", "/v2/", timeout=1)
                if st in (200, 401):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not answer on port %d:\n%s" % (self.port, self.log()))

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_errors(self):
        text = self.log()
        bad = [l for l in text.splitlines()
               if "ERROR: AddressSanitizer" in l or "runtime error:" in l
               or "ERROR: LeakSanitizer" in l]
        return bad

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        if getattr(self, "_stderr", None):
            self._stderr.close()
            self._stderr = None
        return rc

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        if getattr(self, "_stderr", None):  # a restart via start() opens a fresh log handle
            self._stderr.close()
            self._stderr = None

    def cleanup(self):
        if self._own_dir and self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One request on a fresh connection. Returns (status, headers as a dict with
        lower-case keys, body bytes)."""
        c = self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()


class Suite:
    def __init__(self, name):
        self.name = name
        self.tests = []

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def main(self, setup=None, teardown=None):
        ap = argparse.ArgumentParser()
        ap.add_argument("--berth", default="build/release/berth")
        ap.add_argument("--kind", default="berth", choices=["berth", "distribution"])
        ap.add_argument("-k", default=None, help="run only tests whose name contains this")
        args = ap.parse_args()
        ctx = setup(args) if setup else args
        passed = failed = 0
        for fn in self.tests:
            if args.k and args.k not in fn.__name__:
                continue
            t0 = time.time()
            try:
                fn(ctx)
                passed += 1
                print("ok %s (%.2fs)" % (fn.__name__, time.time() - t0), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s\n%s" % (fn.__name__, traceback.format_exc()), flush=True)
        if teardown:
            extra = teardown(ctx)
            if extra:
                failed += len(extra)
                for line in extra:
                    print("FAIL teardown: %s" % line)
        print("%s: %d passed, %d failed" % (self.name, passed, failed), flush=True)
        sys.exit(1 if failed else 0)
