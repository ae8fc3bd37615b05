#!/usr/bin/env bash
# Runs mend's whole test suite on a fresh machine: installs what the tests need (nats-server for
# the NATS tests, cargo-nextest as the runner), then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v nats-server >/dev/null 2>&1 && [ -z "${NATS_SERVER_BIN:-}" ]; then
  echo "installing nats-server (Debian package) for the NATS tests" >&2
  need_root apt-get update -qq
  need_root apt-get install -y -qq nats-server >/dev/null
  # Debian installs it under /usr/sbin, which is not on every user's PATH.
  if ! command -v nats-server >/dev/null 2>&1 && [ -x /usr/sbin/nats-server ]; then
    export NATS_SERVER_BIN=/usr/sbin/nats-server
  fi
fi

if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --no-fail-fast "$@"
else
  echo "cargo-nextest not found; running cargo test" >&2
  exec cargo test --workspace --no-fail-fast "$@"
fi
