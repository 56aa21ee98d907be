/*
 * amqp_tool.c — a tiny rabbitmq-c client for the end-to-end tests, for what
 * amqp-publish cannot do (the `type`, `message_id` and `correlation_id`
 * properties, a NestJS-style send() that waits for its reply).
 *
 *   amqp_tool publish URL EXCHANGE ROUTING_KEY BODY [type=T] [mid=M] [ct=CONTENT_TYPE] [persistent]
 *   amqp_tool rpc URL QUEUE BODY CORRELATION_ID TIMEOUT_S
 *       publishes BODY to the default exchange with routing key QUEUE,
 *       reply_to=amq.rabbitmq.reply-to and the correlation id (as NestJS
 *       ClientRMQ.send() does), prints "correlation_id<TAB>body" of the reply.
 *   amqp_tool flood URL EXCHANGE ROUTING_KEY BODY COUNT
 *       publishes BODY COUNT times, persistent, with confirms (one window).
 *   amqp_tool bind URL QUEUE EXCHANGE KEY
 *       declares EXCHANGE (topic, durable, as the bridge does) and QUEUE
 *       (durable) and binds them with KEY.
 *   amqp_tool delete-exchange URL EXCHANGE
 *   amqp_tool drain URL QUEUE
 *       takes every message of QUEUE (basic.get, acked), one line each:
 *       "delivery_mode<TAB>content_type<TAB>routing_key<TAB>body".
 *
 * Exit 0 on success; errors are printed to stderr.  Test-only code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

static amqp_connection_state_t
open_conn(const char *url_in)
{
	char *url = strdup(url_in);
	struct amqp_connection_info ci;
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *s = amqp_tcp_socket_new(c);
	amqp_rpc_reply_t r;

	amqp_default_connection_info(&ci);
	if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK || amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK)
	{
		fprintf(stderr, "amqp_tool: cannot connect to %s\n", url_in);
		exit(1);
	}
	r = amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		fprintf(stderr, "amqp_tool: login failed\n");
		exit(1);
	}
	amqp_channel_open(c, 1);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
	{
		fprintf(stderr, "amqp_tool: channel.open failed\n");
		exit(1);
	}
	free(url);
	return c;
}

static void
close_conn(amqp_connection_state_t c)
{
	amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
}

static int
do_publish(int argc, char **argv)
{
	amqp_connection_state_t c;
	amqp_basic_properties_t p;

	if (argc < 6)
		return 2;
	c = open_conn(argv[2]);
	memset(&p, 0, sizeof(p));
	for (int i = 6; i < argc; i++)
	{
		if (!strncmp(argv[i], "type=", 5))
		{
			p._flags |= AMQP_BASIC_TYPE_FLAG;
			p.type = amqp_cstring_bytes(argv[i] + 5);
		}
		else if (!strncmp(argv[i], "mid=", 4))
		{
			p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
			p.message_id = amqp_cstring_bytes(argv[i] + 4);
		}
		else if (!strncmp(argv[i], "ct=", 3))
		{
			p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
			p.content_type = amqp_cstring_bytes(argv[i] + 3);
		}
		else if (!strcmp(argv[i], "persistent"))
		{
			p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
			p.delivery_mode = 2;
		}
	}
	if (amqp_basic_publish(c, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes(argv[4]), 0, 0, &p,
						   amqp_cstring_bytes(argv[5])) != AMQP_STATUS_OK)
	{
		fprintf(stderr, "amqp_tool: publish failed\n");
		return 1;
	}
	close_conn(c);
	return 0;
}

static int
do_rpc(int argc, char **argv)
{
	amqp_connection_state_t c;
	amqp_basic_properties_t p;
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	struct timeval tv;

	if (argc < 7)
		return 2;
	c = open_conn(argv[2]);
	/* direct reply-to: consume (no-ack) from the pseudo-queue before publishing */
	amqp_basic_consume(c, 1, amqp_cstring_bytes("amq.rabbitmq.reply-to"), amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
	{
		fprintf(stderr, "amqp_tool: consume amq.rabbitmq.reply-to failed\n");
		return 1;
	}
	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
	p.reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to");
	p.correlation_id = amqp_cstring_bytes(argv[5]);
	if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(argv[3]), 0, 0, &p,
						   amqp_cstring_bytes(argv[4])) != AMQP_STATUS_OK)
	{
		fprintf(stderr, "amqp_tool: publish failed\n");
		return 1;
	}
	tv.tv_sec = atoi(argv[6]);
	tv.tv_usec = 0;
	amqp_maybe_release_buffers(c);
	r = amqp_consume_message(c, &env, &tv, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		fprintf(stderr, "amqp_tool: no reply within %s s\n", argv[6]);
		return 1;
	}
	printf("%.*s\t%.*s\n",
		   (env.message.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG) ?
			   (int) env.message.properties.correlation_id.len :
			   0,
		   (char *) env.message.properties.correlation_id.bytes, (int) env.message.body.len,
		   (char *) env.message.body.bytes);
	amqp_destroy_envelope(&env);
	close_conn(c);
	return 0;
}

