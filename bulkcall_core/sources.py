"""Reading contact files (CSV, Excel, OpenDocument) into a `Table` of text.

Files come "exported from another system": any encoding a spreadsheet program writes, any of the
usual delimiters, blank rows anywhere, a header row or none, phones stored as numbers. Every
cell comes out as text (or missing when blank), never as a number, so `4155550106` stays
`4155550106` and `+14155550100` keeps its plus. Each data row keeps the row number a
spreadsheet shows for it (header = row 1), blank rows included in the count.

- `read_table(source, ...)` reads the whole file; `read_preview(source, ...)` returns every
  column name plus the first rows, reading only the beginning of a CSV.
- `require_column(table, name)` finds a column the user named; `suggest_columns(table)` guesses
  the phone and the name columns.

The format is decided by content (magic bytes), with the file name as a hint: a CSV named
`.xlsx` is read as CSV (and says so in `Table.notes`); a picture or a PDF named `.csv` is refused.
Only `SourceError` and `ColumnNotFoundError` leave this module, with a message that names the
file and the problem and says what to do.

Decisions on messy input (documented here because the issue leaves them open):
- Blank rows (empty, whitespace only, delimiters only) are dropped wherever they are; the first
  non-blank row is the header.
- Cells are trimmed of surrounding whitespace (including no-break spaces from Excel exports);
  an empty cell is missing (`pd.NA`).
- CSV rows with fewer values than the header are padded with blanks (exporters drop trailing
  empty fields). Rows with more values are an error naming the rows, unless the extra values are
  blank (trailing delimiters): extra values almost always mean a value containing the delimiter
  without quotes, which shifts the phone into another column. In a workbook every cell has a
  real column, so a value right of the header gets a column of its own ("Column 9").
- A quote that is never closed (it would swallow the rest of the file into one value) is an
  error naming its row.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import os
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import python_calamine

from bulkcall_core.errors import ColumnNotFoundError, SourceError

SUPPORTED_EXTENSIONS = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls", ".ods")
WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".xlsb")
DELIMITERS = (",", ";", "\t", "|")  # in order of preference when two fit equally well
# A file where no delimiter fits is one column: split it on a character text never holds.
ONE_COLUMN = "\x1f"

PREVIEW_ROWS = 50  # what the dashboard shows under the upload
SNIFF_BYTES = 64 * 1024  # head decoded to detect encoding and delimiter: hundreds of rows
SNIFF_RECORDS = 50  # records compared when detecting the delimiter
PREVIEW_FIRST_BYTES = 256 * 1024  # a preview's first read; 50 rows of even wide exports fit
PREVIEW_MAX_BYTES = 32 * 1024 * 1024  # a preview never reads more (rows of 600 KB are absurd)
ARROW_BLOCK_BYTES = 4 * 1024 * 1024  # pyarrow's parse block; ~25 progress steps for 100 MB
MAX_COLUMNS = 16384  # Excel's own limit; pyarrow is told every column up to it is text
FALLBACK_PROGRESS_EVERY = 50_000  # records between progress reports on the slow CSV path
LISTED_ROWS = 5  # row numbers named in an error before "and N more"
LISTED_COLUMNS = 30  # column names listed in a "column not found" error before "and N more"
BINARY_CONTROL_SHARE = 0.05  # text files have next to no control characters; binaries ~25%
SUGGEST_SAMPLE_ROWS = 1000  # rows looked at to judge whether a column holds phone numbers
PHONE_LIKE_SHARE = 0.6  # share of phone-looking cells for a column to count as phones

# Undefined in Windows-1252 (and so never in a real cp1252 file): such a file is Latin-1.
CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
ZERO_WIDTH = "\ufeff\u200b\u200c\u200d\u2060"
TEXT = pa.large_string()  # what pandas' Arrow-backed text dtype holds: no copy into pandas
NOTHING = pa.scalar(None, TEXT)


@dataclass(frozen=True, eq=False)
class Table:
    """A contact file read as text.

    `data` has one column per name in `columns` (same order), each of pandas' Arrow-backed
    text dtype (`string[pyarrow]`): every cell is a `str`, or missing (`pd.NA`) when blank;
    never a number. `values(column)` gives a column as a list of `str | None`. Blank rows are
    dropped; `row_numbers[i]` is the spreadsheet row of data row i (header = row 1).
    """

    columns: tuple[str, ...]
    data: pd.DataFrame
    row_numbers: np.ndarray
    sheet: str | None = None
    sheet_names: tuple[str, ...] = ()
    encoding: str | None = None
    delimiter: str | None = None
    notes: tuple[str, ...] = ()  # things the user should know, e.g. "read as CSV despite .xlsx"

    def __len__(self) -> int:
        return len(self.data)

    def values(self, column: str) -> list[str | None]:
        """The cells of `column` in row order, `None` for blanks (KeyError for an unknown name)."""
        return self.data[column].to_numpy(dtype=object, na_value=None).tolist()


@dataclass(frozen=True, eq=False)
class Preview(Table):
    """The first rows of a file, with every column name (same fields as `Table`)."""

    total_rows: int | None = None  # non-blank data rows when known without reading it all
    truncated: bool = False  # the file has more data rows than `data` shows


_T = TypeVar("_T")
ProgressCallback = Callable[[float], None]
Source = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO


def read_table(
    source: Source,
    *,
    filename: str | None = None,
    sheet: str | None = None,
    has_header: bool = True,
    headers: str | Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> Table:
    """Read a whole contact file into a `Table`.

    `source` is raw bytes (an upload's content), a path, or a binary file object (read from its
    start and left where it was). `filename` names the file in messages and hints its format;
    the content decides. `sheet` picks a workbook's sheet (default: the first visible one; it is
    ignored for CSV). With `has_header=False` the columns are named by `headers` ("a,b,c" or a
    sequence, one per column in file order) or "Column 1", "Column 2"... `progress` is called
    with fractions from 0 to 1 while reading.

    Raises SourceError for anything unreadable, with a message that names the file and the
    problem and says what to do.
    """
    report = _Progress(progress)
    names = _Names.from_options(has_header, headers)
    with _Input.open(source, filename) as file:
        kind, notes = _classify(file)
        if kind == "csv":
            table = _read_csv(file, names, report)
        else:
            table = _read_workbook(file, sheet, names, report, limit=None)
    report(1.0)
    return _with_notes(table, notes)


def read_preview(
    source: Source,
    *,
    filename: str | None = None,
    sheet: str | None = None,
    has_header: bool = True,
    headers: str | Sequence[str] | None = None,
    max_rows: int = PREVIEW_ROWS,
) -> Preview:
    """All column names plus the first `max_rows` data rows, without reading a whole CSV.

    Same arguments and errors as `read_table`. A CSV is read from its beginning only (more is
    read only while `max_rows` rows do not fit), so `total_rows` is None for a large CSV; a
    workbook's sheet has to be parsed whole, so its `total_rows` is exact.
    """
    names = _Names.from_options(has_header, headers)
    with _Input.open(source, filename) as file:
        kind, notes = _classify(file)
        if kind == "csv":
            preview = _preview_csv(file, names, max_rows)
        else:
            preview = _read_workbook(file, sheet, names, _Progress(None), limit=max_rows)
    return _with_notes(preview, notes)


# --- the input: bytes, a path or a file object ------------------------------------------------


class _Input:
    """One contact file, whatever it came as; reads only what is asked for."""

    def __init__(self, label: str, extension: str) -> None:
        self.label = label  # the file as messages name it: 'contacts.csv', or "the file"
        self.extension = extension  # lower-case suffix of the given name, "" when none
        self._data: bytes | None = None
        self._path: Path | None = None
        self._file: BinaryIO | None = None
        self._position: int | None = None

    @property
    def title(self) -> str:
        """`label` at the start of a sentence."""
        return self.label[:1].upper() + self.label[1:]

    @classmethod
    def open(cls, source: Source, filename: str | None) -> _Input:
        name = filename or _source_name(source)
        file = cls(f"'{Path(name).name}'" if name else "the file", Path(name or "").suffix.lower())
        if isinstance(source, bytes | bytearray | memoryview):
            file._data = bytes(source) if not isinstance(source, bytes) else source
        elif isinstance(source, str | os.PathLike):
            file._path = _existing_path(Path(source), file.title)
        elif hasattr(source, "read"):
            file._attach(source)
        else:
            raise SourceError(f"{file.title} is not a file (got {type(source).__name__})")
        return file

    def __enter__(self) -> _Input:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and self._position is not None:
            self._file.seek(self._position)  # leave a caller's file object where it was

    def _attach(self, handle: BinaryIO) -> None:
        self._file = handle
        if _seekable(handle):
            self._position = handle.tell()
            handle.seek(0)

    def head(self, size: int) -> bytes:
        """The first `size` bytes (fewer when the file is shorter)."""
        if self._data is None and self._path is not None:
            with _opened(self._path, self.title) as handle:
                return handle.read(size)
        if self._data is None and self._file is not None and _seekable(self._file):
            self._file.seek(0)
            return self._bytes(self._file.read(size))
        return self.read_all()[:size]  # bytes, or a file that cannot go back: read it once

    def read_all(self) -> bytes:
        """Every byte of the file."""
        if self._data is None and self._path is not None:
            with _opened(self._path, self.title) as handle:
                self._data = handle.read()
        elif self._data is None and self._file is not None:
            if _seekable(self._file):
                self._file.seek(0)
            self._data = self._bytes(self._file.read())
        assert self._data is not None
        return self._data

    @property
    def path(self) -> Path | None:
        """The file's path when it was given as one and has not been read into memory."""
        return self._path if self._data is None else None

    def buffer(self) -> BinaryIO:
        """A seekable binary file over the whole content (for zipfile and calamine)."""
        if self._data is None and self._path is not None:
            return _opened(self._path, self.title)
        return io.BytesIO(self.read_all())

    def _bytes(self, chunk: object) -> bytes:
        if not isinstance(chunk, bytes | bytearray):
            raise SourceError(f"{self.title} was opened as text; open it in binary mode ('rb')")
        return bytes(chunk)


