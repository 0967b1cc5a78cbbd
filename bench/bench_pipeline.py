"""Benchmark: contact file -> stored campaign, against the issue's targets and a naive pipeline.

Targets (issue "Speed and memory"), measured on the generated benchmark files (8 columns,
5% duplicates, 2% invalid; see bench/generate.py):

1. 1,000,000-row CSV from file to a stored plan (read_table -> plan_table -> create_campaign,
   committed): <= 20 s and peak RSS <= 1.5 GB. On SQLite, and on PostgreSQL too when
   BULKCALL_BENCH_POSTGRES_URL names a server (a scratch database is created and dropped).
2. 100,000-row .xlsx to a stored plan: <= 5 s.
3. Preview of the 1M-row CSV: <= 1 s.

Every measurement runs in a fresh Python process, which reports its own wall time and peak
RSS (getrusage ru_maxrss of itself), so one measurement's memory never counts for another.

The naive pipeline is what a first version would do: pandas' default read_csv / read_excel
(C engine, openpyxl, types guessed), phonenumbers parse + is_valid_number + format_number row
by row, and SQLModel ORM `add_all` of one Call object per row. It takes minutes on a million
rows, so it runs on the first `--naive-rows` rows and is extrapolated linearly to the full
size; the table says so. The naive preview reads the whole file (pandas has no other way
without `nrows`, which a naive version does not think of) and is measured, not extrapolated.

Usage: python bench/bench_pipeline.py [--rows 1000000] [--xlsx-rows 100000]
       [--naive-rows 20000] [--workdir DIR] [--skip-naive]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(PROJECT_ROOT), str(BENCH_DIR)]

CSV_SECONDS_TARGET = 20.0  # issue: 1M-row CSV to a stored plan
CSV_RSS_TARGET_MB = 1536.0  # issue: peak RSS <= 1.5 GB
XLSX_SECONDS_TARGET = 5.0  # issue: 100k-row .xlsx to a stored plan
PREVIEW_SECONDS_TARGET = 1.0  # issue: preview of the 1M-row CSV
SEED = 1  # the generated files are deterministic for a seed
PHONE_COLUMN, NAME_COLUMN = "phone", "first_name"  # bench/generate.py's header


# --------------------------------------------------------------------------- measurements
# Each runs inside a child process and returns a dict of figures (seconds per stage).


def measure_pipeline(path: str, database_url: str) -> dict[str, Any]:
    """read_table -> plan_table -> create_campaign -> commit, timed per stage."""
    from bulkcall_core.campaigns import create_campaign
    from bulkcall_core.database import new_session
    from bulkcall_core.planning import PlanOptions, plan_table
    from bulkcall_core.sources import read_table

    engine, channel_id, recording_id = _database(database_url)
    clock = _Clock()
    table = read_table(path)
    clock.lap("read")
    plan = plan_table(table, PlanOptions(phone_column=PHONE_COLUMN, name_column=NAME_COLUMN))
    clock.lap("plan")
    del table  # what a caller would do: the plan holds what is needed from here
    with new_session(engine) as session:
        campaign = create_campaign(
            session=session,
            plan=plan,
            name="bench",
            channel_id=channel_id,
            recording_id=recording_id,
            scheduled_at=None,
            source=Path(path).name,
        )
        session.commit()
    clock.lap("store")
    return {
        **clock.figures(),
        "rows": plan.rows,
        "to_call": plan.to_call,
        "invalid": plan.invalid,
        "duplicates": plan.duplicates,
        "campaign_id": campaign.id,
    }


class _Clock:
    """Wall and CPU seconds in total and per stage."""

    def __init__(self) -> None:
        self.started = self.last = (time.perf_counter(), time.process_time())
        self.stages: dict[str, tuple[float, float]] = {}

    def lap(self, stage: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.stages[stage] = (now[0] - self.last[0], now[1] - self.last[1])
        self.last = now

    def figures(self) -> dict[str, Any]:
        return {
            "seconds": self.last[0] - self.started[0],
            "cpu": self.last[1] - self.started[1],
            "stages": self.stages,
        }


def measure_preview(path: str) -> dict[str, Any]:
    from bulkcall_core.sources import read_preview

    started, cpu_started = time.perf_counter(), time.process_time()
    preview = read_preview(path)
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu_started,
        "columns": len(preview.columns),
    }


def measure_naive_pipeline(path: str, database_url: str, rows: int) -> dict[str, Any]:
    """The naive pipeline on the first `rows` rows of the file."""
    import pandas as pd
    import phonenumbers
    from sqlmodel import Session

    from bulkcall_core.models import Call, Campaign, utcnow

    engine, channel_id, recording_id = _database(database_url)
    clock = _Clock()
    if path.endswith(".csv"):
        frame = pd.read_csv(path, nrows=rows)
    else:
        frame = pd.read_excel(path, nrows=rows, engine="openpyxl")
    seen: set[str] = set()
    recipients: list[tuple[int, str, str]] = []
    for index, record in enumerate(frame.to_dict("records")):
        try:
            number = phonenumbers.parse(str(record[PHONE_COLUMN]), "US")
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if e164 not in seen:
            seen.add(e164)
            recipients.append((index + 2, e164, str(record[NAME_COLUMN])))
    with Session(engine) as session:
        campaign = Campaign(
            name="naive", channel_id=channel_id, recording_id=recording_id, scheduled_at=utcnow()
        )
        session.add(campaign)
        session.flush()
        calls = [
            Call(campaign_id=campaign.id, row=row, phone=phone, name=name, fields={})
            for row, phone, name in recipients
        ]
        session.add_all(calls)
        session.commit()
    clock.lap("naive")
    return {**clock.figures(), "rows": len(frame)}


def measure_naive_preview(path: str) -> dict[str, Any]:
    import pandas as pd

    clock = _Clock()
    pd.read_csv(path).head(20)
    clock.lap("naive")
    return clock.figures()


def _database(url: str) -> tuple[Any, int, int]:
    """A migrated engine at `url` with one channel and one recording to create campaigns."""
    from bulkcall_core.database import make_engine, migrate, new_session
    from bulkcall_core.models import Channel, Recording

    engine = make_engine(url)
    migrate(engine)
    with new_session(engine) as session:
        channel = Channel(
            name=f"bench {secrets.token_hex(4)}",
            account_sid="AC" + "0" * 32,
            from_number="+14155550100",
            auth_token_encrypted="x",
        )
        recording = Recording(
            token=secrets.token_urlsafe(16),
            filename="m.mp3",
            extension="mp3",
            content_type="audio/mpeg",
            size_bytes=1,
            duration_seconds=1.0,
            sha256="0" * 64,
        )
        session.add_all([channel, recording])
        session.commit()
        return engine, channel.id, recording.id


MEASUREMENTS = {
    "pipeline": measure_pipeline,
    "preview": measure_preview,
    "naive_pipeline": measure_naive_pipeline,
    "naive_preview": measure_naive_preview,
}


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def _child_main(name: str, arguments: list[str]) -> None:
    """Run one measurement in this (fresh) process; print its figures as one JSON line."""
    figures = MEASUREMENTS[name](*_typed(arguments))
    figures["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(figures))


def _typed(arguments: list[str]) -> list[Any]:
    return [int(a) if a.isdigit() else a for a in arguments]


def run_child(name: str, *arguments: object) -> dict[str, Any]:
    """Run measurement `name` in a fresh Python process and return its figures."""
    command = [sys.executable, __file__, "--measure", name, *map(str, arguments)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement {name} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["load"] = os.getloadavg()[0]  # 1-minute load average as the measurement ended
    return figures


# --------------------------------------------------------------------------- the run


@dataclass
class Result:
    what: str
    rows: int
    seconds: float
    target: float | None
    peak_rss_mb: float
    cpu: float  # CPU seconds of the measuring process (a database server's are not counted)
    load: float  # the machine's 1-minute load average at the end: 2 cores, so > 2 = contention
    rss_target_mb: float | None = None
    naive_seconds: float | None = None
    naive_cpu: float | None = None
    naive_note: str = ""
    detail: str = ""

    @property
    def met(self) -> str:
        ok = self.target is None or self.seconds <= self.target
        ok = ok and (self.rss_target_mb is None or self.peak_rss_mb <= self.rss_target_mb)
        return "yes" if ok else "NO"

    @property
    def ratio(self) -> str:
        """Naive / ours, in wall time and in CPU time (steadier on a busy machine)."""
        if not self.naive_seconds or not self.naive_cpu:
            return "-"
        return f"{_times(self.naive_seconds / self.seconds)} / {_times(self.naive_cpu / self.cpu)}"


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def generated(workdir: Path, rows: int, suffix: str) -> Path:
    """The benchmark file with `rows` rows (generated once, then reused)."""
    from generate import make_contacts_csv, make_contacts_xlsx

    path = workdir / f"contacts_{rows}_seed{SEED}.{suffix}"
    if not path.exists():
        maker = make_contacts_csv if suffix == "csv" else make_contacts_xlsx
        print(f"generating {path} ...", file=sys.stderr)
        maker(path.with_suffix(".tmp." + suffix), rows, SEED).path.rename(path)
    return path


@contextmanager
def sqlite_url(workdir: Path) -> Iterator[str]:
    """A new SQLite database file for one measurement, removed afterwards (1M calls ~ 300 MB)."""
    path = workdir / f"bench_{secrets.token_hex(4)}.sqlite3"
    try:
        yield f"sqlite:///{path}"
    finally:
        for leftover in workdir.glob(path.name + "*"):
            leftover.unlink()


def pipeline_result(what: str, path: Path, url: str, target: float, **kw: Any) -> Result:
    figures = run_child("pipeline", path, url)
    stages = ", ".join(
        f"{stage} {wall:.1f} s (CPU {cpu:.1f} s)"
        for stage, (wall, cpu) in figures["stages"].items()
    )
    detail = (
        f"{stages}; {figures['to_call']:,} to call, {figures['invalid']:,} invalid, "
        f"{figures['duplicates']:,} duplicates"
    )
    return Result(
        what,
        figures["rows"],
        figures["seconds"],
        target,
        figures["peak_rss_mb"],
        figures["cpu"],
        figures["load"],
        detail=detail,
        **kw,
    )


def add_naive(result: Result, path: Path, url: str, rows: int, naive_rows: int) -> None:
    """Run the naive pipeline on `naive_rows` rows and extrapolate it to `rows`."""
    sample = min(rows, naive_rows)
    figures = run_child("naive_pipeline", path, url, sample)
    result.naive_seconds = figures["seconds"] * rows / figures["rows"]
    result.naive_cpu = figures["cpu"] * rows / figures["rows"]
    if figures["rows"] < rows:
        result.naive_note = f"extrapolated from {figures['rows']:,} rows"


def postgres_database(admin_url: str) -> tuple[str, Any]:
    """A scratch database on the server at `admin_url`; returns (url, drop function)."""
    from sqlalchemy import create_engine, text

    driver_url = "postgresql+psycopg://" + admin_url.split("://", 1)[1]
    name = f"bulkcall_bench_{secrets.token_hex(4)}"
    admin = create_engine(driver_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{driver_url.rsplit('/', 1)[0]}/{name}", drop


def run(args: argparse.Namespace) -> list[Result]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bulkcall-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = generated(workdir, args.rows, "csv")
    xlsx_path = generated(workdir, args.xlsx_rows, "xlsx")
    results = []

    with sqlite_url(workdir) as url:
        csv = pipeline_result(
            "CSV to stored plan (SQLite)",
            csv_path,
            url,
            CSV_SECONDS_TARGET,
            rss_target_mb=CSV_RSS_TARGET_MB,
        )
    if not args.skip_naive:
        with sqlite_url(workdir) as url:
            add_naive(csv, csv_path, url, args.rows, args.naive_rows)
    results.append(report(csv))

    postgres = os.environ.get("BULKCALL_BENCH_POSTGRES_URL")
    if postgres:
        url, drop = postgres_database(postgres)
        try:
            pg = pipeline_result(
                "CSV to stored plan (PostgreSQL)",
                csv_path,
                url,
                CSV_SECONDS_TARGET,
                rss_target_mb=CSV_RSS_TARGET_MB,
            )
            if not args.skip_naive:
                add_naive(pg, csv_path, url, args.rows, args.naive_rows)
            results.append(report(pg))
        finally:
            drop()

    with sqlite_url(workdir) as url:
        xlsx = pipeline_result(".xlsx to stored plan (SQLite)", xlsx_path, url, XLSX_SECONDS_TARGET)
    if not args.skip_naive:
        with sqlite_url(workdir) as url:
            add_naive(xlsx, xlsx_path, url, args.xlsx_rows, args.naive_rows)
    results.append(report(xlsx))

    figures = run_child("preview", csv_path)
    preview = Result(
        "Preview of the CSV",
        args.rows,
        figures["seconds"],
        PREVIEW_SECONDS_TARGET,
        figures["peak_rss_mb"],
        figures["cpu"],
        figures["load"],
        detail=f"{figures['columns']} columns",
    )
    if not args.skip_naive:
        naive = run_child("naive_preview", csv_path)
        preview.naive_seconds, preview.naive_cpu = naive["seconds"], naive["cpu"]
        preview.naive_note = "whole file read, measured"
    results.append(report(preview))
    return results


def report(result: Result) -> Result:
    """Show a result as soon as it is known (stderr), so a long run shows its progress."""
    print(
        f"{result.what}: {result.seconds:.2f} s (CPU {result.cpu:.2f} s), "
        f"{result.peak_rss_mb:,.0f} MB, load {result.load:.1f}",
        file=sys.stderr,
    )
    return result


def markdown(results: list[Result]) -> str:
    lines = [
        "| measurement | rows | time | CPU time | target | peak RSS | met | naive pipeline "
        "| speed-up (wall / CPU) | load avg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: |",
    ]
    for r in results:
        target = f"≤ {r.target:g} s" if r.target else "-"
        if r.rss_target_mb:
            target += f", ≤ {r.rss_target_mb / 1024:g} GB"
        naive = f"{r.naive_seconds:,.2f} s" if r.naive_seconds else "-"
        if r.naive_note:
            naive += f" ({r.naive_note})"
        lines.append(
            f"| {r.what} | {r.rows:,} | {r.seconds:.2f} s | {r.cpu:.2f} s | {target} "
            f"| {r.peak_rss_mb:,.0f} MB | {r.met} | {naive} | {r.ratio} | {r.load:.1f} |"
        )
    lines.append("")
    lines.extend(f"- {r.what}: {r.detail}" for r in results if r.detail)
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1M)")
    parser.add_argument("--xlsx-rows", type=int, default=100_000, help=".xlsx rows (100k)")
    parser.add_argument(
        "--naive-rows", type=int, default=20_000, help="rows the naive pipeline runs on"
    )
    parser.add_argument("--workdir", help="where files and databases go (default: a temp dir)")
    parser.add_argument("--skip-naive", action="store_true", help="no naive comparison")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--measure"]:
        _child_main(argv[1], argv[2:])
        return 0
    args = parse_args(argv)
    results = run(args)
    print(
        f"\nbulkcall pipeline benchmark ({os.cpu_count()} cores, Python {sys.version.split()[0]})\n"
    )
    print(markdown(results))
    return 0 if all(r.met == "yes" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
