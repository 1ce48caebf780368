//! Elasticsearch's bulk API (`POST /_bulk`, `POST /<index>/_bulk`) and index API
//! (`POST /<index>/_doc`), so Fluent Bit's `es` output, Vector's `elasticsearch` sink,
//! Logstash's and Elastic's own clients can ship to serve: `index` and `create` actions become
//! JSON lines for the `json` format, nested objects flattened to the dotted names ECS uses
//! (`log.level`, `host.name`), so those name the level and the host. Logs are append-only
//! here: `update` and `delete` are refused per item, as Elasticsearch reports a failed item.

use serde_json::{json, Map, Value};

/// What an action asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One item of a bulk request and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub action: Action,
    pub index: String,
    pub id: Option<String>,
    /// The document's JSON line, or why the item was refused.
    pub outcome: Result<String, String>,
}

/// Why the whole request is refused (as Elasticsearch refuses a malformed bulk body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    #[error("malformed action/metadata line [{line}]: {why}")]
    Action { line: usize, why: String },
    #[error("action/metadata line [{0}] has no document line after it")]
    MissingSource(usize),
}

/// Reads a bulk body: action lines, each `index`/`create`/`update` followed by its document.
/// `index` is the path's index, for actions that name none.
pub fn items(body: &[u8], index: Option<&str>, now_micros: i64) -> Result<Vec<Item>, BulkError> {
    let mut lines = body
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.trim_ascii().is_empty());
    let mut items = Vec::new();
    while let Some((number, line)) = lines.next() {
        let number = number + 1;
        let malformed = |why: &str| BulkError::Action {
            line: number,
            why: why.to_owned(),
        };
        let meta: Map<String, Value> = serde_json::from_slice(line).map_err(|e| malformed(&e.to_string()))?;
        let (Some((name, params)), 1) = (meta.iter().next(), meta.len()) else {
            return Err(malformed("expected one action"));
        };
        let action = match name.as_str() {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            other => return Err(malformed(&format!("unknown action [{other}]"))),
        };
        let text = |key| params.get(key).and_then(Value::as_str).map(str::to_owned);
        let index = text("_index").or(index.map(str::to_owned)).unwrap_or_default();
        let id = text("_id");
        let outcome = match action {
            Action::Delete => Err("logs are append-only here: delete is not supported".to_owned()),
            _ => {
                let (_, source) = lines.next().ok_or(BulkError::MissingSource(number))?;
                match action {
                    Action::Update => Err("logs are append-only here: update is not supported".to_owned()),
                    _ => document_line(source, &index, now_micros),
                }
            }
        };
        items.push(Item {
            action,
            index,
            id,
            outcome,
        });
    }
    Ok(items)
}

/// A document as a JSON line: nested objects flattened to dotted keys, the index as `_index`,
/// and the time of arrival as `@timestamp` when the document has no time of its own (as an
/// ingest pipeline would set it).
fn document_line(source: &[u8], index: &str, now_micros: i64) -> Result<String, String> {
    let document: Map<String, Value> = serde_json::from_slice(source)
        .map_err(|e| format!("failed to parse the document as a JSON object: {e}"))?;
    let mut flat = Map::new();
    flatten("", document, &mut flat);
    if !flat.keys().any(|k| loglens_core::format::is_time_key(k)) {
        flat.insert("@timestamp".into(), json!(now_micros));
    }
    if !index.is_empty() {
        flat.entry("_index").or_insert_with(|| json!(index));
    }
    Ok(Value::Object(flat).to_string())
}

fn flatten(prefix: &str, object: Map<String, Value>, out: &mut Map<String, Value>) {
    for (key, value) in object {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if !inner.is_empty() => flatten(&key, inner, out),
            other => {
                out.insert(key, other);
            }
        }
    }
}

/// The target of an index API request: `/<index>/_doc` (an id is made up), `/<index>/_doc/<id>`
/// or `/<index>/_create/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPath<'a> {
    pub index: &'a str,
    pub id: Option<&'a str>,
    pub action: Action,
}

