"""A session's work kept on the server for a while, so a browser reload does not lose it.

Each browser session gets a private token (:func:`secrets.token_urlsafe`, 256
bits) that the page puts in its URL (``?s=...``). Under the token the server
keeps a workspace folder with what is needed to rebuild the session: how the
data were made (the upload's bytes and reading options, or the synthetic
settings), the user's choices, the fitted layouts (layout JSON) and the
trained model (:func:`rnaimg_core.model.save_model`: safetensors and JSON).
Nothing is pickled, so restoring cannot run code.

Safety:

- the folder name is a SHA-256 of the token, never text a browser typed, so a
  URL cannot steer a path; a token that is not of the expected form is ignored;
- an unknown or expired token is never adopted: the session gets a fresh one,
  so nobody can plant a token for someone else;
- workspaces untouched for :data:`TTL_SECONDS` are removed (checked whenever a
  session starts), and the parent folder is private to the server's user;
- all workspaces together hold at most :data:`MAX_WORKSPACES` folders and
  :data:`MAX_TOTAL_BYTES` bytes: past that the least recently used are removed first
  (:func:`sweep`), so a busy server's temporary folder cannot fill up;
- a user can delete their session's workspace at once (:meth:`Workspace.delete`, the Data page's button);
- every file is written through :mod:`rnaimg_core.outputs` (temporary name, rename when complete), so a
  reload never reads a half-written file.

No streamlit import here: plain Python, tested without a server.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnaimg_core.layout import Layout, json_default
from rnaimg_core.model import TrainSettings, load_model, save_model
from rnaimg_core.model.trained import TrainResult
from rnaimg_core.outputs import atomic_output

TOKEN_PARAM = "s"
TTL_SECONDS = 2 * 3600
MAX_WORKSPACES = int(os.environ.get("RNAIMG_MAX_WORKSPACES", 100))
MAX_TOTAL_BYTES = int(os.environ.get("RNAIMG_MAX_WORKSPACE_BYTES", 2 * 2**30))  # all workspaces together
_TOKEN_FORM = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
CHOICES_FILE, ORIGIN_FILE, LAYOUTS_DIR, MODEL_DIR, JOB_FILE = (
    "choices.json", "origin.json", "layouts", "model", "job.json")


def default_root() -> Path:
    """Where workspaces live: a folder of the server's temporary directory, private to its user."""
    return Path(tempfile.gettempdir()) / f"rnaimg-workspaces-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def sweep(root: Path, ttl: float = TTL_SECONDS, now: float | None = None, *, max_count: int | None = None,
          max_bytes: int | None = None, keep: Path | None = None) -> int:
    """Remove workspaces not touched for ``ttl`` seconds, then the least recently used ones while there are
    more than ``max_count`` (default :data:`MAX_WORKSPACES`) or they hold more than ``max_bytes`` (default
    :data:`MAX_TOTAL_BYTES`); ``keep`` (the caller's own) is never removed. Returns how many were removed."""
    now = time.time() if now is None else now
    max_count = MAX_WORKSPACES if max_count is None else max_count
    max_bytes = MAX_TOTAL_BYTES if max_bytes is None else max_bytes
    if not root.is_dir():
        return 0
    removed = 0
    alive = []
    for folder in root.iterdir():
        try:
            if not folder.is_dir():
                continue
            used = folder.stat().st_mtime
            if now - used > ttl:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
            else:
                alive.append((used, folder, folder_bytes(folder)))
        except OSError:  # removed by another session meanwhile
            continue
    alive.sort(key=lambda item: item[0])  # least recently used first
    total = sum(size for _, _, size in alive)
    count = len(alive)
    for _, folder, size in alive:
        if count <= max_count and total <= max_bytes:
            break
        if keep is not None and folder == keep:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed, count, total = removed + 1, count - 1, total - size
    return removed


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


