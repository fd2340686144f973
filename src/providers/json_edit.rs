//! Edits to one top-level member of a JSON object, made on its bytes: the rest of the object is
//! neither parsed into values nor written again. The object must already be known to be valid JSON.

use std::ops::Range;

/// Where a top-level member sits: `member` spans the key through the end of its value, `value`
/// the value alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member: Range<usize>,
    pub value: Range<usize>,
}

/// The first top-level member named `key` (written without escapes) of the object in `json`.
pub fn find_member(json: &[u8], key: &str) -> Option<Member> {
    let mut found = None;
    walk(json, |name, member| {
        let hit = name == key.as_bytes();
        if hit {
            found = Some(member);
        }
        hit
    });
    found
}

/// Walks the top-level members of the object in `json`, handing each key (as written, without its
/// quotes) and value (as JSON text) to `each`. `None` unless `json` is one whole object: brackets
/// balanced, strings closed, nothing but whitespace after it. A structural check, cheaper than
/// parsing: numbers and literals are not checked.
pub fn members<'a>(json: &'a [u8], mut each: impl FnMut(&'a [u8], &'a [u8])) -> Option<()> {
    walk(json, |key, member| {
        each(key, &json[member.value]);
        false
    })
}

/// The one walk over the top-level members: `each` gets each key and where its member sits, and
/// returns `true` to stop there (the walk then returns `Some` without checking the rest).
fn walk<'a>(json: &'a [u8], mut each: impl FnMut(&'a [u8], Member) -> bool) -> Option<()> {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(json, i + 1);
    if json.get(i) == Some(&b'}') {
        return (skip_ws(json, i + 1) == json.len()).then_some(());
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return None;
        }
        let key_start = i;
        let key_end = string_end(json, i)?;
        i = skip_ws(json, key_end);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(json, i + 1);
        let value_end = value_end(json, value_start)?;
        let member = Member {
            member: key_start..value_end,
            value: value_start..value_end,
        };
        if each(&json[key_start + 1..key_end - 1], member) {
            return Some(());
        }
        i = skip_ws(json, value_end);
        match json.get(i)? {
            b',' => i = skip_ws(json, i + 1),
            b'}' => return (skip_ws(json, i + 1) == json.len()).then_some(()),
            _ => return None,
        }
    }
}

/// `json` without its top-level member `key` (and the comma that separated it); `None` when the
/// object has no such member.
pub fn without_member(json: &[u8], key: &str) -> Option<Vec<u8>> {
    let Member { member, .. } = find_member(json, key)?;
    let before = json[..member.start].trim_ascii_end();
    let (cut_start, cut_end) = if before.last() == Some(&b',') {
        // `…, "key": v` → `…`
        (before.len() - 1, member.end)
    } else {
        // `{"key": v, …` → `{…`
        let after = skip_ws(json, member.end);
        let end = if json.get(after) == Some(&b',') {
            after + 1
        } else {
            member.end
        };
        (member.start, end)
    };
    let mut out = Vec::with_capacity(json.len() - (cut_end - cut_start));
    out.extend_from_slice(&json[..cut_start]);
    out.extend_from_slice(&json[cut_end..]);
    Some(out)
}

/// `json` with the value of its top-level member `key` replaced by `value` (JSON text); `None`
/// when the object has no such member.
pub fn with_value(json: &[u8], key: &str, value: &[u8]) -> Option<Vec<u8>> {
    let Member { value: at, .. } = find_member(json, key)?;
    let mut out = Vec::with_capacity(json.len() + value.len());
    out.extend_from_slice(&json[..at.start]);
    out.extend_from_slice(value);
    out.extend_from_slice(&json[at.end..]);
    Some(out)
}

/// `json` with `"key": value` added as its first member; `None` unless `json` is an object.
pub fn with_first_member(json: &[u8], key: &str, value: &[u8]) -> Option<Vec<u8>> {
    let open = skip_ws(json, 0);
    if json.get(open) != Some(&b'{') {
        return None;
    }
    let empty = json.get(skip_ws(json, open + 1)) == Some(&b'}');
    let mut out = Vec::with_capacity(json.len() + key.len() + value.len() + 4);
    out.extend_from_slice(&json[..=open]);
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(value);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&json[open + 1..]);
    Some(out)
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The index just past the string that opens at `i`.
fn string_end(json: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += quote_or_backslash(json.get(j..)?)?;
        if json[j] == b'\\' {
            j += 2;
        } else {
            return Some(j + 1);
        }
    }
}

/// Where the first `"` or `\\` in `bytes` is, eight bytes at a time: most strings in a reply
/// (keys, ids, a token of text) are short, and setting up a vector search for each of them cost
/// more than the walk itself.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let found = has_byte(x, b'"') | has_byte(x, b'\\');
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|k| at + k)
}

