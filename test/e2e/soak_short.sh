#!/usr/bin/env bash
# docs/soak.md: the chaos soak for about a minute, inside `make test`
# — random inserts, deletes, re-targets and TRUNCATEs from 4 clients while two
# bridges are killed (SIGKILL) and paused (SIGSTOP), RabbitMQ is stopped and
# PostgreSQL restarted (each kind at least once); ends exact, drained, nothing
# dead-lettered, no client error caused by a bridge or broker fault.  A new seed
# each run (printed); replay a failure with `SOAK_SEED=N SOAK_SECONDS=60 make soak`.
# SOAK_SHORT_SECONDS overrides the length; SOAK_SEED is honoured.
SOAK_SECONDS=${SOAK_SHORT_SECONDS:-60} exec bash "$(dirname "$0")/../soak.sh"
