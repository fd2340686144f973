use super::spec::{ProviderSpec, Quirks, Wire};

pub const SPEC: ProviderSpec = ProviderSpec {
    id: "openai",
    display_name: "OpenAI",
    key_env: &["OPENAI_API_KEY"],
    base_url_env: "OPENAI_BASE_URL",
    region_env: None,
    default_base_url: "https://api.openai.com/v1",
    regions: &[],
    wire: Wire::OpenAi(Quirks::OPENAI),
};
