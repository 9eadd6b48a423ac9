"""The torch instrument takes a training loop's batch loss as it is written (per-sample values,
reduction="none"), computes on the module's device, and loads without JAX."""

import subprocess
import sys
import textwrap
from typing import NamedTuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tdgen.errors import InputError  # noqa: E402
from tdgen.interference.torch import Probe, update_matrix  # noqa: E402

K = 10
MEASURES = ("dormant", "feature_rank", "grad_norm", "grad_noise", "loss_ntk", "churn",
            "hessian_max", "update_rank")  # fmt: skip
UPDATE_MATRIX = sys.modules["tdgen.interference.torch.update_matrix"]  # the name is a function


class ReplayBufferSamples(NamedTuple):  # CleanRL samples SB3's buffer: these are its fields
    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    rewards: torch.Tensor


def setup(device="cpu"):
    torch.manual_seed(0)
    q = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    target = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(q.parameters(), lr=1e-2)
    data = ReplayBufferSamples(
        torch.randn(K, 4), torch.randint(0, 3, (K, 1)), torch.randn(K, 4),
        torch.randint(0, 2, (K, 1)).float(), torch.randn(K, 1),
    )  # fmt: skip
    for _ in range(3):  # a warm Adam state, as in a running agent
        optimizer.zero_grad()
        cleanrl_loss(q, target, data).mean().backward()
        optimizer.step()
    return q.to(device), target.to(device), optimizer, data


def cleanrl_loss(q, target, data, gamma=0.99):
    """CleanRL dqn.py's TD loss as written there, per sample (reduction="none")."""
    with torch.no_grad():
        target_max, _ = target(data.next_observations).max(dim=1)
        td_target = data.rewards.flatten() + gamma * target_max * (1 - data.dones.flatten())
    old_val = q(data.observations).gather(1, data.actions).squeeze(-1)
    return torch.nn.functional.mse_loss(td_target, old_val, reduction="none")


def transition_loss(target, gamma=0.99):
    """The same loss in the one-transition form."""

    def loss(q, t):
        with torch.no_grad():
            y = t["rewards"][0] + gamma * target(t["next_observations"][None])[0].max() * (
                1 - t["dones"][0]
            )
        return (y - q(t["observations"][None])[0].gather(-1, t["actions"])[0]) ** 2

    return loss


def test_a_per_sample_batch_loss_gives_what_the_transition_loss_gives():
    q, target, optimizer, data = setup()
    batched = Probe(q, optimizer, lambda m, d: cleanrl_loss(m, target, d), per_sample_loss=True,
                    measures=MEASURES, obs="observations", center="none")  # fmt: skip
    single = Probe(q, optimizer, transition_loss(target), measures=MEASURES,
                   obs="observations", center="none")  # fmt: skip
    got, want = batched(data), single(data._asdict())
    assert got.keys() == want.keys() and "interference/update_rank" in got
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
    A = update_matrix(q, optimizer, lambda m, d: cleanrl_loss(m, target, ReplayBufferSamples(**d)),
                      data._asdict(), inputs=data.observations, per_sample_loss=True)  # fmt: skip
    np.testing.assert_allclose(A, single.update_matrix(data._asdict()), rtol=1e-5, atol=1e-7)


def test_a_mean_reduced_batch_loss_is_one_message_naming_reduction_none():
    q, target, optimizer, data = setup()

    def mean_loss(m, d):
        return cleanrl_loss(m, target, d).mean()  # CleanRL's F.mse_loss default

    probe = Probe(q, optimizer, mean_loss, per_sample_loss=True, obs="observations",
                  center="none")  # fmt: skip
    with pytest.raises(ValueError, match=r"returned \[\] for a batch of 2, not \[2\].*'none'"):
        probe(data)


