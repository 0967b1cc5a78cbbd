"""`python -m bulkcall_core plan ...`, run as a real process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bulkcall_core.cli.plan import add_plan_options, plan_options
from bulkcall_core.errors import SourceError
from bulkcall_core.planning import PlanOptions

ROOT = Path(__file__).resolve().parents[1]


def run_plan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkcall_core", "plan", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def plan_json(*args: str | Path) -> dict:
    result = run_plan(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "Name,Phone,Email\n"
        "Ann,(415) 555-0100,ann@x.org\n"
        "\n"
        "Bob,+1 415-555-0100,bob@x.org\n"
        "Cid,1-900-234-5678,\n"
        "Dee,,dee@x.org\n"
        "Eve,1.41556E+10,\n"
        "Fay,212 555 0100,\n",
        encoding="utf-8",
    )
    return path


def test_json_output_has_the_documented_shape(contacts: Path) -> None:
    """--json prints one object with counts, recipients, problems and warnings."""
    data = plan_json(contacts, "--phone-column", "Phone", "--name-column", "Name")
    assert {k: data[k] for k in ("rows", "valid", "invalid", "duplicates", "to_call")} == {
        "rows": 6,
        "valid": 3,
        "invalid": 3,
        "duplicates": 1,
        "to_call": 2,
    }
    assert data["recipients"] == [
        {"row": 2, "name": "Ann", "phone": "+14155550100"},
        {"row": 8, "name": "Fay", "phone": "+12125550100"},
    ]
    assert [(p["row"], p["value"]) for p in data["problems"]] == [
        (5, "1-900-234-5678"),
        (6, ""),
        (7, "1.41556E+10"),
    ]
    assert data["problems"][0]["reason"].startswith("premium-rate")
    assert data["blocked"] == 1
    assert any("scientific notation" in w for w in data["warnings"])


def test_names_are_null_without_a_name_column(contacts: Path) -> None:
    """Without --name-column every recipient's name is null."""
    data = plan_json(contacts, "--phone-column", "Phone")
    assert {r["name"] for r in data["recipients"]} == {None}


def test_allow_duplicates_calls_every_valid_row(contacts: Path) -> None:
    """--allow-duplicates: to_call = valid, duplicates 0."""
    data = plan_json(contacts, "--phone-column", "Phone", "--allow-duplicates")
    assert (data["valid"], data["duplicates"], data["to_call"]) == (3, 0, 3)


def test_country_and_country_code_options(tmp_path: Path) -> None:
    """--country GB reads UK national numbers; --numbers-have-country-code reads codes."""
    path = tmp_path / "uk.csv"
    path.write_text("phone\n07400 123456\n", encoding="utf-8")
    assert (
        plan_json(path, "--phone-column", "phone", "--country", "gb")["recipients"][0]["phone"]
        == "+447400123456"
    )
    coded = tmp_path / "coded.csv"
    coded.write_text("phone\n447400123456\n14155550105\n", encoding="utf-8")
    data = plan_json(coded, "--phone-column", "phone", "--numbers-have-country-code")
    assert [r["phone"] for r in data["recipients"]] == ["+447400123456", "+14155550105"]


def test_default_country_is_us(tmp_path: Path) -> None:
    """Without --country, national numbers are US numbers."""
    path = tmp_path / "us.csv"
    path.write_text("phone\n4155550100\n", encoding="utf-8")
    assert plan_json(path, "--phone-column", "phone")["recipients"][0]["phone"] == "+14155550100"


def test_no_header_with_headers(tmp_path: Path) -> None:
    """--no-header --headers names the columns; the first row is row 1."""
    path = tmp_path / "bare.csv"
    path.write_text("Ann,4155550100\nBob,4155550101\n", encoding="utf-8")
    data = plan_json(
        path, "--no-header", "--headers", "name,phone", "--phone-column", "phone",
        "--name-column", "name",
    )  # fmt: skip
    assert data["recipients"] == [
        {"row": 1, "name": "Ann", "phone": "+14155550100"},
        {"row": 2, "name": "Bob", "phone": "+14155550101"},
    ]


