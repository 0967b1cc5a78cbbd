"""Reading contact files: every file is generated here, in the formats other systems export."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
import xlwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msoffcrypto.format.ooxml import OOXMLFile
from openpyxl import Workbook

from bulkcall_core.errors import ColumnNotFoundError, SourceError
from bulkcall_core.sources import (
    Preview,
    Table,
    read_preview,
    read_table,
    require_column,
    suggest_columns,
)

CONTACTS = [
    ["Name", "Phone", "City"],
    ["Zoë Émilie", "+14155550100", "Montréal"],
    ["Jürgen Müller", "(415) 555-0101", "Köln"],
    ["Ann", "4155550102", "Paris €"],
]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom", "cp1252"]
DELIMITERS = [",", ";", "\t", "|"]


def csv_bytes(
    rows: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    newline: str = "\n",
) -> bytes:
    text = "".join(
        delimiter.join(quoted(cell, delimiter) for cell in row) + newline for row in rows
    )
    if encoding == "utf-16-be-bom":
        return b"\xfe\xff" + text.encode("utf-16-be")
    return text.encode(encoding)


def quoted(cell: str, delimiter: str) -> str:
    """A cell as spreadsheets write it (the csv module leaves a lone \\r unquoted: a new row)."""
    if any(char in cell for char in (delimiter, '"', "\r", "\n")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def cells(table: Table) -> list[list[str | None]]:
    return [table.values(column) for column in table.columns]


def write_xlsx(path: Path, rows: Sequence[Sequence[object]], title: str = "Contacts") -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


# --- CSV: encodings, delimiters, quoting ------------------------------------------------------


@pytest.mark.parametrize("delimiter", DELIMITERS, ids=["comma", "semicolon", "tab", "pipe"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_csv_any_encoding_and_delimiter_reads_the_same_text(encoding: str, delimiter: str) -> None:
    """Accents, the euro sign and the plus of a phone survive every encoding and delimiter."""
    table = read_table(csv_bytes(CONTACTS, delimiter=delimiter, encoding=encoding))
    assert table.columns == ("Name", "Phone", "City")
    assert cells(table) == [list(column) for column in zip(*CONTACTS[1:], strict=True)]
    assert table.delimiter == delimiter
    expected = {"utf-8-sig": "utf-8", "utf-16-be-bom": "utf-16"}.get(encoding, encoding)
    assert table.encoding == expected


def test_utf8_bom_is_not_part_of_the_first_header() -> None:
    table = read_table(b"\xef\xbb\xbfPhone,Name\n4155550100,Ann\n")
    assert table.columns == ("Phone", "Name")


def test_utf16_without_bom_is_detected() -> None:
    table = read_table(csv_bytes(CONTACTS, delimiter="\t").decode().encode("utf-16-le"))
    assert table.encoding == "utf-16-le"
    assert table.values("City") == ["Montréal", "Köln", "Paris €"]


def test_latin1_file_with_bytes_undefined_in_cp1252_is_read_as_latin1() -> None:
    """0x81 has no cp1252 character: the file is Latin-1 and must not fail to decode."""
    table = read_table(b"Name,Phone\nJos\xe9\x81,4155550100\n")
    assert table.encoding == "latin-1"
    assert table.values("Name") == ["José\x81"]


def test_cp1252_euro_sign_is_read() -> None:
    table = read_table(b"Name,Note\nAnn,\x80 5\n")
    assert (table.encoding, table.values("Note")) == ("cp1252", ["€ 5"])


def test_quoted_fields_keep_delimiters_quotes_and_newlines() -> None:
    data = b'Name,Phone,Notes\n"Doe, John",4155550100,"line one\nline two, ""quoted"""\n'
    table = read_table(data)
    assert table.values("Name") == ["Doe, John"]
    assert table.values("Notes") == ['line one\nline two, "quoted"']


def test_crlf_files_and_quoted_crlf_values() -> None:
    data = b'Name,Phone\r\n"two\r\nlines",4155550100\r\nBob,4155550101\r\n'
    table = read_table(data)
    assert table.values("Name") == ["two\r\nlines", "Bob"]
    assert table.row_numbers.tolist() == [2, 3]


def test_old_mac_cr_line_endings() -> None:
    assert read_table(b"Name,Phone\rAnn,1\rBob,2\r").values("Phone") == ["1", "2"]


