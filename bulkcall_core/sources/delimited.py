"""CSV (any delimiter, any encoding): pyarrow's parser, or the csv module where it must.

Every file is first turned into UTF-8. pyarrow then parses it ~10x faster than the csv module
and keeps blank lines as all-missing rows, so row numbers stay right; what it cannot read
exactly (whitespace-only lines, rows of another width, an odd number of quotes) goes through
the csv module row by row, which also names the rows at fault.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from bulkcall_core.errors import SourceError
from bulkcall_core.sources.files import HEAD_BYTES, SourceFile
from bulkcall_core.sources.grid import TEXT, Grid, Names, Parsed, build
from bulkcall_core.sources.progress import Progress
from bulkcall_core.sources.table import Preview, Table, preview_of
from bulkcall_core.sources.text import (
    ONE_COLUMN,
    decode_head,
    detect_encoding,
    display_encoding,
    sniff_delimiter,
    to_utf8,
)

PREVIEW_FIRST_BYTES = 256 * 1024  # a preview's first read; 50 rows of even wide exports fit
PREVIEW_MAX_BYTES = 32 * 1024 * 1024  # a preview never reads more (rows of 600 KB are absurd)
ARROW_BLOCK_BYTES = 4 * 1024 * 1024  # pyarrow's parse block: ~25 progress steps for 100 MB
MAX_COLUMNS = 16384  # Excel's own limit; pyarrow is told every column up to it is text
PROGRESS_EVERY = 50_000  # records between progress reports on the row-by-row path
FIELD_LIMIT = 2 * PREVIEW_MAX_BYTES  # csv's default 128 KB refuses long notes; this is a cap

ARROW_TEXT = pacsv.ConvertOptions(
    column_types={f"f{index}": TEXT for index in range(MAX_COLUMNS)},
    strings_can_be_null=True,
    quoted_strings_can_be_null=True,
    null_values=[""],  # only empty is blank: "NA", "null" and "N/A" are somebody's text
)


def read_csv(file: SourceFile, names: Names, report: Progress) -> Table:
    """The whole CSV as a Table; raises SourceError (see `grid.build` and `_records`)."""
    data = file.read_all()
    encoding = detect_encoding(data, complete=True)
    whole = len(data) <= HEAD_BYTES
    delimiter = sniff_delimiter(decode_head(data[:HEAD_BYTES], encoding, whole), whole)
    utf8 = _utf8(data, encoding, file)
    report(0.05)
    parsed = _parse_with_arrow(utf8, delimiter, report)
    if parsed is None:
        text = io.TextIOWrapper(io.BytesIO(utf8), encoding="utf-8", newline="")
        parsed = _gather(
            _records(text, delimiter, file),
            Grid(width_from_first=True),
            lambda: report(0.05 + 0.8 * text.buffer.tell() / max(len(utf8), 1)),
        )
        _check_quotes(parsed, utf8, file)
    report(0.9)
    return build(parsed, names, file, encoding=display_encoding(encoding), delimiter=delimiter)


def preview_csv(file: SourceFile, names: Names, max_rows: int) -> Preview:
    """The first `max_rows` rows, from the file's head only (grown until they fit)."""
    size = PREVIEW_FIRST_BYTES
    while True:
        head = file.head(size + 1)
        complete = len(head) <= size
        head = head[:size]
        encoding = detect_encoding(head, complete)
        text = decode_head(head, encoding, complete)
        delimiter = sniff_delimiter(text[:HEAD_BYTES], complete and len(text) <= HEAD_BYTES)
        wanted = max_rows + 1 + names.has_header  # one row more than shown tells "truncated"
        records = _records(io.StringIO(text, newline=""), delimiter, file)
        grid = Grid(width_from_first=True, limit=wanted)
        parsed = _gather(_whole_records(records, complete), grid)
        if complete or len(parsed.row_numbers) >= wanted or size >= PREVIEW_MAX_BYTES:
            break
        size = min(size * 4, PREVIEW_MAX_BYTES)
    if complete:
        _check_quotes(parsed, text.encode("utf-8"), file)
    table = build(parsed, names, file, encoding=display_encoding(encoding), delimiter=delimiter)
    total = parsed.counted - names.has_header if complete else None
    return preview_of(table, max_rows, total=total)


