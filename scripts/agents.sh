#!/usr/bin/env bash
# The real coding-agent CLIs through the gateway, offline: the Gemini CLI (Gemini's API) to an
# OpenAI-dialect upstream and to Claude, Codex's built-in OpenAI provider over the Responses
# WebSocket, Claude Code (Anthropic's Messages API) to
# an OpenAI-dialect upstream and Codex (OpenAI's Responses API) to a DeepSeek upstream, then both to
# Gemini 3 (Codex at high reasoning effort) and to Claude with thinking on, all on the mock. Each reads a note with a shell tool the
# mock asks for, and answers with what the tool said: one prompt, one tool-call round trip. Part of
# scripts/e2e.sh; GATEWAY_URL is the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
root=$(pwd)
bin="$root/tests/agents/node_modules/.bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/project" "$work/home" "$work/codex-home"
note="note-$(date +%s%N)"
# The file the mock's `agent` model asks to read (llm_bridge_mock::AGENT_FILE).
echo "$note" > "$work/project/bridge-note.txt"

expect() { # name, output: the answer must quote what the tool read (Codex adds its own header)
  if [[ "$2" != *"The tool said: "* || "$2" != *"$note"* ]]; then
    echo "FAIL $1: the answer does not quote the note; it was:" >&2
    printf '%s\n' "$2" >&2
    exit 1
  fi
  echo "ok   $1"
}

claude_code() { # model
  (cd "$work/project" && HOME="$work/home" ANTHROPIC_BASE_URL="$GATEWAY_URL" \
    ANTHROPIC_API_KEY=sk-ant-unused CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 \
    DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_MAX_RETRIES=0 \
    timeout 120 "$bin/claude" -p "What does bridge-note.txt say?" --output-format text \
    --no-session-persistence --model "$1" --allowedTools "Bash(cat:*)" </dev/null)
}

codex() { # model [codex options…]
  local model=$1
  shift
  (cd "$work/project" && HOME="$work/home" CODEX_HOME="$work/codex-home" AGENT_KEY=unused \
    timeout 120 "$bin/codex" exec --skip-git-repo-check --ephemeral --sandbox read-only --color never \
    -C "$work/project" -m "$model" -c model_provider=local \
    -c 'model_providers.local.name="local"' \
    -c "model_providers.local.base_url=\"$GATEWAY_URL/v1\"" \
    -c 'model_providers.local.wire_api="responses"' -c 'model_providers.local.env_key="AGENT_KEY"' \
    -c model_providers.local.request_max_retries=0 -c model_providers.local.stream_max_retries=0 \
    -c analytics.enabled=false -c check_for_update_on_startup=false "$@" \
    --disable plugins --disable unbounded_connection_retries "What does bridge-note.txt say?" </dev/null)
}

gemini_cli() { # model
  mkdir -p "$work/gemini-home/.gemini"
  echo '{"security":{"auth":{"selectedType":"gemini-api-key"}},"telemetry":{"enabled":false},"privacy":{"usageStatisticsEnabled":false},"general":{"disableAutoUpdate":true,"disableUpdateNag":true}}' \
    > "$work/gemini-home/.gemini/settings.json"
  (cd "$work/project" && HOME="$work/gemini-home" GEMINI_API_KEY=unused GOOGLE_GEMINI_BASE_URL="$GATEWAY_URL" \
    GEMINI_CLI_NO_RELAUNCH=1 GEMINI_CLI_TRUST_WORKSPACE=true \
    timeout 120 "$bin/gemini" -p "What does bridge-note.txt say?" -m "$1" </dev/null 2>/dev/null)
}

codex_builtin() { # model: Codex's built-in OpenAI provider pointed at the gateway (it opens a WebSocket)
  (cd "$work/project" && HOME="$work/home" CODEX_HOME="$work/codex-home" OPENAI_API_KEY=sk-unused \
    timeout 120 "$bin/codex" exec --skip-git-repo-check --ephemeral --sandbox read-only --color never \
    -C "$work/project" -m "$1" -c "openai_base_url=\"$GATEWAY_URL/v1\"" \
    -c analytics.enabled=false -c check_for_update_on_startup=false \
    --disable plugins --disable unbounded_connection_retries "What does bridge-note.txt say?" </dev/null)
}

