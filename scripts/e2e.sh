#!/usr/bin/env bash
# The console's end-to-end tests (Playwright in Debian's Chromium) and the OpenAI Python SDK checks,
# against a release build of the gateway wired to the mock upstream. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

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
