//! Gemini and Anthropic through the gateway over real HTTP: requests translated to their native
//! APIs, replies and streams translated back to OpenAI's shape.

use crate::support::*;
use serde_json::{Value, json};

const GEMINI_MODELS: &str = "[providers.gemini]\nmodels = [\"gemini-3-pro-tools\", \"gemini-3-strict-tools\", \"gemini-3-flash\", \"g-tools\", \"g-reasoning\", \"g-blocked\", \"g-malformed\", \"g-safety\", \"g-length\", \"g-cut\", \"g-fail400\"]\n";
const ANTHROPIC_MODELS: &str = "[providers.anthropic]\nmodels = [\"a-tools\", \"a-tools-redacted\", \"a-reasoning\", \"a-length\", \"a-cut\", \"a-fail400\", \"a-safety\"]\n";

fn config() -> String {
    format!("{GEMINI_MODELS}{ANTHROPIC_MODELS}")
}

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the weather in Paris and Tokyo?"}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
        "type": "object", "additionalProperties": false,
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    "temperature": 0.3, "max_tokens": 256})
}

fn stream(mut body: Value, include_usage: bool) -> Value {
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

#[tokio::test]
async fn gemini_request_is_native_and_reply_is_openai() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let resp = gw.chat(ask("gemini-2.5-flash")).await;
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["model"], "gemini-2.5-flash");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32,
        "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 0}})
    );

    let got = gw.mock.state.last();
    assert_eq!(got.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(got.headers["x-goog-api-key"], GEMINI_KEY);
    assert!(got.headers.get("authorization").is_none());
    assert_eq!(
        got.body["systemInstruction"]["parts"][0]["text"],
        "Be brief."
    );
    assert_eq!(got.body["contents"][0]["role"], "user");
    let decl = &got.body["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "get_weather");
    assert!(
        decl["parameters"].get("additionalProperties").is_none(),
        "schema reduced: {decl}"
    );
    assert_eq!(got.body["generationConfig"]["temperature"], 0.3);
    assert_eq!(got.body["generationConfig"]["maxOutputTokens"], 256);
}

#[tokio::test]
async fn gemini_tool_calls_and_results_round_trip() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let reply: Value = gw.chat(ask("g-tools")).await.json().await.unwrap();
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let calls = choice["message"]["tool_calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        serde_json::from_str::<Value>(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Tokyo"})
    );

    let mut follow_up = ask("gemini-2.5-flash");
    let messages = follow_up["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
    messages
        .push(json!({"role": "tool", "tool_call_id": calls[0]["id"], "content": "{\"temp\": 18}"}));
    messages.push(json!({"role": "tool", "tool_call_id": calls[1]["id"], "content": "sunny"}));
    assert_eq!(gw.chat(follow_up).await.status(), 200);
    let sent = gw.mock.state.last().body;
    let contents = sent["contents"].as_array().unwrap();
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"][0]["functionCall"]["args"],
        json!({"city": "Paris"})
    );
    let responses = &contents[2]["parts"];
    assert_eq!(responses[0]["functionResponse"]["name"], "get_weather");
    assert_eq!(
        responses[0]["functionResponse"]["response"],
        json!({"temp": 18})
    );
    assert_eq!(
        responses[1]["functionResponse"]["response"],
        json!({"result": "sunny"})
    );
}

#[tokio::test]
async fn gemini_stream_is_openai_shaped() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let text = gw
        .chat(stream(ask("gemini-2.5-flash"), true))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        gw.mock.state.last().path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(gw.mock.state.last().query.as_deref(), Some("alt=sse"));
    let chunks = sse_chunks(&text);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, llm_bridge_mock::REPLY_WORDS.concat());
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .map(|c| &c["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("stop")]);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 32);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.get("usage").is_none())
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"])
    );

    let text = gw
        .chat(stream(ask("g-tools"), false))
        .await
        .text()
        .await
        .unwrap();
    let chunks = sse_chunks(&text);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    let indices: Vec<u64> = calls
        .iter()
        .flat_map(|c| c.as_array().unwrap())
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![0, 1]);
    assert_eq!(
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
            .collect::<Vec<_>>(),
        vec!["tool_calls"]
    );
}

