#!/usr/bin/env python3
"""test_auth.py — authentication and access control end to end: htpasswd Basic with
berth.access rules (groups, "*", anonymous), the 401 challenges clients discover the scheme
from, catalog filtering, cross-repository mounts, the built-in token issuer (/auth/token, Bearer
tokens, scope intersection, refresh tokens, expired and forged tokens), real clients (skopeo
with --dest-creds/--src-creds against Basic and the token issuer, podman login + push), and
TLS with certificate verification on.

    python3 tests/e2e/test_auth.py --berth build/release/berth [-k NAME]
"""
# ASAN_SUITE  (scripts/run-tests.sh also runs this suite against build/asan/berth)
import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, Suite, sha256  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402  (deprecated in 3.11, still the way to make bcrypt here)

suite = Suite("e2e-auth")

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REALM = "berth e2e"
SERVICE = "berth-e2e"
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}

RULES = """
berth:
  groups:
    team-a: [alice]
  access:
    - users: ["@team-a"]
      repositories: ["team-a/**"]
      actions: [pull, push, delete]
    - users: [bob]
      repositories: ["team-b/*"]
      actions: [pull, push]
    - users: [alice]
      repositories: ["shared/*", "public/*"]
      actions: [pull, push]
    - users: ["*"]
      repositories: ["shared/*"]
      actions: [pull]
    - users: [anonymous, "*"]
      repositories: ["public/*"]
      actions: [pull]
"""


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


def basic(user, pw=None):
    pw = USERS[user] if pw is None else pw
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def hdrs(*dicts):
    out = {}
    for d in dicts:
        out.update(d)
    return out


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_payload(tok):
    p = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def error_code(body):
    return json.loads(body)["errors"][0]["code"]


# ---------------------------------------------------------------------------------------------
# Registry helpers (raw HTTP with explicit credentials)


def push_blob(reg, repo, data, auth):
    d = sha256(data)
    st, h, body = reg.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), body=data,
                              headers=hdrs(auth, {"Content-Type": "application/octet-stream"}))
    return st, d


def push_image(reg, repo, tag, auth, payload=None):
    """A one-layer image; returns (status of the manifest PUT, manifest digest, layer digest)."""
    payload = payload or os.urandom(64)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    st1, cd = push_blob(reg, repo, cfg, auth)
    st2, ld = push_blob(reg, repo, payload, auth)
    if (st1, st2) != (201, 201):
        return (st1 if st1 != 201 else st2), None, ld
    m = json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": {"mediaType": MT_CONFIG, "digest": cd, "size": len(cfg)},
                    "layers": [{"mediaType": MT_LAYER, "digest": ld, "size": len(payload)}]}).encode()
    st, h, _ = reg.request("PUT", "/v2/%s/manifests/%s" % (repo, tag), body=m,
                           headers=hdrs(auth, {"Content-Type": MT_MANIFEST}))
    return st, sha256(m), ld


def get_manifest(reg, repo, ref, auth):
    return reg.request("GET", "/v2/%s/manifests/%s" % (repo, ref),
                       headers=hdrs(auth, {"Accept": MT_MANIFEST}))


def catalog(reg, auth, query=""):
    st, h, body = reg.request("GET", "/v2/_catalog" + query, headers=auth)
    eq(st, 200, "catalog status")
    return json.loads(body)["repositories"], h


# ---------------------------------------------------------------------------------------------
# Set-up: three registries (Basic, token issuer, Basic over TLS)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def make_htpasswd(path):
    lines = ["# berth e2e users"]
    for u, p in USERS.items():
        lines.append("%s:%s" % (u, crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH))))
    lines.append("dave:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/")  # MD5: skipped with a warning
    write(path, "\n".join(lines) + "\n")


def make_tls(work):
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    d = os.path.join(work, "tls")
    os.makedirs(d)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
         "-out", ca_crt, "-days", "2", "-subj", "/CN=berth e2e CA"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"])
    ext = write(os.path.join(d, "ext.cnf"),
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    certdir = os.path.join(d, "client")
    os.makedirs(certdir)
    shutil.copy(ca_crt, os.path.join(certdir, "ca.crt"))
    return {"ca": ca_crt, "key": key, "crt": crt, "certdir": certdir}


class TLSRegistry(Registry):
    """The harness's Registry, speaking HTTPS and trusting only the test CA."""

    def __init__(self, binary, cafile):
        super().__init__(binary)
        self.ctx = ssl.create_default_context(cafile=cafile)

    def connection(self, timeout=30):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.ctx)


