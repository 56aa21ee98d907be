/*
 * route.c — request routing and input checks for the http role (see route.h).
 *
 * Rules: pure functions, no globals, no I/O; every allocation is owned by the
 * struct route and released by route_free() (a JSON body's tree is freed
 * before route_parse_body() returns).  Error messages never include
 * the request's bytes (they may be invalid UTF-8 and must go into JSON).
 */
#include <jansson.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "route.h"

const char *
route_reason(int status)
{
	switch (status)
	{
		case 200:
			return "OK";
		case 400:
			return "Bad Request";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 413:
			return "Payload Too Large";
		case 414:
			return "URI Too Long";
		case 415:
			return "Unsupported Media Type";
		case 431:
			return "Request Header Fields Too Large";
		case 500:
			return "Internal Server Error";
		case 503:
			return "Service Unavailable";
		default:
			return "Error";
	}
}

int
route_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		size_t n;
		unsigned cp, min;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
		{
			n = 1;
			cp = c & 0x1F;
			min = 0x80;
		}
		else if (c >= 0xE0 && c <= 0xEF)
		{
			n = 2;
			cp = c & 0x0F;
			min = 0x800;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		}
		else
			return 0;	  /* continuation byte, C0/C1 overlong lead, F5..FF */
		if (len - i <= n) /* needs n continuation bytes after the lead */
			return 0;
		for (size_t k = 1; k <= n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += n + 1;
	}
	return 1;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