#[tokio::test]
async fn gemini_thinking_and_finish_reasons() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let mut body = ask("g-reasoning");
    body["reasoning_effort"] = json!("low");
    let reply: Value = gw.chat(body).await.json().await.unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["reasoning_content"],
        llm_bridge_mock::REASONING_TEXT
    );
    assert_eq!(
        reply["usage"]["completion_tokens_details"]["reasoning_tokens"],
        7
    );
    assert_eq!(
        reply["usage"]["completion_tokens"], 27,
        "thoughts count into completion tokens"
    );
    assert_eq!(
        gw.mock.state.last().body["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        1024
    );

    let reply: Value = gw.chat(ask("g-safety")).await.json().await.unwrap();
    assert_eq!(reply["choices"][0]["finish_reason"], "content_filter");
    let reply: Value = gw.chat(ask("g-length")).await.json().await.unwrap();
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn gemini_blocked_and_malformed_are_clear_errors() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let resp = gw.chat(ask("g-blocked")).await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("blocked"),
        "{e}"
    );

    let resp = gw.chat(ask("g-malformed")).await;
    assert_eq!(resp.status(), 502);
    let e: Value = resp.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MALFORMED_FUNCTION_CALL"),
        "{e}"
    );

    // In a stream, before the first byte the error is the HTTP status too.
    let resp = gw.chat(stream(ask("g-blocked"), false)).await;
    assert_eq!(resp.status(), 400);

    let resp = gw.chat(ask("g-fail400")).await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Google Gemini: "),
        "{e}"
    );
}

#[tokio::test]
async fn gemini_images_become_inline_data() {
    let gw = TestGateway::start().await;
    let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}}
    ]}], "response_format": {"type": "json_object"}});
    assert_eq!(gw.chat(body).await.status(), 200);
    let sent = gw.mock.state.last().body;
    let parts = &sent["contents"][0]["parts"];
    assert_eq!(
        parts[1]["inlineData"],
        json!({"mimeType": "image/png", "data": "iVBORw0KGgo="})
    );
    assert_eq!(
        parts[2]["fileData"]["fileUri"],
        "https://example.com/cat.webp"
    );
    assert_eq!(
        sent["generationConfig"]["responseMimeType"],
        "application/json"
    );
}

#[tokio::test]
async fn gemini_json_schema_goes_whole_to_models_that_take_it() {
    let gw = TestGateway::start_with(
        "[providers.gemini]\nmodels = [\"gemini-2.0-flash\"]\n",
        |_| {},
    )
    .await;
    let schema = json!({"type": "object", "additionalProperties": false,
        "properties": {"city": {"type": "string"}, "temp": {"type": ["number", "null"]}},
        "required": ["city", "temp"]});
    let ask_for = |model: &str| {
        json!({"model": model, "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "response_format": {"type": "json_schema",
                "json_schema": {"name": "weather", "strict": true, "schema": schema}}})
    };

    assert_eq!(gw.chat(ask_for("gemini-2.5-flash")).await.status(), 200);
    let config = gw.mock.state.last().body["generationConfig"].clone();
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["responseJsonSchema"], schema, "sent whole: {config}");
    assert!(config.get("responseSchema").is_none(), "{config}");

    assert_eq!(gw.chat(ask_for("gemini-2.0-flash")).await.status(), 200);
    let got = gw.mock.state.last();
    assert_eq!(got.path, "/v1beta/models/gemini-2.0-flash:generateContent");
    let config = &got.body["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json");
    assert!(config.get("responseJsonSchema").is_none(), "{config}");
    assert_eq!(
        config["responseSchema"],
        json!({"type": "object",
            "properties": {"city": {"type": "string"}, "temp": {"type": "number", "nullable": true}},
            "required": ["city", "temp"]}),
        "reduced to the OpenAPI subset for Gemini 2.0"
    );
}

