//! Server-sent events: a bounded incremental decoder for upstream streams and the writer for ours.

use bytes::{Buf, BytesMut};
use serde::Serialize;

/// Longest event the decoder holds before giving up: keeps memory per stream bounded.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Splits a byte stream into SSE events and hands out each event's `data` payload.
#[derive(Default)]
pub struct SseDecoder {
    buf: BytesMut,
    /// Where the scan for the end of the event in `buf` resumes: every line ending before it is
    /// known not to end the event. An event arriving in many small chunks is scanned once, not
    /// once per chunk.
    scanned: usize,
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

    /// The next complete event, if the buffer holds one. An event longer than
    /// [`MAX_EVENT_BYTES`] (up to the blank line that ends it) is an error however it arrived:
    /// whole, or in pieces the decoder had to hold.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, EventTooLarge> {
        loop {
            let (end, sep) = match find_event_end(&self.buf, self.scanned) {
                Ok(found) => found,
                Err(resume) => {
                    self.scanned = resume;
                    // The event's end is at most two bytes back (a `\r\n` the buffer ends with).
                    return if self.buf.len() > MAX_EVENT_BYTES + 2 {
                        Err(EventTooLarge)
                    } else {
                        Ok(None)
                    };
                }
            };
            if end > MAX_EVENT_BYTES {
                self.scanned = 0;
                return Err(EventTooLarge);
            }
            let raw = self.buf.split_to(end);
            self.buf.advance(sep);
            self.scanned = 0;
            if let Some(event) = parse_event(&raw) {
                return Ok(Some(event));
            }
        }
    }

    /// What is left when the upstream closed without a final blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let raw = std::mem::take(&mut self.buf);
        self.scanned = 0;
        parse_event(&raw)
    }
}

/// Position of the blank line ending the first event and the separator's length, scanning from
/// `from` (0, or where the last scan stopped); otherwise where the next scan is to resume.
fn find_event_end(buf: &[u8], from: usize) -> Result<(usize, usize), usize> {
    let mut i = from;
    while let Some(pos) = memchr::memchr2(b'\n', b'\r', &buf[i..]) {
        let at = i + pos;
        let line_end = if buf[at] == b'\r' && buf.get(at + 1) == Some(&b'\n') {
            at + 2
        } else {
            at + 1
        };
        match buf.get(line_end) {
            Some(b'\n') => return Ok((at, line_end + 1 - at)),
            Some(b'\r') => {
                let extra = if buf.get(line_end + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                return Ok((at, line_end + extra - at));
            }
            Some(_) => i = line_end,
            // The line ending ends the buffer: whether a blank line (or the `\n` of a `\r\n`)
            // follows is not known yet.
            None => return Err(at),
        }
    }
    // No line ending after `i`: the bytes there are all in one unfinished line.
    Err(buf.len())
}

fn parse_event(raw: &[u8]) -> Option<SseEvent> {
    let mut event = None;
    let mut data: Option<Vec<u8>> = None;
    // Lines end with `\n`, `\r\n` or a lone `\r`.
    let mut start = 0;
    let ends = memchr::memchr2_iter(b'\n', b'\r', raw).chain(std::iter::once(raw.len()));
    for end in ends {
        if end < start {
            // The `\n` of a `\r\n`.
            continue;
        }
        let line = &raw[start..end];
        start = if raw.get(end..end + 2) == Some(b"\r\n") {
            end + 2
        } else {
            end + 1
        };
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
        d.push(&vec![b'x'; MAX_EVENT_BYTES + 3]);
        assert_eq!(d.next_event(), Err(EventTooLarge));
    }

    #[test]
    fn the_size_limit_does_not_depend_on_how_the_event_arrives() {
        let mut event = b"data: ".to_vec();
        event.resize(MAX_EVENT_BYTES + 1, b'x');
        event.extend_from_slice(b"\r\n\r\n");
        // Whole, with its blank line in the same chunk: still too large.
        let mut whole = SseDecoder::default();
        whole.push(&event);
        assert_eq!(whole.next_event(), Err(EventTooLarge));
        // In pieces: too large once the decoder holds more than any event may be.
        let mut pieces = SseDecoder::default();
        let mut seen = Ok(None);
        for chunk in event.chunks(64 * 1024) {
            pieces.push(chunk);
            seen = pieces.next_event();
            if seen.is_err() {
                break;
            }
        }
        assert_eq!(seen, Err(EventTooLarge));
        // An event of exactly the limit passes either way, even when its line ending arrives last.
        let mut event = b"data: ".to_vec();
        event.resize(MAX_EVENT_BYTES, b'y');
        let mut d = SseDecoder::default();
        d.push(&event);
        d.push(b"\r\n");
        assert_eq!(d.next_event(), Ok(None));
        d.push(b"\r\n");
        assert_eq!(
            d.next_event().unwrap().unwrap().data.len(),
            MAX_EVENT_BYTES - 6
        );
    }

    #[test]
    fn lone_carriage_returns_end_lines() {
        let got = events(&[b"event: e\rdata: a\rdata: b\r\rdata: c\r\n\r\n"]);
        assert_eq!(got[0].event.as_deref(), Some("e"));
        assert_eq!(got[0].data, b"a\nb");
        assert_eq!(got[1].data, b"c");
    }

    #[test]
    fn a_long_line_trickling_in_is_scanned_once() {
        let mut d = SseDecoder::default();
        d.push(b"data: ");
        let started = std::time::Instant::now();
        for _ in 0..(1 << 20) {
            d.push(b"z");
            assert_eq!(d.next_event(), Ok(None));
        }
        d.push(b"\r");
        assert_eq!(d.next_event(), Ok(None));
        d.push(b"\n\r");
        assert_eq!(d.next_event().unwrap().unwrap().data.len(), 1 << 20);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn an_event_trickling_in_is_scanned_once() {
        // 256 KiB of short lines, one byte at a time: rescanning the buffer for every byte would
        // take minutes; resuming where the last scan stopped takes milliseconds.
        let line = b"data: 0123456789abcdef\n";
        let mut d = SseDecoder::default();
        let started = std::time::Instant::now();
        for _ in 0..(256 * 1024 / line.len()) {
            for b in line {
                d.push(std::slice::from_ref(b));
                assert_eq!(d.next_event(), Ok(None));
            }
        }
        d.push(b"\n");
        let event = d.next_event().unwrap().unwrap();
        assert!(event.data.starts_with(b"0123456789abcdef\n0123"));
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
