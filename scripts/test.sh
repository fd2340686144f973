#!/usr/bin/env bash
# The whole test suite: unit and integration tests (Redis-backed ones against real redis-server
# processes), then the console's end-to-end tests in Debian's Chromium against a gateway wired to
# the mock upstream. Fails on the first failing test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
scripts/setup.sh --test

# Redis: the one given by REDIS_URL, or our own on a free port. Tests that stop and restart Redis
# start further private instances themselves.
if [ -z "${REDIS_URL:-}" ]; then
  if ! command -v redis-server >/dev/null; then
    echo "redis-server is not installed; Redis-backed tests cannot run" >&2
    exit 1
  fi
  redis_port=$(free_port)
  spawn redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null
  export LLM_BRIDGE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
else
  export LLM_BRIDGE_TEST_REDIS_URL="$REDIS_URL"
fi
# The gateways the tests start choose their store themselves.
unset REDIS_URL
say "Redis for tests: $LLM_BRIDGE_TEST_REDIS_URL"

say "cargo tests"
cargo test --features ssr

scripts/supply-chain.sh

scripts/e2e.sh
say "all tests passed"
