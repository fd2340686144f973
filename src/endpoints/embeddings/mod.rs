//! `POST /v1/embeddings`: OpenAI-dialect providers pass through; Gemini is translated. The journey
//! itself is [`crate::gateway::journey`]; this folder is what is particular to embeddings.

pub mod handler;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::{ApiError, parse_json};
use crate::gateway::Gateway;
use crate::gateway::journey::{Attempt, Endpoint, Peek};
use crate::gateway::record::{Recording, estimate_tokens};
use crate::gateway::upstream::{Failure, read_capped};
use crate::providers::dialect::{self, Embedded};
use crate::providers::openai_types::Usage;
use crate::routing::Candidate;
use crate::routing::limits::Slot;

const MAX_EMBEDDINGS_REPLY: usize = 256 * 1024 * 1024;

#[derive(Deserialize)]
pub struct EmbeddingsPeek {
    model: String,
    #[allow(dead_code)]
    input: IgnoredAny,
}

impl Peek for EmbeddingsPeek {
    fn model(&self) -> &str {
        &self.model
    }

    fn stream(&self) -> bool {
        false
    }
}

/// The embeddings endpoint.
pub struct Embeddings;

impl Endpoint for Embeddings {
    const NAME: &'static str = "embeddings";
    type Peek = EmbeddingsPeek;
    /// The whole reply, and the request's size in bytes.
    type Started = (Embedded, usize);

    fn peek(&self, body: &[u8]) -> Result<EmbeddingsPeek, ApiError> {
        parse_json(body)
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, EmbeddingsPeek>,
    ) -> Result<(Embedded, usize), Failure> {
        let deployment = &a.candidate.deployment;
        let provider = &deployment.provider;
        let encoded = dialect::encode_embeddings(
            provider.wire,
            &provider.display_name,
            &deployment.base_url,
            &a.candidate.model,
            &a.peek.model,
            a.body.clone(),
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
        Ok((embedded, a.body.len()))
    }

    fn relay(
        &self,
        (embedded, prompt_bytes): (Embedded, usize),
        recording: Recording,
        _slot: Slot,
        candidate: &Candidate,
        _peek: &EmbeddingsPeek,
    ) -> Response {
        let Embedded {
            json,
            prompt_tokens,
            estimated,
        } = embedded;
        let usage = prompt_tokens
            .filter(|_| !estimated)
            .map(|p| Usage::new(p, 0, 0, 0));
        let estimate = prompt_tokens
            .filter(|_| estimated)
            .unwrap_or_else(|| estimate_tokens(prompt_bytes));
        recording.succeed(usage, || (estimate, 0), &candidate.model);
        let mut response = Response::new(Body::from(json));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
