//! What a provider is, as data: its name, how it is enabled, where it lives and which wire format it speaks.

/// A built-in provider. Each provider file declares one; `providers::BUILTIN` lists them.
#[derive(Debug)]
pub struct ProviderSpec {
    /// The name used in `provider/model`, in the config file (`[providers.<id>]`) and in `owned_by`.
    pub id: &'static str,
    pub display_name: &'static str,
    /// Environment variables that hold the API key, the first one is the documented one.
    pub key_env: &'static [&'static str],
    pub base_url_env: &'static str,
    pub region_env: Option<&'static str>,
    pub default_base_url: &'static str,
    /// Region name → base URL; the first one is the default.
    pub regions: &'static [(&'static str, &'static str)],
    pub wire: Wire,
}

/// The API dialect a provider speaks.
#[derive(Debug, Clone, Copy)]
pub enum Wire {
    /// OpenAI's chat completions API, with the provider's declared deviations.
    OpenAi(Quirks),
    /// Google's `generateContent` API.
    Gemini,
    /// Anthropic's Messages API.
    Anthropic,
}

/// How an OpenAI-dialect provider differs from OpenAI itself.
#[derive(Debug, Clone, Copy)]
pub struct Quirks {
    /// Accepts `reasoning_content` on assistant messages in the history (DeepSeek requires it).
    pub accepts_reasoning_content: bool,
    /// Knows `max_completion_tokens`; otherwise it is sent as `max_tokens`.
    pub accepts_max_completion_tokens: bool,
    /// Serves OpenAI's Responses API (`/responses`): Responses requests pass through untranslated.
    pub speaks_responses: bool,
}

impl Quirks {
    pub const OPENAI: Quirks = Quirks {
        accepts_reasoning_content: false,
        accepts_max_completion_tokens: true,
        speaks_responses: true,
    };
    /// What an unknown OpenAI-compatible server gets: everything passed through untouched.
    pub const PASSTHROUGH: Quirks = Quirks {
        accepts_reasoning_content: true,
        accepts_max_completion_tokens: true,
        speaks_responses: false,
    };
}

impl ProviderSpec {
    pub fn find(id: &str) -> Option<&'static ProviderSpec> {
        super::BUILTIN.iter().copied().find(|spec| spec.id == id)
    }

    /// The base URL for a region (or the default one).
    pub fn base_url_for(&self, region: Option<&str>) -> &'static str {
        region
            .and_then(|r| self.regions.iter().find(|(name, _)| *name == r))
            .or(self.regions.first())
            .map_or(self.default_base_url, |(_, url)| url)
    }
}

impl ProviderSpec {
    /// The quirks of an OpenAI-dialect provider ([`Quirks::PASSTHROUGH`] for the others).
    pub const fn quirks(&self) -> Quirks {
        match self.wire {
            Wire::OpenAi(q) => q,
            _ => Quirks::PASSTHROUGH,
        }
    }
}
