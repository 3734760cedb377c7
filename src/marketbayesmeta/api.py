"""Library API: the file-reading edges around the pure compiler, and lazy entry points to the
runtime and the audit trail. Everything the CLI does is a call to a function here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .canonical import sha256_hex
from .compiler.config import Config
from .compiler.config_parse import parse_config
from .errors import ConfigError, InputError, TrackerError
from .plan import Locations, Plan, Source
from .safeio import read_input

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .runtime.execute import RunResult


def _read_bytes(path: Path, what: str, error: type[InputError]) -> bytes:
    return read_input(path, what, error)


def _decode(data: bytes, path: Path, error: type[InputError]) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
                    "save the file as UTF-8") from None


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _config_from_file(path: str | Path) -> tuple[Config, Path, bytes]:
    path = Path(path)
    raw = _read_bytes(path, "config", ConfigError)
    config = parse_config(_decode(raw, path, ConfigError), str(path))
    return config, path, raw


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config; ``data.tracker`` and ``outputs.directory`` come back as
    absolute paths resolved against the config file's directory."""
    config, path, _ = _config_from_file(path)
    base = path.resolve().parent
    return config.model_copy(update={
        "data": config.data.model_copy(update={"tracker": str(_resolve(base, config.data.tracker).resolve())}),
        "outputs": config.outputs.model_copy(update={"directory": str(output_directory(config, path))}),
    })


def output_directory(config: Config, config_path: str | Path) -> Path:
    """The run directory a config asks for (default ``output/<project.name>`` beside the config)."""
    base = Path(config_path).resolve().parent
    return _resolve(base, config.outputs.directory or f"output/{config.project.name}").resolve()


def load_tracker(path: str | Path) -> pd.DataFrame:
    """Read and validate a tracker CSV; returns the normalised table (see the tracker docs)."""
    from .compiler.tracker import parse_tracker

    path = Path(path)
    return parse_tracker(_read_bytes(path, "tracker", TrackerError), str(path))


def compile_config(path: str | Path) -> Plan:
    """Compile a config (and the tracker it names) into a hashed plan.

    The returned plan's ``locations`` are absolute; :func:`~marketbayesmeta.plan.write_plan` stores
    them relative to where the plan is written.
    """
    from .compiler.build import compile_plan
    from .compiler.tracker import parse_tracker

    config, cpath, craw = _config_from_file(path)
    tpath = _resolve(cpath.resolve().parent, config.data.tracker)
    traw = _read_bytes(tpath, "tracker", TrackerError)
    table = parse_tracker(traw, str(tpath))
    sources = {
        "config": Source(name=cpath.name, sha256=sha256_hex(craw), size=len(craw)),
        "tracker": Source(name=tpath.name, sha256=sha256_hex(traw), size=len(traw)),
    }
    plan = compile_plan(config, table, sources=sources, package_version=__version__)
    return plan.model_copy(update={"locations": Locations(
        config=str(cpath.resolve()), tracker=str(tpath.resolve()),
        output_directory=str(output_directory(config, cpath)))})


def audit_tracker(path: str | Path) -> dict[str, Any]:
    """Survey a tracker CSV, or the tracker of a YAML config (with its readiness thresholds):
    readiness and quality checks for every evidence type × metric × scale group."""
    from .compiler.survey import survey_table

    path = Path(path)
    thresholds = {"min_directional": 3, "min_ready": 4}
    tracker_path = path
    if path.suffix.lower() in {".yaml", ".yml"}:
        config = load_config(path)
        tracker_path = Path(config.data.tracker)
        thresholds = {"min_directional": config.readiness.min_rows_directional,
                      "min_ready": config.readiness.min_rows_ready}
    frame = load_tracker(tracker_path)
    return {"tracker": str(tracker_path), "rows": len(frame), **thresholds,
            "groups": survey_table(frame, **thresholds)}


def execute_plan(plan: Plan | str | Path, out_dir: str | Path | None = None, **options: object) -> RunResult:
    """Execute a plan (object or plan.json path) into a run directory; see :mod:`.runtime.execute`."""
    from .runtime.execute import execute_plan as _execute

    return _execute(plan, out_dir, **options)
