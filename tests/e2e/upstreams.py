"""upstreams.py — real upstream registries for the pull-through mirror's end-to-end tests, a small
Docker-like registry client (401 challenge -> Basic or Bearer token, as docker and containerd do),
and image content to seed them with. Standard library only.

    hub = start_hub_like("build/release/berth", tmpdir)   # token auth, anonymous pull (Docker Hub)
    dist = start_distribution_htpasswd(tmpdir, "alice", "pw")   # Distribution 2.8, Basic auth
    img = hub.seed("library/hello", "1")                  # a 2-layer OCI image, pushed
    idx = hub.seed("library/multi", "1", make_index())    # an index of two images
    big = hub.seed_big("library/big", "1", 64)            # one 64 MiB layer, streamed
    c = RegistryClient("127.0.0.1", proxy.port)           # anonymous; follows the challenge
    pull(c, "library/hello", "1")                          # every digest verified
    hub.stop(); dist.stop()
"""
import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Registry, free_port, sha256  # noqa: E402

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_RAW = "application/vnd.oci.image.layer.v1.tar"
ACCEPT = ", ".join([MT_INDEX, MT_MANIFEST,
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])
DISTRIBUTION = "/usr/bin/docker-registry"
MiB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# A registry client that authenticates the way docker does


def _parse_challenge(value):
    """'Bearer realm="x",service="y"' -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = value.strip().partition(" ")
    params = dict((k.lower(), v) for k, v in re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def _repo_of(path):
    m = re.match(r"^/v2/(.+)/(manifests|blobs|tags|referrers)/", path)
    return m.group(1) if m else ""


class Response:
    """A streamed response: read1()/read() the body, then close()."""

    def __init__(self, conn, resp, data=None):
        self.conn, self.resp = conn, resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self._data = None if data is None else io.BytesIO(data)

    def read1(self, n=64 * 1024):
        return self._data.read(n) if self._data is not None else self.resp.read1(n)

    def read(self):
        return self._data.read() if self._data is not None else self.resp.read()

    def close(self):
        self.resp.close()
        self.conn.close()


class RegistryClient:
    """HTTP to one registry (host:port), answering 401 challenges like docker: Basic with the
    credentials, or a Bearer token from the challenge's realm (Basic credentials sent to the
    token endpoint when there are any, anonymous otherwise). `token_fetches` lists the realm
    URLs used, so a test sees where token requests went."""

    def __init__(self, host, port, user=None, password=None, timeout=30):
        self.host, self.port, self.timeout = host, int(port), timeout
        self.user, self.password = user, password
        self._auth = {}  # repository ("" for none) -> Authorization value
        self._basic = None
        self.token_fetches = []

    def authorization(self, repo=""):
        """The Authorization value this client sends for repo (None before a challenge)."""
        return self._basic or self._auth.get(repo)

    def _basic_value(self):
        raw = ("%s:%s" % (self.user, self.password)).encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _send(self, method, path, body, headers, timeout, host=None, port=None):
        c = http.client.HTTPConnection(host or self.host, port or self.port,
                                       timeout=timeout or self.timeout, blocksize=64 * 1024)
        try:
            c.request(method, path, body=body, headers=headers)
            return c, c.getresponse()
        except BaseException:
            c.close()
            raise

    def open(self, method, path, body=None, headers=None, timeout=None):
        """Send one request (authenticating on a 401 when the body can be sent again) and
        return a Response whose body is not read yet."""
        repo = _repo_of(path)
        for attempt in range(3):
            h = dict(headers or {})
            auth = self.authorization(repo)
            if auth and "Authorization" not in h:
                h["Authorization"] = auth
            conn, resp = self._send(method, path, body, h, timeout)
            r = Response(conn, resp)
            ch = r.headers.get("www-authenticate")
            if r.status != 401 or not ch or attempt == 2 or not (body is None or
                                                                 isinstance(body, bytes)):
                return r
            data = r.read()
            r.close()
            if not self._authenticate(ch, repo):
                return Response(conn, resp, data)
        raise AssertionError("unreachable")

    def _authenticate(self, challenge, repo):
        scheme, p = _parse_challenge(challenge)
        if scheme == "basic":
            if self.user is None or self._basic:
                return False
            self._basic = self._basic_value()
            return True
        if scheme != "bearer" or "realm" not in p:
            return False
        st, tok = self.token(p["realm"], p.get("service"), p.get("scope"))
        if st != 200:
            return False
        self._auth[repo] = "Bearer " + tok
        return True

    def token(self, realm, service=None, scope=None):
        """(status, token) from a token endpoint, as docker asks for one."""
        u = urllib.parse.urlsplit(realm)
        q = []
        if service:
            q.append(("service", service))
        for s in (scope or "").split(" "):
            if s:
                q.append(("scope", s))
        path = (u.path or "/") + ("?" + urllib.parse.urlencode(q) if q else "")
        h = {"Authorization": self._basic_value()} if self.user is not None else {}
        self.token_fetches.append(realm)
        conn, resp = self._send("GET", path, None, h, None, u.hostname, u.port or 80)
        try:
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            return resp.status, None
        j = json.loads(data)
        return 200, j.get("token") or j.get("access_token")

    def request(self, method, path, body=None, headers=None, timeout=None):
        """(status, headers with lower-case keys, body bytes)."""
        r = self.open(method, path, body, headers, timeout)
        try:
            return r.status, r.headers, r.read()
        finally:
            r.close()

    # --- pushing (monolithic: POST, then PUT with the whole body) ----------------------------

    def push_blob(self, repo, data, digest=None, size=None):
        """data: bytes, or an iterable of bytes with digest and size given (streamed)."""
        if isinstance(data, bytes):
            digest, size = sha256(data), len(data)
        st, h, body = self.request("POST", "/v2/%s/blobs/uploads/" % repo)
        if st != 202:
            raise AssertionError("POST upload %s: %d %r" % (repo, st, body[:300]))
        loc = urllib.parse.urlsplit(h["location"])
        if loc.netloc and loc.netloc != "%s:%d" % (self.host, self.port):
            raise AssertionError("upload Location points elsewhere: %s" % h["location"])
        path = loc.path + "?" + (loc.query + "&" if loc.query else "") + \
            urllib.parse.urlencode({"digest": digest})
        st, h, body = self.request("PUT", path, body=data, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(size)})
        if st != 201:
            raise AssertionError("PUT blob %s %s: %d %r" % (repo, digest, st, body[:300]))
        return digest

    def put_manifest(self, repo, ref, data, media_type):
        st, h, body = self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=data,
                                   headers={"Content-Type": media_type})
        if st != 201:
            raise AssertionError("PUT manifest %s:%s: %d %r" % (repo, ref, st, body[:300]))
        return sha256(data)

    def get_manifest(self, repo, ref, accept=ACCEPT):
        return self.request("GET", "/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": accept})

    def blob_digest(self, repo, digest):
        """(status, sha256 of the body streamed, length): the body is never held whole."""
        r = self.open("GET", "/v2/%s/blobs/%s" % (repo, digest))
        try:
            hs, n = hashlib.sha256(), 0
            while True:
                data = r.read1()
                if not data:
                    break
                hs.update(data)
                n += len(data)
            return r.status, "sha256:" + hs.hexdigest(), n
        finally:
            r.close()


def pull(client, repo, ref):
    """Pull a manifest or index and everything it references, checking every digest; returns
    {digest: size} of what was fetched. Raises AssertionError on any mismatch."""
    st, h, body = client.get_manifest(repo, ref)
    if st != 200:
        raise AssertionError("GET manifest %s:%s: %d %r" % (repo, ref, st, body[:300]))
    d = sha256(body)
    if ref.startswith("sha256:") and d != ref:
        raise AssertionError("manifest %s has digest %s" % (ref, d))
    if h.get("docker-content-digest") not in (None, d):
        raise AssertionError("Docker-Content-Digest %s != %s" % (h.get("docker-content-digest"), d))
    got = {d: len(body)}
    m = json.loads(body)
    for child in m.get("manifests", []):
        got.update(pull(client, repo, child["digest"]))
    for desc in ([m["config"]] if "config" in m else []) + m.get("layers", []):
        st, bd, n = client.blob_digest(repo, desc["digest"])
        if (st, bd, n) != (200, desc["digest"], desc["size"]):
            raise AssertionError("blob %s: status %d, digest %s, %d bytes (want %d)"
                                 % (desc["digest"], st, bd, n, desc["size"]))
        got[bd] = n
    return got


# ---------------------------------------------------------------------------------------------
# Content


def _layer(rng, size):
    """A real tar+gzip layer with one file of `size` random bytes: (blob, diff_id)."""
    raw = io.BytesIO()
    payload = rng.randbytes(size)
    with tarfile.open(fileobj=raw, mode="w") as t:
        ti = tarfile.TarInfo("data-%s.bin" % rng.randbytes(4).hex())
        ti.size, ti.mtime = size, 0
        t.addfile(ti, io.BytesIO(payload))
    tar = raw.getvalue()
    return gzip.compress(tar, mtime=0), "sha256:" + hashlib.sha256(tar).hexdigest()


class Image:
    """An OCI image: `manifest` (bytes), `digest`, `size`, `media_type`, `platform`,
    `config_digest`, `layer_digests`, and `blobs` ({digest: bytes} of what is held in memory;
    a big image's layer is in `big` instead)."""

    media_type = MT_MANIFEST

    def __init__(self, config, layers, platform, big=None):
        self.platform = platform
        self.big = big
        self.blobs = {sha256(config): config}
        descs = []
        for data, mt in layers:
            self.blobs[sha256(data)] = data
            descs.append({"mediaType": mt, "digest": sha256(data), "size": len(data)})
        if big is not None:
            descs.append({"mediaType": MT_LAYER_RAW, "digest": big.digest, "size": big.size})
        self.config = config
        self.config_digest = sha256(config)
        self.layer_digests = [d["digest"] for d in descs]
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": self.config_digest, "size": len(config)},
            "layers": descs}, indent=2).encode()
        self.digest = sha256(self.manifest)
        self.size = len(self.manifest)

    def descriptor(self):
        return {"mediaType": MT_MANIFEST, "digest": self.digest, "size": self.size,
                "platform": {"os": self.platform[0], "architecture": self.platform[1]}}


