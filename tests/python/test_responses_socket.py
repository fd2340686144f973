"""The OpenAI Python SDK's `client.responses.connect()` against the gateway's Responses WebSocket
(GATEWAY_URL): two turns on one socket continued by `previous_response_id` without `store`, a
function-call round trip to a translated provider, and an upstream failure mid-turn that leaves
the socket serving."""

import os

from openai import OpenAI

client = OpenAI(base_url=f"{os.environ['GATEWAY_URL']}/v1", api_key="unused", max_retries=0)
REPLY = "Hello from the mock upstream, a reply of exactly twenty tokens for tests and the gateway benchmark."


def run(connection, **request):
    """Creates a response and reads its events up to its end (or an error)."""
    connection.response.create(**request)
    events = []
    for event in connection:
        events.append(event)
        if event.type in ("response.completed", "response.failed", "response.incomplete", "error"):
            return events
    raise AssertionError("the socket closed mid-response")


def text(events):
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


with client.responses.connect() as connection:
    for model in ["gpt-4o-mini", "claude-sonnet-4-5"]:
        first = run(connection, model=model, input="Hi", store=False)
        assert first[-1].type == "response.completed", first[-1]
        assert text(first) == REPLY, text(first)
        second = run(connection, model=model, input="And again?", store=False, previous_response_id=first[-1].response.id)
        assert second[-1].type == "response.completed", second[-1]
        assert text(second) == REPLY, text(second)
        print(f"ok   {model}: two turns on one socket, continued without store")

    tools = [{"type": "function", "name": "get_weather", "description": "Weather of a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    asked = run(connection, model="deepseek/mock-tools", input="Weather in Paris and Tokyo?", tools=tools, store=False)
    assert asked[-1].type == "response.completed", asked[-1]
    calls = [item for item in asked[-1].response.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_weather"], calls
    outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": "18 °C"} for c in calls]
    answered = run(connection, model="deepseek/mock-tools", input=outputs, tools=tools, store=False,
                   previous_response_id=asked[-1].response.id)
    assert answered[-1].type == "response.completed", answered[-1]
    print("ok   function-call round trip on the socket (DeepSeek, translated)")

    cut = run(connection, model="anthropic/a-cut", input="Hi")
    assert cut[-1].type in ("error", "response.failed"), cut[-1]
    after = run(connection, model="gpt-4o-mini", input="Hi")
    assert after[-1].type == "response.completed", after[-1]
    print("ok   an upstream failure mid-turn is an event; the socket serves on")
