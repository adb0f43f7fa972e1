//! The spanned tree a statement's TOML is parsed into: every value with the byte offset
//! it starts at (from `toml_edit`), and offsets turned into line numbers.

use toml_edit::{InlineTable, Item, Table, Value};

/// Byte offset to 1-based line.
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
}

/// A TOML value with the byte offset where it starts.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) at: usize,
    pub(super) kind: Kind,
}

#[derive(Debug)]
pub(super) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime,
    Array(Vec<Node>),
    /// Key, offset of the key, value; in document order.
    Table(Vec<(String, usize, Node)>),
}

impl Node {
    pub(super) fn from_table(t: &Table, fallback: usize) -> Node {
        let at = t.span().map_or(fallback, |s| s.start);
        let mut entries = Vec::new();
        for (k, item) in t.iter() {
            let kat = t
                .get_key_value(k)
                .and_then(|(key, _)| key.span())
                .map_or(at, |s| s.start);
            if let Some(n) = Node::from_item(item, kat) {
                entries.push((k.to_owned(), kat, n));
            }
        }
        Node {
            at,
            kind: Kind::Table(entries),
        }
    }

    fn from_inline(t: &InlineTable, fallback: usize) -> Node {
        let at = t.span().map_or(fallback, |s| s.start);
        let mut entries = Vec::new();
        for (k, v) in t.iter() {
            let kat = t
                .get_key_value(k)
                .and_then(|(key, _)| key.span())
                .map_or(at, |s| s.start);
            entries.push((k.to_owned(), kat, Node::from_value(v, kat)));
        }
        Node {
            at,
            kind: Kind::Table(entries),
        }
    }

    fn from_item(item: &Item, fallback: usize) -> Option<Node> {
        Some(match item {
            Item::None => return None,
            Item::Value(v) => Node::from_value(v, fallback),
            Item::Table(t) => Node::from_table(t, fallback),
            Item::ArrayOfTables(a) => Node {
                at: a.span().map_or(fallback, |s| s.start),
                kind: Kind::Array(a.iter().map(|t| Node::from_table(t, fallback)).collect()),
            },
        })
    }

    fn from_value(v: &Value, fallback: usize) -> Node {
        let at = v.span().map_or(fallback, |s| s.start);
        let kind = match v {
            Value::String(s) => Kind::Str(s.value().clone()),
            Value::Integer(i) => Kind::Int(*i.value()),
            Value::Float(f) => Kind::Float(*f.value()),
            Value::Boolean(b) => Kind::Bool(*b.value()),
            Value::Datetime(_) => Kind::Datetime,
            Value::Array(a) => Kind::Array(a.iter().map(|v| Node::from_value(v, at)).collect()),
            Value::InlineTable(t) => return Node::from_inline(t, at),
        };
        Node { at, kind }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime => "a date-time",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}
