#!/usr/bin/env bash
# Installs what building LLM Bridge needs and is missing. Idempotent: skips what is there.
#   scripts/setup.sh          build tools (wasm32 target, cargo-leptos, wasm-bindgen, wasm-opt)
#   scripts/setup.sh --test   also the test tools (redis-server, Chromium, Playwright)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=false
[ "${1:-}" = "--test" ] && want_test=true

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (takes 10-25 minutes once)"
  cargo install "cargo-leptos@$CARGO_LEPTOS_VERSION" --locked
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (must match the wasm-bindgen crate)"
  # Not --locked: its lockfile pins a crate version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if [ ! -x tools/node_modules/.bin/wasm-opt ]; then
  say "installing wasm-opt (binaryen from npm)"
  npm ci --prefix tools --no-audit --no-fund
fi

if $want_test; then
  # prometheus brings promtool (monitoring rule tests); kubectl renders the Kubernetes manifests.
  apt_install redis-server chromium prometheus kubectl
  if [ ! -x target/py-sdk/bin/python ] || ! target/py-sdk/bin/python -c 'import openai, anthropic, google.genai, websockets' 2>/dev/null; then
    say "installing the OpenAI Python SDK for the client tests"
    python3 -m venv target/py-sdk
    target/py-sdk/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  fi
  if [ ! -f tests/oidc/node_modules/oidc-provider/package.json ]; then
    say "installing oidc-provider, the OpenID provider the identity tests run"
    npm ci --prefix tests/oidc --no-audit --no-fund
  fi
  if [ ! -x tests/agents/node_modules/.bin/codex ] || [ ! -x tests/agents/node_modules/.bin/claude ] \
    || [ ! -x tests/agents/node_modules/.bin/gemini ]; then
    say "installing the Claude Code, Codex and Gemini CLIs for the agent tests (from npm)"
    npm ci --prefix tests/agents --no-audit --no-fund
  fi
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    say "installing Playwright (without a browser download; Debian's Chromium is used)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix end2end --no-audit --no-fund
  fi
fi
