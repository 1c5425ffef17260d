"""`GET /metrics`: refused without the bearer token, and the figures an operator alerts on move as the service
works (a delivery received, processed, routed, acknowledged; a Graph error; an overdue ticket); values written
by several processes into one multiprocess directory add up."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from ntbcare.app import create_app
from ntbcare.core import metrics
from ntbcare.core.models import Delivery, Ticket, TicketStatus, utcnow
from ntbcare.pipeline.bootstrap import seed_agencies
from ntbcare.pipeline.runtime import Runtime
from routing.registry import load_registry
from tests.conftest import RecordingDispatcher, drain, make_settings
from tests.servers import eventually
from tests.test_e2e_answer_loop import PLN_TEXT, comment_event, loop  # noqa: F401  (the loop fixture)

TOKEN = "metrics-token-for-prometheus-0123456789"


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.get_data(as_text=True)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_client(database_url: str, db):  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, METRICS_TOKEN=TOKEN)
    runtime = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
    return create_app(runtime=runtime).test_client(), runtime


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                    TOKEN])
def test_metrics_are_refused_without_the_bearer_token(metrics_client, header):
    client, _ = metrics_client
    response = client.get("/metrics", headers={} if header is None else {"Authorization": header})
    assert response.status_code == 401
    assert "ntbcare_" not in response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unset_token_refuses_everyone(sqlite_url, db):
    runtime = Runtime(settings=make_settings(DATABASE_URL=sqlite_url), db=db, dispatcher=RecordingDispatcher())
    client = create_app(runtime=runtime).test_client()
    for header in ("Bearer ", "Bearer", ""):
        assert client.get("/metrics", headers={"Authorization": header}).status_code == 401


def test_delivery_counters_queue_and_tickets_follow_the_pipeline(metrics_client, post):
    client, runtime = metrics_client
    before = scrape(client)
    assert post("feed__comment__add").status_code == 200  # the fixture client shares the database
    waiting = scrape(client)
    received = "ntbcare_deliveries_received_total"
    assert value(waiting, received) == value(before, received) + 1
    assert value(waiting, "ntbcare_queue_depth") == 1
    assert value(waiting, "ntbcare_deliveries", status="pending") == 1
    assert value(waiting, "ntbcare_queue_oldest_pending_age_seconds") >= 0
    assert value(waiting, "ntbcare_deliveries_processed_total") == 0

    routed_before = value(waiting, "ntbcare_routing_confidence_count")
    drain(runtime, route=True)
    after = scrape(client)
    assert value(after, "ntbcare_deliveries_processed_total") == 1
    assert value(after, "ntbcare_queue_depth") == 0 and value(after, "ntbcare_queue_oldest_pending_age_seconds") == 0
    assert value(after, "ntbcare_routing_confidence_count") == routed_before + 1
    assert sum(value(after, "ntbcare_tickets", status=status) for status in TicketStatus.ALL) == 1
    assert value(after, "ntbcare_tickets", status=TicketStatus.NEW) == 0  # routed, in review, or not a complaint


def test_an_old_pending_delivery_shows_its_age(metrics_client, post):
    client, runtime = metrics_client
    assert post("feed__comment__add").status_code == 200
    with runtime.db.scope() as session:
        session.execute(update(Delivery).values(received_at=utcnow() - timedelta(minutes=30)))
    assert 1790 < value(scrape(client), "ntbcare_queue_oldest_pending_age_seconds") < 1900


def test_overdue_tickets_are_counted_per_agency(metrics_client, post):
    client, runtime = metrics_client
    assert post("feed__comment__add").status_code == 200
    drain(runtime)
    assert value(scrape(client), "ntbcare_tickets_overdue", agency="PLN") == 0
    with runtime.db.scope() as session:
        seed_agencies(session, load_registry())
        session.execute(update(Ticket).values(status=TicketStatus.FORWARDED, agency_code="PLN",
                                              deadline_at=utcnow() - timedelta(hours=1)))
    samples = scrape(client)
    assert value(samples, "ntbcare_tickets_overdue", agency="PLN") == 1
    assert value(samples, "ntbcare_tickets", status=TicketStatus.FORWARDED) == 1


def test_acknowledgements_graph_errors_and_emails_are_measured(loop):  # noqa: F811
    client = loop_client(loop)
    before = scrape(client)
    loop.graph.fail(1, status=500, code=2, message="Service temporarily unavailable", path_contains="/messages")
    loop.webhook(comment_event(PLN_TEXT))
    loop.forwarded_ticket(acknowledged=1)
    errors = "ntbcare_graph_api_errors_total"
    after = eventually(lambda: (samples := scrape(client)) and value(samples, errors, code="2") > value(
        before, errors, code="2") and samples, what="the Graph error counted")
    assert value(after, errors, code="2") == value(before, errors, code="2") + 1
    acks = "ntbcare_acknowledgement_seconds_count"
    assert value(after, acks, channel="comment_reply") == value(before, acks, channel="comment_reply") + 1
    assert value(after, "ntbcare_emails", state="sent") == 1
    assert value(after, "ntbcare_replies", status="sent") >= 1


def loop_client(loop):  # type: ignore[no-untyped-def]  # noqa: F811
    settings = make_settings(DATABASE_URL=loop.runtime.settings.database_url, METRICS_TOKEN=TOKEN)
    runtime = Runtime(settings=settings, db=loop.runtime.db, dispatcher=RecordingDispatcher())
    return create_app(runtime=runtime).test_client()


def _count_in_child(directory: str, deliveries: int, errors: int) -> None:
    metrics.prepare_multiprocess_dir(directory)
    for _ in range(deliveries):
        metrics.delivery_received()
    for _ in range(errors):
        metrics.graph_error(4)


def test_values_of_several_processes_add_up(tmp_path: Path):
    """As under gunicorn and RQ: each process writes its own file in the shared directory; /metrics sums them."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    directory = tmp_path / "metrics"
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_count_in_child, args=(str(directory), n, 1)) for n in (3, 4)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert directory.stat().st_mode & 0o777 == 0o700
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
    assert samples[("ntbcare_deliveries_received_total", ())] == 7
    assert samples[("ntbcare_graph_api_errors_total", (("code", "4"),))] == 2


def test_a_service_start_without_metrics_dir_gets_a_private_folder(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_private_folder, args=(queue,))
    child.start()
    path, mode = queue.get(timeout=60)
    child.join(60)
    assert mode == 0o700 and Path(path).name.startswith("ntbcare-metrics-")


def _private_folder(queue) -> None:  # type: ignore[no-untyped-def]
    path = metrics.prepare_multiprocess_dir("")
    metrics.delivery_received()
    queue.put((str(path), path.stat().st_mode & 0o777))
