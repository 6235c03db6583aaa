/* loadgen.c — the benchmark's HTTP load generator for the push/pull figures of bench/run.sh.
 *
 * Raw sockets, HTTP/1.1 keep-alive, one connection per thread, bodies sent with sendfile() from
 * a tmpfs file (big blobs) or from memory (small blobs, manifests), so the client costs far less
 * CPU than the server it measures. Every response is checked (status code, Docker-Content-Digest,
 * byte counts, and for `pull -v` the sha256 of the bytes); a wrong answer is an error, never a
 * fast number. Each command prints one JSON object on stdout and exits 1 if any request failed.
 *
 *   loadgen gen    FILE SIZE                       random file (fast PRNG), fdatasync; prints digest
 *   loadgen push   -a HOST:PORT -r REPO -f FILE -d DIGEST -m mono|single|chunked [-k CHUNKS]
 *   loadgen pull   -a HOST:PORT -r REPO -d DIGEST -s SIZE -c CONC [-v]
 *                  (-v: sha256 of the body while reading; reports the time to the first response
 *                  byte and to the first body byte, the slowest stream's)
 *   loadgen blobs  -a HOST:PORT -r REPO -n N -s SIZE -c CONC -m single|two
 *   loadgen tags   -a HOST:PORT -r REPO -n N -c CONC -f MANIFEST -t MEDIATYPE [-p PREFIX] [-o FIRST]
 *   loadgen distfs TAGSDIR DIGEST PREFIX FIRST N   write N tags into Distribution's layout
 *   loadgen hammer -a HOST:PORT -M METHOD -P PATH [-H 'Name: v\nName: v'] -c CONNS -T THREADS -D SECS
 *                  [-S STATUS] [-d DIGEST]        closed-loop req/s + latency percentiles, like wrk
 *
 * Build: cc -O2 -o loadgen loadgen.c -lcrypto -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- utilities */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* xoshiro256** — fast, good enough for incompressible test data. */
