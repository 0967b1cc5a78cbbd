"""Text files: which encoding, which delimiter, and whether it is text at all."""

from __future__ import annotations

import codecs
import csv
import io

DELIMITERS = (",", ";", "\t", "|")  # in order of preference when two fit equally well
ONE_COLUMN = "\x1f"  # where no delimiter fits: split on a character text never holds
SNIFF_RECORDS = 50  # records compared when detecting the delimiter
BINARY_CONTROL_SHARE = 0.05  # text has next to no control characters; binary data ~25%
DECODE_STEP = 1 << 20  # bytes decoded at a time, so a 100 MB file is never held as str
# Undefined in Windows-1252 (and so never in a real cp1252 file): such a file is Latin-1.
CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
ZERO_WIDTH = "\ufeff\u200b\u200c\u200d\u2060"  # BOMs and zero-width marks exporters leave


def bom_encoding(head: bytes) -> str | None:
    """The codec a byte-order mark announces, if any ("utf-16" reads either byte order)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def bomless_utf16(head: bytes) -> str | None:
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


def detect_encoding(data: bytes, complete: bool) -> str:
    """The codec for `data`: a BOM's, else UTF-8 when it decodes strictly, else cp1252/latin-1.

    `complete` is False for a head cut from a larger file: a character cut at its end is fine.
    """
    encoding = bom_encoding(data) or bomless_utf16(data)
    if encoding is not None:
        return encoding
    if _is_utf8(data, complete):
        return "utf-8"
    if any(byte in data for byte in CP1252_UNDEFINED):
        return "latin-1"
    return "cp1252"


def _is_utf8(data: bytes, complete: bool) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), DECODE_STEP):
            end = start + DECODE_STEP
            decoder.decode(view[start:end], final=complete and end >= len(data))
    except UnicodeDecodeError:
        return False
    return True


def display_encoding(encoding: str) -> str:
    """The name shown to people: a UTF-8 file is "utf-8", BOM or not."""
    return "utf-8" if encoding == "utf-8-sig" else encoding


def to_utf8(data: bytes, encoding: str) -> memoryview | bytes:
    """`data` as UTF-8 without a BOM: a view when it already is, else transcoded in steps."""
    if encoding in ("utf-8", "utf-8-sig"):
        return memoryview(data)[len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0 :]
    decoder = codecs.getincrementaldecoder(encoding)()
    view = memoryview(data)
    parts = [
        decoder.decode(
            view[start : start + DECODE_STEP], final=start + DECODE_STEP >= len(data)
        ).encode("utf-8", errors="surrogatepass")
        for start in range(0, len(data), DECODE_STEP)
    ]
    return b"".join(parts)


def decode_head(data: bytes, encoding: str, complete: bool) -> str:
    """The text of a file's head; a character cut at the end of an incomplete head is dropped."""
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(data, final=complete)


def is_binary(text: str) -> bool:
    """True for the decoded head of a file that is no text (zero bytes, control characters)."""
    if "\x00" in text:
        return True
    controls = sum(1 for char in text if char < " " and char not in "\t\r\n\f\v")
    return controls > BINARY_CONTROL_SHARE * max(len(text), 1)


def sniff_delimiter(sample: str, complete: bool) -> str | None:
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
