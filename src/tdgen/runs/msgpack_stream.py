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

Two extensions of tdgen's own (checkpoint format 2; flax cannot read them): `write_tree(...,
compress=True)` stores each uint8 or bool array of ``COMPRESS_MIN_BYTES`` or more (observations:
replay buffers, Atari frames) zlib-compressed (level 1) in chunks, as a map
{__tdgen_zlib_array__, shape, dtype, chunks}: a MinAtar replay shrinks about 15x, since its
observations are sparse 0/1 planes. `read_tree(..., skip=...)` passes over the subtrees at the
given key paths without reading their arrays (seeking past them), so a checkpoint's header (what
it left out) reads in microseconds whatever its size.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, BinaryIO

import msgpack
import numpy as np
from flax import serialization

_NDARRAY, _NPSCALAR = 1, 3
_CHUNKED = "__msgpack_chunked_array__"
_ZLIB = "__tdgen_zlib_array__"
COMPRESS_MIN_BYTES = 1 << 20  # smaller arrays are written raw
_ZLIB_CHUNK = 1 << 24  # raw bytes per compressed chunk: bounds the memory of writing and reading
_SKIPPED = object()


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


def _compressible(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.dtype in (np.uint8, np.bool_)
            and value.nbytes >= COMPRESS_MIN_BYTES)  # fmt: skip


def _write_compressed(f: BinaryIO, array: np.ndarray) -> None:
    """A byte array as {__tdgen_zlib_array__, shape, dtype, chunks}: chunks of ``_ZLIB_CHUNK``
    raw bytes, each compressed on its own (level 1: fast, and enough for sparse planes)."""
    flat = np.asarray(array, order="C").reshape(-1).view(np.uint8)
    starts = range(0, flat.size, _ZLIB_CHUNK)
    f.write(b"\x84" + msgpack.packb(_ZLIB) + msgpack.packb(True))
    f.write(msgpack.packb("shape") + msgpack.packb(list(array.shape)))
    f.write(msgpack.packb("dtype") + msgpack.packb(array.dtype.name))
    f.write(msgpack.packb("chunks") + msgpack.Packer().pack_array_header(len(starts)))
    for j in starts:
        packed = zlib.compress(memoryview(flat[j : j + _ZLIB_CHUNK]), 1)
        f.write(_bin_header(len(packed)) + packed)


def write_tree(f: BinaryIO, tree: Any, compress: bool = False) -> None:
    """Write ``tree`` (nested str-keyed dicts of numpy arrays, numpy scalars and msgpack values,
    as `flax.serialization.to_state_dict` gives) to ``f``: the bytes of `msgpack_serialize`
    (which sorts every dict's keys, as a JAX tree map does); with ``compress``, large byte
    arrays zlib-compressed (module docstring)."""
    if isinstance(tree, dict):
        f.write(msgpack.Packer().pack_map_header(len(tree)))
        for key in sorted(tree):
            value = tree[key]
            f.write(msgpack.packb(key))
            if compress and _compressible(value):
                _write_compressed(f, value)
            elif isinstance(value, np.ndarray) and value.nbytes > serialization.MAX_CHUNK_SIZE:
                _write_chunked(f, value)
            else:
                write_tree(f, value, compress)
    elif isinstance(tree, np.ndarray):
        _write_array(f, tree, _NDARRAY)
    elif isinstance(tree, np.generic):
        _write_array(f, np.asarray(tree), _NPSCALAR)
    else:
        f.write(msgpack.packb(tree, strict_types=True))


class _Reader:
    """A msgpack parser over a binary file, arrays read in place."""

    def __init__(self, f: BinaryIO, skip: frozenset[tuple[str, ...]] = frozenset()):
        self.f, self.skip, self.skipping = f, skip, False

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError("truncated msgpack data")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def length(self, byte: int, base: int) -> int:
        return self.unpack((">B", ">H", ">I")[byte - base])

    def value(self, path: tuple[str, ...] = ()) -> Any:
        b = self.take(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F, path)
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
            return self.map(self.unpack(">H" if b == 0xDE else ">I"), path)
        raise ValueError(f"unsupported msgpack byte 0x{b:02x}")

    def map(self, n: int, path: tuple[str, ...] = ()) -> dict:
        out: dict = {}
        for i in range(n):
            key = self.value()
            if i == 0 and key == _CHUNKED and n == 3:
                out[key] = self.value()
                return self.chunked(out)
            if i == 0 and key == _ZLIB and n == 4:
                self.value()
                return self.compressed()
            inner = (*path, key) if isinstance(key, str) else path
            if inner in self.skip and not self.skipping:
                self.skipping = True
                self.value(inner)
                self.skipping = False
                out[key] = _SKIPPED
            else:
                out[key] = self.value(inner)
        return {k: v for k, v in out.items() if v is not _SKIPPED}

    def compressed(self) -> np.ndarray | None:
        """The rest of a compressed-array map (shape, dtype, chunks), decompressed in place
        (None when skipping: the chunks are passed over)."""
        if self.value() != "shape":
            raise ValueError("compressed array without its shape")
        shape = tuple(self.value())
        if self.value() != "dtype":
            raise ValueError("compressed array without its dtype")
        dtype = serialization._dtype_from_name(self.value().encode())
        if self.value() != "chunks":
            raise ValueError("compressed array without its chunks")
        b = self.take(1)[0]
        count = b & 0x0F if 0x90 <= b <= 0x9F else self.unpack(">H" if b == 0xDC else ">I")
        flat = None if self.skipping else np.empty(int(np.prod(shape)), dtype)
        raw, offset = None if flat is None else flat.view(np.uint8), 0
        for _ in range(count):
            b = self.take(1)[0]
            if not 0xC4 <= b <= 0xC6:
                raise ValueError("compressed chunk is not binary data")
            n = self.length(b, 0xC4)
            if raw is None:
                self.f.seek(n, 1)
                continue
            data = zlib.decompress(self.take(n))
            raw[offset : offset + len(data)] = np.frombuffer(data, np.uint8)
            offset += len(data)
        if raw is not None and offset != raw.size:
            raise ValueError("compressed array's chunks do not fill its shape")
        return None if flat is None else flat.reshape(shape)

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
                flat = np.empty(0 if self.skipping else int(np.prod(shape)), dtype)
            self.readinto(None if self.skipping else flat[offset : offset + size], nbytes)
            offset += size
        if self.skipping:
            return None
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

    def readinto(self, array: np.ndarray | None, nbytes: int) -> None:
        if self.skipping:
            self.f.seek(nbytes, 1)
            return
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
        if self.skipping:
            self.readinto(None, nbytes)
            return None
        array = np.empty(shape, dtype)
        self.readinto(array, nbytes)
        return array[()] if code == _NPSCALAR else array


def read_tree(f: BinaryIO, skip: tuple[tuple[str, ...], ...] = ()) -> Any:
    """The tree `write_tree` (or `flax.serialization.msgpack_serialize`) wrote to ``f``, without
    the subtrees at the key paths ``skip`` (e.g. ``(("state",),)``), which are passed over unread
    (``f`` must then be seekable)."""
    return _Reader(f, frozenset(skip)).value()


__all__ = ["COMPRESS_MIN_BYTES", "read_tree", "write_tree"]