def test_semicolon_file_with_commas_in_values_is_split_on_semicolons() -> None:
    table = read_table(b"Name;Phone;Amount\nDoe, John;4155550100;3,50\nRoe, Jane;4155550101;1,00\n")
    assert (table.delimiter, table.values("Amount")) == (";", ["3,50", "1,00"])


def test_delimiter_in_data_but_not_header_does_not_split_a_single_column() -> None:
    table = read_table(b"Phone\n415;ext 2\n416;ext 3\n")
    assert table.columns == ("Phone",)
    assert table.values("Phone") == ["415;ext 2", "416;ext 3"]


def test_values_that_look_like_numbers_or_nulls_stay_text() -> None:
    """pandas' defaults would turn these into NaN or integers: they are somebody's data."""
    data = b"Name,Phone,Code\nNA,+14155550100,0012\nnull,1.41556E+10,1e5\nN/A,4155550106,None\n"
    table = read_table(data)
    assert table.values("Name") == ["NA", "null", "N/A"]
    assert table.values("Phone") == ["+14155550100", "1.41556E+10", "4155550106"]
    assert table.values("Code") == ["0012", "1e5", "None"]
    assert all(dtype == "string" for dtype in table.data.dtypes)


def test_cells_are_trimmed_and_whitespace_only_cells_are_blank() -> None:
    table = read_table("Name,Phone\n  Ann\xa0 ,\t4155550100 \nBob,   \n".encode())
    assert table.values("Name") == ["Ann", "Bob"]
    assert table.values("Phone") == ["4155550100", None]
    assert pd.isna(table.data["Phone"].iloc[1])


def test_single_column_file() -> None:
    table = read_table(b"Phone\n4155550100\n4155550101\n")
    assert (table.columns, len(table)) == (("Phone",), 2)


def test_blank_and_repeated_headers_get_unique_names() -> None:
    table = read_table(b"Phone,,Phone,Name\n1,2,3,4\n")
    assert table.columns == ("Phone", "Column 2", "Phone (2)", "Name")


def test_trailing_delimiters_add_no_column() -> None:
    table = read_table(b"Name,Phone,\nAnn,1,\nBob,2,,\n")
    assert table.columns == ("Name", "Phone")
    assert table.values("Phone") == ["1", "2"]


# --- CSV: blank rows and row numbers ------------------------------------------------------------


def test_blank_lines_anywhere_are_dropped_and_rows_keep_spreadsheet_numbers() -> None:
    data = b"\nName,Phone\nAnn,1\n\n,\n   \nBob,2\n\n\n"
    table = read_table(data)
    assert table.values("Name") == ["Ann", "Bob"]
    assert table.row_numbers.tolist() == [3, 7]


def test_empty_lines_between_rows_keep_numbers_on_a_large_file() -> None:
    """Only empty lines (no whitespace): the fast parser's path keeps numbering too."""
    rows = ["Name,Phone"] + [f"P{i},{4155550000 + i}" for i in range(5000)]
    rows[2500] = ""
    rows.append("")
    table = read_table(("\n".join(rows) + "\n").encode())
    assert len(table) == 4999
    assert table.row_numbers[2498:2500].tolist() == [2500, 2502]
    assert table.values("Name")[2499] == "P2500"
    assert table.row_numbers.dtype.name == "int64"


def test_row_numbers_count_records_not_physical_lines() -> None:
    table = read_table(b'Name,Notes\nA,"x\ny\nz"\nB,w\n')
    assert table.row_numbers.tolist() == [2, 3]


def test_without_header_the_first_row_is_row_1() -> None:
    table = read_table(b"\nAnn,4155550100\nBob,4155550101\n", has_header=False)
    assert table.columns == ("Column 1", "Column 2")
    assert table.row_numbers.tolist() == [2, 3]
    assert table.values("Column 1") == ["Ann", "Bob"]


# --- CSV: ragged rows and broken quotes ---------------------------------------------------------


def test_short_rows_are_padded_with_blanks() -> None:
    table = read_table(b"Name,Phone,City\nAnn,1\nBob\n")
    assert cells(table) == [["Ann", "Bob"], ["1", None], [None, None]]


