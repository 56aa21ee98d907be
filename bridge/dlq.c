/*
 * dlq.c — dead letters with their reason, and the `dlq` command
 * (docs/bridge.md, "Dead letters").
 *
 * dlq_publish (consumer thread): a message the consumer gives up on is
 * published by the bridge itself to dead_letter_exchange — the broker's own
 * dead-lettering cannot add headers — with its body and properties, the
 * x-sharecount-* headers and delivery_mode 2, and confirmed before the
 * consumer acks the original.
 *
 * `sharecount-bridge dlq list [N] | replay (--all | --job-id ID) | purge`
 * (same configuration, flags and environment as the daemon): messages are
 * taken with basic.get (no auto-ack) and held unacknowledged until the end,
 * so each is seen once; what is not removed is returned with one
 * basic.nack(multiple, requeue).  A replayed message is acked on the dead
 * queue only after the jobs exchange confirmed the re-publish.
 *
 * Rules: one connection per command, channel 1 only, in confirm mode.  The
 * header table built for a publish points into the received message, which
 * outlives the publish; nothing is kept past one message except counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp.h"
#include "bridge.h"
#include "config.h"
#include "dlq.h"
#include "log.h"

static int
is_ours(amqp_bytes_t key)
{
	size_t n = strlen(SC_HDR_PREFIX);

	return (key.len >= n && memcmp(key.bytes, SC_HDR_PREFIX, n) == 0) ||
		(key.len == 6 && memcmp(key.bytes, "x-death", 6) == 0) ||
		(key.len == 16 && memcmp(key.bytes, "x-delivery-count", 16) == 0);
}

/* Copy the original headers except ours, x-death and x-delivery-count into out[]. */
static int
copy_headers(const amqp_basic_properties_t *p, amqp_table_entry_t *out, int max)
{
	int n = 0;

	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return 0;
	for (int i = 0; i < p->headers.num_entries && n < max; i++)
		if (!is_ours(p->headers.entries[i].key))
			out[n++] = p->headers.entries[i];
	return n;
}

