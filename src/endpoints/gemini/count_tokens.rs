//! `countTokens`: a Gemini deployment counts (the client's bytes); for any other provider the
//! gateway estimates (about four bytes a token) and says so in `x-llm-bridge-estimated`. Recorded
//! as a request with no tokens spent.

use axum::http::HeaderMap;
use axum::response::Response;

use super::endpoint::GenerationPeek;
use crate::endpoints::messages::count_tokens::Counted;
use crate::error::{ApiError, parse_json};
use crate::gateway::Gateway;
use crate::gateway::journey::{Attempt, Endpoint};
use crate::gateway::record::{Recording, estimate_tokens};
use crate::gateway::upstream::{Failure, read_capped};
use crate::providers::openai_types::Usage;
use crate::providers::{dialect, gemini};
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// The largest count reply read from Gemini.
const MAX_COUNT_REPLY: usize = 64 * 1024;

/// `countTokens` for the model in the URL.
pub struct CountTokens {
    pub model: String,
}

impl Endpoint for CountTokens {
    const NAME: &'static str = "gemini_count_tokens";
    const CACHING: crate::gateway::cache::Caching = crate::gateway::cache::Caching::Off;
    type Peek = GenerationPeek;
    type Started = Counted;

    fn peek(&self, body: &[u8]) -> Result<GenerationPeek, ApiError> {
        let _: serde_json::Map<String, serde_json::Value> = parse_json(body)?;
        Ok(GenerationPeek::whole(&self.model))
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, GenerationPeek>,
    ) -> Result<Counted, Failure> {
        let deployment = &a.candidate.deployment;
        if !dialect::speaks_gemini(deployment.provider.wire) {
            return Ok(Counted::Estimated(estimate_tokens(a.body.len())));
        }
        let url = gemini::method_url(
            &deployment.base_url,
            &a.candidate.model,
            "countTokens",
            false,
        );
        let sent = gateway
            .send_with(deployment, &url, a.body.clone(), HeaderMap::new(), a.span)
            .await?;
        Ok(Counted::Upstream(read_capped(sent, MAX_COUNT_REPLY).await))
    }

    fn relay(
        &self,
        counted: Counted,
        recording: Recording,
        _slot: Slot,
        candidate: &Candidate,
        _peek: &GenerationPeek,
    ) -> Response {
        recording.succeed(Some(Usage::new(0, 0, 0, 0)), || (0, 0), &candidate.model);
        counted.into_response("totalTokens")
    }
}
