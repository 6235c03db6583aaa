#!/usr/bin/env python3
"""test_cli_ref.py — `berth ref parse [--json] REF` as a user runs it: the fields printed, the
JSON object, the one-line error on stderr, and the exit codes (0 valid, 1 invalid, 2 usage).

    python3 tests/e2e/test_cli_ref.py [--berth build/release/berth] [-k NAME]
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite  # noqa: E402

suite = Suite("e2e-cli-ref")

D256 = "sha256:" + "0123456789abcdef" * 4


def run(args, *argv):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    p = subprocess.run([args.berth, *argv], capture_output=True, timeout=30, env=env)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert "Sanitizer" not in err and "runtime error:" not in err, err
    return p.returncode, out, err


def eq(got, want):
    assert got == want, "got %r, want %r" % (got, want)


@suite.test
def plain_familiar_name(args):
    rc, out, err = run(args, "ref", "parse", "ubuntu")
    eq(rc, 0)
    eq(err, "")
    eq(out, "domain: docker.io\n"
            "repository: library/ubuntu\n"
            "tag: latest\n"
            "digest:\n"
            "name: docker.io/library/ubuntu:latest\n"
            "familiar: ubuntu:latest\n")


@suite.test
def plain_registry_with_port_tag_and_digest(args):
    rc, out, _ = run(args, "ref", "parse", "127.0.0.1:5000/team/app:1.0@" + D256)
    eq(rc, 0)
    lines = dict(l.split(":", 1) for l in out.splitlines())
    eq(lines["domain"], " 127.0.0.1:5000")
    eq(lines["repository"], " team/app")
    eq(lines["tag"], " 1.0")
    eq(lines["digest"], " " + D256)
    eq(lines["name"], " 127.0.0.1:5000/team/app:1.0@" + D256)


@suite.test
def json_object(args):
    rc, out, _ = run(args, "ref", "parse", "--json", "index.docker.io/ubuntu:22.04")
    eq(rc, 0)
    eq(json.loads(out), {
        "domain": "docker.io", "repository": "library/ubuntu", "tag": "22.04", "digest": None,
        "name": "docker.io/library/ubuntu:22.04", "familiar": "ubuntu:22.04"})


@suite.test
def json_digest_only_has_no_tag(args):
    rc, out, _ = run(args, "ref", "parse", "[::1]:5000/a/b@" + D256, "--json")
    eq(rc, 0)
    eq(json.loads(out), {
        "domain": "[::1]:5000", "repository": "a/b", "tag": None, "digest": D256,
        "name": "[::1]:5000/a/b@" + D256, "familiar": "[::1]:5000/a/b@" + D256})


@suite.test
def json_localhost_without_slash_is_a_tag(args):
    rc, out, _ = run(args, "ref", "parse", "--json", "localhost:5000")
    eq(rc, 0)
    o = json.loads(out)
    eq((o["domain"], o["repository"], o["tag"]), ("docker.io", "library/localhost", "5000"))


@suite.test
def invalid_is_one_line_on_stderr(args):
    for ref, why in [
        ("Ubuntu", "repository name must be lowercase"),
        ("a//b", "empty path component"),
        ("host:abc/x", "invalid port"),
        ("x:" + "t" * 129, "invalid reference format: tag over 128 characters"),
        ("x@sha256:abc", "invalid digest"),
        ("0123456789abcdef" * 4,
         "invalid repository name: cannot specify 64-byte hexadecimal strings"),
    ]:
        rc, out, err = run(args, "ref", "parse", ref)
        eq(rc, 1)
        eq(out, "")
        eq(err, 'berth: invalid reference "%s": %s\n' % (ref, why))


@suite.test
def invalid_with_control_bytes_stays_one_line(args):
    rc, out, err = run(args, "ref", "parse", "--json", "ubuntu\n:latest")
    eq(rc, 1)
    eq(out, "")
    eq(err, 'berth: invalid reference "ubuntu\\x0a:latest": '
            "invalid reference format: invalid path component\n")


@suite.test
def reference_starting_with_dash_after_double_dash(args):
    rc, _, err = run(args, "ref", "parse", "--", "-docker")
    eq(rc, 1)
    eq(err, 'berth: invalid reference "-docker": invalid reference format: invalid path component\n')


@suite.test
def usage_errors_exit_2(args):
    for argv in (["ref"], ["ref", "parse"], ["ref", "parse", "--json"], ["ref", "parse", "a", "b"],
                 ["ref", "parse", "--yaml", "a"], ["ref", "frobnicate", "a"]):
        rc, out, err = run(args, *argv)
        eq((argv, rc), (argv, 2))
        eq(out, "")
        assert err.strip(), argv


@suite.test
def help_lists_ref(args):
    rc, out, _ = run(args, "help")
    eq(rc, 0)
    assert "ref parse [--json] REF" in out, out
    rc, out, _ = run(args, "ref", "parse", "--help")
    eq(rc, 0)
    assert out.startswith("usage: berth ref parse"), out


if __name__ == "__main__":
    suite.main()