int
dlq_publish(struct sc_amqp *a, const struct sc_dead_letter *d, char *why, size_t len)
{
	amqp_table_entry_t h[SC_DLQ_MAX_HEADERS + 8];
	amqp_basic_properties_t p = d->env->message.properties;
	int n = copy_headers(&p, h, SC_DLQ_MAX_HEADERS);
	char at[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	h[n++] = sc_amqp_str_entry(SC_HDR_ERROR, d->reason);
	h[n].key = amqp_cstring_bytes(SC_HDR_ATTEMPTS);
	h[n].value.kind = AMQP_FIELD_KIND_I32;
	h[n++].value.value.i32 = d->attempts;
	h[n++] = sc_amqp_str_entry(SC_HDR_DEAD_AT, at);
	if (d->job_name && d->job_name[0])
		h[n++] = sc_amqp_str_entry(SC_HDR_JOB, d->job_name);
	if (d->job_id)
		h[n++] = sc_amqp_str_entry(SC_HDR_JOB_ID, d->job_id);
	h[n++] = sc_amqp_bytes_entry(SC_HDR_EXCHANGE, d->env->exchange);
	h[n++] = sc_amqp_bytes_entry(SC_HDR_ROUTING_KEY, d->env->routing_key);
	p._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	p.headers.num_entries = n;
	p.headers.entries = h;
	p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	return sc_amqp_publish_confirmed(a, a->cfg->dead_letter_exchange, "", &p, d->env->message.body, why, len);
}

/*
 * The AMQP integer field kinds that fit a long long, with their member of
 * amqp_field_value_t.value (U64 is clamped apart), and one switch case each.
 */
#define DLQ_INT_KINDS(X) X(I8, i8) X(U8, u8) X(I16, i16) X(U16, u16) X(I32, i32) X(U32, u32) X(I64, i64)
#define DLQ_INT_CASE(kind, member) \
	case AMQP_FIELD_KIND_##kind: \
		n = v->value.member; \
		break;

int
dlq_delivery_count(const amqp_basic_properties_t *p)
{
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return 0;
	for (int i = 0; i < p->headers.num_entries; i++)
	{
		const amqp_table_entry_t *e = &p->headers.entries[i];
		const amqp_field_value_t *v = &e->value;
		long long n = -1;

		if (e->key.len != 16 || memcmp(e->key.bytes, "x-delivery-count", 16) != 0)
			continue;
		switch (v->kind)
		{
			DLQ_INT_KINDS(DLQ_INT_CASE)
			case AMQP_FIELD_KIND_U64:
				n = (long long) (v->value.u64 > 1000000 ? 1000000 : v->value.u64);
				break;
			default:
				break;
		}
		return n < 0 ? 0 : (n > 1000000 ? 1000000 : (int) n);
	}
	return 0;
}

int
dlq_settle(struct sc_amqp *dl, struct sc_amqp *consumer, uint64_t tag, const struct sc_dead_letter *d)
{
	char why[256] = "";
	int rc = -1;

	if (dl->conn || sc_amqp_connect(dl) == 0)
		rc = dlq_publish(dl, d, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "cannot open the dead-letter connection");
	if (rc < 0)
		sc_amqp_disconnect(dl);
	if (rc == 0)
		return amqp_basic_ack(consumer->conn, SC_CH, tag, 0) == AMQP_STATUS_OK ? 0 : -1;
	log_warn("publishing the dead letter failed (%s); rejecting it without requeue instead: "
			 "the broker dead-letters it without the %s header (the reason is in the line above)",
			 why, SC_HDR_ERROR);
	return amqp_basic_reject(consumer->conn, SC_CH, tag, 0) == AMQP_STATUS_OK ? 0 : -1;
}

/* ---- the dlq command ---- */

enum dlq_cmd
{
	CMD_LIST,
	CMD_REPLAY,
	CMD_PURGE
};

struct dlq_args
{
	enum dlq_cmd cmd;
	long n;				/* list: how many */
	int all;			/* replay --all */
	const char *job_id; /* replay --job-id */
	int cargc;			/* what config_load sees */
	char **cargv;
};

/* The string value of header key ("" if absent or not a string), into buf. */
static const char *
hdr_str(const amqp_basic_properties_t *p, const char *key, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return buf;
	for (int i = 0; i < p->headers.num_entries; i++)
	{
		const amqp_table_entry_t *e = &p->headers.entries[i];

		if (e->key.len != strlen(key) || memcmp(e->key.bytes, key, e->key.len) != 0)
			continue;
		if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)
			snprintf(buf, len, "%.*s", (int) e->value.value.bytes.len, (const char *) e->value.value.bytes.bytes);
		else if (e->value.kind == AMQP_FIELD_KIND_I32)
			snprintf(buf, len, "%d", (int) e->value.value.i32);
		else if (e->value.kind == AMQP_FIELD_KIND_I64)
			snprintf(buf, len, "%lld", (long long) e->value.value.i64);
		break;
	}
	for (char *s = buf; *s; s++)
		if (*s == '\n' || *s == '\t' || *s == '\r')
			*s = ' ';
	return buf;
}

static int
usage(const char *msg)
{
	fprintf(stderr,
			"sharecount-bridge dlq: %s (usage: sharecount-bridge dlq list [N] | "
			"replay (--all | --job-id ID) | purge [daemon options])\n",
			msg);
	return 2;
}

/* Does option a (of the daemon's) take the next argument as its value? */
static int
takes_value(const char *a)
{
	if (!strcmp(a, "-c") || !strcmp(a, "--config"))
		return 1;
	return !strncmp(a, "--", 2) && !strchr(a, '=') && strcmp(a, "--help") && strcmp(a, "--version") &&
		strcmp(a, "--check-config") && strcmp(a, "--check_config");
}

/* Split argv into the subcommand's arguments and the daemon's options.  0, or 2 (reported). */
static int
parse_args(int argc, char **argv, struct dlq_args *da)
{
	const char *pos[3] = {NULL, NULL, NULL};
	int npos = 0;

	da->cargv[da->cargc++] = "sharecount-bridge";
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (!strcmp(a, "--all"))
			da->all = 1;
		else if (!strcmp(a, "--job-id") || !strncmp(a, "--job-id=", 9))
		{
			if (a[8] == '=')
				da->job_id = a + 9;
			else if (i + 1 < argc)
				da->job_id = argv[++i];
			if (!da->job_id || !da->job_id[0])
				return usage("--job-id needs a jobId");
		}
		else if (a[0] == '-')
		{
			da->cargv[da->cargc++] = argv[i];
			if (takes_value(a) && i + 1 < argc)
				da->cargv[da->cargc++] = argv[++i];
		}
		else if (npos < 3)
			pos[npos++] = a;
		else
			return usage("too many arguments");
	}
	if (npos == 0)
		return usage("missing command");
	if (!strcmp(pos[0], "list") && npos <= 2 && !da->all && !da->job_id)
	{
		char *end = NULL;

		da->cmd = CMD_LIST;
		da->n = pos[1] ? strtol(pos[1], &end, 10) : SC_DLQ_LIST_DEFAULT;
		if (pos[1] && (*end || da->n < 1 || da->n > 1000000))
			return usage("list N: N must be a whole number from 1 to 1000000");
		return 0;
	}
	if (!strcmp(pos[0], "replay") && npos == 1 && (da->all != (da->job_id != NULL)))
		return da->cmd = CMD_REPLAY, 0;
	if (!strcmp(pos[0], "purge") && npos == 1 && !da->all && !da->job_id)
		return da->cmd = CMD_PURGE, 0;
	if (!strcmp(pos[0], "replay"))
		return usage("replay needs exactly one of --all or --job-id ID");
	return usage(npos > 1 || strcmp(pos[0], "list") ? "unknown command or extra arguments" : "bad arguments");
}

