//! What a translating provider (one that does not speak OpenAI's dialect) is given to write its replies.

/// Identity of the reply the client receives, fixed once per request.
#[derive(Debug, Clone)]
pub struct ReplyContext {
    /// `chatcmpl-…`, the same in every chunk of a stream.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name reported back: the upstream model, without any `provider/` prefix.
    pub model: String,
    /// The client asked for `stream_options.include_usage`: end the stream with a usage chunk (`choices: []`).
    pub include_usage: bool,
}
