#!/usr/bin/env bash
# The whole test suite: unit and integration tests (Redis-backed ones against real redis-server
# processes), then the console's end-to-end tests in Debian's Chromium against a gateway wired to
# the mock upstream. Fails on the first failing test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Redis: the one given by REDIS_URL, or our own on a free port. Tests that stop and restart Redis
# start further private instances themselves.
if [ -z "${REDIS_URL:-}" ]; then
  if ! command -v redis-server >/dev/null; then
    echo "redis-server is not installed; Redis-backed tests cannot run" >&2
    exit 1
  fi
  redis_port=$(scripts/free-port.sh)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
  pids+=($!)
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

say "release build for the end-to-end tests"
scripts/build.sh
cargo build --release --features ssr --example mock_upstream

say "end-to-end tests (Chromium)"
mock_port=$(scripts/free-port.sh)
target/release/examples/mock_upstream "127.0.0.1:$mock_port" &
pids+=($!)
gw_port=$(scripts/free-port.sh)
data_dir=$(mktemp -d)
LLM_BRIDGE_SITE_ROOT=target/site LLM_BRIDGE_DATA_DIR="$data_dir" LLM_BRIDGE_LISTEN="127.0.0.1:$gw_port" \
  OPENAI_API_KEY=sk-e2e-openai OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1" \
  GEMINI_API_KEY=e2e-gemini GEMINI_BASE_URL="http://127.0.0.1:$mock_port/v1beta" \
  ANTHROPIC_API_KEY=sk-ant-e2e ANTHROPIC_BASE_URL="http://127.0.0.1:$mock_port" \
  DEEPSEEK_API_KEY=sk-e2e-deepseek DEEPSEEK_BASE_URL="http://127.0.0.1:$mock_port" \
  LLM_BRIDGE_STATS_FLUSH_INTERVAL=200ms RUST_LOG=warn \
  target/release/llm-bridge &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$gw_port/health/ready" >/dev/null && break; sleep 0.1; done
(cd end2end && BASE_URL="http://127.0.0.1:$gw_port" npx playwright test)

say "OpenAI Python SDK against the gateway"
GATEWAY_URL="http://127.0.0.1:$gw_port" target/py-sdk/bin/python tests/python/test_openai_sdk.py
say "all tests passed"