def test_the_torch_instrument_computes_on_the_module_device(monkeypatch):
    """A module on the meta device (a stand-in for CUDA): a numpy batch is moved to it, every
    forward, backward and optimiser step runs there, and only the reads back to the host (mocked
    here, as meta tensors hold no data) leave it. A tensor left on the CPU would fail first."""
    q, target, optimizer, data = setup()
    meta = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    meta = meta.to("meta")
    meta_optimizer = torch.optim.Adam(meta.parameters(), lr=1e-2)
    loss = transition_loss(target.to("meta"))
    batch = {key: value.numpy() for key, value in data._asdict().items()}
    with pytest.raises(NotImplementedError, match="meta tensor"):  # the first read to the host
        update_matrix(meta, meta_optimizer, loss, {**batch, "obs": batch["observations"]})
    devices = []

    def read(tensor):
        devices.append(tensor.device.type)
        return np.zeros(tuple(tensor.shape), np.float32)

    monkeypatch.setattr(UPDATE_MATRIX, "to_numpy", read)
    probe = Probe(meta, meta_optimizer, loss, obs="observations", center="drift")
    for vectorize in (True, False):
        A = update_matrix(meta, meta_optimizer, loss, {**batch, "obs": batch["observations"]},
                          vectorize=vectorize, center="drift")  # fmt: skip
        assert A.shape == (K, K)
    assert probe.update_matrix(batch).shape == (K, K)
    assert set(devices) == {"meta"}


def test_unknown_names_are_input_errors_with_a_suggestion():
    q, target, optimizer, data = setup()
    loss = transition_loss(target)
    with pytest.raises(
        InputError, match="unknown measure 'update_rnak': did you mean 'update_rank'"
    ):
        Probe(q, optimizer, loss, measures=("update_rnak",), center="none")
    with pytest.raises(InputError, match="unknown center 'drfit': did you mean 'drift'"):
        Probe(q, optimizer, loss, center="drfit")
    with pytest.raises(InputError, match="unknown reduction 'mxa': did you mean 'max'"):
        update_matrix(q, optimizer, loss, {"obs": data.observations}, reduce="mxa")


def test_the_torch_instrument_loads_and_measures_without_jax():
    script = textwrap.dedent("""
        import sys, time
        start = time.perf_counter()
        import torch
        from tdgen.interference.torch import Probe
        seconds = time.perf_counter() - start
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        loss = lambda m, t: (m(t["obs"][None])[0].max() - t["r"]) ** 2
        batch = {"obs": torch.randn(6, 4), "r": torch.randn(6)}
        out = Probe(net, torch.optim.Adam(net.parameters()), loss, center="none")(batch)
        assert "interference/update_rank" in out, sorted(out)
        assert not [m for m in sys.modules if m == "jax" or m.startswith("jax.")], "JAX loaded"
        print(f"{seconds:.2f}")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_jax_probe_names_an_unknown_measure_as_input_error():
    from tdgen.interference import Probe as JaxProbe

    with pytest.raises(InputError, match="did you mean 'stable_rank'"):
        JaxProbe(lambda p, x: x, lambda p, t: 0.0, None, measures=("stabel_rank",), center="none")


def test_the_cleanrl_tutorial_adds_at_most_six_lines_and_they_log_the_update_rank():
    """docs/cleanrl.md's diff to CleanRL's dqn.py, its added lines run hunk by hunk on a CleanRL
    Q-network, optimiser, target network and sampled batch (the names dqn.py has there)."""
    from pathlib import Path
    from types import SimpleNamespace

    page = Path(__file__).resolve().parents[2] / "docs" / "cleanrl.md"
    diff = page.read_text().split("```diff\n")[1].split("```")[0]
    hunks = [[line[1:] for line in hunk.splitlines() if line.startswith("+")]
             for hunk in diff.split("\n@@")[1:]]  # fmt: skip
    assert sum(map(len, hunks)) <= 6 and all(hunks)
    q, target, optimizer, data = setup()
    logged = {}
    writer = SimpleNamespace(add_scalar=lambda name, value, step: logged.update({name: value}))
    scope = {"q_network": q, "target_network": target, "optimizer": optimizer, "data": data,
             "args": SimpleNamespace(gamma=0.99), "writer": writer, "global_step": 10_000}  # fmt: skip
    for hunk in hunks:
        exec(textwrap.dedent("\n".join(hunk)), scope)
    want = Probe(q, optimizer, transition_loss(target), obs="observations", center="none")
    assert logged == pytest.approx(want(data._asdict()), rel=1e-4, abs=1e-6)
    assert "interference/update_rank" in logged
