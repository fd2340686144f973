//! The cache key: the inbound API, the resolved model, the caller (when entries are per key) and a
//! canonical form of the body, so that key order and whitespace do not split entries.

use serde_json::Value;

/// A BLAKE3 hash: the same on every replica and across restarts (Redis entries are shared).
pub type Key = [u8; 32];

/// Why a request is not looked up nor cached.
pub type Unqualified = &'static str;

/// What the key is computed from.
pub struct KeyInput<'a> {
    pub api: &'static str,
    pub model: &'a str,
    /// The caller's owner id when entries are per key; empty for a shared cache.
    pub owner: &'a str,
    /// The request headers that change the reply (Messages: `anthropic-version`, `anthropic-beta`).
    pub variant: &'a str,
    /// A stream and a whole reply share one entry (`stream` and `stream_options` are left out).
    pub across_modes: bool,
    pub only_deterministic: bool,
    pub multiple_choices: bool,
}

/// The request's key, or why it does not qualify.
pub fn key(input: &KeyInput, body: &[u8]) -> Result<Key, Unqualified> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("not a JSON object");
    };
    // `n` as the upstream reads it: `2.0` asks for two choices as `2` does.
    let choices = match fields.get("n") {
        None | Some(Value::Null) => 1.0,
        Some(n) => n.as_f64().unwrap_or(f64::INFINITY),
    };
    if choices != 1.0 && !input.multiple_choices {
        return Err("several choices");
    }
    if input.only_deterministic && input.api != "embeddings" {
        // Gemini's API keeps its settings in `generationConfig`.
        let config = fields.get("generationConfig");
        let setting = |name: &str| {
            fields
                .get(name)
                .or_else(|| config.and_then(|c| c.get(name)))
                .filter(|v| !v.is_null())
        };
        let cold = setting("temperature")
            .and_then(Value::as_f64)
            .is_some_and(|t| t == 0.0);
        let seeded = setting("seed").is_some();
        if !cold && !seeded {
            return Err("not deterministic");
        }
    }
    fields.remove("user");
    if input.across_modes {
        fields.remove("stream");
        fields.remove("stream_options");
    }
    let mut hasher = blake3::Hasher::new();
    for part in [input.api, input.model, input.owner, input.variant] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    // serde_json's maps are ordered by key: writing the value is its canonical form. Written out
    // first and hashed in one call: the hasher fed token by token cost more than the parsing.
    let mut canonical = Vec::with_capacity(body.len());
    serde_json::to_writer(&mut canonical, &fields).expect("a JSON value serialises");
    hasher.update(&canonical);
    Ok(*hasher.finalize().as_bytes())
}

pub fn hex(key: &Key) -> String {
    use std::fmt::Write;
    key.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> KeyInput<'static> {
        KeyInput {
            api: "chat",
            model: "gpt-4o",
            owner: "",
            variant: "",
            across_modes: true,
            only_deterministic: false,
            multiple_choices: false,
        }
    }

    #[test]
    fn key_order_whitespace_stream_and_user_do_not_split_entries() {
        let a = key(
            &input(),
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#,
        )
        .unwrap();
        let b = key(
            &input(),
            br#"{ "temperature": 0, "stream": true, "stream_options": {"include_usage": true},
                 "user": "u1", "messages": [ {"content": "hi", "role": "user"} ], "model": "m" }"#,
        )
        .unwrap();
        assert_eq!(a, b);
        let c = key(
            &input(),
            br#"{"model":"m","messages":[{"role":"user","content":"hi!"}],"temperature":0}"#,
        )
        .unwrap();
        assert_ne!(a, c, "a different prompt");
    }

    #[test]
    fn several_choices_are_never_cached_however_written() {
        for n in ["2", "2.0", "1.5", "\"2\"", "1e1"] {
            let body = format!(r#"{{"model":"m","messages":[],"temperature":0,"n":{n}}}"#);
            assert_eq!(
                key(&input(), body.as_bytes()),
                Err("several choices"),
                "n = {n}"
            );
        }
        for n in ["1", "1.0", "null"] {
            let body = format!(r#"{{"model":"m","messages":[],"temperature":0,"n":{n}}}"#);
            assert!(key(&input(), body.as_bytes()).is_ok(), "n = {n}");
        }
    }

    #[test]
    fn the_api_model_and_owner_split_entries() {
        let body = br#"{"model":"m","messages":[]}"#;
        let base = key(&input(), body).unwrap();
        let other_model = KeyInput {
            model: "gpt-4o-mini",
            ..input()
        };
        let other_owner = KeyInput {
            owner: "team-a",
            ..input()
        };
        let other_api = KeyInput {
            api: "messages",
            ..input()
        };
        let other_variant = KeyInput {
            variant: "2023-06-01\ninterleaved-thinking-2025-05-14",
            ..input()
        };
        for other in [other_model, other_owner, other_api, other_variant] {
            assert_ne!(base, key(&other, body).unwrap());
        }
        let per_mode = KeyInput {
            across_modes: false,
            ..input()
        };
        assert_ne!(
            key(&per_mode, br#"{"model":"m","messages":[],"stream":true}"#).unwrap(),
            key(&per_mode, br#"{"model":"m","messages":[]}"#).unwrap(),
            "a stream and a whole reply are separate entries when the API cannot turn one into the other"
        );
    }

    #[test]
    fn several_choices_and_sampled_requests_do_not_qualify_unless_allowed() {
        assert_eq!(
            key(&input(), br#"{"model":"m","n":2}"#),
            Err("several choices")
        );
        let allowed = KeyInput {
            multiple_choices: true,
            ..input()
        };
        assert!(key(&allowed, br#"{"model":"m","n":2}"#).is_ok());
        let strict = KeyInput {
            only_deterministic: true,
            ..input()
        };
        assert_eq!(
            key(&strict, br#"{"model":"m","temperature":0.7}"#),
            Err("not deterministic")
        );
        assert!(key(&strict, br#"{"model":"m","temperature":0}"#).is_ok());
        assert!(key(&strict, br#"{"model":"m","seed":7}"#).is_ok());
        assert_eq!(key(&input(), b"[1]"), Err("not a JSON object"));
    }
}
