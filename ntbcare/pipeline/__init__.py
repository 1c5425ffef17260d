"""Where the pipeline is joined: the one place that calls ingest, routing and the bot in turn.

Domains never import one another; :mod:`ntbcare.pipeline.join` runs ingest → route → forward →
acknowledge and answer → reply, :mod:`ntbcare.pipeline.decisions` carries people's decisions (operators,
agencies) through the same joins, and :mod:`ntbcare.pipeline.runtime` wires one process (dispatcher,
delivery writer, sweeper). The web views, the CLI and the worker call these, never two domains themselves.
"""
