#!/usr/bin/env bash
# Runs the reference load harness (../shared/bench, or $BENCH_HARNESS) against the release gateway:
# separate mock and load-generator processes on core 0, the gateway (or a plain socat forwarder,
# the floor of one extra process hop) on core 1. Phases: non-stream and 20-token streams at
# concurrency 1 and 64, to the OpenAI-dialect passthrough and to a translated provider (Gemini),
# then every inbound API's stream (scripts/bench-inbound.py), then response-cache hits
# (non-stream), then streams with events 1 ms apart (`--itl-ms 1`).
# Results: target/bench-harness/*.json and a summary table. `BENCH_DURATION` (seconds per phase, default 5) makes the run longer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

harness=${BENCH_HARNESS:-../shared/bench}
duration=${BENCH_DURATION:-5}
out=target/bench-harness
[ -f "$harness/bench.py" ] || { echo "no reference harness at $harness (set BENCH_HARNESS)" >&2; exit 1; }
command -v socat >/dev/null || { echo "socat is needed for the forwarder floor (apt install socat)" >&2; exit 1; }

say "building the gateway and the harness (release)"
cargo build --release --features ssr --bin llm-bridge
cargo build --release --manifest-path "$harness/mockllm/Cargo.toml" --target-dir "$out"
mkdir -p "$out/data"

mock_port=$(free_port)
start_mock() {
  spawn taskset -c 0 "$out/release/mockllm" --port "$mock_port" "$@"
  mock_pid=$!
  wait_http "http://127.0.0.1:$mock_port/v1/models"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# run NAME URL MODEL PID [bench.py options…]
run() {
  local name=$1 url=$2 model=$3 pid=$4
  shift 4
  say "$name"
  python3 "$harness/bench.py" --name "$name" --gateway-url "$url" --direct-url "http://127.0.0.1:$mock_port" \
    --model "$model" --direct-model gpt-4o-mini --pid "$pid" --mock-pid "$mock_pid" \
    --rounds 1 --duration "$duration" --warmup 1 --no-wrk --llmload "$out/release/llmload" \
    --out "$out/$name.json" "$@" >/dev/null
}

start_gateway() { # [VAR=value…]: extra settings for the gateway
  gw_port=$(free_port)
  rm -rf "$out/data"
  env "$@" LLM_BRIDGE_LISTEN=127.0.0.1:$gw_port LLM_BRIDGE_DATA_DIR=$out/data RUST_LOG=warn \
    OPENAI_API_KEY=sk-bench OPENAI_BASE_URL=http://127.0.0.1:$mock_port/v1 \
    GEMINI_API_KEY=bench GEMINI_BASE_URL=http://127.0.0.1:$mock_port/v1beta \
    DEEPSEEK_API_KEY=sk-bench DEEPSEEK_BASE_URL=http://127.0.0.1:$mock_port/v1 \
    taskset -c 1 target/release/llm-bridge &
  gw_pid=$!
  pids+=("$gw_pid")
  wait_http "http://127.0.0.1:$gw_port/health"
}

start_mock
fwd_port=$(free_port)
spawn taskset -c 1 socat "TCP-LISTEN:$fwd_port,fork,reuseaddr,nodelay" "TCP:127.0.0.1:$mock_port,nodelay"
fwd_pid=$!
sleep 0.3
run socat "http://127.0.0.1:$fwd_port" gpt-4o-mini "$fwd_pid"
stop "$fwd_pid"

start_gateway
run openai "http://127.0.0.1:$gw_port" gpt-4o-mini "$gw_pid"
run gemini "http://127.0.0.1:$gw_port" gemini-2.5-flash "$gw_pid"
# Every inbound API's stream (Messages, Responses, Gemini's) by the same method, beside the chat
# passthrough stream of the same run.
say "inbound APIs' streams"
python3 scripts/bench-inbound.py "$harness" "http://127.0.0.1:$gw_port" "$gw_pid" "$out/release/llmload" \
  "$duration" "$out/inbound.json" | tee "$out/inbound.md"
stop "$gw_pid"

# The response cache (embedded): after the first request every non-stream request is a hit.
start_gateway LLM_BRIDGE_CACHE=on
run openai-cache "http://127.0.0.1:$gw_port" gpt-4o-mini "$gw_pid" --only ns_c1,ns_cH
stop "$gw_pid"
stop "$mock_pid"

start_mock --itl-ms 1
start_gateway
run openai-itl1 "http://127.0.0.1:$gw_port" gpt-4o-mini "$gw_pid" --only st_c1,st_cH
stop "$gw_pid"

python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
def load(n):
    with open(f"{out}/{n}.json") as f:
        return json.load(f)
runs = {n: load(n) for n in ("socat", "openai", "gemini", "openai-cache", "openai-itl1")}
floor = runs["socat"]["phases"]["ns_c1"].get("added_latency_us", {}).get("p50")
print(f"\nreference harness, gateway pinned to one core; socat forwarder adds {floor} µs p50 at c=1\n")
print(f"| run | phase | added p50 µs | gateway CPU µs/req | req/s | direct req/s |")
print(f"|---|---|---|---|---|---|")
for name, r in runs.items():
    for ph, a in r["phases"].items():
        g, d = a.get("gateway", {}), a.get("direct", {})
        print(f"| {name} | {ph} | {a.get('added_latency_us', {}).get('p50', '-')} | "
              f"{g.get('gateway_cpu_us_per_req', '-')} | {g.get('rps', '-')} | {d.get('rps', '-')} |")
for name in ("openai", "gemini"):
    m = runs[name]["memory"]
    print(f"{name}: RSS idle {m['idle'].get('rss_kb', 0) / 1024:.1f} MiB, after {m['after'].get('rss_kb', 0) / 1024:.1f} MiB")
EOF
