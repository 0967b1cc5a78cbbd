"""Benchmark: reading contact files (bulkcall_core.sources) against naive readers.

Each case runs `--repeat` times, each time in a fresh process (so its peak RSS is its own,
imports included); the best time and the highest peak RSS are printed, with the ratio to the
naive reader of the same file. Imports are done before the clock starts.

    .venv/bin/python bench/bench_sources.py [--rows 1000000] [--xlsx-rows 100000] [--dir DIR]

Targets (issue 2): preview of the 1M-row CSV <= 1 s; the whole pipeline (read + plan + store)
of that file <= 20 s at <= 1.5 GB peak RSS, of which reading is meant to take ~1-2 s; the
100k-row .xlsx to a stored plan <= 5 s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import make_contacts_csv, make_contacts_xlsx  # noqa: E402


def read_table_csv(path: str) -> int:
    from bulkcall_core.sources import read_table

    return len(read_table(path))


def read_table_csv_progress(path: str) -> int:
    """As the dashboard reads: with a progress callback."""
    from bulkcall_core.sources import read_table

    return len(read_table(path, progress=lambda fraction: None))


def read_preview_csv(path: str) -> int:
    from bulkcall_core.sources import read_preview

    return len(read_preview(path))


def naive_pandas_c(path: str) -> int:
    """What most code does: pandas' default C engine, told to keep text."""
    import pandas as pd

    return len(pd.read_csv(path, dtype=str, keep_default_na=False))


def naive_csv_module(path: str) -> int:
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def naive_preview(path: str) -> int:
    """A preview the naive way: read everything, show the head."""
    import pandas as pd

    return len(pd.read_csv(path, dtype=str, keep_default_na=False).head(50))


def read_table_xlsx(path: str) -> int:
    from bulkcall_core.sources import read_table

    return len(read_table(path))


def read_preview_xlsx(path: str) -> int:
    from bulkcall_core.sources import read_preview

    return len(read_preview(path))


def naive_openpyxl(path: str) -> int:
    """What most code does: pandas.read_excel (openpyxl underneath), told to keep text."""
    import pandas as pd

    return len(pd.read_excel(path, engine="openpyxl", dtype=str))


def _child(function: Callable[[str], int], path: str, queue: multiprocessing.Queue) -> None:
    import openpyxl  # noqa: F401 - imports are not what is measured
    import pandas  # noqa: F401

    import bulkcall_core.sources  # noqa: F401

    started = time.perf_counter()
    rows = function(path)
    seconds = time.perf_counter() - started
    queue.put((seconds, peak_rss_mb(), rows))


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux keeps ru_maxrss across exec, so a spawned
    child would report its parent's peak: VmHWM (per address space) is read instead."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


PANDAS = "naive: pandas C engine, dtype=str"
FULL_READ = "naive: preview by full read (pandas)"
OPENPYXL = "naive: pandas.read_excel (openpyxl)"


def run_once(function: Callable[[str], int], path: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, rows) of one run in a fresh process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(function, str(path), queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def measure_all(cases: list, repeat: int) -> dict[str, tuple[float, float, int]]:
    """Best seconds, highest peak RSS and rows per case. Rounds run every case once, so a
    burst of load on this shared machine hits all cases alike rather than one."""
    runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label, *_ in cases}
    for _ in range(repeat):
        for label, function, path, _baseline in cases:
            runs[label].append(run_once(function, path))
    return {
        label: (min(r[0] for r in got), max(r[1] for r in got), got[0][2])
        for label, got in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="keep generated files here")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench_sources_"))
    folder.mkdir(parents=True, exist_ok=True)

    csv_path = folder / f"contacts_{args.rows}.csv"
    slow_path = folder / f"contacts_{args.rows}_whitespace_line.csv"
    xlsx_path = folder / f"contacts_{args.xlsx_rows}.xlsx"
    if not csv_path.exists():
        make_contacts_csv(csv_path, args.rows, seed=1)
    if not slow_path.exists():  # one whitespace-only line sends the file down the csv-module path
        slow_path.write_bytes(csv_path.read_bytes() + b"   \n")
    if not xlsx_path.exists():
        make_contacts_xlsx(xlsx_path, args.xlsx_rows, seed=1)
    size_mb = csv_path.stat().st_size / 1e6
    print(
        f"files in {folder}: CSV {args.rows:,} rows x 8 columns ({size_mb:.0f} MB), "
        f".xlsx {args.xlsx_rows:,} rows; best of {args.repeat}, each run in a fresh process"
    )

    cases = [  # (label, reader, file, label of the naive reader it is compared with)
        ("CSV read_table (pyarrow path)", read_table_csv, csv_path, PANDAS),
        ("CSV read_table, progress callback", read_table_csv_progress, csv_path, PANDAS),
        (PANDAS, naive_pandas_c, csv_path, None),
        ("naive: csv module rows", naive_csv_module, csv_path, None),
        ("CSV read_table (csv-module path)", read_table_csv, slow_path, PANDAS),
        ("CSV read_preview", read_preview_csv, csv_path, FULL_READ),
        (FULL_READ, naive_preview, csv_path, None),
        (".xlsx read_table (calamine)", read_table_xlsx, xlsx_path, OPENPYXL),
        (OPENPYXL, naive_openpyxl, xlsx_path, None),
        (".xlsx read_preview (calamine)", read_preview_xlsx, xlsx_path, OPENPYXL),
    ]
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores, shared)")
    results = measure_all(cases, args.repeat)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"\n{'case':42} {'seconds':>8} {'peak RSS MB':>12} {'rows':>10}  vs naive")
    for label, _, _, baseline in cases:
        seconds, peak, rows = results[label]
        ratio = f"{results[baseline][0] / seconds:6.1f}x faster" if baseline else ""
        print(f"{label:42} {seconds:8.2f} {peak:12.0f} {rows:10,}  {ratio}")


if __name__ == "__main__":
    main()
