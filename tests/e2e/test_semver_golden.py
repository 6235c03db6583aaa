#!/usr/bin/env python3
"""test_semver_golden.py — versions and golden images end to end (issue #6): real images built
with umoci (a golden base in two versions with different layers, applications built on each
with their own layers and labels), pushed with skopeo into a berth configured with semver
floats, immutable versions and golden.require; then the floating tags, the tag listing's
?sort=semver and ?semver=, the /berth/v1 API (derived, base, outdated, search, resolve),
`berth reindex`, and the client verbs (text, --json, exit codes).

    python3 tests/e2e/test_semver_golden.py [--berth build/release/berth] [-k NAME]
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
import warnings
import base64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, Suite  # noqa: E402
from test_clients import index_entry, run  # noqa: E402

suite = Suite("e2e-semver-golden")

CONFIG = """version: 0.1
storage:
  filesystem:
    rootdirectory: %(root)s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%(port)d
semver:
  repositories: ["golden/**", "apps/*"]
  float: [major, minor, latest]
  immutable: true
golden:
  repositories: ["golden/**"]
  require: ["apps/*"]
"""


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


# ---------------------------------------------------------------------------------------------
# Images


def build(work):
    """A layout with: base-1.0.0, base-1.1.0 (different layers), app-a and app-c on 1.0.0,
    app-b and app-d on 1.1.0 (one extra layer and a team label each), and rogue (no golden
    base). Returns {name: manifest digest} plus {name+"-layers": [digests]}."""
    L = os.path.join(work, "layout")
    files = os.path.join(work, "files")
    os.makedirs(files)
    run(["umoci", "init", "--layout", L])

    def insert(tag, name, data):
        p = os.path.join(files, name)
        with open(p, "wb") as f:
            f.write(data)
        run(["umoci", "insert", "--image", "%s:%s" % (L, tag), p, "/data/" + name])

    def config(tag, *labels):
        args = ["umoci", "config", "--image", "%s:%s" % (L, tag), "--os=linux",
                "--architecture=amd64"]
        for l in labels:
            args += ["--config.label", l]
        run(args)

    for v in ("1.0.0", "1.1.0"):
        run(["umoci", "new", "--image", "%s:base-%s" % (L, v)])
        insert("base-" + v, "os-%s.bin" % v, os.urandom(32 * 1024))
        insert("base-" + v, "runtime-%s.txt" % v, ("runtime %s\n" % v).encode())
        config("base-" + v, "org.berth.role=base", "org.berth.version=" + v)
    for name, base, team in (("app-a", "1.0.0", "payments"), ("app-c", "1.0.0", "web"),
                             ("app-b", "1.1.0", "web"), ("app-d", "1.1.0", "search")):
        run(["umoci", "tag", "--image", "%s:base-%s" % (L, base), name])
        insert(name, name + ".bin", os.urandom(16 * 1024))
        config(name, "org.berth.team=" + team, "org.berth.app=" + name)
    run(["umoci", "new", "--image", L + ":rogue"])
    insert("rogue", "rogue.bin", os.urandom(8 * 1024))
    config("rogue", "org.berth.team=rogue")
    run(["umoci", "gc", "--layout", L])
    out = {"layout": L}
    for name in ("base-1.0.0", "base-1.1.0", "app-a", "app-b", "app-c", "app-d", "rogue"):
        e = index_entry(L, name)
        out[name] = e["digest"]
        algo, hexd = e["digest"].split(":", 1)
        with open(os.path.join(L, "blobs", algo, hexd), "rb") as f:
            m = json.load(f)
        out[name + "-layers"] = [l["digest"] for l in m["layers"]]
    eq(out["app-a-layers"][:2], out["base-1.0.0-layers"], "app-a built on base 1.0.0")
    eq(out["app-b-layers"][:2], out["base-1.1.0-layers"], "app-b built on base 1.1.0")
    return out


def sk_copy(ctx, name, dest, check=True):
    return run(["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
                "oci:%s:%s" % (ctx["img"]["layout"], name),
                "docker://%s/%s" % (ctx["host"], dest)], check=check)


# ---------------------------------------------------------------------------------------------
# Registry helpers


def get_json(ctx, path, status=200):
    st, hdrs, body = ctx["reg"].request("GET", path)
    if st != status:
        raise AssertionError("GET %s: status %d, want %d: %s" % (path, st, status, body[:400]))
    return json.loads(body) if body else None, hdrs


def tag_digest(ctx, repo, tag):
    st, hdrs, _ = ctx["reg"].request(
        "HEAD", "/v2/%s/manifests/%s" % (repo, tag),
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    return hdrs.get("docker-content-digest") if st == 200 else None


def q(s):
    return urllib.parse.quote(s, safe="")


def keys(doc):
    return sorted("%s@%s" % (i["repository"], i["digest"]) for i in doc["images"])


def cli(ctx, *argv):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    env["DOCKER_CONFIG"] = os.path.join(ctx["work"], "docker")
    p = subprocess.run([ctx["args"].berth, *argv], capture_output=True, timeout=60, env=env)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert "Sanitizer" not in err and "runtime error:" not in err, err
    return p.returncode, out, err


def start(ctx):
    with open(ctx["config"], "w") as f:
        f.write(CONFIG % {"root": ctx["root"], "port": ctx["port"]})
    ctx["reg"] = Registry(ctx["args"].berth).start(config=ctx["config"], data_dir=ctx["work"],
                                                   port=ctx["port"])


def setup(args):
    for tool in ("skopeo", "umoci"):
        if not shutil.which(tool):
            raise SystemExit("e2e-semver-golden: %s not installed (scripts/deps.sh test)" % tool)
    work = tempfile.mkdtemp(prefix="berth-e2e-semver-")
    ctx = {"args": args, "work": work, "root": os.path.join(work, "store"),
           "config": os.path.join(work, "config.yml")}
    from harness import free_port
    ctx["port"] = free_port()
    ctx["host"] = "127.0.0.1:%d" % ctx["port"]
    ctx["img"] = build(work)
    start(ctx)
    return ctx


def teardown(ctx):
    problems = []
    rc = ctx["reg"].stop()
    if rc not in (0, None):
        problems.append("berth exited with status %s on SIGTERM" % rc)
    problems += ["sanitizer: " + l for l in ctx["reg"].sanitizer_errors()]
    if problems:
        print("---- server log (tail) ----\n" + ctx["reg"].log()[-4000:])
    shutil.rmtree(ctx["work"], ignore_errors=True)
    return problems


# ---------------------------------------------------------------------------------------------
# Tests (in order: later ones use what earlier ones pushed)


@suite.test
def test_push_golden_versions_and_floats(ctx):
    img = ctx["img"]
    sk_copy(ctx, "base-1.0.0", "golden/base:1.0.0")
    eq(tag_digest(ctx, "golden/base", "1"), img["base-1.0.0"], "golden/base:1")
    sk_copy(ctx, "base-1.1.0", "golden/base:1.1.0")
    for t in ("1", "1.1", "latest"):
        eq(tag_digest(ctx, "golden/base", t), img["base-1.1.0"], "golden/base:" + t)
    eq(tag_digest(ctx, "golden/base", "1.0"), img["base-1.0.0"], "golden/base:1.0")


@suite.test
def test_interleaved_versions_move_floats(ctx):
    img = ctx["img"]
    sk_copy(ctx, "app-c", "apps/api:1.2.0")
    sk_copy(ctx, "app-a", "apps/api:1.1.9")  # older: floats stay on 1.2.0
    for t in ("1", "1.2", "latest"):
        eq(tag_digest(ctx, "apps/api", t), img["app-c"], "after 1.1.9, apps/api:" + t)
    eq(tag_digest(ctx, "apps/api", "1.1"), img["app-a"], "apps/api:1.1")
    sk_copy(ctx, "app-b", "apps/api:1.2.1-rc.1")  # a pre-release moves nothing
    for t in ("1", "1.2", "latest"):
        eq(tag_digest(ctx, "apps/api", t), img["app-c"], "after 1.2.1-rc.1, apps/api:" + t)
    eq(tag_digest(ctx, "apps/api", "1.2.1-rc.1"), img["app-b"], "the pre-release itself")
    sk_copy(ctx, "app-d", "apps/api:2.0.0")
    for t in ("2", "2.0", "latest"):
        eq(tag_digest(ctx, "apps/api", t), img["app-d"], "after 2.0.0, apps/api:" + t)
    eq(tag_digest(ctx, "apps/api", "1"), img["app-c"], "apps/api:1 stays on the 1.x line")


@suite.test
def test_immutable_versions(ctx):
    img = ctx["img"]
    p = sk_copy(ctx, "app-b", "apps/api:1.1.9", check=False)
    assert p.returncode != 0, "moving 1.1.9 to other content must fail"
    eq(tag_digest(ctx, "apps/api", "1.1.9"), img["app-a"], "1.1.9 unchanged")
    sk_copy(ctx, "app-a", "apps/api:1.1.9")  # the same content again is fine


@suite.test
def test_tags_list_semver(ctx):
    doc, _ = get_json(ctx, "/v2/apps/api/tags/list")
    eq(doc["tags"], sorted(doc["tags"]), "plain listing stays in byte order")
    want = ["1", "1.1", "1.1.9", "1.2", "1.2.0", "1.2.1-rc.1", "2", "2.0", "2.0.0", "latest"]
    doc, _ = get_json(ctx, "/v2/apps/api/tags/list?sort=semver")
    eq(doc["tags"], want, "?sort=semver")
    doc, _ = get_json(ctx, "/v2/apps/api/tags/list?semver=" + q("^1.2"))
    eq(doc["tags"], ["1.2.0"], "?semver=^1.2")
    doc, _ = get_json(ctx, "/v2/apps/api/tags/list?semver=" + q(">=1.0.0 <2.0.0"))
    eq(doc["tags"], ["1.1.9", "1.2.0"], "?semver=>=1.0.0 <2.0.0")
    doc, _ = get_json(ctx, "/v2/apps/api/tags/list?semver=" + q("1.x || >=2"))
    eq(doc["tags"], ["1.1.9", "1.2.0", "2.0.0"], "?semver=1.x || >=2")
    doc, _ = get_json(ctx, "/v2/apps/api/tags/list?semver=" + q("~1.2.1-rc.0"))
    eq(doc["tags"], ["1.2.1-rc.1"], "a pre-release constraint picks the pre-release")
    # Pagination in semver order: n is a limit, last means "after this tag in that order".
    doc, hdrs = get_json(ctx, "/v2/apps/api/tags/list?sort=semver&n=4")
    eq(doc["tags"], want[:4], "first page")
    link = hdrs.get("link", "")
    assert "last=1.2" in link and "sort=semver" in link, link
    nxt = link[1:link.index(">")]
    doc, hdrs = get_json(ctx, nxt)
    eq(doc["tags"], want[4:8], "second page via Link")
    doc, hdrs = get_json(ctx, "/v2/apps/api/tags/list?sort=semver&n=4&last=2.0")
    eq(doc["tags"], want[8:], "last page")
    assert "link" not in hdrs, hdrs
    # Errors: a bad constraint, an unknown sort.
    st, _, body = ctx["reg"].request("GET", "/v2/apps/api/tags/list?semver=" + q("^^1"))
    eq(st, 400, "invalid constraint")
    assert b'"errors"' in body, body
    st, _, _ = ctx["reg"].request("GET", "/v2/apps/api/tags/list?sort=random")
    eq(st, 400, "unknown sort")
    st, _, _ = ctx["reg"].request("GET", "/v2/apps/nothing/tags/list?sort=semver")
    eq(st, 404, "unknown repository")


@suite.test
def test_golden_require_refuses_rogue(ctx):
    p = sk_copy(ctx, "rogue", "apps/rogue:1.0.0", check=False)
    assert p.returncode != 0, "a push to apps/* not built on golden must fail"
    err = p.stderr.decode("utf-8", "replace")
    assert "denied" in err.lower() or "403" in err, err
    st, _, _ = ctx["reg"].request("GET", "/v2/apps/rogue/manifests/1.0.0")
    eq(st, 404, "nothing stored")
    assert "not built on a golden image" in ctx["reg"].log()
    sk_copy(ctx, "rogue", "scratch/rogue:1.0.0")  # allowed outside apps/*
    # Built on golden: accepted anywhere under apps/*.
    sk_copy(ctx, "app-b", "apps/web:3.0.0")


@suite.test
def test_api_derived(ctx):
    img = ctx["img"]
    doc, _ = get_json(ctx, "/berth/v1/derived?image=" + q("golden/base:1.0.0"))
    eq(keys(doc), sorted(["apps/api@" + img["app-a"], "apps/api@" + img["app-c"]]),
       "derived of 1.0.0")
    eq(doc["image"], "golden/base:1.0.0", "image echoed")
    a = [i for i in doc["images"] if i["digest"] == img["app-a"]][0]
    eq(sorted(a["tags"]), ["1.1", "1.1.9"], "app-a's tags")
    eq(a["layers"], 3, "layers")
    eq(a["os"], "linux", "os")
    eq(a["architecture"], "amd64", "architecture")
    eq(a["labels"]["org.berth.team"], "payments", "labels")
    assert a["created"], a
    # By digest, and through the float "1" (now 1.1.0).
    doc, _ = get_json(ctx, "/berth/v1/derived?image=" + q("golden/base@" + img["base-1.1.0"]))
    eq(keys(doc), sorted(["apps/api@" + img["app-b"], "apps/api@" + img["app-d"],
                          "apps/web@" + img["app-b"]]), "derived of 1.1.0")
    doc2, _ = get_json(ctx, "/berth/v1/derived?image=" + q("golden/base:1"))
    eq(keys(doc2), keys(doc), "derived of the float 1")
    # Pagination: n=1 and a Link to the rest.
    doc, hdrs = get_json(ctx, "/berth/v1/derived?image=golden/base:1&n=1")
    eq(len(doc["images"]), 1, "one per page")
    link = hdrs["link"]
    seen = [doc["images"][0]["digest"]]
    while link:
        doc, hdrs = get_json(ctx, link[1:link.index(">")])
        seen += [i["digest"] for i in doc["images"]]
        link = hdrs.get("link")
    eq(len(seen), 3, "all pages")
    # Errors.
    get_json(ctx, "/berth/v1/derived?image=golden/base:9.9.9", status=404)
    get_json(ctx, "/berth/v1/derived?image=" + q("Bad Name:1"), status=400)
    get_json(ctx, "/berth/v1/derived", status=400)
    get_json(ctx, "/berth/v1/nothing", status=404)


@suite.test
def test_api_base(ctx):
    img = ctx["img"]
    doc, _ = get_json(ctx, "/berth/v1/base?image=" + q("apps/api:1.1.9"))
    eq([(i["repository"], i["digest"], i["golden"]) for i in doc["images"]],
       [("golden/base", img["base-1.0.0"], True)], "base of apps/api:1.1.9")
    eq(sorted(doc["images"][0]["tags"]), ["1.0", "1.0.0"], "base tags")
    doc, _ = get_json(ctx, "/berth/v1/base?image=" + q("scratch/rogue:1.0.0"))
    eq(doc["images"], [], "rogue has no base")


@suite.test
def test_api_outdated(ctx):
    img = ctx["img"]
    doc, _ = get_json(ctx, "/berth/v1/outdated")
    eq(keys(doc), sorted(["apps/api@" + img["app-a"], "apps/api@" + img["app-c"]]),
       "outdated: exactly the images on the old base")
    for i in doc["images"]:
        eq(i["base"], {"repository": "golden/base", "tag": "1.0.0",
                       "digest": img["base-1.0.0"]}, "base")
        eq(i["newest"], {"tag": "1.1.0", "digest": img["base-1.1.0"]}, "newest")
    doc2, _ = get_json(ctx, "/berth/v1/outdated?golden=" + q("golden/*"))
    eq(keys(doc2), keys(doc), "explicit pattern")
    doc3, _ = get_json(ctx, "/berth/v1/outdated?golden=" + q("nothing/*"))
    eq(doc3["images"], [], "a pattern matching nothing")


@suite.test
def test_api_search(ctx):
    img = ctx["img"]
    doc, _ = get_json(ctx, "/berth/v1/search?label=" + q("org.berth.team=web"))
    eq(keys(doc), sorted(["apps/api@" + img["app-b"], "apps/api@" + img["app-c"],
                          "apps/web@" + img["app-b"]]), "team=web")
    # Labels are inherited from the base image's config (umoci keeps them, as docker build).
    doc, _ = get_json(ctx, "/berth/v1/search?label=" + q("org.berth.version=1.1.0"))
    eq(keys(doc), sorted(["golden/base@" + img["base-1.1.0"], "apps/api@" + img["app-b"],
                          "apps/api@" + img["app-d"], "apps/web@" + img["app-b"]]),
       "version=1.1.0")
    eq([i["golden"] for i in doc["images"] if i["repository"] == "golden/base"], [True],
       "golden flag")
    doc, _ = get_json(ctx, "/berth/v1/search?label=" + q("org.berth.team=nobody"))
    eq(doc["images"], [], "no match")
    get_json(ctx, "/berth/v1/search?label=novalue", status=400)


@suite.test
def test_api_resolve(ctx):
    img = ctx["img"]
    doc, _ = get_json(ctx, "/berth/v1/resolve?image=" + q("apps/api:1"))
    eq((doc["version"], doc["digest"], doc["versions"]), ("1.2.0", img["app-c"], ["1.2.0"]),
       "resolve apps/api:1")
    eq(sorted(doc["tags"]), ["1", "1.2", "1.2.0"], "tags on that digest")
    doc, _ = get_json(ctx, "/berth/v1/resolve?image=" + q("apps/api:latest"))
    eq(doc["version"], "2.0.0", "resolve latest")
    doc, _ = get_json(ctx, "/berth/v1/resolve?image=" + q("golden/base:1"))
    eq(doc["version"], "1.1.0", "resolve golden/base:1")
    get_json(ctx, "/berth/v1/resolve?image=apps/api:7", status=404)
    # A malformed tag or digest is a malformed parameter (400), not an unknown image, though
    # /v2 answers 404 MANIFEST_UNKNOWN for the same reference.
    for image, code in (("apps/api:bad+tag", "TAG_INVALID"), ("apps/api:.x", "TAG_INVALID"),
                        ("apps/api@sha256:zz", "DIGEST_INVALID")):
        for api in ("resolve", "derived", "base"):
            doc, _ = get_json(ctx, "/berth/v1/%s?image=%s" % (api, q(image)), status=400)
            eq(doc["errors"][0]["code"], code, "%s of %s" % (api, image))


@suite.test
def test_reindex_rebuilds_the_index(ctx):
    before = {}
    paths = ["/berth/v1/derived?image=golden/base:1.0.0", "/berth/v1/outdated",
             "/berth/v1/search?label=" + q("org.berth.team=web"),
             "/berth/v1/base?image=" + q("apps/api:2.0.0")]
    for p in paths:
        before[p] = get_json(ctx, p)[0]
    ctx["reg"].stop()
    db = sqlite3.connect(os.path.join(ctx["root"], "meta.db"))
    with db:
        for t in ("images", "image_chains", "image_labels"):
            db.execute("DELETE FROM " + t)
    db.close()
    start(ctx)
    # An image missing from the index is unknown to the lineage questions.
    get_json(ctx, paths[0], status=404)
    ctx["reg"].stop()
    rc, out, err = cli(ctx, "reindex", ctx["config"])
    eq((rc, err.count("error")), (0, 0), "reindex exit: " + err)
    # base x2, apps/api x4, apps/web, scratch/rogue
    eq(out.strip(), "reindexed 8 images", "reindex output")
    start(ctx)
    for p in paths:
        eq(get_json(ctx, p)[0], before[p], "after reindex: " + p)
    rc, _, err = cli(ctx, "reindex", "/nonexistent.yml")
    eq(rc, 1, "missing config")
    rc, _, _ = cli(ctx, "reindex", "a", "b")
    eq(rc, 2, "usage")


@suite.test
def test_cli_verbs(ctx):
    img, h = ctx["img"], ctx["host"]
    rc, out, err = cli(ctx, "derived", "--insecure", h + "/golden/base:1.0.0")
    eq(rc, 0, "derived: " + err)
    lines = sorted(out.splitlines())
    eq(len(lines), 2, "derived lines")
    assert lines[0].startswith("apps/api@") and "linux/amd64" in out, out
    rc, out, _ = cli(ctx, "derived", "--insecure", "--json", h + "/golden/base:1.0.0")
    eq(keys(json.loads(out)), sorted(["apps/api@" + img["app-a"], "apps/api@" + img["app-c"]]),
       "derived --json")
    rc, out, _ = cli(ctx, "base", "--insecure", h + "/apps/api:1.1.9")
    eq(rc, 0, "base")
    eq(out, "golden/base@%s  1.0,1.0.0  linux/amd64  golden\n" % img["base-1.0.0"], "base text")
    rc, out, _ = cli(ctx, "outdated", "--insecure", "--golden", "golden/*", h)
    eq(rc, 0, "outdated")
    eq(len(out.splitlines()), 2, "outdated lines")
    assert "on golden/base:1.0.0, newest 1.1.0" in out, out
    rc, out, _ = cli(ctx, "outdated", "--insecure", "--json", h)
    eq(len(json.loads(out)["images"]), 2, "outdated --json")
    rc, out, _ = cli(ctx, "search", "--insecure", "--label", "org.berth.team=payments", h)
    eq(out.split("  ")[0], "apps/api@" + img["app-a"], "search")
    rc, out, _ = cli(ctx, "resolve", "--insecure", h + "/apps/api:1")
    eq((rc, out), (0, "1.2.0 %s\n" % img["app-c"]), "resolve")
    rc, out, _ = cli(ctx, "resolve", "--insecure", "--json", h + "/apps/api:1.2")
    eq(json.loads(out)["version"], "1.2.0", "resolve --json")
    rc, out, _ = cli(ctx, "ls", "--insecure", "--semver", "^1.2", h + "/apps/api")
    eq((rc, out), (0, "1.2.0\n"), "ls --semver")
    rc, out, _ = cli(ctx, "ls", "--insecure", "--sort", "semver", "--all", "--page-size", "3",
                     h + "/apps/api")
    eq(out.split(), ["1", "1.1", "1.1.9", "1.2", "1.2.0", "1.2.1-rc.1", "2", "2.0", "2.0.0",
                     "latest"], "ls --sort semver --all")
    rc, out, _ = cli(ctx, "ls", "--insecure", "--json", "--semver", ">=2", h + "/apps/api")
    eq(json.loads(out)["tags"], ["2.0.0"], "ls --json --semver")
    # Exit codes: not found 3, usage 2, a refused request 1, network 5.
    rc, _, err = cli(ctx, "resolve", "--insecure", h + "/apps/api:9")
    eq(rc, 3, "resolve unknown tag: " + err)
    rc, _, err = cli(ctx, "derived", "--insecure", h + "/nope/nope:1")
    eq(rc, 3, "derived unknown repository: " + err)
    rc, _, _ = cli(ctx, "search", "--insecure", h)
    eq(rc, 2, "search without --label")
    rc, _, _ = cli(ctx, "outdated", "--insecure", h + "/golden")
    eq(rc, 2, "outdated with a repository")
    rc, _, _ = cli(ctx, "ls", "--insecure", "--sort", "x", h + "/apps/api")
    eq(rc, 2, "ls --sort x")
    rc, _, err = cli(ctx, "ls", "--insecure", "--semver", "^^", h + "/apps/api")
    eq(rc, 1, "ls bad constraint: " + err)
    assert err.startswith("berth: "), err
    rc, _, _ = cli(ctx, "derived", "--insecure", "127.0.0.1:1/a/b:1")
    eq(rc, 5, "connection refused")


AUTH = """
auth:
  htpasswd:
    realm: berth
    path: %(htpasswd)s
