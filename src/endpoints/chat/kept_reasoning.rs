//! Reasoning state a chat completions client may not send back, kept by the gateway. Anthropic's
//! signed thinking (`thinking_blocks`) and Gemini's thought signatures (a tool call's
//! `extra_content`) come back to the client on the assistant message; a client that rebuilds the
//! message from its content and tool calls drops them, and the provider then refuses the next
//! turn (or the gateway must turn thinking off for it). So the gateway keeps each turn's state,
//! keyed by the turn's first tool-call id, in a [`ResponseStore`] of its own (owner-scoped,
//! bounded, shared through Redis), and gives it back to a turn that arrives without it.
//!
//! Only replies translated from Anthropic or Gemini carry such state, and only a tool turn that
//! comes back without it is looked up: the common request pays one byte search.

use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::gateway::response_store::{ResponseStore, StoredResponse};
use crate::governance::owner::Owner;
use crate::providers::chunks::Chunk;

/// What one assistant turn needs back.
#[derive(Default, Serialize, Deserialize)]
pub struct TurnState {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thinking_blocks: Vec<Value>,
    /// Tool call id → the call's `extra_content`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra_content: Map<String, Value>,
}

impl TurnState {
    fn is_empty(&self) -> bool {
        self.thinking_blocks.is_empty() && self.extra_content.is_empty()
    }
}

/// The store's id for a turn whose first tool call is `call_id` (a digest: the id is the client's).
fn id_of(call_id: &str) -> String {
    let digest = Sha256::digest(call_id.as_bytes());
    let mut id = String::with_capacity(5 + 40);
    id.push_str("call_");
    for b in &digest[..20] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

static THINKING_BLOCKS: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"thinking_blocks\""));
static EXTRA_CONTENT: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"extra_content\""));
/// A tool call's first piece names its type.
static CALL_STARTS: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"type\":\"function\""));
static TOOL_CALLS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"tool_calls\""));

/// Whether a chat reply's bytes may carry reasoning state.
pub fn may_carry(json: &[u8]) -> bool {
    THINKING_BLOCKS.find(json).is_some() || EXTRA_CONTENT.find(json).is_some()
}

fn keep(store: &ResponseStore, owner: &Owner, first_call: &str, state: &TurnState) {
    if state.is_empty() {
        return;
    }
    let stored = StoredResponse {
        owner: owner.id().to_string(),
        response: serde_json::to_value(state).expect("a turn's state serialises"),
        items: Vec::new(),
    };
    store.put(&id_of(first_call), &stored);
}

/// Keeps the state of a whole chat completion's first choice, if it has tool calls and state.
pub fn keep_reply(store: &ResponseStore, owner: &Owner, json: &[u8]) {
    let Ok(reply) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let message = &reply["choices"][0]["message"];
    let calls = message["tool_calls"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let Some(first) = calls.first().and_then(|c| c["id"].as_str()) else {
        return;
    };
    let mut state = TurnState {
        thinking_blocks: message["thinking_blocks"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    };
    for call in calls {
        if let (Some(id), Some(extra)) = (call["id"].as_str(), call.get("extra_content")) {
            state.extra_content.insert(id.to_string(), extra.clone());
        }
    }
    keep(store, owner, first, &state);
}

/// A streamed reply's state, gathered from its chunks as they go by.
#[derive(Default)]
pub struct Gatherer {
    first_call: Option<String>,
    /// Tool call index → id, for the calls whose extra content comes on a later piece.
    calls: Vec<String>,
    state: TurnState,
}

/// The most thinking blocks or tool calls a gathered turn holds.
const MAX_PIECES: usize = 256;

impl Gatherer {
    /// The chunk frames a chat translator wrote for one upstream event: only those that can hold
    /// a tool call or reasoning state are read.
    pub fn frames(&mut self, frames: &[u8]) {
        if may_carry(frames) || CALL_STARTS.find(frames).is_some() {
            let _ = crate::providers::chunks::each(frames, |chunk| self.chunk(chunk));
        }
    }

    fn chunk(&mut self, chunk: Chunk) {
        let Some(choice) = chunk.choices.into_iter().next() else {
            return;
        };
        for piece in choice.delta.thinking_blocks {
            let at = piece.index as usize;
            let block = serde_json::to_value(piece.block).expect("a thinking block serialises");
            let blocks = &mut self.state.thinking_blocks;
            if at == blocks.len() && at < MAX_PIECES {
                blocks.push(block);
            } else if let Some(Value::Object(now)) = blocks.get_mut(at) {
                append(now, &block);
            }
        }
        for call in choice.delta.tool_calls {
            let at = call.index as usize;
            if let Some(id) = call.id.filter(|id| !id.is_empty())
                && at == self.calls.len()
                && at < MAX_PIECES
            {
                self.first_call.get_or_insert_with(|| id.clone());
                self.calls.push(id);
            }
            if let (Some(extra), Some(id)) = (call.extra_content, self.calls.get(at)) {
                self.state.extra_content.insert(id.clone(), extra);
            }
        }
    }

    /// The reply ended well: its state is kept.
    pub fn keep(self, store: &ResponseStore, owner: &Owner) {
        if let Some(first) = &self.first_call {
            keep(store, owner, first, &self.state);
        }
    }
}

/// A thinking block's later piece added to it (its strings appended).
fn append(block: &mut Map<String, Value>, piece: &Value) {
    for field in ["thinking", "signature", "data"] {
        if let Some(more) = piece.get(field).and_then(Value::as_str) {
            match block.get_mut(field) {
                Some(Value::String(now)) => now.push_str(more),
                _ => {
                    block.insert(field.into(), more.into());
                }
            }
        }
    }
}

/// The request with the state of its last tool turn given back, when that turn came without any
/// and the gateway kept it for this owner; `None` when there is nothing to give back.
pub async fn restore(store: &ResponseStore, owner: &Owner, body: &[u8]) -> Option<Bytes> {
    if TOOL_CALLS.find(body).is_none() || may_carry(body) {
        return None;
    }
    let mut request: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let messages = request.get_mut("messages")?.as_array_mut()?;
    let turn = messages
        .iter_mut()
        .rev()
        .find(|m| m["role"] == "assistant" && m["tool_calls"].is_array())?;
    let first = turn["tool_calls"][0]["id"].as_str()?;
    let kept = store.get(&id_of(first), owner).await?;
    let state: TurnState = serde_json::from_value(kept.response).ok()?;
    let turn = turn.as_object_mut()?;
    if !state.thinking_blocks.is_empty() {
        turn.insert("thinking_blocks".into(), state.thinking_blocks.into());
    }
    for call in turn.get_mut("tool_calls")?.as_array_mut()? {
        let extra = call["id"]
            .as_str()
            .and_then(|id| state.extra_content.get(id));
        if let (Some(extra), Value::Object(call)) = (extra.cloned(), call) {
            call.insert("extra_content".into(), extra);
        }
    }
    Some(Bytes::from(
        serde_json::to_vec(&request).expect("a JSON map serialises"),
    ))
}
