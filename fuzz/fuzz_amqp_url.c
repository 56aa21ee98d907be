/*
 * fuzz_amqp_url.c — libFuzzer harness for the amqp_url setting: the
 * comma-separated list is split and each URL checked with rabbitmq-c's
 * amqp_parse_url (which writes into its input, so config.c parses a copy),
 * through config_load() (bridge/config.c), then redacted by config_print
 * (log_redact, bridge/log.c) (docs/fuzzing.md; checks in fuzz_cfg.h).
 *
 * Input: the amqp_url value (up to the first NUL), given as
 * `--roles=publisher --amqp_url=VALUE` with an empty config file; the same
 * value is then parsed once more as the only item of a list, directly by
 * amqp_parse_url on an exact-size copy.
 *
 * Rules: see fuzz_cfg.h.
 */
#include "fuzz_cfg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	char *url = fz_take(&in);
	char *flag = malloc(strlen(url) + sizeof("--amqp_url="));
	char *argv[] = {"sharecount-bridge", "-c", fz_conf_path, "--roles=publisher", flag, NULL};
	struct amqp_connection_info info;
	char *copy = strdup(url);

	FZ_CHECK(flag != NULL && copy != NULL);
	sprintf(flag, "--amqp_url=%s", url);
	fz_cfg_write_file(NULL, 0);
	fz_cfg_run(5, argv);

	amqp_default_connection_info(&info);
	if (amqp_parse_url(copy, &info) == AMQP_STATUS_OK)
	{
		FZ_CHECK(info.host != NULL && info.vhost != NULL && info.user != NULL && info.password != NULL);
		FZ_CHECK(info.port >= 0 && info.port <= 65535);
	}
	free(copy);
	free(flag);
	free(url);
	return 0;
}
