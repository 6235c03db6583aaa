/* curl_dl.c — libcurl is loaded when a client command first needs it, not when the program
 * starts: the server never uses it, and linking it pulls some twenty libraries (Kerberos,
 * LDAP, SSH, IDN...) whose relocated pages cost the server ~1.5 MiB of resident memory. These
 * definitions stand in for the twelve libcurl functions the client calls and forward to the
 * real ones, resolved once with dlopen/dlsym. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static struct {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	void (*easy_cleanup)(CURL *);
	void (*easy_reset)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	char *(*easy_escape)(CURL *, const char *, int);
	void (*free)(void *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} f;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;

/* dlsym hands back an object pointer; POSIX guarantees it converts to a function pointer. */
#define RESOLVE(field, name)                                                                     \
	do {                                                                                       \
		void *p_ = dlsym(lib, name);                                                       \
		if (!p_) return;                                                                   \
		*(void **)(&f.field) = p_;                                                         \
	} while (0)

static void load(void)
{
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "berth: cannot load libcurl: %s\n", dlerror());
		return;
	}
	RESOLVE(global_init, "curl_global_init");
	RESOLVE(easy_init, "curl_easy_init");
	RESOLVE(easy_setopt, "curl_easy_setopt");
	RESOLVE(easy_perform, "curl_easy_perform");
	RESOLVE(easy_cleanup, "curl_easy_cleanup");
	RESOLVE(easy_reset, "curl_easy_reset");
	RESOLVE(easy_getinfo, "curl_easy_getinfo");
	RESOLVE(easy_strerror, "curl_easy_strerror");
	RESOLVE(easy_escape, "curl_easy_escape");
	RESOLVE(free, "curl_free");
	RESOLVE(slist_append, "curl_slist_append");
	RESOLVE(slist_free_all, "curl_slist_free_all");
	loaded = 1;
}

static int ready(void)
{
	pthread_once(&once, load);
	return loaded;
}

CURLcode curl_global_init(long flags)
{
	return ready() ? f.global_init(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void)
{
	return ready() ? f.easy_init() : NULL;
}

/* The option number says the argument's type (curl.h: CURLOPTTYPE_*); forward it as that
 * type, so the real function reads exactly what the caller passed. */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	va_list ap;
	CURLcode rc;
	if (!ready()) return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT) {
		rc = f.easy_setopt(h, opt, va_arg(ap, long));
	} else if (opt < CURLOPTTYPE_FUNCTIONPOINT) {
		rc = f.easy_setopt(h, opt, va_arg(ap, void *));
	} else if (opt < CURLOPTTYPE_OFF_T) {
		/* Function pointers travel as their own type through the ellipsis. */
		void (*fp)(void) = va_arg(ap, void (*)(void));
		rc = f.easy_setopt(h, opt, fp);
	} else if (opt < CURLOPTTYPE_BLOB) {
		rc = f.easy_setopt(h, opt, va_arg(ap, curl_off_t));
	} else {
		rc = f.easy_setopt(h, opt, va_arg(ap, void *));
	}
	va_end(ap);
	return rc;
}

CURLcode curl_easy_perform(CURL *h)
{
	return ready() ? f.easy_perform(h) : CURLE_FAILED_INIT;
}

void curl_easy_cleanup(CURL *h)
{
	if (ready()) f.easy_cleanup(h);
}

void curl_easy_reset(CURL *h)
{
	if (ready()) f.easy_reset(h);
}

/* Every CURLINFO the client asks for is returned through a pointer. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	va_list ap;
	CURLcode rc;
	if (!ready()) return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = f.easy_getinfo(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

const char *curl_easy_strerror(CURLcode code)
{
	return ready() ? f.easy_strerror(code) : "libcurl could not be loaded";
}

char *curl_easy_escape(CURL *h, const char *s, int len)
{
	return ready() ? f.easy_escape(h, s, len) : NULL;
}

void curl_free(void *p)
{
	if (ready()) f.free(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
	return ready() ? f.slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
	if (ready()) f.slist_free_all(l);
}
