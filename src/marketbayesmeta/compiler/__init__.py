"""The compiler: config + tracker -> plan. Pure (no file I/O, clock, randomness or PyMC); the file
edges are in :mod:`marketbayesmeta.api`.

The steps, in order (``build.compile_plan``):

1. ``config_parse`` / ``config``: YAML text -> validated :class:`~.config.Config`;
2. ``tracker``: CSV bytes -> validated, normalised table (every row error at once);
3. ``pools``: which pools the config asks for and which rows each considers (``split_by``);
4. per pool (``build.compile_pool``):
   ``triangulate`` (which rows are model outputs), ``prepare`` (decision, reason and the unit
   transform of every row, via ``units``), ``duplicates``, ``plausibility`` (the analyst's likely
   mistakes, with ``..checks`` for acknowledgements), ``readiness``, ``priors`` (defaults, config
   values or ``business_priors``), ``grid`` (the sensitivity fits and their seeds), ``overrides``;
5. acknowledgements applied across pools; the plan hashed (``..plan``).

``summary`` renders what compile and check-config print; ``survey`` is the ``audit`` command's
readiness and quality survey of a whole tracker.
"""
