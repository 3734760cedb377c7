"""Plausibility checks over the rows that could enter one pool (pure; issue 15 items 1 and 6).

Input (:func:`plausibility_checks`): one DataFrame, one row per tracker row that could enter the
pool, with the tracker's columns ``row`` (spreadsheet row), ``study_id``, ``unit``, ``estimate``,
``standard_error``, ``ci_lower``, ``ci_upper``, ``ci_level`` (a fraction; NaN when absent) and the
model-scale effect ``model_estimate``, ``model_se``; optional text columns ``design``,
``population``, ``window_start``, ``window_end`` (ISO dates or ""). Output: a tuple of
:class:`~.checks.Check`, blocking first. Thresholds are the named constants below.

**unit_shift** (blocking until acknowledged): the signature of a percent typed as a fraction or the
reverse.

* Value rules: a ``relative_fraction`` estimate >= 1 (a lift of 100 % or more: "relative_percent?");
  a ``proportion_difference`` with |estimate| > 1 (impossible: "percentage_point?").
* Factor rule, within a unit family — relative effects (relative_percent, relative_fraction, ratio,
  log_relative) or absolute differences (percentage_point, proportion_difference). Each row is put
  on its family's base by the linear map of its unit (percent / 100, ratio − 1, log_relative as is:
  log(1 + x) ≈ x for lifts of a few per cent; percentage_point / 100), so that a percent/fraction
  slip is an exact factor 100 on both the estimate and the SE. Only rows with source uncertainty
  take part (the SE, or the CI width / 2z when a complete CI is given, as in effect preparation);
  a family needs ``MIN_PEERS + 1`` such rows. For row i, the reference is the median of the SEs of
  the *other* rows of the family (leave-one-out: the row cannot hide in its own reference).
  The row is flagged when its SE is off by a factor F with
  ``UNIT_SHIFT_MIN_FACTOR <= F <= UNIT_SHIFT_MAX_FACTOR`` and the estimate does not contradict:

  - ``UNIT_SHIFT_MIN_FACTOR`` = 10 is the geometric midpoint between "no shift" (1×) and a shift
    (100×): on the log scale the row is closer to the shifted reading than to the stated one.
    ``UNIT_SHIFT_MAX_FACTOR`` = 2000 = 100 × 20: a shift by 100 of a study whose SE is up to
    twentyfold from the others' median (dat.bcg's SEs span ~12-fold). Beyond that no unit slip
    explains the numbers (the SE is still a ``se_outlier``).
  - The model-scale SE (``model_se``, against the median of the same peers) must be off in the
    same direction by at least ``UNIT_SHIFT_MODEL_MIN_FACTOR`` (4×). The linear map exaggerates
    the width of a wide interval around a large effect (a risk ratio of 1.56 with 95 % CI
    0.37–6.6 is 15× the median linear SE of dat.bcg's other trials, 2.9× on the log scale), while
    a slip stays far off on the model scale: 100× for fraction numbers typed as percent, and for
    percent numbers typed as a fraction below 1 (above 1 the value rule speaks) log(1 + x)
    compresses the factor to at least 50× (so >= 5.3× even for a study 9.5× more precise than
    its peers).
  - The estimate is compared only when it carries information: the row's own |z| = |estimate| / SE
    >= ``INFORMATIVE_Z`` (z is unchanged by a unit slip, so this reads the same under both
    readings) *and* the other rows' median |z| >= ``INFORMATIVE_Z`` (their estimates are not
    noise around zero). Then it must be off in the same direction by at least
    ``ESTIMATE_AGREEMENT_FACTOR`` (3×) relative to the median |estimate| of the other rows;
    otherwise the row reads as a genuinely precise (or imprecise) study and is left to
    ``se_outlier``. An estimate near zero, or a pool of noisy estimates, says nothing about the
    unit, so the SE decides.
  - Only the directions a percent/fraction slip produces are flagged (``SHIFT_SUGGESTION``): a row
    100× too small in ``relative_percent`` was probably ``relative_fraction``, in
    ``percentage_point`` probably ``proportion_difference``; a row 100× too large in
    ``relative_fraction``, ``log_relative`` or ``ratio`` probably ``relative_percent``, in
    ``proportion_difference`` probably ``percentage_point``. The other directions (a
    ``relative_percent`` row 100× too large, ...) match no slip and are left to ``se_outlier``.
  - A slipped row drags its peers' leave-one-out medians its way, so with few rows they can look
    off the other way: when rows of a family are flagged in both directions, the side with more
    rows is dropped (with one slip, its side has one row).

  Limits (why the thresholds cannot be sharper): if the SEs of a pool span up to R-fold, a natural
  row lies within R× of the others' median and a shifted one at least 100/R× away, so the SE alone
  separates the two exactly when R <= 10. Between 10- and 20-fold the estimate decides when it is
  informative; when it is not (an estimate near zero in a pool of estimates near zero), "a
  precise study of a null effect" and "an imprecise study typed 100× too small" give the same
  numbers, and no rule can tell them apart (tests/test_plausibility.py builds such a pair). The
  rule then flags, and the analyst acknowledges a study that really is that precise.

**se_outlier** (review): a model-scale SE more than ``SE_OUTLIER_FACTOR`` (10×) from the median
model-scale SE of the pool (all rows, the row included; needs 3 rows).

**dominant_weight** (review): one row carrying more than ``DOMINANT_WEIGHT_SHARE`` (half) of the
fixed-effect weight, 1/se² over the sum of 1/se² (needs 2 rows).

**outlying_estimate** (review): leave-one-out robust z on the model scale,
``z_i = |y_i − m| / sqrt(sd² + se_i² + v_m)``: m is the median of the other rows' estimates;
``sd = 1.4826 · b_n · MAD`` their robust spread (``b_n``: Croux and Rousseeuw's 1992 small-sample
factors, :data:`MAD_SMALL_SAMPLE`, n/(n − 0.8) above 9); ``v_m = (π/2) · max(sd², median(se_o²)) /
n`` the large-sample variance of a median of the n = k − 1 others. The others' spread already
holds their own sampling error, so adding the row's SE² is deliberately conservative: with a
handful of peers the MAD is a noisy scale (about 37 % efficient). Flagged when z > ``OUTLIER_Z``
(3.5, Iglewicz and Hoaglin's cut-off for the modified z-score); needs 3 rows. Simulated false
alarms per pool under a normal random-effects model (k = 3–15, SEs 0.5–3): below 1 % when tau is
at most the typical SE, about 4–6 % when tau is three times it, 13–25 % when tau is ten times it
(the studies then really are far apart).

**estimate_at_ci_edge** (review): a source estimate at, or within ``CI_EDGE_FRACTION`` (1 %) of the
width of, a bound of its own CI (a bound copied into the estimate column, a one-sided interval).

**mixed_designs**, **mixed_populations** (review): the rows name more than one design (population);
spellings that differ only in case, spaces, ``_``, ``-`` or ``.`` count as one.

**non_overlapping_windows** (review): rows with a complete measurement window (start and end) whose
windows do not all share a common day; the message lists the separate periods they fall into.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from ..checks import Check, make_check, sort_checks
from .units import UNITS, z_for_level

UNIT_SHIFT_MIN_FACTOR = 10.0
UNIT_SHIFT_MAX_FACTOR = 2000.0
UNIT_SHIFT_MODEL_MIN_FACTOR = 4.0
MIN_PEERS = 2
INFORMATIVE_Z = 2.0
ESTIMATE_AGREEMENT_FACTOR = 3.0
SE_OUTLIER_FACTOR = 10.0
DOMINANT_WEIGHT_SHARE = 0.5
OUTLIER_Z = 3.5
MAD_TO_SD = 1.4826
# Croux & Rousseeuw (1992) small-sample factors making the MAD unbiased at the normal, n = 2..9
MAD_SMALL_SAMPLE = {2: 1.196, 3: 1.495, 4: 1.363, 5: 1.206, 6: 1.200, 7: 1.140, 8: 1.129, 9: 1.107}
CI_EDGE_FRACTION = 0.01
MIN_ROWS_TO_COMPARE = 3

# unit -> (family, a, b): the family's base value is a · (x − b); an SE or CI width scales by a.
UNIT_FAMILY: dict[str, tuple[str, float, float]] = {
    "relative_percent": ("relative", 0.01, 0.0),
    "relative_fraction": ("relative", 1.0, 0.0),
    "ratio": ("relative", 1.0, 1.0),
    "log_relative": ("relative", 1.0, 0.0),
    "percentage_point": ("absolute", 0.01, 0.0),
    "proportion_difference": ("absolute", 1.0, 0.0),
}
FAMILY_LABEL = {"relative": "relative-effect", "absolute": "absolute-difference"}
# (direction, stated unit) -> the unit the numbers were probably meant in
SHIFT_SUGGESTION: dict[tuple[str, str], str] = {
    ("smaller", "relative_percent"): "relative_fraction",
    ("smaller", "percentage_point"): "proportion_difference",
    ("larger", "relative_fraction"): "relative_percent",
    ("larger", "log_relative"): "relative_percent",
    ("larger", "ratio"): "relative_percent",
    ("larger", "proportion_difference"): "percentage_point",
}
REQUIRED_COLUMNS = ("row", "study_id", "unit", "estimate", "standard_error", "ci_lower", "ci_upper",
                    "ci_level", "model_estimate", "model_se")
TEXT_COLUMNS = ("design", "population", "window_start", "window_end")
_FIX = "correct the tracker, or acknowledge the check with a reason if the numbers are right"



@dataclass(frozen=True)
class _Pool:
    """The input as numpy arrays (positional), plus each row's family-base estimate and SE."""

    row: np.ndarray
    sid: list[str]
    unit: list[str]
    est: np.ndarray
    se: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    has_ci: np.ndarray
    m_est: np.ndarray
    m_se: np.ndarray
    text: dict[str, list[str]]
    family: list[str]
    lin_est: np.ndarray  # a · (x − b)
    lin_se: np.ndarray  # a · SE, or a · CI width / 2z; NaN without source uncertainty

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Pool:
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"plausibility_checks needs columns {', '.join(missing)}")

        def num(c: str) -> np.ndarray:
            return frame[c].to_numpy(dtype=float)

        unit = [str(u) for u in frame["unit"]]
        unknown = sorted(set(unit) - set(UNIT_FAMILY))
        if unknown:
            raise ValueError(f"unknown unit(s) {', '.join(unknown)}; known: {', '.join(UNITS)}")
        a = np.array([UNIT_FAMILY[u][1] for u in unit])
        b = np.array([UNIT_FAMILY[u][2] for u in unit])
        est, se, lo, hi, level = num("estimate"), num("standard_error"), num("ci_lower"), num("ci_upper"), num("ci_level")
        has_ci = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(level)
        with np.errstate(invalid="ignore", divide="ignore"):
            ci_se = (hi - lo) / (2.0 * z_for_level(level))
        lin_se = a * np.where(has_ci, ci_se, se)
        text = {c: ([str(v) if isinstance(v, str) else "" for v in frame[c]] if c in frame.columns
                    else [""] * len(frame)) for c in TEXT_COLUMNS}
        return cls(row=frame["row"].to_numpy(dtype=np.int64), sid=[str(s) for s in frame["study_id"]],
                   unit=unit, est=est, se=se, lo=lo, hi=hi, has_ci=has_ci, m_est=num("model_estimate"),
                   m_se=num("model_se"), text=text, family=[UNIT_FAMILY[u][0] for u in unit],
                   lin_est=a * (est - b), lin_se=lin_se)

    def name(self, i: int) -> str:
        return f"row {int(self.row[i])} ({self.sid[i]})"

    def uncertainty_text(self, i: int) -> str:
        if self.has_ci[i]:
            return f"CI {self.lo[i]:g}–{self.hi[i]:g}"
        return f"SE {self.se[i]:g}" if np.isfinite(self.se[i]) else "no source uncertainty"


