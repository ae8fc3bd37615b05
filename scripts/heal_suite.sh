#!/usr/bin/env bash
# Healing on a broad suite of generated drifting streams (scripts/heal_suite.py): runs
# `mend bench-heal --stream` on every stream at each pace and label delay, then prints a
# Markdown summary per split (scripts/heal_suite_report.py; also saved as results/report.md).
#
# Usage: scripts/heal_suite.sh [DIR]    (default ./heal-suite; results go to DIR/results)
#
# Environment:
#   MEND=target/release/mend   the binary (build it first: cargo build --release -p mend)
#   RATES="2000 10000"         paces, rows per second
#   DELAYS="0 2000"            label delays, rows
#   SPLIT=all                  all, tune or held_out: which streams to run
#   FAMILIES=all               comma-separated families to generate and run (heal_suite.py --list)
#   SEEDS=                     comma-separated seeds to run (default: every generated seed)
#   SUITE_SEEDS=1,2,3          seeds generated; the third of each three, by position, is held out,
#                              so SEEDS only filters and never changes which streams are held out
#   ROWS=50000 TRAIN_ROWS=5000 streamed rows and first-champion rows per stream
#   RESUME=1                   keep result files already in DIR/results instead of re-running
# The summary covers every result in DIR/results, earlier runs' included (remove it for a clean
# run).
#
# Held-out streams are for reporting only: nothing may be tuned on them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=${1:-./heal-suite}
results=$suite/results
MEND=${MEND:-target/release/mend}
RATES=${RATES:-2000 10000}
DELAYS=${DELAYS:-0 2000}
SPLIT=${SPLIT:-all}
FAMILIES=${FAMILIES:-all}
SEEDS=${SEEDS:-}
SUITE_SEEDS=${SUITE_SEEDS:-1,2,3}
ROWS=${ROWS:-50000}
TRAIN_ROWS=${TRAIN_ROWS:-5000}

case $SPLIT in
  all | tune | held_out) ;;
  *) echo "SPLIT must be all, tune or held_out" >&2; exit 2 ;;
esac
if [ ! -x "$MEND" ] && ! command -v "$MEND" >/dev/null 2>&1; then
  echo "no mend binary at $MEND (cargo build --release -p mend, or set MEND)" >&2
  exit 2
fi

echo "generating the suite into $suite ..." >&2
python3 "$here/heal_suite.py" --out "$suite" --rows "$ROWS" --train-rows "$TRAIN_ROWS" \
  --seeds "$SUITE_SEEDS" --families "$FAMILIES"
mkdir -p "$results"

# The streams to run: name per line, from the suite's index, filtered by SPLIT and SEEDS.
mapfile -t streams < <(python3 - "$suite/suite.json" "$SPLIT" "$SEEDS" <<'EOF'
import json, sys
index, split, seeds = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
keep = {int(s) for s in seeds.split(",") if s.strip()}
for s in index["streams"]:
    if (split == "all" or s["split"] == split) and (not keep or s["seed"] in keep):
        print(s["name"])
EOF
)
if [ ${#streams[@]} -eq 0 ]; then
  echo "no streams match SPLIT=$SPLIT SEEDS=$SEEDS" >&2
  exit 2
fi

total=$(( ${#streams[@]} * $(wc -w <<<"$RATES") * $(wc -w <<<"$DELAYS") ))
n=0
failures=0
for name in "${streams[@]}"; do
  for rate in $RATES; do
    for delay in $DELAYS; do
      n=$((n + 1))
      out=$results/$name-r$rate-d$delay.json
      if [ "${RESUME:-0}" = 1 ] && [ -s "$out" ]; then
        echo "[$n/$total] $name rate $rate delay $delay: kept" >&2
        continue
      fi
      echo "[$n/$total] $name rate $rate delay $delay" >&2
      if "$MEND" bench-heal --stream "$suite/$name.csv" --rate "$rate" --label-delay "$delay" \
        --json >"$out.tmp" 2>"$results/$name-r$rate-d$delay.log"; then
        mv "$out.tmp" "$out"
      else
        echo "  failed (log: $results/$name-r$rate-d$delay.log):" >&2
        tail -n 5 "$results/$name-r$rate-d$delay.log" >&2 || true
        rm -f "$out.tmp"
        failures=$((failures + 1))
      fi
    done
  done
done

python3 "$here/heal_suite_report.py" "$results" --suite "$suite" | tee "$results/report.md"
if [ "$failures" -gt 0 ]; then
  echo "$failures of $total runs failed" >&2
  exit 1
fi
