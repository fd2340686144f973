//! `batchEmbedContents`: OpenAI embedding requests and replies.

use serde::{Deserialize, Serialize};

use super::request::invalid;
use super::wire::{GContent, Part};
use super::{bare_model, model_segment};
use crate::error::ApiError;
use crate::providers::openai_types::{
    Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage,
};

pub fn embeddings_url(base_url: &str, model: &str) -> String {
    format!(
        "{}/models/{}:batchEmbedContents",
        base_url.trim_end_matches('/'),
        model_segment(model)
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BatchEmbedRequest {
    pub(super) requests: Vec<EmbedRequest>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EmbedRequest {
    pub(super) model: String,
    pub(super) content: GContent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) output_dimensionality: Option<u32>,
}

#[derive(Deserialize)]
pub(super) struct BatchEmbedResponse {
    #[serde(default)]
    pub(super) embeddings: Option<Vec<ContentEmbedding>>,
}

#[derive(Deserialize)]
pub(super) struct ContentEmbedding {
    #[serde(default)]
    pub(super) values: Vec<f32>,
}

pub fn embeddings_request(req: &EmbeddingRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    let inputs = req.input.to_vec();
    if inputs.is_empty() {
        return Err(invalid("`input` must hold at least one text.", "input"));
    }
    let model = format!("models/{}", bare_model(model));
    let requests = inputs
        .into_iter()
        .map(|text| EmbedRequest {
            model: model.clone(),
            content: GContent {
                role: None,
                parts: vec![Part::text(text)],
            },
            output_dimensionality: req.dimensions,
        })
        .collect();
    Ok(serde_json::to_vec(&BatchEmbedRequest { requests })
        .expect("serialising to a Vec cannot fail"))
}

/// Gemini's estimate-free stand-in for a token count: ceil(chars / 4) over all inputs.
pub fn estimate_embedding_tokens(req: &EmbeddingRequest) -> u64 {
    let chars: usize = req.input.to_vec().iter().map(|s| s.chars().count()).sum();
    (chars as u64).div_ceil(4)
}

/// The reply as OpenAI's embedding list. Gemini reports no token count and this function does not
/// see the input, so `prompt_tokens` is 0 and the third element is `true` ("estimated"): the caller,
/// which holds the request, fills the count with [`estimate_embedding_tokens`] (ceil(chars / 4)).
pub fn embeddings_response(
    body: &[u8],
    model: &str,
) -> Result<(Vec<u8>, EmbeddingUsage, bool), ApiError> {
    let reply: BatchEmbedResponse = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(format!(
            "Gemini: the reply is not a BatchEmbedContentsResponse: {e}"
        ))
    })?;
    let embeddings = reply
        .embeddings
        .ok_or_else(|| ApiError::bad_gateway("Gemini: the reply holds no embeddings"))?;
    let data = embeddings
        .into_iter()
        .enumerate()
        .map(|(i, e)| Embedding {
            object: "embedding".into(),
            index: i as u32,
            embedding: e.values,
        })
        .collect();
    let usage = EmbeddingUsage::default();
    let response = EmbeddingResponse {
        object: "list".into(),
        data,
        model: bare_model(model).to_string(),
        usage,
    };
    Ok((
        serde_json::to_vec(&response).expect("serialising to a Vec cannot fail"),
        usage,
        true,
    ))
}
