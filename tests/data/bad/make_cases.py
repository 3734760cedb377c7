"""Regenerate the bad-input corpus: ``python tests/data/bad/make_cases.py``.

Every case is a directory ``tests/data/bad/<name>/`` holding a small config + tracker (the valid
templates in ``_template/``, one of them mutated) and an ``expect.json``:

``argv``            the CLI arguments; ``{case}`` is replaced by the case's (temporary) directory
``exit``            the exit code (2: invalid input)
``stderr``          fragments that must all appear on stderr (file, row, column, value, ...)
``stderr_absent``   fragments that must not appear (e.g. a physical line number)
``plan``            for execute cases: ``{"mutate": ...}``; the test compiles ``config.yaml`` to
                    ``{case}/plan.json`` and then corrupts it (see ``PLAN_MUTATIONS`` in
                    tests/test_bad_inputs.py)
``readonly``        paths (relative to the case) to chmod 0555 first; skipped when run as root
``subprocess``      run as ``python -m marketbayesmeta`` instead of in-process

The test copies the case to a temporary directory, runs the command, and checks the exit code,
the fragments, that no traceback was printed and that nothing was written.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "_template"
CONFIG = (TEMPLATE / "config.yaml").read_text(encoding="utf-8")
TRACKER = (TEMPLATE / "tracker.csv").read_text(encoding="utf-8")
HEADER = next(csv.reader([TRACKER.splitlines()[0]]))

CASES: dict[str, dict] = {}


# -- helpers ------------------------------------------------------------------------------------

def rows(text: str = TRACKER) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def dump(table: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(table)
    return buf.getvalue()


def set_cells(row: int, **values: str) -> str:
    """The template tracker with cells changed; ``row`` is the spreadsheet row (header = 1)."""
    table = rows()
    for column, value in values.items():
        table[row - 1][HEADER.index(column)] = value
    return dump(table)


def case(name: str, argv: list[str], stderr: list[str], *, config: str | None = CONFIG,
         tracker: str | bytes | None = TRACKER, files: dict[str, str | bytes] | None = None,
         description: str, **extra: object) -> None:
    assert name not in CASES, name
    content: dict[str, str | bytes] = {}
    if config is not None:
        content["config.yaml"] = config
    if tracker is not None:
        content["tracker.csv"] = tracker
    content.update(files or {})
    expect = {"description": description, "command": argv[0], "argv": argv, "exit": 2,
              "stderr": stderr, **extra}
    CASES[name] = {"files": content, "expect": expect}


def check(name: str, stderr: list[str], **kw: object) -> None:
    case(name, ["check-config", "{case}/config.yaml"], stderr, **kw)  # type: ignore[arg-type]


def tracker_case(name: str, tracker: str | bytes, stderr: list[str], *, command: str = "check-config",
                 **kw: object) -> None:
    argv = {"check-config": ["check-config", "{case}/config.yaml"],
            "compile": ["compile", "{case}/config.yaml", "-o", "{case}/out/plan.json"],
            "run": ["run", "{case}/config.yaml", "-q"]}[command]
    case(name, argv, ["tracker.csv", *stderr], tracker=tracker, **kw)  # type: ignore[arg-type]


def config_case(name: str, config: str | bytes, stderr: list[str], *, command: str = "check-config",
                **kw: object) -> None:
    argv = {"check-config": ["check-config", "{case}/config.yaml"],
            "compile": ["compile", "{case}/config.yaml", "-o", "{case}/plan.json"],
            "run": ["run", "{case}/config.yaml", "-q"]}[command]
    case(name, argv, ["config.yaml", *stderr], config=config, **kw)  # type: ignore[arg-type]


def execute_case(name: str, mutate: str, stderr: list[str], *, argv: list[str] | None = None,
                 **kw: object) -> None:
    case(name, argv or ["execute", "{case}/plan.json", "-q"], stderr, plan={"mutate": mutate}, **kw)


def replace(old: str, new: str, text: str = CONFIG) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# -- tracker: file level -------------------------------------------------------------------------

tracker_case("tracker_empty", "", ["the file is empty"], description="empty tracker file")
tracker_case("tracker_whitespace_only", "\n \n\n", ["the file is empty"],
             description="tracker with blank lines only")
tracker_case("tracker_header_only", TRACKER.splitlines()[0] + "\n", ["no data rows"],
             description="header row and nothing else")
tracker_case("tracker_missing_column",
             dump([[c for j, c in enumerate(r) if HEADER[j] != "unit"] for r in rows()]),
             ["row 1", "missing required column", "'unit'"],
             description="required column 'unit' missing from the header")
tracker_case("tracker_misspelt_column", TRACKER.replace("analysis_ready", "analysis_redy", 1),
             ["row 1", "'analysis_ready'", "did you mean 'analysis_redy'"],
             description="a required column spelt wrongly")
tracker_case("tracker_duplicate_column", TRACKER.replace("study_name", "notes", 1),
             ["row 1", "column 'notes'", "appears 2 times"],
             description="two columns with the same name")
tracker_case("tracker_latin1", set_cells(4, study_name="Autumn radio geo pilot (Île-de-France)")
             .encode("latin-1"), ["line 4", "not valid UTF-8", "0xCE", "save the file as UTF-8"],
             description="Latin-1 bytes in a UTF-8 file")
tracker_case("tracker_utf16", TRACKER.encode("utf-16"), ["UTF-16", "save the file as UTF-8"],
             description="UTF-16 (Excel 'Unicode text') file")
tracker_case("tracker_semicolon", TRACKER.replace(",", ";"),
             ["row 1", "separated by semicolons", "comma-separated"],
             description="semicolon-delimited file (European Excel)")
tracker_case("tracker_binary_xlsx", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40,
             ["binary file", "export the sheet as CSV"],
             description="a zip/xlsx workbook saved as .csv")
tracker_case("tracker_unclosed_quote",
             TRACKER.replace(",Summer online video geo test,", ',"Summer online video geo test,'),
             ["row 3", "never closed"], description="a quoted field that is never closed")
tracker_case("tracker_misplaced_quote",
             TRACKER.replace(",Summer online video geo test,", ',Summer "online" video geo test,'),
             ["row 3", "column 'study_name'", "misplaced quote"],
             description="a quote inside an unquoted field")
tracker_case("tracker_ragged_row",
             TRACKER.replace("geo-2025-02,Summer online video geo test,",
                             "geo-2025-02,Summer, online video geo test,", 1),
             ["row 3", "22 fields", "header has 21"],
             description="an unquoted comma shifts a row's fields")


# -- tracker: values -------------------------------------------------------------------------------

def value_case(name: str, row: int, column: str, value: str, fragments: list[str], description: str,
               **cells: str) -> None:
    tracker_case(name, set_cells(row, **{column: value}, **cells),
                 [f"row {row}", f"column '{column}'", repr(value.strip()) if value.strip() else "",
                  *fragments], description=description)


value_case("unit_unknown", 3, "unit", "ratios", ["unknown unit", "did you mean 'ratio'"],
           "unknown unit (typo)")
value_case("unit_not_a_unit", 4, "unit", "percent", ["unknown unit", "relative_percent"],
           "unknown unit")
value_case("estimate_non_numeric", 3, "estimate", "abc", ["not a finite number"],
           "non-numeric estimate")
value_case("estimate_nan", 3, "estimate", "NaN", ["not a finite number"], "NaN estimate")
value_case("estimate_inf", 3, "estimate", "inf", ["not a finite number"], "infinite estimate")
value_case("estimate_neg_infinity", 5, "estimate", "-Infinity", ["not a finite number"],
           "negative infinite estimate")
value_case("estimate_overflow", 5, "estimate", "1e999", ["not a finite number"],
           "an estimate that overflows to infinity")
value_case("estimate_thousands_sep", 5, "estimate", "1,048", ["not a finite number"],
           "a quoted estimate with a thousands separator")
value_case("estimate_empty", 3, "estimate", "", ["estimate is empty"], "empty estimate")
value_case("se_zero", 3, "standard_error", "0", ["must be > 0"], "standard error of zero")
value_case("se_negative", 5, "standard_error", "-0.02", ["must be > 0"],
           "negative standard error")
value_case("se_text", 5, "standard_error", "n/a", ["not a finite number"],
           "non-numeric standard error")
value_case("ci_inverted", 2, "ci_lower", "7.4", ["below ci_upper", "inverted"],
           "inverted confidence interval (lower > upper)", ci_upper="1.1", estimate="4.2")
value_case("ci_zero_width", 2, "ci_lower", "7.4", ["below ci_upper"],
           "zero-width confidence interval", ci_upper="7.4", estimate="7.4")
value_case("ci_excludes_estimate", 2, "estimate", "9.5", ["outside its confidence interval"],
           "confidence interval that does not contain the estimate")
value_case("ci_level_0", 2, "ci_level", "0", ["not a valid confidence level"], "ci_level 0")
value_case("ci_level_100", 2, "ci_level", "100", ["not a valid confidence level"], "ci_level 100")
value_case("ci_level_150", 8, "ci_level", "150", ["not a valid confidence level"], "ci_level 150")
value_case("ci_level_1", 8, "ci_level", "1", ["not a valid confidence level"],
           "ci_level 1 (neither a fraction nor a percentage)")
tracker_case("ci_partial", set_cells(2, ci_level=""),
             ["row 2", "column 'ci_level'", "a confidence interval needs all three"],
             description="ci_lower and ci_upper given without ci_level")
value_case("ratio_zero", 3, "estimate", "0", ["must be > 0", "'ratio'"], "ratio of zero")
value_case("ratio_negative", 3, "estimate", "-1.031", ["must be > 0", "'ratio'"],
           "negative ratio")
value_case("relative_percent_minus_100", 10, "estimate", "-100", ["must be > -100",
           "'relative_percent'"], "relative change of -100 %")
value_case("relative_percent_below_minus_100", 11, "estimate", "-140", ["must be > -100",
           "'relative_percent'"], "relative change below -100 %")
value_case("relative_fraction_minus_1", 4, "estimate", "-1", ["must be > -1",
           "'relative_fraction'"], "relative fraction of -1 (-100 %)")
value_case("ci_lower_outside_domain", 2, "ci_lower", "-120", ["must be > -100",
           "'relative_percent'"], "a CI bound outside the transform's domain")
value_case("analysis_ready_bad", 3, "analysis_ready", "maybe", ["not a yes/no value", "true/false"],
           "analysis_ready that is not a boolean")
value_case("window_bad_date", 3, "window_start", "2025-02-30", ["not a valid date", "YYYY-MM-DD"],
           "impossible calendar date")
value_case("window_reversed", 3, "window_end", "2025-05-01", ["before window_start"],
           "window_end before window_start")
value_case("scenario_unknown", 4, "uncertainty_scenario", "med", ["unknown uncertainty_scenario",
           "low, medium, high"], "unknown uncertainty scenario level")
tracker_case("no_uncertainty", set_cells(4, uncertainty_scenario=""),
             ["row 4", "no uncertainty", "standard_error"],
             description="a row with no SE, CI or scenario")
value_case("study_id_empty", 3, "study_id", " ", ["study_id is empty"], "blank study_id")
tracker_case("study_id_duplicate", set_cells(6, study_id="geo-2025-02"),
             ["row 3", "column 'study_id'", "'geo-2025-02'", "repeated in rows 3, 6"],
             description="duplicate study_id")
tracker_case("very_long_field", set_cells(5, notes="x" * 12_000),
             ["row 5", "column 'notes'", "12000 characters", "at most 10000"],
             description="a 12 000-character field")
_multiline = rows()
_multiline[1][HEADER.index("notes")] = "90% CI, from the vendor's report;\nsecond line, with commas"
_multiline[2][HEADER.index("study_name")] = "Summer online video, geo test"
_multiline[3][HEADER.index("estimate")] = "2,5"
tracker_case("embedded_newline_row_number", dump(_multiline),
             ["row 4", "column 'estimate'", "'2,5'", "not a finite number"],
             stderr_absent=["row 5"],
             description="quoted commas and an embedded newline above a bad value: the error "
                         "names the spreadsheet row (4), not the physical line (5)")
_crlf = dump(_multiline).replace("\n", "\r\n").replace(";\r\nsecond", ";\nsecond")
tracker_case("embedded_newline_crlf", _crlf,
             ["row 4", "column 'estimate'", "'2,5'"], stderr_absent=["row 5"],
             description="as embedded_newline_row_number, with CRLF record terminators")
tracker_case("many_errors", set_cells(3, estimate="x", standard_error="-1", unit="parsec"),
             ["row 3", "column 'unit'", "column 'estimate'", "column 'standard_error'"],
             description="several errors in one row are all reported")
tracker_case("bad_tracker_compile", set_cells(3, standard_error="0"),
             ["row 3", "column 'standard_error'", "must be > 0"], command="compile",
             description="compile refuses a bad tracker and writes no plan")
tracker_case("bad_tracker_run", set_cells(3, estimate="NaN"),
             ["row 3", "column 'estimate'", "'NaN'"], command="run",
             description="run refuses a bad tracker and writes no plan or run directory")


# -- tracker path ------------------------------------------------------------------------------------

check("tracker_missing_file", ["tracker.csv", "no such tracker file"], tracker=None,
      description="data.tracker names a file that does not exist")
check("tracker_is_directory", ["trackerdir", "is a directory"],
      config=replace("tracker: tracker.csv", "tracker: trackerdir"),
      files={"trackerdir/README": "a directory, not a CSV\n"},
      description="data.tracker names a directory")
case("tracker_missing_compile", ["compile", "{case}/config.yaml", "-o", "{case}/plan.json"],
     ["tracker.csv", "no such tracker file"], tracker=None,
     description="compile with a missing tracker")


# -- config -------------------------------------------------------------------------------------------

config_case("config_empty", "", ["the config is empty"], description="empty config file")
config_case("config_comments_only", "# nothing here\n", ["the config is empty"],
            description="config with comments only")
config_case("config_list", "- version: 1\n- project: x\n", ["must be a YAML mapping", "list"],
            description="config that is a YAML list")
config_case("config_tabs", replace("  name: bad_inputs\n", "\tname: bad_inputs\n"),
            ["line 3", "column 1", "tab", "use spaces"], description="tab used for indentation")
config_case("config_syntax", replace("  scale: log_relative\n", "  scale: [log_relative\n"),
            ["YAML error at line"], description="unclosed flow sequence")
config_case("config_latin1", replace("notes: \"", "notes: \"Crème brûlée. ").encode("latin-1"),
            ["not UTF-8", "line 4"], description="config saved as Latin-1")
config_case("config_unknown_key", replace("chains: 2", "chians: 2"),
            ["'sampler.chians'", "did you mean 'chains'"], description="unknown key with a typo")
config_case("config_unknown_top_key", CONFIG + "reportng: {interval: 0.9}\n",
            ["unknown key 'reportng'", "did you mean 'reporting'"],
            description="unknown top-level key with a typo")
config_case("config_unknown_key_nothing_close", CONFIG + "colour: blue\n",
            ["unknown key 'colour'"], stderr_absent=["did you mean"],
            description="unknown key with no close match")
config_case("config_chains_word", replace("chains: 2", "chains: four"),
            ["'sampler.chains'", "'four'", "a whole number"],
            description="wrong type: sampler.chains: four")
config_case("config_draws_float", replace("draws: 100", "draws: 100.5"),
            ["'sampler.draws'", "100.5", "a whole number"], description="wrong type: float draws")
config_case("config_evidence_types_string", replace("evidence_types: [geo_test]",
                                                    "evidence_types: geo_test"),
            ["'analysis.evidence_types'", "a list"],
            description="wrong type: a string where a list is expected")
config_case("config_scale_unknown", replace("scale: log_relative", "scale: log"),
            ["'analysis.scale'", "'log'", "log_relative", "percentage_point"],
            description="unknown scale")
config_case("config_mu_sd_negative", replace("mu_sd: 1.0", "mu_sd: -1.0"),
            ["'priors.mu_sd'", "-1.0", "> 0"], description="negative prior sd")
config_case("config_mu_sd_nan", replace("mu_sd: 1.0", "mu_sd: .nan"),
            ["'priors.mu_sd'", "nan", "finite"], description="NaN prior sd")
config_case("config_interval_150", replace("interval: 0.95", "interval: 1.5"),
            ["'reporting.interval'", "1.5"], description="reporting interval out of range")
config_case("config_project_name", replace("name: bad_inputs", "name: bad inputs/../x"),
            ["'project.name'", "bad inputs/../x", "letters, digits, _ and -"],
            description="project name with spaces and a path")
config_case("config_missing_data", replace("data:\n  tracker: tracker.csv\n", ""),
            ["'data' is required"], description="missing required section")
config_case("config_version_2", replace("version: 1", "version: 2"), ["'version'", "2"],
            description="unknown config version")
config_case("config_readiness_order", replace("readiness: {min_rows_directional: 3, min_rows_ready: 4}",
                                              "readiness: {min_rows_directional: 4, min_rows_ready: 2}"),
            ["readiness", "min_rows_ready must be >= min_rows_directional"], stderr_absent=["dict"],
            description="readiness thresholds in the wrong order")
config_case("config_duplicate_key", replace("  metric: sales\n", "  metric: sales\n  metric: roi\n"),
            ["duplicate key 'metric'", "line"], description="a key given twice")
_bomb = "version: 1\n" + "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
config_case("config_alias_bomb", _bomb, ["anchors and aliases are not supported", "line 2"],
            description="billion-laughs YAML alias bomb")
config_case("config_python_tag", replace("project:\n", "project: !!python/object/apply:os.system "
                                                       "[\"echo pwned > pwned.txt\"]\nx:\n"),
            ["could not determine a constructor", "only plain YAML"],
            description="!!python/object/apply tag (code execution attempt)")
config_case("config_python_object", "version: 1\nproject: !!python/object:builtins.dict {}\n",
            ["could not determine a constructor", "only plain YAML"],
            description="!!python/object tag")
config_case("config_compile_unknown_key", replace("  prior: false\n", "  priors: false\n"),
            ["'sensitivity.priors'", "did you mean 'prior'"], command="compile",
            description="compile refuses a bad config and writes no plan")
config_case("config_run_wrong_type", replace("on_failure: warn", "on_failure: never"),
            ["'diagnostics.on_failure'", "'never'", "block", "warn"], command="run",
            description="run refuses a bad config and writes nothing")
case("config_missing_file", ["check-config", "{case}/nope.yaml"], ["nope.yaml", "no such config file"],
     description="the config file does not exist")
case("config_is_directory", ["compile", "{case}/confdir"], ["confdir", "is a directory"],
     files={"confdir/README": "a directory\n"}, description="the config path is a directory")


# -- output locations ------------------------------------------------------------------------------

case("compile_output_under_file", ["compile", "{case}/config.yaml", "-o", "{case}/afile/plan.json"],
     ["afile", "cannot write the plan", "not a directory"],
     files={"afile": "a regular file, not a directory\n"},
     description="compile -o below a regular file (fails for root too)")
case("compile_output_readonly_dir", ["compile", "{case}/config.yaml", "-o", "{case}/ro/plan.json"],
     ["ro/plan.json", "cannot write the plan"], files={"ro/README": "read-only directory\n"},
     readonly=["ro"], description="compile -o into a read-only directory (skipped as root)")
case("compile_output_plan_json_is_directory", ["compile", "{case}/config.yaml", "-o", "{case}/odir"],
     ["odir/plan.json", "cannot write the plan"], files={"odir/plan.json/README": "a directory\n"},
     description="compile -o DIR where DIR/plan.json is a directory: no temporary file is left")
case("compile_default_output_under_file", ["compile", "{case}/config.yaml"],
     ["afile", "cannot write the plan"], files={"afile": "a regular file\n"},
     config=replace("directory: out", "directory: afile/out"),
     description="outputs.directory below a regular file")
case("run_output_under_file", ["run", "{case}/config.yaml", "-q"],
     ["afile", "cannot be created", "not a directory"],
     files={"afile": "a regular file\n"}, config=replace("directory: out", "directory: afile/out"),
     description="run with outputs.directory below a regular file")
case("run_output_not_a_run_dir", ["run", "{case}/config.yaml", "-q"],
     ["mydocs", "not a marketbayesmeta run directory"],
     files={"mydocs/thesis.txt": "precious\n"}, config=replace("directory: out", "directory: mydocs"),
     description="run into an existing directory that is not a run directory: refused, and no "
                 "plan.json is dropped into it")
execute_case("execute_out_under_file", "none", ["afile", "cannot be created", "not a directory"],
             argv=["execute", "{case}/plan.json", "-q", "--out", "{case}/afile/run"],
             files={"afile": "a regular file\n"},
             description="execute --out below a regular file (fails for root too)")
execute_case("execute_out_readonly_dir", "none", ["ro", "not writable"],
             argv=["execute", "{case}/plan.json", "-q", "--out", "{case}/ro/run"],
             files={"ro/README": "read-only directory\n"}, readonly=["ro"],
             description="execute --out under a read-only directory (skipped as root)")
execute_case("execute_out_is_file", "none", ["afile", "not a directory"],
             argv=["execute", "{case}/plan.json", "-q", "--out", "{case}/afile"],
             files={"afile": "a regular file\n"}, description="execute --out an existing file")
execute_case("execute_out_not_a_run_dir", "none", ["mydocs", "not a marketbayesmeta run directory"],
             argv=["execute", "{case}/plan.json", "-q", "--out", "{case}/mydocs"],
             files={"mydocs/thesis.txt": "precious\n"},
             description="execute --out an existing directory that is not a run directory")


# -- plans ------------------------------------------------------------------------------------------

execute_case("plan_truncated", "truncate", ["plan.json", "not a readable plan", "invalid JSON"],
             description="plan.json cut off half-way")
execute_case("plan_empty", "empty", ["plan.json", "not a readable plan"],
             description="empty plan.json")
execute_case("plan_binary", "binary", ["plan.json", "not a readable plan"],
             description="plan.json with non-UTF-8 bytes")
execute_case("plan_edited", "edit", ["plan.json", "does not match its plan_hash", "Recompile"],
             description="plan.json edited after compile (hash mismatch)")
execute_case("plan_hash_removed", "drop_hash", ["plan.json", "does not match its plan_hash"],
             description="plan.json with its plan_hash deleted")
execute_case("plan_future_format", "future_format",
             ["plan.json", "unsupported plan format", "marketbayesmeta.plan/3",
              "marketbayesmeta.plan/2"], description="plan written by a future version")
execute_case("plan_not_object", "json_list", ["plan.json", "expected a JSON object"],
             description="plan.json holding a JSON list")
execute_case("plan_nan_literal", "nan_literal", ["plan.json", "not a readable plan", "NaN"],
             description="plan.json with a NaN literal")
execute_case("plan_missing_field", "drop_field", ["plan.json", "not a valid plan", "'layout'"],
             description="plan.json with a required field removed")
execute_case("plan_stale_tracker", "stale_tracker", ["stale", "tracker", "--allow-stale"],
             description="tracker changed after compile: the plan is stale")
execute_case("plan_missing", "delete", ["plan.json", "no such plan file"],
             description="the plan file does not exist")
execute_case("plan_is_directory", "none", ["plandir", "is a directory"],
             argv=["execute", "{case}/plandir", "-q"], files={"plandir/README": "a directory\n"},
             description="the plan path is a directory")
execute_case("plan_edited_subprocess", "edit", ["plan.json", "does not match its plan_hash"],
             subprocess=True, description="edited plan, through a real process")
case("check_config_bad_tracker_subprocess", ["check-config", "{case}/config.yaml"],
     ["tracker.csv", "row 3", "column 'estimate'", "'abc'"],
     tracker=set_cells(3, estimate="abc"), subprocess=True,
     description="non-numeric estimate, through a real process")
case("config_alias_bomb_subprocess", ["check-config", "{case}/config.yaml"],
     ["anchors and aliases are not supported"], config=_bomb, subprocess=True,
     description="alias bomb, through a real process")


# -- arguments --------------------------------------------------------------------------------------

case("args_execute_without_plan", ["execute"], ["PLAN"],
     description="execute without a plan argument")
case("args_jobs_not_a_number", ["execute", "{case}/plan.json", "--jobs", "many"], ["--jobs", "many"],
     description="--jobs that is not a number")
case("args_compile_o_with_two_configs",
     ["compile", "{case}/config.yaml", "{case}/config.yaml", "-o", "{case}/p.json"],
     ["-o/--output takes one config"], description="-o with several configs")


def main() -> None:
    for old in HERE.iterdir():
        if old.is_dir() and not old.name.startswith(("_", ".")):
            shutil.rmtree(old)
    for name, spec in sorted(CASES.items()):
        target = HERE / name
        for rel, content in spec["files"].items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", newline="")
        spec["expect"]["stderr"] = [s for s in spec["expect"]["stderr"] if s]
        (target / "expect.json").write_text(json.dumps(spec["expect"], indent=2, ensure_ascii=False)
                                            + "\n", encoding="utf-8")
    print(f"wrote {len(CASES)} cases to {HERE}")


if __name__ == "__main__":
    main()
