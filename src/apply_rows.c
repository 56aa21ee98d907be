/*
 * apply_rows.c: the result rows of the batch apply functions (apply.c):
 * sharecount_apply_batch()'s (ord, status, error) and the change rows and
 * the applied count of sharecount_apply_batch_changes() and
 * sharecount_apply_json() (docs/sql.md), written into the function's
 * tuplestore.
 *
 * Rules: the result's columns are those of sharecount_apply_batch_changes()
 * (SC_APPLY_BATCH_COLS; sharecount_apply_batch() has the first 3 and gets no
 * change or count row), ord first, an int4 never NULL in a status row (its
 * rows are written in place, row_set_ord).  Memory: the caller's context.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "sharecount.h"
#include "apply.h"

/*
 * A status row without an error, (0, status, NULL, ...), as a minimal tuple
 * whose ord is then written in place (row_set_ord): forming the row once
 * per status instead of once per job (heap_form_minimal_tuple was half of a
 * status row's cost, docs/performance.md "P7 apply internals").
 */
static MinimalTuple
status_row(TupleDesc desc, const char *status)
{
	Datum values[SC_APPLY_BATCH_COLS];
	bool vnulls[SC_APPLY_BATCH_COLS];

	memset(values, 0, sizeof(values));
	memset(vnulls, true, sizeof(vnulls));
	vnulls[0] = vnulls[1] = false;
	values[0] = Int32GetDatum(0);
	values[1] = CStringGetTextDatum(status);
	return heap_form_minimal_tuple(desc, values, vnulls);
}

/* Set ord, the row's first column (int4, never null: at its data's start). */
static void
row_set_ord(MinimalTuple row, int32 ord)
{
	char *data = (char *) row + row->t_hoff - MINIMAL_TUPLE_OFFSET;

	memcpy(data, &ord, sizeof(ord));
}

/*
 * The status rows of a batch, in order: (ord, status, error), the change
 * columns NULL.  An applied or duplicate row is a copy of its status's row
 * with its ord; an invalid one, with its error, is formed as it is.  Without
 * applied_rows an applied item gets no row.  Returns the applied items' number.
 */
int64
sc_put_statuses(ReturnSetInfo *rsinfo, const BatchItem *items, int n,
				bool applied_rows)
{
	TupleDesc desc = rsinfo->setDesc;
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	MinimalTuple applied = status_row(desc, "applied");
	MinimalTuple duplicate = status_row(desc, "duplicate");
	Datum values[SC_APPLY_BATCH_COLS];
	bool vnulls[SC_APPLY_BATCH_COLS];
	int64 napplied = 0;
	int i;

	if (TupleDescAttr(desc, 0)->atttypid != INT4OID)
		elog(ERROR, "apply: the result's first column is not ord int4");
	memset(values, 0, sizeof(values));
	memset(vnulls, true, sizeof(vnulls));
	vnulls[0] = vnulls[1] = vnulls[2] = false;
	for (i = 0; i < n; i++)
	{
		MinimalTuple row = items[i].status == ST_APPLIED ? applied :
			items[i].status == ST_DUPLICATE				 ? duplicate :
														   NULL;

		if (row == applied)
		{
			napplied++;
			if (!applied_rows)
				continue;
		}
		if (row == NULL)
		{
			values[0] = Int32GetDatum(i + 1);
			values[1] = CStringGetTextDatum("invalid");
			values[2] = CStringGetTextDatum(items[i].error);
			tuplestore_putvalues(rsinfo->setResult, desc, values, vnulls);
			continue;
		}
		row_set_ord(row, i + 1);
		ExecStoreMinimalTuple(row, slot, false);
		tuplestore_puttupleslot(rsinfo->setResult, slot); /* copies it */
	}
	ExecDropSingleTupleTableSlot(slot);
	return napplied;
}

/* One change row: ord and error NULL, status 'changed', the key's new row. */
void
sc_put_change(ReturnSetInfo *rsinfo, const KeyChange *ch)
{
	Datum values[SC_APPLY_BATCH_COLS];
	bool vnulls[SC_APPLY_BATCH_COLS] = {true,  false, true,	 false,
										false, false, false, false};

	values[0] = values[2] = (Datum) 0;
	values[1] = CStringGetTextDatum("changed");
	values[3] = CStringGetTextDatum(ch->ctype);
	values[4] = CStringGetTextDatum(ch->cid);
	values[5] =
		Int64GetDatum(Max(ch->count, 0)); /* as sharecount_get reads it */
	values[6] = Int64GetDatum(ch->delta);
	values[7] = Int64GetDatum(ch->version);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, vnulls);
}

/*
 * The last row without applied rows: ord, error and the key NULL, status
 * 'applied', share_count the number of messages applied (0 too).
 */
void
sc_put_applied_count(ReturnSetInfo *rsinfo, int64 napplied)
{
	Datum values[SC_APPLY_BATCH_COLS];
	bool vnulls[SC_APPLY_BATCH_COLS] = {true, false, true, true,
										true, false, true, true};

	memset(values, 0, sizeof(values));
	values[1] = CStringGetTextDatum("applied");
	values[5] = Int64GetDatum(napplied);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, vnulls);
}
