#!/usr/bin/env bash
# certnet's feed pipeline against the IntelMQ baseline, on the same Shadowserver report.
#
# Usage (as root, which IntelMQ's script needs):  bench/pipeline_vs_intelmq.sh [ROWS]   (default 100000)
#   env: SHARED (default: ../shared beside the repository), WORKDIR (default /tmp/certnet-vs-intelmq;
#        everything is written there), REPEAT (certnet's timed runs, default 3), INTELMQ_RUNS (default 1),
#        SKIP_INSTALL=1 (passed on to IntelMQ's script).
# Generates the feed once with the baseline's gen_feed.py (the seed IntelMQ's script uses), runs
# run_intelmq_bench.sh (STAGED=0) on it, then bench/pipeline.py on the very same file, and prints both
# figures, the ratio and whether the routed (address, constituent) pairs agree. Exits non-zero if
# either side fails or the pairs differ.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$(cd "${SHARED:-$REPO/../shared}" && pwd)"
BASELINE="$SHARED/bench/intelmq"
ROWS="${1:-${ROWS:-100000}}"
WORKDIR="${WORKDIR:-/tmp/certnet-vs-intelmq}"
REPEAT="${REPEAT:-3}"
INTELMQ_RUNS="${INTELMQ_RUNS:-1}"
SEED=20240501  # gen_feed.py's default; run_intelmq_bench.sh passes no --seed
INTELMQ_BASE="$WORKDIR/intelmq"
DATA="$INTELMQ_BASE/data"  # where run_intelmq_bench.sh looks for the feed: it reuses one of ROWS rows

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
figure() { grep -E "^$1=" "$2" | tail -1 | cut -d= -f2-; }

for needed in "$BASELINE/gen_feed.py" "$BASELINE/run_intelmq_bench.sh" "$REPO/.venv/bin/python"; do
  [ -e "$needed" ] || { echo "missing: $needed (set SHARED=… to the shared directory)" >&2; exit 2; }
done
mkdir -p "$WORKDIR" "$DATA"

# ---------------------------------------------------------------- the feed (once, for both)
meta_matches() {
  [ -f "$DATA/meta.json" ] && python3 - "$DATA/meta.json" "$ROWS" "$SEED" <<'EOF'
import json, sys
meta = json.load(open(sys.argv[1]))
sys.exit(0 if (meta["rows"], meta["seed"]) == (int(sys.argv[2]), int(sys.argv[3])) else 1)
EOF
}
if ! meta_matches; then
  log "generating the feed: $ROWS rows, seed $SEED"
  python3 "$BASELINE/gen_feed.py" --outdir "$DATA" --rows "$ROWS" --seed "$SEED" >&2
fi
FEED="$DATA/$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["feed_file"])' "$DATA/meta.json")"
log "feed: $FEED ($(du -h "$FEED" | cut -f1))"

# ---------------------------------------------------------------- IntelMQ
log "IntelMQ: run_intelmq_bench.sh $INTELMQ_RUNS (ROWS=$ROWS STAGED=0 WORKDIR=$INTELMQ_BASE)"
ROWS="$ROWS" STAGED=0 WORKDIR="$INTELMQ_BASE" bash "$BASELINE/run_intelmq_bench.sh" "$INTELMQ_RUNS" \
  | tee "$WORKDIR/intelmq.out"
INTELMQ_EPS="$(figure intelmq_events_per_s "$WORKDIR/intelmq.out")"
INTELMQ_HASH="$(figure routed_pairs_sha256 "$WORKDIR/intelmq.out")"
if [ -z "$INTELMQ_EPS" ] || [ "$INTELMQ_EPS" = "0.0" ]; then
  echo "IntelMQ's run gave no events/s figure (see $WORKDIR/intelmq.out)" >&2
  exit 1
fi

# ---------------------------------------------------------------- certnet
log "certnet: bench/pipeline.py --repeat $REPEAT"
rm -rf "$WORKDIR/certnet"
status=0
"$REPO/.venv/bin/python" "$REPO/bench/pipeline.py" --feed "$FEED" --ipasn "$DATA/ipasn.dat" \
  --constituents "$DATA/constituents.csv" --repeat "$REPEAT" --workdir "$WORKDIR/certnet" \
  --intelmq-events-per-s "$INTELMQ_EPS" | tee "$WORKDIR/certnet.out" || status=$?
CERTNET_EPS="$(figure certnet_events_per_s "$WORKDIR/certnet.out")"
CERTNET_HASH="$(figure routed_pairs_sha256 "$WORKDIR/certnet.out")"
SPEEDUP="$(figure speedup_vs_intelmq "$WORKDIR/certnet.out")"

# ---------------------------------------------------------------- summary
echo "--- certnet vs IntelMQ, $ROWS rows ($(nproc) cores)"
echo "intelmq_events_per_s=$INTELMQ_EPS"
echo "certnet_events_per_s=$CERTNET_EPS"
echo "certnet_events_written_per_s=$(figure certnet_events_written_per_s "$WORKDIR/certnet.out")"
echo "speedup_vs_intelmq=$SPEEDUP"
echo "intelmq_routed_pairs_sha256=$INTELMQ_HASH"
echo "certnet_routed_pairs_sha256=$CERTNET_HASH"
if [ -n "$CERTNET_HASH" ] && [ "$CERTNET_HASH" = "$INTELMQ_HASH" ]; then
  echo "routed_pairs_equal=yes"
else
  echo "routed_pairs_equal=no"
  status=1
fi
exit "$status"
