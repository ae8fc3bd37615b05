//! A row's values by feature name, laid out for the hot paths: one flat allocation per row,
//! sorted by name, with names shared between rows.
//!
//! Rows are what mend moves most of (ingest validates them, the data log stores them, the
//! monitor folds millions of them into window summaries, the trainer reads its windows). A
//! `BTreeMap<String, Value>` spends a heap allocation on every name of every row and spreads a
//! row over several tree nodes, so walking a window is a walk through scattered memory. Here a
//! row is one contiguous, sorted `Vec`, and its names are [`Name`]s: decoding interns them
//! per thread, so the rows of a window share one copy of each name and a walk can recognise a
//! name by its pointer (see [`Values::entries`]) without reading its bytes.
//!
//! On the wire (JSON, the data log) values are a plain map, as before. Each value is a
//! [`Value`] (re-exported as `record::Value`, the path most of mend uses).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One feature value as it arrived: a number, a text (categorical), or missing. On the wire a
/// JSON number, string or `null` (a hand-written `Deserialize`: serde's `untagged` would try
/// each variant in turn and build an error for every miss, which dominated reading the data log).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
    Missing,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a string or null")
    }

    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Number(x))
    }

    fn visit_i64<E>(self, x: i64) -> Result<Value, E> {
        Ok(Value::Number(x as f64))
    }

    fn visit_u64<E>(self, x: u64) -> Result<Value, E> {
        Ok(Value::Number(x as f64))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Missing)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Missing)
    }
}

impl Value {
    /// The value as a number, if it is one (or a text that parses as one).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(x) => Some(*x),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Missing => None,
        }
    }
}

/// A feature name inside a row, shared between rows.
pub type Name = Arc<str>;

/// Names one thread interns before it starts over (bounds what a stream of made-up names
/// can hold on to; rows keep their own names alive regardless).
const MAX_INTERNED: usize = 4_096;

thread_local! {
    static NAMES: RefCell<HashMap<Box<str>, Name, BuildHasherDefault<NameHasher>>> =
        RefCell::new(HashMap::default());
}

/// A multiply-rotate hash (as rustc's `FxHasher`) for the interner: names are short and come
/// from the process itself, so SipHash's resistance to chosen keys buys nothing here, while
/// its cost would be paid for every value of every row decoded. A flood of made-up names
/// (which would collide on purpose) is bounded by [`MAX_INTERNED`].
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The shared copy of `name` on this thread.
pub fn intern(name: &str) -> Name {
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(shared) = names.get(name) {
            return Arc::clone(shared);
        }
        if names.len() >= MAX_INTERNED {
            names.clear();
        }
        let shared: Name = Arc::from(name);
        names.insert(Box::from(name), Arc::clone(&shared));
        shared
    })
}

/// Values by feature name, sorted by name, each name once.
#[derive(Clone, Default, PartialEq)]
pub struct Values {
    entries: Vec<(Name, Value)>,
}

impl Values {
    pub fn new() -> Values {
        Values::default()
    }