#[tokio::test]
async fn gemini_embeddings() {
    let gw = TestGateway::start().await;
    let resp = gw
        .post("/v1/embeddings")
        .json(&json!({"model": "gemini-embedding-001", "input": ["hello world", "bye"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["data"].as_array().unwrap().len(), 2);
    assert!(
        reply["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
        "estimated when Gemini reports none: {reply}"
    );
    assert_eq!(
        gw.mock.state.last().path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
}

#[tokio::test]
async fn anthropic_request_is_native_and_reply_is_openai() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let reply: Value = gw
        .chat(ask("claude-sonnet-4-5"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        llm_bridge_mock::REPLY_WORDS.concat()
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply["usage"]["prompt_tokens"], 12);
    assert_eq!(reply["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    let got = gw.mock.state.last();
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(got.headers["anthropic-version"], "2023-06-01");
    assert_eq!(got.body["system"], "Be brief.");
    assert_eq!(got.body["max_tokens"], 256);
    assert_eq!(
        got.body["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
}

#[tokio::test]
async fn anthropic_stream_tools_and_usage() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let text = gw
        .chat(stream(ask("a-tools"), true))
        .await
        .text()
        .await
        .unwrap();
    let chunks = sse_chunks(&text);
    let mut args = [String::new(), String::new()];
    for c in &chunks {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            args[i].push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&args[0]).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&args[1]).unwrap(),
        json!({"city": "Tokyo"})
    );
    let finishes: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["finish_reason"].as_str())
        .collect();
    assert_eq!(finishes, vec!["tool_calls"]);
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert_eq!(gw.mock.state.last().body["stream"], true);

    let mut body = stream(ask("a-reasoning"), false);
    body["reasoning_effort"] = json!("medium");
    let text = gw.chat(body).await.text().await.unwrap();
    let reasoning: String = sse_chunks(&text)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, llm_bridge_mock::REASONING_TEXT);
    let sent = gw.mock.state.last().body;
    assert_eq!(sent["thinking"]["type"], "enabled");
    assert!(
        sent.get("temperature").is_none(),
        "temperature dropped with thinking"
    );
}

#[tokio::test]
async fn anthropic_errors_and_cut_streams() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let resp = gw.chat(ask("a-fail400")).await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Anthropic: "),
        "{e}"
    );

    let mut n2 = ask("claude-sonnet-4-5");
    n2["n"] = json!(2);
    let resp = gw.chat(n2).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["param"], "n");

    let text = gw
        .chat(stream(ask("a-cut"), false))
        .await
        .text()
        .await
        .unwrap();
    let chunks = sse_chunks(&text);
    assert!(
        chunks.last().unwrap()["error"]["message"].is_string(),
        "{text}"
    );

    let reply: Value = gw.chat(ask("a-length")).await.json().await.unwrap();
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    let reply: Value = gw.chat(ask("a-safety")).await.json().await.unwrap();
    assert_eq!(reply["choices"][0]["finish_reason"], "content_filter");
}

#[tokio::test]
async fn usage_and_cost_recorded_per_family() {
    let gw = TestGateway::start().await;
    for model in ["gemini-2.5-flash", "claude-sonnet-4-5"] {
        for s in [false, true] {
            let mut body = ask(model);
            body["stream"] = json!(s);
            let resp = gw.chat(body).await;
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap();
        }
    }
    gw.state.stats.flush().await;
    let rows = gw
        .state
        .stats
        .breakdown(llm_bridge::stats::Window::Hour, "provider")
        .await
        .unwrap();
    for provider in ["gemini", "anthropic"] {
        let row = rows.iter().find(|r| r.name == provider).unwrap();
        assert_eq!(
            (row.requests, row.prompt_tokens, row.completion_tokens),
            (2, 24, 40),
            "{provider}"
        );
    }
    let gemini_cost = rows.iter().find(|r| r.name == "gemini").unwrap().cost_usd;
    // gemini-2.5-flash: 0.30 in, 0.075 cached, 2.50 out per 1M; 8 + 4 cached in, 20 out, twice.
    let expected = 2.0 * (8.0 * 0.30 + 4.0 * 0.075 + 20.0 * 2.50) / 1e6;
    assert!(
        (gemini_cost - expected).abs() < 1e-12,
        "{gemini_cost} vs {expected}"
    );
}

/// Gemini 3 signs its function calls and refuses the next turn unless each comes back with its
/// signature: the signature rides on the chat tool call (`extra_content.google.thought_signature`,
/// as on Google's own OpenAI-compatible endpoint), whole and streamed, and goes back on its part.
#[tokio::test]
async fn gemini_thought_signatures_go_out_on_tool_calls_and_come_back() {
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let model = "gemini-3-pro-tools";
    let whole: Value = gw.chat(ask(model)).await.json().await.unwrap();
    let calls = whole["choices"][0]["message"]["tool_calls"].clone();
    let signed = |call: &Value| {
        call.pointer("/extra_content/google/thought_signature")
            .cloned()
    };
    assert_eq!(
        signed(&calls[0]),
        Some(json!("sig/get_weather/{\"city\":\"Paris\"}")),
        "{calls}"
    );
    assert_eq!(
        signed(&calls[1]),
        None,
        "only the first call of a turn is signed"
    );

    // Streamed: the signature comes with the call's first delta.
    let text = gw
        .chat(stream(ask(model), false))
        .await
        .text()
        .await
        .unwrap();
    let streamed: Vec<Value> = sse_chunks(&text)
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(signed(&streamed[0]), signed(&calls[0]), "{text}");

    let next_turn = |calls: Value| {
        let mut body = ask(model);
        let messages = body["messages"].as_array_mut().unwrap();
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
        for call in calls.as_array().unwrap() {
            messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "sunny"}));
        }
        body
    };
    // Sent back as received: the signature is on its part, and Gemini takes the turn.
    let resp = gw.chat(next_turn(calls.clone())).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last().body;
    assert_eq!(
        sent["contents"][1]["parts"][0]["thoughtSignature"],
        "sig/get_weather/{\"city\":\"Paris\"}"
    );
    // Altered, Gemini refuses the turn (as the real API does).
    let mut altered = calls.clone();
    altered[0]["extra_content"]["google"]["thought_signature"] = json!("sig/forged");
    let resp = gw.chat(next_turn(altered)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("thought_signature"),
        "{body}"
    );
    // Dropped by the client, and not kept by the gateway either (a call it never saw): the call
    // goes with the value Google documents for a lost signature.
    let mut unsigned = calls.clone();
    unsigned[0].as_object_mut().unwrap().remove("extra_content");
    unsigned[0]["id"] = json!("call_unseen");
    let resp = gw.chat(next_turn(unsigned)).await;
    assert_eq!(resp.status(), 200);
    let sent = gw.mock.state.last().body;
    assert_eq!(
        sent["contents"][1]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert!(
        sent["contents"][1]["parts"][1]
            .get("thoughtSignature")
            .is_none()
    );
}