struct rng {
	uint64_t s[4];
};
static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}
static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}
static void rng_seed(struct rng *r)
{
	int fd = open("/dev/urandom", O_RDONLY);
	if (fd < 0 || read(fd, r->s, sizeof r->s) != (ssize_t)sizeof r->s) die("urandom");
	close(fd);
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}
static void rng_fill(struct rng *r, void *buf, size_t n)
{
	uint64_t *p = buf;
	size_t i;
	for (i = 0; i + 8 <= n; i += 8) *p++ = rng_next(r);
	if (i < n) {
		uint64_t v = rng_next(r);
		memcpy((char *)buf + i, &v, n - i);
	}
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
	static const char h[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = h[d[i] >> 4];
		out[2 * i + 1] = h[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256_digest(const void *buf, size_t n, char out[80])
{
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL);
	strcpy(out, "sha256:");
	hex(md, 32, out + 7);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n) return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

/* ---------------------------------------------------------------- HTTP client */

static char g_host[128];
static int g_port;
static char g_hostport[160];

struct conn {
	int fd;
	char rbuf[65536];
	size_t rlen, rpos;
	int reused; /* a request already went through this connection */
};

struct resp {
	int status;
	long long clen; /* -1: not given */
	int chunked, close;
	char location[4096];
	char digest[160];
	char range[128];
	char body[2048]; /* first bytes, for error messages */
	size_t body_kept;
	long long body_total;
	double t_head; /* now() when the status line had arrived */
	double t_body; /* now() when the first body byte had arrived (0: none) */
};

struct body {
	const void *mem;
	size_t len;
	int fd; /* >= 0: send len bytes from fd at off with sendfile */
	off_t off;
};

static void conn_close(struct conn *c)
{
	if (c->fd >= 0) close(c->fd);
	c->fd = -1;
	c->rlen = c->rpos = 0;
	c->reused = 0;
}

static int conn_open(struct conn *c)
{
	struct sockaddr_in sa;
	int one = 1;
	c->rlen = c->rpos = 0;
	c->reused = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)g_port);
	if (inet_pton(AF_INET, g_host, &sa.sin_addr) != 1) die("bad address %s", g_host);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static int send_all(int fd, const void *buf, size_t n, int more)
{
	const char *p = buf;
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
		if (w < 0) {
			if (errno == EINTR) continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_file(int sock, int fd, off_t off, size_t n)
{
	while (n) {
		ssize_t w = sendfile(sock, fd, &off, n > (1u << 30) ? (1u << 30) : n);
		if (w < 0) {
			if (errno == EINTR) continue;
			return -1;
		}
		if (w == 0) return -1;
		n -= (size_t)w;
	}
	return 0;
}

/* Buffered read of up to n bytes; returns bytes read, 0 on EOF, -1 on error. */
static ssize_t conn_read(struct conn *c, void *dst, size_t n)
{
	if (c->rpos < c->rlen) {
		size_t k = c->rlen - c->rpos;
		if (k > n) k = n;
		memcpy(dst, c->rbuf + c->rpos, k);
		c->rpos += k;
		return (ssize_t)k;
	}
	for (;;) {
		ssize_t r = recv(c->fd, dst, n, 0);
		if (r < 0 && errno == EINTR) continue;
		return r;
	}
}

/* Reads a line (CRLF) into out; returns its length or -1. */
static ssize_t conn_line(struct conn *c, char *out, size_t max)
{
	size_t n = 0;
	for (;;) {
		if (c->rpos == c->rlen) {
			ssize_t r;
			c->rpos = c->rlen = 0;
			do r = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
			while (r < 0 && errno == EINTR);
			if (r <= 0) return -1;
			c->rlen = (size_t)r;
		}
		char ch = c->rbuf[c->rpos++];
		if (ch == '\n') {
			if (n && out[n - 1] == '\r') n--;
			out[n] = '\0';
			return (ssize_t)n;
		}
		if (n + 1 < max) out[n++] = ch;
	}
}

struct sink {
	EVP_MD_CTX *md; /* hash the body when set */
	char *big;      /* scratch for large bodies */
	size_t big_len;
};

static void keep_body(struct resp *r, struct sink *s, const char *p, size_t n)
{
	if (r->body_kept + 1 < sizeof r->body) {
		size_t k = sizeof r->body - 1 - r->body_kept;
		if (k > n) k = n;
		memcpy(r->body + r->body_kept, p, k);
		r->body_kept += k;
		r->body[r->body_kept] = '\0';
	}
	if (s && s->md) EVP_DigestUpdate(s->md, p, n);
	if (n && !r->body_total) r->t_body = now();
	r->body_total += (long long)n;
}

static int read_n(struct conn *c, struct resp *r, struct sink *s, long long n)
{
	char small[16384];
	char *buf = s && s->big ? s->big : small;
	size_t cap = s && s->big ? s->big_len : sizeof small;
	while (n > 0) {
		ssize_t k = conn_read(c, buf, n < (long long)cap ? (size_t)n : cap);
		if (k <= 0) return -1;
		keep_body(r, s, buf, (size_t)k);
		n -= k;
	}
	return 0;
}

static int read_response(struct conn *c, struct resp *r, int is_head, struct sink *s)
{
	char line[8192];
	memset(r, 0, sizeof *r);
	r->clen = -1;
	if (conn_line(c, line, sizeof line) < 0) return -1;
	r->t_head = now();
	if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12) return -1;
	r->status = atoi(line + 9);
	if (strncmp(line, "HTTP/1.0", 8) == 0) r->close = 1;
	for (;;) {
		ssize_t n = conn_line(c, line, sizeof line);
		if (n < 0) return -1;
		if (n == 0) break;
		char *colon = strchr(line, ':');
		if (!colon) continue;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t') v++;
		if (!strcasecmp(line, "Content-Length")) r->clen = atoll(v);
		else if (!strcasecmp(line, "Transfer-Encoding")) r->chunked = strcasestr(v, "chunked") != NULL;
		else if (!strcasecmp(line, "Connection")) r->close = strcasestr(v, "close") != NULL;
		else if (!strcasecmp(line, "Location")) snprintf(r->location, sizeof r->location, "%s", v);
		else if (!strcasecmp(line, "Docker-Content-Digest")) snprintf(r->digest, sizeof r->digest, "%s", v);
		else if (!strcasecmp(line, "Range")) snprintf(r->range, sizeof r->range, "%s", v);
	}
	if (is_head || r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200))
		return 0;
	if (r->chunked) {
		for (;;) {
			if (conn_line(c, line, sizeof line) < 0) return -1;
			long long sz = strtoll(line, NULL, 16);
			if (sz == 0) {
				/* trailers until an empty line */
				for (;;) {
					ssize_t n = conn_line(c, line, sizeof line);
					if (n < 0) return -1;
					if (n == 0) break;
				}
				return 0;
			}
			if (read_n(c, r, s, sz) < 0) return -1;
			if (conn_line(c, line, sizeof line) < 0) return -1;
		}
	}
	if (r->clen >= 0) return read_n(c, r, s, r->clen);
	/* no length: until close */
	r->close = 1;
	for (;;) {
		char buf[16384];
		ssize_t k = conn_read(c, buf, sizeof buf);
		if (k < 0) return -1;
		if (k == 0) return 0;
		keep_body(r, s, buf, (size_t)k);
	}
}

/* One request on c (opened on demand). If a reused keep-alive connection turns out closed
 * before any response byte, reconnects and retries once. Returns 0 when a response was read. */
static int http_do(struct conn *c, const char *method, const char *path, const char *extra,
		   const struct body *b, struct resp *r, struct sink *s)
{
	char head[8192];
	int is_head = !strcmp(method, "HEAD");
	int has_body = b != NULL;
	r->status = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (c->fd < 0 && conn_open(c) < 0) return -1;
		int was_reused = c->reused;
		int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth-bench\r\n%s",
				 method, path, g_hostport, extra ? extra : "");
		if (has_body)
			n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", b->len);
		n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
		if (n >= (int)sizeof head) die("request head too long");
		int ok;
		if (has_body && b->fd < 0 && b->len < 65536) {
			struct iovec iov[2] = {{head, (size_t)n}, {(void *)b->mem, b->len}};
			size_t total = (size_t)n + b->len, sent = 0;
			ok = 1;
			while (sent < total) {
				struct msghdr mh = {0};
				struct iovec v[2];
				int cnt = 0;
				size_t skip = sent;
				for (int i = 0; i < 2; i++) {
					if (skip >= iov[i].iov_len) {
						skip -= iov[i].iov_len;
						continue;
					}
					v[cnt].iov_base = (char *)iov[i].iov_base + skip;
					v[cnt].iov_len = iov[i].iov_len - skip;
					skip = 0;
					cnt++;
				}
				mh.msg_iov = v;
				mh.msg_iovlen = (size_t)cnt;
				ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
				if (w < 0) {
					if (errno == EINTR) continue;
					ok = 0;
					break;
				}
				sent += (size_t)w;
			}
		} else {
			ok = send_all(c->fd, head, (size_t)n, has_body) == 0;
			if (ok && has_body) {
				if (b->fd >= 0) ok = send_file(c->fd, b->fd, b->off, b->len) == 0;
				else ok = send_all(c->fd, b->mem, b->len, 0) == 0;
			}
		}
		r->status = 0;
		/* a server may answer (and close) before taking the whole body: read that answer */
		if (read_response(c, r, is_head, s) == 0) {
			if (!ok) r->close = 1;
			c->reused = 1;
			if (r->close) conn_close(c);
			return 0;
		}
		int nothing = r->status == 0;
		conn_close(c);
		if (!(was_reused && nothing)) return -1;
	}
	return -1;
}

