"""Learning from decisions, safely: a retrained routing model replaces the running one only if it scores no
worse on the frozen evaluation set; the sweeper retrains after every RETRAIN_AFTER_DECISIONS decisions and
nightly; the console shows the running model's figures."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ntbcare.core.display import DISPLAY_TZ
from ntbcare.core.models import RoutingDecision, ServiceFlag
from ntbcare.pipeline.classifier import load_classifier, model_stamp
from ntbcare.pipeline.retraining import (
    ROUTING_MODEL_FLAG,
    ModelStatus,
    due,
    read_status,
    retrain_gated,
    retrain_if_due,
)
from ntbcare.pipeline.runtime import Runtime
from routing.training import train
from tests.conftest import MODEL_PATH, RecordingDispatcher, make_settings
from tests.ops_helpers import login, make_operator
from tests.servers import eventually


@pytest.fixture
def own_model(database_url: str, tmp_path: Path) -> Any:
    """Settings whose routing model is a private copy of the test run's model: retraining replaces it."""
    load_classifier(MODEL_PATH, make_settings().secret_key)  # trained once per run, then copied
    path = tmp_path / "model" / "routing-model.pkl"
    path.parent.mkdir()
    shutil.copy(MODEL_PATH, path)
    return make_settings(DATABASE_URL=database_url, ROUTING_MODEL_PATH=str(path), RETRAIN_AFTER_DECISIONS="3")


def starved(examples: list[Any]) -> Any:
    """A deliberately worse model: trained on one example in twelve."""
    return train(examples[::12])


def add_decisions(db: Any, count: int) -> None:
    with db.scope() as session:
        for n in range(count):
            session.add(RoutingDecision(text=f"jalan rusak berlubang di desa {n}", complaint=True,
                                        agency_code="PUPRPKP", kind="assign", actor="operator:ani"))


def test_a_worse_model_is_refused_and_the_running_model_keeps_serving(own_model, db) -> None:  # type: ignore[no-untyped-def]
    path = Path(own_model.routing_model_path)
    before, stamp = path.read_bytes(), model_stamp(str(path))
    add_decisions(db, 2)
    status = retrain_gated(db, own_model, trainer=starved)
    assert status.last_result == "refused"
    assert status.candidate_precision is not None and status.candidate_coverage is not None
    assert status.candidate_coverage < status.coverage  # type: ignore[operator]
    assert path.read_bytes() == before and model_stamp(str(path)) == stamp
    assert not path.with_suffix(".pkl.new").exists()
    with db.session() as session:
        stored = read_status(session)
    assert stored == status


def test_a_model_no_worse_replaces_the_running_one_and_records_its_figures(own_model, db) -> None:  # type: ignore[no-untyped-def]
    path = Path(own_model.routing_model_path)
    stamp = model_stamp(str(path))
    add_decisions(db, 4)
    running = load_classifier(str(path), own_model.secret_key).model
    status = retrain_gated(db, own_model, trainer=lambda examples: running)  # the same model: scores equal
    assert status.last_result == "accepted"
    assert status.decisions == 4  # the four decisions it learnt from
    assert model_stamp(str(path)) != stamp
    assert status.precision and status.precision > 0.9 and status.coverage and status.coverage > 0.7


def test_the_sweeper_measures_first_then_retrains_after_every_n_decisions(own_model, db) -> None:  # type: ignore[no-untyped-def]
    runtime = Runtime(settings=own_model, db=db, dispatcher=RecordingDispatcher())
    task = next(t for t in runtime.pipeline.periodic_tasks() if t.__name__ == "retrain")
    task()  # first round: nothing recorded yet, so the running model is measured (in a thread), not retrained

    def measured() -> ModelStatus | None:
        with db.session() as session:
            return read_status(session)

    baseline = eventually(measured, timeout=120, what="the running model's figures")
    assert baseline is not None and baseline.last_result == "baseline" and baseline.precision
    assert retrain_if_due(db, own_model, trainer=starved) is None  # no new decisions yet
    add_decisions(db, 3)
    status = retrain_if_due(db, own_model, trainer=starved)
    assert status is not None and status.last_result == "refused"
    assert retrain_if_due(db, own_model, trainer=starved) is None  # counted from this attempt on
    with db.session() as session:
        assert session.get(ServiceFlag, "routing_retrain_claim") is None  # the claim is released


def test_retraining_is_due_nightly_after_two_in_the_morning_wita() -> None:
    evening = datetime(2026, 12, 3, 22, 0, tzinfo=DISPLAY_TZ)
    status = ModelStatus(precision=0.9, coverage=0.8, trained_at=evening.isoformat(), decision_count_at=10,
                         last_attempt_at=evening.isoformat())
    assert due(status, 10, 50, datetime(2026, 12, 4, 1, 59, tzinfo=DISPLAY_TZ)) is None
    assert due(status, 10, 50, datetime(2026, 12, 4, 2, 0, tzinfo=DISPLAY_TZ).astimezone(UTC)) == "nightly"
    morning = ModelStatus(precision=0.9, coverage=0.8, decision_count_at=10,
                          last_attempt_at=datetime(2026, 12, 4, 2, 5, tzinfo=DISPLAY_TZ).isoformat())
    assert due(morning, 10, 50, datetime(2026, 12, 4, 23, 0, tzinfo=DISPLAY_TZ)) is None
    assert due(morning, 60, 50, datetime(2026, 12, 4, 23, 0, tzinfo=DISPLAY_TZ)) == "decisions"
    assert due(None, 0, 50, datetime.now(UTC)) == "baseline"


def test_the_dashboard_shows_the_running_model_and_a_refused_retraining(client, db, runtime) -> None:  # type: ignore[no-untyped-def]
    trained = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
    status = ModelStatus(precision=0.9542, coverage=0.8512, trained_at=trained.isoformat(), decisions=321,
                         decision_count_at=400, last_attempt_at=(trained + timedelta(days=1)).isoformat(),
                         last_result="refused", candidate_precision=0.5, candidate_coverage=0.25)
    with db.scope() as session:
        session.add(ServiceFlag(key=ROUTING_MODEL_FLAG, value=json.dumps(asdict(status))))
    make_operator(db, "ani", "kata-sandi-ani-1")
    login(client, "ani", "kata-sandi-ani-1")
    page = client.get("/ops/").get_data(as_text=True)
    assert "95.4%" in page and "85.1%" in page and "321" in page
    assert "4 Des 2026 09.00 WITA" in page
    assert "ditolak" in page and "50.0%" in page and "25.0%" in page
