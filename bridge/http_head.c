/*
 * http_head.c — the one reader of a new connection's first request head
 * (http_head.h; docs/http.md "Request size limits", docs/live.md
 * "Capacity").  One pass over the lines: the request line's pieces, the
 * head's cost in libmicrohttpd's pool (route_head_cost() of route.c: its
 * bytes and its records) against route_uri_max() and route_head_budget(),
 * and the first value of each header field the live routes read.
 *
 * Rules: pure, no allocation; called again from the start each time more
 * bytes arrive (the door peeks, nothing is consumed).
 */
#include <string.h>
#include <strings.h>

#include "http_head.h"
#include "route.h"

/* Field names of struct http_head.field, in the order of its index enum. */
static const char *const hh_names[HH_NFIELDS] = {
	"Host", "Origin", "Upgrade", "Connection", "Sec-WebSocket-Version", "Sec-WebSocket-Key"};

int
http_head_is(struct http_head_span s, const char *t)
{
	return s.p && s.n == strlen(t) && memcmp(s.p, t, s.n) == 0;
}

/* How many times any of the characters in `set` occurs in s[0..len). */
static size_t
count_chars(const char *s, size_t len, const char *set)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (strchr(set, s[i]) && s[i] != '\0')
			n++;
	return n;
}

/*
 * The request line, line[0..line_len) without its LF (ended or not): 414
 * when the request-target is longer than route_uri_max() (even before the
 * line ends), else 0; the spans, is_head, and *records += the query's pieces.
 */
static int
head_line(const char *buf, size_t line_len, size_t conn_memory, size_t *records, struct http_head *h)
{
	const char *sp = memchr(buf, ' ', line_len);
	const char *target, *end, *q, *line_end = buf + line_len;

	h->is_head = line_len >= 5 && memcmp(buf, "HEAD ", 5) == 0;
	if (!sp)
		return line_len > route_uri_max(conn_memory) ? HTTP_HEAD_URI_TOO_LONG : 0;
	if (line_end[-1] == '\r')
		line_end--;
	h->method = (struct http_head_span){buf, (size_t) (sp - buf)};
	target = sp + 1;
	end = memchr(target, ' ', line_len - (size_t) (target - buf));
	if (end)
		h->version = (struct http_head_span){end + 1, (size_t) (line_end > end ? line_end - end - 1 : 0)};
	h->target = (struct http_head_span){target,
										(size_t) ((end					 ? end :
													   line_end > target ? line_end :
																		   target) -
												  target)};
	if (!end)
		end = buf + line_len;
	if (end > target && end[-1] == '\r') /* the limits count the target without a CR before its end */
		end--;
	if ((size_t) (end - target) > route_uri_max(conn_memory))
		return HTTP_HEAD_URI_TOO_LONG;
	q = memchr(target, '?', (size_t) (end - target));
	if (q && end > q + 1)
		*records += 1 + count_chars(q + 1, (size_t) (end - q - 1), "&");
	return 0;
}

/*
 * One complete header line, line[0..n) without its line end: keep its value
 * if it is the first of a name the live routes read; clear h->plain if the
 * line is not "name: value" without control characters (tab apart).
 */
static void
head_field(const char *line, size_t n, struct http_head *h)
{
	const char *colon = memchr(line, ':', n), *v, *e = line + n;
	size_t name;

	if (!colon || line[0] == ' ' || line[0] == '\t')
		h->plain = 0; /* no field name, or an obsolete folded line */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) line[i] < 0x20 && line[i] != '\t')
			h->plain = 0; /* a control character (a CR or NUL inside the line too) */
	if (!h->plain)
		return;
	name = (size_t) (colon - line);
	for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
		;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (int i = 0; i < HH_NFIELDS; i++)
		if (!h->field[i].p && strlen(hh_names[i]) == name && strncasecmp(line, hh_names[i], name) == 0)
			h->field[i] = (struct http_head_span){v, (size_t) (e - v)};
}

enum http_head_status
http_head_read(const char *buf, size_t len, size_t conn_memory, struct http_head *h)
{
	const char *nl = memchr(buf, '\n', len);
	size_t records = 0, cookies = 0, pos;
	size_t budget = route_head_budget(conn_memory);
	int st;

	memset(h, 0, sizeof(*h));
	h->plain = 1;
	st = head_line(buf, nl ? (size_t) (nl - buf) : len, conn_memory, &records, h);
	if (st)
		return (enum http_head_status) st;
	if (!nl)
		return len >= conn_memory ? HTTP_HEAD_URI_TOO_LONG : HTTP_HEAD_MORE;
	if (memchr(buf, '\0', (size_t) (nl - buf)))
		h->plain = 0;
	for (pos = (size_t) (nl - buf) + 1;;)
	{
		const char *line = buf + pos;
		size_t n;

		nl = memchr(line, '\n', len - pos);
		if (!nl) /* the head has not ended yet; a started line will be a record */
			return route_head_cost(len, records + (len > pos), cookies) > budget || len >= conn_memory ?
				HTTP_HEAD_TOO_LARGE :
				HTTP_HEAD_MORE;
		n = (size_t) (nl - line);
		pos += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0) /* the empty line ends the head */
		{
			h->len = pos;
			return route_head_cost(pos, records, cookies) > budget ? HTTP_HEAD_TOO_LARGE : HTTP_HEAD_OK;
		}
		records++;
		if (n > 7 && strncasecmp(line, "Cookie:", 7) == 0)
		{
			records += 1 + count_chars(line + 7, n - 7, ";,");
			cookies += n - 7 + ROUTE_COOKIE_EXTRA;
		}
		head_field(line, n, h);
	}
}
