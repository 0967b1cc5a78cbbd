"""The input, whatever it came as (bytes, a path, a file object), and what its content is.

The content decides the format (magic bytes), the name only hints: a workbook named .csv is
read as a workbook and a CSV named .xlsx as CSV (each with a note), while a picture, a PDF or
junk is refused with a message saying what the file looks like.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import BinaryIO, Literal

from bulkcall_core.errors import SourceError
from bulkcall_core.sources.text import ZERO_WIDTH, bom_encoding, bomless_utf16, is_binary

SUPPORTED_EXTENSIONS = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls", ".ods")
TEXT_EXTENSIONS = (".csv", ".txt", ".tsv")
WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".xlsb")
HEAD_BYTES = 64 * 1024  # enough to recognise any format and to detect encoding and delimiter

Source = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO
Kind = Literal["csv", "workbook"]

MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document"),
    (b"ID3", "an MP3 recording"),  # the recording uploaded in the contacts field
    (b"RIFF", "a WAV recording"),
    (b"FORM", "an AIFF recording"),
    (b"OggS", "an Ogg recording"),
    (b"fLaC", "a FLAC recording"),
)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE compound file: .xls, encrypted .xlsx, .doc
ENCRYPTED_OOXML_STREAM = "EncryptionInfo".encode("utf-16-le")  # a password-protected .xlsx
WORKBOOK_PARTS = ("xl/workbook.xml", "xl/workbook.bin", "content.xml")
MARKUP = (
    ("<!doctype html", "a web page (HTML)"),  # some systems export HTML tables as ".xls"
    ("<html", "a web page (HTML)"),
    ("<table", "a web page (HTML)"),
    ("<?xml", "an XML document"),
    ('{"', "a JSON document"),
    ("[{", "a JSON document"),
)


class SourceFile:
    """One contact file; reads only what is asked for, and names itself in messages."""

    def __init__(self, label: str, extension: str) -> None:
        self.label = label  # 'contacts.csv' (quoted), or "the file" when it has no name
        self.extension = extension  # lower-case suffix of the given name, "" when none
        self._data: bytes | None = None
        self._path: Path | None = None
        self._file: BinaryIO | None = None
        self._position: int | None = None

    @classmethod
    def open(cls, source: Source, filename: str | None) -> SourceFile:
        """Wrap `source`; `filename` (else the path's or file object's name) names it."""
        name = filename or _source_name(source)
        file = cls(f"'{Path(name).name}'" if name else "the file", Path(name or "").suffix.lower())
        if isinstance(source, bytes | bytearray | memoryview):
            file._data = source if isinstance(source, bytes) else bytes(source)
        elif isinstance(source, str | os.PathLike):
            file._path = _existing_path(Path(source), file.title)
        elif hasattr(source, "read"):
            file._attach(source)
        else:
            raise SourceError(f"{file.title} is not a file (got {type(source).__name__})")
        return file

    @property
    def title(self) -> str:
        """`label` at the start of a sentence."""
        return self.label[:1].upper() + self.label[1:]

    @property
    def path(self) -> Path | None:
        """The file's path when it was given as one and has not been read into memory."""
        return self._path if self._data is None else None

    def __enter__(self) -> SourceFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and self._position is not None:
            self._file.seek(self._position)  # leave a caller's file object where it was

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
        """Every byte of the file (kept, so a second call costs nothing)."""
        if self._data is None and self._path is not None:
            with _opened(self._path, self.title) as handle:
                self._data = handle.read()
        elif self._data is None and self._file is not None:
            if _seekable(self._file):
                self._file.seek(0)
            self._data = self._bytes(self._file.read())
        assert self._data is not None
        return self._data

    def buffer(self) -> BinaryIO:
        """A seekable binary file over the whole content (for zipfile and calamine)."""
        if self._data is None and self._path is not None:
            return _opened(self._path, self.title)
        return io.BytesIO(self.read_all())

    def _attach(self, handle: BinaryIO) -> None:
        self._file = handle
        if _seekable(handle):
            self._position = handle.tell()

    def _bytes(self, chunk: object) -> bytes:
        if not isinstance(chunk, bytes | bytearray):
            raise SourceError(f"{self.title} was opened as text; open it in binary mode ('rb')")
        return bytes(chunk)


