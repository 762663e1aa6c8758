"""Read a PyTorch `state_dict` file into numpy arrays, without PyTorch.

Why: MTCNN's weights ship inside the `facenet-pytorch` wheel (MIT) as `torch.save` files,
but PyTorch itself is a 700 MB dependency that facegate would load only to read 2 MB of
weights. The wheel's files are in `torch.save`'s legacy format, which is simple: a few
small pickles, one of which holds the tensors, each referring by key to a raw
little-endian storage; the storages follow the pickles. (The zip format of PyTorch 1.6+
is refused: the pinned wheel does not use it.)

The unpickler is closed: it builds only ordered dicts and tensors and refuses any other
class, so a hostile weights file cannot run code (unlike `torch.load` without
`weights_only`).
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFormatError(ValueError):
    """The bytes are not a tensor dictionary saved by `torch.save`."""


class _Storage:
    """A storage referred to by key; its bytes are attached once they have been read."""

    def __init__(self, dtype: np.dtype, key: str) -> None:
        self.dtype = np.dtype(dtype)
        self.key = key
        self.array: np.ndarray | None = None


class _LazyTensor:
    """A tensor view on a storage, materialised after all storages are read."""

    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def numpy(self) -> np.ndarray:
        base = self.storage.array
        if base is None:
            raise TorchFormatError(f"storage {self.storage.key} has no data")
        item = base.dtype.itemsize
        needed = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride)) + 1
        if any(s == 0 for s in self.size):
            return np.zeros(self.size, base.dtype)
        if needed > base.size:
            raise TorchFormatError(f"tensor runs past the end of storage {self.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :], shape=self.size, strides=tuple(st * item for st in self.stride)
        )
        return np.array(view)  # a contiguous copy, detached from the storage


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any) -> _LazyTensor:
    return _LazyTensor(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: _LazyTensor, *_: Any) -> _LazyTensor:
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, storage: Callable[[tuple], _Storage]) -> None:
        super().__init__(stream)
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in DTYPES:
            return DTYPES[name]
        raise TorchFormatError(f"refusing to build {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise TorchFormatError(f"unexpected persistent id {pid!r}")
        return self._storage(pid)


def load_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """The name -> array mapping saved by `torch.save(module.state_dict(), f)`."""
    try:
        if data[:2] == b"PK":
            raise TorchFormatError("zip-format torch.save files are not supported (facenet-pytorch 2.6 uses the legacy one)")
        tensors = _load_legacy(data)
        if not isinstance(tensors, dict):
            raise TorchFormatError("the file does not hold a dictionary of tensors")
        out = {}
        for name, tensor in tensors.items():
            if not isinstance(name, str) or not isinstance(tensor, _LazyTensor):
                raise TorchFormatError(f"entry {name!r} is not a named tensor")
            out[name] = tensor.numpy()
        return out
    except TorchFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise TorchFormatError(f"not a readable torch.save file: {exc}") from None


def _load_legacy(data: bytes) -> Any:
    stream = io.BytesIO(data)
    if _Unpickler(stream, _no_storage).load() != LEGACY_MAGIC:
        raise TorchFormatError("not a torch.save file (bad magic number)")
    if _Unpickler(stream, _no_storage).load() != LEGACY_PROTOCOL:
        raise TorchFormatError("unsupported torch.save protocol version")
    info = _Unpickler(stream, _no_storage).load()
    if not isinstance(info, dict) or not info.get("little_endian", False):
        raise TorchFormatError("only little-endian torch.save files are supported")
    storages: dict[str, _Storage] = {}

    def storage(pid: tuple) -> _Storage:
        _, dtype, key, _location, _numel, view = pid
        if view is not None:
            raise TorchFormatError("storage views are not supported")
        return storages.setdefault(key, _Storage(dtype, key))

    result = _Unpickler(stream, storage).load()
    keys = _Unpickler(stream, _no_storage).load()
    for key in keys:
        numel = int(np.frombuffer(stream.read(8), "<i8")[0])
        entry = storages.get(key)
        if entry is None:
            raise TorchFormatError(f"storage {key} is not used by any tensor")
        raw = stream.read(numel * entry.dtype.itemsize)
        if len(raw) != numel * entry.dtype.itemsize:
            raise TorchFormatError(f"storage {key} is truncated")
        entry.array = np.frombuffer(raw, entry.dtype.newbyteorder("<"))
    return result


def _no_storage(pid: tuple) -> _Storage:
    raise TorchFormatError("storage outside the tensor dictionary")