def _config(platform, diff_ids):
    return json.dumps({"architecture": platform[1], "os": platform[0],
                       "config": {"Cmd": ["/bin/true"]},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def make_image(n_layers=2, layer_size=2048, platform=("linux", "amd64"), seed=None):
    """An image of n_layers real tar+gzip layers of random bytes (seed: reproducible)."""
    rng = random.Random(seed if seed is not None else os.urandom(16))
    layers = [_layer(rng, layer_size) for _ in range(n_layers)]
    cfg = _config(platform, [d for _, d in layers])
    return Image(cfg, [(b, MT_LAYER) for b, _ in layers], platform)


class Index:
    """An OCI image index: `manifest`, `digest`, `size`, `media_type`, `images`."""

    media_type = MT_INDEX

    def __init__(self, images):
        self.images = list(images)
        self.manifest = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX,
                                    "manifests": [i.descriptor() for i in self.images]},
                                   indent=2).encode()
        self.digest = sha256(self.manifest)
        self.size = len(self.manifest)

    @property
    def blobs(self):
        out = {}
        for i in self.images:
            out.update(i.blobs)
        return out


def make_index(images=None, seed=None):
    """An index of the given images, by default two new ones (linux/amd64, linux/arm64)."""
    if images is None:
        images = [make_image(platform=("linux", a),
                             seed=None if seed is None else "%s-%s" % (seed, a))
                  for a in ("amd64", "arm64")]
    return Index(images)


