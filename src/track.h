/*
 * track.h: the registry of tracked tables (registry.c) and counting a tracked
 * table's rows per key (counts.c), shared by the trigger (trigger.c).
 *
 * Rules: the registry (sharecount.tracked) is the only source of a tracked
 * table's column mapping; trigger arguments are ignored (docs/extension.md,
 * "Tracking a table").  Strings returned are palloc'd in the current memory
 * context unless said otherwise.
 */
#ifndef SHARECOUNT_TRACK_H
#define SHARECOUNT_TRACK_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/relcache.h"

/* The names of the two triggers sharecount_track() attaches. */
#define SC_ROW_TRIGGER "sharecount_row"
#define SC_TRUNCATE_TRIGGER "sharecount_truncate"

/* Keys fetched per batch when counting a table's rows per key. */
#define SC_COUNT_FETCH 1000

/* The mapped columns, in the order of sharecount.tracked. */
typedef enum TrackedColumn
{
	TC_ID,
	TC_TYPE,
	TC_CID,
	TC_USER,
	TC_CHANNEL,
	TC_CAMPAIGN,
	TC_NCOLS
} TrackedColumn;

/* How one mapped column is read from a row. */
typedef enum ColumnKind
{
	COLUMN_TEXT, /* text or varchar: the datum is the text */
	COLUMN_UUID, /* uuid: formatted here, without uuid_out */
	COLUMN_OTHER /* anything else: its output function */
} ColumnKind;

/*
 * attno 0: no such column in the mapping (the job field is omitted); attno
 * -1: the registry names a column the table does not have (an error for a
 * required column, else the field is omitted).
 */
typedef struct ColumnReader
{
	AttrNumber attno;
	ColumnKind kind;
	FmgrInfo out; /* COLUMN_OTHER only */
} ColumnReader;

/* A tracked table's registration, as cached per backend (registry.c). */
typedef struct TrackedTable
{
	Oid relid; /* hash key */
	bool valid;
	char names[TC_NCOLS][NAMEDATALEN]; /* "" = not mapped */
	ColumnReader col[TC_NCOLS];
	AttrNumber max_attno; /* the last mapped column present (0: none) */
} TrackedTable;

/* registry.c */
extern TrackedTable *sc_tracked_get(Relation rel);

/*
 * counts.c: the columns counted; channel/campaign NULL or "" = not grouped
 * by (the callback then gets NULL for them).
 */
typedef struct ScCountColumns
{
	const char *ctype;
	const char *cid;
	const char *channel;
	const char *campaign;
} ScCountColumns;

/*
 * counts.c: called once per countable key (and channel and campaign, NULL =
 * NULL, unmapped or too long for a job); uncountable rows are skipped.
 */
typedef void (*sc_key_count_fn)(const char *ctype, const char *cid,
								const char *channel, const char *campaign,
								int64 n, void *arg);
extern int64 sc_count_keys(Oid relid, const ScCountColumns *cols,
						   const char *only_ctype, const char *only_cid,
						   sc_key_count_fn fn, void *arg);

#endif
