"""What a finished run keeps on disk: compressed byte arrays, and the final checkpoint's replay
dropped unless kept, all readable back."""

import io
import zlib

import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from tdgen.runs import (
    CheckpointError,
    complete_checkpoints,
    dropped_fields,
    load_checkpoint,
    save_checkpoint,
)
from tdgen.runs.checkpoint import checkpoint_path
from tdgen.runs.msgpack_stream import COMPRESS_MIN_BYTES, read_tree, write_tree


def _state(seed=0, rows=4_096):
    rng = np.random.default_rng(seed)
    obs = (rng.random((rows, 2, 10, 10, 4)) < 0.05).astype(np.uint8)  # sparse planes, ~3 MiB
    replay = {"obs": jnp.asarray(obs), "reward": jnp.asarray(rng.random((rows, 2)), jnp.float32),
              "filled": jnp.asarray(rows, jnp.int32)}  # fmt: skip
    return {"params": {"w": jnp.asarray(rng.random((8, 3)), jnp.float32)}, "replay": replay}


def _equal(a, b):
    for x, y in zip(jnp.asarray(a["params"]["w"]), jnp.asarray(b["params"]["w"]), strict=True):
        np.testing.assert_array_equal(x, y)


def test_large_byte_arrays_compress_and_read_back_exactly_and_skipping_passes_them_over():
    obs = _state()["replay"]["obs"]
    tree = {"a": {"obs": np.asarray(obs), "w": np.arange(300_000, dtype=np.float32)}, "b": 3}
    assert np.asarray(obs).nbytes >= COMPRESS_MIN_BYTES
    raw, packed = io.BytesIO(), io.BytesIO()
    write_tree(raw, tree)
    write_tree(packed, tree, compress=True)
    assert len(packed.getvalue()) < len(raw.getvalue()) / 2  # sparse planes shrink
    for f in (raw, packed):
        f.seek(0)
        back = read_tree(f)
        np.testing.assert_array_equal(back["a"]["obs"], tree["a"]["obs"])
        np.testing.assert_array_equal(back["a"]["w"], tree["a"]["w"])
        f.seek(0)
        back = read_tree(f, skip=(("a", "obs"),))
        assert set(back["a"]) == {"w"} and back["b"] == 3
        np.testing.assert_array_equal(back["a"]["w"], tree["a"]["w"])


@pytest.mark.parametrize("keep_replay", [False, True])
def test_a_finished_run_keeps_its_replay_only_when_asked(tmp_path, keep_replay):
    for step in (1, 2):
        save_checkpoint(tmp_path, step, _state(step), kind="dqn", keep=3)
    raw_size = checkpoint_path(tmp_path, 2).stat().st_size
    # what the loop writes at the end (`tdgen.runs.loop`)
    final = save_checkpoint(tmp_path, 3, _state(3), kind="dqn", keep=3, compress=True,
                            drop=() if keep_replay else ("replay",))  # fmt: skip
    assert complete_checkpoints(tmp_path) == [1, 2, 3]
    assert dropped_fields(checkpoint_path(tmp_path, 2)) == []  # earlier: kept, to resume from
    assert dropped_fields(final) == ([] if keep_replay else ["replay"])
    template = _state(9)
    _, restored = load_checkpoint(final, template, kind="dqn")
    _equal(restored, _state(3))
    if keep_replay:  # stored compressed, read back exactly
        assert final.stat().st_size < raw_size / 2
        np.testing.assert_array_equal(restored["replay"]["obs"], _state(3)["replay"]["obs"])
        load_checkpoint(final, template, kind="dqn", need=("replay",))
    else:  # the template's replay stands in; a reader that needs it is refused, naming the fix
        assert final.stat().st_size < 4_096
        np.testing.assert_array_equal(restored["replay"]["obs"], template["replay"]["obs"])
        with pytest.raises(CheckpointError, match="holds no replay.*--keep-replay"):
            load_checkpoint(final, template, kind="dqn", need=("replay",))
    _, earlier = load_checkpoint(
        checkpoint_path(tmp_path, 2), template, kind="dqn", need=("replay",)
    )
    np.testing.assert_array_equal(earlier["replay"]["obs"], _state(2)["replay"]["obs"])


def test_reading_what_a_checkpoint_left_out_refuses_a_foreign_file_in_one_line(tmp_path):
    garbage = tmp_path / "ckpt_000000000001.msgpack"
    garbage.write_bytes(b"\xc1garbage")  # 0xc1: a byte msgpack never uses
    with pytest.raises(CheckpointError, match="not a msgpack file"):
        dropped_fields(garbage)
    other = tmp_path / "other.msgpack"
    other.write_bytes(serialization.msgpack_serialize({"format": "x", "state": {}}))
    with pytest.raises(CheckpointError, match="is not a tdgen checkpoint"):
        dropped_fields(other)


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_compressed_checkpoint_is_refused_in_one_line(tmp_path, damage):
    final = save_checkpoint(tmp_path, 3, _state(3), kind="dqn", keep=3, compress=True)
    data = bytearray(final.read_bytes())
    at = int(len(data) * 0.7)  # inside the replay's compressed chunks
    if damage == "truncated":
        data = data[:at]
    else:
        data[at : at + 64] = bytes(64)
    final.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is corrupt: its SHA-256 does not match") as error:
        load_checkpoint(final, _state(9), kind="dqn", need=("replay",))
    assert "\n" not in str(error.value) and "delete both files" in str(error.value)
    with pytest.raises((ValueError, EOFError, zlib.error)):  # the reader never returns garbage
        read_tree(io.BytesIO(bytes(data)))