def plausibility_checks(rows: pd.DataFrame) -> tuple[Check, ...]:
    """Every plausibility check (module docstring) over the rows that could enter one pool."""
    if len(rows) == 0:
        return ()
    p = _Pool.of(rows)
    found: list[Check] = []
    for rule in _RULES:
        found += rule(p)
    return sort_checks(found)


# ----------------------------------------------------------------------------- unit_shift


@dataclass(frozen=True)
class _ShiftFinding:
    text: str
    suggestion: str | None
    details: dict[str, Any]


def _value_rules(p: _Pool, i: int) -> _ShiftFinding | None:
    unit, x = p.unit[i], p.est[i]
    if unit == "relative_fraction" and x >= 1:
        return _ShiftFinding(
            f"relative_fraction {x:g} means a lift of {100 * x:+g} %: did you mean relative_percent "
            f"({x:g} %)?", "relative_percent", {"rule": "relative_fraction_at_least_1"})
    if unit == "proportion_difference" and abs(x) > 1:
        return _ShiftFinding(
            f"proportion_difference {x:g} is impossible (a difference of two proportions lies "
            f"between −1 and 1): did you mean percentage_point ({x:g} pp)?", "percentage_point",
            {"rule": "proportion_difference_beyond_1"})
    return None


def _factor_rule(p: _Pool, i: int, peers: np.ndarray) -> _ShiftFinding | None:
    """The SE/estimate factor rule for row ``i`` against its family's other measured rows."""
    ref_se = float(np.median(p.lin_se[peers]))
    factor = float(p.lin_se[i] / ref_se)
    size = max(factor, 1.0 / factor)
    if not (UNIT_SHIFT_MIN_FACTOR <= size <= UNIT_SHIFT_MAX_FACTOR):
        return None
    direction = "smaller" if factor < 1 else "larger"
    suggestion = SHIFT_SUGGESTION.get((direction, p.unit[i]))
    if suggestion is None:  # no percent/fraction slip gives this direction in this unit
        return None
    model_factor = float(p.m_se[i] / np.median(p.m_se[peers]))
    if (model_factor if direction == "larger" else 1.0 / model_factor) < UNIT_SHIFT_MODEL_MIN_FACTOR:
        return None  # off on the linear scale only: a wide interval of a large effect, not a slip
    abs_peers = np.abs(p.lin_est[peers])
    ref_abs = float(np.median(abs_peers))
    z_row = abs(p.lin_est[i]) / p.lin_se[i]
    z_peers = float(np.median(abs_peers / p.lin_se[peers]))
    est_factor = abs(p.lin_est[i]) / ref_abs if ref_abs > 0 else math.nan
    informative = z_row >= INFORMATIVE_Z and z_peers >= INFORMATIVE_Z
    if informative:
        agrees = (est_factor <= 1 / ESTIMATE_AGREEMENT_FACTOR if direction == "smaller"
                  else est_factor >= ESTIMATE_AGREEMENT_FACTOR)
        if not agrees:
            return None
    unit, (family, a, b) = p.unit[i], UNIT_FAMILY[p.unit[i]]
    same_unit = all(p.unit[j] == unit for j in peers)
    ref_est = float(np.median(p.lin_est[peers])) / a + b
    who = f"other {unit} rows" if same_unit else f"other {FAMILY_LABEL[family]} rows (in {unit})"
    est_note = (f" (estimate {_ratio_text(est_factor)})" if informative and math.isfinite(est_factor)
                else "")
    text = (f"estimate {p.est[i]:g} and {p.uncertainty_text(i)} are about {size:.0f}× {direction} "
            f"than the pool's {who} (median estimate {ref_est:.3g}, median SE {ref_se / a:.3g}){est_note}: "
            f"did you mean {suggestion}?")
    details = {"rule": "se_and_estimate_factor", "direction": direction, "se_factor": _num(factor),
               "estimate_factor": _num(est_factor), "estimate_informative": bool(informative),
               "reference_se": _num(ref_se / a), "reference_estimate": _num(ref_est), "peers": int(peers.size)}
    return _ShiftFinding(text, suggestion, details)


