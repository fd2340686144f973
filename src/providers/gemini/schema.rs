//! JSON Schema → the OpenAPI subset Gemini takes for tool parameters (and older models'
//! response schemas).

use serde_json::{Map, Value, json};

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
    let Value::Object(obj) = node else {
        return Map::new();
    };
    if depth > MAX_SCHEMA_DEPTH {
        return Map::new();
    }
    refs.nodes += 1;
    let inlined = inline_ref(obj, root, refs, depth);
    let mut r = Reduced {
        nullable: obj.get("nullable").and_then(Value::as_bool) == Some(true),
        ..Default::default()
    };
    r.types(obj);
    r.annotations(obj);
    r.enumeration(obj);
    r.properties(obj, root, refs, depth);
    r.items(obj, root, refs, depth);
    let single = r.branches(obj, root, refs, depth);
    r.finish(single.into_iter().chain(inlined))
}

/// `$ref`: a local, non-recursive target, reduced (to go beneath the node's own keywords);
/// anything else is dropped.
fn inline_ref(
    obj: &Map<String, Value>,
    root: &Value,
    refs: &mut Refs,
    depth: usize,
) -> Option<Map<String, Value>> {
    let Some(Value::String(r)) = obj.get("$ref") else {
        return None;
    };
    if refs.open.contains(r) || refs.nodes >= MAX_SCHEMA_NODES {
        return None;
    }
    let target = r
        .strip_prefix('#')
        .and_then(|pointer| root.pointer(pointer))?;
    refs.open.push(r.clone());
    let inlined = reduce_schema(target, root, refs, depth + 1);
    refs.open.pop();
    Some(inlined)
}

/// A schema node being reduced.
#[derive(Default)]
struct Reduced {
    out: Map<String, Value>,
    /// `null` is one of the node's types or values.
    nullable: bool,
    /// Alternatives (several types, or `anyOf` / `oneOf` branches).
    any_of: Vec<Value>,
}

impl Reduced {
    fn ty(&self) -> Option<&str> {
        self.out.get("type").and_then(Value::as_str)
    }

    /// `type`: `null` becomes `nullable`; several types become `anyOf`.
    fn types(&mut self, obj: &Map<String, Value>) {
        match obj.get("type") {
            Some(Value::String(t)) if t == "null" => self.nullable = true,
            Some(Value::String(t)) => {
                self.out.insert("type".into(), Value::String(t.clone()));
            }
            Some(Value::Array(types)) => {
                let mut kinds = Vec::new();
                for t in types.iter().filter_map(Value::as_str) {
                    if t == "null" {
                        self.nullable = true;
                    } else {
                        kinds.push(t);
                    }
                }
                match kinds.as_slice() {
                    [] => {}
                    [one] => {
                        self.out.insert("type".into(), json!(one));
                    }
                    many => self
                        .any_of
                        .extend(many.iter().map(|k| json!({ "type": k }))),
                }
            }
            _ => {}
        }
    }

    /// `description`, the formats Gemini takes, and numeric bounds.
    fn annotations(&mut self, obj: &Map<String, Value>) {
        if let Some(Value::String(d)) = obj.get("description") {
            self.out
                .insert("description".into(), Value::String(d.clone()));
        }
        if let Some(Value::String(f)) = obj.get("format") {
            // Gemini refuses other formats (`only 'enum' and 'date-time' are supported for STRING type`).
            let allowed = match self.ty() {
                Some("string") => matches!(f.as_str(), "enum" | "date-time"),
                Some("number") => matches!(f.as_str(), "float" | "double"),
                Some("integer") => matches!(f.as_str(), "int32" | "int64"),
                _ => false,
            };
            if allowed {
                self.out.insert("format".into(), Value::String(f.clone()));
            }
        }
        for key in ["minimum", "maximum", "minItems", "maxItems"] {
            if let Some(v @ Value::Number(_)) = obj.get(key) {
                self.out.insert(key.into(), v.clone());
            }
        }
    }