/* Location may be absolute (Distribution) or a path (berth): keep path + query. */
static void loc_path(const char *loc, char *out, size_t max)
{
	const char *p = loc;
	if (!strncmp(p, "http://", 7) || !strncmp(p, "https://", 8)) {
		p = strstr(p, "://") + 3;
		p = strchr(p, '/');
		if (!p) p = "/";
	}
	snprintf(out, max, "%s", p);
}

static void add_digest(const char *path, const char *digest, char *out, size_t max)
{
	snprintf(out, max, "%s%sdigest=%s", path, strchr(path, '?') ? "&" : "?", digest);
}

/* ---------------------------------------------------------------- errors */

static atomic_long g_errors;
static pthread_mutex_t g_err_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_first_error[1024];

static void report(const char *method, const char *path, const struct resp *r, const char *what)
{
	long n = atomic_fetch_add(&g_errors, 1);
	char msg[1024];
	snprintf(msg, sizeof msg, "%s %.200s -> %s%d %s%.300s", method, path,
		 r && r->status ? "" : "no response ", r ? r->status : 0, what,
		 r && r->body_kept ? r->body : "");
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f) *p = ' ';
	pthread_mutex_lock(&g_err_mu);
	if (!g_first_error[0]) snprintf(g_first_error, sizeof g_first_error, "%s", msg);
	pthread_mutex_unlock(&g_err_mu);
	if (n < 5) fprintf(stderr, "loadgen: ERROR %s\n", msg);
}

static int finish_json(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("{");
	vprintf(fmt, ap);
	printf(",\"errors\":%ld,\"first_error\":\"%s\"}\n", atomic_load(&g_errors), g_first_error);
	va_end(ap);
	fflush(stdout);
	return atomic_load(&g_errors) ? 1 : 0;
}

/* ---------------------------------------------------------------- gen */

static int cmd_gen(int argc, char **argv)
{
	if (argc != 3) die("usage: gen FILE SIZE");
	long long size = atoll(argv[2]);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) die("open %s: %s", argv[1], strerror(errno));
	struct rng r;
	rng_seed(&r);
	size_t cap = 4u << 20;
	char *buf = malloc(cap);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (long long left = size; left > 0;) {
		size_t n = left < (long long)cap ? (size_t)left : cap;
		rng_fill(&r, buf, n);
		EVP_DigestUpdate(md, buf, n);
		for (size_t off = 0; off < n;) {
			ssize_t k = write(fd, buf + off, n - off);
			if (k < 0 && errno == EINTR) continue;
			if (k <= 0) die("write %s: %s", argv[1], strerror(errno));
			off += (size_t)k;
		}
		left -= (long long)n;
	}
	if (fdatasync(fd) < 0) die("fdatasync: %s", strerror(errno));
	close(fd);
	unsigned char d[32];
	unsigned dl;
	char hx[65];
	EVP_DigestFinal_ex(md, d, &dl);
	hex(d, 32, hx);
	printf("sha256:%s\n", hx);
	return 0;
}

/* ---------------------------------------------------------------- push (one big blob) */

