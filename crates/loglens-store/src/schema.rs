//! The Arrow schemas of the datasets: one place that names every column.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

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

/// Schema of `records/`: one row per parsed line.
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
        text("format", false),
        text("level", true),
        text("message", false),
        Field::new("template_id", DataType::UInt64, true),
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