    /// `enum` (or `const`): Gemini takes string enums only.
    fn enumeration(&mut self, obj: &Map<String, Value>) {
        let values = match (obj.get("enum"), obj.get("const")) {
            (Some(Value::Array(values)), _) => values.clone(),
            (None, Some(c)) => vec![c.clone()],
            _ => return,
        };
        let mut strings = Vec::new();
        let mut all_strings = true;
        for v in values {
            match v {
                Value::Null => self.nullable = true,
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
        let keep = match self.ty() {
            Some("string") => true,
            None => all_strings,
            Some(_) => false,
        };
        if keep && !strings.is_empty() {
            self.out.entry("type").or_insert_with(|| json!("string"));
            self.out.insert("enum".into(), Value::Array(strings));
        }
    }

    /// `properties` (reduced) and the `required` names among them.
    fn properties(
        &mut self,
        obj: &Map<String, Value>,
        root: &Value,
        refs: &mut Refs,
        depth: usize,
    ) {
        let Some(Value::Object(props)) = obj.get("properties") else {
            return;
        };
        let props: Map<String, Value> = props
            .iter()
            .map(|(name, schema)| {
                (
                    name.clone(),
                    Value::Object(reduce_schema(schema, root, refs, depth + 1)),
                )
            })
            .collect();
        if props.is_empty() {
            return;
        }
        if let Some(Value::Array(required)) = obj.get("required") {
            let required: Vec<Value> = required
                .iter()
                .filter(|r| r.as_str().is_some_and(|n| props.contains_key(n)))
                .cloned()
                .collect();
            if !required.is_empty() {
                self.out.insert("required".into(), Value::Array(required));
            }
        }
        self.out.entry("type").or_insert_with(|| json!("object"));
        self.out.insert("properties".into(), Value::Object(props));
    }

    /// `items` (a tuple's first), reduced.
    fn items(&mut self, obj: &Map<String, Value>, root: &Value, refs: &mut Refs, depth: usize) {
        let items = match obj.get("items") {
            Some(items @ Value::Object(_)) => items,
            Some(Value::Array(tuple)) => match tuple.first() {
                Some(first) => first,
                None => return,
            },
            _ => return,
        };
        self.out.entry("type").or_insert_with(|| json!("array"));
        self.out.insert(
            "items".into(),
            Value::Object(reduce_schema(items, root, refs, depth + 1)),
        );
    }

    /// `anyOf` (and `oneOf`, which Gemini lacks): a `{"type":"null"}` branch becomes `nullable`;
    /// a lone branch, and a lone `allOf`, are returned to be inlined.
    fn branches(
        &mut self,
        obj: &Map<String, Value>,
        root: &Value,
        refs: &mut Refs,
        depth: usize,
    ) -> Vec<Map<String, Value>> {
        let mut single = Vec::new();
        for key in ["anyOf", "oneOf"] {
            let Some(Value::Array(branches)) = obj.get(key) else {
                continue;
            };
            let mut kept = Vec::new();
            for branch in branches {
                if branch.get("type").and_then(Value::as_str) == Some("null") {
                    self.nullable = true;
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
                self.any_of.extend(kept.into_iter().map(Value::Object));
            }
        }
        if let Some(Value::Array(all_of)) = obj.get("allOf")
            && let [only] = all_of.as_slice()
        {
            single.push(reduce_schema(only, root, refs, depth + 1));
        }
        single
    }

    /// The node: its alternatives, what `inline` adds beneath its own keywords, and `nullable`.
    fn finish(mut self, inline: impl Iterator<Item = Map<String, Value>>) -> Map<String, Value> {
        if !self.any_of.is_empty() {
            self.out.insert(
                "anyOf".into(),
                Value::Array(std::mem::take(&mut self.any_of)),
            );
        }
        for from in inline {
            for (k, v) in from {
                self.out.entry(k).or_insert(v);
            }
        }
        if self.nullable {
            self.out.insert("nullable".into(), Value::Bool(true));
        }
        self.out
    }
}