static int cmd_push(const char *repo, const char *file, const char *digest, const char *mode,
		    int chunks)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) die("open %s: %s", file, strerror(errno));
	size_t size = (size_t)st.st_size;
	struct conn c = {.fd = -1};
	struct resp r;
	char path[8192], loc[4096];
	const char *ct = "Content-Type: application/octet-stream\r\n";
	int ok = 0;
	double t0 = now(), t1;

	if (!strcmp(mode, "single")) {
		snprintf(path, sizeof path, "/v2/%s/blobs/uploads/?digest=%s", repo, digest);
		struct body b = {.len = size, .fd = fd, .off = 0};
		if (http_do(&c, "POST", path, ct, &b, &r, NULL) < 0) report("POST", path, NULL, "");
		else if (r.status != 201) report("POST", path, &r, "(want 201) ");
		else if (strcmp(r.digest, digest)) report("POST", path, &r, "(wrong Docker-Content-Digest) ");
		else ok = 1;
	} else {
		snprintf(path, sizeof path, "/v2/%s/blobs/uploads/", repo);
		struct body empty = {.mem = "", .len = 0, .fd = -1};
		if (http_do(&c, "POST", path, NULL, &empty, &r, NULL) < 0) {
			report("POST", path, NULL, "");
			goto done;
		}
		if (r.status != 202 || !r.location[0]) {
			report("POST", path, &r, "(want 202 + Location) ");
			goto done;
		}
		loc_path(r.location, loc, sizeof loc);
		if (!strcmp(mode, "chunked")) {
			size_t per = (size + (size_t)chunks - 1) / (size_t)chunks, off = 0;
			for (int i = 0; i < chunks && off < size; i++) {
				size_t n = size - off < per ? size - off : per;
				char hdr[256];
				snprintf(hdr, sizeof hdr, "%sContent-Range: %zu-%zu\r\n", ct, off, off + n - 1);
				struct body b = {.len = n, .fd = fd, .off = (off_t)off};
				if (http_do(&c, "PATCH", loc, hdr, &b, &r, NULL) < 0) {
					report("PATCH", loc, NULL, "");
					goto done;
				}
				if (r.status != 202 || !r.location[0]) {
					report("PATCH", loc, &r, "(want 202 + Location) ");
					goto done;
				}
				char want[64];
				snprintf(want, sizeof want, "0-%zu", off + n - 1);
				if (strcmp(r.range, want)) {
					char what[256];
					snprintf(what, sizeof what, "(Range %s, want %s) ", r.range, want);
					report("PATCH", loc, &r, what);
					goto done;
				}
				loc_path(r.location, loc, sizeof loc);
				off += n;
			}
			add_digest(loc, digest, path, sizeof path);
			if (http_do(&c, "PUT", path, NULL, &empty, &r, NULL) < 0) {
				report("PUT", path, NULL, "");
				goto done;
			}
		} else {
			add_digest(loc, digest, path, sizeof path);
			struct body b = {.len = size, .fd = fd, .off = 0};
			if (http_do(&c, "PUT", path, ct, &b, &r, NULL) < 0) {
				report("PUT", path, NULL, "");
				goto done;
			}
		}
		if (r.status != 201) report("PUT", path, &r, "(want 201) ");
		else if (strcmp(r.digest, digest)) report("PUT", path, &r, "(wrong Docker-Content-Digest) ");
		else ok = 1;
	}
done:
	t1 = now();
	conn_close(&c);
	close(fd);
	return finish_json("\"ok\":%d,\"bytes\":%zu,\"secs\":%.6f,\"bytes_per_s\":%.1f", ok, size,
			   t1 - t0, ok ? (double)size / (t1 - t0) : 0.0);
}

/* ---------------------------------------------------------------- pull */

struct pull_arg {
	const char *path;
	long long size;
	const char *digest;
	int verify;
	long long got;
	int ok;
	double head_s, body_s; /* time to the status line and to the first body byte */
};

static void *pull_thread(void *vp)
{
	struct pull_arg *a = vp;
	struct conn c = {.fd = -1};
	struct resp r;
	struct sink s = {0};
	s.big_len = 1u << 20;
	s.big = malloc(s.big_len);
	if (a->verify) {
		s.md = EVP_MD_CTX_new();
		EVP_DigestInit_ex(s.md, EVP_sha256(), NULL);
	}
	double t0 = now();
	if (http_do(&c, "GET", a->path, NULL, NULL, &r, &s) < 0) {
		report("GET", a->path, NULL, "");
	} else if (r.status != 200) {
		report("GET", a->path, &r, "(want 200) ");
	} else if (r.body_total != a->size || (r.clen >= 0 && r.clen != a->size)) {
		char what[128];
		snprintf(what, sizeof what, "(got %lld bytes, want %lld) ", r.body_total, a->size);
		report("GET", a->path, &r, what);
	} else if (strcmp(r.digest, a->digest)) {
		report("GET", a->path, &r, "(wrong Docker-Content-Digest) ");
	} else {
		a->ok = 1;
		if (a->verify) {
			unsigned char d[32];
			unsigned dl;
			char hx[80] = "sha256:";
			EVP_DigestFinal_ex(s.md, d, &dl);
			hex(d, 32, hx + 7);
			if (strcmp(hx, a->digest)) {
				a->ok = 0;
				report("GET", a->path, &r, "(body sha256 differs from digest) ");
			}
		}
	}
	a->got = r.body_total;
	a->head_s = r.t_head > 0 ? r.t_head - t0 : 0;
	a->body_s = r.t_body > 0 ? r.t_body - t0 : 0;
	if (s.md) EVP_MD_CTX_free(s.md);
	free(s.big);
	conn_close(&c);
	return NULL;
}

