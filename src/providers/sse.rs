//! Server-sent events: a bounded incremental decoder for upstream streams and the writer for ours.

use bytes::{Buf, BytesMut};
use serde::Serialize;

/// Longest event the decoder holds before giving up: keeps memory per stream bounded.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Splits a byte stream into SSE events and hands out each event's `data` payload.
#[derive(Default)]
pub struct SseDecoder {
    buf: BytesMut,
}

#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct EventTooLarge;

/// Writes `event` as it arrived: its `event:` field, its `data:` lines, the blank line.
pub fn write_event(out: &mut Vec<u8>, event: &SseEvent) {
    if let Some(name) = event.event.as_deref().filter(|n| !n.is_empty()) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in event.data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

impl SseDecoder {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, EventTooLarge> {
        loop {
            let Some((end, sep)) = find_event_end(&self.buf) else {
                return if self.buf.len() > MAX_EVENT_BYTES {
                    Err(EventTooLarge)
                } else {
                    Ok(None)
                };
            };
            let raw = self.buf.split_to(end);
            self.buf.advance(sep);
            if let Some(event) = parse_event(&raw) {
                return Ok(Some(event));
            }
        }
    }

    /// What is left when the upstream closed without a final blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let raw = std::mem::take(&mut self.buf);
        parse_event(&raw)
    }
}

/// Position of the blank line ending the first event and the separator's length.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(pos) = memchr::memchr2(b'\n', b'\r', &buf[i..]) {
        let at = i + pos;
        let line_end = if buf[at] == b'\r' && buf.get(at + 1) == Some(&b'\n') {
            at + 2
        } else {
            at + 1
        };
        match buf.get(line_end) {
            Some(b'\n') => return Some((at, line_end + 1 - at)),
            Some(b'\r') => {
                let extra = if buf.get(line_end + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                return Some((at, line_end + extra - at));
            }
            _ => i = line_end,
        }
        if i >= buf.len() {
            return None;
        }
    }
    None
}

fn parse_event(raw: &[u8]) -> Option<SseEvent> {
    let mut event = None;
    let mut data: Option<Vec<u8>> = None;
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', raw).chain(std::iter::once(raw.len()));
    for end in ends {
        let line = &raw[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            },
            b"event" => event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
    data.map(|data| SseEvent { event, data })
}

/// Appends `data: <json>\n\n`.
pub fn write_json(out: &mut Vec<u8>, value: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut *out, value).expect("serialising to a Vec cannot fail");
    out.extend_from_slice(b"\n\n");
}

/// Appends `data: <raw>\n\n` for a payload that is already JSON.
pub fn write_raw(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
}

pub const DONE: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out = vec![];
        for chunk in input {
            d.push(chunk);
            while let Some(e) = d.next_event().unwrap() {
                out.push(e);
            }
        }
        out.extend(d.finish());
        out
    }

    #[test]
    fn splits_across_chunks_and_line_endings() {
        let got = events(&[
            b"data: {\"a\"",
            b":1}\n",
            b"\ndata: x\r\n\r\nevent: message_start\ndata: {}\n\n: ping\n\n",
            b"data: tail",
        ]);
        let datas: Vec<&[u8]> = got.iter().map(|e| e.data.as_slice()).collect();
        assert_eq!(datas, vec![&b"{\"a\":1}"[..], b"x", b"{}", b"tail"]);
        assert_eq!(got[2].event.as_deref(), Some("message_start"));
    }

    #[test]
    fn multi_line_data_joined() {
        let got = events(&[b"data: a\ndata: b\n\n"]);
        assert_eq!(got[0].data, b"a\nb");
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut d = SseDecoder::default();
        d.push(&vec![b'x'; MAX_EVENT_BYTES + 1]);
        assert_eq!(d.next_event(), Err(EventTooLarge));
    }
}
