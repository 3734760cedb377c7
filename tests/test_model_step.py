"""The compiled NUTS step and the trace template of runtime.model are speed-ups only: the draws
are those of a plain ``pm.NUTS`` with PyMC's own trace, chain for chain, and the chains do not
share their sample arrays (the trace template is copied per chain)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_tuned_step_and_trace_template_give_plain_pymc_draws() -> None:
    import pymc as pm

    from marketbayesmeta.runtime.model import build_model, sample_model

    logging.getLogger("pymc").setLevel(logging.ERROR)
    y, se = np.array([0.05, 0.01, 0.09, 0.03]), np.array([0.02, 0.03, 0.025, 0.04])
    fm = build_model(y, se, mu_mean=0.0, mu_sd=0.5, tau_scale=0.1)
    ours = sample_model(fm, draws=150, tune=150, chains=3, seed=7, progressbar=False)
    again = sample_model(fm, draws=150, tune=150, chains=3, seed=7, progressbar=False)  # template reused

    plain_model = build_model(y, se, mu_mean=0.0, mu_sd=0.5, tau_scale=0.1)
    with plain_model.model:
        plain = pm.sample(draws=150, tune=150, chains=3, cores=1, step=pm.NUTS(target_accept=0.9), random_seed=7,
                          progressbar=False, compute_convergence_checks=False)
    for name in ("mu", "tau", "z"):
        a, b, c = (d.posterior[name].values for d in (ours, again, plain))
        assert a.shape == (3, 150)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    mu = ours.posterior["mu"].values
    assert not np.array_equal(mu[0], mu[1]) and not np.array_equal(mu[1], mu[2])
    assert float(np.std(mu)) > 0


@pytest.mark.parametrize("family", ["half_normal", "half_cauchy", "exponential"])
def test_one_c_function_gives_the_vm_draws_as_the_number_of_studies_changes(family: str) -> None:
    """The random-effects model's step compiles to one C function (PyTensor's ``c`` linker: the
    speed-up is not silently lost to the VM fallback), and one compiled step reused across data of
    3, 8 and 2 studies (as a portfolio worker reuses it across pools) gives, each time, the draws of a
    step compiled for the VM, bit for bit. (The meta-regression's graph has operations without C
    code here, so it takes the VM: a whole-graph C compile of it crashed.)"""
    import pymc as pm
    from pytensor.compile.mode import get_default_mode
    from pytensor.link.c.basic import CLinker

    from marketbayesmeta.runtime.model import build_model, sample_model

    logging.getLogger("pymc").setLevel(logging.ERROR)
    rng = np.random.default_rng(3)
    data = [(rng.normal(0.05, 0.05, k), rng.uniform(0.02, 0.06, k)) for k in (3, 8, 2)]
    fm = build_model(*data[0], mu_mean=0.0, mu_sd=0.5, tau_scale=0.1, family=family)
    assert isinstance(fm.step()._logp_dlogp_func._pytensor_function.maker.linker, CLinker)
    vm = build_model(*data[0], mu_mean=0.0, mu_sd=0.5, tau_scale=0.1, family=family)
    with vm.model:
        vm_step = pm.NUTS(target_accept=0.9, compile_kwargs={"mode": get_default_mode()})
    assert not isinstance(vm_step._logp_dlogp_func._pytensor_function.maker.linker, CLinker)
    for y, se in data:
        fm.set_inputs(y, se, 0.0, 0.5, 0.1)
        vm.set_inputs(y, se, 0.0, 0.5, 0.1)
        ours = sample_model(fm, draws=100, tune=100, chains=2, seed=5, progressbar=False)
        with vm.model:
            plain = pm.sample(draws=100, tune=100, chains=2, cores=1, step=vm_step, random_seed=5,
                              progressbar=False, compute_convergence_checks=False)
        for name in ("mu", "tau"):
            np.testing.assert_array_equal(ours.posterior[name].values, plain.posterior[name].values)


def test_step_falls_back_to_the_vm_for_an_operation_without_c_code() -> None:
    """A graph with an operation that has no C implementation (here a Cholesky factor) still gets a
    working step, through PyTensor's VM, with the same log density."""
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.link.c.basic import CLinker

    from marketbayesmeta.runtime.model import FitModel

    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0, shape=2)
        chol = pt.linalg.cholesky(pt.eye(2) + pt.outer(x, x))
        pm.Potential("p", -pt.log(chol[0, 0]))  # log R00 = log(1 + x0²) / 2
    fm = FitModel(model=model, family="half_normal", parameterisation="conditional", target_accept=0.9)
    func = fm.step()._logp_dlogp_func
    assert not isinstance(func._pytensor_function.maker.linker, CLinker)
    func.set_extra_values({})
    logp, grad = func(np.array([0.3, -0.2]))
    expected = -0.5 * (0.3**2 + 0.2**2) - np.log(2 * np.pi) - 0.5 * np.log(1 + 0.3**2)
    assert logp == pytest.approx(expected)
    np.testing.assert_allclose(grad, [-0.3 - 0.3 / (1 + 0.3**2), 0.2])


def test_the_whole_log_density_graph_is_built_once_per_model_and_the_draws_are_unchanged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """pm.sample asks every time for the whole logp graph (to pick steps for variables no given
    step covers); our models build it once. The draws are those of a plain pm.Model."""
    import pymc as pm

    from marketbayesmeta.runtime import model as M

    logging.getLogger("pymc").setLevel(logging.ERROR)
    built: list[int] = []
    real = pm.Model.logp

    def counting(self, vars=None, jacobian=True, sum=True):  # noqa: A002
        if vars is None and jacobian and sum:
            built.append(id(self))
        return real(self, vars=vars, jacobian=jacobian, sum=sum)

    monkeypatch.setattr(pm.Model, "logp", counting)
    y, se = np.array([0.05, 0.01, 0.09, 0.03]), np.array([0.02, 0.03, 0.025, 0.04])
    ours = M.build_model(y, se, mu_mean=0.0, mu_sd=0.5, tau_scale=0.1)
    draws = [M.sample_model(ours, draws=80, tune=80, chains=2, seed=3, progressbar=False) for _ in range(3)]
    assert built.count(id(ours.model)) == 1
    monkeypatch.setattr(M, "_Model", pm.Model)
    plain = M.build_model(y, se, mu_mean=0.0, mu_sd=0.5, tau_scale=0.1)
    reference = [M.sample_model(plain, draws=80, tune=80, chains=2, seed=3, progressbar=False) for _ in range(2)]
    assert built.count(id(plain.model)) >= 2  # PyMC's own model: built again on every sample
    for d in draws:
        for name in ("mu", "tau"):
            np.testing.assert_array_equal(d.posterior[name].values, reference[0].posterior[name].values)