def test_rows_with_more_values_than_the_header_are_an_error_naming_them() -> None:
    data = b"Name,Phone\nAnn,1\nDoe, John,2\nBob,3\nRoe, Jane,4\n"
    with pytest.raises(SourceError) as error:
        read_table(data, filename="list.csv")
    assert str(error.value).startswith("Rows 3, 5 of 'list.csv' have more values than the header")
    assert "without quotes" in str(error.value)


def test_a_quote_never_closed_is_an_error_naming_its_row() -> None:
    data = b'Name,Phone\nAnn,1\n"Bob,2\nCid,3\nDan,4\n'
    with pytest.raises(SourceError, match=r"^Row 3 of 'x.csv' opens a quote"):
        read_table(data, filename="x.csv")


def test_a_stray_quote_inside_a_value_is_text() -> None:
    table = read_table(b'Name,Phone\n5" screen,1\nBob,2\n')
    assert table.values("Name") == ['5" screen', "Bob"]


# --- headers given by the user ------------------------------------------------------------------


@pytest.mark.parametrize("headers", ["Name, Phone", ["Name", "Phone"], ("Name", "Phone")])
def test_headers_given_name_the_columns(headers: str | Sequence[str]) -> None:
    table = read_table(b"Ann,4155550100\n", has_header=False, headers=headers)
    assert table.columns == ("Name", "Phone")
    assert table.row_numbers.tolist() == [1]


def test_headers_may_quote_a_comma() -> None:
    table = read_table(b"Ann,1\n", has_header=False, headers='"Last, First",Phone')
    assert table.columns == ("Last, First", "Phone")


def test_a_header_count_that_differs_states_both_counts() -> None:
    with pytest.raises(SourceError) as error:
        read_table(b"a,b,c,d\n", has_header=False, headers="x,y,z", filename="f.csv")
    assert str(error.value) == (
        "You gave 3 headers but 'f.csv' has 4 columns; give one header per column, in file order"
    )
    assert error.value.field == "headers"


def test_headers_with_a_header_row_are_refused() -> None:
    with pytest.raises(SourceError, match="first row is read as its header"):
        read_table(b"a,b\n1,2\n", headers="x,y")


# --- workbooks ----------------------------------------------------------------------------------


def test_numeric_excel_phones_come_out_as_digits(tmp_path: Path) -> None:
    rows = [
        ["Name", "Phone", "Value"],
        ["Ann", 4155550106, 3.5],
        ["Bob", 4155550107.0, 1.41556e10],
        ["Cid", None, 7],
        ["Dan", "+14155550100", "1.41556E+10"],
        ["Eve", 14155550108, True],
    ]
    table = read_table(write_xlsx(tmp_path / "c.xlsx", rows))
    assert table.values("Phone") == [
        "4155550106",
        "4155550107",
        None,
        "+14155550100",
        "14155550108",
    ]
    assert table.values("Value") == ["3.5", "14155600000", "7", "1.41556E+10", "TRUE"]
    assert all(dtype == "string" for dtype in table.data.dtypes)


def test_excel_dates_and_times_are_iso_text(tmp_path: Path) -> None:
    rows = [["When", "Day"], [dt.datetime(2024, 1, 2, 3, 4, 5), dt.date(2024, 5, 6)]]
    table = read_table(write_xlsx(tmp_path / "d.xlsx", rows))
    assert table.values("When") == ["2024-01-02 03:04:05"]
    assert table.values("Day") in (["2024-05-06"], ["2024-05-06 00:00:00"])


