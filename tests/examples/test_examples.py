"""The examples run (small sizes) and log what they say: the Probe in a CleanRL-style torch loop,
inside a PureJaxRL-style scan, and as a Stable-Baselines3 callback. Each logged value equals the
same measure recomputed plainly in the test from the parameters, optimiser state and batch the
Probe was given."""

import copy
import importlib.util
import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.interference import Probe

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # flax dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def plain_rank(A, eps=0.1):
    """Update rank (Appendix B.1): singular values above eps times the largest, numpy SVD."""
    s = np.linalg.svd(np.asarray(A, np.float64), compute_uv=False)
    return int(np.sum(s > eps * s[0]))


def plain_srank(features, delta=0.01):
    """srank (Kumar et al. 2021): the fewest singular values holding 1 - delta of their sum."""
    s = np.linalg.svd(np.asarray(features, np.float64), compute_uv=False)
    return int(np.sum(np.cumsum(s) / s.sum() < 1 - delta) + 1)


def plain_dormant(hidden, tau=0.025):
    """Fraction of units, over all layers [n, units], whose E|h| is <= tau times its layer's."""
    scores = [np.abs(h).mean(0) / np.abs(h).mean() for h in map(np.asarray, hidden)]
    return float(np.mean(np.concatenate(scores) <= tau))


@partial(jax.jit, static_argnums=0)
def ppo_reference_arrays(probe, params, opt_state, batch):
    """What the purejaxrl Probe measures, written out: the update matrix row by row (one
    optimiser step on sample i's loss, the change in action probabilities at every sample), one
    step on the mean loss, and the post-tanh units of ActorCritic's two towers."""
    obs = batch["obs"]

    def probs(p):
        return jax.nn.softmax(probe.apply_fn(p, obs))

    def stepped(grads):
        return optax.apply_updates(params, probe.optimizer.update(grads, opt_state, params)[0])

    def row(sample):
        return jnp.linalg.norm(probs(stepped(jax.grad(probe.loss_fn)(params, sample))) - probs(params),
                               axis=-1)  # fmt: skip

    grads = jax.grad(lambda p: jnp.mean(jax.vmap(probe.loss_fn, (None, 0))(p, batch)))(params)
    layer, hidden = params["params"], []
    for first, second in (("Dense_0", "Dense_1"), ("Dense_2", "Dense_3")):  # policy, value
        h = jnp.tanh(obs @ layer[first]["kernel"] + layer[first]["bias"])
        hidden += [h, jnp.tanh(h @ layer[second]["kernel"] + layer[second]["bias"])]
    return jax.vmap(row)(batch), grads, probs(params), probs(stepped(grads)), hidden


def ppo_reference(probe, params, opt_state, batch):
    """The purejaxrl Probe's measures recomputed from the inputs it was given."""
    A, grads, before, after, hidden = ppo_reference_arrays(probe, params, opt_state, batch)
    return {
        "interference/update_rank": plain_rank(A),
        "dynamics/dormant_0.025": plain_dormant(hidden),
        "dynamics/param_norm": np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(params))),
        "dynamics/grad_norm": np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(grads))),
        "dynamics/churn": np.mean(0.5 * np.abs(after - before).sum(-1)),  # total variation
    }


