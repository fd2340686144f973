//! Logs and traces. Logs go through `tracing` (text or JSON, level from `RUST_LOG`). When the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set, each request and each upstream attempt is also an
//! OpenTelemetry span with the GenAI semantic-convention attributes, exported over OTLP/HTTP; an
//! incoming W3C `traceparent` is continued and passed on upstream.

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

static TRACING: OnceLock<bool> = OnceLock::new();

/// Whether request spans are exported (spans are not even created otherwise).
pub fn enabled() -> bool {
    *TRACING.get().unwrap_or(&false)
}

/// Keeps the exporter alive; dropping it (or [`Telemetry::shutdown`]) flushes the last spans.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
    }
}

pub fn init(format: LogFormat) -> Telemetry {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .fmt_fields(escaped_fields())
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|v| !v.is_empty()).and_then(|_| {
        match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("llm-bridge").build())
                    .build(),
            ),
            Err(e) => {
                eprintln!("warning: OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter failed: {e}");
                None
            }
        }
    });
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("llm-bridge"))
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target().starts_with("llm_bridge::span")
            }))
    });
    let _ = TRACING.set(provider.is_some());
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter()))
        .with(otel)
        .try_init();
    Telemetry { provider }
}

/// Text-log fields with control characters escaped, so that a value (a key's name, a model, an
/// upstream's message) cannot start a forged log line or move the terminal's cursor.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let raw = format!("{value:?}");
        let text = escape_controls(&raw);
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{field}={text}")
        }
    })
    .delimited(" ")
}

/// `\n`, `\r`, `\u{1b}`… instead of the characters themselves.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut axum::http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(key.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The span of one client request, continuing the caller's trace when it sent a `traceparent`.
pub fn request_span(
    operation: &str,
    model: &str,
    headers: &axum::http::HeaderMap,
) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        target: "llm_bridge::span",
        "request",
        otel.name = format!("{operation} {model}"),
        otel.kind = "server",
        gen_ai.operation.name = operation,
        gen_ai.request.model = model,
        gen_ai.system = tracing::field::Empty,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        llm_bridge.deployment = tracing::field::Empty,
        llm_bridge.attempts = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    span
}

/// The span of one upstream attempt, a child of the request's.
pub fn attempt_span(
    parent: &tracing::Span,
    operation: &str,
    model: &str,
    provider: &str,
    deployment: &str,
) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: "llm_bridge::span",
        parent: parent,
        "upstream",
        otel.name = format!("{operation} {model}"),
        otel.kind = "client",
        gen_ai.operation.name = operation,
        gen_ai.system = provider,
        gen_ai.request.model = model,
        llm_bridge.deployment = deployment,
        http.response.status_code = tracing::field::Empty,
    )
}

/// Adds `traceparent` for the span to an upstream request.
pub fn inject(span: &tracing::Span, headers: &mut axum::http::HeaderMap) {
    if enabled() {
        TraceContextPropagator::new().inject_context(&span.context(), &mut HeaderInjector(headers));
    }
}
