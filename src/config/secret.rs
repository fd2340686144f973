use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that must never be printed: API keys, passwords, URLs with credentials.
/// `Debug`, `Display` and `Serialize` all mask it; only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

pub const MASK: &str = "********";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// `text` with every long run of a secret's characters replaced by [`MASK`]: the whole secret,
/// a part of it (a key cut short or missing its first characters), and the same in the
/// percent-encoded forms an upstream may echo (`%2D` or every byte as `%XX`, either case).
pub fn mask_secrets<'s>(text: &str, secrets: impl IntoIterator<Item = &'s str>) -> String {
    let mut forms: Vec<(Vec<u8>, usize)> = Vec::new();
    for secret in secrets {
        let len = secret.len();
        if len < 4 {
            continue;
        }
        // The shortest run that counts as a leak: half the secret, between 8 and 16 characters
        // (the whole secret when shorter).
        let run = (len / 2).clamp(8, 16).min(len);
        forms.push((secret.as_bytes().to_vec(), run));
        for encoded in percent_forms(secret) {
            if encoded.len() != len {
                let scaled = run * encoded.len() / len;
                forms.push((encoded.into_bytes(), scaled));
            }
        }
    }
    if forms.is_empty() {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let longest = forms
            .iter()
            .filter_map(|(form, run)| {
                let l = longest_run_at(&bytes[i..], form);
                (l >= *run).then_some(l)
            })
            .max();
        match longest {
            Some(l) => {
                out.push_str(MASK);
                i += l;
                while !text.is_char_boundary(i) {
                    i += 1;
                }
            }
            None => {
                let c = text[i..].chars().next().expect("at a char boundary");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// The longest prefix of `text` found anywhere in `form`.
fn longest_run_at(text: &[u8], form: &[u8]) -> usize {
    let Some(&first) = text.first() else { return 0 };
    form.iter()
        .enumerate()
        .filter(|(_, b)| **b == first)
        .map(|(j, _)| {
            text.iter()
                .zip(&form[j..])
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// A secret percent-encoded as URLs carry it: reserved characters only, or every byte; upper- and
/// lower-case hex.
fn percent_forms(secret: &str) -> Vec<String> {
    let encode = |all: bool, upper: bool| {
        secret
            .bytes()
            .map(|b| {
                let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
                match (unreserved && !all, upper) {
                    (true, _) => (b as char).to_string(),
                    (false, true) => format!("%{b:02X}"),
                    (false, false) => format!("%{b:02x}"),
                }
            })
            .collect::<String>()
    };
    vec![
        encode(false, true),
        encode(false, false),
        encode(true, true),
        encode(true, false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test-openai-0123456789";

    #[test]
    fn masks_the_key_and_its_parts_in_every_encoding() {
        let m = |t: &str| mask_secrets(t, [KEY]);
        assert_eq!(m(&format!("bad key {KEY}.")), format!("bad key {MASK}."));
        // Cut short, or missing its head.
        assert_eq!(m("key sk-test-openai-012345678 x"), format!("key {MASK} x"));
        assert_eq!(m("key openai-0123456789 x"), format!("key {MASK} x"));
        // Percent-encoded, reserved characters only or every byte, either case.
        let every: String = KEY.bytes().map(|b| format!("%{b:02x}")).collect();
        assert_eq!(
            m(&format!("url ?key={every}&x")),
            format!("url ?key={MASK}&x")
        );
        assert_eq!(
            m(&format!("url ?key={}", every.to_uppercase())),
            format!("url ?key={MASK}")
        );
        // Short common runs and other text stay.
        assert_eq!(
            m("sk-test- is a prefix; ünïcode 0123"),
            "sk-test- is a prefix; ünïcode 0123"
        );
        assert_eq!(mask_secrets("abc", ["ab"]), "abc");
    }

    #[test]
    fn reserved_characters_percent_encoded() {
        let key = "AIza/x+y=z-0123456789abcdef";
        let encoded = "AIza%2Fx%2By%3Dz-0123456789abcdef";
        assert_eq!(
            mask_secrets(&format!("k={encoded}"), [key]),
            format!("k={MASK}")
        );
    }
}