say "Gemini CLI through Gemini's API (/v1beta) to an OpenAI-dialect upstream"
expect "Gemini CLI: prompt, read_file round trip, answer" "$(gemini_cli openai/mock-agent)"

say "Gemini CLI through Gemini's API to Claude"
expect "Gemini CLI: Claude tool round trip" "$(gemini_cli anthropic/claude-mock-agent)"

say "Codex's built-in OpenAI provider through the Responses WebSocket to a DeepSeek upstream"
started=$(date +%s%N)
expect "Codex over the WebSocket: exec_command round trip" "$(codex_builtin deepseek/ws-mock-agent)"
echo "     the session took $(( ($(date +%s%N) - started) / 1000000 )) ms"

say "Claude Code through /v1/messages to an OpenAI-dialect upstream"
expect "Claude Code: prompt, Bash tool round trip, answer" "$(claude_code openai/mock-agent)"

say "Codex through /v1/responses to a DeepSeek upstream"
expect "Codex: prompt, exec_command round trip, answer" "$(codex deepseek/mock-agent)"

# Gemini 3 signs its tool calls and refuses the next turn without the signature; the mock's strict
# models refuse the stand-in for a lost signature too, so these pass only if the real one came back.
say "Claude Code through /v1/messages to Gemini 3 (thought signatures in thinking blocks)"
expect "Claude Code: Gemini 3 tool round trip" "$(claude_code gemini/gemini-3-strict-mock-agent)"

say "Codex at high reasoning effort through /v1/responses to Gemini 3 (signatures in reasoning items)"
expect "Codex: Gemini 3 tool round trip" \
  "$(codex gemini/gemini-3-strict-mock-agent -c model_reasoning_effort='"high"')"

# With thinking on, Claude refuses a tool turn whose signed thinking block did not come back (the
# mock refuses an altered one too), and the mock's strict models refuse the turn with thinking
# off: Codex passes only if its reasoning item carried the block.
say "Codex at high reasoning effort through /v1/responses to Claude (signed thinking in reasoning items)"
expect "Codex: Claude thinking tool round trip" \
  "$(codex anthropic/claude-strict-mock-agent -c model_reasoning_effort='"high"')"

say "Claude Code through /v1/messages to Claude (passthrough)"
expect "Claude Code: Claude tool round trip" "$(claude_code anthropic/claude-mock-agent)"

say "the request log shows both inbound APIs and Claude Code's session"
# The request log is written in batches: wait (30 s at most) until both agents' requests are in it.
if ! python3 - "$GATEWAY_URL" <<'PY'
import json, sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    log = json.load(urllib.request.urlopen(f"{sys.argv[1]}/api/requests?limit=200", timeout=10))
    agents = [r for r in log if "mock-agent" in (r.get("model") or "")]
    apis = {r["api"] for r in agents}
    if {"messages", "responses", "gemini"} <= apis or time.monotonic() > deadline:
        break
    time.sleep(0.2)
assert {"messages", "responses", "gemini"} <= apis, (apis, [(r["api"], r.get("model"), r["status"]) for r in log[:10]])
# Codex's built-in provider used the socket for every response: no fallback to POST.
socket = [r for r in agents if "ws-mock-agent" in r["model"]]
assert socket and all(r.get("transport") == "websocket" for r in socket), [(r["api"], r.get("transport")) for r in socket]
assert any(r.get("session_id") for r in agents if r["api"] == "messages"), "no Claude Code session id"
assert all(r["status"] == 200 for r in agents), [(r["api"], r["status"]) for r in agents]
print(f"ok   {len(agents)} agent requests recorded: {sorted(apis)}")
PY
then
  # What the gateway itself counted: finished requests per provider, requests in flight, records
  # the stats dropped, and its log (GATEWAY_LOG, when the caller keeps one).
  echo "FAIL the request log; the gateway's metrics:" >&2
  curl -fsS "$GATEWAY_URL/metrics" | grep -E '^llm_bridge_(requests_total\{provider="(deepseek|openai)"|in_flight|stats_dropped|runtime_alive)' >&2 || true
  if [ -n "${GATEWAY_LOG:-}" ]; then
    echo "the gateway's log (last 40 lines):" >&2
    tail -n 40 "$GATEWAY_LOG" >&2
  fi
  exit 1
fi
