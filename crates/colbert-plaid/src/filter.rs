//! Metadata filters: a small MongoDB-style query language over the JSON object stored as a
//! document's metadata. A search with a filter only considers documents whose metadata
//! matches (they become the search's subset).
//!
//! ```text
//! { "lang": "en" }                                 equality (an array field matches if it contains the value)
//! { "year": { "$gte": 2020, "$lt": 2024 } }        $eq $ne $gt $gte $lt $lte $in $nin $exists
//! { "$or": [ { "lang": "en" }, { "lang": "fr" } ] } $and $or (arrays of filters), $not (a filter)
//! { "source.kind": "pdf" }                         dotted paths reach into nested objects
//! ```
//!
//! Comparisons ($gt…) hold between two numbers or two strings (by code point) and are false
//! otherwise. `{ "field": null }` matches a missing field as well as `null`; `$ne` and `$nin`
//! match missing fields. Several conditions in one object must all hold.

use serde_json::{Map, Value};

use crate::error::{PlaidError, Result};

/// A parsed metadata filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Field(Vec<String>, Cond),
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Eq(Value),
    Ne(Value),
    Cmp(Ordering, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ordering {
    Gt,
    Gte,
    Lt,
    Lte,
}

fn invalid(msg: impl Into<String>) -> PlaidError {
    PlaidError::invalid(format!("filter: {}", msg.into()))
}

impl Filter {
    /// Parses a filter from its JSON text.
    pub fn parse(json: &str) -> Result<Filter> {
        let v: Value = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        Self::from_value(&v)
    }

    /// Builds a filter from a JSON value (an object).
    pub fn from_value(v: &Value) -> Result<Filter> {
        Ok(Filter {
            root: parse_object(v)?,
        })
    }

    /// Whether a document's metadata (a JSON object; `None` when it has none) matches.
    pub fn matches(&self, metadata: Option<&Map<String, Value>>) -> bool {
        let empty = Map::new();
        eval(&self.root, metadata.unwrap_or(&empty))
    }

    /// Whether stored metadata text matches ("" means no metadata). Text that is not a JSON
    /// object is `INDEX_CORRUPT`: `push` stores only objects, so only a forged file holds it.
    pub fn matches_stored(&self, metadata: &str) -> Result<bool> {
        Ok(self.matches(parse_stored(metadata)?.as_ref()))
    }
}

/// Stored metadata text as an object (`None` for "", i.e. none stored); anything but a JSON
/// object is `INDEX_CORRUPT`.
pub(crate) fn parse_stored(metadata: &str) -> Result<Option<Map<String, Value>>> {
    if metadata.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(metadata)
        .map(Some)
        .map_err(|e| PlaidError::corrupt(format!("stored metadata is not a JSON object: {e}")))
}

fn parse_object(v: &Value) -> Result<Node> {
    let Value::Object(m) = v else {
        return Err(invalid(format!("expected an object, got {v}")));
    };
    let mut all = Vec::with_capacity(m.len());
    for (k, v) in m {
        all.push(match k.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = v else {
                    return Err(invalid(format!("{k} takes an array of filters")));
                };
                if items.is_empty() {
                    return Err(invalid(format!("{k} needs at least one filter")));
                }
                let nodes = items.iter().map(parse_object).collect::<Result<Vec<_>>>()?;
                if k == "$and" {
                    Node::And(nodes)
                } else {
                    Node::Or(nodes)
                }
            }
            "$not" => Node::Not(Box::new(parse_object(v)?)),
            op if op.starts_with('$') => {
                return Err(invalid(format!(
                    "unknown operator {op} at the top level (use $and, $or, $not or a field name)"
                )))
            }
            field => {
                if field.is_empty() || field.split('.').any(str::is_empty) {
                    return Err(invalid(format!("bad field path {field:?}")));
                }
                let path: Vec<String> = field.split('.').map(str::to_string).collect();
                parse_field(path, v)?
            }
        });
    }
    Ok(if all.len() == 1 {
        all.remove(0)
    } else {
        Node::And(all)
    })
}

