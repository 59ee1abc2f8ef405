"""Which samples are honest test samples: the one split policy of the project.

Every score rnaimg reports rests on these rules:

- :func:`holdout_split` marks a stratified fraction of samples ``"holdout"``. Held-out
  samples are kept out of everything that is fitted (layout, normalisation, network)
  and used only to score. One rule everywhere: :data:`HOLDOUT_FRACTION` (a fifth) drawn
  with :data:`HOLDOUT_SEED`, whatever the generator and its seed. :func:`default_holdout`
  is the tolerant form the dashboard and the CLI use when no fraction is asked for: it
  holds nothing out when there are no labels or the classes are too small to stratify;
  :func:`holdout_rule` picks between the two as the command line and big runs do.
- :func:`train_val_test` turns a fit/holdout column into train / validation / test
  indices for one training run (test = the holdout samples when there are any).
- :func:`stratified_folds` gives the repeated cross-validation folds.
"""

from __future__ import annotations

import numpy as np

from rnaimg_core.errors import InputError

FIT, HOLDOUT = "fit", "holdout"
# The one holdout rule (dashboard, ``rnaimg layout``, big runs): a stratified fifth of the samples is kept out of
# fitting and training, drawn with one fixed seed, so which samples are held out depends on the data alone, not
# on the generator or its seed: every layout of a cohort (and a control) is scored on the same samples.
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 0
TEST_FRACTION = 0.25     # test share drawn when the images carry no holdout samples
VAL_FRACTION = 0.2       # validation share of the non-test samples (early stopping)
# Validation samples training uses at most (the rest train): the validation loss of 5,000 samples ranks
# epochs with a standard error far below the differences early stopping acts on, and each epoch's
# validation pass stays bounded however large the images store (in-memory cohorts rarely reach it).
MAX_VAL_SAMPLES = 5000


def holdout_split(labels: np.ndarray | None, n_samples: int, fraction: float = HOLDOUT_FRACTION,
                  seed: int = HOLDOUT_SEED) -> np.ndarray:
    """Mark a stratified ``fraction`` of samples as held out (asked for explicitly: it must be possible).

    Parameters
    ----------
    labels : ndarray of str, shape (n_samples,), or None for an unstratified split
    n_samples : number of samples
    fraction : share held out; 0 holds nothing out
    seed : seed of the split (the project's one :data:`HOLDOUT_SEED` unless a test needs another draw)

    Returns
    -------
    ndarray of str, shape (n_samples,): ``"fit"`` or ``"holdout"``
    """
    split = np.full(n_samples, FIT, dtype="<U7")
    if fraction <= 0:
        return split
    if not 0 < fraction < 1:
        raise InputError("The held-out fraction must be between 0 and 1.")
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 (lazy: scikit-learn loads in ~0.5 s; only some paths need it)

    try:
        _, held = train_test_split(np.arange(n_samples), test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise InputError(f"Cannot hold out {fraction:.0%} of the samples stratified by class: {exc}") from None
    split[held] = HOLDOUT
    return split


def default_holdout(labels: np.ndarray | None, n_samples: int, fraction: float = HOLDOUT_FRACTION,
                    seed: int = HOLDOUT_SEED) -> np.ndarray:
    """The default holdout: :func:`holdout_split`, or everything ``"fit"`` when there are no labels or
    the classes are too small to stratify (the dashboard, and the CLI without ``--holdout``)."""
    if labels is None:
        return np.full(n_samples, FIT, dtype="<U7")
    labels = np.asarray(labels)
    counts = np.unique(labels, return_counts=True)[1]
    n_held = int(np.ceil(fraction * labels.size))
    if counts.min() < 2 or n_held < counts.size:
        return np.full(n_samples, FIT, dtype="<U7")
    return holdout_split(labels, labels.size, fraction, seed=seed)


def holdout_rule(labels: np.ndarray | None, n_samples: int, fraction: float | None = None) -> np.ndarray:
    """The project's holdout rule: ``fraction`` None is :func:`default_holdout` (a tolerant fifth), a number
    is :func:`holdout_split` of exactly that share (0: nothing held out); always with :data:`HOLDOUT_SEED`.

    Raises
    ------
    InputError
        When an asked-for fraction cannot be held out stratified by class.
    """
    if fraction is None:
        return default_holdout(labels, n_samples)
    return holdout_split(labels, n_samples, fraction)

def train_val_test(labels: np.ndarray, split: np.ndarray | None = None, *, test_fraction: float = TEST_FRACTION,
                   val_fraction: float = VAL_FRACTION, seed: int = 0, max_val: int | None = None) -> dict:
    """Sample indices for training, validation and test.

    Parameters
    ----------
    labels : ndarray of str, shape (n,)
    split : ndarray of str, ``"fit"``/``"holdout"`` per sample (from the images file), or None
    test_fraction : used only when there are no holdout samples: the stratified
        fraction of all samples held out for testing
    val_fraction : stratified fraction of the non-test samples used for early stopping
    seed : seed of the random splits
    max_val : at most this many validation samples (a stratified subsample; the others train), or None

    Returns
    -------
    dict with ``train``, ``val``, ``test`` (sorted index arrays), ``test_source`` and ``notes``
    """
    labels = np.asarray(labels).astype(str)
    n = labels.size
    notes: list[str] = []
    holdout = np.zeros(n, dtype=bool) if split is None else (np.asarray(split).astype(str) == HOLDOUT)
    if holdout.any():
        test = np.flatnonzero(holdout)
        rest = np.flatnonzero(~holdout)
        source = "holdout samples (kept out of layout fitting)"
        missing = sorted(set(labels[test]) - set(labels[rest]))
        if missing:
            raise InputError(f"Class(es) {', '.join(missing)} occur only among the holdout samples; the network "
                             "cannot learn them. Refit the layout with a stratified --holdout.")
    else:
        if not 0 < test_fraction < 1:
            raise InputError("test_fraction must be between 0 and 1 when the images carry no holdout samples.")
        rest, test = _stratified(np.arange(n), labels, test_fraction, seed, notes, "test")
        source = f"stratified {test_fraction:.0%} test split (no holdout samples in the images)"
    if val_fraction > 0:
        train, val = _stratified(rest, labels[rest], val_fraction, seed + 1, notes, "validation")
        if max_val is not None and val.size > max_val:
            back, val = _stratified(val, labels[val], int(max_val), seed + 2, notes, "validation")
            train = np.concatenate([train, back])
            notes.append(f"Validation used a stratified {val.size} of the {val.size + back.size} validation "
                         f"samples (at most {max_val}); the other {back.size} trained.")
    else:
        train, val = rest, np.empty(0, dtype=np.int64)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test), "test_source": source,
            "notes": notes}


