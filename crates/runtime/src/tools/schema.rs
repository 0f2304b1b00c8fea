//! JSON Schemas for tool inputs and outputs, generated from the Rust types with schemars
//! (draft 2020-12, as MCP requires), and the parsing of a call's arguments into those
//! types with errors that name the offending field.
//!
//! Schemas are self-contained (subschemas inlined, no `$ref`), which every MCP client and
//! model API accepts; inputs deny unknown fields, so a URL or any other stray argument is
//! refused rather than ignored.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

fn generate<T: JsonSchema>(settings: SchemaSettings) -> Map<String, Value> {
    let mut settings = settings;
    settings.inline_subschemas = true;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut map = match serde_json::to_value(schema) {
        Ok(Value::Object(m)) => m,
        // A derived schema of a struct is always an object; keep a valid schema regardless.
        _ => Map::from_iter([("type".to_owned(), Value::String("object".into()))]),
    };
    // The Rust type name is not a useful title for a model.
    map.remove("title");
    if !map.contains_key("properties") {
        map.insert("properties".into(), Value::Object(Map::new()));
    }
    map
}

/// The schema of what a tool accepts.
pub(crate) fn input_schema<T: JsonSchema>() -> Map<String, Value> {
    generate::<T>(SchemaSettings::draft2020_12())
}

/// The schema of what a tool returns as structured content (the serialized form).
pub(crate) fn output_schema<T: JsonSchema>() -> Map<String, Value> {
    generate::<T>(SchemaSettings::draft2020_12().for_serialize())
}

/// Parse a call's arguments. The error names the field (`players: invalid type: ...`).
pub(crate) fn parse_args<T: DeserializeOwned>(args: Map<String, Value>) -> Result<T, String> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path.is_empty() || path == "." { inner } else { format!("{path}: {inner}") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    /// A test input.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        /// The name.
        name: String,
        #[schemars(range(min = 1, max = 4))]
        players: Option<u8>,
        kind: Option<Kind>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        One,
        Two,
    }

    #[test]
    fn schemas_are_self_contained_objects() {
        let s = Value::Object(input_schema::<Input>());
        assert_eq!(s["type"], "object");
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["name"]));
        assert_eq!(s["properties"]["name"]["description"], "The name.");
        assert_eq!(s["properties"]["players"]["maximum"], 4);
        assert!(!s.to_string().contains("$ref"), "{s}");
        assert!(s.get("title").is_none());
    }

    #[test]
    fn argument_errors_name_the_field() {
        let args = |v: Value| v.as_object().cloned().unwrap_or_default();
        let e = parse_args::<Input>(args(json!({"name": "x", "players": "four"}))).unwrap_err();
        assert!(e.starts_with("players: invalid type"), "{e}");
        let e = parse_args::<Input>(args(json!({}))).unwrap_err();
        assert!(e.contains("missing field `name`"), "{e}");
        let e = parse_args::<Input>(args(json!({"name": "x", "url": "http://169.254.169.254/"}))).unwrap_err();
        assert!(e.contains("unknown field `url`"), "{e}");
        let e = parse_args::<Input>(args(json!({"name": "x", "kind": "three"}))).unwrap_err();
        assert!(e.starts_with("kind: unknown variant"), "{e}");
        assert!(parse_args::<Input>(args(json!({"name": "x", "players": 2, "kind": "one"}))).is_ok());
    }
}
