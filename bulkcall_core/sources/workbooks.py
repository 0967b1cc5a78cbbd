""".xlsx, .xlsm, .xls and .ods through calamine; every cell as the text a person sees in it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import python_calamine

from bulkcall_core.errors import SourceError
from bulkcall_core.sources.columns import fold
from bulkcall_core.sources.files import SourceFile, damaged, password_protected
from bulkcall_core.sources.grid import Grid, Names, Parsed, build
from bulkcall_core.sources.progress import Progress
from bulkcall_core.sources.table import Preview, Table, preview_of

PROGRESS_EVERY = 20_000  # rows converted between progress reports

_T = TypeVar("_T")


def read_workbook(file: SourceFile, sheet: str | None, names: Names, report: Progress) -> Table:
    """A sheet as a Table. Raises SourceError for an unknown or empty sheet and for a workbook
    calamine cannot read."""
    parsed, chosen, sheet_names = _sheet_rows(file, sheet, names, report, limit=None)
    return build(parsed, names, file, sheet=chosen, sheet_names=sheet_names)


def preview_workbook(file: SourceFile, sheet: str | None, names: Names, max_rows: int) -> Preview:
    """The first `max_rows` rows of a sheet; calamine parses the whole sheet anyway, so the
    preview's `total_rows` is exact. Raises as `read_workbook`."""
    limit = max_rows + 1 + names.has_header  # one row more than shown tells "truncated"
    parsed, chosen, sheet_names = _sheet_rows(file, sheet, names, Progress(None), limit)
    table = build(parsed, names, file, sheet=chosen, sheet_names=sheet_names)
    return preview_of(table, max_rows, total=parsed.counted - names.has_header)


def _sheet_rows(
    file: SourceFile, sheet: str | None, names: Names, report: Progress, limit: int | None
) -> tuple[Parsed, str, tuple[str, ...]]:
    """The non-blank rows of the chosen sheet (up to `limit`), its name and every sheet's."""
    with _open_workbook(file) as workbook:
        chosen = _choose_sheet(workbook, sheet, file)
        sheet_names = tuple(workbook.sheet_names)
        report(0.05)
        worksheet = _calamine(file, lambda: workbook.get_sheet_by_name(chosen))
        report(0.5)  # calamine has parsed the sheet; converting cells to text is the rest
        grid = Grid(width_from_first=False, limit=limit)
        for number, row in enumerate(_text_rows(worksheet.iter_rows(), file), start=1):
            grid.add(number, row)
            if number % PROGRESS_EVERY == 0:
                report(0.5 + 0.4 * number / max(worksheet.height, 1))
        parsed = grid.finish()
    if not len(parsed.row_numbers):
        raise SourceError(
            f"Sheet '{chosen}' of {file.label} is empty; pick the sheet that holds the contacts "
            f"(sheets: {', '.join(sheet_names)})",
            field="sheet",
        )
    return parsed, chosen, sheet_names


def _open_workbook(file: SourceFile) -> python_calamine.CalamineWorkbook:
    path = file.path
    if path is not None:
        return _calamine(file, lambda: python_calamine.CalamineWorkbook.from_path(path))
    return _calamine(file, lambda: python_calamine.CalamineWorkbook.from_filelike(file.buffer()))


def _calamine(file: SourceFile, call: Callable[[], _T]) -> _T:
    """`call()`, with calamine's errors turned into messages a person can act on."""
    try:
        return call()
    except python_calamine.PasswordError as exc:
        raise password_protected(file) from exc
    except python_calamine.ZipError as exc:
        raise damaged(file) from exc
    except (python_calamine.CalamineError, ValueError, OSError, EOFError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SourceError(
            f"{file.title} could not be read as a workbook ({reason}); open it in Excel or "
            "LibreOffice, save it again as .xlsx, and upload that"
        ) from exc


def _choose_sheet(
    workbook: python_calamine.CalamineWorkbook, sheet: str | None, file: SourceFile
) -> str:
    """`sheet` (exactly, else ignoring case and spacing), or the first visible worksheet."""
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
    folded = [name for name in names if fold(name) == fold(sheet)]
    if len(folded) == 1:
        return folded[0]
    raise SourceError(
        f"Sheet '{sheet}' not found in {file.label}; its sheets are: {', '.join(names)}",
        field="sheet",
    )


def _text_rows(rows: Iterable[list[object]], file: SourceFile) -> Iterator[list[str | None]]:
    try:
        for row in rows:
            yield [value if type(value) is str else cell_text(value) for value in row]
    except python_calamine.CalamineError as exc:
        raise damaged(file) from exc


def cell_text(value: object) -> str | None:
    """A workbook cell as the text a person reads in it; phones stored as numbers keep digits.

    calamine returns every number as a float: 4155550106.0 must become "4155550106", and 3.5
    stays "3.5". Booleans read as Excel shows them (TRUE), dates and times as ISO text.
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
