# Template of report.ipynb (percent format: each "# %%" line starts a cell).
# Every cell is static: the run's inputs reach the notebook only as the files in its working
# directory (the run directory), read once by marketbayesmeta.report.load_run. Nothing from the
# run is ever written into a cell. The outline (sections and their items) is
# marketbayesmeta.report.sections. Built by marketbayesmeta.report.notebook.build_notebook().

# %%
import warnings

warnings.filterwarnings("ignore")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from marketbayesmeta import report as R  # noqa: E402

# %% tags=["parameters"]
RUN_DIR = "."  # the run directory; the report reads only files in it

# %%
run = R.load_run(RUN_DIR)

# %%
R.show_section("summary", run)

# %%
R.show_section("review", run)

# %%
R.show_section("evidence", run)

# %%
R.show_section("sensitivity", run)

# %%
R.show_section("triangulation", run)

# %%
R.show_section("history", run)

# %%
R.show_section("moderators", run)

# %%
R.show_section("appendix", run)
