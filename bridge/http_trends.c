/*
 * http_trends.c — the trends routes of the http role (see http_trends.h;
 * docs/http.md "Channels and trends"): their query strings read from
 * libmicrohttpd, and their answers built from the rows the pool read
 * (dbpool.h: DBPOOL_BREAKDOWN, DBPOOL_HISTORY, DBPOOL_TOP).
 *
 * Rules: called on libmicrohttpd's threads with the connection they serve;
 * no state.  The job's rows (job->result) belong to the request and are
 * freed with it (dbpool_job_free in http.c's request_done); every answer
 * goes through http_reply.c (counted there).  JSON is built with jansson;
 * a value from the database that is not valid UTF-8 (a SQL_ASCII database)
 * is a 500, never a broken body.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "http_reply.h"
#include "http_trends.h"

_Static_assert(ROUTE_TRENDS_NARGS == DBPOOL_NARGS, "a route's SQL parameters are the job's args");

int
http_trends_route(enum route_kind kind)
{
	return kind == ROUTE_BREAKDOWN || kind == ROUTE_HISTORY || kind == ROUTE_TOP;
}

enum dbpool_kind
http_trends_kind(enum route_kind kind)
{
	return kind == ROUTE_BREAKDOWN ? DBPOOL_BREAKDOWN : kind == ROUTE_HISTORY ? DBPOOL_HISTORY : DBPOOL_TOP;
}

static enum MHD_Result
take_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct route *rt = cls;

	(void) kind;
	return route_trends_arg(rt, key ? key : "", value) == 0 ? MHD_YES : MHD_NO;
}

int
http_trends_query(struct MHD_Connection *conn, struct route *rt)
{
	struct timespec now = {0, 0};

	if (rt->kind != ROUTE_COUNT && rt->kind != ROUTE_HISTORY && rt->kind != ROUTE_TOP)
		return 0;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, take_arg, rt);
	if (rt->kind == ROUTE_HISTORY) /* the default until; a count pays no clock read */
		clock_gettime(CLOCK_REALTIME, &now);
	return route_trends_finish(rt, (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000);
}

/* A bigint column, NULL read as 0. */
static json_int_t
int_at(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A text column as a JSON string; NULL when it is not valid UTF-8. */
static json_t *
text_at(const PGresult *res, int row, int col)
{
	return json_stringn(PQgetvalue(res, row, col), (size_t) PQgetlength(res, row, col));
}

/*
 * {"contentType","contentId","shareCount","byChannel"|"byCampaign":{value:n,…},"unattributed":n}:
 * row 0 is the total, the others the values with their shares (NULL value:
 * unattributed), most shares first.
 */
static json_t *
breakdown_json(const struct route *rt, const PGresult *res)
{
	json_t *v = json_object(), *by = json_object();
	json_int_t unattributed = 0;
	int i, ok = v && by;

	for (i = 1; ok && i < PQntuples(res); i++)
	{
		if (PQgetisnull(res, i, 1))
			unattributed += int_at(res, i, 2);
		else
			ok = json_object_setn_new(by, PQgetvalue(res, i, 1), (size_t) PQgetlength(res, i, 1),
									  json_integer(int_at(res, i, 2))) == 0;
	}
	ok = ok && json_object_set_new(v, "contentType", json_string(rt->content_type)) == 0 &&
		json_object_set_new(v, "contentId", json_string(rt->content_id)) == 0 &&
		json_object_set_new(v, "shareCount", json_integer(int_at(res, 0, 2))) == 0;
	ok = ok && json_object_set(v, rt->trends.dim == ROUTE_DIM_CHANNEL ? "byChannel" : "byCampaign", by) == 0 &&
		json_object_set_new(v, "unattributed", json_integer(unattributed)) == 0;
	json_decref(by);
	if (!ok)
		json_decref(v);
	return ok ? v : NULL;
}

/* {"contentType","contentId","bucket","since","until","history":[{"bucketStart","shares"},…]} */
static json_t *
history_json(const struct route *rt, const PGresult *res)
{
	char since[ROUTE_TIME_LEN], until[ROUTE_TIME_LEN], at[ROUTE_TIME_LEN];
	json_t *list = json_array();
	int i, ok = list != NULL;

	for (i = 0; ok && i < PQntuples(res); i++)
	{
		route_format_time(int_at(res, i, 0), at);
		ok = json_array_append_new(list, json_pack("{s:s,s:I}", "bucketStart", at, "shares", int_at(res, i, 1))) == 0;
	}
	route_format_time(rt->trends.since_ms, since);
	route_format_time(rt->trends.until_ms, until);
	if (!ok)
	{
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "contentType", rt->content_type, "contentId", rt->content_id,
					 "bucket", rt->trends.bucket == ROUTE_BUCKET_DAY ? "day" : "hour", "since", since, "until", until,
					 "history", list);
}

/* {"contentType","window","top":[{"contentId","shares"},…]}, in the order sharecount_top gave. */
static json_t *
top_json(const struct route *rt, const PGresult *res)
{
	const struct route_trends *t = &rt->trends;
	long long per = t->window_unit == 'd' ? 24 * 60 : t->window_unit == 'h' ? 60 : 1;
	char window[32];
	json_t *list = json_array();
	int i, ok = list != NULL;

	for (i = 0; ok && i < PQntuples(res); i++)
	{
		json_t *id = text_at(res, i, 0);

		ok = id &&
			json_array_append_new(list, json_pack("{s:o,s:I}", "contentId", id, "shares", int_at(res, i, 1))) == 0;
	}
	if (!ok)
	{
		json_decref(list);
		return NULL;
	}
	snprintf(window, sizeof(window), "%lld%c", (long long) t->window_min / per, t->window_unit);
	return json_pack("{s:s,s:s,s:o}", "contentType", rt->content_type, "window", window, "top", list);
}

enum MHD_Result
http_trends_answer(struct MHD_Connection *conn, const struct route *rt, struct dbpool_job *job)
{
	json_t *v;

	if (job->rc == DBPOOL_BAD_INPUT)
	{
		json_t *msg = json_string(job->err); /* the server's message; NULL if not UTF-8 */

		json_decref(msg);
		return http_send_error(conn, 400, msg ? job->err : "invalid parameter", NULL);
	}
	if (job->rc != DBPOOL_OK)
		return http_send_db_error(conn, job->rc, job->err);
	v = rt->kind == ROUTE_BREAKDOWN ? breakdown_json(rt, job->result) :
		rt->kind == ROUTE_HISTORY	? history_json(rt, job->result) :
									  top_json(rt, job->result);
	if (!v)
	{
		http_log_db_failure("trends read", "a value is not valid UTF-8, or out of memory");
		return http_send_error(conn, 500, "database query failed", NULL);
	}
	return http_send_json(conn, 200, v, NULL);
}
