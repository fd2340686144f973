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

/// The inbound APIs the tester can speak: (value, label, path; Gemini's names the model too).
pub const APIS: [(&str, &str, &str); 4] = [
    ("chat", "Chat completions (OpenAI)", "/v1/chat/completions"),
    ("messages", "Messages (Anthropic)", "/v1/messages"),
    ("responses", "Responses (OpenAI)", "/v1/responses"),
    ("gemini", "Gemini (Google)", "/v1beta/models"),
];

/// The `anthropic-version` the tester sends with Messages requests.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormState {
    /// Which inbound API the request uses: `chat`, `messages` or `responses`.
    pub api: String,
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
            api: "chat".into(),
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

    /// The path the request goes to.
    pub fn path(&self) -> String {
        if self.api == "gemini" {
            let method = if self.stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            return format!("/v1beta/models/{}:{method}", self.model);
        }
        APIS.iter()
            .find(|(api, _, _)| *api == self.api)
            .map_or(APIS[0].2, |(_, _, path)| path)
            .to_string()
    }

    fn turns(&self) -> Vec<Value> {
        self.turns
            .iter()
            .map(|t| json!({"role": t.role, "content": t.content}))
            .collect()
    }

    /// The request body in the chosen API.
    pub fn body(&self) -> Value {
        match self.api.as_str() {
            "messages" => self.messages_body(),
            "responses" => self.responses_body(),
            "gemini" => self.gemini_body(),
            _ => self.chat_body(),
        }
    }

    /// Gemini's `generateContent`: the model in the URL, turns as `contents` (`model` for the
    /// assistant), the system prompt as `systemInstruction`.
    fn gemini_body(&self) -> Value {
        let contents: Vec<Value> = self
            .turns
            .iter()
            .map(|t| {
                let role = if t.role == "assistant" {
                    "model"
                } else {
                    "user"
                };
                json!({"role": role, "parts": [{"text": t.content}]})
            })
            .collect();
        let mut body = json!({"contents": contents});
        if !self.system.trim().is_empty() {
            body["systemInstruction"] = json!({"parts": [{"text": self.system}]});
        }
        let mut config = serde_json::Map::new();
        if let Some(t) = self.temperature() {
            config.insert("temperature".into(), json!(t));
        }
        if let Some(n) = self.max_tokens() {
            config.insert("maxOutputTokens".into(), json!(n));
        }
        if !config.is_empty() {
            body["generationConfig"] = Value::Object(config);
        }
        body
    }

    /// Anthropic's Messages: `system` apart, `max_tokens` required.
    fn messages_body(&self) -> Value {
        let mut body = json!({"model": self.model, "messages": self.turns(),
            "max_tokens": self.max_tokens().unwrap_or(1024)});
        if !self.system.trim().is_empty() {
            body["system"] = json!(self.system);
        }
        if let Some(t) = self.temperature() {
            body["temperature"] = json!(t.min(1.0));
        }
        if self.stream {
            body["stream"] = json!(true);
        }
        body
    }

    /// OpenAI's Responses: the system prompt as `instructions`, the turns as `input`.
    fn responses_body(&self) -> Value {
        let mut body = json!({"model": self.model, "input": self.turns()});
        if !self.system.trim().is_empty() {
            body["instructions"] = json!(self.system);
        }
        if let Some(t) = self.temperature() {
            body["temperature"] = json!(t);
        }
        if let Some(n) = self.max_tokens() {
            body["max_output_tokens"] = json!(n);
        }
        if self.stream {
            body["stream"] = json!(true);
        }
        body
    }

    fn chat_body(&self) -> Value {
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
        let version = if self.api == "messages" {
            format!("  -H 'anthropic-version: {ANTHROPIC_VERSION}' \\\n")
        } else {
            String::new()
        };
        format!(
            "curl {}{origin}{} \\\n  -H 'content-type: application/json' \\\n{version}  -d '{}'",
            if self.stream { "-N " } else { "" },
            self.path(),
            body.replace('\'', "'\\''"),
        )
    }

    /// The same request with the official Python SDK of its API. JSON is valid Python here
    /// (strings, numbers, lists and objects; booleans are written as Python's).
    pub fn python(&self, origin: &str) -> String {
        match self.api.as_str() {
            "gemini" => self.gemini_python(origin),
            "messages" => self.sdk_call(
                &format!("import anthropic\n\nclient = anthropic.Anthropic(base_url=\"{origin}\", api_key=\"unused\")\n\n"),
                "client.messages.create",
                "for event in reply:\n    print(event)\n",
                "print(reply.content)\nprint(reply.usage)\n",
            ),
            "responses" => self.sdk_call(
                &format!("from openai import OpenAI\n\nclient = OpenAI(base_url=\"{origin}/v1\", api_key=\"unused\")\n\n"),
                "client.responses.create",
                "for event in reply:\n    if event.type == \"response.output_text.delta\":\n        print(event.delta, end=\"\", flush=True)\n",
                "print(reply.output_text)\nprint(reply.usage)\n",
            ),
            _ => self.chat_python(origin),
        }
    }

    /// `reply = call(**body)` and what to print, streamed or not.
    fn sdk_call(&self, head: &str, call: &str, streamed: &str, whole: &str) -> String {
        let body = self.body();
        let args: Vec<String> = body
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let value = match v {
                    Value::Bool(true) => "True".to_string(),
                    Value::Bool(false) => "False".to_string(),
                    v => v.to_string(),
                };
                format!("    {k}={value},")
            })
            .collect();
        let tail = if self.stream { streamed } else { whole };
        format!("{head}reply = {call}(\n{}\n)\n{tail}", args.join("\n"))
    }

    /// Google's `google-genai`, pointed at the gateway.
    fn gemini_python(&self, origin: &str) -> String {
        let py = |v: &str| Value::from(v).to_string();
        let contents: Vec<String> = self
            .turns
            .iter()
            .map(|t| {
                let role = if t.role == "assistant" {
                    "model"
                } else {
                    "user"
                };
                format!(
                    "        types.Content(role={}, parts=[types.Part(text={})]),",
                    py(role),
                    py(&t.content)
                )
            })
            .collect();
        let mut config = Vec::new();
        if !self.system.trim().is_empty() {
            config.push(format!("system_instruction={}", py(&self.system)));
        }
        if let Some(t) = self.temperature() {
            config.push(format!("temperature={t}"));
        }
        if let Some(n) = self.max_tokens() {
            config.push(format!("max_output_tokens={n}"));
        }
        let head = format!(
            "from google import genai\nfrom google.genai import types\n\nclient = genai.Client(api_key=\"unused\", http_options=types.HttpOptions(base_url=\"{origin}\", api_version=\"v1beta\"))\n\n"
        );
        let (call, tail) = if self.stream {
            (
                "client.models.generate_content_stream",
                "for chunk in reply:\n    print(chunk.text or \"\", end=\"\", flush=True)\n",
            )
        } else {
            (
                "client.models.generate_content",
                "print(reply.text)\nprint(reply.usage_metadata)\n",
            )
        };
        format!(
            "{head}reply = {call}(\n    model={},\n    contents=[\n{}\n    ],\n    config=types.GenerateContentConfig({}),\n)\n{tail}",
            py(&self.model),
            contents.join("\n"),
            config.join(", ")
        )
    }

    fn chat_python(&self, origin: &str) -> String {
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
    fn each_api_gets_its_own_body_path_and_snippets() {
        let chat = FormState {
            model: "m".into(),
            ..FormState::default()
        };
        let messages = FormState {
            api: "messages".into(),
            ..chat.clone()
        };
        let b = messages.body();
        assert_eq!(messages.path(), "/v1/messages");
        assert_eq!(b["system"], "You are a helpful assistant.");
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["max_tokens"], 256);
        assert!(
            messages
                .curl("http://h")
                .contains("anthropic-version: 2023-06-01")
        );
        assert!(
            messages
                .python("http://h")
                .contains("client.messages.create(\n    max_tokens=256,")
        );
        let responses = FormState {
            api: "responses".into(),
            stream: false,
            ..chat
        };
        let b = responses.body();
        assert_eq!(responses.path(), "/v1/responses");
        assert_eq!(b["instructions"], "You are a helpful assistant.");
        assert_eq!(b["input"][0]["content"], "Say hello in five words.");
        assert_eq!(b["max_output_tokens"], 256);
        assert!(b.get("stream").is_none());
        assert!(
            responses
                .python("http://h")
                .contains("print(reply.output_text)")
        );
        let gemini = FormState {
            api: "gemini".into(),
            model: "gpt-4o-mini".into(),
            ..FormState::default()
        };
        let b = gemini.body();
        assert_eq!(
            gemini.path(),
            "/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            b["systemInstruction"]["parts"][0]["text"],
            "You are a helpful assistant."
        );
        assert_eq!(
            b["contents"][0]["parts"][0]["text"],
            "Say hello in five words."
        );
        assert_eq!(b["generationConfig"]["maxOutputTokens"], 256);
        assert!(
            gemini
                .python("http://h")
                .contains("client.models.generate_content_stream(")
        );
        let unknown = FormState {
            api: "nope".into(),
            ..FormState::default()
        };
        assert_eq!(unknown.path(), "/v1/chat/completions");
    }

    #[test]
    fn old_saved_state_fills_missing_fields() {
        let form: FormState = serde_json::from_str(r#"{"model":"x"}"#).unwrap();
        assert_eq!(form.model, "x");
        assert!(form.stream);
    }
}
