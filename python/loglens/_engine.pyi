"""Type stubs of `loglens._engine`, the Rust engine (crates/loglens-py)."""

from pathlib import Path
from typing import ClassVar, Literal, final, overload

import pyarrow as pa

__all__ = [
    "ConfigError",
    "DataError",
    "InputError",
    "LoglensError",
    "MetricPartial",
    "ProgressBar",
    "Run",
    "TemplateStage",
    "dense_metrics",
    "detect",
    "detect_series",
    "error_sql",
    "parse_bytes",
    "parse_lines",
    "process",
    "scan_chunk",
    "write_group",
]

class LoglensError(Exception):
    """An error of the loglens engine, with the CLI's message."""

class ConfigError(LoglensError):
    """A setting (config key, argument) that cannot be used."""

class InputError(LoglensError):
    """An input that cannot be read."""

class DataError(LoglensError):
    """The data directory or its state cannot be used (corrupt state, a failed write)."""

def error_sql() -> str:
    """The SQL predicate of an error record over the records dataset (status, level)."""

def dense_metrics() -> list[str]:
    """Metrics stored sparse in metrics/: a missing bucket between two points is a 0."""

def process(
    paths: list[str | Path],
    config: str | Path | None = None,
    data_dir: str | Path | None = None,
    threads: int | None = None,
    timezone: str | None = None,
    format: str | None = None,
    final_inputs: bool = False,
    no_templates: bool = False,
    reprocess: bool = False,
    progress: bool = False,
) -> str:
    """Runs `loglens process` in this process; the run summary as JSON text. With `progress`,
    the CLI's progress bar on stderr while it is a terminal."""

def detect(data_dir: str | Path, config: str | Path | None = None, progress: bool = False) -> str:
    """Runs `loglens detect`; its summary as JSON text. With `progress`, the CLI's progress
    bar on stderr while it is a terminal."""

@overload
def parse_lines(
    format: str, lines: list[str], source: str = "<python>", *, unparsed: Literal[False] = False
) -> pa.RecordBatch:
    """Parses lines with a built-in format into a RecordBatch of the records schema, as
    `parse_bytes` parses them joined by newlines (`line` is the 1-based place in `lines`; a
    continuation line joins the record before it); lines that do not parse are left out."""

@overload
def parse_lines(
    format: str, lines: list[str], source: str = "<python>", *, unparsed: Literal[True]
) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """With `unparsed=True`: `(records, unparsed)`, the second in the CLI's `unparsed/` schema
    (source, line, format, reason, raw)."""

@overload
def parse_bytes(
    format: str, data: bytes, source: str = "<python>", *, unparsed: Literal[False] = False
) -> pa.RecordBatch:
    """Parses the bytes of a log (whole lines) exactly as `loglens process` parses a file:
    continuation lines (a stack trace) join their record, a batch line may give several
    records, invalid UTF-8 is replaced; lines that do not parse are left out."""

@overload
def parse_bytes(
    format: str, data: bytes, source: str = "<python>", *, unparsed: Literal[True]
) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """With `unparsed=True`: `(records, unparsed)`, as `parse_lines`."""

def scan_chunk(worker: str, chunk: str) -> tuple[str, bytes]:
    """A worker's first step: the chunk's scan (JSON text) and its messages masked for the
    driver's miner (encoded, for `Run.assign`: each distinct masked text once and an index)."""

def write_group(worker: str, group: bytes, staged_dir: str | Path, run_id: str) -> bytes:
    """A worker's second step: writes a group of chunks' parts and metric partial; its counts
    and template tallies (encoded, for `Run.absorb`)."""

@final
class TemplateStage:
    def __new__(cls, state_json: str | None = None) -> TemplateStage: ...
    def assign(self, messages: list[str]) -> list[int]: ...
    def aliases(self) -> list[tuple[int, str, int, str]]: ...
    def state_json(self) -> str: ...
    def __reduce__(self) -> tuple[object, tuple[str]]:
        """Pickles as its state (what Dask and Ray ship between tasks)."""