impl<'a> DocumentPath<'a> {
    /// The target named by `path`, if it is an index API path (index names never start with
    /// `_`, so `/_bulk` and `/_cluster/...` are not).
    pub fn parse(path: &'a str) -> Option<Self> {
        let mut parts = path.strip_prefix('/')?.split('/');
        let index = parts.next().filter(|i| !i.is_empty() && !i.starts_with('_'))?;
        let (action, id) = match (parts.next()?, parts.next()) {
            ("_doc", id) => (Action::Index, id),
            ("_create", Some(id)) => (Action::Create, Some(id)),
            _ => return None,
        };
        let id = id.filter(|id| !id.is_empty());
        parts
            .next()
            .is_none()
            .then_some(DocumentPath { index, id, action })
    }

    /// The request's document as the item a bulk `index` or `create` action would make.
    pub fn item(&self, body: &[u8], now_micros: i64) -> Item {
        Item {
            action: self.action,
            index: self.index.to_owned(),
            id: self.id.map(str::to_owned),
            outcome: document_line(body, self.index, now_micros),
        }
    }
}

/// Elasticsearch's answer to a document it created, as the index API and each bulk item give it.
pub fn created(item: &Item, seq_no: u64) -> Value {
    json!({
        "_index": item.index, "_id": item_id(item, seq_no), "_version": 1, "result": "created",
        "_shards": { "total": 1, "successful": 1, "failed": 0 },
        "_seq_no": seq_no, "_primary_term": 1,
    })
}

/// Elasticsearch's answer to a document it cannot read.
pub fn document_error(reason: &str) -> Value {
    let error = json!({ "type": "document_parsing_exception", "reason": reason });
    json!({ "error": { "root_cause": [error.clone()], "type": error["type"], "reason": reason }, "status": 400 })
}

/// The item's id, or one made of its sequence number (as Elasticsearch makes one up).
fn item_id(item: &Item, seq_no: u64) -> String {
    item.id.clone().unwrap_or_else(|| format!("{seq_no:016x}"))
}

/// The bulk response: `errors` and an item per action, each with its status.
pub fn response(items: &[Item], took_ms: u64, first_seq_no: u64) -> Value {
    let mut errors = false;
    let answers: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let seq_no = first_seq_no + i as u64;
            let id = item_id(item, seq_no);
            let body = match &item.outcome {
                Ok(_) => {
                    let mut body = created(item, seq_no);
                    body["status"] = json!(201);
                    body
                }
                Err(reason) => {
                    errors = true;
                    json!({
                        "_index": item.index, "_id": id, "status": 400,
                        "error": { "type": "illegal_argument_exception", "reason": reason },
                    })
                }
            };
            json!({ item.action.name(): body })
        })
        .collect();
    json!({ "took": took_ms, "errors": errors, "items": answers })
}

