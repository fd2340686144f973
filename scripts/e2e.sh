#!/usr/bin/env bash
# The console's end-to-end tests (Playwright in Debian's Chromium) and the OpenAI, Anthropic and Google Python SDK checks,
# against a release build of the gateway wired to the mock upstream. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

say "release build for the end-to-end tests"
scripts/build.sh
cargo build --release -p llm-bridge-mock

say "end-to-end tests (Chromium)"
mock_port=$(free_port)
spawn target/release/mock_upstream "127.0.0.1:$mock_port"
gw_port=$(free_port)
data_dir=$(mktemp -d)
gw_log="$data_dir/gateway.log"
# Every provider's base URL on the mock; those without a key here stay disabled.
spawn env $(mock_wiring "http://127.0.0.1:$mock_port") LLM_BRIDGE_SITE_ROOT=target/site LLM_BRIDGE_DATA_DIR="$data_dir" \
  LLM_BRIDGE_LISTEN="127.0.0.1:$gw_port" \
  OPENAI_API_KEY=sk-e2e-openai GEMINI_API_KEY=e2e-gemini ANTHROPIC_API_KEY=sk-ant-e2e \
  DEEPSEEK_API_KEY=sk-e2e-deepseek LLM_BRIDGE_STATS_FLUSH_INTERVAL=200ms RUST_LOG=warn \
  target/release/llm-bridge 2> >(tee "$gw_log" >&2)
wait_http "http://127.0.0.1:$gw_port/health/ready"
(cd end2end && BASE_URL="http://127.0.0.1:$gw_port" npx playwright test)

say "console sign-in through a real OpenID provider (Chromium)"
sso_port=$(free_port)
idp_port=$(free_port)
idp_settings=$(cat <<EOF
{"port": $idp_port,
 "console": {"client_id": "console", "client_secret": "e2e-console-secret",
             "redirect_uri": "http://127.0.0.1:$sso_port/login/oidc/callback"},
 "users": {"ann": {"role": "admin", "name": "Ann"}, "vic": {"role": "viewer", "name": "Vic"},
           "nora": {"name": "Nora"}}}
EOF
)
spawn node tests/oidc/provider.mjs "$idp_settings" >/dev/null 2>&1
wait_http "http://127.0.0.1:$idp_port/.well-known/openid-configuration"
sso_dir=$(mktemp -d)
cat > "$sso_dir/config.toml" <<EOF
[auth.oidc]
issuer = "http://127.0.0.1:$idp_port"
client_id = "console"
redirect_url = "http://127.0.0.1:$sso_port/login/oidc/callback"
name = "Test IdP"
EOF
spawn env $(mock_wiring "http://127.0.0.1:$mock_port") LLM_BRIDGE_CONFIG="$sso_dir/config.toml" \
  LLM_BRIDGE_SITE_ROOT=target/site LLM_BRIDGE_DATA_DIR="$sso_dir" LLM_BRIDGE_LISTEN="127.0.0.1:$sso_port" \
  LLM_BRIDGE_MASTER_KEY=e2e-master-key-0123456789 LLM_BRIDGE_OIDC_CLIENT_SECRET=e2e-console-secret \
  OPENAI_API_KEY=sk-e2e-openai RUST_LOG=warn target/release/llm-bridge
wait_http "http://127.0.0.1:$sso_port/health/ready"
(cd end2end && SSO_URL="http://127.0.0.1:$sso_port" npx playwright test sso.spec.ts)

say "OpenAI Python SDK against the gateway"
GATEWAY_URL="http://127.0.0.1:$gw_port" target/py-sdk/bin/python tests/python/test_openai_sdk.py

say "Anthropic Python SDK against the gateway's /v1/messages"
GATEWAY_URL="http://127.0.0.1:$gw_port" target/py-sdk/bin/python tests/python/test_anthropic_sdk.py

say "Google's google-genai Python SDK against the gateway's Gemini API"
GATEWAY_URL="http://127.0.0.1:$gw_port" MOCK_URL="http://127.0.0.1:$mock_port" \
  target/py-sdk/bin/python tests/python/test_genai_sdk.py

say "OpenAI Python SDK's responses.connect() against the Responses WebSocket"
GATEWAY_URL="http://127.0.0.1:$gw_port" target/py-sdk/bin/python tests/python/test_responses_socket.py

say "OpenAI Python SDK against a gateway with the response cache on"
cache_port=$(free_port)
spawn env $(mock_wiring "http://127.0.0.1:$mock_port") LLM_BRIDGE_DATA_DIR="$(mktemp -d)" \
  LLM_BRIDGE_LISTEN="127.0.0.1:$cache_port" OPENAI_API_KEY=sk-e2e-openai LLM_BRIDGE_CACHE=on RUST_LOG=warn \
  target/release/llm-bridge
wait_http "http://127.0.0.1:$cache_port/health/ready"
GATEWAY_URL="http://127.0.0.1:$cache_port" target/py-sdk/bin/python tests/python/test_cache_sdk.py

say "Claude Code, Codex and the Gemini CLI through the gateway"
GATEWAY_URL="http://127.0.0.1:$gw_port" GATEWAY_LOG="$gw_log" scripts/agents.sh
