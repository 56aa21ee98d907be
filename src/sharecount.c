/* placeholder, replaced by the extension work */
#include "postgres.h"
#include "fmgr.h"
PG_MODULE_MAGIC;
