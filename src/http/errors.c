/* errors.c — the only place that maps core errors onto HTTP: status codes, the OCI error
 * codes of distribution-spec "Error Codes", and the JSON error body. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

unsigned berth_http_status_of(berth_err e, const char **code)
{
	switch (e) {
	case BERTH_OK: *code = ""; return 200;
	case BERTH_ENAME_INVALID: *code = "NAME_INVALID"; return 400;
	case BERTH_ENAME_UNKNOWN: *code = "NAME_UNKNOWN"; return 404;
	case BERTH_ETAG_INVALID: *code = "TAG_INVALID"; return 400;
	case BERTH_EDIGEST_INVALID: *code = "DIGEST_INVALID"; return 400;
	case BERTH_EBLOB_UNKNOWN: *code = "BLOB_UNKNOWN"; return 404;
	case BERTH_EMANIFEST_INVALID: *code = "MANIFEST_INVALID"; return 400;
	case BERTH_EMANIFEST_UNKNOWN: *code = "MANIFEST_UNKNOWN"; return 404;
	case BERTH_EMANIFEST_BLOB_UNKNOWN: *code = "MANIFEST_BLOB_UNKNOWN"; return 400;
	case BERTH_ESIZE_INVALID: *code = "SIZE_INVALID"; return 400;
	case BERTH_EUPLOAD_UNKNOWN: *code = "BLOB_UPLOAD_UNKNOWN"; return 404;
	case BERTH_EUPLOAD_INVALID: *code = "BLOB_UPLOAD_INVALID"; return 400;
	case BERTH_ERANGE: *code = "BLOB_UPLOAD_INVALID"; return 416;
	case BERTH_ETOO_LARGE: *code = "SIZE_INVALID"; return 413;
	case BERTH_EUNSUPPORTED: *code = "UNSUPPORTED"; return 405;
	case BERTH_EDENIED: *code = "DENIED"; return 403;
	case BERTH_EUNAUTHORIZED: *code = "UNAUTHORIZED"; return 401;
	case BERTH_ETOOMANY: *code = "TOOMANYREQUESTS"; return 429;
	case BERTH_ENOTFOUND: *code = "NOT_FOUND"; return 404;
	/* Not in the spec's list; Distribution's code for the same condition. */
	case BERTH_EPAGE_INVALID: *code = "PAGINATION_NUMBER_INVALID"; return 400;
	case BERTH_ETAG_IMMUTABLE: *code = "TAG_INVALID"; return 400;
	/* Distribution's code for 503 (registry/api/errcode: ErrorCodeUnavailable). */
	case BERTH_EUNAVAILABLE: *code = "UNAVAILABLE"; return 503;
	case BERTH_EINVAL: *code = "UNSUPPORTED"; return 400;
	case BERTH_ENOSPC: *code = "UNKNOWN"; return 507;
	case BERTH_ENOMEM:
	case BERTH_EIO:
	case BERTH_EDB:
	case BERTH_EINTERNAL:
	case BERTH_E_COUNT: break;
	}
	*code = "UNKNOWN";
	return 500;
}

struct MHD_Response *resp_error(struct req *q, berth_err e, const char *detail,
				unsigned *status)
{
	const char *code;
	struct MHD_Response *r;
	json_t *body;
	char *text = NULL;

	*status = berth_http_status_of(e, &code);
	/* A HEAD gets the same response: libmicrohttpd sends it without the body, so its
	 * Content-Length and Content-Type are the GET's (RFC 9110 §9.3.2; §8.6 forbids a
	 * Content-Length other than what a GET would send). */
	body = json_pack("{s:[{s:s,s:s,s:s?}]}", "errors", "code", code, "message",
			 berth_err_str(e), "detail", detail);
	if (body) text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text) return resp_empty();
	q->bytes_out = (int64_t)strlen(text);
	r = resp_heap(text, q->bytes_out);
	if (!r) {
		free(text);
		return resp_empty();
	}
	resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
	return r;
}

enum MHD_Result req_error(struct req *q, berth_err e, const char *detail)
{
	unsigned status;
	struct MHD_Response *r = resp_error(q, e, detail, &status);
	return req_queue(q, status, r);
}
