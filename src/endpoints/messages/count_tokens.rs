//! `POST /v1/messages/count_tokens` as an endpoint of the journey: an Anthropic deployment counts
//! (the client's bytes, only the model renamed); for any other provider the gateway estimates
//! (about four bytes a token) and says so in `x-llm-bridge-estimated`. Recorded as a request with
//! no tokens spent.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::{ApiError, parse_json};
use crate::gateway::Gateway;
use crate::gateway::journey::{Attempt, Endpoint, Peek};
use crate::gateway::record::{Recording, estimate_tokens};
use crate::gateway::upstream::{Failure, read_capped};
use crate::providers::openai_types::Usage;
use crate::providers::{dialect, openai_compatible};
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// Set (to `true`) on a count the gateway estimated.
pub const HEADER_ESTIMATED: HeaderName = HeaderName::from_static("x-llm-bridge-estimated");

/// The largest count reply read from Anthropic.
const MAX_COUNT_REPLY: usize = 64 * 1024;

/// The client's headers Anthropic reads on a count.
const FORWARDED: [&str; 2] = ["anthropic-version", "anthropic-beta"];

#[derive(Deserialize)]
pub struct CountPeek {
    model: String,
}

impl Peek for CountPeek {
    fn model(&self) -> &str {
        &self.model
    }

    fn stream(&self) -> bool {
        false
    }
}

/// The count endpoint, with the client's headers Anthropic reads.
pub struct CountTokens {
    forwarded: HeaderMap,
}

impl CountTokens {
    pub fn new(headers: &HeaderMap) -> CountTokens {
        let mut forwarded = HeaderMap::new();
        for name in FORWARDED {
            if let Some(value) = headers.get(name) {
                forwarded.insert(name, value.clone());
            }
        }
        CountTokens { forwarded }
    }
}

/// A count: Anthropic's reply, or the gateway's estimate.
pub enum Counted {
    Upstream(Vec<u8>),
    Estimated(u64),
}

impl Endpoint for CountTokens {
    const NAME: &'static str = "count_tokens";
    type Peek = CountPeek;
    type Started = Counted;

    fn peek(&self, body: &[u8]) -> Result<CountPeek, ApiError> {
        parse_json(body)
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, CountPeek>,
    ) -> Result<Counted, Failure> {
        let deployment = &a.candidate.deployment;
        if !dialect::speaks_messages(deployment.provider.wire) {
            return Ok(Counted::Estimated(estimate_tokens(a.body.len())));
        }
        let renamed = (a.candidate.model != a.peek.model).then_some(a.candidate.model.as_str());
        let body =
            openai_compatible::with_model(a.body.clone(), renamed).map_err(Failure::fatal)?;
        let url = dialect::count_tokens_url(&deployment.base_url);
        let sent = gateway
            .send_with(deployment, &url, body, self.forwarded.clone(), a.span)
            .await?;
        Ok(Counted::Upstream(read_capped(sent, MAX_COUNT_REPLY).await))
    }

    fn relay(
        &self,
        counted: Counted,
        recording: Recording,
        _slot: Slot,
        candidate: &Candidate,
        _peek: &CountPeek,
    ) -> Response {
        recording.succeed(Some(Usage::new(0, 0, 0, 0)), || (0, 0), &candidate.model);
        counted.into_response("input_tokens")
    }
}

impl Counted {
    /// The provider's count as it came, or the estimate as `{field: n}`, marked as one.
    pub fn into_response(self, field: &str) -> Response {
        match self {
            Counted::Upstream(bytes) => {
                let mut response = Response::new(Body::from(bytes));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Counted::Estimated(tokens) => {
                let mut body = serde_json::Map::new();
                body.insert(field.to_string(), tokens.into());
                let mut response = axum::Json(body).into_response();
                response
                    .headers_mut()
                    .insert(HEADER_ESTIMATED, HeaderValue::from_static("true"));
                response
            }
        }
    }
}
