"""Ingest records: stored webhook deliveries become normalized events, and events become tickets.

``envelope``, ``feed``, ``messenger`` and ``errors`` are the pure parsers (no I/O, no clock) that turn a
body into :mod:`ingest.events`; ``apply``, ``batch_state``, ``ticket_rules`` and ``status_requests`` apply
those events to tickets; ``processing`` does it exactly once per stored delivery, a transaction per chunk.
"""
