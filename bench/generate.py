"""Realistic contact files for the benchmarks: `make_contacts_csv` and `make_contacts_xlsx`.

Eight columns (first_name, last_name, phone, email, company, city, state, notes), about 100
bytes a row as CSV, so 1,000,000 rows make the issue's ~100 MB file. Phones are US numbers
written the ways people write them; `DUPLICATE_SHARE` of the rows repeat an earlier number in
another format and `INVALID_SHARE` hold a phone that cannot be called. Both functions are
deterministic for a given seed and return a `Generated` summary that other benches can assert on.

Run as a script to write a file: `python bench/generate.py contacts.csv 1000000`.
"""

from __future__ import annotations

import csv
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DUPLICATE_SHARE = 0.05  # the benchmark file: 5% duplicates
INVALID_SHARE = 0.02  # ... and 2% invalid phones
HEADER = ("first_name", "last_name", "phone", "email", "company", "city", "state", "notes")

FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Émilie José Zoë Null NA"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Müller O'Brien Nguyen"
).split()
CITIES = (
    ("San Francisco", "CA", "415"),
    ("New York", "NY", "212"),
    ("Brooklyn", "NY", "718"),
    ("Miami", "FL", "305"),
    ("Chicago", "IL", "312"),
    ("Atlanta", "GA", "404"),
    ("Portland", "OR", "503"),
    ("Austin", "TX", "512"),
    ("Boston", "MA", "617"),
    ("Las Vegas", "NV", "702"),
    ("Houston", "TX", "713"),
    ("Jersey City", "NJ", "201"),
)
COMPANIES = ("Acme, Inc.", "Globex", "Initech", "Umbrella Corp", "Stark Industries", "Hooli", "")
NOTES = ("", "", "prefers mornings", 'said "call back later"', "VIP customer since 2019")
INVALID_PHONES = ("555-12", "n/a", "+1 123 456 7890", "", "1.41556E+10", "0000000000")
PHONE_FORMATS = (
    "+1 {a}-{e}-{l}",
    "({a}) {e}-{l}",
    "{a}.{e}.{l}",
    "{a}-{e}-{l}",
    "{a}{e}{l}",
    "1{a}{e}{l}",
)


@dataclass(frozen=True)
class Generated:
    """What a generated file holds: every data row is exactly one of unique, duplicate, invalid."""

    path: Path
    rows: int
    duplicates: int  # rows whose number appeared earlier (in any format)
    invalid: int  # rows whose phone cannot be called (missing, malformed, scientific notation)

    @property
    def to_call(self) -> int:
        return self.rows - self.duplicates - self.invalid


def make_contacts_csv(path: str | Path, rows: int, seed: int = 1) -> Generated:
    """Write `rows` contacts as a UTF-8 CSV (header + rows, some quoted fields) to `path`."""
    path = Path(path)
    summary: dict[str, int] = {"duplicates": 0, "invalid": 0}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(_contacts(rows, seed, summary))
    return Generated(path, rows, summary["duplicates"], summary["invalid"])


def make_contacts_xlsx(path: str | Path, rows: int, seed: int = 1) -> Generated:
    """Write `rows` contacts as an .xlsx; digit-only phones are numeric cells, as in Excel."""
    from openpyxl import Workbook

    path = Path(path)
    summary: dict[str, int] = {"duplicates": 0, "invalid": 0}
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Contacts")
    sheet.append(HEADER)
    for row in _contacts(rows, seed, summary):
        phone = row[2]
        if phone.isdigit() and not phone.startswith("0"):
            row = (*row[:2], int(phone), *row[3:])  # Excel turns typed digits into a number
        sheet.append(row)
    workbook.save(path)
    return Generated(path, rows, summary["duplicates"], summary["invalid"])


def _contacts(rows: int, seed: int, summary: dict[str, int]) -> Iterator[tuple[str, ...]]:
    rng = random.Random(seed)
    seen: list[tuple[str, str, str]] = []
    used: set[tuple[str, str, str]] = set()
    for index in range(rows):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, state, area = rng.choice(CITIES)
        draw = rng.random()
        if draw < INVALID_SHARE:
            phone = INVALID_PHONES[index % len(INVALID_PHONES)]
            summary["invalid"] += 1
        elif draw < INVALID_SHARE + DUPLICATE_SHARE and seen:
            phone = _format(rng, rng.choice(seen))
            summary["duplicates"] += 1
        else:
            number = _new_number(rng, area, used)
            seen.append(number)
            phone = _format(rng, number)
        email = f"{first.lower()}.{last.lower()}{index}@example.com"
        note = rng.choice(NOTES)
        yield first, last, phone, email, rng.choice(COMPANIES), city, state, note


def _new_number(rng: random.Random, area: str, used: set[tuple[str, str, str]]) -> tuple[str, ...]:
    while True:
        exchange = str(rng.randint(200, 999))
        if exchange.endswith("11"):  # N11 codes are service numbers, not subscriber exchanges
            continue
        number = (area, exchange, f"{rng.randint(0, 9999):04d}")
        if number not in used:
            used.add(number)
            return number


def _format(rng: random.Random, number: tuple[str, ...]) -> str:
    area, exchange, line = number
    return rng.choice(PHONE_FORMATS).format(a=area, e=exchange, l=line)


if __name__ == "__main__":
    target, count = sys.argv[1], int(sys.argv[2])
    maker = make_contacts_xlsx if target.endswith(".xlsx") else make_contacts_csv
    print(maker(target, count))
