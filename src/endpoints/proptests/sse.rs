//! The SSE decoder: the same events however the stream is cut, the events that were written, no
//! panic on any bytes, and what it hands on written again reads back the same.

use proptest::prelude::*;
use proptest::sample::Index;

use super::{config, cut_points, decode, name, splits};
use crate::providers::sse::{self, SseEvent};

/// How a line ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Eol {
    Lf,
    CrLf,
    Cr,
}

impl Eol {
    fn bytes(self) -> &'static [u8] {
        match self {
            Eol::Lf => b"\n",
            Eol::CrLf => b"\r\n",
            Eol::Cr => b"\r",
        }
    }
}

fn eol() -> impl Strategy<Value = Eol> {
    prop_oneof![3 => Just(Eol::Lf), 2 => Just(Eol::CrLf), 1 => Just(Eol::Cr)]
}

/// A line of an event as written.
#[derive(Debug, Clone)]
enum Line {
    /// `data:` with the value, with or without the space after the colon.
    Data {
        value: Vec<u8>,
        space: bool,
    },
    Event(String),
    Comment(String),
    /// A field the decoder ignores (`id`, `retry`, anything else).
    Other(String, String),
}

/// A line's value: any bytes but line endings, valid UTF-8 or not.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[^\r\n]{0,30}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>().prop_filter("no line ending", |b| *b != b'\r' && *b != b'\n'), 0..30),
        1 => Just(br#"{"choices":[{"delta":{"content":"h\u00e9"}}]}"#.to_vec()),
    ]
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        6 => (value(), any::<bool>()).prop_map(|(value, space)| Line::Data { value, space }),
        1 => name().prop_map(Line::Event),
        1 => "[^\r\n]{0,20}".prop_map(Line::Comment),
        1 => (prop::sample::select(vec!["id", "retry", "x-field", "Data", "event "]), "[^\r\n]{0,10}")
            .prop_map(|(f, v)| Line::Other(f.to_string(), v)),
    ]
}

#[derive(Debug, Clone)]
struct Written {
    lines: Vec<(Line, Eol)>,
    /// How the blank line that ends the event ends, and how many extra blank lines follow.
    blank: Eol,
    extra_blanks: usize,
}

fn written() -> impl Strategy<Value = Written> {
    (
        prop::collection::vec((line(), eol()), 1..6),
        eol(),
        0usize..3,
    )
        .prop_map(|(lines, blank, extra_blanks)| Written {
            lines,
            blank,
            extra_blanks,
        })
}

impl Written {
    /// The event the decoder is to hand out: the last `event:` name, the `data:` values joined
    /// by `\n`; none without a `data:` line.
    fn expected(&self) -> Option<SseEvent> {
        let mut event = None;
        let mut data: Option<Vec<u8>> = None;
        for (line, _) in &self.lines {
            match line {
                Line::Data { value, .. } => match &mut data {
                    Some(d) => {
                        d.push(b'\n');
                        d.extend_from_slice(value);
                    }
                    None => data = Some(value.clone()),
                },
                Line::Event(name) => event = Some(name.clone()),
                Line::Comment(_) | Line::Other(..) => {}
            }
        }
        data.map(|data| SseEvent { event, data })
    }