/* basic.get one dead letter: 1 got (*tag, *m), 0 queue empty, -1 failure (logged). */
static int
get_one(struct sc_amqp *a, uint64_t *tag, amqp_message_t *m)
{
	amqp_rpc_reply_t r;

	amqp_maybe_release_buffers(a->conn);
	r = amqp_basic_get(a->conn, SC_CH, amqp_cstring_bytes(a->cfg->dead_letter_queue), 0);
	if (sc_amqp_reply_ok(a, r, "basic.get on the dead-letter queue", NULL) < 0)
		return -1;
	if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
		return 0;
	*tag = ((amqp_basic_get_ok_t *) r.reply.decoded)->delivery_tag;
	r = amqp_read_message(a->conn, SC_CH, m, 0);
	if (sc_amqp_reply_ok(a, r, "reading a dead letter", NULL) < 0)
		return -1;
	return 1;
}

/* The jobId of a dead letter: its header, else message_id, else "". */
static const char *
job_id_of(const amqp_message_t *m, char *buf, size_t len)
{
	const amqp_basic_properties_t *p = &m->properties;

	if (hdr_str(p, SC_HDR_JOB_ID, buf, len)[0])
		return buf;
	if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		snprintf(buf, len, "%.*s", (int) p->message_id.len, (const char *) p->message_id.bytes);
	return buf;
}

static void
print_row(const amqp_message_t *m)
{
	const amqp_basic_properties_t *p = &m->properties;
	char id[256], job[128], att[32], at[64], reason[1024];

	job_id_of(m, id, sizeof(id));
	hdr_str(p, SC_HDR_JOB, job, sizeof(job));
	hdr_str(p, SC_HDR_ATTEMPTS, att, sizeof(att));
	hdr_str(p, SC_HDR_DEAD_AT, at, sizeof(at));
	hdr_str(p, SC_HDR_ERROR, reason, sizeof(reason));
	printf("%s\t%s\t%s\t%s\t%s\n", id[0] ? id : "-", job[0] ? job : "-", att[0] ? att : "-", at[0] ? at : "-",
		   reason[0] ? reason : "(no " SC_HDR_ERROR ": dead-lettered by the broker; see the bridge log)");
}

/* Return every held (unacked) dead letter up to tag last to the queue. */
static int
give_back(struct sc_amqp *a, uint64_t last)
{
	if (!last)
		return 0;
	if (!a->conn || amqp_basic_nack(a->conn, SC_CH, last, 1, 1) != AMQP_STATUS_OK)
	{
		fprintf(stderr,
				"sharecount-bridge dlq: could not return the dead letters it held; "
				"the broker requeues them when the connection closes\n");
		return 1;
	}
	return 0;
}

static int
cmd_list(struct sc_amqp *a, long n)
{
	long shown = 0;
	uint64_t last = 0, tag = 0;
	int rc = 0;

	while (shown < n)
	{
		amqp_message_t m;
		int g = get_one(a, &tag, &m);

		if (g <= 0)
		{
			rc = g < 0;
			break;
		}
		print_row(&m);
		amqp_destroy_message(&m);
		last = tag;
		shown++;
	}
	rc |= give_back(a, last);
	fprintf(stderr, "%ld dead letter(s) listed\n", shown);
	return rc;
}

/* Re-publish m to the jobs exchange (routing key = its job name) without our headers. */
static int
replay_one(struct sc_amqp *a, const amqp_message_t *m, const char *job, char *why, size_t len)
{
	amqp_table_entry_t h[SC_DLQ_MAX_HEADERS];
	amqp_basic_properties_t p = m->properties;

	p.headers.num_entries = copy_headers(&m->properties, h, SC_DLQ_MAX_HEADERS);
	p.headers.entries = h;
	if (p.headers.num_entries == 0)
		p._flags &= ~AMQP_BASIC_HEADERS_FLAG;
	return sc_amqp_publish_confirmed(a, a->cfg->exchange, job, &p, m->body, why, len);
}

