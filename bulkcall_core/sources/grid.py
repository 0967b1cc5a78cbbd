"""From records to a finished `Table`: blank rows out, header taken, columns named.

Both readers end here. The fast CSV parser hands over Arrow columns directly; the row-by-row
paths (the csv module, calamine's rows) gather records in a `Grid`, which turns them into Arrow
columns a block at a time so a million rows are never held as Python lists.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bulkcall_core.errors import SourceError
from bulkcall_core.sources.files import SourceFile
from bulkcall_core.sources.table import Table
from bulkcall_core.sources.text import ZERO_WIDTH

TEXT = pa.large_string()  # what pandas' Arrow-backed text dtype holds: no copy into pandas
NOTHING = pa.scalar(None, TEXT)
BLOCK_ROWS = 65_536  # rows gathered as Python lists before they become Arrow arrays
LISTED_ROWS = 5  # row numbers named in an error before "and N more"


@dataclass(frozen=True)
class Names:
    """How the columns get their names: the file's header row, given headers, or numbers."""

    has_header: bool
    given: tuple[str, ...] | None

    @classmethod
    def from_options(cls, has_header: bool, headers: str | Sequence[str] | None) -> Names:
        """Raises SourceError when headers are given for a file read with its header row."""
        given = _parse_headers(headers)
        if given is not None and has_header:
            raise SourceError(
                "Headers were given but the file's first row is read as its header; tick "
                '"the first record doesn\'t have column headers" to use your headers',
                field="headers",
            )
        return cls(has_header, given)


