"""The PyMC model (SPEC §7), built once per tau family and reused across every fit of a plan.

Data (y, se) and prior parameters are ``pm.Data`` inputs, so a sensitivity fit only swaps values
and samples again; the NUTS step (and its compiled log-density) is built once and reused.

Parameterisation (the same model in sampler-friendly coordinates). With few studies and small
SEs, plain NUTS on (mu, log tau) meets two problems: a funnel (sd(mu | tau) grows with tau) and,
under log tau, a double-exponential wall in the upper tail of a half-normal prior; both cause
divergences and under-explore tau's tail. Default ``parameterisation="conditional"``:

* half-normal: tau = scale·softplus(v) with a flat v, the half-normal density and the Jacobian
  added (tau ≈ scale·e^v near 0, ≈ scale·v in the tail: no double-exponential wall);
  half-Cauchy: tau = scale·tan(πu/2), u = sigmoid(v), v ~ Logistic(0, 1), which is exactly
  half-Cauchy(scale) by the inverse-CDF construction, with logistic tails in v. (All ops have C
  implementations; erfinv does not, which would put the whole density on Python's slow path.)
* mu = c(tau) + d(tau)·z, with c and d the mean and sd of mu's exact conditional given tau
  (Normal–Normal conjugacy), z flat, and the prior of mu plus the Jacobian log d(tau) added.

The likelihood is evaluated as written. ``parameterisation="centered"`` keeps the textbook form
(mu ~ Normal, tau ~ HalfNormal/HalfCauchy with a log transform), used by tests that show why the
default exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .libraries import load

load()  # PyTensor's compile directory before its first import; ArviZ without Numba (see there)

import pymc as pm  # noqa: E402
import pytensor.tensor as pt  # noqa: E402
from pymc.backends.ndarray import NDArray  # noqa: E402

from ..families import family as family_of  # noqa: E402

PARAMETERISATIONS = ("conditional", "centered")


@dataclass
class FitModel:
    """A compiled model plus its reusable NUTS step."""

    model: pm.Model
    family: str
    parameterisation: str
    target_accept: float
    _step: Any = field(default=None, repr=False)
    _trace: Any = field(default=None, repr=False)
    _nutpie: Any = field(default=None, repr=False)
    _inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    def set_inputs(self, y: np.ndarray, se: np.ndarray, mu_mean: float, mu_sd: float, tau_scale: float) -> None:
        self._inputs = {"y": np.asarray(y, float), "se": np.asarray(se, float), "mu_mean": float(mu_mean),
                        "mu_sd": float(mu_sd), "tau_scale": float(tau_scale)}
        with self.model:
            pm.set_data(self._inputs)

    def nutpie_model(self) -> Any:
        """nutpie's compiled model (numba; compiled once, ~10 s) with the current inputs swapped in."""
        import nutpie

        if self._nutpie is None:
            self._nutpie = nutpie.compile_pymc_model(self.model)
        return self._nutpie.with_data(**self._inputs) if self._inputs else self._nutpie

    def step(self) -> Any:
        """The NUTS step, compiled once. Its log-density function is one C function for the whole
        graph (PyTensor's ``c`` linker; compiled once per machine into PyTensor's cache), not one C
        thunk per operation driven by PyTensor's VM, and it trusts its input (NUTS passes it float64
        arrays only; PyMC means to set ``trust_input`` but sets it on a wrapper): the same C code
        per operation and the same draws, about 40 % less time per gradient evaluation. A graph
        with an operation that has no C code falls back to the VM (buffers kept between calls).
        The compiled function is kept across runs (:mod:`.function_cache`): a later run links it
        without rewriting its graph again, with the compiler flags found for this machine before
        (:mod:`.march_flags`)."""
        if self._step is None:
            import pytensor
            from pytensor.compile.mode import Mode, get_default_mode

            from . import march_flags
            from .function_cache import cached_compiles

            march_flags.restore()  # g++'s -march=native flags as found on this machine before
            default = get_default_mode()
            vm = default.clone(link_kwargs={"allow_gc": False})
            with self.model, cached_compiles():
                try:  # no C compiler (pytensor.config.cxx empty): PyTensor's own default, in Python
                    mode = Mode(linker="c", optimizer=default.provided_optimizer) if pytensor.config.cxx else vm
                    self._step = pm.NUTS(target_accept=self.target_accept, compile_kwargs={"mode": mode})
                except NotImplementedError:  # an operation without C code
                    self._step = pm.NUTS(target_accept=self.target_accept, compile_kwargs={"mode": vm})
            compiled = getattr(self._step._logp_dlogp_func, "_pytensor_function", None)
            if compiled is not None:
                compiled.trust_input = True
            march_flags.remember()
        return self._step

    def trace(self) -> Any:
        """The trace every ``pm.sample`` of this model copies per chain: its point function (the
        deterministics, e.g. mu and tau, from the sampled values) is compiled once, not once per
        chain and sample. It reads the model's data, so it follows ``set_inputs``; the traced
        variables' shapes never depend on the number of studies (scalars, one value per term)."""
        if self._trace is None:
            with self.model:
                self._trace = _TraceTemplate(model=self.model)
        return self._trace


