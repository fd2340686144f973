//! The request's record: started when the request arrives, finished when its reply has been sent
//! (or the client went away), then handed to the stats without waiting.

use std::sync::Arc;
use std::time::Instant;

use crate::domain::RequestRecord;
use crate::error::ApiError;
use crate::governance::Admission;
use crate::providers::catalogue::Catalogue;
use crate::providers::openai_types::Usage;
use crate::stats::Stats;

/// Status recorded when the client disconnects before the reply is complete (nginx's convention).
pub const CLIENT_CLOSED: u16 = 499;

pub struct Recording {
    stats: Arc<Stats>,
    catalogue: Arc<Catalogue>,
    started: Instant,
    pub record: RequestRecord,
    /// The request's trace span (disabled unless traces are exported).
    pub span: tracing::Span,
    /// The caller's key and limits, settled with what the request used.
    admission: Option<Arc<Admission>>,
    /// The model name is not one the gateway knows (see [`RequestRecord::unlisted_model`]).
    pub unlisted: bool,
    /// Told what the reply cost when it succeeds, for the response cache's entry.
    pub cache_slot: Option<super::cache::fill::Slot>,
    finished: bool,
}

impl Recording {
    pub fn start(
        stats: Arc<Stats>,
        catalogue: Arc<Catalogue>,
        request_id: &str,
        stream: bool,
    ) -> Recording {
        Recording {
            stats,
            catalogue,
            started: Instant::now(),
            record: RequestRecord {
                time_ms: crate::clock::now_ms(),
                request_id: request_id.to_string(),
                stream,
                status: 200,
                attempts: 1,
                ..Default::default()
            },
            span: tracing::Span::none(),
            admission: None,
            unlisted: true,
            cache_slot: None,
            finished: false,
        }
    }

    /// Ties the request to the caller's virtual key (if any), refusing models the key may not use.
    pub fn admit(&mut self, admission: Option<Arc<Admission>>) -> Result<(), ApiError> {
        let Some(admission) = admission else {
            return Ok(());
        };
        self.record.client_key = admission.key_id().map(str::to_string);
        self.record.team = admission.team_name().map(str::to_string);
        self.record.user = admission.user.clone();
        let allowed = admission.check_model(&self.record.model);
        self.admission = Some(admission);
        allowed
    }

    /// Who owns what is kept for this request: the admitted caller's owner; the administrator's
    /// for a request made by the gateway itself (the console's tester).
    pub fn owner_id(&self) -> &str {
        self.admission
            .as_ref()
            .map_or(crate::governance::owner::MASTER, |a| a.owner.id())
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn first_token(&mut self) {
        if self.record.ttft_ms.is_none() {
            self.record.ttft_ms = Some(self.started.elapsed().as_secs_f64() * 1e3);
        }
    }

    /// A successful reply; `usage` is the provider's own, or `estimate` when it reported none.
    pub fn succeed(
        mut self,
        usage: Option<Usage>,
        estimate: impl FnOnce() -> (u64, u64),
        upstream_model: &str,
    ) {
        match usage {
            Some(u) => {
                self.record.prompt_tokens = u.prompt_tokens;
                self.record.completion_tokens = u.completion_tokens;
                self.record.reasoning_tokens = u.reasoning_tokens();
                self.record.cached_tokens = u.cached_tokens();
                self.record.cache_write_tokens = u.cache_write_tokens;
            }
            None => {
                let (prompt, completion) = estimate();
                self.record.prompt_tokens = prompt;
                self.record.completion_tokens = completion;
                self.record.usage_estimated = true;
            }
        }
        let r = &self.record;
        self.record.cost_usd = self
            .catalogue
            .cost_with_writes(
                upstream_model,
                r.prompt_tokens,
                r.cached_tokens,
                r.cache_write_tokens,
                r.completion_tokens,
            )
            .unwrap_or(0.0);
        if let Some(slot) = self.cache_slot.take() {
            let _ = slot.set(super::cache::entry::Made::of(&self.record));
        }
        self.finish();
    }

    /// Served from the response cache: the original usage, no cost, and the cost it saved.
    pub fn hit(mut self, made: &super::cache::entry::Made) {
        let r = &mut self.record;
        r.provider = made.provider.clone();
        r.deployment = made.deployment.clone();
        r.attempts = 0;
        r.prompt_tokens = made.prompt_tokens;
        r.completion_tokens = made.completion_tokens;
        r.reasoning_tokens = made.reasoning_tokens;
        r.cached_tokens = made.cached_tokens;
        r.cache_write_tokens = made.cache_write_tokens;
        r.usage_estimated = made.usage_estimated;
        r.cost_usd = 0.0;
        r.saved_usd = made.cost_usd;
        r.cache = "hit".into();
        if self.record.stream {
            self.first_token();
        }
        self.finish();
    }

    pub fn fail(mut self, error: &ApiError) {
        self.record.status = error.status.as_u16();
        self.record.error_class = Some(error.class().to_string());
        self.finish();
    }

    /// An error after the reply's status was sent (mid-stream): the status stays, the class says what happened.
    pub fn fail_midway(mut self, error: &ApiError) {
        self.record.error_class = Some(error.class().to_string());
        self.finish();
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.record.unlisted_model = self.unlisted;
        self.record.latency_ms = self.started.elapsed().as_secs_f64() * 1e3;
        crate::stats::metrics::observe(&self.record);
        let r = &self.record;
        self.span.record("gen_ai.system", r.provider.as_str());
        self.span
            .record("llm_bridge.deployment", r.deployment.as_str());
        self.span.record("llm_bridge.attempts", r.attempts);
        self.span.record("http.response.status_code", r.status);
        self.span
            .record("gen_ai.usage.input_tokens", r.prompt_tokens);
        self.span
            .record("gen_ai.usage.output_tokens", r.completion_tokens);
        if let Some(admission) = self.admission.take() {
            admission.settle(&self.record, self.stats.alerts());
        }
        self.stats.alerts().observe(&self.record);
        self.stats.record(std::mem::take(&mut self.record));
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.finished {
            self.record.status = CLIENT_CLOSED;
            self.record.error_class = Some("client_closed".into());
            self.finish();
        }
    }
}

/// About four characters per token: the usual rule of thumb for English text.
pub fn estimate_tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}
