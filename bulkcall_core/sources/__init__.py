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
Only `SourceError` and `ColumnNotFoundError` leave this package, with a message that names the
file and the problem and says what to do.

Decisions on messy input (the issue leaves them open):
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

Modules: `reading` (the two entry points), `files` (what the input is), `text` (encodings and
delimiters), `delimited` (CSV), `workbooks` (calamine), `grid` (records to a `Table`),
`table` (the result types), `columns` (finding and suggesting columns).
"""

from bulkcall_core.sources.columns import require_column, suggest_columns
from bulkcall_core.sources.files import SUPPORTED_EXTENSIONS
from bulkcall_core.sources.reading import read_preview, read_table
from bulkcall_core.sources.table import Preview, Table

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Preview",
    "Table",
    "read_preview",
    "read_table",
    "require_column",
    "suggest_columns",
]
