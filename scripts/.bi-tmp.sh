#!/usr/bin/env bash
# Counts the gateway's own instructions per request under callgrind: a figure that repeats exactly
# for the same build and inputs, however busy the machine is (CPU time on a shared 2-core machine
# varies by ±30 % between runs). Kernel time (sockets, wake-ups) is not counted: see
# scripts/bench-harness.sh for time. Uses the reference harness's mock and load generator.
#   scripts/bench-instructions.sh [requests]      (default 1000; streams: half as many)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

harness=${BENCH_HARNESS:-../shared/bench}
n=${1:-1000}
out=target/bench-harness
command -v valgrind >/dev/null || { echo "valgrind is needed (apt install valgrind)" >&2; exit 1; }

# count NAME MODEL STREAM REQUESTS
count() {
  local name=$1 model=$2 stream=$3 requests=$4 body
  body='{"model":"'$model'","messages":[{"role":"user","content":"Write one short sentence."}]'
  [ "$stream" = 1 ] && body+=',"stream":true,"stream_options":{"include_usage":true}'
  body+='}'
  local mock_port gw_port dir
  mock_port=$(free_port)
  gw_port=$(free_port)
  dir=$(mktemp -d)
  spawn "$out/release/mockllm" --port "$mock_port"
  local mock=$!
  LLM_BRIDGE_LISTEN=127.0.0.1:$gw_port LLM_BRIDGE_DATA_DIR=$dir/data RUST_LOG=warn \
    OPENAI_API_KEY=sk-bench OPENAI_BASE_URL=http://127.0.0.1:$mock_port/v1 \
    GEMINI_API_KEY=bench GEMINI_BASE_URL=http://127.0.0.1:$mock_port/v1beta \
    spawn valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.%p" \
    target/release/llm-bridge
  local gw=$!
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$gw_port/health" >/dev/null && break; sleep 0.2; done
  local load=("$out/release/llmload" -c 1 -z 120 -d "$body" --url "http://127.0.0.1:$gw_port/v1/chat/completions")
  "${load[@]}" -n 200 >/dev/null 2>&1 # warm-up: connections, caches, first-use initialisation
  callgrind_control -i on "$gw" >/dev/null
  "${load[@]}" -n "$requests" --out "$dir/load.json" >/dev/null 2>&1
  callgrind_control -i off "$gw" >/dev/null
  callgrind_control -d "$gw" >/dev/null
  sleep 0.5
  kill "$gw" "$mock" 2>/dev/null || true
  wait "$gw" 2>/dev/null || true
  python3 - "$dir" "$name" <<'EOF'
import glob, json, sys
d, name = sys.argv[1], sys.argv[2]
ok = json.load(open(f"{d}/load.json"))["ok"]
total = max(int(l.split()[1]) for f in glob.glob(f"{d}/cg.*") for l in open(f) if l.startswith("totals:"))
print(f"| {name} | {ok} | {total / ok:,.0f} |")
EOF
  cp $dir/cg.* /tmp/cg-$name-keep 2>/dev/null || cp $(ls $dir/cg.* | head -1) /tmp/cg.keep; echo $dir
}

echo "| request | requests | instructions per request |"
echo "|---|---|---|"
count "chat, OpenAI dialect (passthrough), 20-token stream" gpt-4o-mini 1 "$((n / 2))"
