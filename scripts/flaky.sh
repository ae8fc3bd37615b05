#!/usr/bin/env bash
# The flakiness gate: runs the whole test suite N times (default 5) while a second process keeps
# every core busy, and lists each test that failed at least once, with how often.
#
#   ./scripts/flaky.sh            # 5 runs under load
#   ./scripts/flaky.sh 3          # 3 runs
#   LOAD=0 ./scripts/flaky.sh 2   # without the load, to compare
#
# The load is `stress-ng --cpu 0` (one busy worker per core) when stress-ng is installed, else
# one shell busy loop per core. The suite is built once first, so the runs measure the tests,
# not the compiler. Exit status: 0 when every run passed, 1 when any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-5}"
load="${LOAD:-1}"
export PATH="$PATH:/usr/sbin"
out="$(mktemp -d -t mend-flaky-XXXXXX)"

echo "== building the suite once"
cargo nextest run --workspace --no-run >/dev/null

load_pids=()
stop_load() {
  for pid in "${load_pids[@]+"${load_pids[@]}"}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap stop_load EXIT
if [ "$load" != "0" ]; then
  cores="$(nproc)"
  if command -v stress-ng >/dev/null 2>&1; then
    stress-ng --cpu "$cores" --quiet &
    load_pids+=("$!")
    echo "== load: stress-ng --cpu $cores"
  else
    for _ in $(seq "$cores"); do
      ( while :; do :; done ) &
      load_pids+=("$!")
    done
    echo "== load: $cores busy loops (install stress-ng for a steadier load)"
  fi
fi

failed_runs=0
for run in $(seq "$runs"); do
  started=$(date +%s)
  if cargo nextest run --workspace --no-fail-fast >"$out/run-$run.log" 2>&1; then
    verdict="passed"
  else
    verdict="FAILED"
    failed_runs=$((failed_runs + 1))
  fi
  summary="$(grep -E '^\s+Summary' "$out/run-$run.log" | tail -1 | sed 's/^ *//')"
  echo "== run $run/$runs: $verdict in $(( $(date +%s) - started )) s: $summary"
done
stop_load

echo "== tests that failed at least once (of $runs runs; logs in $out)"
# nextest prints `FAIL [ time ] (i/n) crate::binary test` as a test fails and again in its
# summary: each run counts a test once.
if for log in "$out"/run-*.log; do
  grep -E '^\s+(FAIL|TIMEOUT|SIGSEGV|SIGABRT) \[' "$log" \
    | sed -E 's/^\s+(FAIL|TIMEOUT|SIGSEGV|SIGABRT) \[[^]]*\] (\([^)]*\) )?//' | sort -u || true
done | sort | uniq -c | sort -rn | grep .; then
  :
else
  echo "   none"
fi
[ "$failed_runs" -eq 0 ]
