"""A training run in a background thread, so a page can draw live progress and a stop button."""

from __future__ import annotations

import io
import statistics
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from rnaimg_core.budget import training_bytes
from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.model import TrainSettings, save_model, train_model
from rnaimg_core.model.metrics import perfect_score_note

from dashboard.memory import admit_job
from dashboard.state import Recent

MAX_EXPLANATIONS = 16


class TrainingJob:
    """One call of :func:`rnaimg_core.model.train_model` in a daemon thread.

    The page polls :attr:`history` (one record per finished epoch) and
    :attr:`running`, and sets :attr:`stop_event` when the user presses Stop
    (the best epoch so far is kept). Explanations of the trained model are
    remembered in :attr:`explanations`, so they go when the job goes.

    Parameters
    ----------
    image_set : the images to train on (labels and fit/holdout split included)
    layout_key : cache key of the layout the images were made with
    settings : the training settings
    """

    def __init__(self, image_set: ImageSet | None, layout_key: str, settings: TrainSettings):
        self.image_set = image_set
        self.layout_key = layout_key
        self.settings = settings
        self.history: list[dict] = []
        self.result = None
        self.error: BaseException | None = None
        self.stop_event = threading.Event()
        self.stopped_because: str | None = None  # set when the server stopped it (dashboard.jobs), not the user
        self.data_key = ""  # the data the images were made from (set by dashboard.glue.start_job)
        self.explanations = Recent(MAX_EXPLANATIONS)
        self._zip: bytes | None = None
        self._thread = threading.Thread(target=self._run, name="rnaimg-training", daemon=True)

    @classmethod
    def finished(cls, result, layout_key: str, settings: TrainSettings) -> "TrainingJob":
        """A job that is already over, holding ``result`` (a model restored from the session's workspace)."""
        job = cls(None, layout_key, settings)
        job.result = result
        job.history = list(result.history)
        return job

    def start(self) -> "TrainingJob":
        """Start training once the server's memory budget admits it (:mod:`dashboard.memory`); returns the job.

        When the budget stays used up the job does not start and ``error`` says why (an InputError)."""
        images = self.image_set
        try:
            self._ticket = admit_job(training_bytes(images.n_samples, images.images.shape[1:]), "training")
        except InputError as exc:
            self.error = exc
            return self
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = train_model(self.image_set, self.settings, progress=self.history.append,
                                      should_stop=self.stop_event)
            record_training(self.image_set, self.history, time.monotonic() - self.started)
        except BaseException as exc:  # handed to the page, which shows InputError and re-raises the rest
            self.error = exc
        finally:
            self._ticket.release()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the run ends, at most ``timeout`` seconds (at once for a job that is not running)."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def n_epochs(self) -> int:
        """The most epochs this run can take, over all networks of an ensemble (one history record each)."""
        return int(self.settings.epochs) * int(getattr(self.settings, "n_models", 1) or 1)

    def status(self, now: float | None = None) -> tuple[float, str]:
        """(fraction of the whole run, a line: network, epoch, time left), over every network of an ensemble.

        Networks stop early, so the run's length is estimated as it goes: the networks still to train are
        expected to take as many epochs as the finished ones did (at most ``epochs`` each), and the time
        left is the time per epoch so far times the epochs still expected.
        """
        n_models = max(1, int(getattr(self.settings, "n_models", 1) or 1))
        cap = int(self.settings.epochs)
        if not self.history:
            return 0.0, "Preparing the images and the first network…"
        epochs: dict[int, int] = {}  # network -> epochs run so far
        for record in self.history:
            member = int(record.get("model", 1))
            epochs[member] = max(epochs.get(member, 0), int(record.get("epoch", 1)))
        current = max(epochs)
        finished = [epochs[m] for m in epochs if m < current]
        typical = statistics.median(finished) if finished else min(cap, 2 * int(self.settings.patience) + 1)
        done = sum(epochs.values())
        expected = sum(finished) + max(typical, epochs[current]) + (n_models - current) * typical
        fraction = min(1.0, done / max(1, expected))
        elapsed = (time.monotonic() if now is None else now) - getattr(self, "started", time.monotonic())
        left = elapsed / max(1, done) * max(0.0, expected - done)
        text = (f"network {current} of {n_models}, epoch {epochs[current]} (at most {cap}) · " if n_models > 1
                else f"epoch {epochs[current]} of at most {cap} · ")
        text += f"{100 * fraction:.0f} % · about {duration(left)} left"
        if getattr(self.settings, "random_control", False):
            text += " (then the random-pixel control, about as long again)"
        return min(fraction, 0.99), text + (" · stopping…" if self.stop_event.is_set() else "")

    def progress_text(self) -> str:
        """Where training is (see :meth:`status`)."""
        return self.status()[1]

    def model_zip(self) -> bytes:
        """The trained model as a zip (built once per job)."""
        if self._zip is None:
            self._zip = model_zip_bytes(self.result)
        return self._zip


