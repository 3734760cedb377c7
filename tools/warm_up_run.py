"""Regenerate src/marketbayesmeta/report/warm_up_run/: the small run directory a report kernel
renders once, on nothing from the user's run, while the run samples (report.warm_up).

A report's first notebook in a fresh kernel pays ~1.7 s of first-time costs (matplotlib's text
and tick code paths, pandas and xarray readers, the sections' own first calls) that the second
does not; rendering every section once on this canned run pays them while the other core would
idle. It is the shipped example's run directory without its reports, with posterior.nc cut to
the posterior group of 4 chains × 100 draws (the report reads nothing else from it).

    make warm-up-run            # = .venv/bin/python tools/warm_up_run.py
    python tools/warm_up_run.py RUN_DIR   # from an existing run directory instead

tests/test_report_warm_up.py fails when an output file's columns change and this copy is stale.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from marketbayesmeta.outputs import CSV_FILES  # noqa: E402
from marketbayesmeta.report.warm_up import WARM_UP_RUN  # noqa: E402

KEEP_JSON = ("run_status.json", "plan.json")
LOCATIONS = {"config": "examples/config.yaml", "output_directory": "output/example_geo_sales_uplift",
             "tracker": "examples/example_tracker.csv"}
DRAWS = 100


def build(run_dir: Path, dest: Path) -> None:
    import xarray as xr

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in (*KEEP_JSON, *CSV_FILES):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, dest / name)
    plan = json.loads((dest / "plan.json").read_text(encoding="utf-8"))
    plan["locations"] = LOCATIONS  # as in the repository, not where this copy was made
    (dest / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    with xr.open_dataset(run_dir / "posterior.nc", group="posterior", engine="h5netcdf") as ds:
        small = ds.isel(draw=slice(0, DRAWS)).load()
    small.attrs = {"note": "marketbayesmeta report warm-up: the example's posterior, first 100 draws"}
    small.to_netcdf(dest / "posterior.nc", group="posterior", engine="h5netcdf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", help="a run directory of the example (default: run it now)")
    args = parser.parse_args(argv)
    if args.run_dir:
        build(Path(args.run_dir), WARM_UP_RUN)
    else:
        from marketbayesmeta.cli import _dispatch, build_parser

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            code = _dispatch(["run", str(ROOT / "examples" / "config.yaml"), "--out", str(out), "--quiet"],
                             build_parser())
            if code not in (0, 3):
                print(f"the example run failed (exit {code})", file=sys.stderr)
                return 1
            build(out, WARM_UP_RUN)
    size = sum(p.stat().st_size for p in WARM_UP_RUN.iterdir())
    print(f"wrote {WARM_UP_RUN.relative_to(ROOT)} ({len(list(WARM_UP_RUN.iterdir()))} files, {size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
