"""The official OpenAI Python SDK against the gateway, as an unmodified client would use it.

Run by scripts/test.sh with GATEWAY_URL pointing at a gateway wired to the mock upstream.
"""
import os
import sys

import openai
from openai import OpenAI

BASE = os.environ["GATEWAY_URL"].rstrip("/") + "/v1"
client = OpenAI(base_url=BASE, api_key="unused-by-an-open-gateway", max_retries=0)
EXPECTED = "Hello from the mock upstream, a reply of exactly twenty tokens for tests and the gateway benchmark."
failures = []


def check(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def non_stream():
    for model in ["gpt-4o-mini", "gemini-2.5-flash", "claude-sonnet-4-5", "deepseek-chat"]:
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
        assert r.choices[0].message.content == EXPECTED, (model, r.choices[0].message.content)
        assert r.choices[0].finish_reason == "stop", (model, r.choices[0].finish_reason)
        assert r.usage.prompt_tokens == 12 and r.usage.completion_tokens == 20, (model, r.usage)


def stream():
    for model in ["gpt-4o-mini", "gemini-2.5-flash", "claude-sonnet-4-5"]:
        chunks = list(
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "Hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == EXPECTED, (model, text)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes == ["stop"], (model, finishes)
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 32, (model, chunks[-1])


def tools():
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    for model in ["gemini/gemini-2.5-flash-tools", "anthropic/claude-tools"]:
        r = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}], tools=[tool]
        )
        calls = r.choices[0].message.tool_calls
        assert r.choices[0].finish_reason == "tool_calls", (model, r.choices[0].finish_reason)
        assert [c.function.name for c in calls] == ["get_weather", "get_weather"], (model, calls)
        assert '"Paris"' in calls[0].function.arguments and '"Tokyo"' in calls[1].function.arguments


def errors():
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
        raise AssertionError("expected NotFoundError")
    except openai.NotFoundError as e:
        assert e.code == "model_not_found", e
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
        raise AssertionError("expected BadRequestError")
    except openai.BadRequestError as e:
        assert e.param == "messages", e.body
    try:
        client.chat.completions.create(model="openai/m-fail429", messages=[{"role": "user", "content": "Hi"}])
        raise AssertionError("expected RateLimitError")
    except openai.RateLimitError as e:
        assert "OpenAI:" in str(e), e
    try:
        client.chat.completions.create(model="openai/m-fail500", messages=[{"role": "user", "content": "Hi"}])
        raise AssertionError("expected InternalServerError")
    except openai.InternalServerError as e:
        assert e.status_code == 502, e


def models():
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "gemini-2.5-flash", "claude-sonnet-4-5"} <= ids, ids


def embeddings():
    r = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 8
    r = client.embeddings.create(model="gemini-embedding-001", input="hello world")
    assert len(r.data) == 1


def virtual_keys():
    """A key from /api/keys: its limits surface as the SDK's own error classes and headers."""
    import json
    import urllib.request

    # Every request under the key counts, the refused one too: three fit in the minute.
    settings = {"name": "sdk", "models": ["gpt-4o-mini"], "rpm": 3}
    req = urllib.request.Request(
        BASE[: -len("/v1")] + "/api/keys",
        data=json.dumps(settings).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        secret = json.load(resp)["key"]
    keyed = OpenAI(base_url=BASE, api_key=secret, max_retries=0)
    raw = keyed.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "2", raw.headers
    try:
        keyed.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("a model outside the key's list was allowed")
    except openai.PermissionDeniedError as e:
        assert e.code == "model_not_allowed", e
    keyed.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    try:
        keyed.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("the fourth request within a minute was allowed")
    except openai.RateLimitError as e:
        assert e.code == "rate_limit_exceeded", e
        assert int(e.response.headers["retry-after"]) >= 1


def responses():
    """The Responses API: passed through to OpenAI, translated for DeepSeek and Gemini."""
    for model in ["gpt-4o-mini", "deepseek-chat", "gemini-2.5-flash", "claude-sonnet-4-5"]:
        r = client.responses.create(model=model, input="Hi", instructions="Be brief.")
        assert r.output_text == EXPECTED, (model, r.output_text)
        assert r.status == "completed" and r.usage.output_tokens == 20, (model, r.status, r.usage)
        assert r.usage.input_tokens_details.cached_tokens == 4, (model, r.usage)


def responses_stream():
    for model in ["gpt-4o-mini", "deepseek-chat", "gemini-2.5-flash", "claude-sonnet-4-5"]:
        with client.responses.stream(model=model, input="Hi") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
        assert "".join(deltas) == EXPECTED, (model, deltas)
        assert final.output_text == EXPECTED and final.usage.total_tokens == 32, (model, final)
        events = list(client.responses.create(model=model, input="Hi", stream=True))
        assert [e.sequence_number for e in events] == list(range(len(events))), model
        assert events[0].type == "response.created" and events[-1].type == "response.completed", model


def responses_tools():
    """A function call round trip, the second turn by previous_response_id on another provider."""
    tools = [{"type": "function", "name": "get_weather", "description": "Weather of a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    first = client.responses.create(model="deepseek/mock-tools", input="Weather in Paris and Tokyo?", tools=tools)
    calls = [i for i in first.output if i.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_weather"], first.output
    assert '"Paris"' in calls[0].arguments, calls[0]
    outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": "sunny"} for c in calls]
    second = client.responses.create(
        model="gemini-2.5-flash", previous_response_id=first.id, input=outputs, tools=tools
    )
    assert second.output_text == EXPECTED and second.previous_response_id == first.id, second
    assert client.responses.retrieve(second.id).output_text == EXPECTED
    client.responses.delete(second.id)
    try:
        client.responses.retrieve(second.id)
        raise AssertionError("a deleted response was found")
    except openai.NotFoundError:
        pass
    try:
        client.responses.create(model="deepseek-chat", previous_response_id="resp_unknown", input="x")
        raise AssertionError("an unknown previous_response_id was accepted")
    except openai.NotFoundError as e:
        assert e.param == "previous_response_id", e.body


for name, fn in [
    ("non-stream", non_stream),
    ("stream", stream),
    ("tools", tools),
    ("errors", errors),
    ("models", models),
    ("embeddings", embeddings),
    ("virtual keys", virtual_keys),
    ("responses", responses),
    ("responses stream", responses_stream),
    ("responses tools", responses_tools),
]:
    check(name, fn)

if failures:
    print(f"{len(failures)} OpenAI SDK check(s) failed: {', '.join(failures)}")
    sys.exit(1)
print("OpenAI SDK: all checks passed")