def test_purejaxrl_ppo_measures_on_schedule_inside_the_scan(capsys, monkeypatch):
    example, probes = load("purejaxrl_ppo"), []

    class InputsProbe(Probe):
        """The example's Probe, its metrics joined by the inputs it measured ("probed")."""

        def __post_init__(self):
            super().__post_init__()
            probes.append(self)

        def on_schedule(self, step, every, params, opt_state, batch, *rest):
            metrics = super().on_schedule(step, every, params, opt_state, batch, *rest)
            return {**metrics, "probed": (params, opt_state, batch)}

    monkeypatch.setattr(example, "Probe", InputsProbe)
    metrics = example.main(["--updates", "4", "--probe-every", "2", "--num-envs", "4",
                            "--num-steps", "32", "--k", "16"])  # fmt: skip
    rank = metrics["interference/update_rank"]
    assert rank.shape == (4,)  # stacked over updates, as the scan's other metrics
    on = np.array([False, True, False, True])  # updates 2 and 4
    assert np.isnan(rank[~on]).all() and np.isfinite(rank[on]).all()
    assert ((rank[on] >= 1) & (rank[on] <= 16)).all()
    (probe,) = probes
    for i in np.flatnonzero(on):
        want = ppo_reference(probe, *jax.tree.map(lambda x, i=i: x[i], metrics["probed"]))
        assert rank[i] == want["interference/update_rank"], (i, rank[i], want)
        assert metrics["dynamics/dormant_0.025"][i] == want["dynamics/dormant_0.025"]
        for name in ("dynamics/param_norm", "dynamics/grad_norm", "dynamics/churn"):
            np.testing.assert_allclose(metrics[name][i], want[name], rtol=1e-5, equal_nan=False,
                                       err_msg=name)  # fmt: skip
    assert (metrics["dynamics/param_norm"][on] > 0).all()
    assert (metrics["dynamics/churn"][on] > 0).all()  # a step of Adam moves the policy
    assert np.isfinite(metrics["losses/loss"]).all()
    assert capsys.readouterr().out.count("update rank") == 2


def torch_reference(probe, batch, start, *, reduce, center, layers):
    """The torch Probe's measures recomputed plainly: one step of a copy of the optimiser on a deep
    copy of the module, on the mean of the per-transition losses; the update matrix by tdgen.
    layers(module, obs) -> {name: post-activation units [n, units]}."""
    import torch

    from tdgen.interference.torch import update_matrix as torch_update_matrix
    from tdgen.interference.torch.contract import per_sample

    module, optimizer = probe.module, probe.optimizer
    twin = copy.deepcopy(module)
    twin_optimizer = type(optimizer)(twin.parameters(), **optimizer.defaults)
    twin_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # no aliasing
    loss_fn, fields = probe.loss_fn, None
    if probe.per_sample_loss:  # the training loss as written: the mean of the batch's losses
        fields, batch = type(batch), batch._asdict()
        probe.loss_fn(twin, fields(**batch)).mean().backward()
        loss_fn = per_sample(probe.loss_fn, fields)
    else:
        k = len(batch[probe.obs])
        losses = [loss_fn(twin, {key: v[i] for key, v in batch.items()}) for i in range(k)]
        torch.stack(losses).mean().backward()
    obs = batch[probe.obs]
    grads = [p.grad for p in twin.parameters() if p.grad is not None]
    twin_optimizer.step()
    with torch.no_grad():
        before, after = module(obs), twin(obs)
        hidden = {name: h.numpy() for name, h in layers(module, obs).items()}
        moved = sum(((p - s) ** 2).sum() for p, s in zip(module.parameters(), start, strict=True))
    if probe.head == "value":  # the fraction of states whose greedy action changes
        churn = (before.argmax(-1) != after.argmax(-1)).double().mean()
    else:  # the mean total variation of the action distributions
        churn = (0.5 * (after.softmax(-1) - before.softmax(-1)).abs().sum(-1)).mean()
    A = torch_update_matrix(module, optimizer, loss_fn, batch, inputs=obs, reduce=reduce,
                            center=center)  # fmt: skip
    return {
        "interference/update_rank": plain_rank(A),
        "dynamics/churn": float(churn),
        "dynamics/grad_norm": float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))),
        "dynamics/init_distance": float(moved.sqrt()),
        "dynamics/dormant_0.025": plain_dormant(hidden.values()),
        **{f"dynamics/feature_srank/{name}": plain_srank(h) for name, h in hidden.items()},
    }


