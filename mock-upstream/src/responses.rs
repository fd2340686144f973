//! OpenAI's Responses API (`/v1/responses`): [`REPLY_WORDS`] as a response object or as its event
//! stream (one `response.output_text.delta` per word), with the same failures as chat. A
//! `reasoning-tools` model reasons and calls `get_weather`: its reasoning item carries
//! [`ENCRYPTED`] when the request includes `reasoning.encrypted_content`, and a request
//! (`store: false`) whose function call comes back without that reasoning item before it, or with
//! the content altered, is refused as OpenAI refuses it.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Behaviour, CACHED_TOKENS, MockState, PROMPT_TOKENS, REPLY_WORDS};

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})),
    )
        .into_response()
}

/// The encrypted reasoning of a `reasoning-tools` model's turn.
pub const ENCRYPTED: &str = "gAAAAABmock-encrypted-reasoning";

/// A `reasoning-tools` model's output: its reasoning and a call, or, once the call is answered, what
/// the tool said. `Err` is the message of OpenAI's 400 for a call whose reasoning did not come back.
fn reasoning_turn(request: &Value) -> Result<Vec<Value>, String> {
    let input = request["input"].as_array().map_or(&[][..], Vec::as_slice);
    let mut previous: Option<&Value> = None;
    for item in input {
        let altered = item["type"] == "reasoning"
            && item
                .get("encrypted_content")
                .is_some_and(|content| content != ENCRYPTED);
        if altered {
            return Err("The encrypted content for item rs_mock could not be verified.".into());
        }
        let unreasoned = item["type"] == "function_call"
            && request["store"] == false
            && previous
                .is_none_or(|p| p["type"] != "reasoning" || p.get("encrypted_content").is_none());
        if unreasoned {
            return Err(format!(
                "Item '{}' of type 'function_call' was provided without its required 'reasoning' item: 'rs_mock'.",
                item["id"].as_str().unwrap_or("fc_mock")
            ));
        }
        previous = Some(item);
    }
    if let Some(output) = input.iter().find(|i| i["type"] == "function_call_output") {
        let said = output["output"].as_str().unwrap_or_default();
        return Ok(vec![
            json!({"id": "msg_mock", "type": "message", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "annotations": [],
            "text": format!("The tool said: {said}")}]}),
        ]);
    }
    let mut reasoning = json!({"id": "rs_mock", "type": "reasoning",
        "summary": [{"type": "summary_text", "text": super::REASONING_TEXT}]});
    let included = request["include"]
        .as_array()
        .is_some_and(|i| i.iter().any(|v| v == "reasoning.encrypted_content"));
    if included {
        reasoning["encrypted_content"] = ENCRYPTED.into();
    }
    Ok(vec![
        reasoning,
        json!({"id": "fc_mock", "type": "function_call", "status": "completed",
            "call_id": "call_mock_paris", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}),
    ])
}

fn response(model: &str, status: &str, output: Value) -> Value {
    let words = REPLY_WORDS.len() as u64;
    json!({
        "id": "resp_mock", "object": "response", "created_at": 1_700_000_000u64, "status": status,
        "error": null, "incomplete_details": null, "model": model, "output": output,
        "usage": {"input_tokens": PROMPT_TOKENS, "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
            "output_tokens": words, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": PROMPT_TOKENS + words},
        "user": null, "metadata": {}
    })
}

pub async fn create(
    State(mock): State<Arc<MockState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    mock.record(uri.path(), uri.query().map(str::to_string), &headers, &body);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
        );
    };
    let model = request["model"].as_str().unwrap_or_default().to_string();
    match mock.behaviour(&model).await {
        Behaviour::Fail500 => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error.",
            );
        }
        Behaviour::Fail400 => {
            return error(StatusCode::BAD_REQUEST, "Invalid value for 'temperature'.");
        }
        Behaviour::Fail429 => return error(StatusCode::TOO_MANY_REQUESTS, "Rate limit reached."),
        _ => {}
    }
    if model.contains("reasoning-tools") {
        let output = match reasoning_turn(&request) {
            Ok(output) => output,
            Err(refusal) => return error(StatusCode::BAD_REQUEST, &refusal),
        };
        let done = response(&model, "completed", json!(output));
        if !request["stream"].as_bool().unwrap_or(false) {
            return Json(done).into_response();
        }
        let mut events = vec![
            json!({"type": "response.created", "response": response(&model, "in_progress", json!([]))}),
        ];
        for (i, item) in output.iter().enumerate() {
            events.push(
                json!({"type": "response.output_item.added", "output_index": i, "item": item}),
            );
            events.push(
                json!({"type": "response.output_item.done", "output_index": i, "item": item}),
            );
        }
        events.push(json!({"type": "response.completed", "response": done}));
        return sse(events);
    }
    let text = REPLY_WORDS.concat();
    let message = |status: &str, text: &str| {
        json!({"id": "msg_mock", "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "text": text}]})
    };
    if !request["stream"].as_bool().unwrap_or(false) {
        return Json(response(
            &model,
            "completed",
            json!([message("completed", &text)]),
        ))
        .into_response();
    }
    let mut events = vec![
        json!({"type": "response.created", "response": response(&model, "in_progress", json!([]))}),
        json!({"type": "response.in_progress", "response": response(&model, "in_progress", json!([]))}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": message("in_progress", "")}),
    ];
    for word in REPLY_WORDS {
        events.push(
            json!({"type": "response.output_text.delta", "item_id": "msg_mock",
            "output_index": 0, "content_index": 0, "delta": word, "logprobs": []}),
        );
    }
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": message("completed", &text)}));
    events.push(json!({"type": "response.completed",
        "response": response(&model, "completed", json!([message("completed", &text)]))}));
    sse(events)
}

/// Events as a Responses stream, each with its sequence number.
fn sse(events: Vec<Value>) -> Response {
    let frames: Vec<Result<Bytes, std::io::Error>> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["sequence_number"] = i.into();
            Ok(Bytes::from(format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap()
            )))
        })
        .collect();
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(futures_util::stream::iter(frames)))
        .unwrap()
}