def duration(seconds: float) -> str:
    """``45 s``, ``2.5 min``."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


# Training speed on this server: (sample-pixels x epochs, seconds) of finished runs, the most recent last.
# Before any run here, the demo's run in benchmarks/README.md ("Embedded demo": 147 training cells of 98 x 98
# pixels, patience 15; 25-68 s wall on a shared 2-core machine, five networks of 16-21 epochs).
DEMO_RUN = (147 * 98 * 98 * 5 * 18, 50.0)
MAX_RUNS = 8
_runs: list[tuple[float, float]] = []
_runs_lock = threading.Lock()


def record_training(image_set, history: list[dict], seconds: float) -> None:
    """Remember how long a finished run took for its size (sizes and times only, no data)."""
    if not history or image_set is None:
        return
    n, *pixels = image_set.images.shape
    work = float(n) * float(np.prod(pixels)) * len(history)
    with _runs_lock:
        _runs.append((work, float(seconds)))
        del _runs[:-MAX_RUNS]


def expected_training(n_samples: int, image_shape: tuple, settings: TrainSettings) -> tuple[float, float, str]:
    """(typical, longest) seconds a run should take on these images, and what the figure rests on.

    Typical: networks stop after about twice the patience epochs; longest: every network to the epoch cap.
    The speed is the median of this server's last runs (per sample, pixel and epoch), else the demo's
    measured run.
    """
    pixels = float(np.prod(image_shape))
    with _runs_lock:
        runs = list(_runs)
    rate = statistics.median(s / w for w, s in runs) if runs else DEMO_RUN[1] / DEMO_RUN[0]
    basis = (f"the speed of the last {len(runs)} run(s) on this server" if runs else
             "the demo's measured run (benchmarks: 25-68 s on a shared 2-core machine)")
    n_models = max(1, int(settings.n_models or 1))
    typical_epochs = n_models * min(int(settings.epochs), 2 * int(settings.patience) + 1)
    return (rate * n_samples * pixels * typical_epochs, rate * n_samples * pixels * n_models * int(settings.epochs),
            basis)


def perfect_score_notes(result) -> dict[str, str]:
    """The library's "no error seen" sentence for each model of a run that got every test sample right.

    Parameters
    ----------
    result : TrainResult of :func:`rnaimg_core.model.train_model`

    Returns
    -------
    dict: ``"CNN"``, ``"Baseline"`` and ``"Control"`` (as the Train page's headline tiles name the
    models) → :func:`~rnaimg_core.model.metrics.perfect_score_note`, for the models with a perfect score
    only (a model that was not run, or made an error, has no entry)
    """
    who = {"CNN": "the CNN", "Baseline": "the baseline", "Control": "the random-pixel control"}
    parts = {"CNN": {"confusion": result.confusion}, "Baseline": result.baseline, "Control": result.control}
    notes = {name: perfect_score_note(part["confusion"], who[name])
             for name, part in parts.items() if part is not None and "confusion" in part}
    return {name: note for name, note in notes.items() if note}


def model_zip_bytes(result) -> bytes:
    """The model folder of :func:`rnaimg_core.model.save_model` as a zip file, in memory.

    Parameters
    ----------
    result : TrainResult of :func:`rnaimg_core.model.train_model`

    Returns
    -------
    bytes of a zip whose members are ``model/<file>``
    """
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="rnaimg-model-") as tmp:
        folder = save_model(result, Path(tmp) / "model")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, arcname=f"model/{path.name}")
    return buffer.getvalue()
