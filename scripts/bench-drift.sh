#!/usr/bin/env bash
# Data drift on ROWS x 20 numeric rows: `mend drift` vs Evidently's DataDriftPreset on the same
# two CSVs in one run: wall time, peak memory (/usr/bin/time -v), and the columns each flags.
# Usage: scripts/bench-drift.sh [ROWS]   (default: 1000000)
# Evidently (with pandas < 3, which it needs) is installed into a private virtualenv at
# $MEND_BENCH_VENV (default ~/.cache/mend-bench-drift); it is not a dependency of mend.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
venv=${MEND_BENCH_VENV:-$HOME/.cache/mend-bench-drift}
if ! "$venv/bin/python" -c "import evidently" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q evidently "pandas<3"
fi
py="$venv/bin/python"

cargo build --release -q -p mend
M=${CARGO_TARGET_DIR:-target}/release/mend

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "generating $rows x 20 reference and current rows in $dir ..." >&2
"$py" scripts/bench-drift.py generate "$dir" "$rows"

echo "mend drift ..." >&2
/usr/bin/time -v -o "$dir/mend.time" \
  "$M" drift --reference "$dir/ref.csv" --current "$dir/cur.csv" --json >"$dir/mend.json"
echo "mend per-window computation (rows in memory, as the monitor has them) ..." >&2
"$M" drift --reference "$dir/ref.csv" --current "$dir/cur.csv" --bench-window >"$dir/window.json"
echo "Evidently DataDriftPreset ..." >&2
# Unset the OpenBLAS pinning of this workplace for numpy's best speed (as bench-train.sh does).
/usr/bin/time -v -o "$dir/evidently.time" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
  "$py" scripts/bench-drift.py evidently "$dir" >"$dir/evidently.json"

"$py" scripts/bench-drift.py summary "$dir"
