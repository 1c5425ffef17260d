"""Baseline of the drain benchmark: one no-op RQ job per delivery, run by the same kind of RQ worker
(RQ's forking Worker, as `ntbcare worker`)."""

from __future__ import annotations

import sys


def noop(delivery_id: int) -> None:
    return None


def main() -> None:
    from redis import Redis
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    redis = Redis.from_url(sys.argv[1])
    queue = Queue("bench-noop", connection=redis, serializer=JSONSerializer)
    Worker([queue], connection=redis, serializer=JSONSerializer).work(burst=True, logging_level="WARNING")


if __name__ == "__main__":
    main()
