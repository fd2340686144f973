use super::spec::{ProviderSpec, Quirks, Wire};

/// Moonshot AI (Kimi).
pub const SPEC: ProviderSpec = ProviderSpec {
    id: "moonshot",
    display_name: "Moonshot (Kimi)",
    key_env: &["MOONSHOT_API_KEY"],
    base_url_env: "MOONSHOT_BASE_URL",
    region_env: Some("MOONSHOT_REGION"),
    default_base_url: "https://api.moonshot.cn/v1",
    regions: &[
        ("cn", "https://api.moonshot.cn/v1"),
        ("global", "https://api.moonshot.ai/v1"),
    ],
    wire: Wire::OpenAi(Quirks {
        accepts_reasoning_content: true,
        accepts_max_completion_tokens: false,
        speaks_responses: false,
    }),
};