def _stratified(index: np.ndarray, labels: np.ndarray, fraction: float, seed: int, notes: list[str],
                what: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 (lazy: scikit-learn loads in ~0.5 s; only some paths need it)

    if index.size < 2:
        raise InputError(f"Too few samples ({index.size}) to make a {what} split.")
    try:
        return tuple(train_test_split(index, test_size=fraction, random_state=seed, stratify=labels))
    except ValueError:
        notes.append(f"The {what} split could not be stratified (some classes are too small); "
                     "it was drawn at random instead.")
        return tuple(train_test_split(index, test_size=fraction, random_state=seed))


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Test indices of each fold of a shuffled stratified ``n_folds``-fold split.

    Raises :class:`InputError` when the smallest class has fewer samples than folds.
    """
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415 (lazy: scikit-learn loads in ~0.5 s; only some paths need it)

    labels = np.asarray(labels).astype(str)
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < n_folds:
        raise InputError(f"The smallest class has {counts.min()} samples, fewer than the {n_folds} folds; "
                         "use fewer folds.")
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(labels, labels)
    return [np.sort(test) for _, test in folds]


def layout_split(fit_sample_ids, sample_ids: np.ndarray) -> np.ndarray:
    """``"fit"`` for the samples a layout was fitted on, ``"holdout"`` for the rest (all fit when unknown).

    ``fit_sample_ids`` is :attr:`Layout.fit_sample_ids`; ``sample_ids`` are the samples being converted.
    """
    sample_ids = np.asarray(sample_ids).astype(str)
    if len(fit_sample_ids) == 0:
        return np.full(sample_ids.size, FIT, dtype="<U7")
    return np.where(np.isin(sample_ids, np.asarray(fit_sample_ids, dtype=str)), FIT, HOLDOUT)


def fold_split(n_samples: int, test: np.ndarray) -> np.ndarray:
    """A fit/holdout column with ``test`` held out (one cross-validation fold)."""
    split = np.full(n_samples, FIT, dtype="<U7")
    split[test] = HOLDOUT
    return split


def stratified_sample(labels: np.ndarray | None, index: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Sorted ``size`` of ``index``, stratified by ``labels[index]`` (all of it when smaller).

    Used where a fit reads a sample of a large cohort or store (layout fits of a big run,
    the streamed baseline); a class too small to stratify makes it a plain seeded draw.
    """
    index = np.asarray(index, dtype=np.int64)
    if size >= index.size:
        return index
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(index, size=size, replace=False))
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 (lazy: scikit-learn loads in ~0.5 s; only some paths need it)

    try:
        chosen, _ = train_test_split(index, train_size=size, random_state=seed, stratify=labels[index])
    except ValueError:  # a class too small to stratify: draw at random
        chosen = rng.choice(index, size=size, replace=False)
    return np.sort(chosen)
