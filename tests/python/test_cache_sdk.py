"""The official OpenAI Python SDK against a gateway with the response cache on: a fresh reply and
its cached copy must parse to the same objects, streamed and not, and a reply cached from a
non-stream request must serve a streaming client as a well-formed stream.

Run by scripts/e2e.sh with GATEWAY_URL pointing at a gateway (LLM_BRIDGE_CACHE=on) wired to the
mock upstream.
"""
import os
import sys
import uuid

from openai import OpenAI

BASE = os.environ["GATEWAY_URL"].rstrip("/") + "/v1"
client = OpenAI(base_url=BASE, api_key="unused-by-an-open-gateway", max_retries=0)
failures = []


def check(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def prompt():
    return [{"role": "user", "content": f"Cache check {uuid.uuid4()}"}]


def create(messages, **kw):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, **kw)
    return raw.headers.get("x-llm-bridge-cache"), raw.parse()


def gather(stream):
    text, usage, finish, chunks = "", None, None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    return text, usage, finish, chunks


def whole():
    messages = prompt()
    outcome, fresh = create(messages)
    assert outcome == "miss", outcome
    outcome, cached = create(messages)
    assert outcome == "hit", outcome
    assert cached.model_dump() == fresh.model_dump(), (cached, fresh)


def streamed():
    messages = prompt()
    opts = {"stream": True, "stream_options": {"include_usage": True}}
    outcome, fresh = create(messages, **opts)
    assert outcome == "miss", outcome
    fresh = gather(fresh)
    outcome, cached = create(messages, **opts)
    assert outcome == "hit", outcome
    cached = gather(cached)
    assert cached[:3] == fresh[:3], (cached, fresh)
    assert fresh[1] is not None and fresh[1].total_tokens > 0, fresh


def whole_served_as_a_stream():
    messages = prompt()
    outcome, fresh = create(messages)
    assert outcome == "miss", outcome
    outcome, cached = create(messages, stream=True, stream_options={"include_usage": True})
    assert outcome == "hit", outcome
    text, usage, finish, _ = gather(cached)
    assert text == fresh.choices[0].message.content, (text, fresh)
    assert finish == fresh.choices[0].finish_reason, finish
    assert usage.model_dump() == fresh.usage.model_dump(), (usage, fresh.usage)


def stream_served_whole():
    messages = prompt()
    outcome, fresh = create(messages, stream=True)
    assert outcome == "miss", outcome
    text, _, finish, _ = gather(fresh)
    outcome, cached = create(messages)
    assert outcome == "hit", outcome
    assert cached.choices[0].message.content == text, (cached, text)
    assert cached.choices[0].finish_reason == finish
    assert cached.usage.total_tokens > 0, cached.usage


check("a whole reply and its cached copy", whole)
check("a stream and its cached replay", streamed)
check("a cached whole reply served as a stream", whole_served_as_a_stream)
check("a cached stream served whole", stream_served_whole)
if failures:
    sys.exit(f"{len(failures)} cache check(s) failed: {', '.join(failures)}")