class _TraceTemplate(NDArray):
    """An NDArray trace that PyMC copies for each chain (``pm.sample(trace=...)``); a copy gets its
    own sample arrays (a plain copy would share the template's dict between the chains)."""

    def __copy__(self) -> Any:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.samples, new._stats, new.draw_idx, new.draws = {}, None, 0, None
        return new


class _Model(pm.Model):
    """A PyMC model whose whole log-density graph (``logp()`` with its defaults) is built once.

    ``pm.sample`` builds that graph on every call to choose step methods for the variables no
    given step covers (``assign_step_methods``), even when the given NUTS step covers all of them
    and the graph goes unused: ~0.05 s per call, once per pool of a portfolio worker and per chain
    process of a run. Our models are complete before anything asks for it, so the first graph
    stands; any other ``logp`` call is PyMC's own."""

    def logp(self, vars: Any = None, jacobian: bool = True, sum: bool = True) -> Any:  # noqa: A002
        if vars is not None or not jacobian or not sum:
            return super().logp(vars=vars, jacobian=jacobian, sum=sum)
        graph = self.__dict__.get("_whole_logp")
        if graph is None:
            graph = self.__dict__["_whole_logp"] = super().logp()
        return graph


def likelihood_variance(tau: Any, se: Any) -> Any:
    """Var(y_i | mu, tau) of the likelihood with theta_i integrated out: tau² + s_i². (Tests replace
    this function to build a deliberately broken model and show the exact cross-check catches it.)"""
    return tau**2 + se**2


def build_model(y: np.ndarray, se: np.ndarray, *, mu_mean: float, mu_sd: float, tau_scale: float,
                family: str = "half_normal", parameterisation: str = "conditional",
                target_accept: float = 0.9) -> FitModel:
    """Build the random-effects model (the marginal likelihood's variance is :func:`likelihood_variance`)."""
    if parameterisation not in PARAMETERISATIONS:
        raise ValueError(f"unknown parameterisation {parameterisation!r}")
    with _Model() as model:
        y_d = pm.Data("y", np.asarray(y, float))
        se_d = pm.Data("se", np.asarray(se, float))
        m0 = pm.Data("mu_mean", float(mu_mean))
        s0 = pm.Data("mu_sd", float(mu_sd))
        scale = pm.Data("tau_scale", float(tau_scale))
        fam = family_of(family)  # an unknown family is an error, never a fallback
        tau = fam.build_conditional(scale) if parameterisation == "conditional" else fam.build_centered(scale)
        var = likelihood_variance(tau, se_d)
        if parameterisation == "conditional":
            w = 1.0 / var
            precision = 1.0 / s0**2 + pt.sum(w)
            centre = (m0 / s0**2 + pt.sum(w * y_d)) / precision
            spread = 1.0 / pt.sqrt(precision)
            z = pm.Flat("z")
            mu = pm.Deterministic("mu", centre + spread * z)
            pm.Potential("mu_prior_and_jacobian", pm.logp(pm.Normal.dist(m0, s0), mu) + pt.log(spread))
        else:
            mu = pm.Normal("mu", m0, s0)
        pm.Normal("y_obs", mu=mu, sigma=pt.sqrt(var), observed=y_d)
    return FitModel(model=model, family=family, parameterisation=parameterisation, target_accept=target_accept)


