# claim_wire.sh — sourced by bench/claim_wire_callgrind.sh and bench/claim_wire_cpu.sh.
#
# claim_stmt NAME B: the statement each script measures for NAME (rows: the
# row-per-job claim as the bridge ran it before; packed: the bridge's claim;
# count: the row-per-job claim with no row sent); empty for an unknown NAME.
claim_stmt() {
  case $1 in
    rows) echo "SELECT id, job_name, job_id, body FROM sharecount_outbox_claim($2)" ;;
    packed) echo "SELECT sharecount_outbox_claim_packed($2)" ;;
    count) echo "SELECT count(*) FROM sharecount_outbox_claim($2)" ;;
  esac
}
