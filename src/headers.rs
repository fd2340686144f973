//! Text the gateway writes into headers of its own: visible ASCII, bounded.

use axum::http::HeaderValue;

/// Longest value the gateway writes into a reply header of its own.
const MAX_HEADER_TEXT: usize = 256;

/// `text` as a header value: visible ASCII only (anything else becomes `_`), at most
/// [`MAX_HEADER_TEXT`] bytes.
pub fn header_text(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .take(MAX_HEADER_TEXT)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    HeaderValue::from_str(clean.trim()).expect("visible ASCII is a valid header value")
}
