"""The routing classifier a process shares, reloaded when `ntbcare routing train` replaces the file."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ntbcare.core.security import model_signing_key

if TYPE_CHECKING:
    from routing.classify import Classifier

_classifiers: dict[str, tuple[int | None, Classifier]] = {}
_lock = threading.Lock()


def model_stamp(path: str) -> int | None:
    """The file's modification time in ns (None when there is no file yet)."""
    file = Path(path).resolve()
    return file.stat().st_mtime_ns if file.exists() else None


def load_classifier(path: str, secret_key: str) -> Classifier:
    """The classifier saved at ``path`` and signed with a key derived from ``secret_key`` (SECRET_KEY);
    trained from the bundled seed and saved signed when missing, stale or not signed with this key.

    Cached per process and reloaded when the file's mtime changes, so a retrained model reaches running
    processes without a restart. An RQ worker calls this in its parent before every fork
    (`worker.ModelRefreshingWorker.fork_work_horse`), so work-horses inherit the current model and never load it.
    """
    # Imported here: scikit-learn and numpy stay out of web processes that never classify.
    from routing.classify import Classifier

    file = Path(path).resolve()
    key = str(file)
    with _lock:
        stamp = model_stamp(key)
        cached = _classifiers.get(key)
        if cached is None or (stamp is not None and cached[0] != stamp):
            classifier = Classifier.load(file, model_signing_key(secret_key))
            # Build the gazetteer and keyword index now (~0.3 s): in an RQ worker's parent, so that every
            # work-horse inherits them instead of building them again for each job it forks for.
            classifier.classify("Jalan rusak di Kota Mataram")
            _classifiers[key] = (model_stamp(key), classifier)
        return _classifiers[key][1]


def cached_stamp(path: str) -> int | None:
    """The mtime of the model this process has loaded from ``path`` (None when none is loaded)."""
    cached = _classifiers.get(str(Path(path).resolve()))
    return cached[0] if cached is not None else None
