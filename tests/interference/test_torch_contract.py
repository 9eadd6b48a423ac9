"""A torch user's slips are one tdgen message naming the contract, and a CleanRL batch (a named
tuple of the buffer's fields, or numpy arrays) goes in as it is."""

import warnings
from typing import NamedTuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tdgen.interference.torch import Probe, contract  # noqa: E402

K = 12


class ReplayBufferSamples(NamedTuple):  # the fields of SB3's buffer, which CleanRL samples
    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor


def setup():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    fields = {"observations": torch.randn(K, 4), "actions": torch.randint(0, 3, (K,)),
              "rewards": torch.randn(K)}  # fmt: skip

    def loss(module, t):  # CleanRL's names, gather for the fast path
        q = module(t["observations"][None])[0].gather(-1, t["actions"][None])[0]
        return 0.5 * (q - t["rewards"]) ** 2

    return net, optimizer, fields, loss


MEASURES = ("dormant", "grad_norm", "churn", "update_rank")


def test_a_named_tuple_or_numpy_batch_gives_what_the_dict_gives():
    net, optimizer, fields, loss = setup()
    probe = Probe(net, optimizer, loss, measures=MEASURES, center="none", obs="observations")
    want = probe(dict(fields))
    assert probe(ReplayBufferSamples(**fields)) == want
    assert probe({k: v.numpy() for k, v in fields.items()}) == want


def test_slips_are_one_message_naming_the_contract():
    net, optimizer, fields, loss = setup()
    with pytest.raises(ValueError, match="plain tuple; pass a dict .* named tuple"):
        Probe(net, optimizer, loss, center="none", obs="observations")(tuple(fields.values()))
    with pytest.raises(ValueError, match="no observation field 'obs' .*pass obs='observations'"):
        Probe(net, optimizer, loss, center="none")(fields)

    def unbatched(module, t):  # CleanRL's batch loss as it is: gather on dim 1, no [None]
        return module(t["observations"]).gather(1, t["actions"].view(1, 1)).squeeze() ** 2

    with pytest.raises(ValueError, match=r"loss_fn failed on one transition .*t\['obs'\]\[None\]"):
        Probe(net, optimizer, unbatched, center="none", obs="observations")(fields)

    def shaped(module, t):  # a loss of shape [1]
        return module(t["observations"][None])[0].gather(-1, t["actions"][None]) ** 2

    with pytest.raises(ValueError, match=r"returned \[1\] for one transition, not a 0-d tensor"):
        Probe(net, optimizer, shaped, center="none", obs="observations")(fields)


def test_a_loss_vmap_cannot_run_warns_once_and_gives_the_same_numbers():
    net, optimizer, fields, loss = setup()

    def indexed(module, t):  # q[a]: data-dependent under vmap, so the loop fallback
        return 0.5 * (module(t["observations"][None])[0][t["actions"]] - t["rewards"]) ** 2

    measures = ("grad_norm", "grad_noise")
    want = Probe(net, optimizer, loss, measures=measures, center="none", obs="observations")(fields)
    contract._warned.discard("slow")
    probe = Probe(net, optimizer, indexed, measures=measures, center="none", obs="observations")
    with pytest.warns(RuntimeWarning, match=r"q.gather\(-1, t\['action'\]\[None\]\)\[0\]"):
        got = probe(fields)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe(fields)  # once per process
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=key)
