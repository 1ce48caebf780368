//! Column builders that turn parsed records into Arrow record batches.
//!
//! Why build columns directly? Records borrow from the input chunk; appending their fields to
//! Arrow builders right away copies each byte once and never allocates a per-record struct.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Float64Builder, ListBuilder, MapBuilder, MapFieldNames, StringBuilder,
    TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use loglens_core::Record;

use crate::schema::record_schema;
use crate::StoreError;

/// Labels a record inherits from its input when the line itself does not name them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Labels<'a> {
    /// Where the line came from: file path or peer address.
    pub source: &'a str,
    /// The format name.
    pub format: &'a str,
    /// Host to use when the record names none.
    pub host: Option<&'a str>,
    /// Service to use when the record names none.
    pub service: Option<&'a str>,
}

/// The template a record's message belongs to, and the values of its `<*>` slots.
#[derive(Debug, Clone, Copy)]
pub struct RecordTemplate<'a> {
    /// The template's stable id.
    pub id: u64,
    /// The slot values, in order; `None` when they could not be aligned with the template.
    pub params: Option<&'a [&'a str]>,
}

/// The physical lines a record was read from: its first line's number in the input, and how
/// many lines it spans (more than one when a stack trace's lines joined it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRange {
    /// 1-based number of its first line.
    pub first: u64,
    /// Lines it spans, at least 1.
    pub count: u32,
}

impl LineRange {
    /// A record read from one line.
    pub fn single(line: u64) -> Self {
        LineRange {
            first: line,
            count: 1,
        }
    }
}

/// How many rows, values and bytes a batch of [`RecordColumns`] held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSizes {
    rows: usize,
    /// Bytes of each plain text column, in the order of [`RecordColumns::sizes`].
    text: [usize; 11],
    param_values: usize,
    param_bytes: usize,
    attr_entries: usize,
    attr_key_bytes: usize,
    attr_value_bytes: usize,
}

/// Accumulates records column by column until [`RecordColumns::finish`] makes a batch.
pub struct RecordColumns {
    schema: SchemaRef,
    ts: TimestampMicrosecondBuilder,
    host: StringBuilder,
    service: StringBuilder,
    source: StringBuilder,
    line: UInt64Builder,
    lines: UInt32Builder,
    format: StringBuilder,
    level: StringBuilder,
    message: StringBuilder,
    template_id: UInt64Builder,
    params: ListBuilder<StringBuilder>,
    client_ip: StringBuilder,
    method: StringBuilder,
    path: StringBuilder,
    status: UInt16Builder,
    bytes: UInt64Builder,
    latency_ms: Float64Builder,
    referer: StringBuilder,
    user_agent: StringBuilder,
    attrs: MapBuilder<StringBuilder, StringBuilder>,
    rows: usize,
}

impl Default for RecordColumns {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordColumns {
    /// Empty builders for the record schema.
    pub fn new() -> Self {
        Self::with_sizes(&BatchSizes::default())
    }

    /// Empty builders sized to hold a batch like `sizes` without reallocating, text with an
    /// eighth to spare for longer values.
    pub fn with_sizes(sizes: &BatchSizes) -> Self {
        let rows = sizes.rows;
        let spare = |bytes: usize| bytes + bytes / 8;
        let [host, service, source, format, level, message, client_ip, method, path, referer, user_agent] =
            sizes
                .text
                .map(|bytes| StringBuilder::with_capacity(rows, spare(bytes)));
        let names = MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        };
        let attrs = |bytes| StringBuilder::with_capacity(sizes.attr_entries, spare(bytes));
        RecordColumns {
            schema: record_schema(),
            ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            host,
            service,
            source,
            line: UInt64Builder::with_capacity(rows),
            lines: UInt32Builder::with_capacity(rows),
            format,
            level,
            message,
            template_id: UInt64Builder::with_capacity(rows),
            params: ListBuilder::with_capacity(
                StringBuilder::with_capacity(sizes.param_values, spare(sizes.param_bytes)),
                rows,
            ),
            client_ip,
            method,
            path,
            status: UInt16Builder::with_capacity(rows),
            bytes: UInt64Builder::with_capacity(rows),
            latency_ms: Float64Builder::with_capacity(rows),
            referer,
            user_agent,
            attrs: MapBuilder::with_capacity(
                Some(names),
                attrs(sizes.attr_key_bytes),
                attrs(sizes.attr_value_bytes),
                rows,
            ),
            rows: 0,
        }
    }

