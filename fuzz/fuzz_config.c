/*
 * fuzz_config.c — libFuzzer harness for the bridge's configuration loader,
 * bridge/config.c: the file parser, SHARECOUNT_* environment variables and
 * command-line flags, validation, config_print's redaction and
 * config_reload (docs/fuzzing.md; checks in fuzz_cfg.h).
 *
 * Input: byte 0 = number of arguments (low 4 bits), byte 1 = number of
 * environment entries (low 3 bits); then that many "KEY=value" entries, each
 * ended by a NUL (set as SHARECOUNT_KEY), then that many arguments, each
 * ended by a NUL; every remaining byte is the config file's contents.
 *
 * Rules: see fuzz_cfg.h (memfd config file, environment reset per input;
 * LLVMFuzzerInitialize).
 */
#include "fuzz_cfg.h"

/* Set SHARECOUNT_<KEY>=value from "KEY=value"; the name goes to names[] for unsetenv. */
static int
fz_setenv(const char *entry, char *name, size_t namelen)
{
	const char *eq = strchr(entry, '=');

	if (!eq)
		return 0;
	snprintf(name, namelen, "SHARECOUNT_%.*s", (int) (eq - entry), entry);
	return setenv(name, eq + 1, 1) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	int nargs = fz_byte(&in) & 15;
	int nenv = fz_byte(&in) & 7;
	char names[8][160];
	int nset = 0;
	char *pieces[8 + 16];
	int npieces = 0;
	char *argv[FZ_MAX_ARGS + 1];
	char *conf_eq = NULL;
	int argc = 0;

	for (int i = 0; i < nenv; i++)
	{
		char *e = pieces[npieces++] = fz_take(&in);

		if (fz_setenv(e, names[nset], sizeof(names[nset])))
			nset++;
	}
	argv[argc++] = "sharecount-bridge";
	argv[argc++] = "-c";
	argv[argc++] = fz_conf_path;
	for (int i = 0; i < nargs; i++)
	{
		char *a = pieces[npieces++] = fz_take(&in);

		/* the config file is always the memfd: no input reads another file */
		if (argc > 0 && (strcmp(argv[argc - 1], "-c") == 0 || strcmp(argv[argc - 1], "--config") == 0))
			a = fz_conf_path;
		else if (strncmp(a, "--config=", 9) == 0 && !conf_eq)
		{
			conf_eq = malloc(9 + strlen(fz_conf_path) + 1);
			FZ_CHECK(conf_eq != NULL);
			sprintf(conf_eq, "--config=%s", fz_conf_path);
			a = conf_eq;
		}
		else if (strncmp(a, "--config=", 9) == 0)
			continue;
		argv[argc++] = a;
	}
	argv[argc] = NULL;
	fz_cfg_write_file(in.p, in.left);

	fz_cfg_run(argc, argv);

	for (int i = 0; i < nset; i++)
		unsetenv(names[i]);
	for (int i = 0; i < npieces; i++)
		free(pieces[i]);
	free(conf_eq);
	return 0;
}
