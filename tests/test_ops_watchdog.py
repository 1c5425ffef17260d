"""The webhook watchdog (daytime silence → one e-mail to operators per silence, /readyz degraded, a gauge in
/metrics), the sweeper's housekeeping hook, and `ntbcare facebook check` against a mocked Graph API."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy

import responses
from click.testing import CliRunner
from sqlalchemy import select, update

from ntbcare.app import create_app
from ntbcare.cli import cli
from ntbcare.core.delivery_store import insert_delivery
from ntbcare.core.models import Delivery, OutboundMail, utcnow
from ntbcare.pipeline.join import Pipeline
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.watchdog import WITA, daytime_minutes_between, webhook_silence
from tests.conftest import BASE_ENV, PAGE_ID, RecordingDispatcher, drain, make_settings
from tests.servers import RecordingHandler, smtp_server
from tests.test_ops_metrics import TOKEN, scrape, value

OPERATOR = "ops@diskominfotik.test"


def wita(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=WITA)


def test_only_daytime_minutes_count():
    assert daytime_minutes_between(wita(3, 21, 50), wita(4, 8, 0)) == 10 + 120  # 21:50-22:00 and 06:00-08:00
    assert daytime_minutes_between(wita(3, 23, 0), wita(4, 5, 59)) == 0  # a quiet night is no silence
    assert daytime_minutes_between(wita(3, 9, 0), wita(3, 11, 0)) == 120
    assert daytime_minutes_between(wita(1, 9, 0), wita(3, 9, 0)) == 2 * 16 * 60


def age_deliveries(runtime: Runtime, **delta: float) -> None:
    with runtime.db.scope() as session:
        session.execute(update(Delivery).values(received_at=utcnow() - timedelta(**delta)))


def test_silence_needs_a_webhook_first_and_replays_do_not_count(runtime, post):
    with runtime.db.session() as session:
        assert webhook_silence(session, utcnow(), runtime.settings).silent is False  # nothing ever arrived
    assert post("feed__comment__add").status_code == 200
    age_deliveries(runtime, days=2)
    with runtime.db.session() as session:
        silence = webhook_silence(session, utcnow(), runtime.settings)
    assert silence.silent and silence.daytime_minutes >= 16 * 60 and silence.threshold_minutes == 120
    insert_delivery(runtime.db, b'{"object": "page", "entry": []}', source="replay")
    with runtime.db.session() as session:
        assert webhook_silence(session, utcnow(), runtime.settings).silent  # a replay is not Facebook speaking
    assert post("feed__comment__edited").status_code == 200
    with runtime.db.session() as session:
        assert webhook_silence(session, utcnow(), runtime.settings).silent is False


def test_readyz_and_metrics_report_the_silence(database_url, db, post):
    settings = make_settings(DATABASE_URL=database_url, METRICS_TOKEN=TOKEN)
    client = create_app(runtime=Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())).test_client()
    assert post("feed__comment__add").status_code == 200
    assert client.get("/readyz").get_json()["status"] == "ok"
    assert value(scrape(client), "ntbcare_webhook_silence") == 0
    with db.scope() as session:
        session.execute(update(Delivery).values(received_at=utcnow() - timedelta(days=2)))
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200  # still ready: restarting would not bring Facebook back
    assert body["status"] == "degraded" and body["degraded"] == ["webhook_silence"] and body["failing"] == []
    assert body["webhook_silence"]["silent"] is True and body["webhook_silence"]["threshold_minutes"] == 120
    samples = scrape(client)
    assert value(samples, "ntbcare_webhook_silence") == 1
    assert value(samples, "ntbcare_webhook_silence_daytime_minutes") >= 16 * 60


def tasks_by_name(pipeline: Pipeline) -> dict:
    return {task.__name__: task for task in pipeline.periodic_tasks()}


def test_operators_get_one_email_per_silence(database_url, db, post):
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        settings = make_settings(DATABASE_URL=database_url, OPERATOR_EMAILS=OPERATOR,
                                 SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5")
        watch = tasks_by_name(Pipeline(settings, db))["watch_webhooks"]
        assert post("feed__comment__add").status_code == 200
        watch()
        assert handler.received == []  # not silent yet
        with db.scope() as session:
            session.execute(update(Delivery).values(received_at=utcnow() - timedelta(days=2)))
        watch()
        watch()  # the same silence: nothing more
        assert len(handler.received) == 1
        [(recipients, raw)] = handler.received
        message = email.message_from_bytes(raw, policy=default_policy)
        assert recipients == [OPERATOR] and "Tidak ada kiriman webhook" in message["Subject"]
        assert "ntbcare facebook check" in message.get_body(("plain",)).get_content()
        assert post("feed__comment__edited").status_code == 200  # the silence ends...
        watch()
        with db.scope() as session:  # ...and a new one begins
            session.execute(update(Delivery).values(received_at=utcnow() - timedelta(days=1)))
        watch()
        assert len(handler.received) == 2
        with db.session() as session:
            keys = session.scalars(select(OutboundMail.key).where(OutboundMail.kind == "watchdog")).all()
            assert len(keys) == 2 and all(k.startswith("watchdog:silence:") for k in keys)


def test_without_operator_emails_nothing_is_owed(runtime, post):
    assert post("feed__comment__add").status_code == 200
    age_deliveries(runtime, days=2)
    tasks_by_name(Pipeline(runtime.settings, runtime.db))["watch_webhooks"]()
    with runtime.db.session() as session:
        assert session.scalars(select(OutboundMail)).all() == []


def test_the_sweeper_empties_old_raw_bodies(runtime, post):
    assert post("feed__comment__add").status_code == 200
    drain(runtime)
    age_deliveries(runtime, days=91)
    tasks_by_name(Pipeline(runtime.settings, runtime.db))["purge_old_raw_bodies"]()
    with runtime.db.session() as session:
        assert session.scalars(select(Delivery.body)).all() == [b""]


# -- ntbcare facebook check -----------------------------------------------------------------------------------------

GRAPH = "https://graph.facebook.com/v25.0"
APP_ID = "880000000000001"
PAGE_TOKEN = "EAAG-page-token-for-the-check"
FIELDS = ["feed", "messages", "messaging_postbacks", "message_echoes", "message_deliveries", "message_reads"]
PERMISSIONS = ["pages_manage_metadata", "pages_show_list", "pages_messaging", "pages_read_engagement",
               "pages_manage_engagement"]


def check(*args: str) -> tuple[int, str]:
    env = {**BASE_ENV, "FB_PAGE_ACCESS_TOKEN": PAGE_TOKEN, "PUBLIC_BASE_URL": "https://ntbcare.ntbprov.test",
           "DATABASE_URL": "sqlite:///unused.db"}
    result = CliRunner().invoke(cli, ["facebook", "check", *args], env=env)
    return result.exit_code, result.output


def mock_graph(*, scopes=PERMISSIONS, subscribed=FIELDS, page_apps=True, callback="https://ntbcare.ntbprov.test/webhook",
               active=True, expires_at=0) -> None:
    responses.get(f"{GRAPH}/app", json={"id": APP_ID, "name": "NTB Care"})
    responses.get(f"{GRAPH}/debug_token", json={"data": {
        "app_id": APP_ID, "type": "PAGE", "profile_id": PAGE_ID, "is_valid": True, "expires_at": expires_at,
        "scopes": list(scopes)}})
    apps = [{"id": APP_ID, "name": "NTB Care", "subscribed_fields": list(subscribed)}] if page_apps else []
    responses.get(f"{GRAPH}/{PAGE_ID}/subscribed_apps", json={"data": apps})
    responses.get(f"{GRAPH}/{APP_ID}/subscriptions", json={"data": [{
        "object": "page", "callback_url": callback, "active": active,
        "fields": [{"name": f, "version": "v25.0"} for f in FIELDS]}]})


@responses.activate
def test_facebook_check_passes_when_everything_is_in_place():
    mock_graph()
    code, output = check("--json")
    report = json.loads(output)
    assert code == 0 and report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["app", "page token", "permissions", "page subscription",
                                                     "app webhook"]
    assert all(c["ok"] and c["fix"] == "" for c in report["checks"])
    debug = next(call.request for call in responses.calls if "/debug_token" in call.request.url)
    assert f"input_token={PAGE_TOKEN}" in debug.url
    assert f"access_token={APP_ID}%7C" in debug.url  # the app token {app-id}|{app-secret}
    subscriptions = next(call.request for call in responses.calls if "/subscriptions" in call.request.url)
    assert f"access_token={APP_ID}%7C" in subscriptions.url


@responses.activate
def test_facebook_check_says_what_to_do_for_each_problem():
    soon = int((datetime.now(UTC) + timedelta(days=3)).timestamp())
    mock_graph(scopes=PERMISSIONS[:3], subscribed=["feed"], callback="https://old.example/webhook", expires_at=soon)
    code, output = check()
    assert code == 1
    assert "FAIL  permissions" in output and "missing: pages_read_engagement, pages_manage_engagement" in output
    assert "FAIL  page subscription" in output and "subscribed_apps?subscribed_fields=feed,messages" in output
    assert "FAIL  app webhook" in output and "https://ntbcare.ntbprov.test/webhook" in output
    assert "FAIL  page token" in output and "expires on" in output
    assert output.count("what to do:") == 4
    assert PAGE_TOKEN not in output


@responses.activate
def test_facebook_check_when_the_page_is_unsubscribed_or_the_token_dead():
    mock_graph(page_apps=False)
    code, output = check("--json")
    [failed] = [c for c in json.loads(output)["checks"] if not c["ok"]]
    assert code == 1 and failed["name"] == "page subscription" and "not subscribed" in failed["detail"]

    responses.reset()
    responses.get(f"{GRAPH}/app", status=400, json={"error": {"message": "Error validating access token: Session "
                                                                        "has expired", "type": "OAuthException",
                                                              "code": 190}})
    code, output = check("--json")
    [only] = json.loads(output)["checks"]
    assert code == 1 and only["name"] == "page token" and "(#190)" in only["detail"]
    assert "FB_PAGE_ACCESS_TOKEN" in only["fix"]


def test_facebook_check_without_a_page_token():
    result = CliRunner().invoke(cli, ["facebook", "check"], env={**BASE_ENV, "FB_PAGE_ACCESS_TOKEN": ""})
    assert result.exit_code == 1 and "FB_PAGE_ACCESS_TOKEN or FB_PAGE_ID is not set" in result.output