def _source_name(source: object) -> str | None:
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
    else:
        name = getattr(source, "name", None)
    return name if isinstance(name, str) else None


def _existing_path(path: Path, title: str) -> Path:
    if not path.exists():
        raise SourceError(f"{title} does not exist ({path}); check the path")
    if path.is_dir():
        raise SourceError(f"{title} is a folder, not a file ({path}); give the contact file")
    return path


def _opened(path: Path, title: str) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise SourceError(
            f"{title} cannot be opened ({exc.strerror}); check its permissions"
        ) from exc


def _seekable(handle: BinaryIO) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def classify(file: SourceFile) -> tuple[Kind, tuple[str, ...]]:
    """'csv' or 'workbook', plus notes when the name said otherwise.

    Raises SourceError for an empty file, anything that is not a spreadsheet, a damaged
    workbook container and a password-protected workbook.
    """
    head = file.head(HEAD_BYTES)
    if not head:
        raise SourceError(f"{file.title} is empty (0 bytes); export the contacts again and upload")
    if head.startswith((*ZIP_MAGIC, CFB_MAGIC)):
        _check_container(file, head)
        if file.extension in TEXT_EXTENSIONS:
            return "workbook", (
                f"{file.title} is named {file.extension} but holds a workbook; "
                "it was read as a workbook.",
            )
        return "workbook", ()
    looks_like = _looks_like(head)
    if looks_like is not None:
        raise not_a_spreadsheet(file, looks_like)
    if file.extension in WORKBOOK_EXTENSIONS:
        return "csv", (
            f"{file.title} is named {file.extension} but holds text (CSV), not a "
            "workbook; it was read as CSV.",
        )
    return "csv", ()


def _looks_like(head: bytes) -> str | None:
    """What a file that is no workbook looks like, or None when its head reads as text."""
    for magic, description in MAGIC:
        if head.startswith(magic):
            return description
    bom = bom_encoding(head)
    text = head.decode(bom or bomless_utf16(head) or "latin-1", errors="replace")
    start = text.lstrip(ZERO_WIDTH + " \t\r\n")[:64].lower()
    for opening, description in MARKUP:
        if start.startswith(opening):
            return description
    if bom is None and is_binary(text):
        return "binary data"
    return None


def _check_container(file: SourceFile, head: bytes) -> None:
    """Raise unless a ZIP or OLE container holds a workbook calamine can read."""
    if head.startswith(CFB_MAGIC):
        if ENCRYPTED_OOXML_STREAM in file.read_all():
            raise password_protected(file)
        return  # a legacy .xls (or another OLE file, which calamine then refuses)
    looks_like = _zip_contents(file)
    if looks_like is not None:
        raise not_a_spreadsheet(file, looks_like)


def _zip_contents(file: SourceFile) -> str | None:
    """None for a workbook's ZIP, else what the archive looks like."""
    try:
        with zipfile.ZipFile(file.buffer()) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise damaged(file) from exc
    if any(name in names for name in WORKBOOK_PARTS):
        return None
    if any(name.startswith("word/") for name in names):
        return "a Word document"
    if any(name.startswith("ppt/") for name in names):
        return "a PowerPoint presentation"
    if any(name.startswith("Index/") for name in names):
        return "an Apple Numbers file (export it from Numbers as .xlsx or .csv)"
    inner = ", ".join(Path(name).name for name in names[:3]) or "nothing"
    return f"a ZIP archive holding {inner}; unzip it and upload the file inside"


def not_a_spreadsheet(file: SourceFile, looks_like: str) -> SourceError:
    if file.extension in WORKBOOK_EXTENSIONS:
        return SourceError(
            f"{file.title} is named {file.extension} but is not an Excel workbook (its content "
            f"looks like {looks_like}); export it again from the other system as .xlsx or .csv"
        )
    return SourceError(
        f"{file.title} is not a CSV or Excel file (its content looks like {looks_like}); "
        "upload the contacts as .csv, .xlsx, .xls or .ods"
    )


def damaged(file: SourceFile) -> SourceError:
    return SourceError(
        f"{file.title} is damaged or incomplete (its workbook data is cut off or corrupt); "
        "download or export it again and upload the new file"
    )


def password_protected(file: SourceFile) -> SourceError:
    return SourceError(
        f"{file.title} is password-protected; remove the password in Excel "
        "(File > Info > Protect Workbook) and upload again"
    )
