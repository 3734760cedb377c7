# Template of report.ipynb (percent format: each "# %%" line starts a cell).
# Every cell is static: the run's inputs reach the notebook only as the files in its working
# directory (the run directory), read by marketbayesmeta.runtime.report. Nothing from the run is
# ever written into a cell. Built by marketbayesmeta.runtime.report.build_notebook().

# %% [markdown]
# # marketbayesmeta run report
#
# This notebook reads the files of one run directory (its working directory) and shows the run
# status, the evidence that was pooled, the headline result in reporting language, diagnostics and
# sensitivity. It is **review material, not an automatic decision**: a completed run is not
# automatically reportable.

# %%
import warnings

import matplotlib

from marketbayesmeta.runtime import report as R

warnings.filterwarnings("ignore")
matplotlib.use("Agg")

# %% tags=["parameters"]
RUN_DIR = "."  # the run directory; the report reads only files in it

# %%
run = R.load_run(RUN_DIR)

# %% [markdown]
# ## Run status and reportability
#
# `run_status.json` is authoritative. The checklist restates the reportability conditions (run
# completed, readiness ready, diagnostics pass, no blocking duplicates, no material prior
# dependence, no scenario-uncertainty rows) as the other files show them.

# %%
R.show_markdown("status", run)
R.show_table("reasons", run)
R.show_table("reportable_checklist", run)

# %% [markdown]
# ## Headline result

# %%
R.show_markdown("headline", run)
R.show_table("pooled_summary", run)
R.show_table("future_true_effect", run)

# %% [markdown]
# ## Readiness and evidence
#
# One row per tracker row (`effect_preparation.csv`): whether it was included, excluded or pooled
# with scenario uncertainty, why, and the transform to the model scale.

# %%
R.show_table("readiness", run)
R.show_table("rows", run)
R.show_table("duplicates", run)

# %% [markdown]
# ## Forest plot
#
# Grey squares: observed estimate with its interval from the reported standard error. Blue
# circles: the study's true effect after partial pooling (theta). Red: pooled mu. Purple: the
# latent true effect of a future comparable study (no measurement error).

# %%
R.show_plot("forest", run)
R.show_table("study_effects", run)

# %% [markdown]
# ## Priors: prior versus posterior

# %%
R.show_table("priors", run)
R.show_plot("prior_posterior", run)

# %% [markdown]
# ## Sampler diagnostics and the exact cross-check
#
# Per fit: r-hat, bulk and tail ESS, divergences, BFMI, and the distance between the MCMC and the
# exact (quadrature) posterior of mu and tau in Monte Carlo standard errors (`exact_z_*`).

# %%
R.show_table("diagnostics_fits", run)
R.show_table("failed_checks", run)
R.show_table("diagnostics_main", run)
R.show_table("exact_cross_check", run)

# %%
R.show_plot("trace", run)
R.show_plot("rank", run)

# %% [markdown]
# ## Prior diagnostics
#
# Prior weight against the fixed-effect data precision for mu, and prior-predictive checks of tau.
# Warnings are prompts to look at prior sensitivity, not pass/fail tests.

# %%
R.show_table("prior_diagnostics", run)

# %% [markdown]
# ## Posterior predictive check (in-sample)
#
# Each study's observed estimate against its in-sample posterior predictive interval. This spots
# studies out of line with the fitted model; it is not leave-one-out validation.

# %%
R.show_plot("ppc", run)
R.show_table("ppc", run)

# %% [markdown]
# ## Sensitivity
#
# The pooled mean and interval of mu under each prior spec and, when pooled rows use scenario
# uncertainty, each scenario level. Material changes follow the plan's materiality rule.

# %%
R.show_plot("sensitivity", run)
R.show_table("prior_sensitivity", run)
R.show_table("uncertainty_sensitivity", run)

# %% [markdown]
# ### Leave-one-out influence (when enabled)

# %%
R.show_plot("influence", run)
R.show_table("influence", run)

# %% [markdown]
# ## Caveats and what to check next

# %%
R.show_markdown("caveats", run)

# %% [markdown]
# ## Notes and provenance
#
# Notes are free text from the config and tracker, shown as recorded and never executed.

# %%
R.show_table("notes", run)
R.show_table("provenance", run)
R.show_table("files", run)