def test_excel_sheet_is_chosen_by_name(tmp_path: Path) -> None:
    """--sheet reads the named sheet of a workbook; numeric phone cells stay whole."""
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"phone": ["4155550100"]}).to_excel(writer, sheet_name="First", index=False)
        pd.DataFrame({"phone": [4155550106, None, 2125550100]}).to_excel(
            writer, sheet_name="Second", index=False
        )
    data = plan_json(path, "--phone-column", "phone", "--sheet", "Second")
    assert [r["phone"] for r in data["recipients"]] == ["+14155550106", "+12125550100"]


def test_human_summary(contacts: Path) -> None:
    """Without --json: counts, the rows not called and the warnings, in plain lines."""
    result = run_plan(contacts, "--phone-column", "Phone")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "6 rows: 3 valid, 3 invalid (1 blocked, 0 on the do-not-call list)",
        "Duplicates left out: 1",
        "To call: 2",
    ]
    assert "  row 5: '1-900-234-5678': premium-rate number (blocked: toll fraud risk)" in lines
    assert any(line.startswith("Warning: ") for line in lines)


UNUSABLE = [
    (["missing.csv", "--phone-column", "Phone"], "File not found: missing.csv"),
    (["{contacts}", "--phone-column", "Cell"], "Column 'Cell' not found; the file has: Name"),
    (["{contacts}", "--phone-column", "Phone", "--country", "XX"], "Unknown country code 'XX'"),
    (["{contacts}", "--phone-column", "Phone", "--country", "UK"], "the United Kingdom is GB"),
    (["{contacts}", "--phone-column", "Phone", "--headers", "a,b,c"], "add --no-header"),
    (["{contacts}", "--phone-column", "Phone", "--no-header"], "--no-header needs --headers"),
    (["{contacts}", "--phone-column", "b", "--no-header", "--headers", "a,b"], "3 columns"),
    (["{contacts}", "--phone-column", "Phone", "--name-column", "Nom"], "Column 'Nom'"),
    (["{folder}", "--phone-column", "Phone"], "is not a file"),
    (["{junk}", "--phone-column", "Phone"], "junk.xlsx"),
    (["{contacts}"], "--phone-column"),
]


@pytest.mark.parametrize(("args", "message"), UNUSABLE)
def test_unusable_input_exits_2_with_one_line(
    args: list[str], message: str, contacts: Path, tmp_path: Path
) -> None:
    """Missing file, unknown column or country, bad header options, junk: exit 2 and one
    clear line on stderr, no traceback, nothing on stdout."""
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"PK\x03\x04 this is not a workbook" * 10)
    paths = {"contacts": contacts, "folder": tmp_path, "junk": junk}
    result = run_plan(*(arg.format(**paths) for arg in args))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_non_ascii_names_survive_the_json(tmp_path: Path) -> None:
    """Names in any script come back exactly through the JSON."""
    path = tmp_path / "names.csv"
    path.write_text("Name,Phone\nZoë Łukasz 山田,4155550100\n", encoding="utf-8")
    data = plan_json(path, "--phone-column", "Phone", "--name-column", "Name")
    assert data["recipients"][0]["name"] == "Zoë Łukasz 山田"


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    """`plan ... --json | head -c 100`: the command stops quietly when the pipe closes."""
    path = tmp_path / "many.csv"
    path.write_text(
        "Phone\n" + "".join(f"415555{n:04d}\n" for n in range(10_000)), encoding="utf-8"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkcall_core", "plan", str(path), "--phone-column", "Phone"]
        + ["--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(100).startswith(b'{"rows": 10000')
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def _parsed(*argv: str, default_country: str = "US") -> PlanOptions:
    parser = argparse.ArgumentParser()
    add_plan_options(parser, phone_required=False)
    return plan_options(parser.parse_args(list(argv)), default_country=default_country)


def test_plan_options_take_the_callers_default_country_only_without_country() -> None:
    """`campaign create` defaults to the channel's region; an explicit --country wins."""
    assert _parsed("--phone-column", "Cell", default_country="GB").country == "GB"
    assert _parsed("--country", "fr", default_country="GB").country == "FR"
    assert _parsed().country == "US"


def test_plan_options_refuse_headers_without_no_header() -> None:
    with pytest.raises(SourceError, match="add --no-header"):
        _parsed("--headers", "a,b")
