//! The one error type of the gateway, below the HTTP layer (gateway, providers and governance use
//! it without depending on `api`), rendered in OpenAI's shape:
//! `{"error":{"message","type","param","code"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<String>,
    /// Sent as `Retry-After` (whole seconds, at least 1).
    pub retry_after: Option<std::time::Duration>,
}

/// The error body, as OpenAI writes it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorResponse<'a> {
    pub error: ErrorObject<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorObject<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// 400: the request itself is wrong.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model `{model}` does not exist or is not served by this gateway. GET /v1/models lists the available models."),
        )
        .with_param("model")
        .with_code("model_not_found")
    }

    /// 502: the upstream answered with something the gateway cannot use, or not at all.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "upstream_error", message).with_code("bad_gateway")
    }

    /// 504: the upstream did not answer in time.
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "upstream_error", message).with_code("timeout")
    }

    /// The upstream refused the request (4xx): same status, the provider's message prefixed by its name.
    pub fn upstream_rejected(provider: &str, status: StatusCode, message: &str) -> Self {
        let kind = match status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            _ => "invalid_request_error",
        };
        Self::new(status, kind, format!("{provider}: {message}")).with_code("upstream_error")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// The JSON body, also used as the payload of an SSE error event.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorResponse {
            error: ErrorObject {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        })
        .unwrap_or_default()
    }

    /// A short class for stats and metrics.
    pub fn class(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 404 | 413 | 422 => "invalid_request",
            401 | 403 => "auth",
            429 => "rate_limited",
            504 => "timeout",
            500..=599 => "upstream",
            _ => "other",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.to_json(),
        )
            .into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds.max(1)),
            );
        }
        response
    }
}

/// Parses JSON into `T`, naming the offending field in the error.
pub fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    // The plain parser first: tracking the path costs a third more, and only an error needs it.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let param = if inner.is_syntax() || inner.is_eof() {
            None
        } else if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            Some(if path == "." {
                field.to_string()
            } else {
                format!("{path}.{field}")
            })
        } else if path != "." {
            Some(path)
        } else {
            None
        };
        let text = match (&param, inner.is_syntax() || inner.is_eof()) {
            (_, true) => format!("The request body is not valid JSON: {message}"),
            (Some(p), false) => format!("Invalid request: `{p}`: {message}"),
            (None, false) => format!("Invalid request: {message}"),
        };
        let err = ApiError::invalid_request(text);
        match param {
            Some(p) => err.with_param(p),
            None => err,
        }
    })?;
    de.end().map_err(|e| {
        ApiError::invalid_request(format!("The request body is not valid JSON: {e}"))
    })?;
    Ok(value)
}
