/*
 * config_table.h — private to config.c and config_reload.c: the shape of one
 * row of the settings table.  The table itself (names, defaults, bounds, the
 * reloadable flag, help) lives in config.c and is the only source of
 * defaults; docs/bridge.md "Configuration" lists it for users.
 *
 * Rules: a setting is marked reloadable only when every thread that uses it
 * reads it from the shared struct sc_config at each use (never a copy taken
 * at start), and, for a string, only when no role thread reads it at all:
 * config_reload() stores new ints in place with an atomic store and swaps
 * string pointers on the main thread (docs/bridge.md "Reload").
 */
#ifndef SC_CONFIG_TABLE_H
#define SC_CONFIG_TABLE_H

#include <stddef.h>

#include "config.h"

enum setting_type
{
	T_STR,
	T_INT
};

struct setting
{
	const char *name;
	enum setting_type type;
	size_t offset;	 /* into struct sc_config */
	const char *def; /* default, as text; NULL = empty */
	long min, max;	 /* T_INT bounds */
	int reloadable;	 /* applied on SIGHUP */
	int secret;		 /* redact in config_print, never logged */
	const char *help;
};

/* The field of cfg a setting describes. */
static inline char **
str_field(struct sc_config *cfg, const struct setting *s)
{
	return (char **) ((char *) cfg + s->offset);
}

static inline int *
int_field(struct sc_config *cfg, const struct setting *s)
{
	return (int *) ((char *) cfg + s->offset);
}

/* The settings table (config.c); *n is set to its length. */
const struct setting *config_settings(size_t *n);

#endif
