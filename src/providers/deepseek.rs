use super::spec::{ProviderSpec, Quirks, Wire};

/// DeepSeek keeps `reasoning_content` in replies and needs it back in the history of thinking-mode
/// tool calls, so it is passed through; it knows only `max_tokens`.
pub const SPEC: ProviderSpec = ProviderSpec {
    id: "deepseek",
    display_name: "DeepSeek",
    key_env: &["DEEPSEEK_API_KEY"],
    base_url_env: "DEEPSEEK_BASE_URL",
    region_env: None,
    default_base_url: "https://api.deepseek.com",
    regions: &[],
    wire: Wire::OpenAi(Quirks {
        accepts_reasoning_content: true,
        accepts_max_completion_tokens: false,
        speaks_responses: false,
    }),
};