def make_layout(work, name):
    """A minimal OCI image layout (one gzip layer) for skopeo and podman to push."""
    L = os.path.join(work, name)
    os.makedirs(os.path.join(L, "blobs", "sha256"))

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(L, "blobs", "sha256", d), "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        content = ("hello from %s %s\n" % (name, os.urandom(8).hex())).encode()
        ti = tarfile.TarInfo("hello.txt")
        ti.size = len(content)
        ti.mtime = 0
        t.addfile(ti, io.BytesIO(content))
    tar = raw.getvalue()
    layer = gzip.compress(tar, mtime=0)
    ld, ls = put(layer)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "config": {"Cmd": ["/hello.txt"]},
                      "rootfs": {"type": "layers",
                                 "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}).encode()
    cd, cs = put(cfg)
    m = json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": {"mediaType": MT_CONFIG, "digest": cd, "size": cs},
                    "layers": [{"mediaType": MT_LAYER, "digest": ld, "size": ls}]}).encode()
    md, ms = put(m)
    write(os.path.join(L, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}')
    write(os.path.join(L, "index.json"), json.dumps({
        "schemaVersion": 2, "manifests": [{
            "mediaType": MT_MANIFEST, "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    return L, md


def setup(args):
    for tool in ("skopeo", "openssl"):
        if not shutil.which(tool):
            raise SystemExit("e2e-auth: %s not installed (run scripts/deps.sh test)" % tool)
    work = tempfile.mkdtemp(prefix="berth-e2e-auth-")
    ctx = {"args": args, "work": work, "regs": []}
    htp = os.path.join(work, "htpasswd")
    make_htpasswd(htp)
    # Basic
    cfg = write(os.path.join(work, "basic.yml"),
                "version: 0.1\nauth:\n  htpasswd:\n    realm: %s\n    path: %s\n%s"
                % (REALM, htp, RULES))
    ctx["basic"] = Registry(args.berth).start(config=cfg)
    ctx["regs"].append(ctx["basic"])
    # The built-in token issuer (RSA key; realm defaults to this server's /auth/token)
    ctx["key"] = os.path.join(work, "issuer.key")
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", ctx["key"]])
    cfg = write(os.path.join(work, "token.yml"),
                "version: 0.1\nauth:\n  htpasswd:\n    realm: %s\n    path: %s\n"
                "  token:\n    service: %s\n    issuer: berth-e2e-issuer\n"
                "%s  tokenissuer:\n    enabled: true\n    key: %s\n    expiry: 5m\n"
                % (REALM, htp, SERVICE, RULES, ctx["key"]))
    ctx["token"] = Registry(args.berth).start(config=cfg)
    ctx["regs"].append(ctx["token"])
    # Basic over TLS
    ctx["tls"] = make_tls(work)
    cfg = write(os.path.join(work, "tls.yml"),
                "version: 0.1\nhttp:\n  tls:\n    certificate: %s\n    key: %s\n"
                "auth:\n  htpasswd:\n    realm: %s\n    path: %s\n%s"
                % (ctx["tls"]["crt"], ctx["tls"]["key"], REALM, htp, RULES))
    treg = TLSRegistry(args.berth, ctx["tls"]["ca"])
    ctx["tlsreg"] = treg.start(config=cfg)
    ctx["regs"].append(treg)
    return ctx


def teardown(ctx):
    problems = []
    for reg in ctx["regs"]:
        rc = reg.stop()
        if rc not in (0, None):
            problems.append("berth exited with status %s on SIGTERM" % rc)
        problems += ["sanitizer: " + l for l in reg.sanitizer_errors()]
        log = reg.log()
        for u, p in USERS.items():
            if p in log:
                problems.append("a password reached the server log")
        if "Authorization" in log or "Bearer ey" in log or "Basic " + "YW" in log:
            problems.append("credentials reached the server log")
        if problems:
            print("---- server log (tail) ----\n" + log[-4000:])
        reg.cleanup()
    if ctx.get("podman"):
        ctx["podman"].cleanup()
    shutil.rmtree(ctx["work"], ignore_errors=True)
    return problems


# ---------------------------------------------------------------------------------------------
# Basic


@suite.test
def test_basic_challenge_on_base(ctx):
    reg = ctx["basic"]
    for auth in ({}, basic("alice", "wrong"), basic("nobody", "x"), {"Authorization": "Bearer x"},
                 {"Authorization": "Basic !!!"}):
        st, h, body = reg.request("GET", "/v2/", headers=auth)
        eq(st, 401, "GET /v2/ with %r" % auth)
        eq(h.get("www-authenticate"), 'Basic realm="%s"' % REALM, "challenge")
        eq(error_code(body), "UNAUTHORIZED", "error code")
        eq(h.get("docker-distribution-api-version"), "registry/2.0", "api version header")
    st, _, body = reg.request("GET", "/v2/", headers=basic("alice"))
    eq((st, body), (200, b"{}"), "GET /v2/ with the right password")
    # The MD5 entry was skipped with one warning naming the user and the hash type.
    st, _, _ = reg.request("GET", "/v2/", headers=basic("dave", "x"))
    eq(st, 401, "non-bcrypt user")
    warn = [l for l in reg.log().splitlines() if "dave" in l]
    eq(len(warn), 1, "one warning for dave: %r" % warn)
    if "MD5 (apr1)" not in warn[0]:
        raise AssertionError("warning does not name the hash type: %r" % warn[0])


@suite.test
def test_basic_challenge_on_repository(ctx):
    reg = ctx["basic"]
    for method, path in (("GET", "/v2/team-a/app/tags/list"),
                         ("HEAD", "/v2/team-a/app/manifests/latest"),
                         ("POST", "/v2/team-a/app/blobs/uploads/")):
        st, h, _ = reg.request(method, path)
        eq(st, 401, "%s %s anonymously" % (method, path))
        eq(h.get("www-authenticate"), 'Basic realm="%s"' % REALM, "challenge")


@suite.test
def test_basic_push_pull_per_rules(ctx):
    reg = ctx["basic"]
    st, md, _ = push_image(reg, "team-a/app", "1", basic("alice"))
    eq(st, 201, "alice pushes team-a/app (group rule)")
    st, _, body = get_manifest(reg, "team-a/app", "1", basic("alice"))
    eq((st, sha256(body)), (200, md), "alice pulls team-a/app")
    # Deeper paths: team-a/** covers them.
    eq(push_image(reg, "team-a/x/y", "1", basic("alice"))[0], 201, "alice pushes team-a/x/y")
    # bob: authenticated, not allowed: 403 DENIED, and nothing about existence leaks.
    for repo in ("team-a/app", "team-a/missing"):
        st, h, body = get_manifest(reg, repo, "1", basic("bob"))
        eq((st, error_code(body)), (403, "DENIED"), "bob pulls %s" % repo)
        eq(h.get("www-authenticate"), None, "no challenge on 403")
    st, _, body = reg.request("POST", "/v2/team-a/app/blobs/uploads/", headers=basic("bob"))
    eq((st, error_code(body)), (403, "DENIED"), "bob starts an upload in team-a")
    eq(push_image(reg, "team-b/app", "1", basic("bob"))[0], 201, "bob pushes team-b/app")
    # team-b/* is one component only.
    eq(push_image(reg, "team-b/app/deep", "1", basic("bob"))[0], 403, "bob pushes team-b/app/deep")
    # "*": every authenticated user pulls shared/*, only alice pushes.
    st, md, _ = push_image(reg, "shared/base", "1", basic("alice"))
    eq(st, 201, "alice pushes shared/base")
    eq(get_manifest(reg, "shared/base", "1", basic("carol"))[0], 200, "carol pulls shared/base")
    eq(push_image(reg, "shared/base", "2", basic("carol"))[0], 403, "carol pushes shared/base")
    # Wrong password: 401 even for a repository the user may use.
    eq(get_manifest(reg, "shared/base", "1", basic("carol", "nope"))[0], 401, "wrong password")


@suite.test
def test_basic_delete_needs_delete(ctx):
    reg = ctx["basic"]
    st, md, ld = push_image(reg, "team-b/del", "1", basic("bob"))
    eq(st, 201, "bob pushes team-b/del")
    st, _, body = reg.request("DELETE", "/v2/team-b/del/manifests/%s" % md, headers=basic("bob"))
    eq((st, error_code(body)), (403, "DENIED"), "bob deletes without the delete action")
    st, _, _ = reg.request("DELETE", "/v2/team-b/del/blobs/%s" % ld, headers=basic("bob"))
    eq(st, 403, "bob deletes a blob")
    st, md, _ = push_image(reg, "team-a/del", "1", basic("alice"))
    st, _, _ = reg.request("DELETE", "/v2/team-a/del/manifests/%s" % md, headers=basic("alice"))
    eq(st, 202, "alice deletes in team-a")


@suite.test
def test_anonymous_pull_by_pattern(ctx):
    reg = ctx["basic"]
    st, md, ld = push_image(reg, "public/hello", "1", basic("alice"))
    eq(st, 201, "alice pushes public/hello")
    st, _, body = get_manifest(reg, "public/hello", "1", {})
    eq((st, sha256(body)), (200, md), "anonymous pull of public/hello")
    st, _, _ = reg.request("GET", "/v2/public/hello/blobs/%s" % ld)
    eq(st, 200, "anonymous blob pull")
    st, h, _ = reg.request("POST", "/v2/public/hello/blobs/uploads/")
    eq((st, h.get("www-authenticate")), (401, 'Basic realm="%s"' % REALM), "anonymous push")
    eq(get_manifest(reg, "shared/base", "1", {})[0], 401, "anonymous pull of shared/*")
    # Anonymous may still not use /v2/ itself: that 401 is how clients learn the scheme.
    eq(reg.request("GET", "/v2/")[0], 401, "anonymous GET /v2/")


@suite.test
def test_catalog_lists_only_pullable(ctx):
    reg = ctx["basic"]
    for repo, user in (("team-a/cat", "alice"), ("team-b/cat", "bob"), ("shared/cat", "alice"),
                       ("public/cat", "alice")):
        eq(push_image(reg, repo, "1", basic(user))[0], 201, "push %s" % repo)
    repos, _ = catalog(reg, basic("alice"))
    for r in ("team-a/cat", "shared/cat", "public/cat"):
        if r not in repos:
            raise AssertionError("alice's catalog lacks %s: %r" % (r, repos))
    if any(r.startswith("team-b/") for r in repos):
        raise AssertionError("alice sees team-b: %r" % repos)
    repos, _ = catalog(reg, basic("bob"))
    if any(r.startswith("team-a/") for r in repos) or "team-b/cat" not in repos:
        raise AssertionError("bob's catalog: %r" % repos)
    repos, _ = catalog(reg, basic("carol"))
    if any(not (r.startswith("shared/") or r.startswith("public/")) for r in repos):
        raise AssertionError("carol's catalog: %r" % repos)
    repos, _ = catalog(reg, {})
    if not repos or any(not r.startswith("public/") for r in repos):
        raise AssertionError("anonymous catalog: %r" % repos)
    # Pagination counts only visible rows: n=1 pages walk bob's list exactly.
    seen, query = [], "?n=1"
    for _ in range(50):
        page, h = catalog(reg, basic("bob"), query)
        if len(page) > 1:
            raise AssertionError("page longer than n: %r" % page)
        seen += page
        link = h.get("link")
        if not link:
            break
        query = "?" + link.split("?", 1)[1].split(">", 1)[0]
    full, _ = catalog(reg, basic("bob"))
    eq(seen, full, "bob's catalog page by page")
    eq(reg.request("GET", "/v2/_catalog", headers=basic("bob", "bad"))[0], 401, "wrong password")


@suite.test
def test_mount_needs_pull_on_source(ctx):
    reg = ctx["basic"]
    st, _, ld = push_image(reg, "team-a/src", "1", basic("alice"))
    eq(st, 201, "alice pushes team-a/src")
    # bob may push team-b/dst but not pull team-a/src: a plain session, nothing mounted.
    st, h, _ = reg.request("POST", "/v2/team-b/dst/blobs/uploads/?mount=%s&from=team-a/src" % ld,
                           headers=basic("bob"))
    eq(st, 202, "bob mounts from team-a (falls back to a session)")
    if "/blobs/uploads/" not in h.get("location", ""):
        raise AssertionError("no upload Location: %r" % h)
    eq(reg.request("HEAD", "/v2/team-b/dst/blobs/%s" % ld, headers=basic("bob"))[0], 404,
       "blob not mounted into team-b/dst")
    # Same answer as for a digest that exists nowhere: existence does not leak.
    st2, _, _ = reg.request("POST", "/v2/team-b/dst/blobs/uploads/?mount=sha256:%s&from=team-a/src"
                            % ("0" * 64), headers=basic("bob"))
    eq(st2, 202, "mount of an unknown digest")
    # Without from berth would mount from anywhere; under access control that is a session.
    st, _, _ = reg.request("POST", "/v2/team-b/dst/blobs/uploads/?mount=%s" % ld,
                           headers=basic("bob"))
    eq(st, 202, "mount without from")
    # alice may pull team-a/src: mounted (201).
    st, h, _ = reg.request("POST", "/v2/team-a/dst/blobs/uploads/?mount=%s&from=team-a/src" % ld,
                           headers=basic("alice"))
    eq(st, 201, "alice mounts within team-a")
    # bob may pull shared/*: mounting from there works.
    st, _, sld = push_image(reg, "shared/mnt", "1", basic("alice"))
    st, _, _ = reg.request("POST", "/v2/team-b/dst/blobs/uploads/?mount=%s&from=shared/mnt" % sld,
                           headers=basic("bob"))
    eq(st, 201, "bob mounts from shared/mnt")


# ---------------------------------------------------------------------------------------------
# The token issuer


def token_url(ctx):
    return "http://127.0.0.1:%d/auth/token" % ctx["token"].port


def get_token(ctx, auth, *scopes, extra=""):
    q = "?service=%s" % SERVICE + "".join("&scope=" + urllib.parse.quote(s) for s in scopes) + extra
    st, h, body = ctx["token"].request("GET", "/auth/token" + q, headers=auth)
    return st, h, (json.loads(body) if st == 200 else body)


def bearer_challenge(ctx, scope=None, error=None):
    s = 'Bearer realm="%s",service="%s"' % (token_url(ctx), SERVICE)
    if scope:
        s += ',scope="%s"' % scope
    if error:
        s += ',error="%s"' % error
    return s


@suite.test
def test_token_challenges(ctx):
    reg = ctx["token"]
    st, h, body = reg.request("GET", "/v2/")
    eq((st, h.get("www-authenticate")), (401, bearer_challenge(ctx)), "GET /v2/")
    eq(error_code(body), "UNAUTHORIZED", "error code")
    st, h, _ = reg.request("GET", "/v2/team-a/app/manifests/1")
    eq((st, h.get("www-authenticate")),
       (401, bearer_challenge(ctx, "repository:team-a/app:pull")), "GET manifest")
    st, h, _ = reg.request("POST", "/v2/team-a/app/blobs/uploads/")
    eq(h.get("www-authenticate"), bearer_challenge(ctx, "repository:team-a/app:pull,push"),
       "POST upload")
    st, h, _ = reg.request("DELETE", "/v2/team-a/app/manifests/sha256:" + "a" * 64)
    eq(h.get("www-authenticate"), bearer_challenge(ctx, "repository:team-a/app:delete"),
       "DELETE manifest")
    # Basic credentials are not accepted where tokens are required.
    st, h, _ = reg.request("GET", "/v2/", headers=basic("alice"))
    eq((st, h.get("www-authenticate")), (401, bearer_challenge(ctx)), "Basic on a token registry")


@suite.test
def test_token_flow_push_pull(ctx):
    reg = ctx["token"]
    st, h, t = get_token(ctx, basic("alice"), "repository:team-a/tok:pull,push")
    eq(st, 200, "token for alice")
    eq(h.get("cache-control"), "no-store", "token response not cached")
    for k in ("token", "access_token", "expires_in", "issued_at"):
        if k not in t:
            raise AssertionError("token response lacks %s: %r" % (k, t))
    eq(t["token"], t["access_token"], "token == access_token")
    eq(t["expires_in"], 300, "expires_in")
    claims = jwt_payload(t["token"])
    eq((claims["sub"], claims["aud"], claims["iss"]), ("alice", SERVICE, "berth-e2e-issuer"),
       "claims")
    eq(claims["access"], [{"type": "repository", "name": "team-a/tok", "actions": ["pull", "push"]}],
       "access claim")
    st, md, _ = push_image(reg, "team-a/tok", "1", bearer(t["token"]))
    eq(st, 201, "push with the token")
    st, _, body = get_manifest(reg, "team-a/tok", "1", bearer(t["token"]))
    eq((st, sha256(body)), (200, md), "pull with the token")
    eq(reg.request("GET", "/v2/", headers=bearer(t["token"]))[0], 200, "GET /v2/ with a token")
    # The token is for team-a/tok only.
    st, h, _ = get_manifest(reg, "team-a/other", "1", bearer(t["token"]))
    eq((st, h.get("www-authenticate")),
       (401, bearer_challenge(ctx, "repository:team-a/other:pull", "insufficient_scope")),
       "other repository")


@suite.test
def test_token_scope_intersection(ctx):
    reg = ctx["token"]
    # bob asks for more than he may have: gets the intersection only.
    st, _, t = get_token(ctx, basic("bob"), "repository:team-b/int:pull,push,delete",
                         "repository:team-a/tok:pull", "repository:shared/x:pull,push")
    eq(st, 200, "token for bob")
    got = {a["name"]: a["actions"] for a in jwt_payload(t["token"])["access"]}
    eq(got, {"team-b/int": ["pull", "push"], "shared/x": ["pull"]}, "granted access")
    st, h, _ = get_manifest(reg, "team-a/tok", "1", bearer(t["token"]))
    eq((st, h.get("www-authenticate")),
       (401, bearer_challenge(ctx, "repository:team-a/tok:pull", "insufficient_scope")),
       "bob's token on team-a")
    eq(push_image(reg, "team-b/int", "1", bearer(t["token"]))[0], 201, "bob pushes team-b/int")
    # Several scopes in one parameter, separated by spaces.
    st, _, t = get_token(ctx, basic("alice"), "repository:team-a/a:pull repository:team-a/b:push")
    got = {a["name"]: a["actions"] for a in jwt_payload(t["token"])["access"]}
    eq(got, {"team-a/a": ["pull"], "team-a/b": ["push"]}, "space-separated scopes")


@suite.test
def test_token_anonymous_and_wrong_password(ctx):
    reg = ctx["token"]
    eq(push_image(reg, "public/anon", "1",
                  bearer(get_token(ctx, basic("alice"), "repository:public/anon:pull,push")[2]
                         ["token"]))[0], 201, "alice pushes public/anon")
    st, _, t = get_token(ctx, {}, "repository:public/anon:pull,push",
                         "repository:team-a/tok:pull")
    eq(st, 200, "anonymous token")
    claims = jwt_payload(t["token"])
    eq(claims["sub"], "", "anonymous sub")
    eq(claims["access"], [{"type": "repository", "name": "public/anon", "actions": ["pull"]}],
       "anonymous grants")
    eq(get_manifest(reg, "public/anon", "1", bearer(t["token"]))[0], 200, "anonymous pull")
    st, h, _ = reg.request("POST", "/v2/public/anon/blobs/uploads/", headers=bearer(t["token"]))
    eq((st, h.get("www-authenticate")),
       (401, bearer_challenge(ctx, "repository:public/anon:pull,push", "insufficient_scope")),
       "anonymous push")
    st, h, body = get_token(ctx, basic("alice", "wrong"), "repository:team-a/tok:pull")
    eq((st, h.get("www-authenticate")), (401, 'Basic realm="%s"' % REALM), "wrong password")
    st2, _, _ = ctx["token"].request("GET", "/auth/token?service=other", headers=basic("alice"))
    eq(st2, 400, "unknown service")


def sign_rs256(ctx, header, claims):
    msg = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", ctx["key"]], input=msg,
                       stdout=subprocess.PIPE, check=True)
    return msg.decode() + "." + b64url(p.stdout)


@suite.test
def test_token_expired_forged_rejected(ctx):
    reg = ctx["token"]
    now = int(time.time())
    access = [{"type": "repository", "name": "team-a/tok", "actions": ["pull"]}]
    base = {"iss": "berth-e2e-issuer", "sub": "alice", "aud": SERVICE, "access": access}
    ok = sign_rs256(ctx, {"alg": "RS256", "typ": "JWT"}, dict(base, exp=now + 60, nbf=now))
    eq(get_manifest(reg, "team-a/tok", "1", bearer(ok))[0], 200, "a token signed with the key")
    cases = {
        "expired": sign_rs256(ctx, {"alg": "RS256"}, dict(base, exp=now - 120, nbf=now - 600)),
        "not yet valid": sign_rs256(ctx, {"alg": "RS256"}, dict(base, exp=now + 900, nbf=now + 600)),
        "wrong audience": sign_rs256(ctx, {"alg": "RS256"}, dict(base, aud="other", exp=now + 60)),
        "wrong issuer": sign_rs256(ctx, {"alg": "RS256"}, dict(base, iss="evil", exp=now + 60)),
        "alg none": b64url(b'{"alg":"none"}') + "." + ok.split(".")[1] + ".",
        "tampered": ok.split(".")[0] + "." + b64url(json.dumps(dict(
            base, exp=now + 60, access=[dict(access[0], actions=["pull", "push", "delete"])])).encode())
        + "." + ok.split(".")[2],
        "garbage": "not-a-token",
    }
    for what, tok in cases.items():
        st, h, _ = get_manifest(reg, "team-a/tok", "1", bearer(tok))
        eq((st, h.get("www-authenticate")),
           (401, bearer_challenge(ctx, "repository:team-a/tok:pull", "invalid_token")), what)


@suite.test
def test_token_refresh_and_catalog(ctx):
    reg = ctx["token"]
    st, _, t = get_token(ctx, basic("alice"), "repository:team-a/tok:pull",
                         extra="&offline_token=true&client_id=e2e")
    eq(st, 200, "token with offline_token")
    rt = t.get("refresh_token")
    if not rt:
        raise AssertionError("no refresh_token: %r" % t)
    # A refresh token is not an access token.
    eq(get_manifest(reg, "team-a/tok", "1", bearer(rt))[0], 401, "refresh token as access token")
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": rt,
                                   "service": SERVICE, "scope": "repository:team-a/tok:pull",
                                   "client_id": "e2e"})
    st, _, body = reg.request("POST", "/auth/token", body=form,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    eq(st, 200, "refresh grant")
    tok = json.loads(body)["access_token"]
    eq(get_manifest(reg, "team-a/tok", "1", bearer(tok))[0], 200, "refreshed token works")
    form = urllib.parse.urlencode({"grant_type": "password", "username": "bob",
                                   "password": USERS["bob"], "service": SERVICE,
                                   "scope": "registry:catalog:*", "access_type": "offline",
                                   "client_id": "e2e"})
    st, _, body = reg.request("POST", "/auth/token", body=form,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    eq(st, 200, "password grant")
    t = json.loads(body)
    if "refresh_token" not in t:
        raise AssertionError("access_type=offline gives a refresh token: %r" % t)
    st, _, body = reg.request("GET", "/v2/_catalog", headers=bearer(t["access_token"]))
    eq(st, 200, "catalog with registry:catalog:*")
    repos = json.loads(body)["repositories"]
    if any(r.startswith("team-a/") for r in repos) or "team-b/int" not in repos:
        raise AssertionError("bob's catalog: %r" % repos)
    st, h, _ = reg.request("GET", "/v2/_catalog", headers=bearer(tok))
    eq((st, h.get("www-authenticate")),
       (401, bearer_challenge(ctx, "registry:catalog:*", "insufficient_scope")),
       "catalog without the scope")
    form = urllib.parse.urlencode({"grant_type": "password", "username": "bob", "password": "x",
                                   "service": SERVICE})
    eq(reg.request("POST", "/auth/token", body=form,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})[0], 401,
       "password grant with a wrong password")


# ---------------------------------------------------------------------------------------------
# Real clients


def layout(ctx, name="img"):
    if name not in ctx.setdefault("layouts", {}):
        ctx["layouts"][name] = make_layout(ctx["work"], name)
    return ctx["layouts"][name]


def skopeo(*a, check=True):
    return run(["skopeo"] + list(a), check=check)


def skopeo_roundtrip(ctx, host, repo, creds, tls_args_dest, tls_args_src):
    L, md = layout(ctx)
    skopeo("copy", "--preserve-digests", *tls_args_dest, "--dest-creds", creds,
           "oci:%s:latest" % L, "docker://%s/%s" % (host, repo))
    out = os.path.join(ctx["work"], "out-" + repo.replace("/", "-").replace(":", "-"))
    skopeo("copy", *tls_args_src, "--src-creds", creds, "docker://%s/%s" % (host, repo),
           "oci:%s:latest" % out)
    with open(os.path.join(out, "index.json")) as f:
        eq(json.load(f)["manifests"][0]["digest"], md, "digest after the round trip")


@suite.test
def test_skopeo_basic(ctx):
    host = "127.0.0.1:%d" % ctx["basic"].port
    plain = ["--dest-tls-verify=false"]
    skopeo_roundtrip(ctx, host, "team-a/skopeo:1", "alice:" + USERS["alice"], plain,
                     ["--src-tls-verify=false"])
    L, _ = layout(ctx)
    p = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:" + USERS["bob"],
               "oci:%s:latest" % L, "docker://%s/team-a/denied:1" % host, check=False)
    if p.returncode == 0:
        raise AssertionError("bob pushed to team-a")
    p = skopeo("copy", "--dest-tls-verify=false", "oci:%s:latest" % L,
               "docker://%s/team-a/anon:1" % host, check=False)
    if p.returncode == 0:
        raise AssertionError("anonymous push succeeded")
    # Anonymous pull of a public image works without credentials.
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:" + USERS["alice"],
           "oci:%s:latest" % L, "docker://%s/public/skopeo:1" % host)
    skopeo("inspect", "--tls-verify=false", "docker://%s/public/skopeo:1" % host)


@suite.test
def test_skopeo_token_issuer(ctx):
    host = "127.0.0.1:%d" % ctx["token"].port
    skopeo_roundtrip(ctx, host, "team-a/skopeo-token:1", "alice:" + USERS["alice"],
                     ["--dest-tls-verify=false"], ["--src-tls-verify=false"])
    L, _ = layout(ctx)
    p = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:" + USERS["bob"],
               "oci:%s:latest" % L, "docker://%s/team-a/denied:1" % host, check=False)
    if p.returncode == 0:
        raise AssertionError("bob pushed to team-a through the token issuer")
    if "/auth/token" not in ctx["token"].log():
        raise AssertionError("skopeo did not go through /auth/token")


@suite.test
def test_skopeo_tls_verified(ctx):
    host = "127.0.0.1:%d" % ctx["tlsreg"].port
    certdir = ctx["tls"]["certdir"]
    skopeo_roundtrip(ctx, host, "team-a/tls:1", "alice:" + USERS["alice"],
                     ["--dest-cert-dir", certdir], ["--src-cert-dir", certdir])
    # Verification is really on: without the CA the same copy fails.
    L, _ = layout(ctx)
    p = skopeo("copy", "--dest-creds", "alice:" + USERS["alice"], "oci:%s:latest" % L,
               "docker://%s/team-a/tls:2" % host, check=False)
    if p.returncode == 0 or b"certificate" not in p.stderr:
        raise AssertionError("copy without the CA: rc=%d %s" % (p.returncode, p.stderr[-500:]))
    st, h, _ = ctx["tlsreg"].request("GET", "/v2/")
    eq((st, h.get("www-authenticate")), (401, 'Basic realm="%s"' % REALM), "HTTPS challenge")


class Podman:
    """Root podman with a throw-away VFS store (as in test_clients.py) and its own auth file."""

    def __init__(self, work):
        self.base = os.path.join(work, "podman")
        self.root = os.path.join(self.base, "root")
        self.runroot = os.path.join(self.base, "run")
        self.tmp = os.path.join(self.base, "tmp")
        for d in (self.root, self.runroot, self.tmp):
            os.makedirs(d, exist_ok=True)
        conf = write(os.path.join(self.base, "storage.conf"),
                     '[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n'
                     % (self.runroot, self.root))
        self.authfile = os.path.join(self.base, "auth.json")
        write(self.authfile, "{}")
        self.env = dict(os.environ, CONTAINERS_STORAGE_CONF=conf, TMPDIR=self.tmp,
                        REGISTRY_AUTH_FILE=self.authfile)
        self.args = ["podman", "--storage-driver", "vfs", "--root", self.root,
                     "--runroot", self.runroot, "--tmpdir", self.tmp,
                     "--cgroup-manager=cgroupfs", "--events-backend=file"]

    def __call__(self, *a, check=True, timeout=180):
        return run(self.args + list(a), env=self.env, check=check, timeout=timeout)

    def cleanup(self):
        run(self.args + ["rmi", "-a", "-f"], env=self.env, check=False, timeout=120)
        shutil.rmtree(self.base, ignore_errors=True)


@suite.test
def test_podman_login_push(ctx):
    if not shutil.which("podman"):
        print("SKIP test_podman_login_push: podman not installed", flush=True)
        return
    pm = Podman(ctx["work"])
    p = pm("info", "--format", "{{.Store.GraphDriverName}}", check=False, timeout=120)
    if p.returncode != 0:
        print("SKIP test_podman_login_push: podman info failed: %s"
              % p.stderr.decode("utf-8", "replace")[-500:], flush=True)
        return
    ctx["podman"] = pm
    L, _ = layout(ctx, "podimg")
    # Not "podman pull oci:DIR": podman names that image after the directory path, and a
    # temporary path can be no valid name (mkdtemp may end it with "_"). Name it explicitly.
    run(["skopeo", "copy", "oci:%s:latest" % L,
         "containers-storage:[vfs@%s+%s]localhost/podimg:latest" % (pm.root, pm.runroot)],
        env=pm.env)
    iid = pm("image", "inspect", "--format", "{{.Id}}",
             "localhost/podimg:latest").stdout.decode().strip()
    for name, reg in (("basic", ctx["basic"]), ("token", ctx["token"])):
        host = "127.0.0.1:%d" % reg.port
        ref = "%s/team-a/podman:%s" % (host, name)
        pm("tag", iid, ref)
        # Without login: refused.
        p = pm("push", "--tls-verify=false", ref, check=False)
        if p.returncode == 0:
            raise AssertionError("podman pushed to %s without logging in" % name)
        p = subprocess.run(pm.args + ["login", "--tls-verify=false", "-u", "alice",
                                      "--password-stdin", host],
                           input=USERS["alice"].encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=pm.env, timeout=120)
        if p.returncode != 0:
            raise AssertionError("podman login (%s): %s" % (name, p.stderr.decode()[-800:]))
        dfile = os.path.join(ctx["work"], "podman-digest-" + name)
        pm("push", "--tls-verify=false", "--digestfile", dfile, ref)
        with open(dfile) as f:
            pushed = f.read().strip()
        auth = basic("alice") if name == "basic" else bearer(
            get_token(ctx, basic("alice"), "repository:team-a/podman:pull")[2]["token"])
        st, h, _ = reg.request("HEAD", "/v2/team-a/podman/manifests/%s" % name,
                               headers=hdrs(auth, {"Accept": MT_MANIFEST + ", application/vnd.docker.distribution.manifest.v2+json"}))
        eq((st, h.get("docker-content-digest")), (200, pushed), "podman push (%s)" % name)
        # A wrong password is refused at login.
        p = subprocess.run(pm.args + ["login", "--tls-verify=false", "-u", "alice",
                                      "--password-stdin", host],
                           input=b"wrong", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=pm.env, timeout=120)
        if p.returncode == 0:
            raise AssertionError("podman login with a wrong password succeeded (%s)" % name)


if __name__ == "__main__":
    suite.main(setup=setup, teardown=teardown)
