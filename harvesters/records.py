"""What the harvesters remember between runs and report about each job: the
record table (identity -> package, content hash, state, where this run first
met it), job reports with their counts, and every rejection and warning of a
job as the ``Message`` it was raised as (code, field, raw value, Chinese and
English). Tables are created by the extension's Alembic migration."""
from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, Iterable, Iterator

import sqlalchemy as sa

import ckan.model as model
from ckanext.shanghai.messages import Message

metadata = sa.MetaData()

harvest_record = sa.Table(
    "shanghai_harvest_record", metadata,
    sa.Column("source_id", sa.UnicodeText, primary_key=True),
    sa.Column("identity", sa.UnicodeText, primary_key=True),
    sa.Column("package_id", sa.UnicodeText),
    sa.Column("content_hash", sa.UnicodeText),
    sa.Column("state", sa.UnicodeText, nullable=False),
    sa.Column("last_seen_job_id", sa.UnicodeText),
    # Where the job in last_seen_job_id first met this identity, and the
    # content it had there: a later record with the same identity in that
    # job is a repeat of it (see mapping.first_of_each).
    sa.Column("seen_position", sa.Integer),
    sa.Column("seen_hash", sa.UnicodeText),
    sa.Column("withdrawn_reason", sa.UnicodeText),
    sa.Column("modified", sa.DateTime, nullable=False),
)

harvest_report = sa.Table(
    "shanghai_harvest_report", metadata,
    sa.Column("job_id", sa.UnicodeText, primary_key=True),
    sa.Column("source_id", sa.UnicodeText, nullable=False),
    sa.Column("outcome", sa.UnicodeText, nullable=False),
    sa.Column("records_read", sa.Integer, nullable=False),
    sa.Column("added", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("unchanged", sa.Integer, nullable=False),
    sa.Column("withdrawn", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("warnings", sa.Integer, nullable=False),
    sa.Column("message_code", sa.UnicodeText),
    sa.Column("message_zh", sa.UnicodeText),
    sa.Column("message_en", sa.UnicodeText),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime),
)

harvest_rejection = sa.Table(
    "shanghai_harvest_rejection", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.UnicodeText, nullable=False),
    sa.Column("identity", sa.UnicodeText),
    sa.Column("position", sa.Integer),
    sa.Column("kind", sa.UnicodeText, nullable=False),
    sa.Column("code", sa.UnicodeText, nullable=False),
    sa.Column("field", sa.UnicodeText),
    sa.Column("value", sa.UnicodeText),
    sa.Column("reason_zh", sa.UnicodeText, nullable=False),
    sa.Column("reason_en", sa.UnicodeText, nullable=False),
)

COUNTERS = ("added", "updated", "unchanged", "withdrawn", "rejected", "warnings")
# What a row of shanghai_harvest_rejection is: a record not taken, or a
# record taken with a warning (a dropped tag, say).
REJECTION, WARNING = "rejection", "warning"
# The columns of a job's rejections and warnings, as the API and the CSV give them.
MESSAGE_COLUMNS = ("identity", "position", "kind", "code", "field", "value", "reason_zh", "reason_en")


def _now() -> dt.datetime:
    return dt.datetime.utcnow()


def _execute(statement, parameters=None):
    return model.Session.execute(statement, parameters)


# -- reports -------------------------------------------------------------


def start_report(job_id: str, source_id: str) -> None:
    """Open (or reset, when a job is gathered again) the report of a job."""
    _execute(sa.delete(harvest_rejection).where(harvest_rejection.c.job_id == job_id))
    _execute(sa.delete(harvest_report).where(harvest_report.c.job_id == job_id))
    _execute(sa.insert(harvest_report).values(
        job_id=job_id, source_id=source_id, outcome="running", records_read=0,
        added=0, updated=0, unchanged=0, withdrawn=0, rejected=0, warnings=0, started=_now(),
    ))


def count(job_id: str, **increments: int) -> None:
    """Add to a job's counters in one UPDATE (safe with several consumers)."""
    values = {name: getattr(harvest_report.c, name) + amount for name, amount in increments.items() if amount}
    if values:
        _execute(sa.update(harvest_report).where(harvest_report.c.job_id == job_id).values(**values))


def reject(job_id: str, identity: str | None, message: Message, position: int | None = None) -> None:
    """Record why a record was not taken, and count it."""
    reject_many(job_id, [(identity, position, message)])


