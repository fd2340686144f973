#!/usr/bin/env bash
# Installs what is missing, builds, and starts the gateway with its console on http://127.0.0.1:3000.
# Extra arguments go to llm-bridge (e.g. `scripts/run.sh --listen 0.0.0.0:3000`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
export LLM_BRIDGE_SITE_ROOT="${LLM_BRIDGE_SITE_ROOT:-target/site}"
exec target/release/llm-bridge "$@"
