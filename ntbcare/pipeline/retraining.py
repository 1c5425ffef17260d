"""Learning from people's decisions, safely: the routing model is retrained after every
``RETRAIN_AFTER_DECISIONS`` new decisions and nightly, and a candidate replaces the running model only if it
scores no worse on the frozen evaluation set (auto-routed precision *and* coverage at its own stored operating
point). A refused candidate is thrown away; the running model keeps serving.

What the running model scored, when it was trained and on how many decisions is kept in a service flag
(``ROUTING_MODEL_FLAG``) that the console shows. A second flag (``RETRAIN_CLAIM_FLAG``) is a claim: with
several sweepers (one per process) only one trains at a time.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ntbcare.core.db import Database
from ntbcare.core.display import DISPLAY_TZ
from ntbcare.core.models import RoutingDecision, ServiceFlag, utcnow
from ntbcare.core.security import model_signing_key, private_dir
from ntbcare.core.settings import Settings
from ntbcare.pipeline.classifier import load_classifier
from routing.decisions import training_examples
from routing.examples import SEED_DIR, Example, load_seed, read_jsonl

log = logging.getLogger(__name__)

ROUTING_MODEL_FLAG = "routing_model"
RETRAIN_CLAIM_FLAG = "routing_retrain_claim"
FROZEN_SET = SEED_DIR.parent / "eval" / "frozen_test.jsonl"
NIGHTLY_AT = time(2, 0)  # local time (WITA): quiet hours
STALE_CLAIM = timedelta(hours=1)  # a sweeper that died mid-training does not block retraining for ever
_running = threading.Lock()  # one retraining thread per process
Trainer = Callable[[list[Example]], Any]


@dataclass(frozen=True)
class ModelStatus:
    """The running model's figures on the frozen set; ``decisions`` None when not known (the bundled seed
    model trained on first start); ``last_result`` says what the newest retraining attempt did."""

    precision: float | None = None
    coverage: float | None = None
    trained_at: str | None = None  # ISO 8601, UTC
    decisions: int | None = None
    decision_count_at: int = 0  # routing_decisions rows when the model was trained (the counter for "every N")
    last_attempt_at: str | None = None
    last_result: str | None = None  # accepted, refused, baseline
    candidate_precision: float | None = None
    candidate_coverage: float | None = None

    @property
    def trained(self) -> datetime | None:
        return datetime.fromisoformat(self.trained_at) if self.trained_at else None

    @property
    def last_attempt(self) -> datetime | None:
        return datetime.fromisoformat(self.last_attempt_at) if self.last_attempt_at else None


def read_status(session: Session) -> ModelStatus | None:
    flag = session.get(ServiceFlag, ROUTING_MODEL_FLAG)
    if flag is None:
        return None
    try:
        data = json.loads(flag.value)
        return ModelStatus(**{key: value for key, value in data.items() if key in ModelStatus.__dataclass_fields__})
    except (ValueError, TypeError):
        return None


def model_status(session: Session, settings: Settings) -> ModelStatus | None:
    """What the console shows of the running model (None until the sweeper first measured it)."""
    del settings  # the figures live in the database, shared by every process
    return read_status(session)


def _write_status(session: Session, status: ModelStatus) -> None:
    value = json.dumps(asdict(status))
    flag = session.get(ServiceFlag, ROUTING_MODEL_FLAG)
    if flag is None:
        session.add(ServiceFlag(key=ROUTING_MODEL_FLAG, value=value))
    else:
        flag.value = value


def decision_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(RoutingDecision)) or 0)


def frozen_examples() -> list[Example]:
    return read_jsonl(FROZEN_SET)


def _score(model: Any, examples: list[Example]) -> tuple[float, float]:
    from routing.evaluate import evaluate_on

    report = evaluate_on(model, examples)
    return report.routed_precision, report.routed_coverage


def no_worse(candidate: tuple[float, float], running: tuple[float, float]) -> bool:
    """The gate: neither the precision nor the coverage of auto-routing may drop."""
    return candidate[0] >= running[0] and candidate[1] >= running[1]


def due(status: ModelStatus | None, decisions: int, every: int, now: datetime) -> str | None:
    """Why a retraining is due now ("decisions", "nightly", "baseline"), or None."""
    if status is None:
        return "baseline"
    if decisions - status.decision_count_at >= every:
        return "decisions"
    last = datetime.fromisoformat(status.last_attempt_at or status.trained_at or "1970-01-01T00:00:00+00:00")
    local_now = now.astimezone(DISPLAY_TZ)
    tonight = datetime.combine(local_now.date(), NIGHTLY_AT, tzinfo=DISPLAY_TZ)
    if local_now >= tonight > last.astimezone(DISPLAY_TZ):
        return "nightly"
    return None


def _claim(db: Database, now: datetime) -> bool:
    try:
        with db.scope() as session:
            session.execute(delete(ServiceFlag).where(ServiceFlag.key == RETRAIN_CLAIM_FLAG,
                                                      ServiceFlag.updated_at < now - STALE_CLAIM))
            session.add(ServiceFlag(key=RETRAIN_CLAIM_FLAG, value=now.isoformat(), updated_at=now))
        return True
    except IntegrityError:
        return False


def _release(db: Database) -> None:
    with db.scope() as session:
        session.execute(delete(ServiceFlag).where(ServiceFlag.key == RETRAIN_CLAIM_FLAG))


def _train_default(examples: list[Example]) -> Any:
    from routing.training import train

    return train(examples)


def retrain_gated(db: Database, settings: Settings, *, trainer: Trainer = _train_default,
                  evaluation: Iterable[Example] | None = None, now: datetime | None = None) -> ModelStatus:
    """Train a candidate on the seed plus every decision and let it replace the running model only if it is
    no worse on the frozen set; returns the status written (``last_result`` accepted or refused)."""
    now = now or utcnow()
    examples = list(evaluation) if evaluation is not None else frozen_examples()
    with db.session() as session:
        decisions = training_examples(session)
        count = decision_count(session)
        previous = read_status(session)
    running_model = load_classifier(settings.routing_model_path, settings.secret_key).model
    running = _score(running_model, examples)
    candidate_model = trainer(load_seed() + decisions)
    candidate = _score(candidate_model, examples)
    attempt = replace(ModelStatus(), last_attempt_at=now.isoformat(), candidate_precision=candidate[0],
                      candidate_coverage=candidate[1])
    if no_worse(candidate, running):
        path = Path(settings.routing_model_path)
        private_dir(path.parent)
        partial = path.with_suffix(path.suffix + ".new")
        candidate_model.save(partial, model_signing_key(settings.secret_key))
        partial.replace(path)  # atomic; running processes reload on the new mtime
        status = replace(attempt, precision=candidate[0], coverage=candidate[1], trained_at=now.isoformat(),
                         decisions=len(decisions), decision_count_at=count, last_result="accepted")
        log.info("routing model retrained on %d decisions: precision %.3f coverage %.3f (was %.3f / %.3f)",
                 len(decisions), candidate[0], candidate[1], *running)
    else:
        base = previous or ModelStatus(trained_at=_file_time(settings))
        status = replace(attempt, precision=running[0], coverage=running[1], trained_at=base.trained_at,
                         decisions=base.decisions, decision_count_at=count, last_result="refused")
        log.warning("retrained routing model refused: precision %.3f coverage %.3f on the frozen set, the running "
                    "model has %.3f / %.3f", candidate[0], candidate[1], *running)
    with db.scope() as session:
        _write_status(session, status)
    return status


def _file_time(settings: Settings) -> str | None:
    path = Path(settings.routing_model_path)
    return datetime.fromtimestamp(path.stat().st_mtime, DISPLAY_TZ).isoformat() if path.exists() else None


def measure_baseline(db: Database, settings: Settings, *, now: datetime | None = None) -> ModelStatus:
    """Record the running model's figures when nothing was recorded yet (first start)."""
    now = now or utcnow()
    running = _score(load_classifier(settings.routing_model_path, settings.secret_key).model, frozen_examples())
    with db.session() as session:
        count = decision_count(session)
    status = ModelStatus(precision=running[0], coverage=running[1], trained_at=_file_time(settings),
                         decision_count_at=count, last_attempt_at=now.isoformat(), last_result="baseline")
    with db.scope() as session:
        _write_status(session, status)
    return status


def retrain_if_due(db: Database, settings: Settings, *, trainer: Trainer = _train_default,
                   now: datetime | None = None) -> ModelStatus | None:
    """The sweeper's task: measure, retrain or do nothing, as :func:`due` says; one process at a time."""
    now = now or utcnow()
    with db.session() as session:
        reason = due(read_status(session), decision_count(session), settings.retrain_after_decisions, now)
    if reason is None or not _claim(db, now):
        return None
    try:
        if reason == "baseline":
            return measure_baseline(db, settings, now=now)
        return retrain_gated(db, settings, trainer=trainer, now=now)
    finally:
        _release(db)


def retrain_soon(db: Database, settings: Settings) -> threading.Thread | None:
    """The sweeper's task: :func:`retrain_if_due` in a thread of its own, so training (a minute) never holds up
    the sweeper's other work; None when this process is already at it."""
    if not _running.acquire(blocking=False):
        return None

    def run() -> None:
        try:
            retrain_if_due(db, settings)
        except Exception:
            log.exception("retraining the routing model failed; the sweeper tries again")
        finally:
            _running.release()

    thread = threading.Thread(target=run, name="ntbcare-retrain", daemon=True)
    thread.start()
    return thread