def reject_many(job_id: str, rejections: Iterable[tuple[str | None, int | None, Message]]) -> None:
    """Record many rejections ((identity, position, message) each) in one
    INSERT, and count them."""
    count(job_id, rejected=_insert_messages(job_id, REJECTION, rejections))


def warn_many(job_id: str, warnings: Iterable[tuple[str | None, int | None, Message]]) -> None:
    """Record the warnings of records that were taken ((identity, position,
    message) each) in one INSERT, and count them."""
    count(job_id, warnings=_insert_messages(job_id, WARNING, warnings))


def _insert_messages(job_id: str, kind: str, items: Iterable[tuple[str | None, int | None, Message]]) -> int:
    rows = [{"job_id": job_id, "identity": identity, "position": position, "kind": kind, **message.as_dict()}
            for identity, position, message in items]
    if rows:
        _execute(sa.insert(harvest_rejection), rows)
    return len(rows)


def finish_report(job_id: str, outcome: str, message: Message | None = None) -> None:
    """Close a job's report; ``message`` says why when it failed closed."""
    _execute(sa.update(harvest_report).where(harvest_report.c.job_id == job_id).values(
        outcome=outcome, message_code=message and message.code, message_zh=message and message.zh,
        message_en=message and message.en, finished=_now(),
    ))


def report_for_job(job_id: str) -> dict[str, Any] | None:
    row = _execute(sa.select(harvest_report).where(harvest_report.c.job_id == job_id)).mappings().first()
    if row is None:
        return None
    report = dict(row)
    for key in ("started", "finished"):
        report[key] = report[key].isoformat() if report[key] else None
    flags = flags_for_job(job_id)
    report["flagged"], report["flags"] = flags["flagged"], flags["by_code"]
    return report


# The stock job stats (ckanext-harvest's harvest_job_dictize) -> the report counter each is.
STOCK_STATS = {"added": "added", "updated": "updated", "not modified": "unchanged", "errored": "rejected",
               "deleted": "withdrawn"}


def stock_stats(report: dict[str, Any]) -> dict[str, int]:
    """A job's report counts under the names of ckanext-harvest's job stats."""
    return {stock: report[name] for stock, name in STOCK_STATS.items()}


def flags_for_job(job_id: str) -> dict[str, Any]:
    """The quality flags a job met on records it took: how many records
    carried any (``flagged``) and how many flags of each kind (``by_code``)."""
    warning = sa.and_(harvest_rejection.c.job_id == job_id, harvest_rejection.c.kind == WARNING)
    flagged = _execute(sa.select(sa.func.count(sa.distinct(
        sa.func.coalesce(harvest_rejection.c.identity, sa.cast(harvest_rejection.c.position, sa.UnicodeText))
    ))).where(warning)).scalar() or 0
    by_code = {code: number for code, number in _execute(
        sa.select(harvest_rejection.c.code, sa.func.count()).where(warning)
        .group_by(harvest_rejection.c.code).order_by(sa.func.count().desc(), harvest_rejection.c.code))}
    return {"flagged": flagged, "by_code": by_code}