def _ratio_text(f: float) -> str:
    return f"{1 / f:.2g}× smaller" if f < 1 else f"{f:.2g}× larger"


def _minority_direction(hits: dict[int, _ShiftFinding]) -> dict[int, _ShiftFinding]:
    """A slipped row drags the other rows' reference medians its way, so they look off the other
    way: when a family has rows flagged in both directions, the side with more rows is dropped."""
    sides = {d: [i for i, h in hits.items() if h.details["direction"] == d] for d in ("smaller", "larger")}
    if sides["smaller"] and sides["larger"] and len(sides["smaller"]) != len(sides["larger"]):
        drop = max(sides.values(), key=len)
        return {i: h for i, h in hits.items() if i not in drop}
    return hits


def _unit_shift(p: _Pool) -> list[Check]:
    findings: dict[int, list[_ShiftFinding]] = {}
    for i in range(len(p.row)):
        hit = _value_rules(p, i)
        if hit is not None:
            findings.setdefault(i, []).append(hit)
    for family in sorted(set(p.family)):
        measured = np.flatnonzero((np.array(p.family) == family) & np.isfinite(p.lin_se) & (p.lin_se > 0)
                                  & np.isfinite(p.lin_est) & np.isfinite(p.m_se) & (p.m_se > 0))
        if measured.size < MIN_PEERS + 1:
            continue
        hits = {int(i): _factor_rule(p, int(i), measured[measured != i]) for i in measured}
        for i, hit in _minority_direction({i: h for i, h in hits.items() if h is not None}).items():
            findings.setdefault(i, []).append(hit)
    out = []
    for i, hits in sorted(findings.items()):
        suggestion = next((h.suggestion for h in hits if h.suggestion), None)
        text = f"{p.name(i)}: " + "; ".join(h.text for h in hits) + f" — {_FIX}"
        details = {"unit": p.unit[i], "findings": [h.details for h in hits]}
        out.append(make_check("unit_shift", [p.row[i]], [p.sid[i]], text, suggestion=suggestion, details=details))
    return out


