"""Synthetic portfolio tracker for the ``portfolio`` benchmark section (issue 19).

An advertiser's tracker with one pool per metric x channel x market: by default 2 metrics
(``sales`` from geo tests, ``awareness`` from brand-lift studies) x 10 channels x 5 markets = 100
pools of 8 analysis-ready studies each, every estimate on ``relative_percent``. Within a pool the
studies follow the random-effects model the package fits, on the log-relative scale:

    theta_i ~ N(mu, tau^2),   y_i ~ N(theta_i, s_i^2),   estimate = 100 (exp(y_i) - 1)

with ``mu`` from the channel's typical lift scaled per market, ``tau`` one of a few realistic
heterogeneities, and ``s_i`` the study's standard error (sales 0.8-3 %, awareness 1.5-4 %). About
a third of the studies report a 90 % or 95 % CI instead of an SE (the CI is symmetric on the log
scale, as a vendor's report on the percent scale would be asymmetric); the others report the SE on
the percent scale (delta method: ``100 exp(y_i) s_i``). Every study has its own measurement window,
so no two rows look like the same study entered twice. A few triangulate-only MMM rows (sales, one
per channel in the first market, reading a little high as MMMs tend to) come on top.

The truth (``mu``, ``tau``, each study's ``theta`` and ``s``) is kept with the rows, so that a
benchmark or test can check what the model recovers. Everything is drawn from one seeded
generator in a fixed order: the same arguments give the same bytes.

    from portfolio_data import make_portfolio
    data = make_portfolio()              # 100 pools x 8 studies + 10 MMM rows
    data.write_csv(path)                 # the tracker
    data.pools[0].name                   # "sales_tv_north"; .metric, .channel, .market, .mu, ...

    python benchmarks/portfolio_data.py OUT.csv [--channels N --markets N --studies N --seed S]
"""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

PORTFOLIO_GEN_VERSION = 1  # bump when the generated rows change (cache file names use it)

HEADER = ("study_id", "study_name", "evidence_type", "metric", "unit", "estimate", "standard_error",
          "ci_lower", "ci_upper", "ci_level", "uncertainty_scenario", "analysis_ready", "brand", "market",
          "channel", "population", "window_start", "window_end", "design", "source", "notes")

# typical true lift on the log-relative scale (about that many percent / 100)
CHANNEL_LIFT = {"tv": 0.035, "ctv": 0.03, "online_video": 0.025, "search": 0.05, "social": 0.02,
                "display": 0.01, "radio": 0.015, "podcast": 0.02, "ooh": 0.012, "print": 0.008}
MARKETS = ("north", "south", "east", "west", "central")


@dataclass(frozen=True)
class MetricSpec:
    """How one metric's studies look: evidence type, lift multiple, SE range (log scale), design."""

    name: str
    evidence_type: str
    lift_multiple: float
    lift_offset: float
    se_range: tuple[float, float]
    design: str
    population: str


METRICS = (
    MetricSpec("sales", "geo_test", 1.0, 0.0, (0.008, 0.03), "matched-market holdout", "all shoppers"),
    MetricSpec("awareness", "brand_lift", 1.5, 0.02, (0.015, 0.04), "randomised exposed/control",
               "adults 18-54"),
)
HETEROGENEITY = (0.005, 0.015, 0.03)  # tau on the log-relative scale: small, moderate, large
CI_LEVELS = ((90, 1.6448536269514722), (95, 1.959963984540054))
MMM_BIAS = 0.015  # MMM read-outs of sales run this much high (log scale)


@dataclass
class Pool:
    """One pool of the portfolio and its truth (log-relative scale)."""

    name: str
    metric: str
    evidence_type: str
    channel: str
    market: str
    mu: float
    tau: float
    study_ids: list[str] = field(default_factory=list)
    theta: list[float] = field(default_factory=list)  # each study's true effect
    se: list[float] = field(default_factory=list)  # each study's standard error

    def filters(self) -> dict[str, str]:
        """The tracker columns that select this pool's rows besides metric and evidence type."""
        return {"channel": self.channel, "market": self.market}


