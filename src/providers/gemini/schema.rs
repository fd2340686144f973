//! JSON Schema → the OpenAPI subset Gemini takes for tool parameters (and older models'
//! response schemas).

use super::*;

/// Deeper schemas are cut here: keeps a hostile schema from recursing without bound.
pub(super) const MAX_SCHEMA_DEPTH: usize = 32;

/// Past this many schema nodes reduced, `$ref`s are no longer inlined: definitions that each
/// name the next one twice would otherwise grow the schema exponentially (2^32 nodes at the
/// depth limit).
pub(super) const MAX_SCHEMA_NODES: usize = 100_000;

/// The `$ref`s being inlined (to stop at a recursive one) and the nodes reduced so far.
#[derive(Default)]
pub(super) struct Refs {
    open: Vec<String>,
    nodes: usize,
}

/// A function's parameters; none when they describe no property (Gemini rejects an OBJECT without properties).
pub(super) fn function_parameters(schema: &Value) -> Option<Value> {
    let reduced = reduce_root(schema);
    let object_without_properties = reduced.get("type").and_then(Value::as_str) == Some("object")
        && !reduced.contains_key("properties");
    if reduced.is_empty() || object_without_properties {
        None
    } else {
        Some(Value::Object(reduced))
    }
}

pub(super) fn reduce_root(schema: &Value) -> Map<String, Value> {
    reduce_schema(schema, schema, &mut Refs::default(), 0)
}

/// Keeps the JSON Schema keywords Gemini's Schema knows and rewrites the ones it spells differently.
pub(super) fn reduce_schema(
    node: &Value,
    root: &Value,
    refs: &mut Refs,
    depth: usize,
) -> Map<String, Value> {
    let mut out = Map::new();
    let Value::Object(obj) = node else { return out };
    if depth > MAX_SCHEMA_DEPTH {
        return out;
    }
    refs.nodes += 1;
    let mut nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);

    // `$ref`: inline a local, non-recursive target beneath the node's own keywords; drop anything else.
    let mut inlined = None;
    if let Some(Value::String(r)) = obj.get("$ref")
        && !refs.open.contains(r)
        && refs.nodes < MAX_SCHEMA_NODES
        && let Some(target) = r
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
    {
        refs.open.push(r.clone());
        inlined = Some(reduce_schema(target, root, refs, depth + 1));
        refs.open.pop();
    }

    let mut any_of: Vec<Value> = Vec::new();
    match obj.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), Value::String(t.clone()));
        }
        Some(Value::Array(types)) => {
            let mut kinds = Vec::new();
            for t in types.iter().filter_map(Value::as_str) {
                if t == "null" {
                    nullable = true;
                } else {
                    kinds.push(t);
                }
            }
            match kinds.as_slice() {
                [] => {}
                [one] => {
                    out.insert("type".into(), json!(one));
                }
                many => any_of.extend(many.iter().map(|k| json!({ "type": k }))),
            }
        }
        _ => {}
    }
    let ty = out.get("type").and_then(Value::as_str).map(str::to_owned);

    if let Some(Value::String(d)) = obj.get("description") {
        out.insert("description".into(), Value::String(d.clone()));
    }
    if let Some(Value::String(f)) = obj.get("format") {
        // Gemini refuses other formats (`only 'enum' and 'date-time' are supported for STRING type`).
        let allowed = match ty.as_deref() {
            Some("string") => matches!(f.as_str(), "enum" | "date-time"),
            Some("number") => matches!(f.as_str(), "float" | "double"),
            Some("integer") => matches!(f.as_str(), "int32" | "int64"),
            _ => false,
        };
        if allowed {
            out.insert("format".into(), Value::String(f.clone()));
        }
    }
    for key in ["minimum", "maximum", "minItems", "maxItems"] {
        if let Some(v @ Value::Number(_)) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }

    // `enum` (or `const`): Gemini takes string enums only.
    let values = match (obj.get("enum"), obj.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (None, Some(c)) => Some(vec![c.clone()]),
        _ => None,
    };
    if let Some(values) = values {
        let mut strings = Vec::new();
        let mut all_strings = true;
        for v in values {
            match v {
                Value::Null => nullable = true,
                Value::String(s) => strings.push(Value::String(s)),
                Value::Number(n) => {
                    all_strings = false;
                    strings.push(Value::String(n.to_string()));
                }
                Value::Bool(b) => {
                    all_strings = false;
                    strings.push(Value::String(b.to_string()));
                }
                _ => all_strings = false,
            }
        }
        let keep = match ty.as_deref() {
            Some("string") => true,
            None => all_strings,
            Some(_) => false,
        };
        if keep && !strings.is_empty() {
            out.entry("type").or_insert_with(|| json!("string"));
            out.insert("enum".into(), Value::Array(strings));
        }
    }

    if let Some(Value::Object(props)) = obj.get("properties") {
        let props: Map<String, Value> = props
            .iter()
            .map(|(name, schema)| {
                (
                    name.clone(),
                    Value::Object(reduce_schema(schema, root, refs, depth + 1)),
                )
            })
            .collect();
        if !props.is_empty() {
            if let Some(Value::Array(required)) = obj.get("required") {
                let required: Vec<Value> = required
                    .iter()
                    .filter(|r| r.as_str().is_some_and(|n| props.contains_key(n)))
                    .cloned()
                    .collect();
                if !required.is_empty() {
                    out.insert("required".into(), Value::Array(required));
                }
            }
            out.entry("type").or_insert_with(|| json!("object"));
            out.insert("properties".into(), Value::Object(props));
        }
    }
    let items = match obj.get("items") {
        Some(items @ Value::Object(_)) => Some(items),
        Some(Value::Array(tuple)) => tuple.first(),
        _ => None,
    };
    if let Some(items) = items {
        out.entry("type").or_insert_with(|| json!("array"));
        out.insert(
            "items".into(),
            Value::Object(reduce_schema(items, root, refs, depth + 1)),
        );
    }

    // `anyOf` (and `oneOf`, which Gemini lacks): a `{"type":"null"}` branch becomes `nullable`, a lone branch is inlined.
    let mut single = Vec::new();
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = obj.get(key) else {
            continue;
        };
        let mut kept = Vec::new();
        for branch in branches {
            if branch.get("type").and_then(Value::as_str) == Some("null") {
                nullable = true;
                continue;
            }
            let reduced = reduce_schema(branch, root, refs, depth + 1);
            if !reduced.is_empty() {
                kept.push(reduced);
            }
        }
        if kept.len() == 1 {
            single.extend(kept);
        } else {
            any_of.extend(kept.into_iter().map(Value::Object));
        }
    }
    if let Some(Value::Array(all_of)) = obj.get("allOf")
        && let [only] = all_of.as_slice()
    {
        single.push(reduce_schema(only, root, refs, depth + 1));
    }
    if !any_of.is_empty() {
        out.insert("anyOf".into(), Value::Array(any_of));
    }
    for from in single.into_iter().chain(inlined) {
        for (k, v) in from {
            out.entry(k).or_insert(v);
        }
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    out
}
