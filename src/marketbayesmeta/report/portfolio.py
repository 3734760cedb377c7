"""portfolio_report.html: one offline page for a portfolio run (several pools).

A status banner (the run's run_status.json), a status table of the pools (portfolio.csv, each
pool linked to its own ``pools/<pool>/report.html``) and a forest plot of the pools' pooled
effects in their own unit (one panel per unit). FAILED/BLOCKED pools are marked on the plot and
in the table; same safety rules as report.html (escaped text, nothing loaded from the network).
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .atomic import write_atomic
from .fmt import format_probability, to_float, truthy
from .html import find_external_references
from .load import read_csv, read_json
from .notebook import TEMPLATES
from .plots.common import COLORS, figure_png, plt
from .summary import NOT_FOR_USE
from .tables import frame_html
from .unit import Unit

PORTFOLIO_TEMPLATE = "portfolio_report.html.j2"
UNUSABLE = {"failed": "FAILED", "blocked": "BLOCKED"}


def _pool_rows(run_dir: Path) -> list[dict[str, Any]]:
    return [dict(r) for _, r in read_csv(run_dir / "portfolio.csv").iterrows()]


def plot_pools(rows: list[dict[str, Any]]) -> Any:
    """Forest plot of the pools' pooled effects, one panel per unit (estimates already in it)."""
    units = list(dict.fromkeys(str(r.get("scale") or r.get("unit") or "") for r in rows))
    pyplot = plt()
    heights = [max(1, sum(1 for r in rows if str(r.get("scale") or r.get("unit") or "") == u)) for u in units]
    fig, axes = pyplot.subplots(len(units), 1, figsize=(9, 1.2 + 0.42 * sum(heights) + 0.6 * len(units)),
                                squeeze=False, gridspec_kw={"height_ratios": heights}, layout="constrained")
    for ax, u in zip(axes[:, 0], units, strict=True):
        unit = Unit(u)
        sel = [r for r in rows if str(r.get("scale") or r.get("unit") or "") == u]
        labels = []
        for i, r in enumerate(sel):
            m, lo, hi = (to_float(r.get(k)) for k in ("estimate", "lower", "upper"))
            bad = UNUSABLE.get(str(r.get("status")), "")
            color = COLORS["flag"] if bad else COLORS["pooled"]
            if math.isfinite(m):
                ax.plot([lo, hi], [-i, -i], color=color, lw=2.4, alpha=0.8)
                ax.plot([m], [-i], "D", color=color, ms=7, mfc="white" if bad else color)
            label = str(r.get("pool") or "")[:40]
            labels.append(label + (f" ({bad}: {NOT_FOR_USE})" if bad else "")
                          + ("" if math.isfinite(m) else " (no pooled result)"))
        ax.set_yticks([-i for i in range(len(sel))], [lbl.replace("$", r"\$") for lbl in labels])
        ax.axvline(0, color="0.6", lw=0.8, ls="--")
        ax.set_xlabel(unit.axis_label)
        ax.grid(axis="x", color="0.92")
        ax.set_ylim(-len(sel) + 0.4, 0.6)
    axes[0, 0].set_title("Pooled average effect per pool (hollow red: not for use)", fontsize=10, loc="left")
    return fig


def _status_table(rows: list[dict[str, Any]]) -> str:
    import pandas as pd

    shown = []
    for r in rows:
        unit = Unit(str(r.get("scale") or ""))
        m, lo, hi = (to_float(r.get(k)) for k in ("estimate", "lower", "upper"))
        bad = UNUSABLE.get(str(r.get("status")), "")
        est = unit.estimate(m, lo, hi, r.get("interval_level")) if math.isfinite(m) else "no pooled result"
        shown.append({"pool": r.get("pool"), "status": r.get("status"), "reportable": r.get("reportable"),
                      "readiness": r.get("readiness"),
                      "average effect": est + (f" ⚠ {bad}: {NOT_FOR_USE}" if bad and math.isfinite(m) else ""),
                      "P(effect > 0)": format_probability(r.get("prob_positive")) if math.isfinite(m) else "",
                      "rows in / scenario / out": f"{r.get('rows_in', '')} / {r.get('rows_scenario', '')} / "
                                                  f"{r.get('rows_out', '')}".replace(".0", ""),
                      "reused": r.get("reused"), "reasons": r.get("reasons")})
    return frame_html(pd.DataFrame(shown), "portfolio")


def _links(rows: list[dict[str, Any]], run_dir: Path) -> str:
    items = []
    for r in rows:
        pool = str(r.get("pool") or "")
        if (run_dir / "pools" / pool / "report.html").is_file():
            href = "pools/" + quote(pool, safe="") + "/report.html"
            items.append(f'<li><a href="{html.escape(href)}">{html.escape(pool)}</a></li>')
        else:
            items.append(f"<li>{html.escape(pool)} (no report.html)</li>")
    return "<ul>" + "".join(items) + "</ul>"


def render_portfolio(run_dir: Path) -> str:
    import jinja2

    status = read_json(run_dir / "run_status.json", []) or {}
    rows = _pool_rows(run_dir)
    st = str(status.get("status") or "unknown")
    bad = [r for r in rows if str(r.get("status")) in UNUSABLE]
    reportable = sum(1 for r in rows if truthy(r.get("reportable")))
    level = "stop" if st in UNUSABLE or st == "unknown" else ("ok" if reportable == len(rows) and rows else "warn")
    banner = (f"{len(rows)} pool(s): {reportable} reportable, {len(bad)} failed or blocked "
              f"(run status: {st}). Review material, not an automatic decision.")
    try:
        png = base64.b64encode(figure_png(plot_pools(rows))).decode("ascii") if rows else None
        plot_note = "" if rows else "portfolio.csv lists no pool."
    except Exception as exc:  # noqa: BLE001 - the table still stands
        png, plot_note = None, f"The forest plot could not be drawn ({type(exc).__name__}: {exc})."
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template(PORTFOLIO_TEMPLATE).render(
        title=str(status.get("project_name") or run_dir.resolve().name), level=level, banner=banner,
        finished=str(status.get("finished_at") or "not recorded"),
        reasons=[str((r or {}).get("message", r)) if isinstance(r, dict) else str(r) for r in status.get("reasons") or []],
        table=jinja2.utils.markupsafe.Markup(_status_table(rows)), links=jinja2.utils.markupsafe.Markup(_links(rows, run_dir)),
        png=png, plot_note=plot_note)


def write_portfolio_report(run_dir: str | Path) -> list[str]:
    """Write ``portfolio_report.html`` at the top of a portfolio run directory; returns warnings."""
    run_dir = Path(run_dir)
    if not (run_dir / "portfolio.csv").is_file():
        return [f"portfolio_report.html not written: {run_dir / 'portfolio.csv'} is missing"]
    try:
        text = render_portfolio(run_dir)
    except Exception as exc:  # noqa: BLE001 - a report problem must not lose the run
        return [f"portfolio_report.html could not be built: {type(exc).__name__}: {exc}"]
    out = []
    left = find_external_references(text)
    if left:
        out.append(f"portfolio_report.html still references the network: {', '.join(left[:3])}")
    write_atomic(run_dir / "portfolio_report.html", text)
    return out