berth:
  access:
    - users: [alice]
      repositories: ["apps/*"]
      actions: [pull]
    - users: [bob]
      repositories: ["golden/**", "apps/web"]
      actions: [pull]
"""


def basic(user):
    return {"Authorization": "Basic " + base64.b64encode(("%s:pw-%s" % (user, user)).encode())
            .decode()}


@suite.test
def test_api_access_control(ctx):
    """Like pulls: the named image's repository needs pull; other results are filtered."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    img = ctx["img"]
    htp = os.path.join(ctx["work"], "htpasswd")
    with open(htp, "w") as f:
        for u in ("alice", "bob"):
            f.write("%s:%s\n" % (u, crypt.crypt("pw-" + u, crypt.mksalt(crypt.METHOD_BLOWFISH))))
    ctx["reg"].stop()
    with open(ctx["config"], "a") as f:
        f.write(AUTH % {"htpasswd": htp})
    ctx["reg"] = Registry(ctx["args"].berth).start(config=ctx["config"], data_dir=ctx["work"],
                                                   port=ctx["port"])
    reg = ctx["reg"]

    def get(path, user=None):
        st, h, body = reg.request("GET", path, headers=basic(user) if user else {})
        return st, h, json.loads(body) if body else None

    st, h, _ = get("/berth/v1/search?label=" + q("org.berth.team=web"))
    eq(st, 401, "anonymous search")
    assert h.get("www-authenticate", "").startswith("Basic "), h
    st, _, doc = get("/berth/v1/search?label=" + q("org.berth.team=web"), "alice")
    eq((st, keys(doc)), (200, sorted(["apps/api@" + img["app-b"], "apps/api@" + img["app-c"],
                                      "apps/web@" + img["app-b"]])), "alice's search")
    st, _, doc = get("/berth/v1/derived?image=golden/base:1.0.0", "alice")
    eq(st, 403, "alice may not pull golden/base")
    st, _, doc = get("/berth/v1/derived?image=golden/base:1.1.0", "bob")
    eq((st, keys(doc)), (200, ["apps/web@" + img["app-b"]]), "bob sees only apps/web")
    st, _, doc = get("/berth/v1/base?image=" + q("apps/api:1.1.9"), "alice")
    eq((st, doc["images"]), (200, []), "golden base hidden from alice")
    st, _, doc = get("/berth/v1/outdated", "bob")
    eq((st, doc["images"]), (200, []), "bob may not pull the outdated apps/api images")
    st, _, doc = get("/berth/v1/resolve?image=apps/api:1", "bob")
    eq(st, 403, "resolve needs pull")


if __name__ == "__main__":
    suite.main(setup, teardown)
