"""The two ways in: `read_table` (the whole file) and `read_preview` (its first rows)."""

from __future__ import annotations

from collections.abc import Sequence

from bulkcall_core.sources.delimited import preview_csv, read_csv
from bulkcall_core.sources.files import Source, SourceFile, classify
from bulkcall_core.sources.grid import Names
from bulkcall_core.sources.progress import Progress, ProgressCallback
from bulkcall_core.sources.table import Preview, Table, with_notes
from bulkcall_core.sources.workbooks import preview_workbook, read_workbook

PREVIEW_ROWS = 50  # what the dashboard shows under the upload


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
    on the caller's thread with fractions rising from 0 to 1.

    Raises SourceError for anything unreadable (empty, not a spreadsheet, damaged or
    password-protected workbook, unknown sheet, header count that differs from the columns,
    rows with more values than the header, a quote never closed...), with a message that names
    the file and the problem and says what to do.
    """
    report = Progress(progress)
    names = Names.from_options(has_header, headers)
    with SourceFile.open(source, filename) as file:
        kind, notes = classify(file)
        if kind == "csv":
            table = read_csv(file, names, report)
        else:
            table = read_workbook(file, sheet, names, report)
    report(1.0)
    return with_notes(table, notes)


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

    Same arguments and errors as `read_table`. A CSV is read from its beginning only (more only
    while `max_rows` rows do not fit), so `total_rows` is None when the file is larger than what
    was read; a workbook's sheet has to be parsed whole, so its `total_rows` is exact.
    """
    names = Names.from_options(has_header, headers)
    with SourceFile.open(source, filename) as file:
        kind, notes = classify(file)
        if kind == "csv":
            preview = preview_csv(file, names, max_rows)
        else:
            preview = preview_workbook(file, sheet, names, max_rows)
    return with_notes(preview, notes)