def reference_probe(**options):
    """The torch Probe, each call's values joined by "reference/<name>": `torch_reference`."""
    from tdgen.interference.torch import Probe as TorchProbe

    class ReferenceProbe(TorchProbe):
        def __init__(self, module, *args, **kwargs):
            self.start = [p.detach().clone() for p in module.parameters()]
            super().__init__(module, *args, **kwargs)

        def __call__(self, batch, reference=None):
            want = torch_reference(self, batch, self.start, **options)  # before: state as given
            got = super().__call__(batch, reference)
            return {**got, **{f"reference/{name}": value for name, value in want.items()}}

    return ReferenceProbe


def assert_reference(row, exact, close):
    for name in exact:
        assert row[name] == row[f"reference/{name}"], (name, row)
    for name in close:
        np.testing.assert_allclose(row[name], row[f"reference/{name}"], rtol=1e-5,
                                   equal_nan=False, err_msg=name)  # fmt: skip


def test_cleanrl_dqn_torch_is_measured_by_the_torch_probe(capsys, monkeypatch):
    pytest.importorskip(
        "torch", reason="the torch example needs the extra: pip install 'tdgen[torch]'"
    )
    example = load("cleanrl_dqn_torch")

    def layers(q_network, obs):  # the two ReLU layers of QNetwork
        return {"network.1": q_network.network[:2](obs), "network.3": q_network.network[:4](obs)}

    monkeypatch.setattr(example, "Probe", reference_probe(reduce="max", center="none",
                                                          layers=layers))  # fmt: skip
    history = example.main(["--total-timesteps", "600", "--probe-every", "300",
                            "--learning-starts", "100", "--k", "16"])  # fmt: skip
    assert [row["step"] for row in history] == [300, 600]
    for row in history:
        assert 1 <= row["interference/update_rank"] <= 16
        assert 0 <= row["dynamics/dormant_0.025"] <= 1 and 0 <= row["dynamics/churn"] <= 1
        assert np.isfinite(row["dynamics/grad_norm"]) and row["perf/probe_seconds"] > 0
        assert_reference(row, exact=("interference/update_rank", "dynamics/dormant_0.025",
                                     "dynamics/feature_srank/network.3"),
                         close=("dynamics/churn", "dynamics/grad_norm",
                                "dynamics/init_distance"))  # fmt: skip
    # training moved the network away from its initialisation, measured against the snapshot
    assert history[-1]["dynamics/init_distance"] > 0
    assert capsys.readouterr().out.count("update rank") == 2


def test_sb3_ppo_logs_the_probe_through_the_callback(capsys, monkeypatch):
    pytest.importorskip(
        "stable_baselines3",
        reason="stable-baselines3 is not installed: the SB3 example needs the extra, "
        "pip install 'tdgen[sb3]'",
    )
    from tdgen.interference.torch import sb3

    def layers(logits, obs):  # PolicyLogits: the policy network's two tanh layers
        policy = logits.policy
        features = policy.extract_features(obs, policy.pi_features_extractor)
        net = policy.mlp_extractor.policy_net
        return {"policy.mlp_extractor.policy_net.1": net[:2](features),
                "policy.mlp_extractor.policy_net.3": net[:4](features)}  # fmt: skip

    monkeypatch.setattr(sb3, "Probe", reference_probe(reduce="policy", center="none",
                                                      layers=layers))  # fmt: skip
    history = load("sb3_ppo").main(["--steps", "512", "--every", "256", "--k", "16",
                                    "--n-steps", "256"])  # fmt: skip
    assert [row["step"] for row in history] == [256, 512]
    for row in history:
        assert 1 <= row["interference/update_rank"] <= 16
        assert 0 <= row["dynamics/churn"] <= 1  # total variation of the action distributions
        assert np.isfinite(row["dynamics/feature_srank/policy.mlp_extractor.policy_net.1"])
        assert_reference(row, exact=("interference/update_rank", "dynamics/dormant_0.025",
                                     "dynamics/feature_srank/policy.mlp_extractor.policy_net.1",
                                     "dynamics/feature_srank/policy.mlp_extractor.policy_net.3"),
                         close=("dynamics/churn", "dynamics/grad_norm"))  # fmt: skip
    assert capsys.readouterr().out.count("update rank") == 2