    pub fn with_capacity(capacity: usize) -> Values {
        Values {
            entries: Vec::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(key, _)| (**key).cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).ok().map(|i| &self.entries[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets `name`'s value; returns the value it replaces.
    pub fn insert(&mut self, name: impl AsRef<str>, value: Value) -> Option<Value> {
        let name = name.as_ref();
        // Names usually come in order: append without searching.
        if self.entries.last().is_none_or(|(last, _)| **last < *name) {
            self.entries.push((intern(name), value));
            return None;
        }
        match self.position(name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (intern(name), value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.position(name).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Name and value pairs, by name.
    pub fn iter(&self) -> Iter<'_> {
        self.entries.iter().map(pair)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(name, _)| &**name)
    }

    /// The pairs as stored, by name: for walks that match names against a layout (two
    /// `Name`s that are [`Arc::ptr_eq`] are the same name).
    pub fn entries(&self) -> &[(Name, Value)] {
        &self.entries
    }

    /// Sorts freshly pushed pairs by name; of a name given twice, the later value wins (as
    /// inserting them one by one would).
    fn normalise(&mut self) {
        if self.entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return;
        }
        // Stable: equal names keep their order, so the last of each run is the latest.
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Name, Value)> = Vec::with_capacity(self.entries.len());
        for pair in self.entries.drain(..) {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        self.entries = out;
    }
}

/// The iterator of [`Values::iter`].
pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (Name, Value)>,
    fn(&'a (Name, Value)) -> (&'a str, &'a Value),
>;

fn pair((name, value): &(Name, Value)) -> (&str, &Value) {
    (name, value)
}

impl<'a> IntoIterator for &'a Values {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<N: AsRef<str>> FromIterator<(N, Value)> for Values {
    fn from_iter<I: IntoIterator<Item = (N, Value)>>(pairs: I) -> Values {
        let mut values = Values {
            entries: pairs
                .into_iter()
                .map(|(name, value)| (intern(name.as_ref()), value))
                .collect(),
        };
        values.normalise();
        values
    }
}

impl<N: AsRef<str>, const K: usize> From<[(N, Value); K]> for Values {
    fn from(pairs: [(N, Value); K]) -> Values {
        pairs.into_iter().collect()
    }
}

impl std::ops::Index<&str> for Values {
    type Output = Value;

    /// The value of `name`; panics when the row has none (as a map's index does).
    fn index(&self, name: &str) -> &Value {
        match self.get(name) {
            Some(value) => value,
            None => panic!("no value named {name:?}"),
        }
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Values {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (name, value) in &self.entries {
            map.serialize_entry(&**name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Values, D::Error> {
        deserializer.deserialize_map(ValuesVisitor)
    }
}

struct ValuesVisitor;

impl<'de> Visitor<'de> for ValuesVisitor {
    type Value = Values;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of feature names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Values, A::Error> {
        let mut values = Values::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(name) = map.next_key_seed(NameSeed)? {
            let value: Value = map.next_value()?;
            values.entries.push((name, value));
        }
        values.normalise();
        Ok(values)
    }
}

/// Decodes a name through this thread's interner, without an owned copy in between.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Name;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Name, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a feature name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Name, E> {
        Ok(intern(name))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn behaves_as_a_sorted_map() {
        let mut values = Values::new();
        assert!(values.is_empty());
        assert_eq!(values.insert("b", Value::Number(2.0)), None);
        assert_eq!(values.insert(String::from("a"), Value::Number(1.0)), None);
        assert_eq!(values.insert("c", Value::Missing), None);
        assert_eq!(
            values.insert("b", Value::Text("two".into())),
            Some(Value::Number(2.0))
        );
        assert_eq!(values.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(values["b"], Value::Text("two".into()));
        assert_eq!(values.get("zz"), None);
        assert!(values.contains_key("c"));
        assert_eq!(values.remove("a"), Some(Value::Number(1.0)));
        assert_eq!(values.len(), 2);
        let collected: Values = [
            ("z", Value::Number(1.0)),
            ("y", Value::Number(2.0)),
            ("z", Value::Number(3.0)),
        ]
        .into();
        assert_eq!(
            collected.iter().collect::<Vec<_>>(),
            [("y", &Value::Number(2.0)), ("z", &Value::Number(3.0))],
            "sorted, and the later of a repeated name wins"
        );
    }

    #[test]
    fn json_is_a_plain_map_and_names_are_shared() {
        let text = r#"{"b": 2, "a": "x", "c": null, "b": 5, "d\u00e9": 1}"#;
        let values: Values = serde_json::from_str(text).unwrap();
        assert_eq!(values.keys().collect::<Vec<_>>(), ["a", "b", "c", "dé"]);
        assert_eq!(values["b"], Value::Number(5.0), "the later duplicate wins");
        let back = serde_json::to_string(&values).unwrap();
        assert_eq!(back, r#"{"a":"x","b":5.0,"c":null,"dé":1.0}"#);
        assert_eq!(serde_json::from_str::<Values>(&back).unwrap(), values);
        let again: Values = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        assert!(
            Arc::ptr_eq(&values.entries()[0].0, &again.entries()[0].0),
            "one copy of a name per thread"
        );
        assert!(serde_json::from_str::<Values>("[1, 2]").is_err());
    }
}