def test_excel_blank_rows_keep_spreadsheet_row_numbers(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet["B3"], sheet["C3"] = "Name", "Phone"
    sheet["B4"], sheet["C4"] = "Ann", 4155550100
    sheet["B7"], sheet["C7"] = "Bob", 4155550101
    sheet["C8"] = "   "
    workbook.save(tmp_path / "b.xlsx")
    table = read_table(tmp_path / "b.xlsx")
    assert table.columns == ("Name", "Phone")
    assert table.row_numbers.tolist() == [4, 7]


def test_excel_values_right_of_the_header_get_a_column(tmp_path: Path) -> None:
    rows = [["Name", "Phone"], ["Ann", 1], ["Bob", 2, None, "note"]]
    table = read_table(write_xlsx(tmp_path / "w.xlsx", rows))
    assert table.columns == ("Name", "Phone", "Column 3", "Column 4")
    assert table.values("Column 4") == [None, "note"]


def test_first_visible_sheet_is_read_by_default(tmp_path: Path) -> None:
    workbook = Workbook()
    hidden = workbook.active
    hidden.title, hidden.sheet_state = "Lookup", "hidden"
    hidden.append(["Code"])
    hidden.append(["x"])
    contacts = workbook.create_sheet("Contacts")
    contacts.append(["Phone"])
    contacts.append(["4155550100"])
    workbook.save(tmp_path / "s.xlsx")
    table = read_table(tmp_path / "s.xlsx")
    assert (table.sheet, table.sheet_names, table.columns) == (
        "Contacts",
        ("Lookup", "Contacts"),
        ("Phone",),
    )


def test_a_named_sheet_is_read_ignoring_case(tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.active.append(["A"])
    second = workbook.create_sheet("March List")
    second.append(["Phone"])
    second.append([4155550100])
    workbook.save(tmp_path / "m.xlsx")
    table = read_table(tmp_path / "m.xlsx", sheet="march list")
    assert (table.sheet, table.values("Phone")) == ("March List", ["4155550100"])


def test_an_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "u.xlsx", [["Phone"], [1]])
    with pytest.raises(SourceError) as error:
        read_table(path, sheet="Nope")
    assert str(error.value) == "Sheet 'Nope' not found in 'u.xlsx'; its sheets are: Contacts"
    assert error.value.field == "sheet"


def test_an_empty_sheet_is_an_error(tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.active.title = "Empty"
    workbook.save(tmp_path / "e.xlsx")
    with pytest.raises(SourceError, match="^Sheet 'Empty' of 'e.xlsx' is empty"):
        read_table(tmp_path / "e.xlsx")


def test_a_sheet_with_only_a_header_is_an_error(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "h.xlsx", [["Name", "Phone"]])
    with pytest.raises(SourceError, match="has a header row but no data rows"):
        read_table(path)


def test_xlsm_is_read(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "m.xlsx", [["Phone"], [4155550100]])
    table = read_table(path.read_bytes(), filename="macros.xlsm")
    assert table.values("Phone") == ["4155550100"]


def test_ods_is_read(tmp_path: Path) -> None:
    frame = pd.DataFrame({"Name": ["Ann", None, "Bob"], "Phone": [4155550100, None, 4155550101]})
    frame.to_excel(tmp_path / "c.ods", engine="odf", index=False)
    table = read_table(tmp_path / "c.ods")
    assert table.values("Phone") == ["4155550100", "4155550101"]
    assert table.row_numbers.tolist() == [2, 4]


def test_legacy_xls_is_read(tmp_path: Path) -> None:
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Old")
    for column, value in enumerate(["Name", "Phone"]):
        sheet.write(0, column, value)
    sheet.write(1, 0, "Ann")
    sheet.write(1, 1, 4155550100)
    sheet.write(3, 0, "Bob")
    sheet.write(3, 1, "+14155550101")
    workbook.save(str(tmp_path / "old.xls"))
    table = read_table(tmp_path / "old.xls")
    assert (table.sheet, table.values("Phone")) == ("Old", ["4155550100", "+14155550101"])
    assert table.row_numbers.tolist() == [2, 4]


def test_a_workbook_named_csv_is_read_as_a_workbook_with_a_note(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", [["Phone"], [4155550100]])
    table = read_table(path.read_bytes(), filename="contacts.csv")
    assert table.values("Phone") == ["4155550100"]
    assert table.notes and "holds a workbook" in table.notes[0]


def test_a_csv_named_xlsx_is_read_as_csv_with_a_note() -> None:
    table = read_table(b"Name,Phone\nAnn,1\n", filename="export.xlsx")
    assert table.values("Phone") == ["1"]
    assert table.notes == (
        "'export.xlsx' is named .xlsx but holds text (CSV), not a workbook; it was read as CSV.",
    )


# --- unusable input -----------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


def test_a_picture_named_csv_is_refused() -> None:
    with pytest.raises(SourceError) as error:
        read_table(PNG, filename="contacts.csv")
    assert str(error.value) == (
        "'contacts.csv' is not a CSV or Excel file (its content looks like a PNG image); "
        "upload the contacts as .csv, .xlsx, .xls or .ods"
    )


def test_a_pdf_named_xlsx_is_refused() -> None:
    with pytest.raises(SourceError) as error:
        read_table(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", filename="list.xlsx")
    assert str(error.value) == (
        "'list.xlsx' is named .xlsx but is not an Excel workbook (its content looks like a PDF "
        "document); export it again from the other system as .xlsx or .csv"
    )


def test_junk_bytes_named_xlsx_are_refused() -> None:
    junk = bytes((i * 7919 + 13) % 256 for i in range(4096))
    with pytest.raises(SourceError, match=r"is named \.xlsx but is not an Excel workbook .*binary"):
        read_table(junk, filename="junk.xlsx")


def test_an_html_page_named_xls_is_refused() -> None:
    with pytest.raises(SourceError, match=r"looks like a web page \(HTML\)"):
        read_table(b"<html><body><table><tr><td>Phone</td></tr></table>", filename="r.xls")


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(SourceError, match=r"^'e.csv' is empty \(0 bytes\)"):
        read_table(b"", filename="e.csv")


def test_a_file_of_blank_lines_is_refused() -> None:
    with pytest.raises(SourceError, match="every row is blank"):
        read_table(b"\n\r\n  \n,,,\n")


def test_a_header_without_data_rows_is_refused() -> None:
    with pytest.raises(SourceError) as error:
        read_table(b"Name,Phone\n\n", filename="h.csv")
    assert str(error.value).startswith("'h.csv' has a header row but no data rows")


def test_a_truncated_workbook_is_refused(tmp_path: Path) -> None:
    data = write_xlsx(tmp_path / "t.xlsx", [["Phone"], *[[i] for i in range(500)]]).read_bytes()
    with pytest.raises(SourceError, match="is damaged or incomplete"):
        read_table(data[: len(data) // 2], filename="t.xlsx")


def test_a_password_protected_workbook_is_refused(tmp_path: Path) -> None:
    plain = write_xlsx(tmp_path / "p.xlsx", [["Phone"], [4155550100]])
    encrypted = io.BytesIO()
    with plain.open("rb") as handle:
        OOXMLFile(handle).encrypt("secret", encrypted)
    with pytest.raises(SourceError) as error:
        read_table(encrypted.getvalue(), filename="locked.xlsx")
    assert str(error.value) == (
        "'locked.xlsx' is password-protected; remove the password in Excel "
        "(File > Info > Protect Workbook) and upload again"
    )


def test_an_ole_file_that_is_no_workbook_is_refused_cleanly() -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    with pytest.raises(SourceError, match="could not be read as a workbook"):
        read_table(data, filename="old.xls")


def test_a_zip_without_a_workbook_says_what_it_holds() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("contacts.csv", "Phone\n1\n")
    with pytest.raises(SourceError, match="ZIP archive holding contacts.csv; unzip it"):
        read_table(buffer.getvalue(), filename="c.xlsx")


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


def test_a_text_mode_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Phone\n1\n")
    with path.open() as handle, pytest.raises(SourceError, match="binary mode"):
        read_table(handle)


# --- sources: bytes, paths, file objects --------------------------------------------------------


def test_paths_file_objects_and_bytes_read_the_same(tmp_path: Path) -> None:
    data = csv_bytes(CONTACTS)
    path = tmp_path / "c.csv"
    path.write_bytes(data)
    with path.open("rb") as handle:
        from_file = cells(read_table(handle))
    assert cells(read_table(data)) == cells(read_table(str(path))) == from_file


def test_a_file_object_is_read_from_its_start_and_left_where_it_was() -> None:
    upload = io.BytesIO(csv_bytes(CONTACTS))
    upload.name = "upload.csv"  # Streamlit's UploadedFile is a BytesIO with a name
    upload.seek(7)
    preview = read_preview(upload)
    assert upload.tell() == 7
    assert len(read_table(upload)) == len(preview) == 3


def test_messages_name_a_file_object_by_its_name() -> None:
    upload = io.BytesIO(b"")
    upload.name = "/tmp/uploads/mine.csv"
    with pytest.raises(SourceError, match="^'mine.csv' is empty"):
        read_table(upload)


# --- previews -----------------------------------------------------------------------------------


class CountingFile(io.BytesIO):
    """A file that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def big_csv(rows: int) -> bytes:
    lines = ["first,last,phone,email"]
    lines += [f"F{i},L{i},{4155550000 + i},f{i}@example.com" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_preview_reads_only_the_beginning_of_a_large_csv() -> None:
    data = big_csv(400_000)
    upload = CountingFile(data)
    preview = read_preview(upload, max_rows=20)
    assert len(preview) == 20
    assert preview.columns == ("first", "last", "phone", "email")
    assert upload.bytes_read < len(data) / 20
    assert (preview.truncated, preview.total_rows) == (True, None)


def test_preview_works_where_the_full_read_would_fail() -> None:
    """A broken row near the end fails read_table; the preview never gets there."""
    data = big_csv(100_000) + b"Doe, John,x,4155550100,y\n"
    with pytest.raises(SourceError, match="more values than the header"):
        read_table(data)
    assert read_preview(data).values("phone")[:2] == ["4155550000", "4155550001"]


def test_preview_of_a_small_file_is_exact() -> None:
    preview = read_preview(csv_bytes(CONTACTS), max_rows=2)
    assert isinstance(preview, Preview)
    assert (len(preview), preview.total_rows, preview.truncated) == (2, 3, True)
    assert preview.row_numbers.tolist() == [2, 3]
    whole = read_preview(csv_bytes(CONTACTS))
    assert (len(whole), whole.total_rows, whole.truncated) == (3, 3, False)


def test_preview_of_a_workbook_counts_rows_and_sees_far_columns(tmp_path: Path) -> None:
    rows: list[list[object]] = [["Name", "Phone"]] + [[f"P{i}", 4155550000 + i] for i in range(80)]
    rows.append(["Last", 1, None, "far"])
    preview = read_preview(write_xlsx(tmp_path / "p.xlsx", rows), max_rows=10)
    assert (len(preview), preview.total_rows, preview.truncated) == (10, 81, True)
    assert preview.columns == ("Name", "Phone", "Column 3", "Column 4")
    assert preview.values("Phone")[0] == "4155550000"


def test_preview_of_bad_input_raises_the_same_errors() -> None:
    with pytest.raises(SourceError, match="is empty"):
        read_preview(b"")
    with pytest.raises(SourceError, match="PNG image"):
        read_preview(PNG, filename="x.csv")


# --- progress -----------------------------------------------------------------------------------


def test_progress_rises_to_one_on_a_csv() -> None:
    seen: list[float] = []
    read_table(big_csv(200_000), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3


def test_progress_rises_to_one_on_the_row_by_row_path() -> None:
    """Whitespace-only lines take the csv-module path; it reports as it goes."""
    seen: list[float] = []
    read_table(big_csv(120_000) + b"   \n", progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3


def test_progress_rises_to_one_on_a_workbook(tmp_path: Path) -> None:
    seen: list[float] = []
    read_table(write_xlsx(tmp_path / "g.xlsx", [["Phone"], [1]]), progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)


# --- require_column and suggest_columns ---------------------------------------------------------

MIXED = b"Name,Mobile Phone,Email\nAnn,4155550100,a@example.com\n"


def test_require_column_finds_an_exact_name() -> None:
    assert require_column(read_table(MIXED), "Mobile Phone") == "Mobile Phone"


def test_require_column_ignores_case_spacing_and_accents() -> None:
    table = read_table("Téléphone,Name\n1,Ann\n".encode())
    assert require_column(table, "  telephone ") == "Téléphone"
    assert require_column(read_table(MIXED), "mobile  PHONE") == "Mobile Phone"


def test_require_column_names_the_columns_that_exist() -> None:
    with pytest.raises(ColumnNotFoundError) as error:
        require_column(read_table(MIXED), "Cell")
    assert str(error.value) == "Column 'Cell' not found; the file has: Name, Mobile Phone, Email"
    assert error.value.field == "phone_column"


def test_require_column_carries_the_field_it_is_for() -> None:
    with pytest.raises(ColumnNotFoundError) as error:
        require_column(read_preview(MIXED), "Full name", field="name_column")
    assert error.value.field == "name_column"


def test_require_column_refuses_an_ambiguous_name() -> None:
    table = read_table(b"Phone,phone\n1,2\n")
    assert require_column(table, "phone") == "phone"
    with pytest.raises(ColumnNotFoundError, match="matches several columns"):
        require_column(table, "PHONE")


def test_require_column_refuses_a_blank_name() -> None:
    with pytest.raises(ColumnNotFoundError, match="^No column given; the file has: Name"):
        require_column(read_table(MIXED), " ")


@pytest.mark.parametrize(
    ("header", "name_header"),
    [
        ("Mobile Phone", "Full Name"),
        ("Téléphone", "Nom"),
        ("WhatsApp", "First Name"),
        ("Telefonnummer", "Name"),
        ("cell #", "Contact"),
    ],
)
def test_suggest_columns_by_header(header: str, name_header: str) -> None:
    data = f"ID,{name_header},Last Name,{header}\n1001,Ann,Lee,+1 415 555 0100\n".encode()
    assert suggest_columns(read_table(data)) == (header, name_header)


def test_suggest_columns_by_content_without_headers() -> None:
    data = b"Ann,a@x.com,(415) 555-0100\nBob,b@x.com,+14155550101\nCid,c@x.com,4155550102\n"
    assert suggest_columns(read_table(data, has_header=False))[0] == "Column 3"


def test_suggest_columns_prefers_a_phone_header_over_a_column_of_ids() -> None:
    data = b"Customer ID,Contact Number\n4155550199,4155550100\n4155550198,4155550101\n"
    assert suggest_columns(read_table(data))[0] == "Contact Number"


def test_suggest_columns_finds_nothing_in_unrelated_data() -> None:
    assert suggest_columns(read_table(b"City,Amount\nParis,3\nRome,4\n")) == (None, None)


# --- properties ---------------------------------------------------------------------------------

CELL_TEXT = st.text(alphabet=st.sampled_from([*'ab Zé€ü19+-()",;|\t\n\r', "\xa0"]), max_size=12)


@st.composite
def grids(draw: st.DrawFn) -> list[list[str]]:
    width = draw(st.integers(min_value=1, max_value=5))
    header = [f"col{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(CELL_TEXT, min_size=width, max_size=width), max_size=12))
    rows.append(["x"] * width)  # at least one non-blank data row
    return [header, *rows]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    grid=grids(),
    delimiter=st.sampled_from(DELIMITERS),
    encoding=st.sampled_from(ENCODINGS),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_any_csv_written_by_a_spreadsheet_reads_back_cell_for_cell(
    grid: list[list[str]], delimiter: str, encoding: str, newline: str
) -> None:
    """Whatever the cells hold, the reader returns them trimmed, blanks missing, rows numbered."""
    data = csv_bytes(grid, delimiter=delimiter, encoding=encoding, newline=newline)
    table = read_table(data)
    expected = [
        (number, [cell.strip() or None for cell in row])
        for number, row in enumerate(grid[1:], start=2)
        if any(cell.strip() for cell in row)
    ]
    assert table.columns == tuple(grid[0])
    assert table.row_numbers.tolist() == [number for number, _ in expected]
    assert [list(row) for row in zip(*cells(table), strict=True)] == [row for _, row in expected]
    preview = read_preview(data, max_rows=3)
    assert [preview.values(c) for c in preview.columns] == [v[:3] for v in cells(table)]


def test_reading_with_and_without_progress_gives_the_same_table() -> None:
    """Reporting progress changes nothing in what is read, blank rows included."""
    data = big_csv(150_000).replace(b"\nF70000,", b"\n\n\nF70000,")
    quiet, watched = read_table(data), read_table(data, progress=lambda fraction: None)
    assert watched.row_numbers.tolist() == quiet.row_numbers.tolist()
    assert quiet.row_numbers[70000] == 70004
    assert watched.data.equals(quiet.data)


def test_preview_of_a_small_file_counts_every_row() -> None:
    preview = read_preview(big_csv(200), max_rows=10)
    assert (len(preview), preview.total_rows, preview.truncated) == (10, 200, True)


@settings(max_examples=40, deadline=None)
@given(
    mantissa=st.integers(min_value=-(10**15), max_value=10**15),
    places=st.integers(min_value=0, max_value=4),
)
def test_any_numeric_excel_cell_reads_as_the_number_a_person_sees(
    tmp_path_factory: pytest.TempPathFactory, mantissa: int, places: int
) -> None:
    """Whole numbers lose their ".0"; others keep their digits (up to the 15 Excel stores)."""
    number = mantissa if places == 0 else float(f"{mantissa / 10**places:.15g}")
    path = write_xlsx(tmp_path_factory.mktemp("n") / "n.xlsx", [["Value"], [number]])
    value = float(number)
    expected = str(int(value)) if value.is_integer() else repr(value)
    assert read_table(path).values("Value") == [expected]


@settings(max_examples=150, deadline=None)
@given(data=st.binary(min_size=1, max_size=2000), name=st.sampled_from(["x.csv", "x.xlsx", None]))
def test_any_bytes_give_a_table_or_a_source_error(data: bytes, name: str | None) -> None:
    """No parser's own exception ever reaches the caller, whatever the upload holds."""
    try:
        read_table(data, filename=name)
        read_preview(data, filename=name)
    except SourceError:
        pass


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from([*',;|\t"\r\n ab1+', "\xa0", "é"]), max_size=80))
def test_any_text_gives_a_table_or_a_source_error(text: str) -> None:
    """Malformed quoting, ragged rows, stray delimiters: a table, or a message; never a crash."""
    for encoding in ("utf-8", "utf-16"):
        try:
            table = read_table(text.encode(encoding))
        except SourceError:
            continue
        assert len(table) > 0 and all(dtype == "string" for dtype in table.data.dtypes)


def _valid_xlsx() -> bytes:
    buffer = io.BytesIO()
    workbook = Workbook()
    for row in [["Name", "Phone"], ["Ann", 4155550100], ["Bob", "+14155550101"]]:
        workbook.active.append(row)
    workbook.save(buffer)
    return buffer.getvalue()


VALID_XLSX = _valid_xlsx()


@settings(max_examples=150, deadline=None)
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(VALID_XLSX) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    cut=st.integers(min_value=100, max_value=len(VALID_XLSX)),
)
def test_a_damaged_workbook_gives_a_table_or_a_source_error(
    flips: list[tuple[int, int]], cut: int
) -> None:
    """Flipped bytes and cut files: calamine's and zipfile's errors become SourceErrors."""
    data = bytearray(VALID_XLSX[:cut])
    for position, value in flips:
        if position < len(data):
            data[position] = value
    try:
        read_table(bytes(data), filename="d.xlsx")
        read_preview(bytes(data), filename="d.xlsx")
    except SourceError:
        pass


def test_row_by_row_reading_across_blocks_keeps_every_value() -> None:
    """The csv-module path converts rows a block at a time; nothing shifts at the seams."""
    data = big_csv(140_000) + b"  \n"
    table = read_table(data)
    assert len(table) == 140_000
    phones = table.values("phone")
    assert phones[65_535:65_538] == ["4155615535", "4155615536", "4155615537"]
    assert table.row_numbers[-1] == 140_001


def test_a_far_column_appearing_late_in_a_long_sheet_is_blank_above(tmp_path: Path) -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Big")
    sheet.append(["Phone"])
    for index in range(70_000):
        sheet.append([4155550000 + index])
    sheet.append([1, None, "late"])
    workbook.save(tmp_path / "big.xlsx")
    table = read_table(tmp_path / "big.xlsx")
    assert table.columns == ("Phone", "Column 2", "Column 3")
    late = table.values("Column 3")
    assert late[-1] == "late" and late.count(None) == 70_000
    assert table.values("Phone")[69_999] == "4155619999"


def test_broken_utf16_is_refused_with_a_message() -> None:
    with pytest.raises(
        SourceError, match=r"is not valid UTF-16 text .* save it again as CSV UTF-8"
    ):
        read_table(b"\xff\xfeN\x00a\x00m\x00e\x00\n\x00A", filename="u.txt")


def test_blank_headers_text_means_numbered_columns() -> None:
    table = read_table(b"Ann,1\n", has_header=False, headers="  ")
    assert table.columns == ("Column 1", "Column 2")


def test_a_row_longer_than_a_preview_chunk_still_previews() -> None:
    """The head grows until the rows fit; the preview never stops at a cut row."""
    tail = b"".join(b"P%d,n\n" % index for index in range(50_000))
    data = b"Name,Notes\nAnn," + b"x" * 600_000 + b"\nBob,short\n" + tail
    preview = read_preview(data, max_rows=2)
    assert preview.values("Name") == ["Ann", "Bob"]
    assert len(preview.values("Notes")[0]) == 600_000


class Pipe(io.RawIOBase):
    """A stream that cannot seek, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_stream_that_cannot_seek_is_read_once() -> None:
    data = csv_bytes(CONTACTS)
    assert cells(read_table(io.BufferedReader(Pipe(data)))) == cells(read_table(data))
    assert len(read_preview(io.BufferedReader(Pipe(data)))) == 3
