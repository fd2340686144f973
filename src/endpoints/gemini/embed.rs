//! `embedContent` and `batchEmbedContents`: to Gemini the client's bytes; to an OpenAI-dialect
//! provider OpenAI's embeddings request (the texts of the parts as `input`,
//! `outputDimensionality` as `dimensions`), its reply written back as Gemini's `embedding` or
//! `embeddings`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::endpoint::GenerationPeek;
use crate::error::{ApiError, parse_json};
use crate::gateway::Gateway;
use crate::gateway::journey::{Attempt, Endpoint};
use crate::gateway::record::{Recording, estimate_tokens};
use crate::gateway::upstream::{Failure, read_capped};
use crate::providers::openai_types::Usage;
use crate::providers::{dialect, gemini};
use crate::routing::Candidate;
use crate::routing::limits::Slot;

const MAX_EMBEDDINGS_REPLY: usize = 256 * 1024 * 1024;

/// `embedContent` (one content) or `batchEmbedContents` (`requests`) for the model in the URL.
pub struct Embed {
    pub model: String,
    pub batch: bool,
}

/// The reply in Gemini's shape and the prompt tokens the provider reported, if any.
pub type Embedded = (Vec<u8>, Option<u64>);

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// The text of a content's parts (embeddings take text only).
fn text_of(content: &Value, param: &str) -> Result<String, ApiError> {
    let parts = content
        .get("parts")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("a content needs `parts`", format!("{param}.parts")))?;
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        match part.get("text").and_then(Value::as_str) {
            Some(t) => text.push_str(t),
            None => {
                return Err(invalid(
                    "only text parts can be embedded by this model's provider",
                    format!("{param}.parts[{i}]"),
                ));
            }
        }
    }
    Ok(text)
}

impl Embed {
    /// OpenAI's embeddings body for the client's request.
    fn openai_body(&self, body: &Map<String, Value>, model: &str) -> Result<Vec<u8>, ApiError> {
        let (inputs, dimensions) = if self.batch {
            let requests = body
                .get("requests")
                .and_then(Value::as_array)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| invalid("`requests` must hold at least one request", "requests"))?;
            let mut inputs = Vec::with_capacity(requests.len());
            let mut dimensions = None;
            for (i, request) in requests.iter().enumerate() {
                let param = format!("requests[{i}]");
                let content = request.get("content").ok_or_else(|| {
                    invalid("a request needs `content`", format!("{param}.content"))
                })?;
                inputs.push(Value::String(text_of(
                    content,
                    &format!("{param}.content"),
                )?));
                dimensions = dimensions.or_else(|| request.get("outputDimensionality").cloned());
            }
            (inputs, dimensions)
        } else {
            let content = body
                .get("content")
                .ok_or_else(|| invalid("`content` is required", "content"))?;
            (
                vec![Value::String(text_of(content, "content")?)],
                body.get("outputDimensionality").cloned(),
            )
        };
        let mut openai = json!({"model": model, "input": inputs, "encoding_format": "float"});
        if let Some(dimensions) = dimensions.filter(|d| !d.is_null()) {
            openai["dimensions"] = dimensions;
        }
        Ok(serde_json::to_vec(&openai).expect("a JSON value serialises"))
    }

    /// OpenAI's embeddings reply as Gemini's.
    fn gemini_reply(&self, openai: &[u8]) -> Result<Vec<u8>, ApiError> {
        let reply: Value = serde_json::from_slice(openai)
            .map_err(|e| ApiError::bad_gateway(format!("the upstream reply is not JSON: {e}")))?;
        let mut data: Vec<&Value> = reply["data"]
            .as_array()
            .map(|d| d.iter().collect())
            .unwrap_or_default();
        data.sort_by_key(|d| d["index"].as_u64().unwrap_or(0));
        let values: Vec<Value> = data
            .iter()
            .map(|d| json!({"values": d["embedding"]}))
            .collect();
        let gemini = if self.batch {
            json!({"embeddings": values})
        } else {
            let first = values.into_iter().next().ok_or_else(|| {
                ApiError::bad_gateway("the upstream's embeddings reply holds no embedding")
            })?;
            json!({"embedding": first})
        };
        Ok(serde_json::to_vec(&gemini).expect("a JSON value serialises"))
    }
}

impl Endpoint for Embed {
    const NAME: &'static str = "gemini_embeddings";
    type Peek = GenerationPeek;
    type Started = (Embedded, usize);

    fn peek(&self, body: &[u8]) -> Result<GenerationPeek, ApiError> {
        let _: Map<String, Value> = parse_json(body)?;
        Ok(GenerationPeek::whole(&self.model))
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, GenerationPeek>,
    ) -> Result<(Embedded, usize), Failure> {
        let deployment = &a.candidate.deployment;
        let provider = &deployment.provider;
        let model = &a.candidate.model;
        if dialect::speaks_gemini(provider.wire) {
            let method = if self.batch {
                "batchEmbedContents"
            } else {
                "embedContent"
            };
            let url = gemini::method_url(&deployment.base_url, model, method, false);
            let sent = gateway
                .send_with(deployment, &url, a.body.clone(), HeaderMap::new(), a.span)
                .await?;
            let raw = read_capped(sent, MAX_EMBEDDINGS_REPLY).await;
            return Ok(((raw, None), a.body.len()));
        }
        let body = parse_json(a.body)
            .and_then(|body| self.openai_body(&body, model))
            .map_err(Failure::fatal)?;
        let encoded = dialect::encode_embeddings(
            provider.wire,
            &provider.display_name,
            &deployment.base_url,
            model,
            model,
            Bytes::from(body),
        )
        .map_err(Failure::fatal)?;
        let sent = gateway
            .send_once(deployment, &encoded.url, encoded.body, a.span)
            .await?;
        let raw = read_capped(sent, MAX_EMBEDDINGS_REPLY).await;
        let embedded = encoded
            .reply
            .decode(raw, &provider.display_name)
            .map_err(Failure::from_reply)?;
        let json = self
            .gemini_reply(&embedded.json)
            .map_err(Failure::from_reply)?;
        let tokens = embedded.prompt_tokens.filter(|_| !embedded.estimated);
        Ok(((json, tokens), a.body.len()))
    }

    fn relay(
        &self,
        ((json, prompt_tokens), prompt_bytes): (Embedded, usize),
        recording: Recording,
        _slot: Slot,
        candidate: &Candidate,
        _peek: &GenerationPeek,
    ) -> Response {
        let usage = prompt_tokens.map(|p| Usage::new(p, 0, 0, 0));
        recording.succeed(
            usage,
            || (estimate_tokens(prompt_bytes), 0),
            &candidate.model,
        );
        let mut response = Response::new(Body::from(json));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