# ----------------------------------------------------------------------------- weights and spread


def _finite(*arrays: np.ndarray) -> np.ndarray:
    ok = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a)
    return np.flatnonzero(ok)


def _se_outliers(p: _Pool) -> list[Check]:
    idx = _finite(p.m_se)
    idx = idx[p.m_se[idx] > 0]
    if idx.size < MIN_ROWS_TO_COMPARE:
        return []
    median = float(np.median(p.m_se[idx]))
    out = []
    for i in idx:
        factor = float(p.m_se[i] / median)
        size = max(factor, 1 / factor)
        if size > SE_OUTLIER_FACTOR:
            direction = "smaller" if factor < 1 else "larger"
            out.append(make_check(
                "se_outlier", [p.row[i]], [p.sid[i]],
                f"{p.name(i)}: model-scale SE {p.m_se[i]:.3g} is {size:.0f}× {direction} than the pool's "
                f"median {median:.3g}: check the row's uncertainty (a CI at the wrong level, a variance "
                f"typed as an SE, a unit slip); if it is right, this study is far more "
                f"{'precise' if factor < 1 else 'uncertain'} than the others",
                details={"model_se": _num(p.m_se[i]), "pool_median_se": _num(median), "factor": _num(factor),
                         "threshold": SE_OUTLIER_FACTOR}))
    return out