/// Claude with thinking on, through chat completions: the signed thinking block comes back as
/// `thinking_blocks` (whole, and streamed as pieces that add up by `index`), goes back to
/// Anthropic first in the assistant turn, and an altered one is refused as Anthropic refuses it.
/// A client that drops it gets its turn with thinking off rather than a 400.
#[tokio::test]
async fn anthropic_thinking_blocks_go_out_and_come_back() {
    use llm_bridge_mock::REASONING_TEXT;
    use llm_bridge_mock::anthropic::{REDACTED_DATA, SIGNATURE};
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let model = "a-tools-redacted";
    let thinking = |mut body: Value| {
        body["reasoning_effort"] = json!("high");
        body
    };
    let whole: Value = gw.chat(thinking(ask(model))).await.json().await.unwrap();
    let message = whole["choices"][0]["message"].clone();
    let blocks = json!([
        {"type": "thinking", "thinking": REASONING_TEXT, "signature": SIGNATURE},
        {"type": "redacted_thinking", "data": REDACTED_DATA},
    ]);
    assert_eq!(message["thinking_blocks"], blocks, "{whole}");
    assert_eq!(message["reasoning_content"], REASONING_TEXT);

    // Streamed: the pieces of each block share its index and add up to the block.
    let text = gw
        .chat(stream(thinking(ask(model)), false))
        .await
        .text()
        .await
        .unwrap();
    let mut gathered: Vec<serde_json::Map<String, Value>> = Vec::new();
    for chunk in sse_chunks(&text) {
        for piece in chunk["choices"][0]["delta"]["thinking_blocks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = piece["index"].as_u64().expect("every piece has its index") as usize;
            if gathered.len() <= i {
                gathered.resize(i + 1, Default::default());
            }
            for (field, v) in piece.as_object().unwrap() {
                let now = gathered[i].entry(field.clone()).or_insert(json!(""));
                if field == "type" || field == "index" {
                    *now = v.clone();
                } else {
                    *now = json!(format!("{}{}", now.as_str().unwrap(), v.as_str().unwrap()));
                }
            }
        }
    }
    for block in &mut gathered {
        block.remove("index");
    }
    assert_eq!(json!(gathered), blocks, "{text}");

    let next_turn = |message: &Value| {
        let mut body = thinking(ask(model));
        let messages = body["messages"].as_array_mut().unwrap();
        messages.push(message.clone());
        for call in message["tool_calls"].as_array().unwrap() {
            messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "sunny"}));
        }
        body
    };
    // Sent back as received: the blocks open the assistant turn, and Claude takes it.
    let resp = gw.chat(next_turn(&message)).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last().body;
    assert_eq!(sent["thinking"]["type"], "enabled");
    let turn = &sent["messages"][1]["content"];
    assert_eq!(turn[0]["signature"], SIGNATURE, "{sent}");
    assert_eq!(turn[1]["data"], REDACTED_DATA);
    assert_eq!(turn[2]["type"], "tool_use");

    // Altered, Claude refuses the turn.
    let mut altered = message.clone();
    altered["thinking_blocks"][0]["thinking"] = json!("Something else entirely.");
    let resp = gw.chat(next_turn(&altered)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{body}"
    );

    // Dropped by the client, and not kept by the gateway either (calls it never saw): the turn
    // goes with thinking off instead of failing.
    let mut dropped = message.clone();
    dropped.as_object_mut().unwrap().remove("thinking_blocks");
    for (i, call) in dropped["tool_calls"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        call["id"] = json!(format!("toolu_unseen{i}"));
    }
    let resp = gw.chat(next_turn(&dropped)).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last().body;
    assert!(sent.get("thinking").is_none(), "{sent}");

    // Thinking blocks mean nothing to an OpenAI-dialect upstream: they are not sent there.
    let mut elsewhere = next_turn(&message);
    elsewhere["model"] = json!("gpt-4o-mini");
    let resp = gw.chat(elsewhere).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last();
    assert!(sent.body["messages"][2].get("thinking_blocks").is_none());
    assert!(!String::from_utf8_lossy(&sent.raw).contains(SIGNATURE));
}

