"""Free-text ticket search: what "q" means, and the trigram index (revision 0012) that answers it quickly.

``q`` matches a ticket when it occurs in the ticket's number, its text or its citizen's name: a substring, so
Indonesian words are found with their affixes ("jalan" in "perjalanan", "jalannya"), any case, ``%`` and
``_`` taken literally. That meaning is one SQL condition (:func:`matches`); the index only narrows which rows
it is tried on, so every way of answering gives the same tickets.

The index: SQLite's FTS5 table ``ticket_search`` (trigram tokenizer) kept in step by triggers, PostgreSQL's
pg_trgm GIN indexes. Neither helps below three characters. A term found in few tickets is answered from the
index (each candidate checked against :func:`matches`); a term found in many is answered by reading tickets
newest first, which finds a page within a few thousand rows, while fetching and sorting every candidate
would not. One bounded count through the index tells which case it is.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Integer, Select, and_, column, exists, func, or_, select, text, union_all
from sqlalchemy.orm import Session

from ntbcare.core.models import Citizen, Ticket

SQLITE_TABLE = "ticket_search"
# The FTS5 table and the shadow tables SQLite keeps for it: outside the models, so outside Alembic's compare.
SQLITE_TABLES = frozenset({SQLITE_TABLE, *(f"{SQLITE_TABLE}_{part}" for part in
                                           ("data", "idx", "content", "docsize", "config"))})
SQLITE_TRIGGERS = frozenset({"ticket_search_insert", "ticket_search_update", "ticket_search_delete",
                             "ticket_search_citizen_name", "ticket_search_citizen_delete"})
POSTGRES_INDEXES = frozenset({"ix_tickets_text_trgm", "ix_tickets_number_trgm", "ix_citizens_display_name_trgm"})
MIN_INDEXED_CHARS = 3  # trigrams: a shorter term cannot be looked up
FEW = 1000  # up to this many candidates are fetched through the index; more are found by reading newest first


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: the search index is built by revision 0012 and never declared by a model
    (a virtual table; indexes with an operator class), so comparing the schema with the models skips it."""
    if type_ == "table":
        return name not in SQLITE_TABLES
    if type_ == "index":
        return name not in POSTGRES_INDEXES
    return True


def _pattern(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def matches(term: str, *, sqlite: bool) -> ColumnElement[bool]:
    """``term`` in the number, the text or the citizen's name. SQLite's LIKE ignores ASCII case (several times
    faster than ``lower() LIKE``); PostgreSQL's ILIKE ignores case. The name is looked up per ticket on SQLite
    (a primary-key read), and through the citizens' trigram index on PostgreSQL."""
    pattern = _pattern(term)
    if sqlite:
        return or_(Ticket.number.like(pattern, escape="\\"), Ticket.text.like(pattern, escape="\\"),
                   exists().where(Citizen.id == Ticket.citizen_id, Citizen.display_name.like(pattern, escape="\\")))
    return or_(Ticket.number.ilike(pattern, escape="\\"), Ticket.text.ilike(pattern, escape="\\"),
               Ticket.citizen_id.in_(select(Citizen.id).where(Citizen.display_name.ilike(pattern, escape="\\"))))


def _candidates(term: str, *, sqlite: bool) -> Select[tuple[int]]:
    """Ids of tickets the index says may match (SQLite's trigram match folds case beyond ASCII, so a few more
    than :func:`matches` keeps; PostgreSQL's are exact), one per branch and possibly repeated."""
    if sqlite:
        phrase = '"' + term.replace('"', '""') + '"'  # one FTS5 string: every character is literal
        found = text(f"SELECT rowid AS id FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH :phrase").bindparams(
            phrase=phrase).columns(column("id", Integer)).subquery("found")
        return select(found.c.id)
    pattern = _pattern(term)
    branches = union_all(
        select(Ticket.id).where(Ticket.text.ilike(pattern, escape="\\")),
        select(Ticket.id).where(Ticket.number.ilike(pattern, escape="\\")),
        select(Ticket.id).join(Citizen, Citizen.id == Ticket.citizen_id)
        .where(Citizen.display_name.ilike(pattern, escape="\\")),
    ).subquery("found")
    return select(branches.c.id)


def text_condition(session: Session, term: str) -> ColumnElement[bool]:
    """The condition a search for ``term`` adds, with the index used where it pays (see the module doc)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    exact = matches(term, sqlite=sqlite)
    if len(term) < MIN_INDEXED_CHARS or "\x00" in term:
        return exact
    candidates = _candidates(term, sqlite=sqlite)
    counted = session.scalar(select(func.count()).select_from(candidates.limit(FEW + 1).subquery())) or 0
    if counted > FEW:
        return exact
    return and_(Ticket.id.in_(candidates), exact)