/// What `GET /` answers: enough of Elasticsearch's banner for shippers that read its version
/// before the first bulk (Vector's `api_version = "auto"`).
pub fn banner() -> Value {
    json!({
        "name": "loglens",
        "cluster_name": "loglens",
        "version": { "number": "8.11.0", "build_flavor": "default",
                     "minimum_wire_compatibility_version": "7.17.0",
                     "minimum_index_compatibility_version": "7.0.0" },
        "tagline": "You Know, for Search (loglens serve: ingestion by _bulk and _doc only)",
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn index_api_paths_name_index_id_and_action() {
        let path = |index, id, action| Some(DocumentPath { index, id, action });
        assert_eq!(
            DocumentPath::parse("/logs/_doc"),
            path("logs", None, Action::Index)
        );
        assert_eq!(
            DocumentPath::parse("/logs/_doc/"),
            path("logs", None, Action::Index)
        );
        assert_eq!(
            DocumentPath::parse("/logs/_doc/7"),
            path("logs", Some("7"), Action::Index)
        );
        assert_eq!(
            DocumentPath::parse("/logs/_create/7"),
            path("logs", Some("7"), Action::Create)
        );
        for other in [
            "/_bulk",
            "/logs/_bulk",
            "/_cluster/health",
            "/logs/_create",
            "/logs/_doc/7/x",
            "/",
            "//_doc",
        ] {
            assert_eq!(DocumentPath::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_document_is_created_as_a_bulk_item_is() {
        let target = DocumentPath::parse("/logs/_doc").unwrap();
        let item = target.item(br#"{"msg":"hi","log":{"level":"warn"}}"#, 5);
        let line: Value = serde_json::from_str(item.outcome.as_ref().unwrap()).unwrap();
        assert_eq!(
            line,
            json!({"msg": "hi", "log.level": "warn", "@timestamp": 5, "_index": "logs"})
        );
        let answer = created(&item, 42);
        assert_eq!(
            (answer["_id"].as_str(), answer["result"].as_str()),
            (Some("000000000000002a"), Some("created"))
        );
        let bad = target.item(b"[1]", 5);
        assert!(bad.outcome.unwrap_err().contains("JSON object"));
    }

    #[test]
    fn a_bulk_body_gives_an_item_per_action() {
        // The shape of the bulk API documentation's example, with ECS documents.
        let body = br#"{ "index" : { "_index" : "logs", "_id" : "1" } }
{ "@timestamp": "2026-11-01T12:00:00Z", "message": "GET /cart 503", "log": { "level": "error" }, "host": { "name": "web-1" }, "service": { "name": "shop" } }
{ "delete" : { "_index" : "logs", "_id" : "2" } }
{ "create" : { } }
{ "msg" : "no time" }
{ "update" : {"_id" : "1", "_index" : "logs"} }
{ "doc" : {"field2" : "value2"} }
{ "index" : { } }
not json
"#;
        let items = items(body, Some("app"), 1_793_534_400_000_000).unwrap();
        let outcomes: Vec<_> = items
            .iter()
            .map(|i| (i.action, i.index.as_str(), i.outcome.is_ok()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Action::Index, "logs", true),
                (Action::Delete, "logs", false),
                (Action::Create, "app", true),
                (Action::Update, "logs", false),
                (Action::Index, "app", false),
            ]
        );
        let first: Value = serde_json::from_str(items[0].outcome.as_ref().unwrap()).unwrap();
        assert_eq!(
            first,
            json!({"@timestamp": "2026-11-01T12:00:00Z", "message": "GET /cart 503", "log.level": "error",
                "host.name": "web-1", "service.name": "shop", "_index": "logs"})
        );
        let third: Value = serde_json::from_str(items[2].outcome.as_ref().unwrap()).unwrap();
        assert_eq!(
            third,
            json!({"msg": "no time", "@timestamp": 1_793_534_400_000_000i64, "_index": "app"})
        );
        let answer = response(&items, 3, 10);
        assert_eq!(answer["errors"], true);
        assert_eq!(answer["items"][0]["index"]["status"], 201);
        assert_eq!(answer["items"][0]["index"]["_id"], "1");
        assert_eq!(answer["items"][1]["delete"]["status"], 400);
        assert_eq!(answer["items"][2]["create"]["_id"], "000000000000000c");
    }

    #[test]
    fn malformed_bodies_are_refused_whole() {
        assert!(matches!(
            items(b"{\"index\":{}}\n", None, 0),
            Err(BulkError::MissingSource(1))
        ));
        assert!(matches!(
            items(b"\n[1]\n", None, 0),
            Err(BulkError::Action { line: 2, .. })
        ));
        assert!(matches!(
            items(b"{\"upsert\":{}}\n{}\n", None, 0),
            Err(BulkError::Action { line: 1, .. })
        ));
        assert_eq!(items(b"\n\n", None, 0), Ok(vec![]));
    }
}
