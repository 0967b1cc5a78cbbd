"""Finding the column a user named, and guessing the phone and name columns."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from bulkcall_core.errors import ColumnNotFoundError
from bulkcall_core.sources.table import Table

LISTED_COLUMNS = 30  # column names listed in a "column not found" error before "and N more"
SUGGEST_SAMPLE_ROWS = 1000  # rows looked at to judge whether a column holds phone numbers
PHONE_LIKE_SHARE = 0.6  # share of phone-looking cells for a column to count as phones
PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]{7,24}$")
MIN_PHONE_DIGITS = 7  # shorter digit runs are codes, amounts, extensions

PHONE_WORDS = frozenset(
    "phone phones mobile mobil cell cellphone cellular tel tele telephone telefon telefono "
    "whatsapp msisdn handy celular movil portable gsm sms".split()
)
# Inside compound headers: "Telefonnummer", "HandyNummer", "MobilePhone", "whatsapp_no".
PHONE_STEMS = ("phone", "mobil", "telef", "teleph", "whatsapp", "msisdn", "handy", "rufnummer")
NUMBER_WORDS = frozenset("number num no nr nummer numero".split())
NOT_PHONE_WORDS = frozenset("id zip postal postcode date amount email fax price code".split())
FULL_NAME_WORDS = frozenset("fullname contactname customername recipientname".split())
NAME_WORDS = frozenset("name fullname nom nombre nome naam contact customer recipient".split())
FIRST_NAME_WORDS = frozenset("first firstname given givenname prenom vorname".split())
NOT_NAME_WORDS = frozenset("last lastname surname family company user username file".split())


def require_column(table: Table, name: str, *, field: str = "phone_column") -> str:
    """The exact name of the column the user called `name`.

    An exact match wins; else a match ignoring case, accents and spacing ("mobile  phone" finds
    "Mobile Phone"). Raises ColumnNotFoundError (with `field`) naming the columns that exist.
    """
    wanted = (name or "").strip()
    if wanted in table.columns:
        return wanted
    matches = [column for column in table.columns if fold(column) == fold(wanted)]
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


def fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form of a header or sheet name."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.split())


def _listed(columns: Sequence[str]) -> str:
    shown = ", ".join(columns[:LISTED_COLUMNS])
    more = len(columns) - LISTED_COLUMNS
    return shown + (f" and {more} more" if more > 0 else "")


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
        lambda column: _name_score(column) if (shares[column] or 0) < PHONE_LIKE_SHARE else 0,
    )
    return phone, name


def _best(columns: Iterable[str], score: Callable[[str], float]) -> str | None:
    """The highest-scoring column (the leftmost on a tie), None when every score is 0."""
    scored = [(score(column), -index, column) for index, column in enumerate(columns)]
    best = max(scored, default=(0.0, 0, None))
    return best[2] if best[0] > 0 else None


def _words(header: str) -> set[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)  # "MobilePhone" -> "Mobile Phone"
    words = [word for word in re.split(r"[^a-z0-9]+", fold(spaced)) if word]
    return set(words) | {"".join(words)}


def _phone_score(column: str, share: float | None) -> float:
    words = _words(column)
    phone_header = bool(words & PHONE_WORDS) or any(
        stem in word for word in words for stem in PHONE_STEMS
    )
    if words & NOT_PHONE_WORDS and not phone_header:
        return 0.0
    header = 2.0 if phone_header else 0.5 if words & NUMBER_WORDS else 0.0
    if share is None:  # no data to judge by: the header alone
        return header
    if share < PHONE_LIKE_SHARE and header < 2.0:
        return 0.0
    return header + share


def _phone_share(table: Table, column: str) -> float | None:
    """The share of the first non-blank cells that look like phone numbers (None: no cells)."""
    values = table.data[column].iloc[:SUGGEST_SAMPLE_ROWS].dropna().tolist()
    if not values:
        return None
    phones = [
        value
        for value in values
        if PHONE_LIKE.match(value) and sum(char.isdigit() for char in value) >= MIN_PHONE_DIGITS
    ]
    return len(phones) / len(values)


def _name_score(column: str) -> float:
    words = _words(column)
    if words & FULL_NAME_WORDS:
        return 3.0
    if words & NOT_NAME_WORDS:
        return 0.0
    if words & FIRST_NAME_WORDS:
        return 2.0
    if words & NAME_WORDS:
        return 2.5 if fold(column) in NAME_WORDS else 1.0
    return 0.0