    /// What the pending rows hold, to size the builders of a batch like them.
    pub fn sizes(&mut self) -> BatchSizes {
        // The same order as the destructuring in `with_sizes`.
        let text = [
            &self.host,
            &self.service,
            &self.source,
            &self.format,
            &self.level,
            &self.message,
            &self.client_ip,
            &self.method,
            &self.path,
            &self.referer,
            &self.user_agent,
        ]
        .map(|b| b.values_slice().len());
        let params = self.params.values_ref();
        let (param_values, param_bytes) = (params.len(), params.values_slice().len());
        let (keys, values) = self.attrs.entries();
        BatchSizes {
            rows: self.rows,
            text,
            param_values,
            param_bytes,
            attr_entries: keys.len(),
            attr_key_bytes: keys.values_slice().len(),
            attr_value_bytes: values.values_slice().len(),
        }
    }

    /// Rows appended since the last [`RecordColumns::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows are pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one record read from `lines` of `labels.source`, with its template if mined.
    pub fn push(
        &mut self,
        record: &Record<'_>,
        lines: LineRange,
        labels: &Labels<'_>,
        template: Option<RecordTemplate<'_>>,
    ) {
        self.ts.append_value(record.ts.0);
        self.host.append_option(record.host.as_deref().or(labels.host));
        self.service
            .append_option(record.service.as_deref().or(labels.service));
        self.source.append_value(labels.source);
        self.line.append_value(lines.first);
        self.lines.append_value(lines.count);
        self.format.append_value(labels.format);
        self.level.append_option(record.level.map(|l| l.as_str()));
        self.message.append_value(&record.message);
        self.template_id.append_option(template.map(|t| t.id));
        match template.and_then(|t| t.params) {
            Some(params) => {
                for value in params {
                    self.params.values().append_value(value);
                }
                self.params.append(true);
            }
            None => self.params.append_null(),
        }
        let access = record.access.as_ref();
        self.client_ip.append_option(access.map(|a| a.client_ip));
        self.method.append_option(access.and_then(|a| a.method));
        self.path.append_option(access.and_then(|a| a.path));
        self.status.append_option(access.map(|a| a.status));
        self.bytes.append_option(access.and_then(|a| a.bytes));
        self.latency_ms.append_option(access.and_then(|a| a.latency_ms));
        self.referer.append_option(access.and_then(|a| a.referer));
        self.user_agent.append_option(access.and_then(|a| a.user_agent));
        if let Some(a) = access {
            // The typed columns follow DESIGN.md; the rarer access fields stay queryable in attrs.
            for (key, value) in [("user", a.user), ("protocol", a.protocol)] {
                if let Some(value) = value {
                    self.attrs.keys().append_value(key);
                    self.attrs.values().append_value(value);
                }
            }
        }
        for (key, value) in &record.attrs {
            self.attrs.keys().append_value(key);
            self.attrs.values().append_value(value);
        }
        // Appending a map entry only fails when keys and values disagree in length, which the
        // loops above rule out.
        let _ = self.attrs.append(true);
        self.rows += 1;
    }

    /// Takes the pending rows as a batch, leaving empty builders that start small.
    pub fn finish(&mut self) -> Result<RecordBatch, StoreError> {
        // Fresh builders start small: presizing them for a full batch made every partition
        // that was once busy hold megabytes while idle, so peak memory grew with the input.
        // The writer presizes a few partitions' builders when their next rows arrive.
        let mut full = std::mem::take(self);
        full.take_batch()
    }

    fn take_batch(&mut self) -> Result<RecordBatch, StoreError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.lines.finish()),
            Arc::new(self.format.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.template_id.finish()),
            Arc::new(self.params.finish()),
            Arc::new(self.client_ip.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.latency_ms.finish()),
            Arc::new(self.referer.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.attrs.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}