@dataclass
class Portfolio:
    """The tracker rows (text cells, in ``HEADER`` order) and the pools they form."""

    rows: list[dict[str, str]]
    pools: list[Pool]

    def write_csv(self, path: str | Path) -> Path:
        """Write the tracker atomically (a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=HEADER, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, path)
        return path

    @property
    def mmm_rows(self) -> list[dict[str, str]]:
        return [r for r in self.rows if r["evidence_type"] == "mmm"]


def _pct(y: float) -> float:
    return 100.0 * float(np.expm1(y))


def _row(**cells: object) -> dict[str, str]:
    row = dict.fromkeys(HEADER, "")
    row.update({k: str(v) for k, v in cells.items()})
    return row


def make_portfolio(*, metrics: Sequence[MetricSpec] = METRICS, channels: Sequence[str] = tuple(CHANNEL_LIFT),
                   markets: Sequence[str] = MARKETS, studies_per_pool: int = 8, mmm_market: str | None = None,
                   brand: str = "acme", seed: int = 20260701) -> Portfolio:
    """The synthetic tracker: one pool per metric x channel x market (in that order), each of
    ``studies_per_pool`` ready studies; MMM sales rows for every channel in ``mmm_market`` (default:
    the first market; "" for none). Unknown channels get a lift of 2 %."""
    rng = np.random.default_rng(seed)
    mmm_market = markets[0] if mmm_market is None else mmm_market
    start = date(2022, 1, 3)
    rows: list[dict[str, str]] = []
    pools: list[Pool] = []
    for spec in metrics:
        for channel in channels:
            base = CHANNEL_LIFT.get(channel, 0.02)
            for market in markets:
                mu = (spec.lift_multiple * base + spec.lift_offset) * float(rng.uniform(0.5, 1.5))
                tau = float(rng.choice(HETEROGENEITY))
                pool = Pool(f"{spec.name}_{channel}_{market}", spec.name, spec.evidence_type, channel, market,
                            mu, tau)
                for k in range(studies_per_pool):
                    theta = float(rng.normal(mu, tau))
                    s = float(rng.uniform(*spec.se_range))
                    y = float(rng.normal(theta, s))
                    cells: dict[str, object] = {"estimate": f"{_pct(y):.2f}"}
                    if rng.random() < 1 / 3:
                        level, z = CI_LEVELS[int(rng.integers(len(CI_LEVELS)))]
                        cells.update(ci_lower=f"{_pct(y - z * s):.2f}", ci_upper=f"{_pct(y + z * s):.2f}",
                                     ci_level=level, notes=f"{level}% CI from the vendor's report")
                    else:
                        cells["standard_error"] = f"{100.0 * np.exp(y) * s:.2f}"
                    window = start + timedelta(weeks=10 * k)
                    study_id = f"{spec.evidence_type}-{channel}-{market}-{k + 1:02d}"
                    rows.append(_row(study_id=study_id,
                                     study_name=f"{channel} {spec.evidence_type.replace('_', ' ')} "
                                                f"{market} #{k + 1}",
                                     evidence_type=spec.evidence_type, metric=spec.name, unit="relative_percent",
                                     analysis_ready="yes", brand=brand, market=market, channel=channel,
                                     population=spec.population, window_start=window.isoformat(),
                                     window_end=(window + timedelta(weeks=6)).isoformat(), design=spec.design,
                                     source="synthetic", **cells))
                    pool.study_ids.append(study_id)
                    pool.theta.append(theta)
                    pool.se.append(s)
                pools.append(pool)
                if spec.name == "sales" and market == mmm_market:
                    s = float(rng.uniform(0.01, 0.02))
                    y = float(rng.normal(mu + MMM_BIAS, s))
                    rows.append(_row(study_id=f"mmm-{channel}-{market}", study_name=f"MMM {channel} {market}",
                                     evidence_type="mmm", metric="sales", unit="relative_percent",
                                     estimate=f"{_pct(y):.2f}", standard_error=f"{100.0 * np.exp(y) * s:.2f}",
                                     analysis_ready="yes", brand=brand, market=market, channel=channel,
                                     population=spec.population, window_start="2023-01-01",
                                     window_end="2023-12-31", design="marketing mix model", source="synthetic",
                                     notes="model-based attribution: triangulate only"))
    return Portfolio(rows, pools)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--channels", type=int, default=len(CHANNEL_LIFT))
    parser.add_argument("--markets", type=int, default=len(MARKETS))
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20260701)
    args = parser.parse_args(argv)
    data = make_portfolio(channels=tuple(CHANNEL_LIFT)[:args.channels], markets=MARKETS[:args.markets],
                          studies_per_pool=args.studies, seed=args.seed)
    data.write_csv(args.out)
    print(f"{args.out}: {len(data.pools)} pools, {len(data.rows)} rows ({len(data.mmm_rows)} MMM)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
