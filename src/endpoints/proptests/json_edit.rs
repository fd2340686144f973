//! The structural walk of [`crate::providers::json_edit`] against serde_json: on any object it
//! finds the same members, and on any bytes it never panics nor accepts what serde_json refuses
//! for want of a closed string or bracket.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{config, text};
use crate::providers::json_edit;

/// Any JSON value (floats aside: serde_json does not read back every float it writes exactly),
/// nested a few levels, with strings that need escaping and some long ones.
fn a_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn an_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((text(), a_value()), 0..8).prop_map(|m| m.into_iter().collect())
}

fn walked(json: &[u8]) -> Option<Vec<(String, Value)>> {
    let mut found = Vec::new();
    json_edit::members(json, |key, value| {
        let key: String = serde_json::from_slice(&[b"\"", key, b"\""].concat()).unwrap();
        found.push((key, serde_json::from_slice(value).unwrap()));
    })?;
    Some(found)
}

proptest! {
    #![proptest_config(config(256, 1))]

    #[test]
    fn the_walk_finds_what_serde_json_finds(object in an_object(), pretty in any::<bool>()) {
        let json = if pretty {
            serde_json::to_vec_pretty(&object).unwrap()
        } else {
            serde_json::to_vec(&object).unwrap()
        };
        let expected: Vec<(String, Value)> = object.into_iter().collect();
        prop_assert_eq!(walked(&json), Some(expected));
    }

    #[test]
    fn a_cut_short_object_is_never_whole(object in an_object(), cut in any::<prop::sample::Index>()) {
        let json = serde_json::to_vec(&object).unwrap();
        let end = cut.index(json.len());
        let whole = json_edit::members(&json[..end], |_, _| ()).is_some();
        prop_assert!(!whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = json_edit::members(&bytes, |_, _| ());
    }
}
