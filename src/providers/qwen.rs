use super::spec::{ProviderSpec, Quirks, Wire};

/// Alibaba Cloud's DashScope, in its OpenAI-compatible mode.
pub const SPEC: ProviderSpec = ProviderSpec {
    id: "qwen",
    display_name: "Qwen (DashScope)",
    key_env: &["QWEN_API_KEY", "DASHSCOPE_API_KEY"],
    base_url_env: "QWEN_BASE_URL",
    region_env: Some("QWEN_REGION"),
    default_base_url: "https://dashscope.aliyuncs.com/compatible-mode/v1",
    regions: &[
        ("cn", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
        (
            "intl",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        ),
    ],
    wire: Wire::OpenAi(Quirks {
        accepts_reasoning_content: true,
        accepts_max_completion_tokens: false,
        speaks_responses: false,
    }),
};
