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
"""

from __future__ import annotations

import contextlib
import os
import shutil
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
    replaced only after the new one is complete.
    """
    path = Path(path)
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
