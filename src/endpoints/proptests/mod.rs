//! Property tests of the translations and decoders: generated requests, replies and upstream
//! streams of every provider and inbound API, split into chunks every way that matters.
//!
//! Each property runs a modest number of cases by default, so the suite stays quick; set
//! `PROPTEST_CASES` (proptest's own variable) for a longer run, e.g. `make proptest-long` (the
//! dearest properties run a fixed fraction of that number).

mod json_edit;
mod requests;
mod sse;
mod streams;

use proptest::prelude::*;
use proptest::sample::Index;

use crate::providers::sse::{EventTooLarge, SseDecoder, SseEvent};

/// `default_cases` cases, or as many as `PROPTEST_CASES` asks for divided by `cost` (how many
/// times dearer a case is than the cheapest properties'). Failures are not written to files: a
/// case worth keeping becomes a plain unit test.
fn config(default_cases: u32, cost: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(default_cases, |n| (n / cost).max(1));
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One character: mostly plain, often multi-byte (2, 3 and 4 bytes in UTF-8), sometimes what JSON
/// and SSE have to escape or split on.
fn a_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range('a', 'z'),
        1 => Just(' '),
        1 => prop::sample::select(vec!['é', 'ß', 'Ω', 'я']),
        1 => prop::sample::select(vec!['中', '文', '€', '\u{2028}', '\u{feff}']),
        1 => prop::sample::select(vec!['😀', '🦀', '𝄞']),
        1 => prop::sample::select(vec!['"', '\\', '\n', '\r', '\t', '\0', ':', '{', '[']),
        1 => any::<char>(),
    ]
}

/// A string: empty, short, or (rarely) very long.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        12 => prop::collection::vec(a_char(), 1..24).prop_map(|c| c.into_iter().collect()),
        1 => (prop::collection::vec(a_char(), 1..8), 500usize..1500)
            .prop_map(|(c, n)| c.into_iter().collect::<String>().repeat(n)),
    ]
}

/// A string that is not empty.
fn some_text() -> impl Strategy<Value = String> {
    text().prop_map(|t| if t.is_empty() { "x".to_string() } else { t })
}

/// A name as tools and events have them.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,20}"
}

/// Where to cut a byte stream: a few positions, turned into cuts by [`cuts`].
fn cut_points() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

/// `bytes` cut at the given points.
fn cuts<'a>(bytes: &'a [u8], points: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = points.iter().map(|p| p.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    at.dedup();
    pieces(bytes, &at)
}

fn pieces<'a>(bytes: &'a [u8], at: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for &end in at {
        out.push(&bytes[start..end]);
        start = end;
    }
    out.push(&bytes[start..]);
    out
}

/// The ways a stream is cut for comparison with feeding it whole: at the given points, at every
/// awkward place at once (inside each multi-byte character, between each `\r` and `\n`), and
/// one byte at a time when that stays cheap.
fn splits<'a>(bytes: &'a [u8], points: &[Index]) -> Vec<Vec<&'a [u8]>> {
    let awkward: Vec<usize> = (1..bytes.len())
        .filter(|&i| {
            let continuation = bytes[i] & 0xC0 == 0x80;
            continuation || (bytes[i - 1] == b'\r' && bytes[i] == b'\n')
        })
        .collect();
    let mut out = vec![cuts(bytes, points), pieces(bytes, &awkward)];
    if bytes.len() <= 2048 {
        out.push(bytes.chunks(1).collect());
    }
    out
}

/// Every event of `chunks` fed to one decoder one after the other, as the relay feeds it: each
/// chunk pushed, then the events it completed taken, and what is left when the stream ends.
fn decode<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<SseEvent>, (Vec<SseEvent>, EventTooLarge)> {
    let mut decoder = SseDecoder::default();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(e) => return Err((events, e)),
            }
        }
    }
    events.extend(decoder.finish());
    Ok(events)
}
