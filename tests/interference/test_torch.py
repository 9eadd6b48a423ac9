"""The PyTorch adapter against a deepcopy-and-step loop written plainly in torch."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tdtorch = pytest.importorskip("tdgen.interference.torch")

K, ACTIONS = 6, 3


def make_net(kind):
    torch.manual_seed(0)
    if kind == "mlp":
        return torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, ACTIONS)
        ), (4,)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 3, ACTIONS),
    ), (2, 5, 5)


def loss_fn(module, t):
    q = module(t["obs"][None])[0]
    return 0.5 * (q[t["action"]] - t["target"]) ** 2


OPTIMIZERS = {
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5),
}


def setup(kind, opt_name):
    net, shape = make_net(kind)
    g = torch.Generator().manual_seed(1)
    batch = {
        "obs": torch.randn(K, *shape, generator=g),
        "action": torch.randint(0, ACTIONS, (K,), generator=g),
        "target": torch.randn(K, generator=g),
    }
    opt = OPTIMIZERS[opt_name](net.parameters())
    for _ in range(3):  # warm state
        opt.zero_grad()
        sum(loss_fn(net, {key: v[i] for key, v in batch.items()}) for i in range(K)).backward()
        opt.step()
    return net, opt, batch


def reduced(out, reduce, action):
    """The reductions of Appendix B.1 of outputs [m, A]: max, the transition's action, policy."""
    if reduce == "max":
        return out.max(-1).values
    if reduce == "action":
        return out.gather(-1, action[:, None])[:, 0]
    return out.softmax(-1)  # "policy": the action probabilities


def reference(net, opt, batch, make_opt, drift=False, reduce="max"):
    with torch.no_grad():
        base = reduced(net(batch["obs"]), reduce, batch["action"])
    rows = []
    for i in range(K):
        twin = copy.deepcopy(net)
        twin_opt = make_opt(twin.parameters())
        twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
        loss_fn(twin, {key: v[i] for key, v in batch.items()}).backward()
        twin_opt.step()
        if drift:
            zero = copy.deepcopy(net)
            zero_opt = make_opt(zero.parameters())
            zero_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
            for p in zero.parameters():
                p.grad = torch.zeros_like(p)
            zero_opt.step()
            with torch.no_grad():
                for p, z, p0 in zip(
                    twin.parameters(), zero.parameters(), net.parameters(), strict=True
                ):
                    p.sub_(z - p0)
        with torch.no_grad():
            change = reduced(twin(batch["obs"]), reduce, batch["action"]) - base
            rows.append((change.norm(dim=-1) if reduce == "policy" else change).numpy())
    return np.stack(rows)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_matches_deepcopy_loop(kind, opt_name):
    net, opt, batch = setup(kind, opt_name)
    before = [p.detach().clone() for p in net.parameters()]
    state_before = copy.deepcopy(opt.state_dict())
    A = tdtorch.update_matrix(net, opt, loss_fn, batch, chunk_size=4)  # vmap, with a remainder
    want = reference(net, opt, batch, OPTIMIZERS[opt_name])
    np.testing.assert_allclose(A, want, atol=1e-6, rtol=1e-5)
    looped = tdtorch.update_matrix(net, opt, loss_fn, batch, vectorize=False)
    np.testing.assert_array_equal(looped, want)
    assert np.abs(A).max() > 1e-4
    for p, b in zip(net.parameters(), before, strict=True):  # originals untouched
        assert torch.equal(p, b)
    assert str(opt.state_dict()) == str(state_before)
    if opt_name == "adam":
        centred = tdtorch.update_matrix(net, opt, loss_fn, batch, center="drift")
        np.testing.assert_allclose(
            centred,
            reference(net, opt, batch, OPTIMIZERS[opt_name], drift=True),
            atol=1e-6,
            rtol=1e-5,
        )


def test_reductions_agree_with_jax_definitions():
    net, opt, batch = setup("mlp", "adam")
    A = tdtorch.update_matrix(net, opt, loss_fn, batch, reduce="policy")
    assert A.shape == (K, K) and np.all(A >= 0)
    want = reference(net, opt, batch, OPTIMIZERS["adam"], reduce="policy")
    np.testing.assert_allclose(A, want, atol=1e-7, rtol=1e-5)  # norms of probability changes
    A = tdtorch.update_matrix(net, opt, loss_fn, batch, reduce="action")
    assert A.shape == (K, K)
    want = reference(net, opt, batch, OPTIMIZERS["adam"], reduce="action")
    np.testing.assert_allclose(A, want, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown reduction 'mex'"):
        tdtorch.update_matrix(net, opt, loss_fn, batch, reduce="mex")
    with pytest.raises(ValueError, match="different leading axes"):
        tdtorch.update_matrix(net, opt, loss_fn, {**batch, "target": batch["target"][:2]})
