//! Replies read whole before they go on: those translated as a whole (a provider's non-stream
//! reply in its own dialect), bounded in size and in silence.

use super::quiet::Quiet;
use super::relay::{Upstream, root_cause};
use super::upstream::{Failure, Sent};
use crate::error::ApiError;
use crate::providers::dialect::{self, ChatReply};

/// Largest non-stream reply the gateway reads whole (to translate it); OpenAI-dialect chat replies
/// are streamed through.
const MAX_WHOLE_REPLY: usize = 32 * 1024 * 1024;

/// A whole non-stream chat reply as OpenAI's JSON, translated from the upstream's dialect when
/// it has one, for the inbound APIs that rewrite it (Messages, Responses).
pub async fn read_whole_chat(sent: Sent, reply: ChatReply) -> Result<Vec<u8>, Failure> {
    let raw = read_whole(sent).await?;
    match reply {
        ChatReply::Translate(wire, ctx) => Ok(dialect::chat_reply(wire, &raw, &ctx)
            .map_err(Failure::from_reply)?
            .0),
        _ => Ok(raw),
    }
}

/// The whole reply (bounded), for replies translated as a whole.
pub async fn read_whole(sent: Sent) -> Result<Vec<u8>, Failure> {
    read_all(sent.into_body(), MAX_WHOLE_REPLY)
        .await
        .map_err(Failure::from_reply)
}

/// A whole (bounded) upstream body, for replies that must be translated as a whole.
async fn read_all(
    (mut upstream, mut quiet): (Upstream, Quiet),
    cap: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    loop {
        match quiet.next(&mut upstream).await {
            Some(Some(Ok(chunk))) => {
                if body.len() + chunk.len() > cap {
                    return Err(ApiError::bad_gateway(format!(
                        "the upstream reply is larger than {} MiB",
                        cap >> 20
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Some(Some(Err(e))) => {
                return Err(ApiError::bad_gateway(format!(
                    "the upstream reply broke off: {}",
                    root_cause(&e)
                )));
            }
            Some(None) => return Ok(body),
            None => return Err(quiet.error()),
        }
    }
}