def _source_name(source: object) -> str | None:
    name = (
        os.fspath(source)
        if isinstance(source, str | os.PathLike)
        else getattr(source, "name", None)
    )
    return name if isinstance(name, str) else None


def _existing_path(path: Path, label: str) -> Path:
    if not path.exists():
        raise SourceError(f"{label} does not exist ({path}); check the path")
    if path.is_dir():
        raise SourceError(f"{label} is a folder, not a file ({path}); give the contact file")
    return path


def _opened(path: Path, label: str) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise SourceError(
            f"{label} cannot be opened ({exc.strerror}); check its permissions"
        ) from exc


def _seekable(handle: BinaryIO) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, OSError, ValueError):
        return False


# --- what the content is ----------------------------------------------------------------------

MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document"),
    (b"ID3", "an MP3 recording"),
    (b"RIFF", "a WAV recording"),
    (b"FORM", "an AIFF recording"),
    (b"OggS", "an Ogg recording"),
    (b"fLaC", "a FLAC recording"),
)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE compound file: .xls, encrypted .xlsx, .doc
ENCRYPTED_OOXML_STREAM = "EncryptionInfo".encode("utf-16-le")
MARKUP = (
    ("<!doctype html", "a web page (HTML)"),
    ("<html", "a web page (HTML)"),
    ("<table", "a web page (HTML)"),
    ("<?xml", "an XML document"),
    ('{"', "a JSON document"),
    ("[{", "a JSON document"),
)


