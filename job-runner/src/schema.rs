//! Checks a task file against its CRD's OpenAPI v3 schema (generated from `taskyard_api`),
//! as the API server does on `kubectl apply`, so `job-runner run` refuses what a cluster
//! would. Covers the subset the CRDs use: type, minimum/maximum, minLength/maxLength,
//! minItems/maxItems, enum, pattern, required, oneOf over required. Messages follow the API
//! server's wording.

use serde_json::Value;

/// The CRD schema of `kind` (`openAPIV3Schema`), if Taskyard has that kind.
pub fn crd_schema(kind: &str) -> Option<Value> {
    taskyard_api::crds().into_iter().find_map(|crd| {
        (crd.spec.names.kind == kind).then(|| {
            let v = serde_json::to_value(&crd.spec.versions[0].schema).expect("a schema serialises");
            v["openAPIV3Schema"].clone()
        })
    })
}

/// Every violation of `schema` in `doc`, as the API server words them (`spec.x: ...`).
pub fn validate(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, doc, "", &mut errors);
    errors
}

/// The API server's message for an invalid object: one error bare, several in brackets.
pub fn invalid_message(kind: &str, name: &str, errors: &[String]) -> String {
    let group = taskyard_api::GROUP;
    match errors {
        [one] => format!("{kind}.{group} \"{name}\" is invalid: {one}"),
        many => format!("{kind}.{group} \"{name}\" is invalid: [{}]", many.join(", ")),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// A value as the API server quotes it: strings quoted, numbers bare.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let invalid = |what: String| format!("{path}: Invalid value: {}: {path} in body {what}", shown(v));
    if let Some(want) = schema["type"].as_str() {
        let got = type_name(v);
        let fits = got == want || (want == "number" && got == "integer");
        if !fits {
            errors.push(format!(
                "{path}: Invalid value: \"{got}\": {path} in body must be of type {want}: \"{got}\""
            ));
            return;
        }
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(v)
    {
        let supported: Vec<String> = options.iter().map(shown).collect();
        errors.push(format!(
            "{path}: Unsupported value: {}: supported values: {}",
            shown(v),
            supported.join(", ")
        ));
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema["minimum"].as_f64()
                && x < min
            {
                errors.push(invalid(format!("should be greater than or equal to {min}")));
            }
            if let Some(max) = schema["maximum"].as_f64()
                && x > max
            {
                errors.push(invalid(format!("should be less than or equal to {max}")));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema["minLength"].as_u64()
                && len < min
            {
                errors.push(invalid(format!("should be at least {min} chars long")));
            }
            if let Some(max) = schema["maxLength"].as_u64()
                && len > max
            {
                errors.push(format!("{path}: Too long: may not be more than {max} bytes"));
            }
            if let Some(pattern) = schema["pattern"].as_str() {
                match regex::Regex::new(pattern) {
                    Ok(re) if !re.is_match(s) => errors.push(invalid(format!("should match '{pattern}'"))),
                    Ok(_) => {}
                    Err(e) => errors.push(format!(
                        "{path}: Internal error: the schema's pattern {pattern:?} is invalid: {e}"
                    )),
                }
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema["minItems"].as_u64()
                && n < min
            {
                errors.push(format!(
                    "{path}: Invalid value: {n}: {path} in body should have at least {min} items"
                ));
            }
            if let Some(max) = schema["maxItems"].as_u64()
                && n > max
            {
                errors.push(format!("{path}: Too many: {n}: must have at most {max} items"));
            }
            if schema.get("items").is_some() {
                for (i, item) in items.iter().enumerate() {
                    check(&schema["items"], item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            for field in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(field) {
                    errors.push(format!("{}: Required value", join(path, field)));
                }
            }
            if let Some(props) = schema["properties"].as_object() {
                for (field, value) in map {
                    // Unknown fields are pruned by a structural schema, not refused.
                    if let Some(sub) = props.get(field) {
                        check(sub, value, &join(path, field), errors);
                    }
                }
            }
            if let Some(alternatives) = schema["oneOf"].as_array() {
                let matching = alternatives
                    .iter()
                    .filter(|alt| {
                        alt["required"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .all(|f| map.contains_key(f))
                    })
                    .count();
                if matching != 1 {
                    let found = if matching == 0 {
                        "Found none valid".to_string()
                    } else {
                        format!("Found {matching} valid alternatives")
                    };
                    errors.push(format!(
                        "{path}: Invalid value: \"object\": {path} in body must validate one and only one schema (oneOf). {found}"
                    ));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(kind: &str, spec: Value) -> Vec<String> {
        let doc =
            json!({"apiVersion": taskyard_api::API_VERSION, "kind": kind, "metadata": {"name": "r"}, "spec": spec});
        validate(&crd_schema(kind).unwrap(), &doc)
    }

    #[test]
    fn valid_specs_pass() {
        assert_eq!(
            errors(
                "HashTask",
                json!({"source": {"url": "https://e.com/a"}, "algorithms": ["md5", "sha256"]})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(
                "ImageTask",
                json!({"source": {"page": "http://e.com/"}, "resize": {"width": 1, "height": 10000, "fit": "cover"}})
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_rule_says_what_the_api_server_says() {
        for (kind, spec, want) in [
            (
                "HashTask",
                json!({"source": {"url": "https://e.com/a"}, "algorithms": []}),
                "spec.algorithms: Invalid value: 0: spec.algorithms in body should have at least 1 items",
            ),
            (
                "HashTask",
                json!({"source": {"url": "https://e.com/a"}, "algorithms": ["crc"]}),
                "spec.algorithms[0]: Unsupported value: \"crc\": supported values: \"md5\", \"sha1\", \"sha256\", \"sha512\"",
            ),
            (
                "ImageTask",
                json!({"source": {"url": "https://e.com/a"}, "resize": {"width": 0, "height": 5}}),
                "spec.resize.width: Invalid value: 0: spec.resize.width in body should be greater than or equal to 1",
            ),
            (
                "ImageTask",
                json!({"source": {"url": "https://e.com/a"}, "resize": {"width": "big", "height": 5}}),
                "spec.resize.width: Invalid value: \"string\": spec.resize.width in body must be of type integer: \"string\"",
            ),
            (
                "ImageTask",
                json!({"source": {"url": "https://e.com/a"}, "resize": {"height": 5}}),
                "spec.resize.width: Required value",
            ),
            (
                "TextTask",
                json!({"source": {"page": "ftp://e.com/a"}}),
                "spec.source.page: Invalid value: \"ftp://e.com/a\": spec.source.page in body should match '^[hH][tT][tT][pP][sS]?://'",
            ),
            (
                "TextTask",
                json!({"source": {}}),
                "spec.source: Invalid value: \"object\": spec.source in body must validate one and only one schema (oneOf). Found none valid",
            ),
            (
                "TextTask",
                json!({"source": {"page": "http://e.com/", "object": "uploads/a"}}),
                "spec.source: Invalid value: \"object\": spec.source in body must validate one and only one schema (oneOf). Found 2 valid alternatives",
            ),
            (
                "TextTask",
                json!({"timeoutSeconds": 0, "source": {"object": "a"}}),
                "spec.timeoutSeconds: Invalid value: 0: spec.timeoutSeconds in body should be greater than or equal to 1",
            ),
            (
                "TextTask",
                json!({"retries": 11, "source": {"object": "a"}}),
                "spec.retries: Invalid value: 11: spec.retries in body should be less than or equal to 10",
            ),
            (
                "HashTask",
                json!({"source": {"object": "a".repeat(1025)}}),
                "spec.source.object: Too long: may not be more than 1024 bytes",
            ),
        ] {
            let got = errors(kind, spec);
            assert_eq!(got, vec![want.to_string()], "{kind}");
        }
        assert_eq!(
            invalid_message("HashTask", "r", &["a: b".into()]),
            "HashTask.taskyard.dev \"r\" is invalid: a: b"
        );
    }
}
