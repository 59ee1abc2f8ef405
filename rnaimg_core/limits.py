"""The one resource policy: how large an input, an array or a request may be before we allocate.

Every reader (tables, gzip streams, Parquet, ``.h5ad``, ``.npz``, layout and
model files) and every image request checks its *declared* or *decompressed*
size against :class:`Limits` before it allocates, so a small hostile file
cannot make the process allocate gigabytes. The defaults fit a 2-core / 8 GB
machine, leave the demo (184 x 9,450) far inside every limit and admit the
project's reference cohort, TCGA pan-cancer (10,267 x 20,531 = 211 M cells, about
1.5 GB of text): reading a SYNTHETIC matrix of that size as ``.tsv.gz`` peaked at
3.2 GB resident, so ``max_cells`` = 250 M peaks near 3.8 GB. Memory follows cells,
not text bytes (text is streamed), so the byte limits only bound time and disk
(measurement and reasoning: ``tests/README.md``).

The active limits are :func:`current_limits`: the defaults, overridden by the
``[rnaimg_limits]`` table of ``.streamlit/rnaimg.toml`` (the dashboard's config
folder; another file with ``RNAIMG_LIMITS_FILE``), by environment variables
``RNAIMG_<FIELD>`` (``RNAIMG_MAX_CELLS=500000000``), and on the command line by
``--limit FIELD=VALUE`` (:func:`set_limits`).
An exceeded limit raises an :class:`~rnaimg_core.errors.InputError` naming the
limit and how to raise it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
import threading
import tomllib
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from rnaimg_core.errors import InputError

ENV_PREFIX = "RNAIMG_"
TOML_TABLE = "rnaimg_limits"
_GiB = 2**30
_MiB = 2**20


@dataclass(frozen=True)
class Limits:
    """Sizes the library refuses to exceed (bytes, counts); every field is a positive int.

    Attributes
    ----------
    max_file_bytes : a file on disk (an upload's own limit may be smaller)
    max_decompressed_bytes : text read out of a gzip stream (a table or a layout)
    max_cells : samples x genes of a matrix, counted from headers/metadata before reading
    max_array_bytes : one array declared by a file (``.h5ad`` dataset, ``.npy`` member), densified
    max_chunk_values : image pixels x channels x samples in one transform chunk
    max_image_bytes : all images of one request held in memory (float32)
    max_json_bytes : a layout or model JSON text (after decompression)
    max_json_depth : nesting of a layout or model JSON text
    max_channels, max_height, max_width : image size a generator may be asked for
    max_columns : fields in a table's header line
    max_server_bytes : the dashboard server's memory budget, the process as a whole: what every session
        holds (data, drawn images) and every heavy job (upload parse, fit, training, compare) needs is
        admitted against it (:mod:`rnaimg_core.budget`)
    """

    max_file_bytes: int = 4 * _GiB
    max_decompressed_bytes: int = 4 * _GiB
    max_cells: int = 250_000_000
    max_array_bytes: int = 2 * _GiB
    max_chunk_values: int = 32 * _MiB
    max_image_bytes: int = 2 * _GiB
    max_json_bytes: int = 256 * _MiB
    max_json_depth: int = 32
    max_channels: int = 16
    max_height: int = 1024
    max_width: int = 1024
    max_columns: int = 1_000_000
    max_server_bytes: int = 4 * _GiB

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"Limit {item.name} must be a positive whole number, not {value!r}.")

    def replace(self, **changes: Any) -> "Limits":
        """A copy with ``changes`` (unknown names are an InputError)."""
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            raise InputError(f"Unknown limit {', '.join(unknown)}; limits are {', '.join(field_names())}.")
        return dataclasses.replace(self, **{k: _parse_int(k, v) for k, v in changes.items()})

    @classmethod
    def from_env(cls, environ: dict | None = None, base: "Limits | None" = None) -> "Limits":
        """``base`` (default: the defaults) with ``RNAIMG_<FIELD>`` environment variables applied."""
        environ = os.environ if environ is None else environ
        changes = {name: environ[ENV_PREFIX + name.upper()] for name in field_names()
                   if ENV_PREFIX + name.upper() in environ}
        return (base or cls()).replace(**changes)

    @classmethod
    def from_toml(cls, path: str | os.PathLike, base: "Limits | None" = None) -> "Limits":
        """``base`` with the ``[rnaimg_limits]`` table of a TOML file applied (a missing file changes nothing)."""
        path = Path(path)
        base = base or cls()
        if not path.is_file():
            return base
        try:
            table = tomllib.loads(path.read_text()).get(TOML_TABLE, {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not valid TOML ({exc}).") from None
        return base.replace(**table)


def field_names() -> list[str]:
    """The names of the limits."""
    return [item.name for item in dataclasses.fields(Limits)]


def _parse_int(name: str, value: Any) -> int:
    try:
        number = int(str(value).replace("_", "")) if not isinstance(value, int) else value
    except ValueError:
        raise InputError(f"Limit {name} must be a whole number, not {value!r}.") from None
    if number < 1:
        raise InputError(f"Limit {name} must be positive, not {number}.")
    return number


_active: Limits | None = None


LIMITS_FILE = Path(".streamlit") / "rnaimg.toml"
_from_file: dict = {}


_thread = threading.local()


def current_limits() -> Limits:
    """The active limits: those of :func:`thread_limits` in this thread, else those set by :func:`set_limits`,
    else the defaults, then the ``[rnaimg_limits]`` table of ``$RNAIMG_LIMITS_FILE`` (default
    ``.streamlit/rnaimg.toml`` in the working directory), then ``RNAIMG_<FIELD>`` environment variables."""
    local = getattr(_thread, "limits", None)
    if local is not None:
        return local
    if _active is not None:
        return _active
    path = Path(os.environ.get(ENV_PREFIX + "LIMITS_FILE", LIMITS_FILE))
    stamp = (str(path), path.stat().st_mtime_ns if path.is_file() else None)
    if _from_file.get("stamp") != stamp:
        _from_file.update(stamp=stamp, limits=Limits.from_toml(path))
    return Limits.from_env(base=_from_file["limits"])


def set_limits(limits: Limits | None) -> None:
    """Make ``limits`` the active limits for this process (None: back to defaults + environment)."""
    global _active
    _active = limits


@contextlib.contextmanager
def use_limits(**changes: Any) -> Iterator[Limits]:
    """Temporarily change some limits (tests, one command): ``with use_limits(max_cells=1000): ...``."""
    global _active
    before = _active
    _active = current_limits().replace(**changes)
    try:
        yield _active
    finally:
        _active = before


@contextlib.contextmanager
def thread_limits(**changes: Any) -> Iterator[Limits]:
    """Tighter (or other) limits for this thread only: one dashboard session's request, while the server's
    other sessions run on with theirs (``with thread_limits(max_cells=n): read_expression(...)``)."""
    before = getattr(_thread, "limits", None)
    _thread.limits = current_limits().replace(**changes)
    try:
        yield _thread.limits
    finally:
        _thread.limits = before


def how_to_raise(name: str) -> str:
    """The sentence every limit error ends with."""
    return (f"Raise it with the environment variable {ENV_PREFIX}{name.upper()}, the command-line option "
            f"--limit {name}=N, or '{name} = N' under [{TOML_TABLE}] in {LIMITS_FILE}.")


def _readable(name: str, value: int) -> str:
    if name.endswith("_bytes"):
        return f"{value / _MiB:,.1f} MB" if value < _GiB else f"{value / _GiB:,.2f} GB"
    return f"{value:,}"


def check(name: str, value: int, what: str) -> None:
    """Raise an InputError when ``value`` exceeds the limit ``name``.

    Parameters
    ----------
    name : a field of :class:`Limits`
    value : the size asked for (declared, decompressed or requested)
    what : what is that large, for the message (``"sample.csv.gz decompressed"``)
    """
    limit = getattr(current_limits(), name)
    if value > limit:
        raise InputError(f"{what} is {_readable(name, int(value))}, over the limit {name} = "
                         f"{_readable(name, limit)}. {how_to_raise(name)}")


def check_array(shape: tuple, dtype: Any, what: str, *, itemsize: int | None = None) -> None:
    """Check a declared array (shape, dtype) before reading it: sizes non-negative, bytes within ``max_array_bytes``.

    ``itemsize`` overrides the dtype's (an array densified as float32 counts 4 bytes a value).
    """
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what}: the declared shape {shape!r} is not a list of sizes.") from None
    if any(d < 0 for d in dims):
        raise InputError(f"{what}: the declared shape {tuple(dims)} has a negative size.")
    size = itemsize if itemsize is not None else np.dtype(dtype).itemsize
    check("max_array_bytes", int(np.prod([float(d) for d in dims], dtype=np.float64) * max(1, size)), what)


def check_images(n_samples: int, shape: tuple, what: str = "") -> None:
    """Raise an InputError when ``n_samples`` float32 images of ``shape`` (C, H, W) exceed ``max_image_bytes``."""
    c, h, w = (int(s) for s in shape)
    check("max_image_bytes", 4 * int(n_samples) * c * h * w,
          f"{what or ''}{int(n_samples):,} images of {c}x{h}x{w} pixels (float32)")


# ---------------------------------------------------------------- bounded readers

class CappedReader(io.RawIOBase):
    """A binary stream that raises an InputError once more than ``limit`` bytes have been read from it."""

    def __init__(self, stream: BinaryIO, limit: int, what: str, name: str = "max_decompressed_bytes"):
        self._stream, self._limit, self._what, self._name, self.count = stream, limit, what, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        self.count += len(data)
        if self.count > self._limit:
            check(self._name, self.count, f"{self._what} (at least)")
        buffer[:len(data)] = data
        return len(data)


def gunzip_capped(raw: bytes, what: str, name: str = "max_decompressed_bytes") -> bytes:
    """Decompress gzip bytes, stopping with an InputError past the limit ``name`` (never inflating more)."""
    limit = getattr(current_limits(), name)
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise InputError(f"{what} is not a valid gzip file ({exc}).") from None
    if len(out) > limit:
        check(name, len(out), f"{what} decompressed (at least)")
    if not decompressor.eof:
        raise InputError(f"{what} is a truncated gzip file.")
    return out


def load_json(raw: bytes | str, what: str) -> Any:
    """Parse JSON text (gzip-compressed or not) within ``max_json_bytes`` and ``max_json_depth``.

    Raises
    ------
    InputError
        For too large, too deep, truncated or invalid text.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogatepass")
    if raw[:2] == b"\x1f\x8b":
        raw = gunzip_capped(raw, what, "max_json_bytes")
    check("max_json_bytes", len(raw), what)
    try:
        data = json.loads(raw)
    except RecursionError:  # deeper than Python's parser goes: measure the brackets instead
        check("max_json_depth", _bracket_depth(raw), f"{what}: JSON nesting depth (about)")
        raise InputError(f"{what}: JSON nesting is deeper than this Python can parse "
                         f"(about {sys.getrecursionlimit():,} levels).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} is not valid JSON ({exc}).") from None
    except ValueError as exc:  # Python refuses integers of more than 4,300 digits
        raise InputError(f"{what} holds a number too long to read ({_first_line(exc)}).") from None
    check("max_json_depth", json_depth(data), f"{what}: JSON nesting depth")
    return data


def _bracket_depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text, counted on the bytes without parsing (brackets inside
    strings count too, so it is an estimate; used only for text too deep to parse)."""
    codes = np.frombuffer(raw, dtype=np.uint8)
    steps = (np.isin(codes, (0x5B, 0x7B)).astype(np.int32) - np.isin(codes, (0x5D, 0x7D)).astype(np.int32))
    return int(np.cumsum(steps).max(initial=0))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].split(";")[0] if text else type(exc).__name__


def json_depth(data: Any) -> int:
    """Nesting depth of parsed JSON (0 for a scalar), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def npz_headers(path: str | os.PathLike, what: str) -> dict[str, tuple[tuple, np.dtype]]:
    """Shape and dtype of every ``.npy`` member of an ``.npz``, read from the headers only, each checked.

    Raises
    ------
    InputError
        For a damaged archive or header, an object (pickled) dtype, or a member over ``max_array_bytes``.
    """
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=10_000)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=10_000)
                name = info.filename[:-4]
                if dtype.hasobject:
                    raise InputError(f"{what}: member {name!r} holds Python objects; only plain arrays are read.")
                check_array(shape, dtype, f"{what}: member {name!r} declares shape {tuple(shape)} {dtype}")
                headers[name] = (tuple(shape), dtype)
    except InputError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise InputError(f"{what} could not be read as an .npz archive: {exc}") from None
    return headers
