//! The Arrow schemas of the datasets: one place that names every column.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Columns with few distinct values, where a dictionary pays for itself.
const LOW_CARDINALITY: &[&str] = &[
    "host",
    "service",
    "source",
    "format",
    "level",
    "method",
    "status",
    "referer",
    "user_agent",
    "reason",
];

/// Columns nobody filters by range, so min/max statistics would only cost time.
const NO_STATISTICS: &[&str] = &["message", "path", "referer", "user_agent", "client_ip", "raw"];

/// Parquet settings for a dataset of this schema.
///
/// Why not the defaults? Profiling `process` showed Parquet's dictionary interning and string
/// statistics costing more than parsing itself: dictionaries are kept only for low-cardinality
/// columns, and statistics dropped for free text. Snappy is the compression every reader has.
pub(crate) fn writer_properties(schema: &Schema) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_dictionary_enabled(false)
        .set_created_by(concat!("loglens ", env!("CARGO_PKG_VERSION")).to_owned());
    for field in schema.fields() {
        let name = field.name().as_str();
        let path = ColumnPath::from(name);
        if LOW_CARDINALITY.contains(&name) {
            builder = builder.set_column_dictionary_enabled(path.clone(), true);
        }
        if NO_STATISTICS.contains(&name) {
            builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
        }
    }
    let nested = |parts: &[&str]| ColumnPath::from(parts.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>());
    for part in ["keys", "values"] {
        let path = nested(&["attrs", "entries", part]);
        builder = builder
            .set_column_dictionary_enabled(path.clone(), true)
            .set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    // A template's slot values are free text too (min/max over them cost 2% of `process`).
    builder
        .set_column_statistics_enabled(nested(&["params", "list", "item"]), EnabledStatistics::None)
        .build()
}

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// The `attrs` map type: string keys to string values.
pub(crate) fn attrs_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(vec![text("keys", false), text("values", true)].into()),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The `params` column: the values a record's message puts in its template's `<*>` slots.
pub(crate) fn params_type() -> DataType {
    DataType::List(Arc::new(text("item", true)))
}

/// Schema of `records/`: one row per record (a parsed line and the continuation lines joined to it).
pub fn record_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("host", true),
        text("service", true),
        text("source", false),
        Field::new("line", DataType::UInt64, false),
        Field::new("lines", DataType::UInt32, false),
        text("format", false),
        text("level", true),
        text("message", false),
        Field::new("template_id", DataType::UInt64, true),
        Field::new("params", params_type(), true),
        text("client_ip", true),
        text("method", true),
        text("path", true),
        Field::new("status", DataType::UInt16, true),
        Field::new("bytes", DataType::UInt64, true),
        Field::new("latency_ms", DataType::Float64, true),
        text("referer", true),
        text("user_agent", true),
        Field::new("attrs", attrs_type(), false),
    ]))
}

/// Schema of `unparsed/`: one row per line that did not parse.
pub fn unparsed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("source", false),
        Field::new("line", DataType::UInt64, false),
        text("format", false),
        text("reason", false),
        text("raw", false),
    ]))
}