def _parse_headers(headers: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if headers is None:
        return None
    if isinstance(headers, str):
        if not headers.strip():
            return None
        headers = next(csv.reader([headers], skipinitialspace=True))  # "Last, First" may quote
    return tuple(str(header) for header in headers) or None


@dataclass
class Parsed:
    """Columns of raw text (missing for blank), the spreadsheet row number of each row, and
    what the row-by-row paths learnt on the way."""

    columns: list[pa.ChunkedArray]
    row_numbers: np.ndarray
    counted: int = 0  # non-blank rows seen, also those past a preview's limit
    too_long: list[int] = field(default_factory=list)  # CSV rows with values right of the header
    width: int = 0  # values per row
    filled: int = 0  # columns holding a value in some row, also in rows past the limit


class Grid:
    """Non-blank records gathered into columns, numbered as a spreadsheet numbers rows.

    With `width_from_first` (CSV) the first non-blank record sets the width: shorter records
    are padded, longer ones with non-blank extras are noted in `too_long`. Otherwise (a sheet,
    where every cell has its column) the widest record sets it. Past `limit` rows, records are
    only counted. Rows wait as Python lists until a block is full, then become Arrow columns.
    """

    def __init__(self, *, width_from_first: bool, limit: int | None = None) -> None:
        self.width_from_first = width_from_first
        self.limit = limit
        self.parsed = Parsed([], np.empty(0, dtype=np.int64))
        self._rows: list[Sequence[str | None]] = []  # rows not yet converted, all of `width`
        self._blocks: list[list[pa.Array]] = []  # per column, the converted blocks
        self._converted = 0  # rows already in `_blocks`
        self._numbers: list[int] = []

    def add(self, number: int, record: Sequence[str | None]) -> None:
        """Record `number` (1-based, blank records counted) of the file."""
        end = record[-1] if record else None
        last = len(record) if end and not end.isspace() else _last_filled(record)  # usual: 1st
        if not last:
            return
        parsed = self.parsed
        parsed.counted += 1
        if self.limit is None or len(self._numbers) < self.limit:
            if not self._numbers:
                parsed.width = len(record)
            self._rows.append(record if len(record) == parsed.width else self._fit(number, record))
            self._numbers.append(number)
            if len(self._rows) >= BLOCK_ROWS:
                self._flush()
        parsed.filled = max(
            parsed.filled, min(last, parsed.width) if self.width_from_first else last
        )

    def finish(self) -> Parsed:
        """The gathered columns (call once, after the last record)."""
        self._flush()
        self.parsed.columns = [pa.chunked_array(blocks, TEXT) for blocks in self._blocks]
        self.parsed.row_numbers = np.asarray(self._numbers, dtype=np.int64)
        return self.parsed

    def _fit(self, number: int, record: Sequence[str | None]) -> Sequence[str | None]:
        width = self.parsed.width
        if len(record) < width:
            return [*record, *[None] * (width - len(record))]
        if self.width_from_first:
            if _last_filled(record[width:]):
                self.parsed.too_long.append(number)
            return record[:width]
        # A sheet's wider row: new columns, blank in every row so far.
        self._rows = [[*row, *[None] * (len(record) - width)] for row in self._rows]
        self.parsed.width = len(record)
        return record

    def _flush(self) -> None:
        while len(self._blocks) < self.parsed.width:  # new columns: blank in converted rows
            self._blocks.append([pa.nulls(self._converted, TEXT)] if self._converted else [])
        if not self._rows:
            return
        for index, column in enumerate(zip(*self._rows, strict=True)):
            self._blocks[index].append(pa.array(column, TEXT))
        self._converted += len(self._rows)
        self._rows = []


def _last_filled(record: Sequence[str | None]) -> int:
    """1 + the index of the record's last non-blank value; 0 for a blank record."""
    for index in range(len(record) - 1, -1, -1):
        value = record[index]
        if value and not value.isspace():
            return index + 1
    return 0


def build(
    parsed: Parsed,
    names: Names,
    file: SourceFile,
    *,
    sheet: str | None = None,
    sheet_names: tuple[str, ...] = (),
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Table:
    """Trim cells, drop blank rows, take the header, name the columns: the finished Table.

    Raises SourceError for CSV rows too long, a file of blank rows, a header without data
    rows, and given headers whose count differs from the columns'.
    """
    if parsed.too_long:
        raise _too_long(parsed, file, names, delimiter)
    columns, numbers = _clean(parsed)
    if not len(numbers):
        raise SourceError(
            f"{file.title} has no data: every row is blank; export the contacts again"
        )
    header: list[str | None] = [None] * len(columns)
    if names.has_header:
        header = [_header_text(column[0].as_py()) for column in columns]
        columns, numbers = [column.slice(1) for column in columns], numbers[1:]
        if not len(numbers):
            raise SourceError(
                f"{file.title} has a header row but no data rows; add the contacts below the "
                "header, or check that you picked the right file" + (" and sheet" if sheet else "")
            )
    columns, header = _drop_empty_edges(columns, header, parsed.filled)
    labels = _column_names(header, names, file)
    frame = pa.table(columns, names=list(labels)).to_pandas(types_mapper=_text_dtype)
    return Table(
        columns=labels,
        data=frame,
        row_numbers=numbers,
        sheet=sheet,
        sheet_names=sheet_names,
        encoding=encoding,
        delimiter=delimiter,
    )


def _clean(parsed: Parsed) -> tuple[list[pa.ChunkedArray], np.ndarray]:
    """Cells trimmed of whitespace, empty ones missing, and all-blank rows dropped.

    Columns are replaced one at a time, so a large file is never held twice.
    """
    columns = parsed.columns
    if not columns:
        return [], np.empty(0, dtype=np.int64)
    for index, column in enumerate(columns):
        columns[index] = _trimmed(column)
    filled = reduce(pc.or_, (pc.is_valid(column) for column in columns))
    keep = np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)
    if keep.all():
        return columns, parsed.row_numbers
    mask = pa.array(keep)
    return [column.filter(mask) for column in columns], parsed.row_numbers[keep]


def _trimmed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    trimmed = pc.utf8_trim_whitespace(column)
    filled = pc.greater(pc.binary_length(trimmed), 0)
    if pc.all(filled).as_py() is not False:
        return trimmed
    return pc.if_else(filled, trimmed, NOTHING)


def _drop_empty_edges(
    columns: list[pa.ChunkedArray], header: list[str | None], filled: int
) -> tuple[list[pa.ChunkedArray], list[str | None]]:
    """Columns without a header and without data at the right end are formatting, not data.

    `filled` counts columns known to hold data in rows not kept here (a preview's tail).
    """
    while (
        len(columns) > filled and header[-1] is None and columns[-1].null_count == len(columns[-1])
    ):
        columns, header = columns[:-1], header[:-1]
    return columns, header


def _header_text(value: str | None) -> str | None:
    """A header cell without the BOM or zero-width marks some exporters leave in it."""
    return (value or "").strip(ZERO_WIDTH + " \t\r\n\xa0") or None


def _column_names(header: list[str | None], names: Names, file: SourceFile) -> tuple[str, ...]:
    if names.given is not None:
        if len(names.given) != len(header):
            raise SourceError(
                f"You gave {len(names.given)} header{'s' * (len(names.given) != 1)} but "
                f"{file.label} has {len(header)} column{'s' * (len(header) != 1)}; give one "
                "header per column, in file order",
                field="headers",
            )
        header = [_header_text(name) for name in names.given]
    return _unique(header)


def _unique(header: Sequence[str | None]) -> tuple[str, ...]:
    """Blank names become "Column 3" (their position); repeats become "Phone (2)"."""
    labels: list[str] = []
    for position, name in enumerate(header, start=1):
        label = name or f"Column {position}"
        if label in labels:
            label = next(
                f"{label} ({n})"
                for n in range(2, len(header) + 2)
                if f"{label} ({n})" not in labels and f"{label} ({n})" not in header
            )
        labels.append(label)
    return tuple(labels)


def _text_dtype(arrow_type: pa.DataType) -> pd.StringDtype | None:
    if pa.types.is_large_string(arrow_type) or pa.types.is_string(arrow_type):
        return pd.StringDtype("pyarrow")
    return None


def _too_long(parsed: Parsed, file: SourceFile, names: Names, delimiter: str | None) -> SourceError:
    rows = parsed.too_long
    listed = ", ".join(str(row) for row in rows[:LISTED_ROWS])
    more = f" and {len(rows) - LISTED_ROWS} more" if len(rows) > LISTED_ROWS else ""
    reference = "the header has" if names.has_header else "the first row has"
    shown = {"\t": "tab", None: "delimiter"}.get(delimiter, f"'{delimiter}'")
    return SourceError(
        f"Row{'s' * (len(rows) > 1)} {listed}{more} of {file.label} "
        f"{'have' if len(rows) > 1 else 'has'} more values than {reference} columns "
        f"({parsed.width}); a value probably contains the {shown} without quotes. Put such "
        "values in double quotes, or export the file again"
    )
