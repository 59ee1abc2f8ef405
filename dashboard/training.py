"""A training run in a background thread, so a page can draw live progress and a stop button."""

from __future__ import annotations

import io
import tempfile
import threading
import zipfile
from pathlib import Path

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
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = train_model(self.image_set, self.settings, progress=self.history.append,
                                      should_stop=self.stop_event)
        except BaseException as exc:  # handed to the page, which shows InputError and re-raises the rest
            self.error = exc
        finally:
            self._ticket.release()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def n_epochs(self) -> int:
        """The most epochs this run can take, over all networks of an ensemble (one history record each)."""
        return int(self.settings.epochs) * int(getattr(self.settings, "n_models", 1) or 1)

    def progress_text(self) -> str:
        """Where training is: epoch (and network of an ensemble)."""
        if not self.history:
            return "Training…"
        last = self.history[-1]
        text = f"epoch {last.get('epoch', len(self.history))} of at most {int(self.settings.epochs)}"
        if "model" in last:
            text += f" · network {last['model']} of {last.get('n_models', '?')}"
        return text + (" · stopping…" if self.stop_event.is_set() else "")

    def model_zip(self) -> bytes:
        """The trained model as a zip (built once per job)."""
        if self._zip is None:
            self._zip = model_zip_bytes(self.result)
        return self._zip


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