fn parse_field(path: Vec<String>, v: &Value) -> Result<Node> {
    let ops = match v {
        Value::Object(m) if !m.is_empty() && m.keys().all(|k| k.starts_with('$')) => m,
        Value::Object(m) if m.keys().any(|k| k.starts_with('$')) => {
            return Err(invalid(format!(
                "field {:?} mixes operators and plain keys",
                path.join(".")
            )))
        }
        _ => return Ok(Node::Field(path, Cond::Eq(v.clone()))),
    };
    let mut conds = Vec::with_capacity(ops.len());
    for (op, arg) in ops {
        let list = |arg: &Value| -> Result<Vec<Value>> {
            match arg {
                Value::Array(a) => Ok(a.clone()),
                _ => Err(invalid(format!("{op} takes an array"))),
            }
        };
        let ordered = |o: Ordering| -> Result<Cond> {
            match arg {
                Value::Number(_) | Value::String(_) => Ok(Cond::Cmp(o, arg.clone())),
                _ => Err(invalid(format!("{op} takes a number or a string"))),
            }
        };
        let c = match op.as_str() {
            "$eq" => Cond::Eq(arg.clone()),
            "$ne" => Cond::Ne(arg.clone()),
            "$gt" => ordered(Ordering::Gt)?,
            "$gte" => ordered(Ordering::Gte)?,
            "$lt" => ordered(Ordering::Lt)?,
            "$lte" => ordered(Ordering::Lte)?,
            "$in" => Cond::In(list(arg)?),
            "$nin" => Cond::Nin(list(arg)?),
            "$exists" => match arg {
                Value::Bool(b) => Cond::Exists(*b),
                _ => return Err(invalid("$exists takes true or false")),
            },
            other => {
                return Err(invalid(format!(
                    "unknown operator {other} (known: $eq $ne $gt $gte $lt $lte $in $nin $exists)"
                )))
            }
        };
        conds.push(Node::Field(path.clone(), c));
    }
    Ok(if conds.len() == 1 {
        conds.remove(0)
    } else {
        Node::And(conds)
    })
}