def chain_seed(seed: int, first: int) -> np.random.Generator:
    """The random state ``pm.sample(random_seed=...)`` turns into the streams of chains ``first``,
    ``first + 1``, ...: PyMC spawns one child per chain from the seed's SeedSequence, so a
    SeedSequence that has already spawned ``first`` children gives the later chains' streams.
    Sampling chains 0-1 with ``chain_seed(s, 0)`` and 2-3 with ``chain_seed(s, 2)`` draws what
    four chains with seed ``s`` draw (PyMC resets the NUTS step's tuning for every chain)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, n_children_spawned=first)))


def sample_model(fm: FitModel, *, draws: int, tune: int, chains: int, seed: int, progressbar: bool,
                 nuts_sampler: str = "pymc", first_chain: int = 0) -> Any:
    """Sample ``fm`` with its current inputs; returns ArviZ InferenceData (posterior: mu, tau).

    With PyMC, ``first_chain`` > 0 samples chains ``first_chain`` .. ``first_chain + chains - 1``
    of the run with this seed (see :func:`chain_seed`), numbered from 0 in the result."""
    if nuts_sampler == "nutpie":
        import nutpie

        idata = nutpie.sample(fm.nutpie_model(), draws=draws, tune=tune, chains=chains, seed=seed,
                              target_accept=fm.target_accept, progress_bar=progressbar)
    else:
        with fm.model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, step=fm.step(), trace=fm.trace(),
                              random_seed=chain_seed(seed, first_chain), progressbar=progressbar,
                              compute_convergence_checks=False, return_inferencedata=True)
    got = (idata.posterior.sizes.get("chain", 0), idata.posterior.sizes.get("draw", 0))
    if got != (chains, draws):
        # PyMC catches KeyboardInterrupt mid-sampling and returns truncated chains; a run built on
        # them would look complete. Re-raise instead.
        raise KeyboardInterrupt(f"sampling was interrupted ({got[0]} chains × {got[1]} draws of "
                                f"{chains} × {draws})")
    return idata


# ----------------------------------------------------------------------------- meta-regression


def build_regression_model(y: np.ndarray, se: np.ndarray, X: np.ndarray, *, beta_mean: np.ndarray,
                           beta_sd: np.ndarray, tau_scale: float, family: str = "half_normal",
                           target_accept: float = 0.9, terms: list[str] | None = None) -> FitModel:
    """The meta-regression y_i ~ N(x_i'beta + u_i, s_i²), u_i ~ N(0, tau²), beta_j ~ N(m_j, s_j²)
    independent, tau ~ family(tau_scale), in sampler-friendly coordinates (the multivariate version
    of build_model's): tau from the family's ``build_conditional``; beta = c(tau) + R(tau)^-T z with
    z flat, c the mean of beta's exact Gaussian conditional given tau and R the Cholesky factor of
    its precision P = diag(1/s_j²) + X'WX, W = diag(1/(tau² + s_i²)); the prior of beta plus the
    Jacobian log|R^-T| = -sum log diag R are added as a Potential. Given tau, z is then exactly
    N(0, I), so small-K data form no funnel between beta and tau.

    y, se, X (K x p), beta_mean, beta_sd and tau_scale are ``pm.Data`` (swap them with
    :func:`set_regression_inputs`; K may change, p may not). Posterior variables: ``beta`` (dims
    ``term``: ``terms`` or beta[0], beta[1], ...) and ``tau``.
    """
    X = np.asarray(X, float)
    if X.ndim != 2 or X.shape[0] != np.asarray(y).size or X.shape[1] < 1:
        raise ValueError(f"X must be K x p with one row per study, got shape {X.shape}")
    names = list(terms) if terms is not None else [f"beta[{j}]" for j in range(X.shape[1])]
    if len(names) != X.shape[1] or len(set(names)) != len(names):
        raise ValueError("terms must be unique, one per column of X")
    with _Model(coords={"term": names}) as model:
        y_d = pm.Data("y", np.asarray(y, float))
        se_d = pm.Data("se", np.asarray(se, float))
        x_d = pm.Data("X", X)
        m0 = pm.Data("beta_mean", np.asarray(beta_mean, float))
        s0 = pm.Data("beta_sd", np.asarray(beta_sd, float))
        scale = pm.Data("tau_scale", float(tau_scale))
        tau = family_of(family).build_conditional(scale)  # an unknown family is an error
        var = tau**2 + se_d**2
        w = 1.0 / var
        p = X.shape[1]
        precision = pt.dot(x_d.T * w, x_d) + pt.diag(1.0 / s0**2)
        chol = _cholesky_unrolled(precision, p)  # P = R R', R lower triangular
        rhs = m0 / s0**2 + pt.dot(x_d.T, w * y_d)
        z = pm.Flat("z", dims="term")
        # beta = R'^-1 (R^-1 rhs + z): the conditional mean b(tau) = P^-1 rhs plus R'^-1 z.
        shifted = [c + z[j] for j, c in enumerate(_solve_lower(chol, [rhs[j] for j in range(p)]))]
        beta = pm.Deterministic("beta", pt.stack(_solve_upper_transposed(chol, shifted)), dims="term")
        pm.Potential("beta_prior_and_jacobian",
                     pt.sum(pm.logp(pm.Normal.dist(m0, s0), beta)) - sum(pt.log(chol[j][j]) for j in range(p)))
        pm.Normal("y_obs", mu=pt.dot(x_d, beta), sigma=pt.sqrt(var), observed=y_d)
    return FitModel(model=model, family=family, parameterisation="conditional", target_accept=target_accept)


def set_regression_inputs(fm: FitModel, y: np.ndarray, se: np.ndarray, X: np.ndarray, beta_mean: np.ndarray,
                          beta_sd: np.ndarray, tau_scale: float) -> None:
    """Swap the data and priors of a model from :func:`build_regression_model` (as
    ``FitModel.set_inputs`` does for the main model); the number of terms must not change."""
    inputs = {"y": np.asarray(y, float), "se": np.asarray(se, float), "X": np.asarray(X, float),
              "beta_mean": np.asarray(beta_mean, float), "beta_sd": np.asarray(beta_sd, float),
              "tau_scale": float(tau_scale)}
    p = fm.model["beta_mean"].get_value().size
    if inputs["X"].ndim != 2 or inputs["X"].shape != (inputs["y"].size, p) or inputs["beta_sd"].shape != (p,):
        raise ValueError(f"this model has {p} terms: X must be K x {p}, beta_mean and beta_sd of length {p}")
    fm._inputs = inputs
    with fm.model:
        pm.set_data(inputs)


# p x p linear algebra written out in scalar operations (p is fixed when the model is built and
# small): pytensor's linalg ops (cholesky, solve_triangular) run in Python and make every gradient
# evaluation ~100 times slower; elementwise operations all have C (and numba) implementations.


def _cholesky_unrolled(a: Any, p: int) -> list[list[Any]]:
    """Lower-triangular Cholesky factor of the symmetric positive-definite p x p tensor ``a``,
    as rows of scalar tensors (entries above the diagonal are None)."""
    chol: list[list[Any]] = [[None] * p for _ in range(p)]
    for j in range(p):
        chol[j][j] = pt.sqrt(a[j, j] - sum(chol[j][k] ** 2 for k in range(j)))
        for i in range(j + 1, p):
            chol[i][j] = (a[i, j] - sum(chol[i][k] * chol[j][k] for k in range(j))) / chol[j][j]
    return chol


def _solve_lower(chol: list[list[Any]], b: list[Any]) -> list[Any]:
    """x with R x = b (forward substitution)."""
    x: list[Any] = []
    for i in range(len(b)):
        x.append((b[i] - sum(chol[i][k] * x[k] for k in range(i))) / chol[i][i])
    return x


def _solve_upper_transposed(chol: list[list[Any]], b: list[Any]) -> list[Any]:
    """x with R' x = b (back substitution)."""
    p = len(b)
    x: list[Any] = [None] * p
    for i in reversed(range(p)):
        x[i] = (b[i] - sum(chol[k][i] * x[k] for k in range(i + 1, p))) / chol[i][i]
    return x
