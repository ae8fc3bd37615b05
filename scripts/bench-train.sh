#!/usr/bin/env bash
# Training speed and accuracy, mend vs scikit-learn, on the same synthetic CSVs in one run.
# Usage: scripts/bench-train.sh [ROWS_TRAIN...]   (default: 100000 1000000)
# Needs python3 with scikit-learn (pip install scikit-learn; it is not a dependency of mend).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-100000 1000000}")
[ $# -eq 0 ] && sizes=(100000 1000000)
cargo build --release -q -p mend
M=${CARGO_TARGET_DIR:-target}/release/mend

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%-10s %-12s %10s %10s %6s %9s\n' rows tool fit_ms total_ms iters accuracy
for rows in "${sizes[@]}"; do
  total=$(( rows * 5 / 4 ))   # the newest 20% are held out, so `rows` are trained on
  csv="$dir/train_$rows.csv"
  $M synth --out "$csv" --rows "$total" --numeric 20 --categorical 0 --seed 42 >/dev/null
  start=$(date +%s%N)
  out=$($M train --data "$csv" --label label --out "$dir/m.mend" --json)
  end=$(date +%s%N)
  python3 - "$out" "$rows" $(( (end - start) / 1000000 )) <<'PY'
import json, sys
o = json.loads(sys.argv[1])
print(f"{sys.argv[2]:<10} {'mend':<12} {o['fit']['fit_ms']:>10.0f} {o['train_ms']:>10} {o['fit']['iterations']:>6} {o['holdout']['accuracy']:>9.4f}")
PY
  # Unset the OpenBLAS pinning of this workplace for numpy's best speed (see env notes).
  sk=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 scripts/bench_train_sklearn.py "$csv" 20)
  python3 - "$sk" "$rows" <<'PY'
import json, sys
o = json.loads(sys.argv[1])
print(f"{sys.argv[2]:<10} {'scikit-learn':<12} {o['fit_ms']:>10.0f} {o['prep_ms'] + o['fit_ms']:>10.0f} {o['iterations']:>6} {o['accuracy']:>9.4f}")
PY
done