class BigBlob:
    """N MiB of deterministic bytes, generated 1 MiB at a time (never held whole): `size`,
    `digest` (computed by streaming once), `chunks()`."""

    def __init__(self, mib, seed=0):
        self.mib, self.seed = int(mib), seed
        self.size = self.mib * MiB
        self._block = random.Random("bigblob-%s" % seed).randbytes(MiB)
        hs = hashlib.sha256()
        for c in self.chunks():
            hs.update(c)
        self.digest = "sha256:" + hs.hexdigest()

    def chunks(self):
        b = self._block
        for i in range(self.mib):
            r = (i * 7919 + 1) % MiB  # a different rotation per MiB: no two MiB are equal
            yield b[r:] + b[:r]


def push_image(client, repo, tag, image):
    """Blobs (monolithic), then the manifest under tag (or by digest when tag is None)."""
    for d, data in image.blobs.items():
        client.push_blob(repo, data)
    if getattr(image, "big", None) is not None:
        client.push_blob(repo, image.big.chunks(), image.big.digest, image.big.size)
    return client.put_manifest(repo, tag or image.digest, image.manifest, image.media_type)


def push_index(client, repo, tag, index):
    """Each image by digest, then the index under tag."""
    for img in index.images:
        push_image(client, repo, None, img)
    return client.put_manifest(repo, tag or index.digest, index.manifest, index.media_type)


def push_big_layer(client, repo, mib, seed=0):
    """One blob of mib MiB, streamed; returns the BigBlob (digest, size)."""
    big = BigBlob(mib, seed)
    client.push_blob(repo, big.chunks(), big.digest, big.size)
    return big


# ---------------------------------------------------------------------------------------------
# Upstreams


def _run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), p.stderr.decode()[-2000:]))
    return p.stdout


