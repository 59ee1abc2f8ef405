"""Writing outputs safely: check the destination before the work, write to a temporary name, rename on success.

A command that runs for minutes must not fail at the end because its output
folder is missing or read-only, and a failure half-way must never leave a
partial file under the final name.

The rule, for every output the project writes:

- **Before the work**: :func:`check_writable` on the destination, first thing in a
  command (before reading inputs, fitting, training or starting a cluster).
- **Files and folders written in one go** (layout JSON, images ``.npz``, model
  folders, the CSV/JSON tables of ``explain`` and ``compare``): through
  :func:`atomic_output`: a temporary name beside the destination, renamed onto it
  only on success, removed on failure.
- **A Zarr images store** (``rnaimg convert --engine dask``) is a folder that many
  workers fill block by block, too large to write twice and rename. There the
  store's ``complete`` attribute is the atomicity rule: it is false from creation
  until every block is written, readers refuse a store that is not complete, and a
  rerun resumes the blocks not done
  (:func:`rnaimg_core.stores.check_store_destination` checks the destination first).

**A destination that is not a regular file** is never replaced (the rename would turn a
device into a plain file). The one rule, in :func:`destination_kind`:

- a *character device* (``/dev/null``, a terminal) or a *FIFO* (named pipe) is written
  **through**: the output is built under a temporary name in the system's temporary folder
  as usual, then its bytes are copied into the device or pipe, which stays what it was. A
  FIFO must already have a reader (it is opened without blocking), so nothing waits for ever;
- a *block device*, a *socket* or anything else that is neither a file nor a folder is
  **refused** with an InputError before any work;
- a folder output (a model folder, a Zarr store) at such a path is refused as well;
- a symbolic link is followed: the file it names is replaced, the link itself stays.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from rnaimg_core.errors import InputError


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Raise an InputError unless ``path`` can be written (a file, or with ``folder`` a folder to create or fill).

    Parameters
    ----------
    path : the output file or folder
    folder : ``path`` is a folder (created when missing); otherwise a file whose folder must exist

    Returns
    -------
    Path
    """
    path = Path(path)
    kind = destination_kind(path)
    if kind == "write-through":
        if folder:
            raise InputError(f"Cannot write the folder {path}: it is a {_describe(path)}, not a folder.")
        if not os.access(path, os.W_OK):
            raise InputError(f"Cannot write {path}: the {_describe(path)} is not writable.")
        return path
    if kind == "refused":
        raise InputError(f"Cannot write {path}: it is a {_describe(path)}, not a regular file; give a file name.")
    if folder:
        if path.exists() and not path.is_dir():
            raise InputError(f"Cannot write the folder {path}: a file of that name exists.")
        parent = path if path.is_dir() else path.parent
    else:
        if path.is_dir():
            raise InputError(f"Cannot write {path}: it is a folder; give a file name.")
        parent = path.parent
    parent = parent if str(parent) else Path(".")
    if not parent.is_dir():
        if folder and _creatable(parent):
            return path
        raise InputError(f"Cannot write {path}: the folder {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write {path}: the folder {parent} is not writable.")
    try:  # os.access ignores read-only mounts and some ACLs: try a real file
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".rnaimg-check-"):
            pass
    except OSError as exc:
        raise InputError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    return path


def destination_kind(path: str | os.PathLike) -> str:
    """How an output at ``path`` is written: ``"replace"`` (missing, a regular file or a folder: temporary name
    and rename), ``"write-through"`` (a character device or a FIFO: copied into it, never replaced) or
    ``"refused"`` (a block device, a socket, anything else)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "replace"
    except OSError:
        return "replace"  # unreadable: check_writable's folder checks name the problem
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return "replace"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "write-through"
    return "refused"


def _describe(path: Path) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "special file"
    for test, word in ((stat.S_ISCHR, "character device"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return word
    return "special file"


def _write_through(tmp: Path, path: Path) -> None:
    """Copy the finished output ``tmp`` into the device or FIFO ``path`` (never blocking on a FIFO without a
    reader)."""
    is_fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    try:
        fd = os.open(path, os.O_WRONLY | (os.O_NONBLOCK if is_fifo else 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise InputError(f"Cannot write {path}: nothing reads from this FIFO (named pipe); start the reader "
                             "first.") from None
        raise InputError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    try:
        if is_fifo:
            os.set_blocking(fd, True)  # a reader is there: let it take the bytes at its pace
        with open(tmp, "rb") as source, os.fdopen(fd, "wb", closefd=False) as sink:
            shutil.copyfileobj(source, sink)
    except OSError as exc:
        raise InputError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    finally:
        os.close(fd)


def _creatable(folder: Path) -> bool:
    """Whether ``folder`` could be created: its nearest existing ancestor is a writable folder (not a file)."""
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            return ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK)
    return False


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on failure remove it.

    With ``folder`` the temporary path is a folder (created); an existing folder at ``path`` is
    replaced only after the new one is complete. A character device or FIFO at ``path`` is never
    replaced: the output is built in the system's temporary folder and copied into it (module docstring).
    """
    path = Path(path)
    check_writable(path, folder=folder)
    if destination_kind(path) == "write-through":  # a device or FIFO: built aside, then copied into it
        with tempfile.TemporaryDirectory(prefix="rnaimg-out-") as aside:
            tmp = Path(aside) / path.name
            yield tmp
            _write_through(tmp, path)
        return
    if path.is_symlink():  # replace the file the link names, never the link (/dev/stdout, a user's link)
        path = Path(os.path.realpath(path))
        check_writable(path, folder=folder)
    parent = path.parent if str(path.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    if folder:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.tmp-"))
    else:
        handle, name = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.tmp-")
        os.close(handle)
        tmp = Path(name)
    try:
        yield tmp
        if folder and path.is_dir():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.old-"))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if not folder:
                os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once at import: os.umask is process-wide and racy in threads