def _classify(file: _Input) -> tuple[str, tuple[str, ...]]:
    """'csv' or 'workbook', plus notes when the name said otherwise; raises for anything else."""
    head = file.head(SNIFF_BYTES)
    if not head:
        raise SourceError(f"{file.title} is empty (0 bytes); export the contacts again and upload")
    if head.startswith(ZIP_MAGIC) or head.startswith(CFB_MAGIC):
        _check_container(file, head)
        if file.extension in (".csv", ".txt", ".tsv"):
            return "workbook", (
                f"{file.title} is named {file.extension} but holds a workbook; "
                "it was read as a workbook.",
            )
        return "workbook", ()
    looks_like = _looks_like(head)
    if looks_like is not None:
        raise _not_a_spreadsheet(file, looks_like)
    if file.extension in WORKBOOK_EXTENSIONS:
        return "csv", (
            f"{file.title} is named {file.extension} but holds text (CSV), not a "
            "workbook; it was read as CSV.",
        )
    return "csv", ()


def _looks_like(head: bytes) -> str | None:
    """What a non-CSV file looks like, or None when the head reads as delimited text."""
    for magic, description in MAGIC:
        if head.startswith(magic):
            return description
    bom = _bom_encoding(head)
    encoding = bom or _bomless_utf16(head) or "latin-1"
    text = head.decode(encoding, errors="replace").lstrip(ZERO_WIDTH + " \t\r\n")
    for start, description in MARKUP:
        if text[:64].lower().startswith(start):
            return description
    if bom is None and _is_binary(text):
        return "binary data"
    return None


def _is_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    controls = sum(1 for char in text if char < " " and char not in "\t\r\n\f\v")
    return controls > BINARY_CONTROL_SHARE * max(len(text), 1)


def _not_a_spreadsheet(file: _Input, looks_like: str) -> SourceError:
    if file.extension in WORKBOOK_EXTENSIONS:
        return SourceError(
            f"{file.title} is named {file.extension} but is not an Excel workbook (its content "
            f"looks like {looks_like}); export it again from the other system as .xlsx or .csv"
        )
    return SourceError(
        f"{file.title} is not a CSV or Excel file (its content looks like {looks_like}); "
        "upload the contacts as .csv, .xlsx, .xls or .ods"
    )


def _check_container(file: _Input, head: bytes) -> None:
    """Raise unless a ZIP or OLE container holds a workbook calamine can read."""
    if head.startswith(CFB_MAGIC):
        if ENCRYPTED_OOXML_STREAM in file.read_all():
            raise _password_protected(file)
        return
    looks_like = _zip_contents(file)
    if looks_like is not None:
        raise _not_a_spreadsheet(file, looks_like)


def _zip_contents(file: _Input) -> str | None:
    """None for a workbook's ZIP, else what the archive looks like."""
    try:
        with zipfile.ZipFile(file.buffer()) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _damaged(file) from exc
    if any(name in names for name in ("xl/workbook.xml", "xl/workbook.bin", "content.xml")):
        return None
    if any(name.startswith("word/") for name in names):
        return "a Word document"
    if any(name.startswith("ppt/") for name in names):
        return "a PowerPoint presentation"
    if any(name.startswith("Index/") for name in names):
        return "an Apple Numbers file (export it from Numbers as .xlsx or .csv)"
    inner = ", ".join(Path(name).name for name in names[:3]) or "nothing"
    return f"a ZIP archive holding {inner}; unzip it and upload the file inside"


