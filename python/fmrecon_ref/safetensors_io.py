"""A minimal safetensors reader and writer on numpy.

File layout (the format's specification): an 8-byte little-endian unsigned header length N, N bytes
of JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, optional "__metadata__":
{str: str}}, then the data section; offsets are relative to the start of the data section and every
tensor is stored contiguous, row-major, little-endian.

load(path)                      -> {name: np.ndarray}; floating tensors widened to float32 (exact for
                                   F16/BF16, rounded for F64), integer tensors kept (I64 -> int64).
load(path, float32=False)       -> floats in their stored precision (BF16 -> float32: numpy has none).
save(path, tensors, metadata=None, dtype=None, dtypes=None)
                                -> writes atomically (temporary name in the same directory, then
                                   rename); dtype "F32"/"F16"/"BF16"/"F64" converts every floating
                                   tensor, None keeps each array's own float dtype; dtypes
                                   {name: dtype} overrides per tensor (e.g. BF16 for one tensor).
read_header(path)               -> (header dict without __metadata__, metadata dict or None).
"""
import json
import os
import struct
import tempfile

import numpy as np

# safetensors dtype -> numpy little-endian dtype of the stored element (BF16 read as raw uint16)
_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
       "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
_FLOATS = ("F64", "F32", "F16", "BF16")
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


def bf16_to_f32(raw_u16):
    """float32 values of bfloat16 bit patterns (exact)."""
    u = np.asarray(raw_u16, dtype="<u2")
    return (u.reshape(-1).astype("<u4") << 16).view("<f4").reshape(u.shape)


def f32_to_bf16(x):
    """bfloat16 bit patterns of float32 values, rounded to nearest even (as torch's .bfloat16());
    NaN stays a quiet NaN."""
    u = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    if nan.any():
        rounded = np.where(nan, ((u >> 16) | 0x40).astype("<u2"), rounded)
    return rounded


def read_header(path):
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        n = struct.unpack("<Q", head)[0]
        size = os.fstat(f.fileno()).st_size
        if n > _MAX_HEADER or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n} runs past the end of the file ({size} bytes)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    meta = header.pop("__metadata__", None)
    return header, meta, 8 + n, size


def load(path, float32=True, names=None):
    """All tensors (or only `names`) of a safetensors file as numpy arrays."""
    header, _, start, size = read_header(path)
    out = {}
    with open(path, "rb") as f:
        for name, info in header.items():
            if names is not None and name not in names:
                continue
            dt = info.get("dtype")
            if dt not in _NP:
                raise SafetensorsError(f"{path}: tensor '{name}' has unsupported dtype {dt}")
            shape = tuple(int(s) for s in info["shape"])
            b, e = (int(v) for v in info["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64))
            nbytes = count * np.dtype(_NP[dt]).itemsize
            if b < 0 or e - b != nbytes or start + e > size:
                raise SafetensorsError(f"{path}: tensor '{name}' data_offsets [{b},{e}] do not fit "
                                       f"its shape {list(shape)} and dtype {dt}")
            f.seek(start + b)
            a = np.frombuffer(f.read(nbytes), dtype=_NP[dt], count=count).reshape(shape)
            if dt == "BF16":
                a = bf16_to_f32(a)
            elif dt in _FLOATS and float32:
                a = a.astype(np.float32)
            else:
                a = a.astype(a.dtype.newbyteorder("="))
            out[name] = a
    return out


def _as_numpy(v):
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        v = v.numpy()
    return np.asarray(v)


def _encode(a, dtype):
    """(safetensors dtype, little-endian bytes) of one array."""
    if a.dtype.kind == "f":
        target = dtype or {8: "F64", 4: "F32", 2: "F16"}[a.dtype.itemsize]
        if target == "BF16":
            return "BF16", f32_to_bf16(a.astype(np.float32)).tobytes()
        return target, np.ascontiguousarray(a, dtype=_NP[target]).tobytes()
    if a.dtype.kind == "b":
        return "BOOL", np.ascontiguousarray(a, dtype="?").tobytes()
    for st in ("I64", "I32", "I16", "I8", "U8"):
        if a.dtype == np.dtype(_NP[st]).newbyteorder("="):
            return st, np.ascontiguousarray(a, dtype=_NP[st]).tobytes()
    if a.dtype.kind in "iu":  # any other integer width: stored as I64
        return "I64", np.ascontiguousarray(a, dtype="<i8").tobytes()
    raise SafetensorsError(f"cannot store numpy dtype {a.dtype}")


def save(path, tensors, metadata=None, dtype=None, dtypes=None):
    """Write {name: array} (numpy arrays or torch tensors) to `path` atomically."""
    dtypes = dtypes or {}
    for d in [dtype] + list(dtypes.values()):
        if d is not None and d not in _FLOATS:
            raise SafetensorsError(f"dtype must be one of {_FLOATS}, not {d}")
    header, blobs, off = {}, [], 0
    for name, v in tensors.items():
        if name == "__metadata__":
            raise SafetensorsError("'__metadata__' is reserved")
        a = _as_numpy(v)
        st, raw = _encode(a, dtypes.get(name, dtype))
        header[name] = {"dtype": st, "shape": [int(s) for s in a.shape], "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)  # pad so the data section starts 8-byte aligned (as the reference writer does)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=d)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 -> the mode a plain open() would give
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for raw in blobs:
                f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