static int cmd_pull(const char *repo, const char *digest, long long size, int conc, int verify)
{
	char path[1024];
	snprintf(path, sizeof path, "/v2/%s/blobs/%s", repo, digest);
	pthread_t th[64];
	struct pull_arg a[64];
	if (conc < 1 || conc > 64) die("conc 1..64");
	double t0 = now();
	for (int i = 0; i < conc; i++) {
		a[i] = (struct pull_arg){.path = path, .size = size, .digest = digest, .verify = verify};
		pthread_create(&th[i], NULL, pull_thread, &a[i]);
	}
	long long total = 0;
	int ok = 1;
	double head = 0, body = 0;
	for (int i = 0; i < conc; i++) {
		pthread_join(th[i], NULL);
		total += a[i].got;
		ok &= a[i].ok;
		if (a[i].head_s > head) head = a[i].head_s;
		if (a[i].body_s > body) body = a[i].body_s;
	}
	double secs = now() - t0;
	return finish_json("\"ok\":%d,\"streams\":%d,\"bytes\":%lld,\"secs\":%.6f,\"bytes_per_s\":%.1f,"
			   "\"first_byte_s\":%.6f,\"first_body_byte_s\":%.6f",
			   ok, conc, total, secs, ok ? (double)total / secs : 0.0, head, body);
}

/* ---------------------------------------------------------------- many small requests */

struct work {
	int kind; /* 0 blobs single, 1 blobs two-step, 2 tags */
	const char *repo;
	long n;
	atomic_long next;
	/* blobs */
	size_t size;
	char *data;          /* n * size */
	char (*digests)[80]; /* n */
	/* tags */
	const char *manifest;
	size_t manifest_len;
	char manifest_digest[80];
	const char *media_type;
	const char *prefix;
	long first;
	double *lat; /* n, seconds per operation */
	atomic_long done_ok;
	int verify_pass; /* blobs: HEAD each one afterwards */
};

static void one_blob(struct work *w, struct conn *c, long i)
{
	char path[8192], loc[4096];
	struct resp r;
	const char *dg = w->digests[i];
	struct body b = {.mem = w->data + (size_t)i * w->size, .len = w->size, .fd = -1};
	const char *ct = "Content-Type: application/octet-stream\r\n";
	if (w->verify_pass) {
		snprintf(path, sizeof path, "/v2/%s/blobs/%s", w->repo, dg);
		if (http_do(c, "HEAD", path, NULL, NULL, &r, NULL) < 0) report("HEAD", path, NULL, "");
		else if (r.status != 200) report("HEAD", path, &r, "(want 200) ");
		else if (r.clen != (long long)w->size) report("HEAD", path, &r, "(wrong Content-Length) ");
		else if (strcmp(r.digest, dg)) report("HEAD", path, &r, "(wrong Docker-Content-Digest) ");
		else atomic_fetch_add(&w->done_ok, 1);
		return;
	}
	if (w->kind == 0) {
		snprintf(path, sizeof path, "/v2/%s/blobs/uploads/?digest=%s", w->repo, dg);
		if (http_do(c, "POST", path, ct, &b, &r, NULL) < 0) return report("POST", path, NULL, "");
		if (r.status != 201) return report("POST", path, &r, "(want 201) ");
	} else {
		struct body empty = {.mem = "", .len = 0, .fd = -1};
		snprintf(path, sizeof path, "/v2/%s/blobs/uploads/", w->repo);
		if (http_do(c, "POST", path, NULL, &empty, &r, NULL) < 0) return report("POST", path, NULL, "");
		if (r.status != 202 || !r.location[0]) return report("POST", path, &r, "(want 202 + Location) ");
		loc_path(r.location, loc, sizeof loc);
		add_digest(loc, dg, path, sizeof path);
		if (http_do(c, "PUT", path, ct, &b, &r, NULL) < 0) return report("PUT", path, NULL, "");
		if (r.status != 201) return report("PUT", path, &r, "(want 201) ");
	}
	if (strcmp(r.digest, dg)) return report("PUT/POST", path, &r, "(wrong Docker-Content-Digest) ");
	atomic_fetch_add(&w->done_ok, 1);
}

static void one_tag(struct work *w, struct conn *c, long i)
{
	char path[1024], hdr[256];
	struct resp r;
	struct body b = {.mem = w->manifest, .len = w->manifest_len, .fd = -1};
	snprintf(path, sizeof path, "/v2/%s/manifests/%s%06ld", w->repo, w->prefix, w->first + i);
	snprintf(hdr, sizeof hdr, "Content-Type: %s\r\n", w->media_type);
	if (http_do(c, "PUT", path, hdr, &b, &r, NULL) < 0) return report("PUT", path, NULL, "");
	if (r.status != 201) return report("PUT", path, &r, "(want 201) ");
	if (strcmp(r.digest, w->manifest_digest))
		return report("PUT", path, &r, "(wrong Docker-Content-Digest) ");
	atomic_fetch_add(&w->done_ok, 1);
}

static void *work_thread(void *vp)
{
	struct work *w = vp;
	struct conn c = {.fd = -1};
	for (;;) {
		long i = atomic_fetch_add(&w->next, 1);
		if (i >= w->n) break;
		double t0 = now();
		if (w->kind == 2) one_tag(w, &c, i);
		else one_blob(w, &c, i);
		if (w->lat) w->lat[i] = now() - t0;
	}
	conn_close(&c);
	return NULL;
}

static double run_pool(struct work *w, int conc)
{
	pthread_t th[256];
	if (conc < 1 || conc > 256) die("conc 1..256");
	atomic_store(&w->next, 0);
	atomic_store(&w->done_ok, 0);
	double t0 = now();
	for (int i = 0; i < conc; i++) pthread_create(&th[i], NULL, work_thread, w);
	for (int i = 0; i < conc; i++) pthread_join(th[i], NULL);
	return now() - t0;
}

