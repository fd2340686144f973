//! Chat completion chunks (OpenAI's shape, as every chat translator writes them), read back by the
//! inbound APIs that are not chat completions (Messages, Responses) to write their own events.

use serde::Deserialize;

use crate::error::ApiError;
use crate::providers::openai_types::{ThinkingBlock, ThinkingBlockDelta, Usage};

/// A list that may also come as `null` (several providers send `"tool_calls": null`).
fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
pub struct Chunk {
    #[serde(default, deserialize_with = "list")]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Deserialize, Default)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, alias = "reasoning")]
    pub reasoning_content: Option<String>,
    /// Pieces of Anthropic's signed thinking.
    #[serde(default, deserialize_with = "list")]
    pub thinking_blocks: Vec<ThinkingBlockDelta>,
    #[serde(default, deserialize_with = "list")]
    pub tool_calls: Vec<ToolCallDelta>,
    /// What the provider needs back with the message's text (Gemini's thought signature).
    #[serde(default)]
    pub extra_content: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
pub struct ToolCallDelta {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
    /// What the provider needs back with the call (Gemini's thought signature).
    #[serde(default)]
    pub extra_content: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
pub struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// The most thinking blocks one reply gathers (a bound on what an upstream's stream can grow).
pub const MAX_THINKING_BLOCKS: usize = 256;

/// Adds a piece of a thinking block to `blocks`: the first piece of an index starts its block (in
/// order, up to [`MAX_THINKING_BLOCKS`]), the next ones add to it (strings appended).
pub fn gather_thinking(blocks: &mut Vec<ThinkingBlock>, piece: ThinkingBlockDelta) {
    let at = piece.index as usize;
    let room = blocks.len() < MAX_THINKING_BLOCKS;
    match (blocks.get_mut(at), piece.block) {
        (
            Some(ThinkingBlock::Thinking {
                thinking,
                signature,
            }),
            ThinkingBlock::Thinking {
                thinking: more,
                signature: signed,
            },
        ) => {
            thinking.push_str(&more);
            signature.push_str(&signed);
        }
        (
            Some(ThinkingBlock::RedactedThinking { data }),
            ThinkingBlock::RedactedThinking { data: more },
        ) => data.push_str(&more),
        (None, block) if room => blocks.push(block),
        _ => {}
    }
}

/// An inbound API's stream written from chat chunks (Messages events, Responses events).
pub trait FromChunks: Send + 'static {
    /// The chunk frames a chat translator wrote for one upstream event.
    fn frames(&mut self, frames: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError>;
    /// The chunks ended: what closes the stream.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// Calls `f` with each chunk of the frames (`data: {…}\n\n`, `data: [DONE]`) a chat translator wrote.
pub fn each(frames: &[u8], mut f: impl FnMut(Chunk)) -> Result<(), ApiError> {
    for line in frames.split(|&b| b == b'\n') {
        let Some(data) = line.strip_prefix(b"data: ") else {
            continue;
        };
        if data == b"[DONE]" {
            continue;
        }
        let chunk: Chunk = serde_json::from_slice(data).map_err(|e| {
            ApiError::bad_gateway(format!("the upstream sent an unreadable chunk: {e}"))
        })?;
        f(chunk);
    }
    Ok(())
}

/// A whole `chat.completion` as the one chunk that would have carried all of it.
pub fn whole(chat: &[u8]) -> Result<Chunk, ApiError> {
    #[derive(Deserialize)]
    struct Whole {
        #[serde(default, deserialize_with = "list")]
        choices: Vec<WholeChoice>,
        #[serde(default)]
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct WholeChoice {
        #[serde(default)]
        message: WholeMessage,
        #[serde(default)]
        finish_reason: Option<String>,
    }
    #[derive(Deserialize, Default)]
    struct WholeMessage {
        #[serde(default)]
        content: Option<String>,
        #[serde(default, alias = "reasoning")]
        reasoning_content: Option<String>,
        #[serde(default, deserialize_with = "list")]
        thinking_blocks: Vec<ThinkingBlock>,
        #[serde(default, deserialize_with = "list")]
        tool_calls: Vec<WholeCall>,
        #[serde(default)]
        extra_content: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct WholeCall {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        function: Option<FunctionDelta>,
        #[serde(default)]
        extra_content: Option<serde_json::Value>,
    }
    let whole: Whole = serde_json::from_slice(chat)
        .map_err(|e| ApiError::bad_gateway(format!("the upstream reply is not readable: {e}")))?;
    let choices = whole
        .choices
        .into_iter()
        .take(1)
        .map(|c| Choice {
            index: 0,
            delta: Delta {
                content: c.message.content,
                reasoning_content: c.message.reasoning_content,
                extra_content: c.message.extra_content,
                thinking_blocks: c
                    .message
                    .thinking_blocks
                    .into_iter()
                    .enumerate()
                    .map(|(i, block)| ThinkingBlockDelta {
                        index: i as u32,
                        block,
                    })
                    .collect(),
                tool_calls: c
                    .message
                    .tool_calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, call)| ToolCallDelta {
                        index: i as u32,
                        id: call.id,
                        function: call.function,
                        extra_content: call.extra_content,
                    })
                    .collect(),
            },
            finish_reason: c.finish_reason,
        })
        .collect();
    Ok(Chunk {
        choices,
        usage: whole.usage,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn null_lists_read_as_empty() {
        let mut seen = Vec::new();
        let frames = br#"data: {"choices":[{"delta":{"content":null,"tool_calls":null},"finish_reason":null}],"usage":null}

data: {"choices":null}

data: [DONE]

"#;
        super::each(frames, |c| seen.push(c.choices.len())).unwrap();
        assert_eq!(seen, [1, 0]);
        let whole = super::whole(br#"{"choices":[{"message":{"content":"a","tool_calls":null}}]}"#)
            .unwrap();
        assert_eq!(whole.choices[0].delta.content.as_deref(), Some("a"));
    }
}