def _utf8(data: bytes, encoding: str, file: SourceFile) -> memoryview | bytes:
    try:
        return to_utf8(data, encoding)
    except UnicodeDecodeError as exc:  # UTF-16 with an odd byte count or broken surrogates
        raise SourceError(
            f"{file.title} is not valid {display_encoding(encoding).upper()} text (it breaks "
            f"at byte {exc.start}); save it again as CSV UTF-8 and upload that"
        ) from exc


def _parse_with_arrow(
    utf8: memoryview | bytes, delimiter: str | None, report: Progress
) -> Parsed | None:
    """pyarrow's parse of UTF-8 CSV, or None when the input needs the row-by-row path.

    Block by block, reporting after each on the caller's thread. (pyarrow's one-call
    `read_csv` parses blocks in parallel but measured twice as slow on this shared 2-core
    machine under load, and never faster when idle.)
    """
    body = pa.py_buffer(utf8)
    if _quotes(utf8) % 2:
        return None  # a quote may never close: the csv module finds and names its row
    options = {
        "read_options": pacsv.ReadOptions(
            autogenerate_column_names=True, block_size=ARROW_BLOCK_BYTES
        ),
        "parse_options": pacsv.ParseOptions(
            delimiter=delimiter or ONE_COLUMN, newlines_in_values=True, ignore_empty_lines=False
        ),
        "convert_options": ARROW_TEXT,
    }
    try:
        table = _arrow_blocks(pacsv.open_csv(pa.BufferReader(body), **options), body, report)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # whitespace-only lines, rows of another width
    if any(column.type != TEXT for column in table.columns):
        return None  # wider than MAX_COLUMNS: pyarrow inferred types beyond our list
    return Parsed(list(table.columns), np.arange(1, table.num_rows + 1, dtype=np.int64))


def _arrow_blocks(reader: pacsv.CSVStreamingReader, body: pa.Buffer, report: Progress) -> pa.Table:
    batches = []
    for batch in reader:
        batches.append(batch)
        report(0.05 + 0.75 * min(1.0, len(batches) * ARROW_BLOCK_BYTES / max(body.size, 1)))
    return pa.Table.from_batches(batches, schema=reader.schema)


def _quotes(utf8: memoryview | bytes) -> int:
    """Quote characters in the file (a view's underlying bytes differ only by a BOM)."""
    return (utf8.obj if isinstance(utf8, memoryview) else utf8).count(b'"')


def _gather(
    records: Iterable[list[str]], grid: Grid, progress: Callable[[], None] | None = None
) -> Parsed:
    for number, record in enumerate(records, start=1):
        grid.add(number, record)
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress()
    return grid.finish()


def _records(text: Iterable[str], delimiter: str | None, file: SourceFile) -> Iterator[list[str]]:
    """csv records; a value past `FIELD_LIMIT` can only be a quote left open."""
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)  # process-wide, but only ever raised
    reader = csv.reader(text, delimiter=delimiter or ONE_COLUMN)
    count = 0
    try:
        for record in reader:
            count += 1
            yield record
    except csv.Error as exc:
        raise _open_quote(file, count + 1) from exc


def _whole_records(records: Iterator[list[str]], complete: bool) -> Iterator[list[str]]:
    """All records, less the last one of a cut head (it may be cut too)."""
    previous = None
    for record in records:
        if previous is not None:
            yield previous
        previous = record
    if previous is not None and complete:
        yield previous


def _check_quotes(parsed: Parsed, utf8: memoryview | bytes, file: SourceFile) -> None:
    """An unclosed quote swallows the file's tail into the last row's last value: refuse it."""
    if not len(parsed.row_numbers) or not parsed.columns or _quotes(utf8) % 2 == 0:
        return
    last = [column[-1].as_py() for column in parsed.columns]
    swallowed = next((value for value in reversed(last) if value), "")
    if re.search(r"[\r\n]", swallowed.strip()):
        raise _open_quote(file, int(parsed.row_numbers[-1]))


def _open_quote(file: SourceFile, row: int) -> SourceError:
    return SourceError(
        f'Row {row} of {file.label} opens a quote (") that is never closed, so the rest of the '
        "file would be read as one value; close the quote in that row or export the file again"
    )