static int finish_pool(struct work *w, double secs, const char *unit)
{
	long ok = atomic_load(&w->done_ok);
	qsort(w->lat, (size_t)w->n, sizeof *w->lat, cmp_double);
	return finish_json("\"ok\":%ld,\"n\":%ld,\"secs\":%.6f,\"%s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
			   "\"max_ms\":%.3f",
			   ok, w->n, secs, unit, ok == w->n ? (double)w->n / secs : 0.0,
			   pct(w->lat, (size_t)w->n, 0.50) * 1e3, pct(w->lat, (size_t)w->n, 0.99) * 1e3,
			   w->lat[w->n - 1] * 1e3);
}

static int cmd_blobs(const char *repo, long n, size_t size, int conc, const char *mode)
{
	struct work w = {0};
	w.kind = !strcmp(mode, "single") ? 0 : 1;
	w.repo = repo;
	w.n = n;
	w.size = size;
	w.data = malloc((size_t)n * size);
	w.digests = malloc((size_t)n * sizeof *w.digests);
	w.lat = calloc((size_t)n, sizeof *w.lat);
	if (!w.data || !w.digests || !w.lat) die("out of memory");
	struct rng r;
	rng_seed(&r);
	rng_fill(&r, w.data, (size_t)n * size);
	for (long i = 0; i < n; i++) sha256_digest(w.data + (size_t)i * size, size, w.digests[i]);
	double secs = run_pool(&w, conc);
	long pushed = atomic_load(&w.done_ok);
	/* verification pass (not timed): every blob is there with the right size and digest */
	w.verify_pass = 1;
	double *lat = w.lat;
	w.lat = NULL;
	run_pool(&w, conc);
	long verified = atomic_load(&w.done_ok);
	w.lat = lat;
	atomic_store(&w.done_ok, pushed < verified ? pushed : verified);
	int rc = finish_pool(&w, secs, "per_s");
	free(w.data);
	free(w.digests);
	free(w.lat);
	return rc;
}

static int cmd_tags(const char *repo, long n, int conc, const char *file, const char *mt,
		    const char *prefix, long first)
{
	struct work w = {0};
	FILE *f = fopen(file, "rb");
	static char buf[1 << 20];
	if (!f) die("open %s", file);
	size_t len = fread(buf, 1, sizeof buf, f);
	fclose(f);
	w.kind = 2;
	w.repo = repo;
	w.n = n;
	w.manifest = buf;
	w.manifest_len = len;
	sha256_digest(buf, len, w.manifest_digest);
	w.media_type = mt;
	w.prefix = prefix;
	w.first = first;
	w.lat = calloc((size_t)n, sizeof *w.lat);
	double secs = run_pool(&w, conc);
	int rc = finish_pool(&w, secs, "per_s");
	free(w.lat);
	return rc;
}


/* ---------------------------------------------------------------- hammer (wrk-like, with HEAD) */

/* wrk 4.1 cannot do HEAD: its parser waits for a body of Content-Length bytes. This is a
 * closed-loop generator like wrk: C keep-alive connections spread over T epoll threads, each
 * sending the next request as soon as the previous response is complete, for D seconds.
 * Every response must have the expected status and, when given, Docker-Content-Digest. */

#include <sys/epoll.h>

struct hconn {
	int fd;
	char buf[16384];
	size_t len;
	long long need; /* body bytes still to read; -1 while in headers */
	double t0;
};

struct hammer {
	const char *req;
	size_t req_len;
	int is_head, want_status;
	const char *want_digest;
	double until;
	int nconn;
	/* results */
	long ok, bad;
	float *lat; /* microseconds */
	size_t nlat, caplat;
};

static void h_record(struct hammer *h, double us)
{
	if (h->nlat == h->caplat) {
		h->caplat = h->caplat ? h->caplat * 2 : 65536;
		h->lat = realloc(h->lat, h->caplat * sizeof *h->lat);
		if (!h->lat) die("out of memory");
	}
	h->lat[h->nlat++] = (float)us;
}

static int h_send(struct hammer *h, struct hconn *hc)
{
	hc->t0 = now();
	hc->len = 0;
	hc->need = -1;
	return send_all(hc->fd, h->req, h->req_len, 0);
}

/* Parses a complete header block in hc->buf[0..hlen); returns 0 if acceptable. */
static int h_check(struct hammer *h, struct hconn *hc, size_t hlen, long long *clen)
{
	char *p = hc->buf;
	int status = (hlen > 12 && !strncmp(p, "HTTP/1.", 7)) ? atoi(p + 9) : 0;
	*clen = 0;
	char *cl = strcasestr(p, "\r\nContent-Length:");
	if (cl && cl < p + hlen) *clen = atoll(cl + 17);
	if (strcasestr(p, "\r\nTransfer-Encoding: chunked")) return -1; /* not expected here */
	if (status != h->want_status) {
		if (h->bad < 3) fprintf(stderr, "loadgen: ERROR hammer: status %d: %.200s\n", status, p);
		return -1;
	}
	if (h->want_digest) {
		char *d = strcasestr(p, "\r\nDocker-Content-Digest:");
		if (!d || d > p + hlen) return -1;
		d += 24;
		while (*d == ' ') d++;
		if (strncmp(d, h->want_digest, strlen(h->want_digest))) return -1;
	}
	return 0;
}

