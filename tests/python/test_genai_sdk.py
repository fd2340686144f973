"""Google's `google-genai` SDK against the gateway's Gemini API (GATEWAY_URL; MOCK_URL is the mock
upstream): generate_content whole and streamed, a function-calling round trip, count_tokens,
embed_content and errors, to a Gemini upstream (which must receive the client's bytes), an
OpenAI-dialect upstream and an Anthropic upstream, on `v1beta` (the Gemini CLI's) and `v1` (the
SDK's default)."""

import os
import urllib.request

from google import genai
from google.genai import errors, types

GATEWAY = os.environ["GATEWAY_URL"]
MOCK = os.environ["MOCK_URL"]
REPLY = "Hello from the mock upstream, a reply of exactly twenty tokens for tests and the gateway benchmark."

sent = []


def keep_body(request):
    sent.append(request.read())


def client(api_version="v1beta", key="unused"):
    options = types.HttpOptions(
        base_url=GATEWAY,
        api_version=api_version,
        client_args={"event_hooks": {"request": [keep_body]}},
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=key, http_options=options)


def mock_last():
    with urllib.request.urlopen(f"{MOCK}/mock/last", timeout=10) as r:
        return r.headers["x-mock-path"], r.read()


WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather of a city",
            parameters=types.Schema(
                type="OBJECT",
                properties={"city": types.Schema(type="STRING")},
                required=["city"],
            ),
        )
    ]
)


def check_generate(model, version):
    c = client(version)
    reply = c.models.generate_content(
        model=model,
        contents="Hi",
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2, max_output_tokens=64),
    )
    assert reply.text == REPLY, (model, reply.text)
    assert reply.usage_metadata.candidates_token_count == 20, reply.usage_metadata
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    text = "".join(chunk.text or "" for chunk in c.models.generate_content_stream(model=model, contents="Hi"))
    assert text == REPLY, (model, text)
    print(f"ok   {model} on {version}: generate_content, whole and streamed")


def check_passthrough_bytes():
    c = client()
    sent.clear()
    c.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    path, body = mock_last()
    assert path == "/v1beta/models/gemini-2.5-flash:generateContent", path
    assert body == sent[-1], ("the client's bytes reach Gemini untouched", body, sent[-1])
    sent.clear()
    chunks = list(c.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi"))
    path, body = mock_last()
    assert path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent", path
    assert body == sent[-1]
    assert "".join(ch.text or "" for ch in chunks) == REPLY
    print("ok   Gemini upstream: the client's bytes, whole and streamed")


def check_function_calling(model):
    c = client()
    config = types.GenerateContentConfig(tools=[WEATHER])
    question = types.Content(role="user", parts=[types.Part(text="Weather in Paris and Tokyo?")])
    reply = c.models.generate_content(model=model, contents=[question], config=config)
    calls = reply.function_calls
    assert calls and calls[0].name == "get_weather" and calls[0].args["city"] == "Paris", reply
    streamed = [
        part.function_call
        for chunk in c.models.generate_content_stream(model=model, contents=[question], config=config)
        for candidate in chunk.candidates or []
        for part in (candidate.content.parts if candidate.content else None) or []
        if part.function_call
    ]
    assert [call.args["city"] for call in streamed] == [call.args["city"] for call in calls], streamed
    answers = [
        types.Part.from_function_response(name=call.name, response={"result": "18 °C"}) for call in calls
    ]
    for answer, call in zip(answers, calls):
        answer.function_response.id = call.id
    follow = c.models.generate_content(
        model=model,
        contents=[question, reply.candidates[0].content, types.Content(role="user", parts=answers)],
        config=config,
    )
    assert follow.candidates, follow
    print(f"ok   {model}: function call round trip, whole and streamed")


def check_count_and_embed():
    c = client()
    counted = c.models.count_tokens(model="gemini-2.5-flash", contents="one two three")
    assert counted.total_tokens == 3, counted
    counted = c.models.count_tokens(model="gpt-4o-mini", contents="one two three")
    assert counted.total_tokens > 0, counted
    for model in ["gemini-embedding-001", "text-embedding-3-small"]:
        embedded = c.models.embed_content(model=model, contents=["a", "b"])
        assert len(embedded.embeddings) == 2 and embedded.embeddings[0].values, (model, embedded)
    print("ok   count_tokens (Gemini's count, an estimate elsewhere) and embed_content")


def check_errors():
    c = client()
    try:
        c.models.generate_content(
            model="gpt-4o-mini", contents="news", config=types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
        )
        raise AssertionError("a googleSearch tool to OpenAI must be refused")
    except errors.ClientError as e:
        assert e.code == 400 and e.status == "INVALID_ARGUMENT" and "googleSearch" in e.message, e
    try:
        c.models.generate_content(model="no-such-model-anywhere", contents="Hi")
        raise AssertionError("an unknown model must be refused")
    except errors.ClientError as e:
        assert e.code == 404 and e.status == "NOT_FOUND", e
    try:
        c.models.generate_content(model="gemini/g-fail400", contents="Hi")
        raise AssertionError("the upstream's 400 must come back")
    except errors.ClientError as e:
        assert e.code == 400 and e.status == "INVALID_ARGUMENT", e
    print("ok   errors in Google's shape: the SDK's ClientError with code and status")


check_passthrough_bytes()
for model in ["gemini-2.5-flash", "gpt-4o-mini", "claude-sonnet-4-5"]:
    check_generate(model, "v1beta")
check_generate("gpt-4o-mini", "v1")
check_function_calling("openai/mock-tools")
check_function_calling("anthropic/claude-tools")
check_count_and_embed()
check_errors()