/// A chat client that rebuilds the assistant message from its content and tool calls drops the
/// reasoning state; the gateway kept it (keyed by the turn's first tool-call id, in Redis for every
/// replica) and gives it back to the same caller only. Claude keeps thinking on, and a strict
/// Gemini 3 (which refuses the stand-in for a lost signature) takes the turn.
#[tokio::test]
async fn the_gateway_gives_dropped_reasoning_back_to_its_owner_on_any_replica() {
    use llm_bridge_mock::anthropic::SIGNATURE;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let toml = config();
    let replica = || {
        let url = url.clone();
        TestGateway::start_with(&toml, move |env| {
            env.insert("LLM_BRIDGE_MASTER_KEY".into(), MASTER.into());
            env.insert("REDIS_URL".into(), url);
        })
    };
    let (a, b) = (replica().await, replica().await);
    let (_, mine) = create_key(&a.http, &a.url, json!({"name": "mine"})).await;
    let (_, theirs) = create_key(&a.http, &a.url, json!({"name": "theirs"})).await;
    let chat = |gw: &TestGateway, key: &str, body: Value| {
        gw.post("/v1/chat/completions")
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    // What a client that keeps only content and tool calls sends next.
    let next_turn = |first: &Value, calls: &[Value]| {
        let mut body = first.clone();
        body["stream"] = json!(false);
        let calls: Vec<Value> = calls
            .iter()
            .map(|c| json!({"id": c["id"], "type": "function", "function": c["function"]}))
            .collect();
        let messages = body["messages"].as_array_mut().unwrap();
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
        for call in &calls {
            messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "sunny"}));
        }
        body
    };

    // Claude, streamed on replica A.
    let mut first = stream(ask("a-tools"), false);
    first["reasoning_effort"] = json!("high");
    let resp = poll_until("the keys reach replica A's admission", || async {
        let resp = chat(&a, &mine, first.clone()).await.unwrap();
        (resp.status() == 200).then_some(resp)
    })
    .await;
    let text = resp.text().await.unwrap();
    let mut calls: Vec<Value> = Vec::new();
    for chunk in sse_chunks(&text) {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.push(json!({"id": call["id"], "function": {"name": call["function"]["name"], "arguments": ""}}));
            }
            let now = calls[i]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_string();
            let more = call["function"]["arguments"].as_str().unwrap_or_default();
            calls[i]["function"]["arguments"] = json!(format!("{now}{more}"));
        }
    }
    assert_eq!(calls.len(), 2, "{text}");
    let turn = next_turn(&first, &calls);
    // Replica B gives the thinking back once A's write reached Redis.
    poll_until("replica B gives the thinking back", || async {
        let resp = chat(&b, &mine, turn.clone()).await.unwrap();
        assert_eq!(resp.status(), 200);
        let sent = b.mock.state.last().body;
        (sent["thinking"]["type"] == "enabled").then_some(())
    })
    .await;
    let sent = b.mock.state.last().body;
    assert_eq!(sent["messages"][1]["content"][0]["signature"], SIGNATURE);
    // Another caller sending the same ids gets nothing of it: thinking goes off for its turn.
    let resp = chat(&b, &theirs, turn.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let sent = b.mock.state.last();
    assert!(sent.body.get("thinking").is_none(), "{}", sent.body);
    assert!(!String::from_utf8_lossy(&sent.raw).contains(SIGNATURE));

    // Gemini 3 (strict: no stand-in accepted), whole on replica A, continued on A.
    let first = ask("gemini-3-strict-tools");
    let whole: Value = chat(&a, &mine, first.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = whole["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    let turn = next_turn(&first, &calls);
    let resp = chat(&a, &mine, turn.clone()).await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = a.mock.state.last().body;
    assert_eq!(
        sent["contents"][1]["parts"][0]["thoughtSignature"],
        "sig/get_weather/{\"city\":\"Paris\"}"
    );
    let resp = chat(&a, &theirs, turn).await.unwrap();
    assert_eq!(resp.status(), 400, "the strict model refuses the stand-in");
}

/// Gemini 3 signs its answer's last text part too. The signature rides on the chat message's
/// `extra_content` (whole and streamed), in a carrier thinking block through Messages and a
/// carrier reasoning item through Responses, and goes back on the answer's last text part.
#[tokio::test]
async fn gemini_answer_signatures_come_back_through_every_inbound_api() {
    use llm_bridge_mock::gemini::TEXT_SIGNATURE;
    let gw = TestGateway::start_with(&config(), |_| {}).await;
    let model = "gemini-3-flash";
    let question = json!({"role": "user", "content": "Hello?"});
    let signature_sent = |gw: &TestGateway| {
        let sent = gw.mock.state.last().body;
        let parts = sent["contents"][1]["parts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(sent["contents"][1]["role"], "model", "{sent}");
        parts.last().map(|p| p["thoughtSignature"].clone())
    };

    // Chat completions, whole and streamed.
    let body = json!({"model": model, "messages": [question]});
    let whole: Value = gw.chat(body.clone()).await.json().await.unwrap();
    let message = whole["choices"][0]["message"].clone();
    assert_eq!(
        message["extra_content"]["google"]["thought_signature"], TEXT_SIGNATURE,
        "{whole}"
    );
    let text = gw.chat(stream(body, false)).await.text().await.unwrap();
    let streamed: Vec<Value> = sse_chunks(&text)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("extra_content").cloned())
        .collect();
    assert_eq!(streamed, [message["extra_content"].clone()], "{text}");
    let next = json!({"model": model, "messages": [question, message, {"role": "user", "content": "And?"}]});
    assert_eq!(gw.chat(next).await.status(), 200);
    assert_eq!(signature_sent(&gw), Some(json!(TEXT_SIGNATURE)));

    // Messages: a carrier thinking block.
    let body = json!({"model": model, "max_tokens": 100, "messages": [question]});
    let reply: Value = gw
        .post("/v1/messages")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let content = reply["content"].as_array().unwrap().clone();
    assert!(
        content
            .iter()
            .any(|b| b["type"] == "thinking"
                && b["signature"].as_str().unwrap().starts_with("llmb1.")),
        "{reply}"
    );
    let next = json!({"model": model, "max_tokens": 100, "messages": [question,
        {"role": "assistant", "content": content}, {"role": "user", "content": "And?"}]});
    let resp = gw.post("/v1/messages").json(&next).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(signature_sent(&gw), Some(json!(TEXT_SIGNATURE)));

    // Responses, streamed: a carrier reasoning item after the message.
    let body = json!({"model": model, "input": "Hello?", "store": false, "stream": true});
    let text = gw
        .post("/v1/responses")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let items: Vec<Value> = sse_events(&text)
        .into_iter()
        .filter(|(name, _)| name == "response.output_item.done")
        .map(|(_, e)| e["item"].clone())
        .collect();
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["message", "reasoning"], "{text}");
    let mut input = vec![json!({"type": "message", "role": "user", "content": "Hello?"})];
    input.extend(items);
    input.push(json!({"type": "message", "role": "user", "content": "And?"}));
    let next = json!({"model": model, "input": input, "store": false});
    let resp = gw.post("/v1/responses").json(&next).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(signature_sent(&gw), Some(json!(TEXT_SIGNATURE)));
}
