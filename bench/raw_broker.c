/*
 * raw_broker.c — the P3 baseline (docs/performance.md): what the broker alone does with
 * the same messages the bridge moves, using rabbitmq-c the plain way.
 *
 *   raw_broker URL QUEUE COUNT SIZE [WINDOW]
 *
 * 1. declares QUEUE (classic, durable; deleted first so it starts empty),
 * 2. publishes COUNT persistent messages of SIZE bytes to it through the
 *    default exchange with publisher confirms, at most WINDOW (default 500,
 *    the bridge's publish_batch) unconfirmed at a time,
 * 3. consumes them all with prefetch 1000 and one basic.ack multiple per 500,
 * and prints one line: "publish_s=… consume_s=… publish_rate=… consume_rate=…
 * rate=…" where rate = COUNT / (publish_s + consume_s).  The queue is deleted
 * at the end.  Errors go to stderr, exit 1.  With COUNT 0 it only deletes
 * QUEUE (test/lib.sh's sc_bench_delete_queues, on a shared broker).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "raw_broker: %s\n", what);
	exit(1);
}

static void
check(amqp_connection_state_t c, const char *what)
{
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
		die(what);
}

int
main(int argc, char **argv)
{
	struct amqp_connection_info ci;
	amqp_connection_state_t c;
	amqp_socket_t *s;
	amqp_basic_properties_t p;
	char *url, *body, *done;
	long count, size, window, sent = 0, confirmed = 0, got = 0;
	double t0, t_pub, t_con;

	if (argc < 5)
	{
		fprintf(stderr, "usage: raw_broker URL QUEUE COUNT SIZE [WINDOW]\n");
		return 2;
	}
	url = strdup(argv[1]);
	count = atol(argv[3]);
	size = atol(argv[4]);
	window = argc > 5 ? atol(argv[5]) : 500;
	done = calloc((size_t) count + 2, 1);
	body = malloc((size_t) size + 1);
	memset(body, 'x', (size_t) size);
	body[size] = '\0';

	amqp_default_connection_info(&ci);
	if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK)
		die("bad URL");
	c = amqp_new_connection();
	s = amqp_tcp_socket_new(c);
	if (amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK)
		die("cannot connect");
	if (amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password).reply_type !=
		AMQP_RESPONSE_NORMAL)
		die("login failed");
	amqp_channel_open(c, 1);
	check(c, "channel.open");
	amqp_queue_delete(c, 1, amqp_cstring_bytes(argv[2]), 0, 0);
	check(c, "queue.delete");
	if (count == 0)
	{
		amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
		amqp_connection_close(c, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(c);
		return 0;
	}
	amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[2]), 0, 1, 0, 0, amqp_empty_table);
	check(c, "queue.declare");
	amqp_confirm_select(c, 1);
	check(c, "confirm.select");

	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
	p.delivery_mode = 2;
	p.content_type = amqp_cstring_bytes("application/json");
	t0 = now();
	while (confirmed < count)
	{
		while (sent < count && sent - confirmed < window)
		{
			if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(argv[2]), 0, 0, &p,
								   (amqp_bytes_t){(size_t) size, body}) != AMQP_STATUS_OK)
				die("publish failed");
			sent++;
		}
		{
			amqp_frame_t f;

			if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
				die("connection lost");
			if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD)
			{
				amqp_basic_ack_t *a = f.payload.method.decoded;

				/* confirms may come out of order: mark tags, then advance
				 * over the contiguous confirmed prefix */
				if (a->multiple)
					for (long t = confirmed + 1; t <= (long) a->delivery_tag; t++)
						done[t] = 1;
				else
					done[a->delivery_tag] = 1;
				while (confirmed < sent && done[confirmed + 1])
					confirmed++;
			}
			else if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_NACK_METHOD)
				die("broker nacked a publish");
		}
	}
	t_pub = now() - t0;

	amqp_basic_qos(c, 1, 0, 1000, 0);
	check(c, "basic.qos");
	amqp_basic_consume(c, 1, amqp_cstring_bytes(argv[2]), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	check(c, "basic.consume");
	t0 = now();
	while (got < count)
	{
		amqp_envelope_t env;
		amqp_rpc_reply_t r;

		amqp_maybe_release_buffers(c);
		r = amqp_consume_message(c, &env, NULL, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			die("consume failed");
		got++;
		if (got % 500 == 0 || got == count)
			amqp_basic_ack(c, 1, env.delivery_tag, 1);
		amqp_destroy_envelope(&env);
	}
	t_con = now() - t0;
	amqp_queue_delete(c, 1, amqp_cstring_bytes(argv[2]), 0, 0);
	amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	printf("publish_s=%.3f consume_s=%.3f publish_rate=%.0f consume_rate=%.0f rate=%.0f\n", t_pub, t_con, count / t_pub,
		   count / t_con, count / (t_pub + t_con));
	free(done);
	free(body);
	free(url);
	return 0;
}
