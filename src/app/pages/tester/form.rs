//! The tester's form: what the user chose, kept in localStorage, and the request body it makes.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[cfg(feature = "hydrate")]
pub const STORAGE_KEY: &str = "llmb-tester";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Turn {
    pub fn user(content: &str) -> Turn {
        Turn {
            role: "user".into(),
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormState {
    pub model: String,
    pub system: String,
    pub turns: Vec<Turn>,
    pub temperature: String,
    pub max_tokens: String,
    pub stream: bool,
}

impl Default for FormState {
    fn default() -> Self {
        FormState {
            model: String::new(),
            system: "You are a helpful assistant.".into(),
            turns: vec![Turn::user("Say hello in five words.")],
            temperature: "0.7".into(),
            max_tokens: "256".into(),
            stream: true,
        }
    }
}

impl FormState {
    pub fn messages(&self) -> Vec<Value> {
        let system = (!self.system.trim().is_empty())
            .then(|| json!({"role": "system", "content": self.system}));
        system
            .into_iter()
            .chain(
                self.turns
                    .iter()
                    .map(|t| json!({"role": t.role, "content": t.content})),
            )
            .collect()
    }

    pub fn temperature(&self) -> Option<f64> {
        self.temperature.trim().parse().ok()
    }

    pub fn max_tokens(&self) -> Option<u64> {
        self.max_tokens.trim().parse().ok().filter(|n| *n > 0)
    }

    /// The `POST /v1/chat/completions` body.
    pub fn body(&self) -> Value {
        let mut body = json!({"model": self.model, "messages": self.messages()});
        if let Some(t) = self.temperature() {
            body["temperature"] = json!(t);
        }
        if let Some(n) = self.max_tokens() {
            body["max_tokens"] = json!(n);
        }
        if self.stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    pub fn curl(&self, origin: &str) -> String {
        let body = serde_json::to_string_pretty(&self.body()).unwrap_or_default();
        format!(
            "curl {}{origin}/v1/chat/completions \\\n  -H 'content-type: application/json' \\\n  -d '{}'",
            if self.stream { "-N " } else { "" },
            body.replace('\'', "'\\''"),
        )
    }

    /// The same request with the OpenAI Python SDK. JSON strings are valid Python literals.
    pub fn python(&self, origin: &str) -> String {
        let py = |v: &Value| v.to_string();
        let messages = self
            .messages()
            .iter()
            .map(|m| {
                format!(
                    "        {{\"role\": {}, \"content\": {}}},",
                    py(&m["role"]),
                    py(&m["content"])
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut args = vec![
            format!("    model={},", py(&json!(self.model))),
            format!("    messages=[\n{messages}\n    ],"),
        ];
        if let Some(t) = self.temperature() {
            args.push(format!("    temperature={t},"));
        }
        if let Some(n) = self.max_tokens() {
            args.push(format!("    max_tokens={n},"));
        }
        let head = format!(
            "from openai import OpenAI\n\nclient = OpenAI(base_url=\"{origin}/v1\", api_key=\"unused\")\n\n"
        );
        if self.stream {
            args.push("    stream=True,".into());
            args.push("    stream_options={\"include_usage\": True},".into());
            format!(
                "{head}stream = client.chat.completions.create(\n{}\n)\nfor chunk in stream:\n    if chunk.choices and chunk.choices[0].delta.content:\n        print(chunk.choices[0].delta.content, end=\"\", flush=True)\n    if chunk.usage:\n        print(\"\\n\", chunk.usage)\n",
                args.join("\n")
            )
        } else {
            format!(
                "{head}reply = client.chat.completions.create(\n{}\n)\nprint(reply.choices[0].message.content)\nprint(reply.usage)\n",
                args.join("\n")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_asks_for_usage_when_streaming() {
        let form = FormState {
            model: "gpt-4o-mini".into(),
            ..FormState::default()
        };
        let body = form.body();
        assert_eq!(body["stream_options"]["include_usage"], json!(true));
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["content"], "Say hello in five words.");
        assert_eq!(body["max_tokens"], 256);
        let plain = FormState {
            stream: false,
            system: " ".into(),
            ..form
        };
        assert!(plain.body().get("stream").is_none());
        assert_eq!(plain.body()["messages"][0]["role"], "user");
    }

    #[test]
    fn snippets_quote_safely() {
        let form = FormState {
            model: "gpt-4o-mini".into(),
            turns: vec![Turn::user("it's \"quoted\"")],
            ..FormState::default()
        };
        let curl = form.curl("http://h:1");
        assert!(curl.starts_with("curl -N http://h:1/v1/chat/completions"));
        assert!(curl.contains("it'\\''s"));
        let py = form.python("http://h:1");
        assert!(py.contains("base_url=\"http://h:1/v1\""));
        assert!(py.contains(r#""content": "it's \"quoted\"""#));
        assert!(py.contains("stream=True"));
    }

    #[test]
    fn old_saved_state_fills_missing_fields() {
        let form: FormState = serde_json::from_str(r#"{"model":"x"}"#).unwrap();
        assert_eq!(form.model, "x");
        assert!(form.stream);
    }
}
