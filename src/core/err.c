#include "err.h"

const char *berth_err_str(berth_err e)
{
	switch (e) {
	case BERTH_OK: return "ok";
	case BERTH_ENOMEM: return "out of memory";
	case BERTH_EIO: return "storage I/O error";
	case BERTH_ENOSPC: return "no space left on storage";
	case BERTH_EDB: return "metadata store error";
	case BERTH_EINTERNAL: return "internal error";
	case BERTH_EINVAL: return "invalid argument";
	case BERTH_ENAME_INVALID: return "invalid repository name";
	case BERTH_ENAME_UNKNOWN: return "repository name not known to registry";
	case BERTH_ETAG_INVALID: return "manifest tag did not match URI";
	case BERTH_EDIGEST_INVALID: return "provided digest did not match uploaded content";
	case BERTH_EBLOB_UNKNOWN: return "blob unknown to registry";
	case BERTH_EMANIFEST_INVALID: return "manifest invalid";
	case BERTH_EMANIFEST_UNKNOWN: return "manifest unknown";
	case BERTH_EMANIFEST_BLOB_UNKNOWN: return "manifest references a manifest or blob unknown to registry";
	case BERTH_ESIZE_INVALID: return "provided length did not match content length";
	case BERTH_EUPLOAD_UNKNOWN: return "blob upload unknown to registry";
	case BERTH_EUPLOAD_INVALID: return "blob upload invalid";
	case BERTH_ERANGE: return "requested range not satisfiable";
	case BERTH_ETOO_LARGE: return "content too large";
	case BERTH_EUNSUPPORTED: return "the operation is unsupported";
	case BERTH_EDENIED: return "requested access to the resource is denied";
	case BERTH_EUNAUTHORIZED: return "authentication required";
	case BERTH_ETOOMANY: return "too many requests";
	case BERTH_ENOTFOUND: return "not found";
	case BERTH_EPAGE_INVALID: return "invalid number of results requested";
	case BERTH_ETAG_IMMUTABLE: return "tag is an immutable version: push a new version instead";
	case BERTH_EUNAVAILABLE: return "service unavailable";
	case BERTH_E_COUNT: break;
	}
	return "unknown error";
}
