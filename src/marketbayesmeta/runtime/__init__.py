"""The runtime: a frozen plan -> a run directory. Reads nothing but the plan.

The steps, in order (``execute.execute_plan``):

1. integrity and staleness of the plan; the run directory's lock and staging (``rundir``);
2. per pool (``pool_run.run_pool``), directly for a single pool or as tasks for a portfolio
   (``portfolio`` on ``dispatch``: serial, local workers or Dask; unchanged pools reused):
   a. effect_preparation and readiness tables, blockers and plan reasons;
   b. the MCMC check of the main fit (``fits`` on ``model``; self-extending when only Monte Carlo
      precision falls short; ``diagnostics`` against the ``exact`` engine);
   c. the reported numbers, all exact (``numbers`` over ``exact_tables``; ``sensitivity``,
      ``prior_checks``), or MCMC summaries with ``reporting.summaries: mcmc`` (``tables``,
      ``posterior``);
   d. posterior.nc, run_status.json (``status``), the reports (:mod:`marketbayesmeta.report`);
3. portfolio.csv and the root run_status.json of a portfolio; manifest.json; the swap into place.

Every file is written through the output catalogue (:mod:`marketbayesmeta.outputs`) by ``csvio``.
"""
