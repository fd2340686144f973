#!/usr/bin/env python3
"""Every inbound API's stream on the reference harness method: the harness's own load generator
(llmload, pinned to core 0 with its mock), the gateway pinned to core 1, 20-token streams one at a
time and 64 at once; the gateway's CPU per request from /proc, as bench.py measures it.

usage: bench-inbound.py HARNESS GATEWAY_URL GATEWAY_PID LLMLOAD DURATION OUT_JSON"""

import json
import os
import sys
import tempfile

harness, gateway, pid, llmload, duration, out = sys.argv[1:7]
sys.path.insert(0, harness)
import bench  # noqa: E402  (the reference harness's helpers: llmload runs, process CPU)

SYSTEM = "You are a helpful assistant."
USER = "Write one short sentence about measuring latency."
chat = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
        "max_tokens": 64, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
gemini = {"systemInstruction": {"parts": [{"text": SYSTEM}]},
          "contents": [{"role": "user", "parts": [{"text": USER}]}],
          "generationConfig": {"maxOutputTokens": 64, "temperature": 0}}
SCENARIOS = [
    ("chat → OpenAI (passthrough)", "/v1/chat/completions", dict(chat, model="gpt-4o-mini")),
    ("chat → Gemini", "/v1/chat/completions", dict(chat, model="gemini-2.5-flash")),
    ("Messages → OpenAI", "/v1/messages",
     {"model": "gpt-4o-mini", "system": SYSTEM, "messages": [{"role": "user", "content": USER}],
      "max_tokens": 64, "temperature": 0, "stream": True}),
    ("Responses → DeepSeek (chat)", "/v1/responses",
     {"model": "deepseek/deepseek-chat", "instructions": SYSTEM, "input": USER, "max_output_tokens": 64,
      "temperature": 0, "stream": True, "store": False}),
    ("Gemini → OpenAI", "/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse", gemini),
    ("Gemini → Gemini (passthrough)", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gemini),
]


class Args:
    loadgen_cpus = "0"
    req_timeout = 20.0


a = Args()
a.llmload = llmload
tmp = tempfile.mkdtemp(prefix="bench-inbound-")
results = []
for name, path, body in SCENARIOS:
    body_file = os.path.join(tmp, f"{len(results)}.json")
    with open(body_file, "w") as f:
        json.dump(body, f)
    url = gateway.rstrip("/") + path
    check = bench.run_llmload(a, url, [], body_file, 1, 5, 1)
    if check["ok"] != 1:
        sys.exit(f"{name}: {check.get('first_error')}\n{check.get('sample')}")
    row = {"name": name, "path": path}
    for conc in (1, 64):
        bench.run_llmload(a, url, [], body_file, conc, 1, 2_000_000)  # warm-up
        before = bench.tree_cpu_s(int(pid))
        r = bench.run_llmload(a, url, [], body_file, conc, float(duration), 2_000_000)
        cpu = bench.tree_cpu_s(int(pid)) - before
        row[f"c{conc}"] = {"ok": r["ok"], "rps": r["rps"], "events_per_resp": r.get("sse_events_per_resp"),
                           "cpu_us_per_req": round(cpu * 1e6 / max(1, r["ok"]), 1)}
    results.append(row)

with open(out, "w") as f:
    json.dump(results, f, indent=2)
base = results[0]
print("\n| inbound stream | CPU µs/req c=1 | × chat | CPU µs/req c=64 | × chat | req/s c=64 |")
print("|---|---|---|---|---|---|")
for r in results:
    c1, c64 = r["c1"]["cpu_us_per_req"], r["c64"]["cpu_us_per_req"]
    print(f"| {r['name']} | {c1} | {c1 / base['c1']['cpu_us_per_req']:.2f} | {c64} | "
          f"{c64 / base['c64']['cpu_us_per_req']:.2f} | {r['c64']['rps']} |")
