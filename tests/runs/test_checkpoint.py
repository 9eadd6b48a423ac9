import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from tdgen.runs import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from tdgen.runs.checkpoint import VERSION, complete_checkpoints


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


def _mixed_state():
    """Device and host leaves, scalars, a bool, an empty array and arrays above the chunk size."""
    return {"learner": _state(3.0), "host": {
        "frames": np.arange(3000, dtype=np.uint8).reshape(30, 10, 10),
        "reward": np.linspace(-1, 1, 77, dtype=np.float32), "empty": np.zeros((0, 4), np.int32),
        "count": np.int32(7), "flag": np.bool_(True), "huge": np.arange(5000, dtype=np.int64),
    }}  # fmt: skip


def test_streamed_files_are_flax_msgpack_bytes_and_read_back_chunked(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 1000)  # frames, huge: several chunks
    state = _mixed_state()
    path = save_checkpoint(tmp_path, 5, state, kind="dqn")
    payload = {"format": "tdgen-checkpoint", "version": VERSION, "kind": "dqn", "step": 5,
               "state": serialization.to_state_dict(jax.device_get(state))}  # fmt: skip
    assert path.read_bytes() == serialization.msgpack_serialize(payload)
    _, restored = load_checkpoint(path, _mixed_state(), kind="dqn")
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.asarray(a).dtype == np.asarray(b).dtype
    host = restored["host"]  # numpy in the target: numpy, writeable, read in place
    assert isinstance(host["frames"], np.ndarray) and host["frames"].flags.writeable
    assert np.shape(host["count"]) == () and isinstance(restored["learner"]["key"], jax.Array)


def test_streaming_keeps_the_saved_state_out_of_memory(tmp_path):
    """Saving a 256 MiB array allocates a few MiB (flax's msgpack_serialize: ~3x the array);
    loading allocates the array once."""
    import tracemalloc

    state = {"frames": np.ones((256, 1024, 1024), np.uint8)}
    tracemalloc.start()
    path = save_checkpoint(tmp_path, 1, state, kind="x")
    saved_peak = tracemalloc.get_traced_memory()[1]
    target = {"frames": np.zeros((256, 1024, 1024), np.uint8)}
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    _, restored = load_checkpoint(path, target, kind="x")
    loaded_peak = tracemalloc.get_traced_memory()[1] - before  # the state read, once
    tracemalloc.stop()
    assert saved_peak < 16 * 2**20 and loaded_peak < 256 * 2**20 + 16 * 2**20
    assert restored["frames"].all()


def test_a_checkpoint_of_a_newer_format_asks_for_an_upgrade_in_one_line(tmp_path, monkeypatch):
    from tdgen.runs import checkpoint

    path = save_checkpoint(tmp_path, 5, _state(1.0), kind="dqn")
    monkeypatch.setattr(checkpoint, "VERSION", VERSION - 1)  # an older tdgen reading it
    with pytest.raises(CheckpointError, match=f"of format {VERSION}, newer than") as error:
        load_checkpoint(path, _state(0.0), kind="dqn")
    assert "upgrade tdgen" in str(error.value) and "\n" not in str(error.value)
