"""Generated Graph payloads, valid and broken, through the signed endpoint and the whole pipeline (issue 11's
fuzzing; the parsers alone are covered by tests/test_ingest_properties.py, whose strategies this reuses).

Bodies: both payload forms (``from`` and the older ``sender_id``/``sender_name``), wrong types, missing keys,
emoji, lone surrogates (escaped, as JSON carries them), deep nesting, huge strings, non-UTF-8 bytes. For every
body: never a 500; a 200 means a stored delivery; processing it never crashes the job (no failed delivery, no
retry, no error logged, routing included); and every stored item ends as an applied event, or recorded or
unsupported with a reason.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ntbcare.core.models import Delivery, DeliveryStatus, Event
from tests.test_ingest_properties import PAGE, envelopes, json_values, real_entries

QUICK = settings(max_examples=25, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
LONG = settings(QUICK, max_examples=300)

emoji_text = st.text(st.sampled_from("aku🙏🏽😡🌊🔥 \u200b\u202e\ud83d\udc00Ω") | st.characters(exclude_categories=[]),
                     min_size=1, max_size=80)
ids = st.from_regex(r"[1-9][0-9]{5,17}(_[1-9][0-9]{5,17})?", fullmatch=True)


@st.composite
def older_form_comments(draw: st.DrawFn) -> dict[str, Any]:
    """A feed comment in the older form (``sender_id``/``sender_name``) or the current one (``from``), with any
    of its keys dropped or given a wrong type."""
    comment = f"555000000000111_{draw(st.integers(1, 10**12))}"
    value: dict[str, Any] = {"message": draw(emoji_text), "post_id": f"{PAGE}_555000000000111",
                             "comment_id": comment, "parent_id": f"{PAGE}_555000000000111",
                             "created_time": draw(st.integers(1_700_000_000, 1_900_000_000)), "item": "comment",
                             "verb": draw(st.sampled_from(["add", "edited", "remove", "hide"]))}
    author, name = draw(ids), draw(emoji_text)
    if draw(st.booleans()):
        value.update(sender_id=author, sender_name=name)
    else:
        value["from"] = {"id": author, "name": name}
    for key in draw(st.lists(st.sampled_from(sorted(value)), max_size=2, unique=True)):
        if draw(st.booleans()):
            del value[key]
        else:
            value[key] = draw(json_values)
    return {"object": "page", "entry": [{"id": PAGE, "time": 1767225600,
                                         "changes": [{"field": "feed", "value": value}]}]}


def nested(depth: int) -> bytes:
    return b'{"object":"page","entry":[' + b'{"a":[' * depth + b"1" + b"]}" * depth + b"]}"


def huge(size: int) -> bytes:
    value = {"from": {"id": "7300000000000042", "name": "W"}, "message": "🙏" * size, "item": "comment",
             "verb": "add", "comment_id": "555000000000111_1", "post_id": f"{PAGE}_555000000000111",
             "parent_id": f"{PAGE}_555000000000111", "created_time": 1767225598}
    return json.dumps({"object": "page", "entry": [{"id": PAGE, "changes": [{"field": "feed", "value": value}]}]}
                      ).encode()


def encoded(payload: Any, ascii_only: bool) -> bytes:
    """JSON as Facebook sends it (``\\uXXXX`` escapes, so lone surrogates travel), or raw UTF-8 where possible."""
    text = json.dumps(payload, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass" if not ascii_only else "strict")


bodies = st.one_of(
    st.builds(encoded, older_form_comments(), st.booleans()),
    st.builds(encoded, envelopes, st.just(True)),
    st.builds(encoded, st.fixed_dictionaries({"object": st.just("page"),
                                              "entry": st.lists(real_entries, min_size=1, max_size=3)}),
              st.booleans()),
    st.builds(encoded, json_values, st.just(True)),
    st.binary(max_size=200),  # not UTF-8, not JSON
    st.builds(lambda raw: b'{"object":"page","entry":[{"id":"' + raw + b'"}]}', st.binary(max_size=40)),
    st.builds(nested, st.sampled_from([50, 500, 5_000, 50_000])),
    st.builds(huge, st.sampled_from([10_000, 100_000, 400_000])),
)


def exercise(post, runtime, caplog, body: bytes) -> None:  # type: ignore[no-untyped-def]
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        answer = post(body)
        assert answer.status_code in (200, 400, 413), answer.status_code
        with runtime.db.session() as session:
            pending = list(session.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.PENDING)))
        assert len(pending) <= (1 if answer.status_code == 200 else 0)  # a repeated body is deduplicated
        if pending:
            result = runtime.pipeline.ingest(pending)
            assert result.failed == [] and result.retry_later == [], result
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    with runtime.db.session() as session:
        assert set(session.scalars(select(Delivery.status))) <= {DeliveryStatus.DONE}
        unexplained = session.scalars(select(Event.id).where(Event.outcome != "applied",
                                                             (Event.reason.is_(None)) | (Event.reason == ""))).all()
        assert unexplained == []


@QUICK
@given(body=bodies)
def test_generated_bodies_through_the_signed_endpoint_and_the_pipeline(post, runtime, caplog, body: bytes) -> None:
    exercise(post, runtime, caplog, body)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@LONG
@given(body=bodies)
def test_many_generated_bodies_through_the_signed_endpoint_and_the_pipeline(post, runtime, caplog,
                                                                            body: bytes) -> None:
    exercise(post, runtime, caplog, body)
