"""The routing targets as data (routing/data/agencies.yaml): a rename is an edit, not a release."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

REGISTRY_PATH = Path(__file__).parent / "data" / "agencies.yaml"
KINDS = ("opd", "partner", "regency")
_CODE = re.compile(r"^[A-Z][A-Z0-9-]*$")
_LOCATION = re.compile(r"^52\.\d{2}$")
_LIST_FIELDS = ("aliases", "old_names", "keywords", "emails", "head_emails")


@dataclass(frozen=True)
class AgencyRecord:
    """One routing target: a provincial OPD, a partner institution or a regency/city."""

    code: str
    name: str
    kind: str
    parent: str | None = None
    aliases: list[str] = field(default_factory=list)
    old_names: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    # The head of the agency, copied on escalations of overdue tickets (set by the deployer).
    head_emails: list[str] = field(default_factory=list)
    location: str | None = None
    # False: no weekly digest of open tickets for this agency (its contacts still get every forward).
    digest: bool = True

    def to_dict(self) -> dict:
        """Plain mapping in the YAML layout (location only for regencies, digest only when switched off)."""
        data = asdict(self)
        if data["location"] is None:
            del data["location"]
        if data["digest"]:
            del data["digest"]
        return data


def _validate_row(row: object, index: int, seen: set[str]) -> AgencyRecord:
    where = f"agency registry row {index + 1}"
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(row).__name__}")
    code = row.get("code")
    where = f"{where} ({code!r})"
    if not isinstance(code, str) or not _CODE.match(code):
        raise ValueError(f"{where}: code must be upper-case letters, digits and '-'")
    if code in seen:
        raise ValueError(f"{where}: duplicate code")
    unknown = set(row) - set(AgencyRecord.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    if not isinstance(row.get("name"), str) or not row["name"].strip():
        raise ValueError(f"{where}: name is missing")
    if row.get("kind") not in KINDS:
        raise ValueError(f"{where}: kind must be one of {KINDS}, got {row.get('kind')!r}")
    for list_field in _LIST_FIELDS:
        value = row.get(list_field) or []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"{where}: {list_field} must be a list of strings")
    location = row.get("location")
    if row["kind"] == "regency" and (not isinstance(location, str) or not _LOCATION.match(location)):
        raise ValueError(f"{where}: a regency needs a Kemendagri kab/kota location code like '52.01'")
    if row["kind"] != "regency" and location is not None:
        raise ValueError(f"{where}: only regencies carry a location code")
    parent = row.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise ValueError(f"{where}: parent must be a code or null")
    digest = row.get("digest", True)
    if not isinstance(digest, bool):
        raise ValueError(f"{where}: digest must be true or false")
    return AgencyRecord(
        code=code,
        name=row["name"].strip(),
        kind=row["kind"],
        parent=parent,
        location=location,
        digest=digest,
        **{list_field: list(row.get(list_field) or []) for list_field in _LIST_FIELDS},
    )


def validate(rows: object) -> list[AgencyRecord]:
    """Check parsed YAML rows; raises ValueError naming the first bad row."""
    if not isinstance(rows, list) or not rows:
        raise ValueError("agency registry: expected a non-empty list of agencies")
    seen: set[str] = set()
    records = []
    for index, row in enumerate(rows):
        record = _validate_row(row, index, seen)
        seen.add(record.code)
        records.append(record)
    for record in records:
        if record.parent is not None and record.parent not in seen:
            raise ValueError(f"agency registry ({record.code!r}): parent {record.parent!r} is not a known code")
    return records


def load_registry(path: Path | None = None) -> list[AgencyRecord]:
    """Read and validate the registry (the bundled one when path is None)."""
    if path is None:
        return list(_bundled_registry())
    return validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def _bundled_registry() -> tuple[AgencyRecord, ...]:
    return tuple(validate(yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8"))))


def dump_registry(records: list[AgencyRecord], path: Path) -> None:
    """Write records as YAML after validating them, so a bad edit never reaches disk."""
    rows = [record.to_dict() for record in records]
    validate(rows)
    Path(path).write_text(yaml.safe_dump(rows, allow_unicode=True, sort_keys=False), encoding="utf-8")


def regency_for_location(location: str, records: list[AgencyRecord] | None = None) -> str | None:
    """The regency/city code owning a Kemendagri kab/kota code."""
    for record in records if records is not None else load_registry():
        if record.kind == "regency" and record.location == location:
            return record.code
    return None