def rejections_for_job(job_id: str, limit: int | None = None, offset: int = 0,
                       kind: str | None = REJECTION) -> list[dict[str, Any]]:
    """A job's rejections (or warnings, or with ``kind=None`` both) in the
    order they were met, as dicts of ``MESSAGE_COLUMNS``."""
    query = (sa.select(*(harvest_rejection.c[name] for name in MESSAGE_COLUMNS))
             .where(harvest_rejection.c.job_id == job_id)
             .order_by(harvest_rejection.c.id).offset(offset))
    if kind is not None:
        query = query.where(harvest_rejection.c.kind == kind)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row) for row in _execute(query).mappings()]


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> str:
    """A CSV cell a spreadsheet will show as text, never run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


CSV_HEADER = ["标识 identity", "位置 position", "类别 kind", "代码 code", "字段 field", "原值 value",
              "原因 reason (zh)", "reason (en)"]


def rejections_csv(job_id: str) -> Iterator[str]:
    """The rejections and warnings of a job as CSV (UTF-8 with BOM, for
    Excel), in the order they were met, streamed in chunks; every cell that
    a spreadsheet would run as a formula is made text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(CSV_HEADER)
    offset = 0
    while True:
        rows = rejections_for_job(job_id, limit=1000, offset=offset, kind=None)
        for row in rows:
            writer.writerow([_inert(row[name]) for name in MESSAGE_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < 1000:
            return
        offset += len(rows)


# -- records ---------------------------------------------------------------


def known_records(source_id: str, identities: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of these identities of a source."""
    identities = list(identities)
    if not identities:
        return {}
    rows = _execute(sa.select(harvest_record).where(
        harvest_record.c.source_id == source_id, harvest_record.c.identity.in_(identities),
    )).mappings()
    return {row["identity"]: dict(row) for row in rows}


def mark_seen(source_id: str, job_id: str, seen: Iterable[tuple[str, int | None, str]]) -> None:
    """Note that this job's source still delivers these identities, each
    with the position and content hash it was first met with in the job
    ((identity, position, content hash) each); rows for new identities are
    created as 'pending' until imported."""
    rows = [{"source_id": source_id, "identity": identity, "state": "pending", "last_seen_job_id": job_id,
             "seen_position": position, "seen_hash": content_hash, "modified": _now()}
            for identity, position, content_hash in seen]
    if not rows:
        return
    # Parameters passed as a list, not in .values(): one statement compiled
    # once and cached, sent in pages, instead of a new 500-row statement to
    # compile for every batch.
    statement = sa.dialects.postgresql.insert(harvest_record)
    _execute(statement.on_conflict_do_update(
        index_elements=["source_id", "identity"],
        set_={name: statement.excluded[name] for name in ("last_seen_job_id", "seen_position", "seen_hash")},
    ), rows)


def active_count(source_id: str) -> int:
    return _execute(sa.select(sa.func.count()).select_from(harvest_record).where(
        harvest_record.c.source_id == source_id, harvest_record.c.state == "active",
    )).scalar()


def _unseen_active(source_id: str, job_id: str):
    return sa.and_(
        harvest_record.c.source_id == source_id,
        harvest_record.c.state == "active",
        sa.or_(harvest_record.c.last_seen_job_id.is_(None), harvest_record.c.last_seen_job_id != job_id),
    )


def unseen_active_count(source_id: str, job_id: str) -> int:
    """How many active records the source no longer delivers in this job."""
    return _execute(sa.select(sa.func.count()).select_from(harvest_record).where(
        _unseen_active(source_id, job_id))).scalar()


def unseen_active_pages(source_id: str, job_id: str) -> Iterator[list[dict[str, Any]]]:
    """The active records the source no longer delivers in this job, a page
    at a time (in identity order)."""
    return pages(sa.select(harvest_record).where(_unseen_active(source_id, job_id)), harvest_record.c.identity)


def pages(select, key, size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``select`` in order of ``key`` (a unique text column), as
    lists of at most ``size`` row dicts, each page read after the previous
    one is used: rows that change behind the last key read do not shift the
    pages, and only one page is in memory at a time."""
    last = ""
    while True:
        rows = [dict(row) for row in _execute(select.where(key > last).order_by(key).limit(size)).mappings()]
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1][key.name]


def claimed_by_other_source(source_id: str, package_id: str) -> str | None:
    """The source that already owns a package, if it is not this one."""
    return _execute(sa.select(harvest_record.c.source_id).where(
        harvest_record.c.package_id == package_id,
        harvest_record.c.source_id != source_id,
        harvest_record.c.state == "active",
    ).limit(1)).scalar()


def save_imported(source_id: str, identity: str, package_id: str, content_hash: str) -> None:
    save_imported_many(source_id, [(identity, package_id, content_hash)])


def save_imported_many(source_id: str, imported: list[tuple[str, str, str]]) -> None:
    """``save_imported`` for many (identity, package id, content hash) in one
    UPDATE statement (the rows joined from three arrays)."""
    if not imported:
        return
    identities, package_ids, hashes = (list(column) for column in zip(*imported))
    _execute(sa.text(
        f"UPDATE {harvest_record.name} SET package_id = v.package_id, content_hash = v.content_hash,"
        " state = 'active', withdrawn_reason = NULL, modified = :now"
        " FROM unnest(CAST(:identities AS text[]), CAST(:package_ids AS text[]), CAST(:hashes AS text[]))"
        " AS v(identity, package_id, content_hash)"
        f" WHERE {harvest_record.name}.source_id = :source AND {harvest_record.name}.identity = v.identity"
    ), {"now": _now(), "identities": identities, "package_ids": package_ids, "hashes": hashes,
        "source": source_id})


def save_withdrawn(source_id: str, identity: str, reason: str) -> None:
    _execute(sa.update(harvest_record).where(
        harvest_record.c.source_id == source_id, harvest_record.c.identity == identity,
    ).values(state="withdrawn", withdrawn_reason=reason, modified=_now()))
