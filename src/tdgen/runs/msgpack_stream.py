"""flax's msgpack checkpoint encoding, written and read as a stream (no whole-file copy in memory).

`flax.serialization.msgpack_serialize` builds the whole file in memory and `msgpack_restore`
needs it in memory too (and copies each array twice more), so a 6.6 GiB Atari replay needed
more than twice its size to save and three times to load. `write_tree` produces the same bytes (tested against flax) with
each array's data written straight from its buffer; `read_tree` parses them with each array's
data read straight into a fresh array (``readinto``), so saving costs nothing and loading costs
one copy of the state. Encoding (flax): maps, strings, numbers; an ndarray is ext type 1 holding
msgpack (shape, dtype name, raw bytes), a numpy scalar ext type 3; arrays above
``flax.serialization.MAX_CHUNK_SIZE`` bytes are a map {__msgpack_chunked_array__, shape, chunks}
of flat chunks.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import msgpack
import numpy as np
from flax import serialization

_NDARRAY, _NPSCALAR = 1, 3
_CHUNKED = "__msgpack_chunked_array__"


def _bin_header(n: int) -> bytes:
    if n < 2**8:
        return b"\xc4" + struct.pack(">B", n)
    if n < 2**16:
        return b"\xc5" + struct.pack(">H", n)
    return b"\xc6" + struct.pack(">I", n)


def _ext_header(code: int, n: int) -> bytes:
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
    if n in fixed:
        return struct.pack(">Bb", fixed[n], code)
    if n < 2**8:
        return struct.pack(">BBb", 0xC7, n, code)
    if n < 2**16:
        return struct.pack(">BHb", 0xC8, n, code)
    return struct.pack(">BIb", 0xC9, n, code)


def _write_array(f: BinaryIO, array: np.ndarray, code: int) -> None:
    array = np.asarray(array, order="C")  # (ascontiguousarray would make a scalar 1-d)
    if array.dtype.hasobject or array.dtype.isalignedstruct:
        raise ValueError("object and structured dtypes cannot be checkpointed")
    head = b"\x93" + msgpack.packb(array.shape) + msgpack.packb(array.dtype.name)
    head += _bin_header(array.nbytes)
    f.write(_ext_header(code, len(head) + array.nbytes) + head)
    f.write(memoryview(array.reshape(-1)).cast("B"))


def _write_chunked(f: BinaryIO, array: np.ndarray) -> None:
    """flax's chunked form of an oversized array, in its key order (written from views)."""
    size = max(1, int(serialization.MAX_CHUNK_SIZE / array.dtype.itemsize))
    flat = np.asarray(array, order="C").reshape(-1)
    starts = range(0, flat.size, size)
    f.write(b"\x83" + msgpack.packb(_CHUNKED) + msgpack.packb(True) + msgpack.packb("shape"))
    f.write(msgpack.packb({str(i): d for i, d in enumerate(array.shape)}))
    f.write(msgpack.packb("chunks") + msgpack.Packer().pack_map_header(len(starts)))
    for i, j in enumerate(starts):
        f.write(msgpack.packb(str(i)))
        _write_array(f, flat[j : j + size], _NDARRAY)


def write_tree(f: BinaryIO, tree: Any) -> None:
    """Write ``tree`` (nested str-keyed dicts of numpy arrays, numpy scalars and msgpack values,
    as `flax.serialization.to_state_dict` gives) to ``f``: the bytes of `msgpack_serialize`
    (which sorts every dict's keys, as a JAX tree map does)."""
    if isinstance(tree, dict):
        f.write(msgpack.Packer().pack_map_header(len(tree)))
        for key in sorted(tree):
            value = tree[key]
            f.write(msgpack.packb(key))
            if isinstance(value, np.ndarray) and value.nbytes > serialization.MAX_CHUNK_SIZE:
                _write_chunked(f, value)
            else:
                write_tree(f, value)
    elif isinstance(tree, np.ndarray):
        _write_array(f, tree, _NDARRAY)
    elif isinstance(tree, np.generic):
        _write_array(f, np.asarray(tree), _NPSCALAR)
    else:
        f.write(msgpack.packb(tree, strict_types=True))