@final
class ProgressBar:
    """The CLI's progress bar for a driver that counts for itself: drawn on stderr only when
    it is a terminal, once the run has gone on for about two seconds (`LOGLENS_PROGRESS_AFTER`
    seconds); otherwise its calls do nothing."""

    def __new__(cls, wanted: bool = True) -> ProgressBar: ...
    @property
    def active(self) -> bool:
        """Whether it draws at all (wanted, and stderr is a terminal)."""
    def begin(self, total_bytes: int | None) -> None: ...
    def update(self, lines: int, bytes: int) -> None: ...
    def end(self) -> None: ...

@final
class Run:
    """The driver of a distributed run (holds the data directory's write lock until done)."""

    def __new__(
        cls,
        paths: list[str | Path],
        config: str | Path | None = None,
        data_dir: str | Path | None = None,
        timezone: str | None = None,
        format: str | None = None,
        final_inputs: bool = False,
        no_templates: bool = False,
        reprocess: bool = False,
        chunk_bytes: int | None = None,
    ) -> Run: ...
    @property
    def run_id(self) -> str: ...
    @property
    def worker(self) -> str: ...
    @property
    def staged_dir(self) -> Path: ...
    def chunks(self) -> list[str]: ...
    def total_bytes(self) -> int:
        """Bytes on disk of all the chunks: what a progress bar runs to."""
    def written(self) -> tuple[int, int]:
        """`(lines, bytes on disk)` of the chunks written so far."""
    def assign(self, seq: int, scan: str, messages: bytes) -> list[bytes]: ...
    def remaining_groups(self) -> list[bytes]: ...
    def absorb(self, partial: bytes) -> None: ...
    def finish(self) -> str: ...
    def abort(self) -> None: ...

@final
class MetricPartial:
    """What a set of records contributes to the metric series, bucketed by time: built from
    records batches, merged with other partials (associative and commutative), saved as the
    bytes of the engine's own saved partials."""

    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __new__(cls, bucket_secs: int = 60) -> MetricPartial: ...
    @staticmethod
    def from_records(
        batch: pa.RecordBatch, bucket_secs: int = 60, source: str | None = None
    ) -> MetricPartial:
        """A partial of every record of `batch` (see `add_records`)."""

    def add_records(self, batch: pa.RecordBatch, source: str | None = None) -> int:
        """Adds every record of a batch of the records schema (ts, service, host, level,
        status, latency_ms, bytes, template_id, source) as `detect` adds stored records;
        `source` given, it replaces the batch's `source` column. Columns of other Arrow types
        (polars' large strings, int64, timestamps in other units or zones) are cast to the
        schema's; a value that does not fit raises `InputError` naming its column. The records
        added."""

    def merge(self, other: MetricPartial) -> None:
        """Adds everything `other` holds; other bucket widths raise `LoglensError`."""

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        """Pickles as its bytes (what Dask and Ray ship between tasks)."""

    def to_bytes(self) -> bytes:
        """The encoding of the engine's saved partials (`state/partials/*.bin`)."""

    @staticmethod
    def from_bytes(data: bytes) -> MetricPartial:
        """The partial of `to_bytes` or of a saved partial file's content."""

    @property
    def bucket_secs(self) -> int: ...
    @property
    def records(self) -> int: ...
    @property
    def span(self) -> tuple[int, int] | None:
        """First and last bucket start, seconds since the epoch (UTC); None when empty."""

    def series(self) -> pa.RecordBatch:
        """One row per (series, bucket) of the series `detect` sums (total, per service, per
        (service, host), per (service, level), per template): series, service, host, level,
        template_id, ts, records, errors, bytes, latency_count, latency_p50/p95/p99/gmean;
        sorted by the labels (nulls first), then ts."""

    def __eq__(self, other: object, /) -> bool: ...

def detect_series(
    values: list[float],
    *,
    bucket_secs: int = 60,
    start: int = 0,
    detector: str = "ensemble",
    config: str | Path | None = None,
    metric: str | None = None,
) -> pa.RecordBatch:
    """Runs a detector of `detect` (`ensemble`: the vote of Z-score, robust Z-score and
    seasonal baseline; or `zscore`, `robust_zscore`, `seasonal`, `poisson`) over the values,
    one bucket each from `start`; per point: ts, value, score, anomalous, severity, detector,
    ready. No floors, no incidents. With `metric` (e.g. `latency_p95`), the settings `detect`
    uses for that metric (`[detect.metric.<name>]` overrides in `config`)."""
