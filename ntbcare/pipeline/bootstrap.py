"""`ntbcare init`: migrate and load reference data. Idempotent: run it on every deploy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import Agency
from ntbcare.core.settings import Settings
from ntbcare.pipeline.classifier import load_classifier
from routing.registry import load_registry


def seed_agencies(session: Session, records: Sequence[Any], *, contacts_from_records: bool = False) -> tuple[int, int]:
    """Insert new registry entries and refresh names and data of known ones.

    Contacts (``emails``, ``head_emails``) and a switched-off weekly digest are the deployer's: ``ntbcare init``
    keeps what is set, and only an explicit ``agencies import`` (``contacts_from_records``) replaces them.
    """
    existing = {a.code: a for a in session.scalars(select(Agency))}
    added = updated = 0
    for record in records:
        data = record.to_dict() if hasattr(record, "to_dict") else dict(record)
        agency = existing.get(data["code"])
        if agency is None:
            session.add(Agency(code=data["code"], name=data["name"], kind=data.get("kind", "opd"),
                               parent_code=data.get("parent"), emails=list(data.get("emails") or []), data=data))
            added += 1
            continue
        if not contacts_from_records:
            data["head_emails"] = list(data.get("head_emails") or (agency.data or {}).get("head_emails") or [])
            data["emails"] = list(agency.emails or data.get("emails") or [])
            if (agency.data or {}).get("digest") is False:  # the deployer switched the digest off
                data["digest"] = False
        agency.name = data["name"]
        agency.kind = data.get("kind", agency.kind)
        agency.parent_code = data.get("parent")
        agency.emails = list(data.get("emails") or [])
        agency.data = data
        updated += 1
    return added, updated


def initialise(settings: Settings) -> str:
    db = Database(settings.database_url)
    try:
        upgrade(db.engine)
        with db.scope() as session:
            added, updated = seed_agencies(session, load_registry())
        load_classifier(settings.routing_model_path, settings.secret_key)  # trains from the seed when no model is saved
        return f"{added} agencies added, {updated} refreshed; routing model at {settings.routing_model_path}"
    finally:
        db.dispose()