class _Reader:
    """A msgpack parser over a binary file, arrays read in place."""

    def __init__(self, f: BinaryIO):
        self.f = f

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError("truncated msgpack data")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def length(self, byte: int, base: int) -> int:
        return self.unpack((">B", ">H", ">I")[byte - base])

    def value(self) -> Any:
        b = self.take(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F)
        if 0x90 <= b <= 0x9F:
            return [self.value() for _ in range(b & 0x0F)]
        if 0xA0 <= b <= 0xBF:
            return self.take(b & 0x1F).decode()
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if b in simple:
            return simple[b]
        if 0xC4 <= b <= 0xC6:
            return self.take(self.length(b, 0xC4))
        if 0xC7 <= b <= 0xC9:
            return self.ext(self.length(b, 0xC7))
        if 0xD4 <= b <= 0xD8:
            return self.ext(1 << (b - 0xD4))
        numbers = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
                   0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}  # fmt: skip
        if b in numbers:
            return self.unpack(numbers[b])
        if 0xD9 <= b <= 0xDB:
            return self.take(self.length(b, 0xD9)).decode()
        if b in (0xDC, 0xDD):
            return [self.value() for _ in range(self.unpack(">H" if b == 0xDC else ">I"))]
        if b in (0xDE, 0xDF):
            return self.map(self.unpack(">H" if b == 0xDE else ">I"))
        raise ValueError(f"unsupported msgpack byte 0x{b:02x}")

    def map(self, n: int) -> dict:
        out: dict = {}
        for i in range(n):
            key = self.value()
            if i == 0 and key == _CHUNKED and n == 3:
                out[key] = self.value()
                return self.chunked(out)
            out[key] = self.value()
        return out

    def chunked(self, out: dict) -> np.ndarray:
        """The rest of a chunked-array map (shape, then chunks) as one array, read in place."""
        if self.value() != "shape":
            raise ValueError("chunked array without its shape")
        shape_map = self.value()
        shape = tuple(shape_map[str(i)] for i in range(len(shape_map)))
        if self.value() != "chunks":
            raise ValueError("chunked array without its chunks")
        b = self.take(1)[0]
        count = b & 0x0F if 0x80 <= b <= 0x8F else self.unpack(">H" if b == 0xDE else ">I")
        flat, offset = None, 0
        for _ in range(count):
            self.value()  # the chunk's index key, "0", "1", ...
            b = self.take(1)[0]
            if not 0xC7 <= b <= 0xC9:
                raise ValueError("chunk is not an array")
            self.length(b, 0xC7)
            if self.unpack(">b") != _NDARRAY:
                raise ValueError("chunk is not an array")
            (size,), dtype, nbytes = self.array_header()
            if flat is None:
                flat = np.empty(int(np.prod(shape)), dtype)
            self.readinto(flat[offset : offset + size], nbytes)
            offset += size
        if flat is None or offset != flat.size:
            raise ValueError("chunked array's chunks do not fill its shape")
        return flat.reshape(shape)

    def array_header(self) -> tuple[tuple[int, ...], np.dtype, int]:
        if self.take(1) != b"\x93":
            raise ValueError("malformed array")
        shape = tuple(self.value())
        name = self.value()
        name = name.decode() if isinstance(name, bytes) else name
        b = self.take(1)[0]
        if not 0xC4 <= b <= 0xC6:
            raise ValueError("malformed array data")
        return shape, serialization._dtype_from_name(name.encode()), self.length(b, 0xC4)

    def readinto(self, array: np.ndarray, nbytes: int) -> None:
        if array.nbytes != nbytes:
            raise ValueError("array data does not match its shape")
        if nbytes == 0:
            return
        view = memoryview(array.reshape(-1)).cast("B")
        done = 0
        while done < nbytes:
            got = self.f.readinto(view[done:])
            if not got:
                raise ValueError("truncated msgpack data")
            done += got

    def ext(self, n: int) -> Any:
        code = self.unpack(">b")
        if code not in (_NDARRAY, _NPSCALAR):
            return serialization._msgpack_ext_unpack(code, self.take(n))
        shape, dtype, nbytes = self.array_header()
        array = np.empty(shape, dtype)
        self.readinto(array, nbytes)
        return array[()] if code == _NPSCALAR else array


def read_tree(f: BinaryIO) -> Any:
    """The tree `write_tree` (or `flax.serialization.msgpack_serialize`) wrote to ``f``."""
    return _Reader(f).value()


__all__ = ["read_tree", "write_tree"]