def _damaged(file: _Input) -> SourceError:
    return SourceError(
        f"{file.title} is damaged or incomplete (its workbook data is cut off or corrupt); "
        "download or export it again and upload the new file"
    )


def _password_protected(file: _Input) -> SourceError:
    return SourceError(
        f"{file.title} is password-protected; remove the password in Excel "
        "(File > Info > Protect Workbook) and upload again"
    )


# --- encodings and delimiters -----------------------------------------------------------------


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without a BOM shows as ASCII with a zero byte beside every character."""
    sample = head[:4096]
    half = len(sample) // 2
    if half < 2:
        return None
    even_zeros, odd_zeros = sample[0::2].count(0), sample[1::2].count(0)
    if odd_zeros > 0.3 * half and even_zeros < 0.05 * half:
        return "utf-16-le"
    if even_zeros > 0.3 * half and odd_zeros < 0.05 * half:
        return "utf-16-be"
    return None


def _detect_encoding(data: bytes, complete: bool) -> str:
    """The codec for `data`: a BOM's, else UTF-8 when it decodes strictly, else cp1252/latin-1.

    `complete` is False for a head cut from a larger file: a character cut at the end is fine.
    """
    encoding = _bom_encoding(data) or _bomless_utf16(data)
    if encoding is not None:
        return encoding
    if _is_utf8(data, complete):
        return "utf-8"
    if any(byte in data for byte in CP1252_UNDEFINED):
        return "latin-1"
    return "cp1252"


def _is_utf8(data: bytes, complete: bool) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    view, step = memoryview(data), 1 << 20  # in slices, so a 100 MB file is not held as text
    try:
        for start in range(0, len(data), step):
            decoder.decode(view[start : start + step], final=complete and start + step >= len(data))
    except UnicodeDecodeError:
        return False
    return True


def _display_encoding(encoding: str) -> str:
    return {"utf-8-sig": "utf-8"}.get(encoding, encoding)


def _decode_head(data: bytes, encoding: str, complete: bool) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(data, final=complete)


def _sniff_delimiter(sample: str, complete: bool) -> str | None:
    """The delimiter that splits the first records like the first one (the header), 2+ fields.

    csv.Sniffer guesses from character frequencies and often picks a letter or a space;
    counting fields with the csv module itself respects quotes. The first record sets the
    width, so a candidate must split it into 2+ fields; the one most records agree with wins,
    ties going to the earlier of `DELIMITERS`. None means one column; but a delimiter that
    makes every record blank (",,,") is taken, so such a file reads as blank, not as text.
    """
    best: tuple[tuple[bool, float, int, int], str] | None = None
    blanks_only = None
    for rank, delimiter in enumerate(DELIMITERS):
        counts = _field_counts(sample, delimiter, complete)
        if counts is None or (not counts and delimiter not in sample):
            continue
        if not counts:
            blanks_only = blanks_only or delimiter
            continue
        width = counts[0]
        share = counts.count(width) / len(counts)
        score = (share == 1.0, share, width, -rank)
        if width >= 2 and (best is None or score > best[0]):
            best = (score, delimiter)
    return blanks_only if best is None else best[1]


def _field_counts(sample: str, delimiter: str, complete: bool) -> list[int] | None:
    """Fields per non-blank record of the sample; None when the csv module gives up."""
    counts: list[int] = []
    try:
        for record in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            if any(field.strip() for field in record):
                counts.append(len(record))
            if len(counts) > SNIFF_RECORDS:
                break
    except csv.Error:
        return None
    if not complete and len(counts) > 1:
        counts.pop()  # the last record of a cut sample may be cut too
    return counts


# --- CSV --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Names:
    """How the columns get their names: the file's header row, given headers, or numbers."""

    has_header: bool
    given: tuple[str, ...] | None

    @classmethod
    def from_options(cls, has_header: bool, headers: str | Sequence[str] | None) -> _Names:
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
        headers = next(csv.reader([headers], skipinitialspace=True))
    return tuple(str(header) for header in headers) or None


_ARROW_TEXT = pacsv.ConvertOptions(
    column_types={f"f{index}": TEXT for index in range(MAX_COLUMNS)},
    strings_can_be_null=True,
    quoted_strings_can_be_null=True,
    null_values=[""],  # only empty is blank: "NA", "null" and "N/A" are somebody's text
)


def _read_csv(file: _Input, names: _Names, report: _Progress) -> Table:
    data = file.read_all()
    encoding = _detect_encoding(data, complete=True)
    whole = len(data) <= SNIFF_BYTES
    sample = _decode_head(data[:SNIFF_BYTES], encoding, complete=whole)
    delimiter = _sniff_delimiter(sample, whole)
    report(0.05)
    parsed = _parse_with_arrow(data, encoding, delimiter, report)
    if parsed is None:  # input pyarrow cannot take exactly: the csv module reads it row by row
        text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")
        parsed = _parse_records(
            _records(text, delimiter, file),
            width_from_first=True,
            progress=_fallback_progress(report, text, len(data)),
        )
        _check_quotes(parsed, data, encoding, file)
    report(0.9)
    return _build(parsed, names, file, encoding=_display_encoding(encoding), delimiter=delimiter)


