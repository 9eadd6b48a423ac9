import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from tdgen.runs import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from tdgen.runs.checkpoint import complete_checkpoints


def _state(scale=1.0):
    params = {"w": jnp.arange(6.0).reshape(2, 3) * scale, "b": jnp.ones(3)}
    opt_state = optax.adam(1e-3).init(params)
    return {"params": params, "opt_state": opt_state, "key": jnp.array([1, 2], dtype=jnp.uint32)}


def test_round_trip_restores_values_dtypes_and_structure(tmp_path):
    state = _state(2.0)
    save_checkpoint(tmp_path, 10, state, kind="dqn")
    step, restored = load_checkpoint(latest_checkpoint(tmp_path), _state(), kind="dqn")
    assert step == 10
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert type(restored["opt_state"][0]) is type(state["opt_state"][0])  # optax NamedTuple kept


def test_keeps_the_newest_complete_checkpoints(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, _state(step), kind="dqn", keep=2)
    assert complete_checkpoints(tmp_path) == [3, 4]
    assert latest_checkpoint(tmp_path).name == "ckpt_000000000004.msgpack"


def test_a_checkpoint_without_marker_is_skipped_by_resume(tmp_path):
    save_checkpoint(tmp_path, 1, _state(), kind="dqn")
    path = save_checkpoint(tmp_path, 2, _state(), kind="dqn")
    path.with_suffix(".done").unlink()  # as if killed between the rename and the marker
    assert latest_checkpoint(tmp_path).name == "ckpt_000000000001.msgpack"
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(path, _state(), kind="dqn")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-7]), "corrupt"),
        (lambda p: p.write_bytes(b"\x00garbage" * 10), "corrupt"),
    ],
)
def test_corrupt_checkpoints_are_refused_and_left_untouched(tmp_path, damage, message):
    path = save_checkpoint(tmp_path, 5, _state(), kind="dqn")
    damage(path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, _state(), kind="dqn")
    assert path.read_bytes() == before


def test_foreign_and_mismatched_checkpoints_are_refused(tmp_path):
    path = save_checkpoint(tmp_path, 5, _state(), kind="c51")
    with pytest.raises(CheckpointError, match="holds a 'c51' state, not 'dqn'"):
        load_checkpoint(path, _state(), kind="dqn")
    other = {**_state(), "params": {"w": jnp.zeros((4, 4)), "b": jnp.ones(3)}}
    other["opt_state"] = optax.adam(1e-3).init(other["params"])
    with pytest.raises(CheckpointError, match="other shapes"):
        load_checkpoint(path, other, kind="c51")
    foreign = tmp_path / "ckpt_000000000009.msgpack"
    data = serialization.msgpack_serialize({"hello": 1})
    foreign.write_bytes(data)
    foreign.with_suffix(".done").write_text(hashlib.sha256(data).hexdigest())
    with pytest.raises(CheckpointError, match="not a tdgen checkpoint"):
        load_checkpoint(foreign, _state(), kind="c51")
