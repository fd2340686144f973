//! Gemini's own API inbound (`/v1beta/models/{model}:{method}`, what the Gemini CLI and Google's
//! SDKs speak) over real HTTP: passed through to Gemini (the client's bytes), translated to an
//! OpenAI-dialect and an Anthropic upstream, streams, function calls, counts, embeddings, keys
//! from `x-goog-api-key` and `?key=`, and errors in Google's shape.

use crate::support::*;
use llm_bridge_mock::{PROMPT_TOKENS, REPLY_WORDS};
use serde_json::{Value, json};

fn ask() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 64, "stopSequences": ["END"]},
    })
}

async fn generate(gw: &TestGateway, model: &str, method: &str, body: &Value) -> reqwest::Response {
    gw.post(&format!("/v1beta/models/{model}:{method}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The JSON objects of a Gemini SSE stream (`data: {…}` events).
fn events(text: &str) -> Vec<Value> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|frame| frame.trim().strip_prefix("data: "))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect()
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .flat_map(|e| {
            e["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|p| p["thought"] != true)
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn gemini_gets_the_clients_bytes_and_the_reply_comes_back_untouched() {
    let gw = TestGateway::start().await;
    // Unusual spacing and a field the gateway does not know: both reach Gemini as sent.
    let body = br#"{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],   "safetySettings":[],"labels":{"a":"b"}}"#;
    let resp = gw
        .post("/v1beta/models/gemini-2.5-flash:generateContent")
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].clone();
    let direct = reqwest::Client::new()
        .post(format!(
            "http://{}/v1beta/models/gemini-2.5-flash:generateContent",
            gw.mock.addr
        ))
        .header("x-goog-api-key", GEMINI_KEY)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        resp.bytes().await.unwrap(),
        direct,
        "Gemini's reply, untouched"
    );
    let received = &gw.mock.state.received()[0];
    assert_eq!(
        received.path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(received.raw, body.to_vec(), "the client's bytes, untouched");
    assert_eq!(received.headers["x-goog-api-key"], GEMINI_KEY);

    let log = poll_until("the request recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log[0]["request_id"] == request_id.to_str().unwrap()).then_some(log)
    })
    .await;
    assert_eq!(log[0]["api"], "gemini");
    assert_eq!(log[0]["provider"], "gemini");
    assert_eq!(log[0]["prompt_tokens"], PROMPT_TOKENS);
    assert_eq!(log[0]["completion_tokens"], REPLY_WORDS.len());
}

#[tokio::test]
async fn a_gemini_stream_passes_through_event_for_event() {
    let gw = TestGateway::start().await;
    let resp = generate(
        &gw,
        "gemini-2.5-flash",
        "streamGenerateContent?alt=sse",
        &ask(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = events(&resp.text().await.unwrap());
    assert_eq!(text_of(&events), REPLY_WORDS.concat());
    let last = events.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["promptTokenCount"], PROMPT_TOKENS);
    let received = gw.mock.state.last();
    assert_eq!(received.query.as_deref(), Some("alt=sse"));

    // Without `alt=sse`, Gemini's stream is one JSON array, passed through as it comes.
    let resp = generate(&gw, "gemini-2.5-flash", "streamGenerateContent", &ask()).await;
    assert_eq!(resp.status(), 200);
    let array: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(text_of(&array), REPLY_WORDS.concat());
}

#[tokio::test]
async fn other_providers_answer_in_geminis_shape_whole_and_streamed() {
    let gw = TestGateway::start().await;
    for model in ["gpt-4o-mini", "claude-sonnet-4-5"] {
        let resp = generate(&gw, model, "generateContent", &ask()).await;
        assert_eq!(resp.status(), 200, "{model}");
        let reply: Value = resp.json().await.unwrap();
        let candidate = &reply["candidates"][0];
        assert_eq!(candidate["content"]["role"], "model");
        assert_eq!(
            candidate["content"]["parts"][0]["text"],
            REPLY_WORDS.concat(),
            "{model}"
        );
        assert_eq!(candidate["finishReason"], "STOP");
        assert_eq!(
            reply["usageMetadata"]["candidatesTokenCount"],
            REPLY_WORDS.len()
        );
        assert_eq!(reply["modelVersion"], model);

        let resp = generate(&gw, model, "streamGenerateContent?alt=sse", &ask()).await;
        assert_eq!(resp.status(), 200, "{model}");
        let events = events(&resp.text().await.unwrap());
        assert!(events.len() > 2, "{model}: one event per piece of text");
        assert_eq!(text_of(&events), REPLY_WORDS.concat(), "{model}");
        let last = events.last().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(
            last["usageMetadata"]["candidatesTokenCount"],
            REPLY_WORDS.len()
        );
        assert!(last["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 0);

        // The array framing (no `alt=sse`) from a translated stream.
        let resp = generate(&gw, model, "streamGenerateContent", &ask()).await;
        assert_eq!(resp.headers()["content-type"], "application/json");
        let array: Vec<Value> = resp.json().await.unwrap();
        assert_eq!(text_of(&array), REPLY_WORDS.concat(), "{model}");
    }
    // The request went as chat completions: system, contents and the generation settings.
    let sent = gw
        .mock
        .state
        .received()
        .into_iter()
        .find(|r| r.path == "/v1/chat/completions")
        .unwrap()
        .body;
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        sent["messages"][1],
        json!({"role": "user", "content": "Hi"})
    );
    assert_eq!(sent["temperature"], 0.5);
    assert_eq!(sent["max_completion_tokens"], 64);
    assert_eq!(sent["stop"], json!(["END"]));
}

#[tokio::test]
async fn a_function_call_round_trips_through_an_openai_upstream() {
    let gw = TestGateway::start().await;
    let tools = json!([{"functionDeclarations": [{"name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}]);
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Weather in Paris and Tokyo?"}]}],
        "tools": tools, "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}});
    for method in ["generateContent", "streamGenerateContent?alt=sse"] {
        let resp = generate(&gw, "openai/mock-tools", method, &body).await;
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        let replies = if method.starts_with("stream") {
            events(&text)
        } else {
            vec![serde_json::from_str(&text).unwrap()]
        };
        let calls: Vec<Value> = replies
            .iter()
            .flat_map(|r| {
                r["candidates"][0]["content"]["parts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|p| p.get("functionCall").cloned())
            .collect();
        assert_eq!(calls.len(), 2, "{method}: {text}");
        assert_eq!(calls[0]["name"], "get_weather");
        assert_eq!(calls[0]["args"]["city"], "Paris");
        assert!(calls[0]["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    // A stream whose whole reply is written at its end (the calls) is recorded as a success.
    let log = poll_until("both recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log.as_array().unwrap().len() == 2).then_some(log)
    })
    .await;
    assert!(
        log.as_array().unwrap().iter().all(|r| r["status"] == 200),
        "{log}"
    );
    let sent = gw.mock.state.last().body;
    let parameters = &sent["tools"][0]["function"]["parameters"];
    assert_eq!(
        parameters["type"], "object",
        "Gemini's schema as JSON Schema"
    );
    assert_eq!(parameters["properties"]["city"]["type"], "string");
    assert_eq!(sent["tool_choice"], "auto");

    // The response goes back as a tool message answering its call, by id.
    let follow = json!({"contents": [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"id": "call_p", "name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "call_p", "name": "get_weather", "response": {"result": "18 °C"}}}]},
    ], "tools": tools});
    let resp = generate(&gw, "gpt-4o-mini", "generateContent", &follow).await;
    assert_eq!(resp.status(), 200);
    let sent = gw.mock.state.last().body;
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[1]["tool_calls"][0]["id"], "call_p");
    assert_eq!(
        messages[1]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_p", "content": "{\"result\":\"18 °C\"}"})
    );
}

#[tokio::test]
async fn counts_and_embeddings_for_gemini_and_others() {
    let gw = TestGateway::start().await;
    let count = json!({"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]});
    let resp = generate(&gw, "gemini-2.5-flash", "countTokens", &count).await;
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().contains_key("x-llm-bridge-estimated"));
    let counted: Value = resp.json().await.unwrap();
    assert_eq!(counted["totalTokens"], 3, "Gemini's own count");
    let resp = generate(&gw, "gpt-4o-mini", "countTokens", &count).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-llm-bridge-estimated"], "true");
    let counted: Value = resp.json().await.unwrap();
    assert!(counted["totalTokens"].as_u64().unwrap() > 0);

    let one = json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 4});
    let batch = json!({"requests": [
        {"model": "models/x", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/x", "content": {"parts": [{"text": "b"}]}},
    ]});
    for model in ["gemini-embedding-001", "text-embedding-3-small"] {
        let resp = generate(&gw, model, "embedContent", &one).await;
        assert_eq!(resp.status(), 200, "{model}");
        let reply: Value = resp.json().await.unwrap();
        assert!(
            !reply["embedding"]["values"].as_array().unwrap().is_empty(),
            "{model}: {reply}"
        );
        if model.starts_with("gemini") {
            assert_eq!(reply["embedding"]["values"].as_array().unwrap().len(), 4);
        } else {
            assert_eq!(
                gw.mock.state.last().body["dimensions"],
                4,
                "outputDimensionality"
            );
        }
        let resp = generate(&gw, model, "batchEmbedContents", &batch).await;
        assert_eq!(resp.status(), 200, "{model}");
        let reply: Value = resp.json().await.unwrap();
        assert_eq!(
            reply["embeddings"].as_array().unwrap().len(),
            2,
            "{model}: {reply}"
        );
    }
    let sent = gw.mock.state.last();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body["input"], json!(["a", "b"]));
}

#[tokio::test]
async fn keys_come_as_goog_api_key_or_query_and_errors_in_googles_shape() {
    let gw = TestGateway::start_locked("").await;
    let path = "/v1beta/models/gpt-4o-mini:generateContent";
    let resp = gw.post(path).json(&ask()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], 401);
    assert_eq!(e["error"]["status"], "UNAUTHENTICATED");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-goog-api-key")
    );

    let resp = gw
        .post(path)
        .header("x-goog-api-key", MASTER)
        .json(&ask())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = gw
        .post(&format!("{path}?key={MASTER}"))
        .json(&ask())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = gw
        .post(path)
        .bearer_auth(MASTER)
        .json(&ask())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A virtual key by `?key=` on the SSE stream, as `@google/genai` sends it.
    let (_, key) = create_key(&gw.http, &gw.url, json!({"name": "genai"})).await;
    let resp = gw
        .post(&format!(
            "/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse&key={key}"
        ))
        .json(&ask())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        text_of(&events(&resp.text().await.unwrap())),
        REPLY_WORDS.concat()
    );
    let log = gw.master_text("/api/requests").await;
    assert!(
        !log.contains(&key),
        "the key in the URL never reaches the log"
    );

    let check = |resp: reqwest::Response, status: u16, name: &'static str| async move {
        assert_eq!(resp.status(), status);
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"]["code"], status, "{e}");
        assert_eq!(e["error"]["status"], name, "{e}");
        e["error"]["message"].as_str().unwrap().to_string()
    };
    let auth = |r: reqwest::RequestBuilder| r.header("x-goog-api-key", MASTER);
    let bad_json = auth(gw.post(path)).body("{").send().await.unwrap();
    check(bad_json, 400, "INVALID_ARGUMENT").await;
    let method = auth(gw.post("/v1beta/models/gpt-4o-mini:predict"))
        .json(&ask())
        .send()
        .await
        .unwrap();
    check(method, 404, "NOT_FOUND").await;
    let search =
        json!({"contents": [{"parts": [{"text": "news"}]}], "tools": [{"googleSearch": {}}]});
    let refused = auth(gw.post(path)).json(&search).send().await.unwrap();
    let message = check(refused, 400, "INVALID_ARGUMENT").await;
    assert!(message.contains("googleSearch"), "{message}");
    let upstream = auth(gw.post("/v1beta/models/gemini/g-fail400:generateContent"))
        .json(&ask())
        .send()
        .await
        .unwrap();
    check(upstream, 400, "INVALID_ARGUMENT").await;
}

#[tokio::test]
async fn models_are_listed_in_geminis_shape_and_v1_serves_the_methods_too() {
    let gw = TestGateway::start().await;
    let list = gw.get_json("/v1beta/models").await;
    let names: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"models/gpt-4o-mini"), "{names:?}");
    let one = gw.get_json("/v1beta/models/gpt-4o-mini").await;
    assert_eq!(one["name"], "models/gpt-4o-mini");
    assert!(
        one["supportedGenerationMethods"]
            .as_array()
            .unwrap()
            .contains(&json!("generateContent"))
    );

    // `google-genai` speaks `/v1` by default; OpenAI's `GET /v1/models/{id}` stays OpenAI's.
    let resp = generate(&gw, "gpt-4o-mini", "generateContent", &ask()).await;
    assert_eq!(resp.status(), 200);
    let resp = gw
        .post("/v1/models/gpt-4o-mini:generateContent")
        .json(&ask())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(
        reply["candidates"][0]["content"]["parts"][0]["text"],
        REPLY_WORDS.concat()
    );
    let openai = gw.get_json("/v1/models/gpt-4o-mini").await;
    assert_eq!(openai["object"], "model");
}

#[tokio::test]
async fn the_cache_keeps_each_mode_apart_and_reads_generation_config() {
    let gw = TestGateway::start_with(
        "[cache]\nenabled = true\nonly_deterministic = true\n",
        |_| {},
    )
    .await;
    let mut body = ask();
    body["generationConfig"]["temperature"] = json!(0);
    let cache = |resp: &reqwest::Response| {
        resp.headers()["x-llm-bridge-cache"]
            .to_str()
            .unwrap()
            .to_string()
    };
    for model in ["gemini-2.5-flash", "gpt-4o-mini"] {
        let upstream_calls = || gw.mock.state.received().len();
        let before = upstream_calls();
        let first = generate(&gw, model, "generateContent", &body).await;
        assert_eq!(cache(&first), "miss", "{model}");
        let first: Value = first.json().await.unwrap();
        let again = generate(&gw, model, "generateContent", &body).await;
        assert_eq!(
            cache(&again),
            "hit",
            "{model}: temperature 0 in generationConfig is deterministic"
        );
        assert_eq!(again.json::<Value>().await.unwrap(), first);
        // The same body streamed is another entry (the mode is in the URL, not the body).
        let streamed = generate(&gw, model, "streamGenerateContent?alt=sse", &body).await;
        assert_eq!(cache(&streamed), "miss", "{model}");
        assert_eq!(
            text_of(&events(&streamed.text().await.unwrap())),
            REPLY_WORDS.concat()
        );
        let streamed = generate(&gw, model, "streamGenerateContent?alt=sse", &body).await;
        assert_eq!(cache(&streamed), "hit", "{model}");
        assert_eq!(streamed.headers()["content-type"], "text/event-stream");
        assert_eq!(
            text_of(&events(&streamed.text().await.unwrap())),
            REPLY_WORDS.concat()
        );
        let array = generate(&gw, model, "streamGenerateContent", &body).await;
        assert_eq!(
            cache(&array),
            "miss",
            "{model}: the array framing is another entry"
        );
        assert_eq!(upstream_calls() - before, 3, "{model}");
    }
    // Without temperature 0 or a seed nothing is cached.
    let resp = generate(&gw, "gpt-4o-mini", "generateContent", &ask()).await;
    assert_eq!(cache(&resp), "bypass");
}
