"""Fault run of the scaled-out shape, Graph API side: writes performed whose response is lost (a reset after the
write, for public replies and private replies alike), transient 500s and page rate-limiting, mid-burst. Every
acknowledgement ends on Facebook exactly once: a lost response is found by read-back (the comment's replies,
or the Messenger echo Facebook delivers to the webhook), never posted twice."""

from __future__ import annotations

import pytest

from tests.conftest import PAGE_ID
from tests.fault_stack import comment_id, report, stack
from tests.graph_standin import GraphStandIn

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.timeout(900)]
N = 100


def test_lost_responses_rate_limits_and_500s(tmp_path):
    graph = GraphStandIn(page_id=PAGE_ID)
    graph.lose_responses(10, path_contains="/comments")  # public replies posted, the answer lost
    graph.lose_responses(10, path_contains="/messages")  # private replies sent, the answer lost
    graph.fail(15, 500, code=2)  # transient, and ambiguous for a write: read back before any retry
    graph.fail(10, 503, code=1, message="An unknown error occurred")
    graph.rate_limit(2, code=32, regain_minutes=1)
    with stack(tmp_path, graph=graph) as deployment:
        assert set(deployment.burst(range(N))) == {200}
        seconds = deployment.wait_settled(N, timeout=600)
        outcome = deployment.assert_exactly_once(N)
        lost = [c for c in graph.calls if c.status == 599]
        read_backs = [c for c in graph.calls if c.method == "GET" and c.path.endswith("/comments")]
    assert len(lost) == 20, "every scripted lost response must really have hit the sender"
    assert {c.object_id for c in lost if c.path.endswith("/comments")} <= {comment_id(i) for i in range(N)}
    # O2: a public reply whose response was lost is looked for before anything else is posted under that comment.
    for call in lost:
        if call.path.endswith("/comments"):
            later = [c for c in graph.calls if c.at > call.at and c.object_id == call.object_id]
            assert not [c for c in later if c.method == "POST"] or later[0].method == "GET"
    report("graph-lost-responses-ratelimit-500s", N, seconds, outcome, lost_responses=len(lost),
           read_backs=len(read_backs), graph_calls=len(graph.calls))