static void *hammer_thread(void *vp)
{
	struct hammer *h = vp;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct hconn *cs = calloc((size_t)h->nconn, sizeof *cs);
	struct epoll_event ev, evs[256];
	for (int i = 0; i < h->nconn; i++) {
		struct conn c = {.fd = -1};
		if (conn_open(&c) < 0) die("connect: %s", strerror(errno));
		cs[i].fd = c.fd;
		ev.events = EPOLLIN;
		ev.data.ptr = &cs[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	for (int i = 0; i < h->nconn; i++)
		if (h_send(h, &cs[i]) < 0) die("send: %s", strerror(errno));
	int live = h->nconn;
	while (live > 0) {
		int n = epoll_wait(ep, evs, 256, 1000);
		if (n < 0 && errno == EINTR) continue;
		double t = now();
		for (int k = 0; k < n; k++) {
			struct hconn *hc = evs[k].data.ptr;
			if (hc->fd < 0) continue;
			ssize_t r = recv(hc->fd, hc->buf + hc->len, sizeof hc->buf - 1 - hc->len, 0);
			if (r <= 0) {
				if (r < 0 && errno == EINTR) continue;
				h->bad++;
				if (h->bad < 3) fprintf(stderr, "loadgen: ERROR hammer: connection closed\n");
				close(hc->fd);
				hc->fd = -1;
				live--;
				continue;
			}
			hc->len += (size_t)r;
			hc->buf[hc->len] = '\0';
			if (hc->need < 0) {
				char *e = strstr(hc->buf, "\r\n\r\n");
				if (!e) {
					if (hc->len >= sizeof hc->buf - 1) die("response head too large");
					continue;
				}
				size_t hlen = (size_t)(e - hc->buf) + 4;
				long long clen;
				if (h_check(h, hc, hlen, &clen) < 0) h->bad++;
				else h->ok++;
				if (h->is_head) clen = 0;
				hc->need = clen - (long long)(hc->len - hlen);
				if (hc->need < 0) die("pipelined bytes past the response (server bug?)");
				hc->len = 0;
			} else {
				hc->need -= (long long)hc->len;
				hc->len = 0;
				if (hc->need < 0) die("bytes past the response body (server bug?)");
			}
			if (hc->need == 0) {
				h_record(h, (t - hc->t0) * 1e6);
				if (t >= h->until) {
					close(hc->fd);
					hc->fd = -1;
					live--;
				} else if (h_send(h, hc) < 0) {
					h->bad++;
					close(hc->fd);
					hc->fd = -1;
					live--;
				}
			}
		}
		if (n == 0 && now() > h->until + 10) die("hammer: responses stalled for 10 s");
	}
	close(ep);
	free(cs);
	return NULL;
}

static int cmd_hammer(const char *method, const char *path, const char *hdrs, int conns,
		      int threads, double secs, int want_status, const char *want_digest)
{
	static char req[8192];
	int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth-bench\r\n%s\r\n",
			 method, path, g_hostport, hdrs ? hdrs : "");
	if (n >= (int)sizeof req) die("request too long");
	if (threads < 1 || threads > 16 || conns < threads) die("bad -c/-T");
	struct hammer hs[16];
	pthread_t th[16];
	double t0 = now();
	for (int i = 0; i < threads; i++) {
		hs[i] = (struct hammer){.req = req, .req_len = (size_t)n, .is_head = !strcmp(method, "HEAD"),
					.want_status = want_status, .want_digest = want_digest,
					.until = t0 + secs, .nconn = conns / threads + (i < conns % threads)};
		pthread_create(&th[i], NULL, hammer_thread, &hs[i]);
	}
	long ok = 0, bad = 0;
	size_t nl = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		ok += hs[i].ok;
		bad += hs[i].bad;
		nl += hs[i].nlat;
	}
	double el = now() - t0;
	double *all = malloc((nl ? nl : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < threads; i++) {
		for (size_t j = 0; j < hs[i].nlat; j++) all[k++] = hs[i].lat[j];
		free(hs[i].lat);
	}
	qsort(all, nl, sizeof *all, cmp_double);
	if (bad) {
		atomic_fetch_add(&g_errors, bad);
		snprintf(g_first_error, sizeof g_first_error, "%s %s: %ld bad responses", method, path, bad);
	}
	int rc = finish_json("\"ok\":%ld,\"secs\":%.6f,\"per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f",
			     ok, el, (double)ok / el, pct(all, nl, 0.5) / 1e3, pct(all, nl, 0.99) / 1e3,
			     nl ? all[nl - 1] / 1e3 : 0.0);
	free(all);
	return rc;
}


/* ---------------------------------------------------------------- distfs */

/* Writes N tags straight into Distribution's filesystem layout (what a tag PUT leaves behind):
 *   <repos>/<name>/_manifests/tags/<tag>/current/link               = digest
 *   <repos>/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link    = digest
 * The manifest revision itself must already have been pushed over HTTP. */
static void mkdir_ok(const char *p)
{
	if (mkdir(p, 0755) < 0 && errno != EEXIST) die("mkdir %s: %s", p, strerror(errno));
}

static void write_file(const char *p, const char *data)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t n = strlen(data);
	if (fd < 0 || write(fd, data, n) != (ssize_t)n) die("write %s: %s", p, strerror(errno));
	close(fd);
}

