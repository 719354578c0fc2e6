//! Lenient but exact JSON reading: a missing key or `null` reads as `None`, a key of the wrong
//! type is an [`Error::Field`] naming the file and the key's JSON pointer (`/pruning/amount`).

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Parse `bytes` read from `file`.
pub(crate) fn parse(file: &Path, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json { path: file.to_owned(), source })
}

/// A JSON value and where it is: the file and the pointer to it.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    file: &'a Path,
    pointer: Pointer<'a>,
    value: &'a Value,
}

/// A JSON pointer kept as a chain of borrowed segments, rendered only for error messages.
#[derive(Clone, Copy)]
enum Pointer<'a> {
    Root,
    Key(&'a Pointer<'a>, &'a str),
    Index(&'a Pointer<'a>, usize),
}

impl std::fmt::Display for Pointer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pointer::Root => Ok(()),
            Pointer::Key(parent, key) => write!(f, "{parent}/{key}"),
            Pointer::Index(parent, i) => write!(f, "{parent}/{i}"),
        }
    }
}

/// What a value is, for messages ("found a string").
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Node<'a> {
    /// The whole document of `file`.
    pub(crate) fn root(file: &'a Path, value: &'a Value) -> Self {
        Node { file, pointer: Pointer::Root, value }
    }

    /// The error for this node (or its key `key`).
    pub(crate) fn error(&self, key: Option<&str>, message: impl Into<String>) -> Error {
        let pointer = match key {
            Some(key) => format!("{}/{key}", self.pointer),
            None => self.pointer.to_string(),
        };
        let pointer = if pointer.is_empty() { "/".to_owned() } else { pointer };
        Error::Field { path: self.file.to_owned(), pointer, message: message.into() }
    }

    fn wrong(&self, key: &str, expected: &str, found: &Value) -> Error {
        self.error(Some(key), format!("expected {expected}, found {}", kind(found)))
    }

    /// The value under `key`, unless missing or `null`. Errors if this node is not an object.
    fn get(&self, key: &str) -> Result<Option<&'a Value>> {
        match self.value {
            Value::Object(map) => Ok(map.get(key).filter(|v| !v.is_null())),
            other => Err(self.error(None, format!("expected an object, found {}", kind(other)))),
        }
    }

    /// A string under `key`.
    pub(crate) fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(key, "a string", other)),
        }
    }

    /// A string under `key` that must be there.
    pub(crate) fn required_str(&self, key: &str) -> Result<&'a str> {
        self.str(key)?.ok_or_else(|| self.error(Some(key), "missing (a string is required)"))
    }

    /// A number under `key`.
    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key)? {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(self.wrong(key, "a number", other)),
        }
    }

    /// A non-negative integer under `key`.
    pub(crate) fn u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key)? {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.error(Some(key), format!("expected a non-negative integer, found {n}"))),
            Some(other) => Err(self.wrong(key, "a non-negative integer", other)),
        }
    }

    /// An array under `key`, each element read with `f` (`None` when the key is missing).
    pub(crate) fn array<T>(&self, key: &str, f: impl FnMut(Node<'_>) -> Result<T>) -> Result<Option<Vec<T>>> {
        match self.get(key)? {
            None => Ok(None),
            Some(value @ Value::Array(_)) => {
                let pointer = Pointer::Key(&self.pointer, key);
                Node { file: self.file, pointer, value }.items(f).map(Some)
            }
            Some(other) => Err(self.wrong(key, "an array", other)),
        }
    }

    /// This node as an array, each element read with `f`.
    pub(crate) fn items<T>(&self, mut f: impl FnMut(Node<'_>) -> Result<T>) -> Result<Vec<T>> {
        let Value::Array(items) = self.value else {
            return Err(self.error(None, format!("expected an array, found {}", kind(self.value))));
        };
        let read = |(i, value)| f(Node { file: self.file, pointer: Pointer::Index(&self.pointer, i), value });
        items.iter().enumerate().map(read).collect()
    }

    /// This node as a number (array elements).
    pub(crate) fn as_f64(&self) -> Result<f64> {
        match self.value {
            Value::Number(n) => n.as_f64().ok_or_else(|| self.error(None, "expected a finite number")),
            other => Err(self.error(None, format!("expected a number, found {}", kind(other)))),
        }
    }

    /// This node as a non-negative integer (array elements).
    pub(crate) fn as_u64(&self) -> Result<u64> {
        match self.value {
            Value::Number(n) => {
                n.as_u64().ok_or_else(|| self.error(None, format!("expected a non-negative integer, found {n}")))
            }
            other => Err(self.error(None, format!("expected a non-negative integer, found {}", kind(other)))),
        }
    }

    /// The object's scalar entries (and arrays of scalars, joined by ", ") as text, strings
    /// unquoted, sorted by key; other entries are left out. For summaries of free-form objects
    /// (hyper-parameters, `grid.json`).
    pub(crate) fn scalars(&self) -> Vec<(String, String)> {
        fn scalar(v: &Value) -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
                _ => None,
            }
        }
        let Value::Object(map) = self.value else { return Vec::new() };
        let mut out: Vec<(String, String)> = map
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Array(items) => {
                    let items: Option<Vec<String>> = items.iter().map(scalar).collect();
                    Some((k.clone(), items?.join(", ")))
                }
                other => Some((k.clone(), scalar(other)?)),
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn missing_and_null_are_none_and_wrong_types_name_the_pointer() {
        let file = Path::new("runs/a/result.json");
        let v = doc(r#"{"a": null, "amount": "half", "xs": [1, "two"]}"#);
        let root = Node::root(file, &v);
        assert_eq!(root.f64("a").unwrap(), None);
        assert_eq!(root.str("missing").unwrap(), None);
        let err = root.f64("amount").unwrap_err().to_string();
        assert_eq!(err, "runs/a/result.json: /amount: expected a number, found a string");
        let err = root.array("xs", |x| x.as_f64()).unwrap_err().to_string();
        assert_eq!(err, "runs/a/result.json: /xs/1: expected a number, found a string");
        let err = root.required_str("status").unwrap_err().to_string();
        assert_eq!(err, "runs/a/result.json: /status: missing (a string is required)");
        let grid = doc(r#"{"preset": "smoke", "seeds": [1, 2], "nested": {"a": 1}, "mixed": [1, {}]}"#);
        let entries = Node::root(file, &grid).scalars();
        assert_eq!(entries, [("preset".to_owned(), "smoke".to_owned()), ("seeds".to_owned(), "1, 2".to_owned())]);
        let arr = doc("[1]");
        let err = Node::root(file, &arr).str("x").unwrap_err().to_string();
        assert_eq!(err, "runs/a/result.json: /: expected an object, found an array");
    }
}
