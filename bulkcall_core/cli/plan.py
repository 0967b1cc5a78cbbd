"""`python -m bulkcall_core plan FILE ...`: check a contact file the way a campaign would.

Prints a short summary (or, with --json, one JSON object) of who would be called and why the
other rows would not. Unusable input raises a BulkCallError, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bulkcall_core import phones, sources
from bulkcall_core.errors import PlanError, SourceError
from bulkcall_core.planning import Plan, PlanOptions, plan_table

# Region of numbers written without + or 00 when --country is not given (the default).
DEFAULT_COUNTRY = "US"
# Problem rows printed in the human summary (the JSON has them all).
SUMMARY_PROBLEMS = 10


def register(commands: argparse._SubParsersAction) -> None:  # noqa: SLF001
    """Add the `plan` command to the parser."""
    parser = commands.add_parser(
        "plan",
        help="check a contact file: who would be called, which rows not and why",
        description="Read a CSV or Excel contact file and plan the calls: valid, invalid, "
        "duplicate and blocked numbers, with a reason for every row left out.",
    )
    parser.add_argument("file", help="CSV, TSV, .xlsx, .xlsm, .xls or .ods file")
    add_plan_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def add_plan_options(
    parser: argparse.ArgumentParser, *, phone_required: bool = True, country_help: str = "US"
) -> None:
    """Add the planning options to `parser`: --phone-column, --name-column, --country,
    --numbers-have-country-code, --no-header, --headers, --allow-duplicates, --sheet.
    `phone_required` False when the phone column may come from elsewhere (a contact list);
    `country_help` names the default country in the help (the default itself is applied by
    `plan_options`, so a caller can tell "not given" from "US")."""
    parser.add_argument(
        "--phone-column", required=phone_required, help="header of the phone column"
    )
    parser.add_argument("--name-column", help="header of the recipient name column")
    parser.add_argument(
        "--country", help=f"ISO code of numbers written without + or 00 (default: {country_help})"
    )
    parser.add_argument(
        "--numbers-have-country-code",
        action="store_true",
        help="numbers start with their country code even without + (447911123456)",
    )
    parser.add_argument(
        "--no-header", action="store_true", help="the first row is data, not headers"
    )
    parser.add_argument("--headers", help='with --no-header: the column names, "a,b,c"')
    parser.add_argument(
        "--allow-duplicates", action="store_true", help="call a number once per row it is on"
    )
    parser.add_argument("--sheet", help="workbook sheet (default: the first)")


def run(args: argparse.Namespace) -> int:
    """Plan the file and print the result; returns the exit status (0)."""
    options = plan_options(args)
    plan = plan_table(read_contact_file(args), options)
    try:
        if args.json:
            # ASCII escapes: the output survives any terminal or pipe encoding.
            json.dump(plan.to_json(), sys.stdout)
            sys.stdout.write("\n")
        else:
            sys.stdout.writelines(line + "\n" for line in summary_lines(plan))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def plan_options(
    args: argparse.Namespace, *, default_country: str = DEFAULT_COUNTRY, **extra: Any
) -> PlanOptions:
    """PlanOptions from the options `add_plan_options` added; `default_country` when
    --country is not given; `extra` sets the other fields (allowed_countries, do_not_call).
    Raises SourceError (--headers without --no-header or the reverse) or PlanError (an
    unknown --country)."""
    if args.headers is not None and not args.no_header:
        raise SourceError(
            "--headers names the columns of a file without a header row; add --no-header, "
            "or drop --headers to use the file's own header row",
            field="headers",
        )
    if args.no_header and not (args.headers or "").strip():
        raise SourceError(
            '--no-header needs --headers with the column names in file order, like "name,phone"',
            field="headers",
        )
    return PlanOptions(
        phone_column=args.phone_column,
        name_column=args.name_column or None,
        country=_country(args.country or default_country),
        numbers_have_country_code=args.numbers_have_country_code,
        allow_duplicates=args.allow_duplicates,
        **extra,
    )


def read_contact_file(args: argparse.Namespace) -> sources.Table:
    """The contact file `args.file` read with --sheet, --no-header and --headers. Raises
    SourceError (no such file, unreadable file)."""
    return sources.read_table(
        existing_file(args.file),
        sheet=args.sheet,
        has_header=not args.no_header,
        headers=args.headers,
    )


def _country(value: str) -> str:
    try:
        return phones.parse_country(value)
    except PlanError as exc:
        raise PlanError(f"--country: {exc.message}", field="country") from exc


def existing_file(value: str) -> Path:
    """`value` as the path of an existing file. Raises SourceError naming it otherwise."""
    path = Path(value).expanduser()
    if not path.exists():
        raise SourceError(f"File not found: {value}; check the path", field="file")
    if not path.is_file():
        raise SourceError(f"{value} is not a file; give a CSV or Excel file", field="file")
    return path


def summary_lines(plan: Plan) -> Iterable[str]:
    """A short human summary: counts, the first problems, the warnings."""
    yield (
        f"{plan.rows:,} rows: {plan.valid:,} valid, {plan.invalid:,} invalid "
        f"({plan.blocked:,} blocked, {plan.do_not_call:,} on the do-not-call list)"
    )
    yield f"Duplicates left out: {plan.duplicates:,}"
    yield f"To call: {plan.to_call:,}"
    if plan.problems:
        shown = plan.problems[:SUMMARY_PROBLEMS]
        more = (
            f" (first {len(shown)} of {len(plan.problems):,})"
            if len(shown) < len(plan.problems)
            else ""
        )
        yield f"Rows not called{more}:"
        for problem in shown:
            yield f"  row {problem.row}: {problem.value!r}: {problem.reason}"
    for warning in plan.warnings:
        yield f"Warning: {warning}"