static int
cmd_replay(struct sc_amqp *a, const char *job_id)
{
	long replayed = 0, kept = 0;
	uint64_t held = 0, tag = 0;
	int rc = 0;

	for (;;)
	{
		amqp_message_t m;
		char id[256], job[128], why[256];
		int g = get_one(a, &tag, &m);

		if (g <= 0)
		{
			rc = g < 0;
			break;
		}
		job_id_of(&m, id, sizeof(id));
		hdr_str(&m.properties, SC_HDR_JOB, job, sizeof(job));
		if (job_id && strcmp(id, job_id) != 0)
			held = tag;
		else if (!job[0])
		{
			fprintf(stderr, "kept %s: no job name, it cannot be routed\n", id[0] ? id : "a dead letter");
			kept++;
			held = tag;
		}
		else if (replay_one(a, &m, job, why, sizeof(why)) < 0)
		{
			fprintf(stderr, "sharecount-bridge dlq: replaying %s failed (%s); it stays in %s\n",
					id[0] ? id : "a dead letter", why, a->cfg->dead_letter_queue);
			amqp_destroy_message(&m);
			rc = 1;
			break;
		}
		else if (amqp_basic_ack(a->conn, SC_CH, tag, 0) != AMQP_STATUS_OK)
		{
			fprintf(stderr,
					"sharecount-bridge dlq: acking %s on the dead-letter queue failed; it may be "
					"replayed twice (harmless: applying is idempotent by jobId)\n",
					id);
			amqp_destroy_message(&m);
			rc = 1;
			break;
		}
		else
			replayed++;
		amqp_destroy_message(&m);
		if (job_id && replayed)
			break; /* --job-id: that one only (the first with it) */
	}
	rc |= give_back(a, held);
	printf("replayed %ld\n", replayed);
	if (kept)
		printf("kept %ld without a job name\n", kept);
	if (job_id && replayed == 0 && rc == 0)
	{
		fprintf(stderr, "sharecount-bridge dlq: no dead letter with jobId \"%s\"\n", job_id);
		rc = 1;
	}
	return rc;
}

static int
cmd_purge(struct sc_amqp *a)
{
	amqp_queue_purge_ok_t *ok = amqp_queue_purge(a->conn, SC_CH, amqp_cstring_bytes(a->cfg->dead_letter_queue));

	if (!ok)
	{
		sc_amqp_reply_ok(a, amqp_get_rpc_reply(a->conn), "purging the dead-letter queue", NULL);
		return 1;
	}
	printf("purged %u\n", ok->message_count);
	return 0;
}

int
dlq_main(int argc, char **argv)
{
	struct dlq_args da;
	struct sc_config cfg;
	struct sc_amqp a;
	char err[1024];
	int rc;

	memset(&da, 0, sizeof(da));
	da.cargv = calloc((size_t) argc + 2, sizeof(char *));
	if (!da.cargv)
		return 1;
	if (parse_args(argc, argv, &da) != 0)
		return free(da.cargv), 2;
	rc = config_load(&cfg, da.cargc, da.cargv, err, sizeof(err));
	free(da.cargv);
	if (rc != 0)
	{
		if (rc < 0)
			fprintf(stderr, "sharecount-bridge dlq: %s\n", err);
		config_free(&cfg);
		return rc < 0 ? 2 : 0;
	}
	rc = log_parse_level(cfg.log_level);
	log_set_level(rc > LOG_LVL_WARN ? (rc == LOG_LVL_DEBUG ? LOG_LVL_DEBUG : LOG_LVL_WARN) : (enum sc_log_level) rc);
	log_set_role("dlq");
	sc_amqp_init(&a, &cfg, "dlq", NULL, SC_CONN_UNTRACKED);
	if (sc_amqp_connect(&a) < 0)
	{
		fprintf(stderr, "sharecount-bridge dlq: cannot connect to RabbitMQ (amqp_url); see the lines above\n");
		config_free(&cfg);
		return 1;
	}
	rc = da.cmd == CMD_LIST ? cmd_list(&a, da.n) : da.cmd == CMD_REPLAY ? cmd_replay(&a, da.job_id) : cmd_purge(&a);
	sc_amqp_disconnect(&a);
	config_free(&cfg);
	return rc;
}
