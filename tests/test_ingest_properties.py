"""Whatever JSON arrives, parsing never raises, never drops an item and always yields a usable dedup key."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.envelope import parse_delivery
from ingest.events import ALL_KINDS, NormalizedEvent, UnsupportedItem
from ingest.feed import FEED_PARSERS

PAGE = "104000000000001"
SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Wire JSON may carry lone surrogates ("\ud83d" without its pair), so text includes them.
wire_text = st.text(st.characters(exclude_categories=[]), max_size=12)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | wire_text
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)


def mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The documented shape three times out of four, any JSON value otherwise."""
    return st.integers(0, 3).flatmap(lambda pick: json_values if pick == 3 else strategy)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object where every field may be missing."""
    return st.fixed_dictionaries({}, optional=fields)


ids = mostly(st.sampled_from([PAGE, "6543210987654321", "555_888", "m_Q1w2", ""]) | st.integers(min_value=0))
odd_timestamps = (
    st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats()
    | st.from_regex(r"[0-9]{1,22}(\.[0-9]{1,8})?", fullmatch=True)
)
timestamps = mostly(st.integers(min_value=1_500_000_000, max_value=1_900_000_000_000) | odd_timestamps)
texts = mostly(st.text(max_size=30))
party = mostly(st.fixed_dictionaries({"id": ids}, optional={"name": texts}))

FEED_FIELDS = {
    "parent_id": ids,
    "message": texts,
    "photo": texts,
    "video": texts,
    "link": texts,
    "photos": mostly(st.lists(texts, max_size=3)),
    "post": mostly(optional(permalink_url=texts)),
    "from": party,
}
# A documented shape with its key fields present (each possibly odd), or any subset of the fields.
feed_values = st.one_of(
    st.fixed_dictionaries(
        {
            "item": st.sampled_from(["comment", "status", "photo", "video", "post", "reaction", "share", "x y"]),
            "verb": st.sampled_from(["add", "edit", "edited", "remove", "hide", "unhide", "block"]),
            "comment_id": ids,
            "post_id": ids,
            "created_time": timestamps,
        },
        optional=FEED_FIELDS,
    ),
    optional(item=texts, verb=texts, comment_id=ids, post_id=ids, created_time=timestamps, **FEED_FIELDS),
)
attachments = mostly(st.lists(mostly(optional(type=texts, payload=mostly(optional(url=texts)))), max_size=3))
messages = st.fixed_dictionaries(
    {"mid": ids},
    optional={
        "text": texts,
        "is_echo": mostly(st.booleans()),
        "metadata": texts,
        "attachments": attachments,
        "quick_reply": mostly(optional(payload=texts)),
    },
)
event_bodies = st.one_of(
    st.fixed_dictionaries({"message": mostly(messages)}),
    st.fixed_dictionaries({"postback": mostly(optional(mid=ids, title=texts, payload=texts))}),
    st.fixed_dictionaries({"read": mostly(st.fixed_dictionaries({"watermark": timestamps}))}),
    st.fixed_dictionaries({"delivery": mostly(optional(watermark=timestamps, mids=json_values))}),
    st.fixed_dictionaries({"reaction": mostly(optional(mid=ids, action=texts, reaction=texts, emoji=texts))}),
    st.dictionaries(st.text(max_size=30), json_values, max_size=2),
)
messaging_events = st.builds(
    lambda common, body: {**common, **body},
    st.fixed_dictionaries({"sender": party}, optional={"recipient": party, "timestamp": timestamps}),
    event_bodies,
)
changes = st.fixed_dictionaries(
    {"field": mostly(st.sampled_from(["feed", "feed", "ratings"])), "value": mostly(feed_values)}
) | optional(field=texts, value=feed_values)
entries = optional(
    id=ids,
    time=timestamps,
    changes=mostly(st.lists(mostly(changes), max_size=3)),
    messaging=mostly(st.lists(mostly(messaging_events), max_size=3)),
    standby=mostly(st.lists(messaging_events, max_size=2)),
)
envelopes = optional(object=mostly(st.just("page")), entry=mostly(st.lists(mostly(entries), max_size=3)))
well_formed_entries = st.fixed_dictionaries(
    {"id": st.just(PAGE), "time": timestamps},
    optional={
        "changes": st.lists(mostly(changes), max_size=3),
        "messaging": st.lists(mostly(messaging_events), max_size=3),
        "standby": st.lists(messaging_events, max_size=2),
    },
).filter(lambda entry: len(entry) > 2)

# Documented shapes with arbitrary content: these must always become events, never be rejected.
real_ids = st.from_regex(r"[1-9][0-9]{0,17}(_[1-9][0-9]{0,17})?", fullmatch=True) | st.integers(1, 10**20)
real_times = st.integers(1_500_000_000, 1_900_000_000) | st.integers(1_500_000_000_000, 1_900_000_000_000)
citizen_text = st.text(st.characters(exclude_categories=[]), min_size=1, max_size=60)


def feed_change(pair: tuple[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    item, verb = pair
    value = st.fixed_dictionaries(
        {
            "item": st.just(item),
            "verb": st.sampled_from(["edit", "edited"] if verb == "edited" else [verb]),
            "comment_id": real_ids,
            "post_id": real_ids,
            "created_time": real_times | real_times.map(str),
        },
        optional={
            "message": citizen_text,
            "parent_id": real_ids,
            "from": st.fixed_dictionaries({"id": real_ids}),
            "photo": citizen_text,
            "link": citizen_text,
            "photos": st.lists(citizen_text, max_size=3),
        },
    )
    return st.fixed_dictionaries({"field": st.just("feed"), "value": value})


sender = st.fixed_dictionaries({"id": real_ids})
message_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "message": st.fixed_dictionaries(
                {"mid": real_ids, "text": citizen_text}, optional={"is_echo": st.booleans(), "metadata": citizen_text}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "message": st.fixed_dictionaries(
                {
                    "mid": real_ids,
                    "attachments": st.lists(
                        st.fixed_dictionaries({"type": citizen_text}, optional={"payload": st.fixed_dictionaries({})}),
                        min_size=1,
                        max_size=3,
                    ),
                }
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "postback": st.fixed_dictionaries(
                {}, optional={"mid": real_ids, "title": citizen_text, "payload": citizen_text}
            )
        }
    ),
    st.fixed_dictionaries({"read": st.fixed_dictionaries({"watermark": real_times})}),
    st.fixed_dictionaries({"delivery": st.fixed_dictionaries({"watermark": real_times})}),
    st.fixed_dictionaries(
        {
            "reaction": st.fixed_dictionaries(
                {"mid": real_ids}, optional={"action": citizen_text, "reaction": citizen_text}
            )
        }
    ),
)
real_messaging = st.builds(
    lambda common, body: {**common, **body},
    st.fixed_dictionaries({"sender": sender, "recipient": sender, "timestamp": real_times}),
    message_bodies,
)
real_entries = st.fixed_dictionaries(
    {"id": st.just(PAGE), "time": real_times},
    optional={
        "changes": st.lists(st.sampled_from(tuple(FEED_PARSERS)).flatmap(feed_change), min_size=1, max_size=3),
        "messaging": st.lists(real_messaging, min_size=1, max_size=3),
    },
).filter(lambda entry: len(entry) > 2)


def assert_usable(items: Any) -> None:
    assert isinstance(items, list)
    for item in items:
        assert isinstance(item, NormalizedEvent | UnsupportedItem)
        assert isinstance(item.dedup_key, str) and item.dedup_key
        if isinstance(item, NormalizedEvent):
            assert item.kind in ALL_KINDS
            assert isinstance(item.external_id, str) and item.external_id
            assert item.occurred_at.utcoffset() is not None
        else:
            assert item.dedup_key.startswith("unsupported:") and len(item.dedup_key) == 76
            assert len(item.shape) <= 64 and item.reason


@SETTINGS
@given(json_values)
def test_any_json_value_is_parsed_without_raising(payload: Any) -> None:
    assert_usable(parse_delivery(payload))


@SETTINGS
@given(envelopes)
def test_envelope_shaped_payloads_are_parsed_without_raising(payload: dict[str, Any]) -> None:
    assert_usable(parse_delivery(payload))


@SETTINGS
@given(st.lists(well_formed_entries, min_size=1, max_size=3))
def test_every_change_and_event_yields_exactly_one_item(entry_list: list[dict[str, Any]]) -> None:
    items = parse_delivery({"object": "page", "entry": entry_list})
    expected = sum(len(entry.get(name, [])) for entry in entry_list for name in ("changes", "messaging", "standby"))
    assert len(items) == expected
    assert_usable(items)


@SETTINGS
@given(st.lists(real_entries, min_size=1, max_size=3))
def test_documented_shapes_with_any_content_always_become_events(entry_list: list[dict[str, Any]]) -> None:
    items = parse_delivery({"object": "page", "entry": entry_list})
    assert_usable(items)
    assert all(isinstance(item, NormalizedEvent) for item in items), [
        item.reason for item in items if isinstance(item, UnsupportedItem)
    ]
    keys = [item.dedup_key for item in items]
    assert keys == [item.dedup_key for item in parse_delivery({"object": "page", "entry": entry_list})]


@SETTINGS
@given(envelopes)
def test_a_redelivered_body_gives_the_same_dedup_keys(payload: dict[str, Any]) -> None:
    redelivered = json.loads(json.dumps(payload))
    assert [item.dedup_key for item in parse_delivery(redelivered)] == [
        item.dedup_key for item in parse_delivery(payload)
    ]
