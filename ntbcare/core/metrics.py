"""Prometheus metrics of what happens inside the processes: counters and histograms any layer increments.

Under gunicorn and RQ one service is many processes (web workers, the worker, a work-horse per job, the
sweeper); each writes its values to memory-mapped files in one directory (prometheus_client's multiprocess
mode) and ``GET /metrics`` adds them up. :func:`prepare_multiprocess_dir` chooses that directory when a
service starts, before anything forks: ``METRICS_DIR`` when set (shared by `serve` and the workers of one
machine), else a new private folder (0700) for this start. Without it (tests, one-shot commands) values
stay in the process.

Only counters and histograms live here: they add up across processes, dead ones included. What the
database knows (queue depth, tickets by status, e-mails, overdue tickets) is read at scrape time by
:mod:`ntbcare.core.metrics_db`, so it is right however many machines run workers.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, values

from ntbcare.core.security import private_dir

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
ACK_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)

_lock = threading.Lock()
_identity: str | None = None  # a work-horse writes to its worker's files (see mark_work_horse)
_multiprocess_dir: str | None = None


@dataclass(frozen=True)
class _Metrics:
    registry: CollectorRegistry
    received: Counter
    failed: Counter
    confidence: Histogram
    acknowledged: Histogram
    graph_errors: Counter


_built: _Metrics | None = None
_pid_text = str(os.getpid())


def _process_identifier() -> str:
    return _identity or _pid_text


def _after_fork_in_child() -> None:
    """A forked child (gunicorn worker, RQ work-horse) builds its own metric objects on first use, which read
    the current values from its own files; nothing of the parent's is written from here."""
    global _built, _pid_text, _identity, _lock
    _built, _pid_text, _identity, _lock = None, str(os.getpid()), None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def prepare_multiprocess_dir(metrics_dir: str = "") -> Path:
    """Make this process and every process it starts afterwards write metrics to one directory.

    ``metrics_dir`` (METRICS_DIR) is created 0700 when missing and kept; without it a private folder is
    made for this start of the service. Call it before forking workers or starting child processes.
    """
    global _multiprocess_dir, _built
    if metrics_dir:
        path = Path(metrics_dir)
        private_dir(path)
    else:
        path = Path(tempfile.mkdtemp(prefix="ntbcare-metrics-"))  # mkdtemp: mode 0700, owned by us
    os.environ[MULTIPROC_ENV] = str(path)
    with _lock:
        _multiprocess_dir = str(path)
        values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)
        _built = None
    return path


def multiprocess_dir() -> str | None:
    """The directory this process writes to: set by :func:`prepare_multiprocess_dir` here or in the parent
    this process was forked from (gunicorn's master); None when values stay in the process."""
    return _multiprocess_dir


def mark_work_horse(parent_pid: int) -> None:
    """Inside an RQ work-horse: write to files named after the worker, not one set per job.

    A worker runs one horse at a time, so its horses take turns on one set of files (each re-reads the
    current values when it starts); a file per forked job would pile up thousands of files to scrape.
    """
    global _identity, _built
    with _lock:
        _identity = f"horse{parent_pid}"
        _built = None


def _metrics() -> _Metrics:
    """This process's metric objects, built on first use (and again in a forked child)."""
    global _built
    built = _built
    if built is not None:
        return built
    with _lock:
        if _built is not None:
            return _built
        registry = CollectorRegistry(auto_describe=True)
        metrics = _Metrics(
            registry=registry,
            received=Counter("ntbcare_deliveries_received", "Webhook deliveries stored and answered 200",
                             registry=registry),
            failed=Counter("ntbcare_deliveries_failed", "Deliveries given up after their last attempt",
                           registry=registry),
            confidence=Histogram("ntbcare_routing_confidence", "Calibrated confidence of each routing verdict",
                                 buckets=CONFIDENCE_BUCKETS, registry=registry),
            acknowledged=Histogram("ntbcare_acknowledgement_seconds",
                                   "From the delivery's arrival to its acknowledgement accepted by Facebook",
                                   ["channel"], buckets=ACK_BUCKETS, registry=registry),
            graph_errors=Counter("ntbcare_graph_api_errors", "Failed Graph API calls by error code "
                                 "(\"transport\" when no answer came)", ["code"], registry=registry),
        )
        _built = metrics
        return metrics


def process_registry() -> CollectorRegistry:
    """The registry of this process's own metric objects (what /metrics shows without a multiprocess dir)."""
    return _metrics().registry


def delivery_received() -> None:
    """One webhook delivery stored (the receiver's hot path: one add to a memory-mapped file)."""
    _metrics().received.inc()


def deliveries_failed(count: int) -> None:
    if count:
        _metrics().failed.inc(count)


def routing_confidences(confidences: list[float]) -> None:
    histogram = _metrics().confidence
    for confidence in confidences:
        histogram.observe(confidence)


def acknowledged(seconds: float, channel: str) -> None:
    _metrics().acknowledged.labels(channel=channel).observe(max(0.0, seconds))


def graph_error(code: int | None) -> None:
    _metrics().graph_errors.labels(code="transport" if code is None else str(code)).inc()