def _parse_with_arrow(
    data: bytes, encoding: str, delimiter: str | None, report: _Progress
) -> _Parsed | None:
    """pyarrow's parser (~10x the csv module), or None when the input needs the exact path.

    pyarrow keeps blank lines as all-missing rows (so row numbers stay right) but refuses
    whitespace-only lines and rows of another width; UTF-16 and an odd number of quotes (a
    quote that may never close) also go to the csv module, which reports them exactly.
    With a progress callback the file is parsed block by block (reporting after each, on the
    caller's thread); without one, in one call that parses blocks in parallel.
    """
    if encoding.startswith("utf-16") or data.count(b'"') % 2:
        return None
    body = pa.py_buffer(memoryview(data)[len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0 :])
    options = {
        "read_options": pacsv.ReadOptions(
            autogenerate_column_names=True,
            block_size=ARROW_BLOCK_BYTES,
            encoding="utf8" if encoding.startswith("utf-8") else encoding,
        ),
        "parse_options": pacsv.ParseOptions(
            delimiter=delimiter or ONE_COLUMN, newlines_in_values=True, ignore_empty_lines=False
        ),
        "convert_options": _ARROW_TEXT,
    }
    try:
        if report.silent:
            table = pacsv.read_csv(pa.BufferReader(body), **options)
        else:
            table = _arrow_blocks(pacsv.open_csv(pa.BufferReader(body), **options), body, report)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, LookupError):
        return None
    if any(column.type != TEXT for column in table.columns):
        return None  # wider than MAX_COLUMNS: pyarrow inferred types beyond our list
    return _Parsed(list(table.columns), np.arange(1, table.num_rows + 1, dtype=np.int64))


def _arrow_blocks(reader: pacsv.CSVStreamingReader, body: pa.Buffer, report: _Progress) -> pa.Table:
    batches = []
    for batch in reader:
        batches.append(batch)
        report(0.05 + 0.75 * min(1.0, len(batches) * ARROW_BLOCK_BYTES / max(body.size, 1)))
    return pa.Table.from_batches(batches, schema=reader.schema)


def _records(text: Iterable[str], delimiter: str | None, file: _Input) -> Iterator[list[str]]:
    """csv records; a field past csv's size limit can only be a quote left open."""
    reader = csv.reader(text, delimiter=delimiter or ONE_COLUMN)
    count = 0
    try:
        for record in reader:
            count += 1
            yield record
    except csv.Error as exc:
        raise _open_quote(file, count + 1) from exc
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{file.title} is not valid {exc.encoding} text after row {count}; save it again as "
            "UTF-8 CSV and upload that"
        ) from exc


def _open_quote(file: _Input, row: int) -> SourceError:
    return SourceError(
        f'Row {row} of {file.label} opens a quote (") that is never closed, so the rest of the '
        "file would be read as one value; close the quote in that row or export the file again"
    )


def _check_quotes(parsed: _Parsed, data: bytes, encoding: str, file: _Input) -> None:
    """An unclosed quote swallows the file's tail into the last row's last value: refuse it."""
    if not len(parsed.row_numbers) or not parsed.columns:
        return
    if encoding.startswith("utf-16"):
        quotes = data.decode(encoding, errors="replace").count('"')
    else:
        quotes = data.count(b'"')
    if quotes % 2 == 0:
        return
    last = [column[-1].as_py() for column in parsed.columns]
    swallowed = next((value for value in reversed(last) if value), "")
    if re.search(r"[\r\n]", swallowed.strip()):
        raise _open_quote(file, int(parsed.row_numbers[-1]))


def _fallback_progress(
    report: _Progress, text: io.TextIOWrapper, size: int
) -> Callable[[int], None]:
    def update(_records: int) -> None:
        report(0.05 + 0.8 * text.buffer.tell() / max(size, 1))

    return update


def _preview_csv(file: _Input, names: _Names, max_rows: int) -> Preview:
    """Parse only the file's head, growing it until `max_rows` rows (and one more) fit."""
    size = PREVIEW_FIRST_BYTES
    while True:
        head = file.head(size + 1)
        complete = len(head) <= size
        head = head[:size]
        encoding = _detect_encoding(head, complete)
        text = _decode_head(head, encoding, complete)
        whole = complete and len(text) <= SNIFF_BYTES
        delimiter = _sniff_delimiter(text[:SNIFF_BYTES], whole)
        wanted = max_rows + 1 + names.has_header  # one more row than shown tells "truncated"
        records = _records(io.StringIO(text, newline=""), delimiter, file)
        parsed = _parse_records(
            _whole_records(records, complete), width_from_first=True, limit=wanted
        )
        if complete or len(parsed.row_numbers) >= wanted or size >= PREVIEW_MAX_BYTES:
            break
        size *= 4
    if complete:
        _check_quotes(parsed, head, encoding, file)
    table = _build(parsed, names, file, encoding=_display_encoding(encoding), delimiter=delimiter)
    total = parsed.counted - names.has_header if complete else None
    return _preview_of(table, max_rows, total=total)