    /// Appends the event's bytes; `last` leaves out its blank line (a stream cut before it).
    fn write(&self, out: &mut Vec<u8>, last: bool) {
        let mut previous = Eol::Lf;
        for (line, eol) in &self.lines {
            match line {
                Line::Data { value, space } => {
                    // Without the space, a value that starts with one would lose it.
                    let space = *space || value.first() == Some(&b' ');
                    out.extend_from_slice(if space { b"data: " } else { b"data:" });
                    out.extend_from_slice(value);
                }
                Line::Event(name) => {
                    out.extend_from_slice(b"event: ");
                    out.extend_from_slice(name.as_bytes());
                }
                Line::Comment(text) => {
                    out.push(b':');
                    out.extend_from_slice(text.as_bytes());
                }
                Line::Other(field, v) => {
                    out.extend_from_slice(field.as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(v.as_bytes());
                }
            }
            out.extend_from_slice(eol.bytes());
            previous = *eol;
        }
        if last {
            return;
        }
        for _ in 0..=self.extra_blanks {
            // A `\n` right after a `\r` would make one `\r\n` of the two.
            let blank = if previous == Eol::Cr && self.blank == Eol::Lf {
                Eol::CrLf
            } else {
                self.blank
            };
            out.extend_from_slice(blank.bytes());
            previous = blank;
        }
    }
}

/// Bytes an SSE stream is made of, in proportions that make events, and any others.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => any::<u8>().prop_map(|b| vec![b]),
        2 => prop::sample::select(vec![
            &b"\n"[..], b"\r", b"\r\n", b"\n\n", b"data: ", b"data:", b"event: ", b":", b" ",
            "é".as_bytes(), "😀".as_bytes(), b"\xF0\x9F", b"\xff", b"{\"a\":1}",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop::collection::vec(piece, 0..80).prop_map(|p| p.concat())
}

/// Events as the passthrough compares them: an empty name is no name.
fn normalised(events: Vec<SseEvent>) -> Vec<SseEvent> {
    events
        .into_iter()
        .map(|e| SseEvent {
            event: e.event.filter(|n| !n.is_empty()),
            data: e.data,
        })
        .collect()
}

proptest! {
    #![proptest_config(config(128, 1))]

    /// Written events come back, whole or cut anywhere (inside characters, between `\r` and
    /// `\n`, one byte at a time), with a stream that ends with or without its last blank line.
    #[test]
    fn written_events_decode_the_same_however_cut(
        events in prop::collection::vec(written(), 0..8),
        cut_last in any::<bool>(),
        points in cut_points(),
    ) {
        let mut bytes = Vec::new();
        for (i, e) in events.iter().enumerate() {
            e.write(&mut bytes, cut_last && i + 1 == events.len());
        }
        let expected: Vec<SseEvent> = events.iter().filter_map(Written::expected).collect();
        let whole = decode([&bytes[..]]).expect("no event is too large");
        prop_assert_eq!(&whole, &expected);
        for chunks in splits(&bytes, &points) {
            let got = decode(chunks).expect("no event is too large");
            prop_assert_eq!(&got, &expected);
        }
    }

    /// Any bytes: no panic, and the same events however they are cut.
    #[test]
    fn any_bytes_decode_the_same_however_cut(bytes in stream_bytes(), points in cut_points()) {
        let whole = decode([&bytes[..]]).expect("small input");
        for chunks in splits(&bytes, &points) {
            let got = decode(chunks).expect("small input");
            prop_assert_eq!(&got, &whole);
        }
    }

    /// What the decoder hands on, written again as the passthroughs write it, reads back the same.
    #[test]
    fn decoded_events_written_again_read_back_the_same(bytes in stream_bytes()) {
        let events = normalised(decode([&bytes[..]]).expect("small input"));
        let mut again = Vec::new();
        for e in &events {
            sse::write_event(&mut again, e);
        }
        let reread = normalised(decode([&again[..]]).expect("small input"));
        prop_assert_eq!(reread, events);
    }

}

proptest! {
    // Each case holds an event of more than 4 MiB: a few cases are enough.
    #![proptest_config(config(8, 200))]

    /// An event longer than the limit is an error however it is cut, after the same events.
    #[test]
    fn an_oversized_event_fails_the_same_however_cut(
        before in prop::collection::vec(written(), 0..3),
        extra in 1usize..4,
        eol in eol(),
        points in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let mut bytes = Vec::new();
        for e in &before {
            e.write(&mut bytes, false);
        }
        let expected: Vec<SseEvent> = before.iter().filter_map(Written::expected).collect();
        let start = bytes.len();
        bytes.extend_from_slice(b"data: ");
        bytes.resize(start + sse::MAX_EVENT_BYTES + extra, b'x');
        bytes.extend_from_slice(eol.bytes());
        bytes.extend_from_slice(eol.bytes());
        bytes.extend_from_slice(b"data: after\n\n");
        let whole = decode([&bytes[..]]);
        let cut = decode(super::cuts(&bytes, &points));
        for got in [whole, cut] {
            let (events, _) = got.expect_err("too large");
            prop_assert_eq!(&events, &expected);
        }
    }
}