@dataclass
class Workspace:
    """One session's folder on the server, found by its token.

    Use :meth:`create` for a new session and :meth:`open` for a token from a URL.
    """

    token: str
    folder: Path
    saved_layouts: set = field(default_factory=set)
    saved_choices: str = ""
    saved_model: int | None = None

    # ------------------------------------------------------------ finding
    @staticmethod
    def _folder(token: str, root: Path) -> Path:
        return root / hashlib.sha256(token.encode()).hexdigest()[:40]

    @classmethod
    def create(cls, root: Path | None = None, ttl: float = TTL_SECONDS) -> "Workspace":
        """A new workspace under a fresh unguessable token (old workspaces are swept first)."""
        root = default_root() if root is None else Path(root)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        sweep(root, ttl, max_count=max(0, MAX_WORKSPACES - 1))  # room for this one
        token = secrets.token_urlsafe(32)
        folder = cls._folder(token, root)
        folder.mkdir(mode=0o700)
        return cls(token, folder)

    @classmethod
    def open(cls, token: Any, root: Path | None = None, ttl: float = TTL_SECONDS) -> "Workspace | None":
        """The workspace of ``token`` (from a URL), or None when it is malformed, unknown or expired."""
        if not isinstance(token, str) or not _TOKEN_FORM.match(token):
            return None
        root = default_root() if root is None else Path(root)
        folder = cls._folder(token, root)
        sweep(root, ttl, keep=folder)
        if not folder.is_dir():
            return None
        workspace = cls(token, folder)
        workspace.touch()
        return workspace

    def delete(self) -> None:
        """Remove this session's workspace now (its upload, choices, layouts and model)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.saved_layouts.clear()
        self.saved_choices = ""
        self.saved_model = None

    def size_bytes(self) -> int:
        """Bytes this workspace holds on the server."""
        return folder_bytes(self.folder) if self.folder.is_dir() else 0

    def _write(self, name: str, data: bytes) -> None:
        """Write one file of the workspace through :func:`rnaimg_core.outputs.atomic_output` (the folder is made
        again when the size caps removed it while the session was idle)."""
        path = self.folder / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            tmp.write_bytes(data)

    def touch(self) -> None:
        """Mark the workspace as used now (it expires ``TTL_SECONDS`` after the last use)."""
        try:
            os.utime(self.folder)
        except OSError:
            pass

    # ------------------------------------------------------------ data
    def save_origin(self, origin: dict, files: dict[str, bytes | None] | None = None) -> None:
        """How the data were made (JSON) and, for an upload, its files; drops the old data's layouts and model."""
        for name in (LAYOUTS_DIR, MODEL_DIR):
            shutil.rmtree(self.folder / name, ignore_errors=True)
        (self.folder / JOB_FILE).unlink(missing_ok=True)
        for stale in self.folder.glob("file_*"):
            stale.unlink(missing_ok=True)
        self.saved_layouts.clear()
        self.saved_model = None
        names = {}
        for name, data in (files or {}).items():
            if data is not None:
                self._write(f"file_{name}", data)
                names[name] = f"file_{name}"
        self._write_json(ORIGIN_FILE, {**origin, "files": names})

    def origin(self) -> tuple[dict, dict[str, bytes]] | None:
        """(origin, files by name) as saved, or None."""
        origin = self._read_json(ORIGIN_FILE)
        if origin is None:
            return None
        files = {name: (self.folder / file).read_bytes() for name, file in origin.pop("files", {}).items()
                 if re.fullmatch(r"file_\w+", file) and (self.folder / file).is_file()}
        return origin, files

    # ------------------------------------------------------------ choices
    def save_choices(self, choices: dict) -> None:
        """The user's choices (normalisation, generator, parameters); written only when they changed."""
        text = json.dumps(choices, sort_keys=True, default=json_default)
        if text != self.saved_choices:
            self._write(CHOICES_FILE, text.encode())
            self.saved_choices = text

    def choices(self) -> dict:
        return self._read_json(CHOICES_FILE) or {}

    # ------------------------------------------------------------ layouts
    def save_layouts(self, layouts: dict[str, Layout]) -> None:
        """Write the layouts not written yet (layout JSON), and forget files of layouts no longer kept."""
        folder = self.folder / LAYOUTS_DIR
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        index = {}
        for order, (key, layout) in enumerate(layouts.items()):
            file = hashlib.sha256(key.encode()).hexdigest()[:24] + ".json"
            if key not in self.saved_layouts or not (folder / file).is_file():
                self._write(f"{LAYOUTS_DIR}/{file}", layout.to_json().encode())
                self.saved_layouts.add(key)
            index[key] = file
        for path in folder.glob("*.json"):
            if path.name != "index.json" and path.name not in index.values():
                path.unlink()
        self.saved_layouts &= set(index)
        self._write(f"{LAYOUTS_DIR}/index.json", json.dumps(index).encode())

    def layouts(self) -> dict[str, Layout]:
        """Saved layouts by key, oldest first."""
        folder = self.folder / LAYOUTS_DIR
        index = self._read_json(f"{LAYOUTS_DIR}/index.json") or {}
        out = {}
        for key, file in index.items():
            if re.fullmatch(r"[0-9a-f]{24}\.json", file) and (folder / file).is_file():
                out[key] = Layout.from_json((folder / file).read_bytes())
        self.saved_layouts = set(out)
        return out

    # ------------------------------------------------------------ model
    def save_model(self, result: TrainResult, layout_key: str, settings: TrainSettings) -> None:
        """The trained model (safetensors + JSON) and which layout and settings made it; once per result."""
        if self.saved_model == id(result):
            return
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        save_model(result, self.folder / MODEL_DIR)  # written through rnaimg_core.outputs (replaced when complete)
        self._write_json(JOB_FILE, {"layout_key": layout_key, "settings": asdict(settings)})
        self.saved_model = id(result)

    def model(self) -> tuple[TrainResult, str, TrainSettings] | None:
        """(result, layout key, settings) of the saved model, or None."""
        job = self._read_json(JOB_FILE)
        if job is None or not (self.folder / MODEL_DIR).is_dir():
            return None
        trained = load_model(self.folder / MODEL_DIR)
        result = result_from_info(trained)
        defaults = asdict(TrainSettings())
        settings = TrainSettings(**{k: tuple(v) if isinstance(defaults[k], tuple) else v
                                    for k, v in job.get("settings", {}).items() if k in defaults})
        self.saved_model = id(result)
        return result, str(job["layout_key"]), settings

    # ------------------------------------------------------------ helpers
    def _write_json(self, name: str, data: dict) -> None:
        self._write(name, json.dumps(data, default=json_default).encode())
        self.touch()

    def _read_json(self, name: str) -> dict | None:
        path = self.folder / name
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None


def result_from_info(trained) -> TrainResult:
    """Rebuild a :class:`TrainResult` from a loaded model's ``model.json`` (what :func:`save_model` wrote)."""
    info = trained.info
    summary = dict(info.get("metrics", {}))
    return TrainResult(
        model=trained, class_names=list(trained.class_names), metrics=summary,
        confusion=np.asarray(info.get("confusion", [])), per_class=list(info.get("per_class", [])),
        history=list(info.get("history", [])), baseline=info.get("baseline"), control=info.get("control"),
        split=dict(info.get("split", {})), device=str(summary.get("device", "cpu")),
        seconds=float(summary.get("seconds", 0.0)), train_seconds=float(summary.get("train_seconds", 0.0)),
        samples_per_second=float(summary.get("samples_per_second", 0.0)),
        epochs_run=int(summary.get("epochs", 0)), best_epoch=int(summary.get("best_epoch", 0)),
        stopped=str(summary.get("stopped", "completed")), settings=dict(info.get("settings", {})),
        notes=list(summary.get("notes", [])))