/// The high bit of each byte of `x` that equals `b`: exact for the lowest such byte (a borrow can
/// mark bytes above it too, never below), which is the one [`quote_or_backslash`] wants.
const fn has_byte(x: u64, b: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let y = x ^ (ONES * b as u64);
    y.wrapping_sub(ONES) & !y & (ONES << 7)
}

/// The bytes a walk through an object or array stops at: quotes and brackets.
static STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'[' as usize] = true;
    table[b'}' as usize] = true;
    table[b']' as usize] = true;
    table
};

/// The index just past the value that starts at `i`.
fn value_end(json: &[u8], i: usize) -> Option<usize> {
    match json.get(i)? {
        b'"' => string_end(json, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                let b = *json.get(j)?;
                if STRUCTURAL[b as usize] {
                    match b {
                        b'"' => {
                            j = string_end(json, j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        _ => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                    }
                }
                j += 1;
            }
        }
        _ => {
            // A number, `true`, `false` or `null`: up to the next delimiter.
            let rest = &json[i..];
            let len = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            (len > 0).then_some(i + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn parsed(json: &[u8]) -> Value {
        serde_json::from_slice(json).unwrap()
    }

    #[test]
    fn finds_the_first_quote_or_backslash_at_any_position() {
        for len in 0..40 {
            for at in 0..=len {
                for (found, other) in [(b'"', b'\\'), (b'\\', b'"')] {
                    // Bytes either side of the sought ones in value, and a later one of each kind.
                    let mut bytes: Vec<u8> =
                        (0..len).map(|i| [b'!', b'#', b'[', 0xe2][i % 4]).collect();
                    if at < len {
                        bytes[at] = found;
                        bytes.extend([other, found]);
                    }
                    let expected = (at < len).then_some(at);
                    assert_eq!(quote_or_backslash(&bytes), expected, "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn finds_top_level_members_only() {
        let json = br#"{"a":{"usage":1},"s":"x\"usage\":","usage" : null , "b":[1,{"c":"}"}]}"#;
        let m = find_member(json, "usage").unwrap();
        assert_eq!(&json[m.value.clone()], b"null");
        assert_eq!(&json[m.member], br#""usage" : null"#);
        assert!(find_member(json, "c").is_none());
        assert_eq!(
            &json[find_member(json, "b").unwrap().value],
            br#"[1,{"c":"}"}]"#
        );
    }

    #[test]
    fn walks_whole_objects_only() {
        let json = br#" {"id":"c", "choices" : [{"d":"}"}], "usage":null} "#;
        let mut seen = vec![];
        members(json, |k, v| seen.push((k, v))).unwrap();
        assert_eq!(
            seen,
            [
                (&b"id"[..], &br#""c""#[..]),
                (b"choices", br#"[{"d":"}"}]"#),
                (b"usage", b"null")
            ]
        );
        assert!(members(b"{}", |_, _| ()).is_some());
        for bad in [
            &br#"{"id":"c"} trailing"#[..],
            br#"{"id":"c","choices":[{"d":"cut"#,
            br#"{"id":"c","usage":{"prompt_tokens":1,"#,
            br#"{"a":{"b":1}"#,
            br#"{"a" 1}"#,
            br#"["not","an","object"]"#,
            b"\"text\"",
            b"",
        ] {
            assert!(
                members(bad, |_, _| ()).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn removes_a_member_wherever_it_is() {
        for (json, want) in [
            (&br#"{"usage":null,"id":"c"}"#[..], &br#"{"id":"c"}"#[..]),
            (br#"{"id":"c","usage":null}"#, br#"{"id":"c"}"#),
            (
                br#"{"id":"c", "usage": {"a":[1,2]} ,"x":true}"#,
                br#"{"id":"c" ,"x":true}"#,
            ),
            (br#" { "usage" : 1 } "#, br#" {  } "#),
        ] {
            let out = without_member(json, "usage").unwrap();
            assert_eq!(out, want, "{}", String::from_utf8_lossy(json));
            parsed(&out);
        }
        assert!(without_member(br#"{"id":"usage"}"#, "usage").is_none());
    }

    #[test]
    fn replaces_and_adds_members() {
        let json = br#"{"model":"a\"b","messages":[{"model":"x"}]}"#;
        let out = with_value(json, "model", br#""gpt-4o""#).unwrap();
        assert_eq!(parsed(&out)["model"], "gpt-4o");
        assert_eq!(parsed(&out)["messages"][0]["model"], "x");

        let out = with_first_member(json, "stream_options", br#"{"include_usage":true}"#).unwrap();
        assert_eq!(parsed(&out)["stream_options"]["include_usage"], true);
        assert_eq!(parsed(&out)["model"], "a\"b");
        assert_eq!(
            with_first_member(b" {} ", "k", b"1").unwrap(),
            br#" {"k":1} "#
        );
        assert!(with_first_member(b"[1]", "k", b"1").is_none());
    }
}