def fixed_effect_shares(se: np.ndarray) -> np.ndarray:
    """Each row's share of the fixed-effect weight, (1/se²) / Σ(1/se²) (``se`` > 0).

    When 1/se² or its sum overflows (an SE below ~1e-154, say a subnormal typed by mistake) or every
    weight underflows to 0 (SEs above ~1e154), the weights are taken relative to the smallest SE's,
    (min se / se)²: the same shares, all finite."""
    se = np.asarray(se, dtype=float)
    with np.errstate(over="ignore", divide="ignore"):  # se² may underflow to 0
        w = 1.0 / np.square(se)
        total = w.sum()
    if not (np.isfinite(total) and total > 0):
        w = np.square(se.min() / se)
        total = w.sum()
    return w / total


def _dominant_weight(p: _Pool) -> list[Check]:
    idx = _finite(p.m_se)
    idx = idx[p.m_se[idx] > 0]
    if idx.size < 2:
        return []
    share = fixed_effect_shares(p.m_se[idx])
    out = []
    for i, s in zip(idx, share, strict=True):
        if s > DOMINANT_WEIGHT_SHARE:
            out.append(make_check(
                "dominant_weight", [p.row[i]], [p.sid[i]],
                f"{p.name(i)} carries {100 * s:.0f} % of the fixed-effect weight (1/SE²): the pooled "
                "result is mostly this one study; check its uncertainty, and read the pooled result "
                "as largely that study's",
                details={"share": _num(s), "threshold": DOMINANT_WEIGHT_SHARE}))
    return out