fn lookup<'a>(m: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = m.get(first)?;
    for p in rest {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Equality as MongoDB does it: an array field matches if it equals or contains the value.
fn eq(field: Option<&Value>, v: &Value) -> bool {
    match field {
        None => v.is_null(),
        Some(f) => {
            json_eq(f, v)
                || f.as_array()
                    .is_some_and(|a| a.iter().any(|x| json_eq(x, v)))
        }
    }
}

fn compare(f: &Value, o: Ordering, v: &Value) -> bool {
    let ord = match (f, v) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match o {
        Ordering::Gt => ord.is_gt(),
        Ordering::Gte => ord.is_ge(),
        Ordering::Lt => ord.is_lt(),
        Ordering::Lte => ord.is_le(),
    }
}

fn eval(n: &Node, m: &Map<String, Value>) -> bool {
    match n {
        Node::And(v) => v.iter().all(|x| eval(x, m)),
        Node::Or(v) => v.iter().any(|x| eval(x, m)),
        Node::Not(x) => !eval(x, m),
        Node::Field(path, c) => {
            let f = lookup(m, path);
            match c {
                Cond::Eq(v) => eq(f, v),
                Cond::Ne(v) => !eq(f, v),
                Cond::In(vs) => vs.iter().any(|v| eq(f, v)),
                Cond::Nin(vs) => !vs.iter().any(|v| eq(f, v)),
                Cond::Exists(b) => f.is_some() == *b,
                Cond::Cmp(o, v) => match f {
                    Some(Value::Array(a)) => a.iter().any(|x| compare(x, *o, v)),
                    Some(x) => compare(x, *o, v),
                    None => false,
                },
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use colbert_core::CodedError;

    fn m(s: &str) -> Map<String, Value> {
        serde_json::from_str(s).unwrap()
    }

    fn check(filter: &str, doc: &str) -> bool {
        Filter::parse(filter).unwrap().matches(Some(&m(doc)))
    }

    #[test]
    fn operators() {
        let doc = r#"{"lang":"en","year":2021,"tags":["a","b"],"src":{"kind":"pdf"},"n":null}"#;
        assert!(check(r#"{"lang":"en"}"#, doc));
        assert!(!check(r#"{"lang":"fr"}"#, doc));
        assert!(check(r#"{"tags":"b"}"#, doc));
        assert!(check(r#"{"tags":["a","b"]}"#, doc));
        assert!(check(r#"{"year":2021.0}"#, doc));
        assert!(check(r#"{"year":{"$gte":2020,"$lt":2022}}"#, doc));
        assert!(!check(r#"{"year":{"$gt":2021}}"#, doc));
        assert!(check(r#"{"year":{"$lte":2021}}"#, doc));
        assert!(
            !check(r#"{"year":{"$gt":"2000"}}"#, doc),
            "no cross-type order"
        );
        assert!(check(r#"{"lang":{"$gt":"de"}}"#, doc));
        assert!(check(r#"{"lang":{"$in":["fr","en"]}}"#, doc));
        assert!(!check(r#"{"lang":{"$nin":["fr","en"]}}"#, doc));
        assert!(check(r#"{"missing":{"$nin":["x"]}}"#, doc));
        assert!(check(r#"{"missing":{"$ne":1}}"#, doc));
        assert!(check(r#"{"missing":null}"#, doc));
        assert!(check(r#"{"n":null}"#, doc));
        assert!(check(r#"{"n":{"$exists":true}}"#, doc));
        assert!(check(r#"{"missing":{"$exists":false}}"#, doc));
        assert!(check(r#"{"src.kind":"pdf"}"#, doc));
        assert!(!check(r#"{"src.kind.x":"pdf"}"#, doc));
        assert!(check(r#"{"$or":[{"lang":"fr"},{"year":2021}]}"#, doc));
        assert!(!check(r#"{"$and":[{"lang":"en"},{"year":2020}]}"#, doc));
        assert!(check(r#"{"$not":{"lang":"fr"}}"#, doc));
        assert!(check(r#"{"lang":"en","year":2021}"#, doc));
        assert!(!check(r#"{"lang":"en","year":2020}"#, doc));
        assert!(check(r#"{}"#, doc), "an empty filter matches everything");
        let f = Filter::parse(r#"{"lang":"en"}"#).unwrap();
        assert!(!f.matches(None));
        assert!(!f.matches_stored("").unwrap());
        assert!(f.matches_stored(r#"{"lang":"en"}"#).unwrap());
    }

    /// Stored metadata is an object or nothing: anything else read from a segment is corrupt
    /// (a filter scan reports it instead of silently skipping the document).
    #[test]
    fn stored_metadata_must_be_an_object() {
        let f = Filter::parse(r#"{"a":{"$exists":false}}"#).unwrap();
        assert!(f.matches_stored("").unwrap());
        assert!(!f.matches_stored(r#"{"a":1}"#).unwrap());
        for bad in ["not json", "[1]", "1", r#"{"a":"#, "null"] {
            assert_eq!(
                parse_stored(bad).unwrap_err().code(),
                "INDEX_CORRUPT",
                "{bad}"
            );
            assert_eq!(f.matches_stored(bad).unwrap_err().code(), "INDEX_CORRUPT");
        }
    }

    #[test]
    fn bad_filters_are_invalid_argument() {
        for bad in [
            "[1]",
            "{",
            r#"{"$foo":1}"#,
            r#"{"a":{"$foo":1}}"#,
            r#"{"a":{"$in":1}}"#,
            r#"{"a":{"$gt":[1]}}"#,
            r#"{"a":{"$exists":1}}"#,
            r#"{"$or":[]}"#,
            r#"{"$and":{}}"#,
            r#"{"a..b":1}"#,
            r#"{"a":{"$eq":1,"b":2}}"#,
        ] {
            let e = Filter::parse(bad).unwrap_err();
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{bad}");
            assert!(e.to_string().contains("filter"), "{e}");
        }
    }
}