def htpasswd_line(user, password):
    """user:bcrypt-hash (cost 4: tests should not pay for bcrypt). Python's crypt module where
    it still exists (<= 3.12), else `htpasswd -B` (apache2-utils)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if h and h.startswith("$2"):
            return "%s:%s" % (user, h)
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        return _run(["htpasswd", "-nbB", "-C", "4", user, password]).decode().strip()
    raise RuntimeError("no bcrypt available: Python's crypt module is gone and htpasswd "
                       "(apache2-utils) is not installed")


class Upstream:
    """A running upstream registry: `kind` ("hub" or "distribution"), `registry`
    (harness.Registry), `host`, `port`, `user`/`password` (may push), `service` (hub)."""

    def __init__(self, kind, registry, user, password, config_text, service=None):
        self.kind, self.registry = kind, registry
        self.host, self.port = "127.0.0.1", registry.port
        self.user, self.password = user, password
        self.config_text = config_text
        self.service = service

    def url(self, path=""):
        return self.registry.url(path)

    def client(self, anonymous=False, port=None):
        """A RegistryClient for this upstream (or for port, e.g. a proxy in front of it), with
        the push credentials unless anonymous."""
        if anonymous:
            return RegistryClient(self.host, port or self.port)
        return RegistryClient(self.host, port or self.port, self.user, self.password)

    def seed(self, repo, tag, content=None):
        """Push content (an Image or Index; a new 2-layer Image by default); returns it."""
        content = content if content is not None else make_image()
        c = self.client()
        if isinstance(content, Index):
            push_index(c, repo, tag, content)
        else:
            push_image(c, repo, tag, content)
        return content

    def seed_index(self, repo, tag):
        return self.seed(repo, tag, make_index())

    def seed_big(self, repo, tag, mib, seed=0):
        """An image whose one layer is BigBlob(mib, seed), streamed; returns the Image (its
        `big` is the BigBlob)."""
        big = BigBlob(mib, seed)
        img = Image(_config(("linux", "amd64"), [big.digest]), [], ("linux", "amd64"), big=big)
        return self.seed(repo, tag, img)

    def log(self):
        return self.registry.log()

    def stop(self):
        """SIGTERM by PID (harness.Registry), wait; returns the exit status."""
        return self.registry.stop()


def start_hub_like(berth_binary, tmpdir, user="pusher", password="pusher-secret",
                   service="registry.docker.io", issuer="auth.docker.io"):
    """berth with token auth and its built-in issuer: anonymous pull of every repository (a
    Docker Hub lookalike: /v2/ answers 401 with a Bearer challenge whose realm is this berth's
    /auth/token), `user` may pull, push and delete everywhere."""
    d = os.path.join(tmpdir, "hub-like")
    os.makedirs(d)
    key = os.path.join(d, "issuer.key")
    _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-out", key])
    htp = os.path.join(d, "htpasswd")
    with open(htp, "w") as f:
        f.write(htpasswd_line(user, password) + "\n")
    text = HUB_CONFIG % {"htpasswd": htp, "service": service, "issuer": issuer, "key": key,
                         "user": user}
    cfg = os.path.join(d, "config.yml")
    with open(cfg, "w") as f:
        f.write(text)
    reg = Registry(berth_binary).start(config=cfg, data_dir=d)
    return Upstream("hub", reg, user, password, text, service)


HUB_CONFIG = """version: 0.1
# http.addr and storage come from REGISTRY_HTTP_ADDR / REGISTRY_STORAGE_* (harness.Registry)
auth:
  htpasswd:
    realm: hub-like
    path: %(htpasswd)s
  token:
    # realm: defaults to http://<http.addr>/auth/token
    service: %(service)s
    issuer: %(issuer)s
berth:
  tokenissuer:
    enabled: true
    key: %(key)s
    expiry: 5m
  access:
    - users: [%(user)s]
      repositories: ["**"]
      actions: [pull, push, delete]
    - users: [anonymous, "*"]
      repositories: ["**"]
      actions: [pull]
"""


def start_distribution_htpasswd(tmpdir, user, password, binary=DISTRIBUTION):
    """Distribution 2.8 (docker-registry serve) with htpasswd Basic auth on 127.0.0.1 and an
    ephemeral port, storage under tmpdir; `user` may do everything, anonymous nothing."""
    d = os.path.join(tmpdir, "distribution")
    os.makedirs(d)
    htp = os.path.join(d, "htpasswd")
    with open(htp, "w") as f:
        f.write(htpasswd_line(user, password) + "\n")
    port = free_port()
    text = ("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n"
            "    rootdirectory: %s/store\n  delete:\n    enabled: true\n"
            "http:\n  addr: 127.0.0.1:%d\n"
            "auth:\n  htpasswd:\n    realm: distribution\n    path: %s\n" % (d, port, htp))
    cfg = os.path.join(d, "config.yml")
    with open(cfg, "w") as f:
        f.write(text)
    reg = Registry(binary, kind="distribution").start(config=cfg, port=port, data_dir=d)
    return Upstream("distribution", reg, user, password, text)