def robust_sd(values: np.ndarray) -> float:
    """1.4826 · b_n · MAD: a normal-consistent, small-sample-unbiased robust SD (module docstring)."""
    n = values.size
    b = MAD_SMALL_SAMPLE.get(n, n / (n - 0.8))
    return float(MAD_TO_SD * b * np.median(np.abs(values - np.median(values))))


def robust_outlier_z(y: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Leave-one-out robust z of each estimate against the others (module docstring); NaN for k < 3."""
    y, se = np.asarray(y, dtype=float), np.asarray(se, dtype=float)
    k = y.size
    z = np.full(k, np.nan)
    if k < MIN_ROWS_TO_COMPARE:
        return z
    for i in range(k):
        yo, so = np.delete(y, i), np.delete(se, i)
        sd2 = robust_sd(yo) ** 2
        v_m = (math.pi / 2) * max(sd2, float(np.median(so ** 2))) / (k - 1)
        z[i] = abs(y[i] - np.median(yo)) / math.sqrt(sd2 + se[i] ** 2 + v_m)
    return z


def _outlying(p: _Pool) -> list[Check]:
    idx = _finite(p.m_est, p.m_se)
    z = robust_outlier_z(p.m_est[idx], p.m_se[idx])
    out = []
    for n, i in enumerate(idx):
        if z[n] > OUTLIER_Z:
            others = np.delete(p.m_est[idx], n)
            out.append(make_check(
                "outlying_estimate", [p.row[i]], [p.sid[i]],
                f"{p.name(i)}: model-scale estimate {p.m_est[i]:.3g} lies {z[n]:.1f} robust SDs from the "
                f"other rows' median {np.median(others):.3g} (allowing for its SE {p.m_se[i]:.3g} and the "
                "others' spread): check the row; if it is right, the reviewer should see this outlier",
                details={"z": _num(z[n]), "threshold": OUTLIER_Z, "others_median": _num(np.median(others))}))
    return out


def _ci_edge(p: _Pool) -> list[Check]:
    out = []
    for i in np.flatnonzero(p.has_ci & np.isfinite(p.est)):
        width = p.hi[i] - p.lo[i]
        to_lower, to_upper = p.est[i] - p.lo[i], p.hi[i] - p.est[i]
        gap = min(to_lower, to_upper)
        if width > 0 and gap <= CI_EDGE_FRACTION * width:
            bound = "lower" if to_lower <= to_upper else "upper"
            out.append(make_check(
                "estimate_at_ci_edge", [p.row[i]], [p.sid[i]],
                f"{p.name(i)}: estimate {p.est[i]:g} sits at the {bound} bound of its CI "
                f"{p.lo[i]:g}–{p.hi[i]:g}: was a bound copied into the estimate column, or is the interval "
                "one-sided? Check the source",
                details={"bound": bound, "gap_fraction_of_width": _num(gap / width),
                         "threshold": CI_EDGE_FRACTION}))
    return out


# ----------------------------------------------------------------------------- comparability


def text_key(value: str) -> str:
    """Comparison key of a free-text label: case, spaces, ``_ - .`` ignored."""
    return re.sub(r"[\s_.\-]+", " ", value.casefold()).strip()


def _mixed(column: str, code: str, what: str) -> Callable[[_Pool], list[Check]]:
    def rule(p: _Pool) -> list[Check]:
        groups: dict[str, list[int]] = {}
        label: dict[str, str] = {}
        for i, v in enumerate(p.text[column]):
            key = text_key(v)
            if key:
                groups.setdefault(key, []).append(i)
                label.setdefault(key, v.strip())
        if len(groups) < 2:
            return []
        blank = [int(p.row[i]) for i, v in enumerate(p.text[column]) if not text_key(v)]
        parts = [f"'{label[k]}' ({_rows_text(p, g)})" for k, g in groups.items()]
        tail = f"; {len(blank)} row(s) give no {column}" if blank else ""
        members = [i for g in groups.values() for i in g]
        return [make_check(
            code, [p.row[i] for i in members], [p.sid[i] for i in members],
            f"the pooled rows mix {len(groups)} {what}: {', '.join(parts)}{tail}: confirm they estimate "
            f"the same effect, or pool them separately",
            details={"groups": [{column: label[k], "rows": [int(p.row[i]) for i in g]} for k, g in groups.items()],
                     "rows_without": blank})]
    return rule


def _rows_text(p: _Pool, positions: list[int]) -> str:
    rows = sorted(int(p.row[i]) for i in positions)
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(map(str, rows))


def _windows(p: _Pool) -> list[Check]:
    spans = []
    for i, (s, e) in enumerate(zip(p.text["window_start"], p.text["window_end"], strict=True)):
        if s.strip() and e.strip():
            spans.append((date.fromisoformat(s.strip()[:10]), date.fromisoformat(e.strip()[:10]), i))
    if len(spans) < 2 or max(s for s, _, _ in spans) <= min(e for _, e, _ in spans):
        return []
    spans.sort()
    periods: list[list] = []  # [start, end, positions]
    for s, e, i in spans:
        if periods and s <= periods[-1][1]:
            periods[-1][1] = max(periods[-1][1], e)
            periods[-1][2].append(i)
        else:
            periods.append([s, e, [i]])
    latest_start = max(spans, key=lambda t: (t[0], -t[2]))
    earliest_end = min(spans, key=lambda t: (t[1], t[2]))
    listed = "; ".join(f"{s.isoformat()} to {e.isoformat()} ({_rows_text(p, pos)})" for s, e, pos in periods)
    spread = (f"they fall into {len(periods)} separate periods: {listed}" if len(periods) > 1 else
              f"they are spread from {spans[0][0].isoformat()} to {max(e for _, e, _ in spans).isoformat()} "
              "without a period common to all")
    message = (f"the measurement windows of the pooled rows do not overlap in time: {p.name(earliest_end[2])} "
               f"ends {earliest_end[1].isoformat()} before {p.name(latest_start[2])} starts "
               f"{latest_start[0].isoformat()}; {spread}. "
               "The pooled effect averages over time: check that the effect is stable across these periods")
    members = [i for _, _, i in spans]
    without = [int(p.row[i]) for i in range(len(p.row)) if i not in set(members)]
    return [make_check("non_overlapping_windows", [p.row[i] for i in members], [p.sid[i] for i in members],
                       message, details={
                           "span": [spans[0][0].isoformat(), max(e for _, e, _ in spans).isoformat()],
                           "periods": [{"start": s.isoformat(), "end": e.isoformat(),
                                        "rows": sorted(int(p.row[i]) for i in pos)} for s, e, pos in periods],
                           "rows_without_window": without})]


def _num(x: float) -> float | None:
    """A JSON-safe float (None for NaN/inf), so a check can go into the canonical plan."""
    x = float(x)
    return x if math.isfinite(x) else None


_RULES: tuple[Callable[[_Pool], list[Check]], ...] = (
    _unit_shift, _se_outliers, _dominant_weight, _outlying, _ci_edge,
    _mixed("design", "mixed_designs", "designs"),
    _mixed("population", "mixed_populations", "populations"),
    _windows,
)
