/*
 * http.c — the http role (SPEC §7) on libmicrohttpd.
 *
 * FIRST CUT: serves /healthz and answers everything else 404 in the SPEC §7
 * error shape; the full API, the database pool and /metrics replace this.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "http.h"
#include "log.h"
#include "metrics.h"

static struct MHD_Daemon *daemon_handle;

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *) body,
															  MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	metrics_http_status(status);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
	(void) cls; (void) version; (void) upload_data; (void) upload_size; (void) req_cls;
	if (strcmp(method, "GET") != 0)
		return reply(conn, 405, "{\"statusCode\":405,\"message\":\"method not allowed\",\"error\":\"Method Not Allowed\"}");
	if (strcmp(url, "/healthz") == 0)
		return reply(conn, 200, "{\"status\":\"ok\"}");
	return reply(conn, 404, "{\"statusCode\":404,\"message\":\"not found\",\"error\":\"Not Found\"}");
}

int
http_start(const struct sc_config *cfg)
{
	struct sockaddr_in addr;
	char		host[256];
	const char *colon = strrchr(cfg->http_listen, ':');
	long		port;

	if (!colon || (size_t) (colon - cfg->http_listen) >= sizeof(host))
	{
		log_error("http_listen \"%s\" is not host:port", cfg->http_listen);
		return -1;
	}
	memcpy(host, cfg->http_listen, colon - cfg->http_listen);
	host[colon - cfg->http_listen] = '\0';
	port = strtol(colon + 1, NULL, 10);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t) port);
	if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &addr.sin_addr) != 1 || port <= 0 || port > 65535)
	{
		log_error("http_listen \"%s\" is not an IPv4 host:port", cfg->http_listen);
		return -1;
	}
	daemon_handle = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t) port,
									 NULL, NULL, handle, NULL,
									 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
									 MHD_OPTION_END);
	if (!daemon_handle)
	{
		log_error("http: cannot listen on %s", cfg->http_listen);
		return -1;
	}
	log_info("http: listening on %s", cfg->http_listen);
	return 0;
}

void
http_stop(void)
{
	if (daemon_handle)
		MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
}