static int cmd_distfs(int argc, char **argv)
{
	if (argc != 6) die("usage: distfs TAGSDIR DIGEST PREFIX FIRST N");
	const char *base = argv[1], *digest = argv[2], *prefix = argv[3];
	long first = atol(argv[4]), n = atol(argv[5]);
	const char *hx = strchr(digest, ':');
	if (!hx) die("bad digest");
	hx++;
	char p[4096];
	double t0 = now();
	for (long i = first; i < first + n; i++) {
		int k = snprintf(p, sizeof p, "%s/%s%06ld", base, prefix, i);
		mkdir_ok(p);
		snprintf(p + k, sizeof p - (size_t)k, "/current");
		mkdir_ok(p);
		snprintf(p + k, sizeof p - (size_t)k, "/current/link");
		write_file(p, digest);
		snprintf(p + k, sizeof p - (size_t)k, "/index");
		mkdir_ok(p);
		snprintf(p + k, sizeof p - (size_t)k, "/index/sha256");
		mkdir_ok(p);
		snprintf(p + k, sizeof p - (size_t)k, "/index/sha256/%s", hx);
		mkdir_ok(p);
		snprintf(p + k, sizeof p - (size_t)k, "/index/sha256/%s/link", hx);
		write_file(p, digest);
	}
	return finish_json("\"ok\":%ld,\"secs\":%.6f", n, now() - t0);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	if (argc < 2) die("usage: loadgen gen|push|pull|blobs|tags ...");
	signal(SIGPIPE, SIG_IGN); /* sendfile() has no MSG_NOSIGNAL */
	const char *cmd = argv[1];
	if (!strcmp(cmd, "gen")) return cmd_gen(argc - 1, argv + 1);
	if (!strcmp(cmd, "distfs")) return cmd_distfs(argc - 1, argv + 1);
	const char *addr = "127.0.0.1:5000", *repo = NULL, *file = NULL, *digest = NULL,
		   *mode = "mono", *mt = "application/vnd.oci.image.manifest.v1+json", *prefix = "t";
	long n = 0, first = 0;
	long long size = 0;
	const char *hdrs = NULL, *method = "GET", *path = NULL;
	int conc = 1, chunks = 3, verify = 0, opt, threads = 1, want_status = 200;
	double secs = 10;
	optind = 2;
	while ((opt = getopt(argc, argv, "a:r:f:d:m:k:s:c:n:t:p:o:vH:M:P:T:D:S:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'r': repo = optarg; break;
		case 'f': file = optarg; break;
		case 'd': digest = optarg; break;
		case 'm': mode = optarg; break;
		case 'k': chunks = atoi(optarg); break;
		case 's': size = atoll(optarg); break;
		case 'c': conc = atoi(optarg); break;
		case 'n': n = atol(optarg); break;
		case 't': mt = optarg; break;
		case 'p': prefix = optarg; break;
		case 'o': first = atol(optarg); break;
		case 'v': verify = 1; break;
		case 'H': hdrs = optarg; break;
		case 'M': method = optarg; break;
		case 'P': path = optarg; break;
		case 'T': threads = atoi(optarg); break;
		case 'D': secs = atof(optarg); break;
		case 'S': want_status = atoi(optarg); break;
		default: die("bad option");
		}
	}
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof g_host) die("bad -a %s", addr);
	memcpy(g_host, addr, (size_t)(colon - addr));
	g_port = atoi(colon + 1);
	snprintf(g_hostport, sizeof g_hostport, "%s", addr);
	if (!strcmp(cmd, "hammer")) {
		/* -H takes "Name: value" lines joined by \n; make them CRLF lines */
		static char hb[4096];
		size_t o = 0;
		for (const char *p = hdrs; p && *p && o + 4 < sizeof hb; p++) {
			if (*p == '\n') {
				hb[o++] = '\r';
				hb[o++] = '\n';
			} else hb[o++] = *p;
		}
		if (o && hb[o - 1] != '\n') {
			hb[o++] = '\r';
			hb[o++] = '\n';
		}
		hb[o] = '\0';
		if (!path) die("hammer needs -P PATH");
		return cmd_hammer(method, path, hb, conc, threads, secs, want_status, digest);
	}
	if (!repo) die("-r REPO required");
	if (!strcmp(cmd, "push")) {
		if (!file || !digest) die("push needs -f and -d");
		return cmd_push(repo, file, digest, mode, chunks);
	}
	if (!strcmp(cmd, "pull")) {
		if (!digest || size <= 0) die("pull needs -d and -s");
		return cmd_pull(repo, digest, size, conc, verify);
	}
	if (!strcmp(cmd, "blobs")) {
		if (n <= 0 || size <= 0) die("blobs needs -n and -s");
		return cmd_blobs(repo, n, (size_t)size, conc, mode);
	}
	if (!strcmp(cmd, "tags")) {
		if (n <= 0 || !file) die("tags needs -n and -f");
		return cmd_tags(repo, n, conc, file, mt, prefix, first);
	}
	die("unknown command %s", cmd);
	return 2;
}
