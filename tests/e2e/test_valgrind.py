"""test_valgrind.py — a clean run of the release build under valgrind: start, push (chunked and
single-request), tag, pull, list, delete, stop on SIGTERM; valgrind must report no leak and no
error. Complements the ASan+UBSan runs of the other suites (a different detector, and the
optimised build)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile

from harness import Registry, Suite, sha256

suite = Suite("e2e-valgrind")


def setup(args):
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (scripts/deps.sh test installs it)")
    return args


@suite.test
def test_clean_run_has_no_leaks_or_errors(args):
    work = tempfile.mkdtemp(prefix="berth-vg-")
    log = os.path.join(work, "valgrind.log")
    wrapper = os.path.join(work, "berth-vg")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect"
                " --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file=%s %s \"$@\"\n"
                % (log, os.path.abspath(args.berth)))
    os.chmod(wrapper, 0o755)
    reg = Registry(wrapper)
    try:
        reg.start(env={"REGISTRY_LOG_ACCESSLOG_DISABLED": "false"})
        repo = "vg/app"
        cfg = b'{"architecture":"amd64","os":"linux"}'
        layer = os.urandom(300000)
        # chunked upload of the layer
        st, h, _ = reg.request("POST", "/v2/%s/blobs/uploads/" % repo)
        assert st == 202, st
        loc = h["location"]
        st, h, _ = reg.request("PATCH", loc, layer[:100000],
                               {"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
        assert st == 202, st
        st, h, _ = reg.request("PUT", h["location"] + "?digest=" + sha256(layer), layer[100000:],
                               {"Content-Type": "application/octet-stream"})
        assert st == 201, st
        # single-request push of the config, and a mismatching one (refused)
        st, _, _ = reg.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, sha256(cfg)), cfg)
        assert st == 201, st
        st, _, _ = reg.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, sha256(b"x")), cfg)
        assert st == 400, st
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(cfg), "size": len(cfg)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha256(layer), "size": len(layer)}]}).encode()
        st, h, _ = reg.request("PUT", "/v2/%s/manifests/1.0" % repo, manifest,
                               {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert st == 201, st
        for _ in range(3):  # the second and third are served from the response cache
            st, _, body = reg.request("GET", "/v2/%s/manifests/1.0" % repo)
            assert st == 200 and body == manifest
        st, _, body = reg.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(layer)))
        assert st == 200 and body == layer
        st, _, body = reg.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(layer)), None,
                                  {"Range": "bytes=10-19"})
        assert st == 206 and body == layer[10:20]
        st, _, body = reg.request("GET", "/v2/%s/tags/list" % repo)
        assert st == 200 and json.loads(body)["tags"] == ["1.0"]
        st, _, _ = reg.request("GET", "/v2/_catalog")
        assert st == 200
        st, _, _ = reg.request("GET", "/v2/%s/referrers/%s" % (repo, sha256(manifest)))
        assert st == 200
        st, _, _ = reg.request("DELETE", "/v2/%s/manifests/%s" % (repo, sha256(manifest)))
        assert st == 202, st
        st, _, _ = reg.request("GET", "/v2/nope/manifests/x")
        assert st == 404
    finally:
        rc = reg.stop(timeout=60)
        reg.cleanup()
    text = open(log).read() if os.path.exists(log) else ""
    shutil.rmtree(work, ignore_errors=True)
    assert rc == 0, "server exit %s under valgrind:\n%s" % (rc, text[-4000:])
    bad = [l for l in text.splitlines() if re.search(r"definitely lost|indirectly lost|Invalid|uninitialised|ERROR SUMMARY: [1-9]", l)]
    assert not bad, "valgrind reports:\n" + "\n".join(bad[:40]) + "\n" + text[-3000:]


if __name__ == "__main__":
    suite.main(setup=setup)