route_decode(const char *in, size_t len, size_t *outlen, const char **why)
{
	char *out = malloc(len + 1);
	size_t i, o = 0;

	if (!out)
	{
		*why = "could not be decoded (out of memory)";
		return NULL;
	}
	for (i = 0; i < len; i++)
	{
		char c = in[i];

		if (c == '%')
		{
			int hi, lo;

			if (len - i < 3)
				hi = lo = -1;
			else
			{
				hi = hexval(in[i + 1]);
				lo = hexval(in[i + 2]);
			}
			if (hi < 0 || lo < 0)
			{
				free(out);
				*why = "has an invalid percent-encoding";
				return NULL;
			}
			c = (char) (hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
		{
			free(out);
			*why = "must not contain NUL";
			return NULL;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	if (!route_utf8_valid((const unsigned char *) out, o))
	{
		free(out);
		*why = "is not valid UTF-8";
		return NULL;
	}
	*outlen = o;
	return out;
}

int
route_fail(struct route *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	return status;
}

char *
route_decode_field(struct route *r, const char *name, const char *raw, size_t len, size_t max)
{
	const char *why;
	size_t n;
	char *s;

	if (len == 0)
	{
		route_fail(r, 400, "%s must not be empty", name);
		return NULL;
	}
	s = route_decode(raw, len, &n, &why);
	if (!s)
	{
		route_fail(r, 400, "%s %s", name, why);
		return NULL;
	}
	if (n > max)
	{
		free(s);
		route_fail(r, 400, "%s is longer than %zu bytes", name, max);
		return NULL;
	}
	return s;
}

/*
 * Keep a decoded id (malloc'ed, taken over) in r->ids unless it is a repeat.
 * r->ids has room for every id asked.  Quadratic, but bounded: at most 1,000
 * short strings.
 */
static void
add_id(struct route *r, char *id)
{
	size_t k;

	for (k = 0; k < r->nids; k++)
		if (strcmp(r->ids[k], id) == 0)
		{
			free(id);
			return;
		}
	r->ids[r->nids++] = id;
}

/*
 * Split ids_raw on literal commas (an id containing a comma is sent as %2C),
 * decode each, drop repeats.  The limit counts ids as asked, before repeats
 * are dropped, so the work per request stays bounded by the raw input.
 */
static int
parse_ids(struct route *r, const char *ids_raw, int ids_count)
{
	const char *p, *end;
	size_t asked = 0;

	if (!ids_raw || ids_count == 0)
		return route_fail(r, 400, "ids query parameter is required");
	if (ids_count > 1)
		return route_fail(r, 400, "ids must be given once, as a comma-separated list");
	if (ids_raw[0] == '\0')
		return route_fail(r, 400, "ids must list at least one id");

	/* count first, to reject an oversized list before allocating for it */
	for (p = ids_raw, asked = 1; *p; p++)
		if (*p == ',')
			asked++;
	if (asked > ROUTE_MAX_IDS)
		return route_fail(r, 400, "ids lists more than %d ids", ROUTE_MAX_IDS);
	r->ids = calloc(asked, sizeof(char *));
	if (!r->ids)
		return route_fail(r, 503, "out of memory");

	for (p = ids_raw;; p = end + 1)
	{
		char *id;

		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		id = route_decode_field(r, "each id in ids", p, (size_t) (end - p), ROUTE_MAX_ID_BYTES);
		if (!id)
			return r->status;
		add_id(r, id);
		if (*end == '\0')
			break;
	}
	return 0;
}

/* The endpoints under /share-links/: the second segment, the kind, the segments in all, the form. */
static const struct
{
	const char *name;
	enum route_kind kind;
	int nseg;
	const char *form;
} share_paths[] = {
	{"count", ROUTE_COUNT, 4, "/share-links/count/:contentType/:contentId"},
	{"counts", ROUTE_COUNTS, 3, "/share-links/counts/:contentType?ids=a,b,c"},
	{"history", ROUTE_HISTORY, 4, "/share-links/history/:contentType/:contentId"},
	{"top", ROUTE_TOP, 3, "/share-links/top/:contentType"},
};

/* The share_paths[] entry of segment seg[0..len), or -1. */
static int
share_path(const char *seg, size_t len)
{
	for (size_t i = 0; i < sizeof(share_paths) / sizeof(share_paths[0]); i++)
		if (strlen(share_paths[i].name) == len && memcmp(seg, share_paths[i].name, len) == 0)
			return (int) i;
	return -1;
}

int
route_parse(const char *method, const char *path, const char *ids_raw, int ids_count, struct route *r)
{
	const char *seg[5];
	size_t seglen[5];
	int nseg = 0, sp;
	const char *p;
	int getlike;

	memset(r, 0, sizeof(*r));
	r->allow = ROUTE_ALLOW;
	getlike = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (strcmp(path, "/healthz") == 0)
		r->kind = ROUTE_HEALTHZ;
	else if (strcmp(path, "/readyz") == 0)
		r->kind = ROUTE_READYZ;
	else if (strcmp(path, "/metrics") == 0)
		r->kind = ROUTE_METRICS;
	if (r->kind != ROUTE_NONE)
	{
		if (!getlike)
			return route_fail(r, 405, "only GET and HEAD are allowed here");
		return 0;
	}

	/* split "/a/b/c" into at most 5 segments (the 5th means "too many") */
	if (path[0] != '/')
		return route_fail(r, 404, "no such endpoint");
	for (p = path + 1; nseg < 5;)
	{
		const char *slash = strchr(p, '/');

		seg[nseg] = p;
		seglen[nseg] = slash ? (size_t) (slash - p) : strlen(p);
		nseg++;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (nseg < 2 || seglen[0] != sizeof("share-links") - 1 || memcmp(seg[0], "share-links", seglen[0]) != 0 ||
		(sp = share_path(seg[1], seglen[1])) < 0)
		return route_fail(r, 404, "no such endpoint");
	r->kind = share_paths[sp].kind;
	if (r->kind == ROUTE_COUNTS && strcmp(method, "POST") == 0)
		r->from_body = 1;
	else if (!getlike && r->kind == ROUTE_COUNTS)
	{
		r->allow = ROUTE_ALLOW_COUNTS;
		return route_fail(r, 405, "only GET, HEAD and POST are allowed here");
	}
	else if (!getlike)
		return route_fail(r, 405, "only GET and HEAD are allowed here");

	if (nseg < share_paths[sp].nseg)
		return route_fail(r, 400, "expected %s", share_paths[sp].form);
	if (nseg > share_paths[sp].nseg)
		return route_fail(r, 400, "too many path segments: expected %s", share_paths[sp].form);
	r->content_type = route_decode_field(r, "contentType", seg[2], seglen[2], ROUTE_MAX_TYPE_BYTES);
	if (!r->content_type)
		return r->status;
	if (share_paths[sp].nseg == 4)
	{
		r->content_id = route_decode_field(r, "contentId", seg[3], seglen[3], ROUTE_MAX_ID_BYTES);
		return r->content_id ? 0 : r->status;
	}
	if (r->kind != ROUTE_COUNTS || r->from_body)
		return 0; /* a POST's ids come from the body; its query string is ignored */
	return parse_ids(r, ids_raw, ids_count);
}

/* Check and copy one element of a POST body's ids array (see route_parse_body). */
static int
body_id(struct route *r, json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	char *id;

	if (!s)
		return route_fail(r, 400, "each id in ids must be a string");
	if (n == 0)
		return route_fail(r, 400, "each id in ids must not be empty");
	if (memchr(s, '\0', n))
		return route_fail(r, 400, "each id in ids must not contain NUL");
	if (n > ROUTE_MAX_ID_BYTES)
		return route_fail(r, 400, "each id in ids is longer than %d bytes", ROUTE_MAX_ID_BYTES);
	id = strdup(s);
	if (!id)
		return route_fail(r, 503, "out of memory");
	add_id(r, id);
	return 0;
}

int
route_parse_body(struct route *r, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *doc, *ids;
	size_t i;
	int rc = 0;

	/* JSON_ALLOW_NUL: a \u0000 in an id gets the GET's NUL message, not a parse error */
	doc = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
	if (!doc) /* jansson's text may quote the input: give the position only */
		return route_fail(r, 400, "body is not valid JSON in UTF-8 (line %d, column %d)", jerr.line, jerr.column);
	ids = json_object_get(doc, "ids");
	if (!json_is_object(doc))
		rc = route_fail(r, 400, "body must be a JSON object: {\"ids\":[\"a\",\"b\"]}");
	else if (!ids)
		rc = route_fail(r, 400, "ids is required: {\"ids\":[\"a\",\"b\"]}");
	else if (!json_is_array(ids))
		rc = route_fail(r, 400, "ids must be an array of strings");
	else if (json_array_size(ids) == 0)
		rc = route_fail(r, 400, "ids must list at least one id");
	else if (json_array_size(ids) > ROUTE_MAX_IDS)
		rc = route_fail(r, 400, "ids lists more than %d ids", ROUTE_MAX_IDS);
	else if (!(r->ids = calloc(json_array_size(ids), sizeof(char *))))
		rc = route_fail(r, 503, "out of memory");
	for (i = 0; rc == 0 && i < json_array_size(ids); i++)
		rc = body_id(r, json_array_get(ids, i));
	json_decref(doc);
	return rc;
}

size_t
route_uri_max(size_t conn_memory)
{
	return conn_memory > ROUTE_URI_RESERVE ? conn_memory - ROUTE_URI_RESERVE : 0;
}

size_t
route_head_budget(size_t conn_memory)
{
	return conn_memory > ROUTE_HEAD_RESERVE ? conn_memory - ROUTE_HEAD_RESERVE : 0;
}

size_t
route_head_cost(size_t head_bytes, size_t records, size_t cookie_bytes)
{
	return head_bytes + records * ROUTE_RECORD_BYTES + cookie_bytes;
}

int
route_json_content_type(const char *value)
{
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;

	if (!value)
		return 0;
	value += strspn(value, " \t");
	if (strncasecmp(value, json, n) != 0)
		return 0;
	value += n;
	value += strspn(value, " \t");
	return *value == '\0' || *value == ';';
}

void
route_free(struct route *r)
{
	size_t i;

	free(r->content_type);
	free(r->content_id);
	if (r->ids)
		for (i = 0; i < r->nids; i++)
			free(r->ids[i]);
	free(r->ids);
	r->content_type = r->content_id = NULL;
	r->ids = NULL;
	r->nids = 0;
}

/* The error quotes http_listen, which may hold control characters: show them as '?'. */
static int
listen_fail(char *err)
{
	for (char *c = err; *c; c++)
		if ((unsigned char) *c < 0x20 || *c == 0x7f)
			*c = '?';
	return -1;
}

int
route_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen)
{
	char host[256];
	const char *port;
	size_t hl;
	struct addrinfo hints, *res = NULL;
	int gai;

	if (listen[0] == '[')
	{
		const char *close = strchr(listen, ']');

		if (!close || close[1] != ':')
		{
			snprintf(err, errlen, "http_listen \"%s\" is not [ipv6]:port", listen);
			return listen_fail(err);
		}
		hl = (size_t) (close - listen - 1);
		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, listen + 1, hl);
		host[hl] = '\0';
		port = close + 2;
	}
	else
	{
		const char *colon = strrchr(listen, ':');

		if (!colon || memchr(listen, ':', (size_t) (colon - listen)))
		{
			snprintf(err, errlen, "http_listen \"%s\" is not host:port (write IPv6 as [addr]:port)", listen);
			return listen_fail(err);
		}
		hl = (size_t) (colon - listen);
		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, listen, hl);
		host[hl] = '\0';
		port = colon + 1;
		if (strcmp(host, "*") == 0)
			host[0] = '\0';
	}
	if (!port[0] || strspn(port, "0123456789") != strlen(port) || atol(port) < 1 || atol(port) > 65535)
	{
		snprintf(err, errlen, "http_listen \"%s\" has no valid port (1-65535)", listen);
		return listen_fail(err);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
	if (gai != 0 || !res)
	{
		snprintf(err, errlen, "http_listen \"%s\": %s", listen, gai_strerror(gai));
		return listen_fail(err);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}