static int
do_flood(int argc, char **argv)
{
	amqp_connection_state_t c;
	amqp_basic_properties_t p;
	long n, acked = 0;

	if (argc < 7)
		return 2;
	n = atol(argv[6]);
	c = open_conn(argv[2]);
	amqp_confirm_select(c, 1);
	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
	p.delivery_mode = 2;
	for (long i = 0; i < n; i++)
		if (amqp_basic_publish(c, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes(argv[4]), 0, 0, &p,
							   amqp_cstring_bytes(argv[5])) != AMQP_STATUS_OK)
			return 1;
	while (acked < n)
	{
		amqp_frame_t f;

		if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
			return 1;
		if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD)
		{
			amqp_basic_ack_t *a = f.payload.method.decoded;

			acked = (long) a->delivery_tag;
		}
	}
	close_conn(c);
	return 0;
}

static int
do_bind(int argc, char **argv)
{
	amqp_connection_state_t c;

	if (argc < 6)
		return 2;
	c = open_conn(argv[2]);
	amqp_exchange_declare(c, 1, amqp_cstring_bytes(argv[4]), amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
	amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[3]), 0, 1, 0, 0, amqp_empty_table);
	amqp_queue_bind(c, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes(argv[4]), amqp_cstring_bytes(argv[5]),
					amqp_empty_table);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
	{
		fprintf(stderr, "amqp_tool: declare/bind failed\n");
		return 1;
	}
	close_conn(c);
	return 0;
}

static int
do_delete_exchange(int argc, char **argv)
{
	amqp_connection_state_t c;

	if (argc < 4)
		return 2;
	c = open_conn(argv[2]);
	amqp_exchange_delete(c, 1, amqp_cstring_bytes(argv[3]), 0);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
	{
		fprintf(stderr, "amqp_tool: exchange.delete failed\n");
		return 1;
	}
	close_conn(c);
	return 0;
}

static int
do_drain(int argc, char **argv)
{
	amqp_connection_state_t c;

	if (argc < 4)
		return 2;
	c = open_conn(argv[2]);
	for (;;)
	{
		amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(argv[3]), 0);
		amqp_basic_get_ok_t *ok;
		amqp_message_t m;
		char rk[256];
		uint64_t tag;

		if (r.reply_type != AMQP_RESPONSE_NORMAL)
		{
			fprintf(stderr, "amqp_tool: basic.get failed\n");
			return 1;
		}
		if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
			break;
		ok = r.reply.decoded;
		snprintf(rk, sizeof(rk), "%.*s", (int) ok->routing_key.len, (char *) ok->routing_key.bytes);
		tag = ok->delivery_tag;
		if (amqp_read_message(c, 1, &m, 0).reply_type != AMQP_RESPONSE_NORMAL)
		{
			fprintf(stderr, "amqp_tool: reading a message failed\n");
			return 1;
		}
		printf("%d\t%.*s\t%s\t%.*s\n",
			   (m.properties._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) ? m.properties.delivery_mode : 0,
			   (m.properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? (int) m.properties.content_type.len : 0,
			   (char *) m.properties.content_type.bytes, rk, (int) m.body.len, (char *) m.body.bytes);
		amqp_basic_ack(c, 1, tag, 0);
		amqp_destroy_message(&m);
		amqp_maybe_release_buffers(c);
	}
	close_conn(c);
	return 0;
}

int
main(int argc, char **argv)
{
	int rc = 2;

	if (argc >= 2 && !strcmp(argv[1], "publish"))
		rc = do_publish(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "rpc"))
		rc = do_rpc(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "flood"))
		rc = do_flood(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "bind"))
		rc = do_bind(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "delete-exchange"))
		rc = do_delete_exchange(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "drain"))
		rc = do_drain(argc, argv);
	if (rc == 2)
		fprintf(
			stderr,
			"usage: amqp_tool publish|rpc|flood|bind|delete-exchange|drain URL ... (see the header of amqp_tool.c)\n");
	return rc;
}
