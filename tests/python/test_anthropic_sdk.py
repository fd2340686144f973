"""The official Anthropic Python SDK against the gateway's /v1/messages, as Claude Code's own
client library would use it: to an Anthropic upstream (passthrough) and to OpenAI-dialect and
Gemini upstreams (translated).

Run by scripts/e2e.sh with GATEWAY_URL pointing at a gateway wired to the mock upstream.
"""
import os
import sys

import anthropic
from anthropic import Anthropic

client = Anthropic(base_url=os.environ["GATEWAY_URL"].rstrip("/"), api_key="unused-by-an-open-gateway", max_retries=0)
EXPECTED = "Hello from the mock upstream, a reply of exactly twenty tokens for tests and the gateway benchmark."
MODELS = ["claude-sonnet-4-5", "gpt-4o-mini", "gemini-2.5-flash", "deepseek-chat"]
HI = [{"role": "user", "content": "Hi"}]
failures = []


def check(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def create():
    for model in MODELS:
        m = client.messages.create(model=model, max_tokens=100, system="Be brief.", messages=HI)
        assert m.type == "message" and m.role == "assistant", (model, m)
        assert m.content[0].type == "text" and m.content[0].text == EXPECTED, (model, m.content)
        assert m.stop_reason == "end_turn", (model, m.stop_reason)
        assert m.usage.output_tokens == 20, (model, m.usage)
        assert m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0) == 12, (model, m.usage)


def stream():
    for model in MODELS:
        with client.messages.stream(model=model, max_tokens=100, messages=HI) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        assert text == EXPECTED, (model, text)
        assert final.stop_reason == "end_turn", (model, final.stop_reason)
        assert final.usage.output_tokens == 20, (model, final.usage)


def tools():
    weather = {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    # The mock answers a model named "…tools…" with two tool calls; the follow-up goes to a plain model.
    for model, plain in [
        ("anthropic/claude-mock-tools", "claude-sonnet-4-5"),
        ("openai/mock-tools", "gpt-4o-mini"),
        ("gemini/gemini-mock-tools", "gemini-2.5-flash"),
    ]:
        ask = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
        m = client.messages.create(model=model, max_tokens=100, tools=[weather], messages=ask)
        calls = [b for b in m.content if b.type == "tool_use"]
        assert m.stop_reason == "tool_use", (model, m.stop_reason)
        assert [c.input["city"] for c in calls] == ["Paris", "Tokyo"], (model, calls)
        results = [{"type": "tool_result", "tool_use_id": c.id, "content": "18 °C"} for c in calls]
        follow = ask + [{"role": "assistant", "content": m.content}, {"role": "user", "content": results}]
        again = client.messages.create(model=plain, max_tokens=100, tools=[weather], messages=follow)
        assert again.content[-1].text == EXPECTED, (model, again.content)
        with client.messages.stream(model=model, max_tokens=100, tools=[weather], messages=ask) as s:
            final = s.get_final_message()
        assert [b.input["city"] for b in final.content if b.type == "tool_use"] == ["Paris", "Tokyo"], (model, final.content)


def thinking():
    for model in ["anthropic/claude-mock-reasoning", "openai/mock-reasoning"]:
        with client.messages.stream(
            model=model, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024}, messages=HI
        ) as s:
            final = s.get_final_message()
        kinds = [b.type for b in final.content]
        assert kinds[0] == "thinking" and final.content[0].thinking, (model, final.content)
        assert final.content[-1].text == EXPECTED, (model, final.content)


def count_tokens():
    assert client.messages.count_tokens(model="claude-sonnet-4-5", messages=HI).input_tokens == 12
    assert client.messages.count_tokens(model="gpt-4o-mini", messages=HI).input_tokens > 0


def errors():
    cases = [
        ("no-such-model", anthropic.NotFoundError),
        ("openai/m-fail400", anthropic.BadRequestError),
        ("openai/m-fail429", anthropic.RateLimitError),
    ]
    for model, kind in cases:
        try:
            client.messages.create(model=model, max_tokens=10, messages=HI)
            raise AssertionError(f"{model}: no error")
        except kind as e:
            assert e.body["type"] == "error", (model, e.body)
            assert e.response.headers.get("request-id"), model
    try:
        client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=[])
        raise AssertionError("empty messages: no error")
    except anthropic.BadRequestError as e:
        assert e.body["error"]["type"] == "invalid_request_error", e.body


for name, fn in [
    ("create", create),
    ("stream", stream),
    ("tools", tools),
    ("thinking", thinking),
    ("count_tokens", count_tokens),
    ("errors", errors),
]:
    check(name, fn)

if failures:
    print(f"{len(failures)} Anthropic SDK check(s) failed: {', '.join(failures)}")
    sys.exit(1)
print("Anthropic SDK: all checks passed")