def _whole_records(records: Iterator[list[str]], complete: bool) -> Iterator[list[str]]:
    """All records, less the last one of a cut head (it may be cut too)."""
    previous = None
    for record in records:
        if previous is not None:
            yield previous
        previous = record
    if previous is not None and complete:
        yield previous


# --- workbooks --------------------------------------------------------------------------------


def _read_workbook(
    file: _Input, sheet: str | None, names: _Names, report: _Progress, limit: int | None
) -> Table:
    """A workbook's sheet through calamine; `limit` keeps only that many data rows (a preview)."""
    workbook = _open_workbook(file)
    try:
        sheet_names = tuple(workbook.sheet_names)
        chosen = _choose_sheet(workbook, sheet, file)
        report(0.05)
        worksheet = _calamine_call(file, lambda: workbook.get_sheet_by_name(chosen))
        report(0.5)  # calamine has parsed the sheet; converting cells to text is the rest

        def converted(rows: int) -> None:
            report(0.5 + 0.4 * rows / max(worksheet.height, 1))

        grid = _parse_records(
            _text_rows(worksheet.iter_rows(), file),
            width_from_first=False,
            limit=None if limit is None else limit + 1 + names.has_header,
            progress=converted,
        )
        total = grid.counted if limit is not None else None
    finally:
        workbook.close()
    if not len(grid.row_numbers):
        raise SourceError(
            f"Sheet '{chosen}' of {file.label} is empty; pick the sheet that holds the contacts "
            f"(sheets: {', '.join(sheet_names)})",
            field="sheet",
        )
    table = _build(grid, names, file, sheet=chosen, sheet_names=sheet_names)
    if limit is None:
        return table
    return _preview_of(table, limit, total=None if total is None else total - names.has_header)


def _open_workbook(file: _Input) -> python_calamine.CalamineWorkbook:
    if file.path is not None:
        return _calamine_call(file, lambda: python_calamine.CalamineWorkbook.from_path(file.path))
    return _calamine_call(
        file, lambda: python_calamine.CalamineWorkbook.from_filelike(file.buffer())
    )


