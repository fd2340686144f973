use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource, Secret};
use crate::providers::{BUILTIN, spec::ProviderSpec};

/// `[providers.<id>]` for each built-in provider, and `[[providers.custom]]` for OpenAI-compatible servers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProvidersConfig {
    pub custom: Vec<CustomProviderConfig>,
    #[serde(flatten)]
    pub builtin: BTreeMap<String, ProviderConfig>,
}

/// `[providers.openai]`, `[providers.gemini]`, … The provider is enabled when it has an API key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// One key, or several separated by commas (rotated).
    pub api_key: Option<Secret>,
    /// Overrides the provider's default base URL (and its region's).
    pub base_url: Option<String>,
    /// Qwen: `cn` (default) or `intl`; Moonshot: `cn` (default) or `global`.
    pub region: Option<String>,
    /// Model names this provider serves besides the catalogue's.
    pub models: Vec<String>,
    /// Overrides `server.first_byte_timeout` for this provider.
    #[serde(
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_byte_timeout: Option<std::time::Duration>,
    /// Overrides `server.idle_timeout` for this provider.
    #[serde(
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<std::time::Duration>,
    /// Overrides `server.total_timeout` for this provider.
    #[serde(
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_timeout: Option<std::time::Duration>,
}

/// `[[providers.custom]]`: any server that speaks OpenAI's API (Ollama, vLLM, llama.cpp, OpenRouter, Groq…).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProviderConfig {
    /// Routes `name/model` to this server.
    pub name: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Models listed by `/v1/models` and routed here without the `name/` prefix.
    #[serde(default)]
    pub models: Vec<String>,
    /// The server also serves OpenAI's Responses API (`/responses`, as vLLM does): Responses
    /// requests go to it untranslated.
    #[serde(default)]
    pub responses_api: bool,
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_byte_timeout: Option<std::time::Duration>,
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<std::time::Duration>,
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_timeout: Option<std::time::Duration>,
}

impl ProvidersConfig {
    pub fn get(&self, id: &str) -> Option<&ProviderConfig> {
        self.builtin.get(id)
    }

    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        for spec in BUILTIN {
            let key = spec.key_env.iter().find_map(|var| env.var(var));
            let base_url = env.var(spec.base_url_env);
            let region = spec.region_env.and_then(|var| env.var(var));
            if key.is_none() && base_url.is_none() && region.is_none() {
                continue;
            }
            let entry = self.builtin.entry(spec.id.to_string()).or_default();
            if let Some(key) = key {
                entry.api_key = Some(Secret::new(key));
            }
            if base_url.is_some() {
                entry.base_url = base_url;
            }
            if region.is_some() {
                entry.region = region;
            }
        }
        Ok(())
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, reason: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key,
            reason,
        };
        for (id, provider) in &self.builtin {
            let Some(spec) = ProviderSpec::find(id) else {
                let known: Vec<&str> = BUILTIN.iter().map(|s| s.id).collect();
                return Err(invalid(
                    format!("providers.{id}"),
                    format!(
                        "unknown provider; built-in providers are {}, and OpenAI-compatible servers go in [[providers.custom]]",
                        known.join(", ")
                    ),
                ));
            };
            if let Some(url) = &provider.base_url {
                check_url(url)
                    .map_err(|reason| invalid(format!("providers.{id}.base_url"), reason))?;
            }
            if let Some(region) = &provider.region {
                if spec.regions.is_empty() {
                    return Err(invalid(
                        format!("providers.{id}.region"),
                        format!("{} has no regions", spec.display_name),
                    ));
                }
                if !spec.regions.iter().any(|(name, _)| name == region) {
                    let names: Vec<&str> = spec.regions.iter().map(|(n, _)| *n).collect();
                    return Err(invalid(
                        format!("providers.{id}.region"),
                        format!(
                            "unknown region `{region}`; expected one of {}",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, custom) in self.custom.iter().enumerate() {
            let key = |field: &str| format!("providers.custom[{i}].{field}");
            if custom.name.is_empty() || custom.name.contains('/') {
                return Err(invalid(
                    key("name"),
                    "must be non-empty and must not contain `/`".into(),
                ));
            }
            if ProviderSpec::find(&custom.name).is_some() {
                return Err(invalid(
                    key("name"),
                    format!("`{}` is a built-in provider's name", custom.name),
                ));
            }
            if !seen.insert(custom.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    format!("`{}` is defined twice", custom.name),
                ));
            }
            check_url(&custom.base_url).map_err(|reason| invalid(key("base_url"), reason))?;
        }
        Ok(())
    }
}

/// An upstream base URL: http or https, without credentials (`user:password@`) or a query or
/// fragment. Credentials there would sit in every request line and in logs; a query would end up
/// before the path the gateway appends. The error shows the URL with those parts masked.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let shown = mask_url(url);
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return Err(format!("`{shown}` is not a URL: {e}")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "`{shown}`: scheme `{}` is not http or https",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "`{shown}` has credentials in it (`user:password@`); put the key in `api_key` instead"
        ));
    }
    if parsed.query().is_some() || url.contains('?') {
        return Err(format!(
            "`{shown}` has a query string; the gateway appends paths such as `/chat/completions` to the base URL, so it must end with a path (put a key in `api_key` instead)"
        ));
    }
    if parsed.fragment().is_some() || url.contains('#') {
        return Err(format!("`{shown}` has a fragment (`#…`); remove it"));
    }
    Ok(())
}

/// A URL as it may be shown: the user and password before `@`, the values of its query and its
/// fragment replaced by `***`. Works on text that does not parse as a URL too.
fn mask_url(url: &str) -> String {
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, _)) => (rest, "#***"),
        None => (url, ""),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) => format!("{name}=***"),
                    None => "***".to_string(),
                })
                .collect();
            (rest, format!("?{}", masked.join("&")))
        }
        None => (rest, String::new()),
    };
    let (scheme, after) = match rest.split_once("://") {
        Some((scheme, after)) => (format!("{scheme}://"), after),
        None => (String::new(), rest),
    };
    let authority_end = after.find('/').unwrap_or(after.len());
    let (authority, path) = after.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    format!("{scheme}{authority}{path}{query}{fragment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_urls_keep_no_credentials() {
        assert_eq!(
            mask_url("https://user:pa55@llm.example.com/v1?api-key=s3cret&x#frag"),
            "https://***@llm.example.com/v1?api-key=***&***#***"
        );
        assert_eq!(
            mask_url("http://127.0.0.1:8000/v1"),
            "http://127.0.0.1:8000/v1"
        );
        assert_eq!(mask_url("not a url?key=s3cret"), "not a url?key=***");
    }

    #[test]
    fn base_urls_with_credentials_queries_or_fragments_are_refused() {
        assert!(check_url("https://llm.example.com/v1").is_ok());
        for (url, says) in [
            ("https://user:pa55@llm.example.com/v1", "credentials"),
            ("https://user@llm.example.com/v1", "credentials"),
            ("https://llm.example.com/v1?api-key=s3cret", "query"),
            ("https://llm.example.com/v1?", "query"),
            ("https://llm.example.com/v1#s3cret", "fragment"),
            ("ftp://llm.example.com/v1", "scheme"),
        ] {
            let err = check_url(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("pa55") && !err.contains("s3cret"), "{err}");
        }
    }
}