def _calamine_call(file: _Input, call: Callable[[], _T]) -> _T:
    """`call()`, with calamine's errors turned into messages a person can act on."""
    try:
        return call()
    except python_calamine.PasswordError as exc:
        raise _password_protected(file) from exc
    except python_calamine.ZipError as exc:
        raise _damaged(file) from exc
    except (python_calamine.CalamineError, ValueError, OSError, EOFError) as exc:
        raise SourceError(
            f"{file.title} could not be read as a workbook ({_first_line(exc)}); open it in Excel "
            "or LibreOffice, save it again as .xlsx, and upload that"
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _choose_sheet(
    workbook: python_calamine.CalamineWorkbook, sheet: str | None, file: _Input
) -> str:
    names = list(workbook.sheet_names)
    if sheet is None or not sheet.strip():
        visible = [
            meta.name
            for meta in workbook.sheets_metadata
            if meta.visible == python_calamine.SheetVisibleEnum.Visible
            and meta.typ == python_calamine.SheetTypeEnum.WorkSheet
        ]
        if visible or names:
            return (visible or names)[0]
        raise SourceError(f"{file.title} has no sheets; export the contacts again")
    if sheet in names:
        return sheet
    folded = [name for name in names if _fold(name) == _fold(sheet)]
    if len(folded) == 1:
        return folded[0]
    raise SourceError(
        f"Sheet '{sheet}' not found in {file.label}; its sheets are: {', '.join(names)}",
        field="sheet",
    )


def _text_rows(rows: Iterable[list[object]], file: _Input) -> Iterator[list[str | None]]:
    try:
        for row in rows:
            yield [value if type(value) is str else _cell_text(value) for value in row]
    except python_calamine.CalamineError as exc:
        raise _damaged(file) from exc


def _cell_text(value: object) -> str | None:
    """A workbook cell as the text a person reads in it; phones stored as numbers keep digits.

    calamine returns every number as a float: 4155550106.0 must become "4155550106".
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


# --- from records to a Table ------------------------------------------------------------------


@dataclass
class _Parsed:
    """Columns of raw text (missing for blank) and the spreadsheet row number of each row."""

    columns: list[pa.Array | pa.ChunkedArray]
    row_numbers: np.ndarray
    counted: int = 0  # non-blank rows seen, also past a `limit`
    too_long: list[int] = field(default_factory=list)  # rows with values right of the header
    width: int = 0  # values per row
    filled: int = 0  # columns holding a value in some row, also rows past a `limit`


def _parse_records(
    records: Iterable[Sequence[str | None]],
    *,
    width_from_first: bool,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> _Parsed:
    """Non-blank records as columns, numbered as a spreadsheet numbers rows (blank rows count).

    With `width_from_first` (CSV) the first non-blank record sets the width: shorter records
    are padded, longer ones with non-blank extras are noted in `too_long`. Otherwise (a sheet,
    where every cell has its column) the widest record sets it. Past `limit` rows, records are
    only counted.
    """
    cells: list[list[str | None]] = []
    numbers: list[int] = []
    parsed = _Parsed([], np.empty(0, dtype=np.int64))
    for number, record in enumerate(records, start=1):
        if progress is not None and number % FALLBACK_PROGRESS_EVERY == 0:
            progress(number)
        last = _last_filled(record)
        if not last:
            continue
        parsed.counted += 1
        if limit is None or len(numbers) < limit:
            _place(record, cells, parsed, width_from_first, number)
            numbers.append(number)
        parsed.filled = max(parsed.filled, min(last, parsed.width) if width_from_first else last)
    parsed.columns = [pa.array(column, TEXT) for column in cells]
    parsed.row_numbers = np.asarray(numbers, dtype=np.int64)
    return parsed


def _last_filled(record: Sequence[str | None]) -> int:
    """1 + the index of the record's last non-blank value; 0 for a blank record."""
    for index in range(len(record) - 1, -1, -1):
        value = record[index]
        if value and not value.isspace():
            return index + 1
    return 0


def _place(
    record: Sequence[str | None],
    cells: list[list[str | None]],
    parsed: _Parsed,
    width_from_first: bool,
    number: int,
) -> None:
    """Append one record to the column lists, widening or trimming as the rules say."""
    if not cells:
        parsed.width = len(record)
    if len(record) > parsed.width:
        if width_from_first:
            if any(value and not value.isspace() for value in record[parsed.width :]):
                parsed.too_long.append(number)
            record = record[: parsed.width]
        else:
            for _ in range(len(record) - parsed.width):
                cells.append([None] * (len(cells[0]) if cells else 0))
            parsed.width = len(record)
    while len(cells) < parsed.width:
        cells.append([])
    for index, column in enumerate(cells):
        column.append(record[index] if index < len(record) else None)


def _build(
    parsed: _Parsed,
    names: _Names,
    file: _Input,
    *,
    sheet: str | None = None,
    sheet_names: tuple[str, ...] = (),
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Table:
    """Trim cells, drop blank rows, take the header, name the columns: the finished Table."""
    columns, numbers = _clean(parsed)
    if parsed.too_long:
        raise _too_long(parsed, file, names, delimiter)
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


def _clean(parsed: _Parsed) -> tuple[list[pa.ChunkedArray], np.ndarray]:
    """Cells trimmed of whitespace, empty ones missing, and all-blank rows dropped.

    Columns are replaced one at a time, so a large file is never held twice.
    """
    columns = parsed.columns
    for index, column in enumerate(columns):
        columns[index] = _trimmed(column)
    if not columns:
        return [], np.empty(0, dtype=np.int64)
    filled = reduce(pc.or_, (pc.is_valid(column) for column in columns))
    keep = (
        np.asarray(filled, dtype=bool)
        if isinstance(filled, pa.Array)
        else (filled.to_numpy(zero_copy_only=False).astype(bool))
    )
    if keep.all():
        return columns, parsed.row_numbers
    mask = pa.array(keep)
    return [column.filter(mask) for column in columns], parsed.row_numbers[keep]


def _trimmed(column: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column], TEXT)
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


def _column_names(header: list[str | None], names: _Names, file: _Input) -> tuple[str, ...]:
    if names.given is not None:
        if len(names.given) != len(header):
            raise SourceError(
                f"You gave {len(names.given)} header{'s' * (len(names.given) != 1)} but "
                f"{file.title} has {len(header)} column{'s' * (len(header) != 1)}; give one "
                "header per column, in file order",
                field="headers",
            )
        header = [_header_text(name) for name in names.given]
    return _unique(header)


def _unique(header: Sequence[str | None]) -> tuple[str, ...]:
    """Blank names become "Column 3" (their position); repeats become "Phone (2)"."""
    labels: list[str] = []
    taken: set[str] = set()
    for position, name in enumerate(header, start=1):
        label = name or f"Column {position}"
        if label in taken:
            label = next(
                f"{label} ({n})"
                for n in range(2, len(header) + 2)
                if f"{label} ({n})" not in taken and f"{label} ({n})" not in header
            )
        labels.append(label)
        taken.add(label)
    return tuple(labels)


def _text_dtype(arrow_type: pa.DataType) -> pd.StringDtype | None:
    if pa.types.is_large_string(arrow_type) or pa.types.is_string(arrow_type):
        return pd.StringDtype("pyarrow")
    return None


def _too_long(parsed: _Parsed, file: _Input, names: _Names, delimiter: str | None) -> SourceError:
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


def _preview_of(table: Table, max_rows: int, total: int | None) -> Preview:
    shown = min(max_rows, len(table))
    return Preview(
        columns=table.columns,
        data=table.data.iloc[:shown].reset_index(drop=True),
        row_numbers=table.row_numbers[:shown].copy(),
        sheet=table.sheet,
        sheet_names=table.sheet_names,
        encoding=table.encoding,
        delimiter=table.delimiter,
        total_rows=total,
        truncated=len(table) > shown,
    )


def _with_notes(table: Table, notes: tuple[str, ...]) -> Table:
    if not notes:
        return table
    return replace(table, notes=table.notes + notes)


class _Progress:
    """Calls the caller's progress callback with fractions that only go up, 0 to 1."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = -1.0
        self.silent = callback is None  # nobody is watching: take the fastest road

    def __call__(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if self._callback is not None and fraction > self._last:
            self._last = fraction
            self._callback(fraction)


# --- finding columns --------------------------------------------------------------------------


def require_column(table: Table, name: str, *, field: str = "phone_column") -> str:
    """The exact name of the column the user called `name`.

    An exact match wins; else a match ignoring case, accents and spacing ("mobile  phone" finds
    "Mobile Phone"). Raises ColumnNotFoundError (with `field`) naming the columns that exist.
    """
    wanted = (name or "").strip()
    if wanted in table.columns:
        return wanted
    matches = [column for column in table.columns if _fold(column) == _fold(wanted)]
    if len(matches) == 1:
        return matches[0]
    existing = _listed(table.columns)
    if not wanted:
        raise ColumnNotFoundError(f"No column given; the file has: {existing}", field=field)
    if matches:
        raise ColumnNotFoundError(
            f"Column '{wanted}' matches several columns ({', '.join(matches)}); give the exact "
            "header",
            field=field,
        )
    raise ColumnNotFoundError(f"Column '{wanted}' not found; the file has: {existing}", field=field)


def _listed(columns: Sequence[str]) -> str:
    shown = ", ".join(columns[:LISTED_COLUMNS])
    more = len(columns) - LISTED_COLUMNS
    return shown + (f" and {more} more" if more > 0 else "")


def _fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form of a header."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.split())


PHONE_WORDS = frozenset(
    "phone phones mobile mobil cell cellphone cellular tel tele telephone telefon telefono "
    "whatsapp msisdn handy celular movil portable gsm sms".split()
)
PHONE_STEMS = (
    "phone",
    "mobil",
    "telef",
    "teleph",
    "whatsapp",
    "msisdn",
    "handy",
    "rufnummer",
    "celular",
)
NUMBER_WORDS = frozenset("number num no nr nummer numero".split())
NOT_PHONE_WORDS = frozenset("id zip postal postcode date amount email fax price code".split())
NAME_WORDS = frozenset("name fullname nom nombre nome naam contact customer recipient".split())
FIRST_NAME_WORDS = frozenset("first firstname given givenname prenom vorname".split())
NOT_NAME_WORDS = frozenset("last lastname surname family company user username file".split())
PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]{7,24}$")


def suggest_columns(table: Table) -> tuple[str | None, str | None]:
    """(likely phone column, likely name column), each None when no column fits.

    Phone: header words (phone, mobile, cell, tel, telefon, téléphone, whatsapp...) and the
    share of cells that look like phone numbers. Name: header words (name, full name, first
    name...) on a column that does not hold phone numbers.
    """
    shares = {column: _phone_share(table, column) for column in table.columns}
    phone = _best(table.columns, lambda column: _phone_score(column, shares[column]))
    name = _best(
        [column for column in table.columns if column != phone],
        lambda column: _name_score(column) if shares[column] < PHONE_LIKE_SHARE else 0,
    )
    return phone, name


def _best(columns: Iterable[str], score: Callable[[str], float]) -> str | None:
    scored = [(score(column), -index, column) for index, column in enumerate(columns)]
    best = max(scored, default=(0.0, 0, None))
    return best[2] if best[0] > 0 else None


def _words(header: str) -> set[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)  # "MobilePhone" -> "Mobile Phone"
    words = re.split(r"[^a-z0-9]+", _fold(spaced))
    joined = "".join(words)
    return {word for word in words if word} | {joined}


def _phone_score(column: str, share: float | None) -> float:
    words = _words(column)
    if words & NOT_PHONE_WORDS and not _is_phone_header(words):
        return 0.0
    header = 2.0 if _is_phone_header(words) else 0.5 if words & NUMBER_WORDS else 0.0
    if share is None:  # no data to judge by: the header alone
        return header
    if share < PHONE_LIKE_SHARE and header < 2.0:
        return 0.0
    return header + share


def _is_phone_header(words: set[str]) -> bool:
    return bool(words & PHONE_WORDS) or any(stem in word for word in words for stem in PHONE_STEMS)


def _phone_share(table: Table, column: str) -> float | None:
    sample = table.data[column].iloc[:SUGGEST_SAMPLE_ROWS]
    values = [value for value in sample.dropna().tolist() if value]
    if not values:
        return None
    digits = [value for value in values if PHONE_LIKE.match(value) and _digit_count(value) >= 7]
    return len(digits) / len(values)


def _digit_count(value: str) -> int:
    return sum(char.isdigit() for char in value)


def _name_score(column: str) -> float:
    words = _words(column)
    if words & {"fullname", "contactname", "customername", "recipientname"}:
        return 3.0
    if words & NOT_NAME_WORDS:
        return 0.0
    if words & FIRST_NAME_WORDS:
        return 2.0
    if "name" in words or words & NAME_WORDS:
        return 2.5 if _fold(column) in NAME_WORDS else 1.0
    return 0.0
