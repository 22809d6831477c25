"""The stage runner shared by the portal's harvesters: reconcile a stream of
mapped records against what the source delivered before (added, updated,
unchanged, withdrawn, rejected), fail closed when a source looks broken, and
import one harvest object through the catalog writer."""
from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import uuid
from typing import Any, Iterable, Iterator

import redis
import sqlalchemy as sa
import sqlalchemy.exc

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib.search.common import SearchIndexError
from ckanext.harvest import queue as harvest_queue
from ckanext.harvest.model import HarvestGatherError, HarvestObject, HarvestObjectExtra

from ckanext.shanghai.harvesters import mapping, records, source_config
from ckanext.shanghai import quality
from ckanext.shanghai.files import fetching
from ckanext.shanghai.files import readers
from ckanext.shanghai.harvesters.mapping import MappedRecord, RecordRejected
from ckanext.shanghai.harvesters.writer import CatalogWriter
from ckanext.shanghai.messages import Message, MessageError, MessageText

log = logging.getLogger(__name__)

BATCH_SIZE = 500

# What a source yields once mapped: a record with its position, or why not.
Item = tuple[int, "MappedRecord | RecordRejected"]

# A backing service down or restarting: the work is retried, never charged
# to the record.
SERVICE_ERRORS = (SearchIndexError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                  redis.exceptions.ConnectionError)




def find_department(name: str):
    """The organization of a department's Chinese name, or None. An
    organization an operator registered under another name, but with this
    title, is the same department."""
    return model.Group.get(mapping.department_slug(name)) or model.Session.query(model.Group).filter(
        model.Group.title == name, model.Group.is_organization.is_(True),
        model.Group.state == "active").order_by(model.Group.created).first()


class DepartmentDirectory:
    """Finds or creates the organization of each department a job meets;
    one per job, so nothing lives on the plugin between runs."""

    def __init__(self, user_name: str):
        self.user_name = user_name
        self.ids: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name in self.ids:
            return self.ids[name]
        slug = mapping.department_slug(name)
        group = find_department(name)
        if group is None:
            self.ids[name] = tk.get_action("organization_create")(
                {"user": self.user_name, "ignore_auth": True},
                {"name": slug, "title": name, "department_type": mapping.department_type_of(name)},
            )["id"]
        else:
            self.ids[name] = group.id
        return self.ids[name]


def _places_by_mapping(source_id: str) -> bool:
    """Whether a source's records go to the departments its mapping names
    (a sysadmin registered it) rather than all to the source's own."""
    source_dataset = model.Package.get(source_id)
    creator = model.User.get(source_dataset.creator_user_id) if source_dataset.creator_user_id else None
    return creator is None or creator.sysadmin


def departments_for(harvest_job, site_user: str):
    """Where a job's records go. A source a sysadmin registered (the city's
    data centre, say) places each record in the department its mapping
    names; a source a department's editor or admin registered places every
    record in that department, so no department can publish in another's
    name."""
    if _places_by_mapping(harvest_job.source.id):
        return DepartmentDirectory(site_user)
    owner = model.Package.get(harvest_job.source.id).owner_org
    return lambda name: owner


def fail_job(harvest_job, message: Message) -> list:
    """Close a job whose source could not be read at all: its report says
    why (``message``), and nothing is imported or withdrawn."""
    records.start_report(harvest_job.id, harvest_job.source.id)
    records.finish_report(harvest_job.id, "failed_closed", message)
    # ckanext-harvest's job page shows its gather errors as one text.
    HarvestGatherError(message=str(message), job=harvest_job).save()
    model.Session.commit()
    return []


UNEXPECTED = Message("unexpected-error", "读取数据源时出现意外错误，本次不删除、不导入任何数据",
                     "An unexpected error occurred while reading the source; nothing is withdrawn or imported")


IMPORT_FAILED = Message("import-failed", "写入目录时出现意外错误，该记录未导入",
                        "An unexpected error occurred while writing the record; it was not imported")


class MappedSourceHarvester:
    """The stages every portal harvester shares; a harvester module
    subclasses it (with plugins.SingletonPlugin and IHarvester) and says only
    how to read its source's records (``open_records``) and, if it has any,
    which configuration keys of its own it takes (``kind_keys``)."""

    kind_keys: frozenset[str] = frozenset()
    default_mapping: str | None = None

    def parse_config(self, config_text: str | None) -> dict[str, Any]:
        """The source configuration with its mapping loaded (ValueError if bad)."""
        return source_config.parse(config_text, kind_keys=set(self.kind_keys),
                                   default_mapping=self.default_mapping)

    def open_records(self, harvest_job, config: dict[str, Any], limits: fetching.FetchLimits):
        """A context manager yielding the source's records (dicts, or
        readers.BadRecord for a record that cannot be read)."""
        raise NotImplementedError

    # IHarvester

    def validate_config(self, config):
        self.parse_config(config)
        return config

    def gather_stage(self, harvest_job) -> list[str]:
        """:param harvest_job: the job
        :returns: the ids of the harvest objects to fetch and import, as the
            list IHarvester asks for (ckanext-harvest's gather consumer
            refuses anything else). The portal's own gather consumer calls
            ``gather_job`` instead, which does not hold them all at once."""
        return list(self.gather_objects(harvest_job))

    def gather_objects(self, harvest_job) -> "JobObjectIds | list":
        """The gather stage, its object ids read from the database as they
        are iterated (``JobObjectIds``; an empty list when the job failed
        or failed closed)."""
        try:
            config = self.parse_config(harvest_job.source.config)
        except MessageError as error:  # SourceConfigError, MappingConfigError
            return fail_job(harvest_job, error.message)
        site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
        try:
            with self.open_records(harvest_job, config, fetching.configured_limits()) as records_iter:
                return gather(
                    harvest_job, mapping.map_records(config["mapping"], records_iter),
                    complete=config["complete"], max_withdraw_share=config["max_withdraw_share"],
                    ensure_department=departments_for(harvest_job, site_user),
                )
        except (fetching.SourceFetchError, readers.SourceFormatError) as error:
            model.Session.rollback()
            return fail_job(harvest_job, error.message)
        except SERVICE_ERRORS:
            raise  # the consumer retries the gather once the service is back
        except Exception:
            # Anything else a reader or library raises must still close the
            # job with a reason, not leave its report "running".
            log.exception("gather of job %s failed", harvest_job.id)
            model.Session.rollback()
            return fail_job(harvest_job, UNEXPECTED)

    def fetch_stage(self, harvest_object):
        # The gather stage read each record whole; the object already holds it.
        return True

    def import_stage(self, harvest_object):
        site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
        return import_object(harvest_object, CatalogWriter(site_user))

    def import_batch(self, harvest_objects: list) -> None:
        """Fetch and import many objects at once (the fetch consumer's path)."""
        site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
        import_objects(harvest_objects, CatalogWriter(site_user))


def preview_source(harvester: MappedSourceHarvester, source) -> "mapping.MappingCheck":
    """A dry run of a source as its next harvest would read it (its
    configuration, its reader, its mapping, the gather's repeat check),
    writing nothing: what the source page shows its editors before a run.

    :param source: the ``HarvestSource``
    :raises MessageError: when the configuration or the source cannot be read
    """
    config = harvester.parse_config(source.config)
    by_mapping = _places_by_mapping(source.id)
    with harvester.open_records(_PreviewJob(source), config, fetching.configured_limits()) as items:
        # A department's own source files every record under that department.
        return mapping.check_export(config["mapping"], items, department_exists=(
            (lambda name: find_department(name) is not None) if by_mapping else (lambda name: True)))


class _PreviewJob:
    """What ``open_records`` reads of a job: its source."""

    def __init__(self, source):
        self.source = source


def gather_job(harvester, job) -> "Iterable[str]":
    """Run ``job``'s gather stage as ckanext-harvest's ``queue.gather_stage``
    does (it stamps the gather's start and end, and drops the job's objects
    if the gather raises) and return the ids of the objects to fetch: for
    the portal's harvesters a ``JobObjectIds``, read from the database a
    page at a time as the ids are sent, so memory stays flat however large
    the source; for any other harvester its list."""
    if isinstance(harvester, MappedSourceHarvester):
        harvester = _StreamingGather(harvester)
    return harvest_queue.gather_stage(harvester, job)


class _StreamingGather:
    """A portal harvester as ckanext-harvest's gather_stage sees it, with
    the gather that returns ``JobObjectIds`` in place of the list."""

    def __init__(self, harvester: MappedSourceHarvester):
        self.harvester = harvester

    def gather_stage(self, harvest_job):
        return self.harvester.gather_objects(harvest_job)


class FailedClosed(MessageError):
    """The source looks broken: nothing is withdrawn or imported."""


def gather(job, items: Iterable[Item], *, complete: bool, max_withdraw_share: float,
           ensure_department) -> "JobObjectIds | list":
    """Reconcile ``items`` for ``job`` and return the ids of the harvest
    objects to fetch and import (read from the database as they are sent,
    see ``JobObjectIds``). Memory stays flat: records are handled in
    batches, "seen" marks and the objects themselves live in the database.

    :param complete: the source lists all its records, so ones it no longer
        lists are withdrawn from the catalog.
    :param max_withdraw_share: fail closed (withdraw nothing, import nothing)
        when a run would withdraw more than this share of the source's records.
    :param ensure_department: callable(department name) -> organization id.
    """
    source_id = job.source.id
    # A gather of this job that died part way (its consumer was killed, a
    # service restarted) left objects no one will fetch and "seen" marks
    # that would make this run reject every record as a repeat: undo both.
    _abandon(job)
    records.start_report(job.id, source_id)
    model.Session.commit()
    batch: list[Item] = []
    read = 0
    try:
        for item in items:
            read += 1
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                _gather_batch(job, batch, ensure_department)
                batch = []
        _gather_batch(job, batch, ensure_department)
    except Exception:
        # The source broke off part way (truncated file, failed page): what
        # was gathered from it must not be imported later either.
        model.Session.rollback()
        _abandon(job)
        model.Session.commit()
        raise
    records.count(job.id, records_read=read)
    model.Session.commit()

    try:
        _check_withdrawals(job, read, complete, max_withdraw_share)
    except FailedClosed as closed:
        _abandon(job)
        records.finish_report(job.id, "failed_closed", closed.message)
        HarvestGatherError(message=str(closed.message), job=job).save()
        model.Session.commit()
        log.warning("harvest job %s failed closed: %s", job.id, closed.reason_en)
        return []
    if complete:
        for page in records.unseen_active_pages(source_id, job.id):
            _insert_objects([{"id": str(uuid.uuid4()), "guid": row["identity"], "harvest_job_id": job.id,
                              "harvest_source_id": source_id, "package_id": row["package_id"],
                              "status": "delete"} for row in page])
    model.Session.commit()
    return JobObjectIds(job.id)


class JobObjectIds:
    """The ids of a job's harvest objects still waiting to be fetched, read
    from the database a page at a time while they are iterated (see
    ``records.pages``): what a gather returns, without holding one id per
    record in memory."""

    def __init__(self, job_id: str):
        objects = HarvestObject.__table__.c
        self.waiting = sa.select(objects.id).where(objects.harvest_job_id == job_id, objects.state == "WAITING")

    def __iter__(self) -> Iterator[str]:
        for page in records.pages(self.waiting, HarvestObject.__table__.c.id):
            yield from (row["id"] for row in page)

    def __len__(self) -> int:
        return model.Session.execute(sa.select(sa.func.count()).select_from(self.waiting.subquery())).scalar()


def _gather_batch(job, batch: list[Item], ensure_department) -> None:
    """Reconcile one batch of mapped records (in source order); writes its
    harvest objects, rejections and warnings in one commit. Repeats are told
    apart by ``mapping.first_of_each``, the identities earlier batches of
    this job met being read back from the records table."""
    source_id = job.source.id
    known = records.known_records(
        source_id, [record.identity for _, record in batch if isinstance(record, MappedRecord)])
    earlier = {identity: mapping.FirstSeen(row["seen_position"] or 0, row["seen_hash"] or "")
               for identity, row in known.items() if row["last_seen_job_id"] == job.id}
    accepted, rejected = mapping.first_of_each(batch, earlier)

    claimed = _names_claimed_elsewhere(source_id, [record.package["name"] for _, record in accepted])
    objects: list[dict[str, Any]] = []
    unchanged = 0
    warnings = []
    for position, record in accepted:
        other = claimed.get(record.package["name"])
        if other:
            rejected.append(RecordRejected(record.identity, Message(
                "claimed-by-other-source", f"该标识已由另一数据源（{other}）提供，未重复导入",
                f"This identity is already provided by another source ({other}); not duplicated",
                field="source_identifier", value=record.identity), position=position))
            continue
        warnings += [(record.identity, position, warning) for warning in record.warnings]
        row = known.get(record.identity)
        if row and row["state"] == "active" and row["content_hash"] == record.content_hash:
            unchanged += 1
            continue
        package = dict(record.package, type=record.dataset_type, owner_org=ensure_department(record.department))
        status = "change" if row and row["state"] == "active" and row["package_id"] else "new"
        objects.append({
            "id": str(uuid.uuid4()), "guid": record.identity, "harvest_job_id": job.id,
            "harvest_source_id": source_id, "package_id": row["package_id"] if status == "change" else None,
            "content": json.dumps({"package": package, "content_hash": record.content_hash,
                                   "position": position}, ensure_ascii=False),
            "status": status,
        })
    _insert_objects(objects)
    rejected.sort(key=lambda rejection: rejection.position or 0)
    records.reject_many(job.id, [(item.identity, item.position, item.message) for item in rejected])
    records.warn_many(job.id, warnings)
    # Every identity first met here, taken or not, so that a repeat in a
    # later batch is told apart exactly as within one batch.
    records.mark_seen(source_id, job.id, [(record.identity, position, record.content_hash)
                                          for position, record in accepted])
    records.count(job.id, unchanged=unchanged)
    model.Session.commit()


def _insert_objects(objects: list[dict[str, Any]]) -> None:
    """The batch's harvest objects and their status extras, two INSERTs in
    all (ckanext-harvest's column defaults apply: WAITING, not current)."""
    if not objects:
        return
    model.Session.execute(HarvestObject.__table__.insert(), [
        {key: value for key, value in obj.items() if key != "status"} for obj in objects])
    model.Session.execute(HarvestObjectExtra.__table__.insert(), [
        {"id": str(uuid.uuid4()), "harvest_object_id": obj["id"], "key": "status", "value": obj["status"]}
        for obj in objects])


def _names_claimed_elsewhere(source_id: str, names: list[str]) -> dict[str, str]:
    """Package names in this batch that belong to another source's record."""
    if not names:
        return {}
    rows = (model.Session.query(model.Package.name, records.harvest_record.c.source_id)
            .join(records.harvest_record, records.harvest_record.c.package_id == model.Package.id)
            .filter(model.Package.name.in_(names), records.harvest_record.c.source_id != source_id,
                    records.harvest_record.c.state == "active").all())
    return {name: other for name, other in rows}


def _check_withdrawals(job, read: int, complete: bool, max_share: float) -> None:
    """Raise FailedClosed when the source looks broken: empty, nothing
    usable, or (``complete``) it would withdraw more than ``max_share`` of
    the source's records."""
    source_id = job.source.id
    active = records.active_count(source_id)
    report = records.report_for_job(job.id)
    if read == 0 or (report and report["rejected"] == read and active):
        raise FailedClosed(Message(
            "empty-source", "数据源为空或没有可用记录，本次不删除、不导入任何数据",
            "The source is empty or has no usable record; nothing is withdrawn or imported",
        ))
    if not complete:
        return
    unseen = records.unseen_active_count(source_id, job.id)
    if active and unseen / active > max_share:
        raise FailedClosed(Message(
            "withdraw-limit",
            f"本次将撤下 {unseen}/{active} 条（{unseen / active:.0%}），超过上限 {max_share:.0%}；"
            "数据源可能被截断，本次不删除、不导入任何数据",
            f"This run would withdraw {unseen} of {active} records ({unseen / active:.0%}), "
            f"more than the {max_share:.0%} limit; the source may be truncated, so nothing is "
            "withdrawn or imported",
        ))


def _abandon(job) -> None:
    """Drop the objects a gather of this job wrote that no one has fetched
    (it failed closed, or died part way), and forget that the job saw its
    records (so the next run compares against the last good one)."""
    waiting = JobObjectIds(job.id).waiting.scalar_subquery()
    model.Session.execute(sa.delete(HarvestObjectExtra).where(HarvestObjectExtra.harvest_object_id.in_(waiting)))
    model.Session.execute(sa.delete(HarvestObject).where(HarvestObject.id.in_(waiting)))
    model.Session.execute(
        records.harvest_record.update()
        .where(records.harvest_record.c.last_seen_job_id == job.id)
        .values(last_seen_job_id=None)
    )


def import_objects(harvest_objects: list, writer: CatalogWriter) -> None:
    """Import a batch of harvest objects and move each to a final state
    (COMPLETE or ERROR), as ckanext-harvest's fetch_and_import_stages does for
    one. New packages are written together (``CatalogWriter.create_many``);
    updates, withdrawals and anything already present go one by one through
    ``import_object``. If the batch write fails as a whole, each of its
    objects is retried alone, so one bad record cannot sink the others."""
    now = dt.datetime.utcnow()
    for obj in harvest_objects:
        obj.fetch_started = obj.fetch_finished = obj.import_started = now
        obj.state = "IMPORT"
    model.Session.commit()

    new, single = [], []
    for obj in harvest_objects:
        (new if _extra(obj, "status") == "new" else single).append(obj)
    contents = {obj.id: json.loads(obj.content) for obj in new}
    present = {name for (name,) in model.Session.query(model.Package.name).filter(
        model.Package.name.in_([contents[obj.id]["package"]["name"] for obj in new]))} if new else set()
    # A package already there means an earlier delivery of this object got
    # as far as writing it: import_object finds it and finishes the job.
    single += [obj for obj in new if contents[obj.id]["package"]["name"] in present]
    new = [obj for obj in new if contents[obj.id]["package"]["name"] not in present]

    if new:
        try:
            single += _create_batch(new, contents, writer)
        except SERVICE_ERRORS:
            model.Session.rollback()
            raise
        except Exception:
            model.Session.rollback()
            log.exception("batch import of %d objects failed; importing them one by one", len(new))
            single += new
    for obj in single:
        _finish(obj, _import_one(obj, writer))


def _import_one(obj, writer: CatalogWriter) -> bool:
    try:
        return import_object(obj, writer)
    except SERVICE_ERRORS:
        # Not the record's fault: the consumer leaves the message
        # unacknowledged and the scheduler puts it back later.
        model.Session.rollback()
        raise
    except Exception:
        model.Session.rollback()
        log.exception("harvest object %s failed to import", obj.id)
        # Counted in the report as the stock stats count it (errored), so
        # both say the same.
        position = json.loads(obj.content or "{}").get("position") if obj.content else None
        records.reject(obj.harvest_job_id, obj.guid, IMPORT_FAILED, position)
        model.Session.commit()
        return False


def _finish(obj, ok: bool) -> None:
    obj.import_finished = dt.datetime.utcnow()
    obj.state = "COMPLETE" if ok else "ERROR"
    if not ok:
        obj.report_status = "errored"
    elif _extra(obj, "status") == "delete":
        obj.report_status = "deleted"
    else:
        obj.report_status = "updated" if _extra(obj, "status") == "change" else "added"
    obj.save()


def _create_batch(objects: list, contents: dict[str, dict], writer: CatalogWriter) -> list:
    """Create the packages of new objects in one batch; returns the objects
    CKAN refused for optional fields only, to import one by one (salvaged)."""
    results = writer.create_many([contents[obj.id]["package"] for obj in objects])
    retry: list = []
    finished = dt.datetime.utcnow()
    added: dict[str, int] = collections.Counter()
    imported: dict[str, list] = collections.defaultdict(list)
    invalid: dict[str, list] = collections.defaultdict(list)
    created_ids = []
    for obj, result in zip(objects, results):
        source_id, job_id = obj.harvest_source_id, obj.harvest_job_id
        obj.import_finished = finished
        if isinstance(result, tk.ValidationError) and salvage(contents[obj.id]["package"], result.error_dict):
            retry.append(obj)  # refused for optional fields only: import_object salvages it
            continue
        if isinstance(result, tk.ValidationError):
            content = contents[obj.id]
            invalid[job_id].append((obj.guid, content.get("position"),
                                    _validation_message(result.error_dict, content["package"])))
            obj.state, obj.report_status = "ERROR", "errored"
            continue
        imported[source_id].append((obj.guid, result, contents[obj.id]["content_hash"]))
        obj.package_id, obj.current = result, True
        obj.state, obj.report_status = "COMPLETE", "added"
        added[job_id] += 1
        created_ids.append(result)
    for source_id, rows in imported.items():
        records.save_imported_many(source_id, rows)
    model.Session.flush()
    # Index after the objects are current, so the documents carry their
    # harvest source (ckanext-harvest's before_dataset_index reads it).
    writer.index_and_record(created_ids)
    # Counted last: the report row stays locked only for the commit, so
    # several fetch consumers do not queue behind each other's batches.
    for job_id, number in added.items():
        records.count(job_id, added=number)
    for job_id, rows in invalid.items():
        records.reject_many(job_id, rows)
    model.Session.commit()
    return retry


def import_object(harvest_object, writer: CatalogWriter) -> bool:
    """Create, update or withdraw the package of one harvest object. Safe to
    run again for the same object (after a crash): it finds the package by
    name and updates it instead of duplicating it."""
    status = _extra(harvest_object, "status")
    source_id = harvest_object.source.id
    job_id = harvest_object.harvest_job_id
    identity = harvest_object.guid
    if status == "delete":
        pkg = model.Package.get(harvest_object.package_id) if harvest_object.package_id else None
        if pkg is not None and pkg.state == "active":
            writer.withdraw(pkg.id)
        records.save_withdrawn(source_id, identity, f"no longer listed by the source (job {job_id})")
        records.count(job_id, withdrawn=1)
        _make_current(harvest_object, None)
        model.Session.commit()
        return True

    content = json.loads(harvest_object.content)
    package = content["package"]
    existing = model.Package.get(harvest_object.package_id or package["name"])
    done = records.known_records(source_id, [identity]).get(identity)
    if (existing is not None and existing.state == "active" and done and done["state"] == "active"
            and done["content_hash"] == content["content_hash"] and done["package_id"] == existing.id):
        # Already imported (the message came again after a consumer died
        # between importing and acknowledging): nothing to write or count.
        _make_current(harvest_object, existing.id)
        model.Session.commit()
        return True
    existing_id = existing.id if existing is not None else None

    def write(data: dict) -> dict:
        return writer.update(existing_id, data) if existing_id else writer.create(data)

    try:
        result = write(package)
    except tk.ValidationError as error:
        model.Session.rollback()
        salvaged = salvage(package, error.error_dict)
        result = None
        if salvaged is not None:
            try:
                result = write(salvaged[0])
            except tk.ValidationError:
                model.Session.rollback()
        if result is None:
            records.reject(job_id, identity, _validation_message(error.error_dict, package),
                           content.get("position"))
            model.Session.commit()
            return False
        records.warn_many(job_id, [(identity, content.get("position"), flag) for flag in salvaged[1]])
    records.save_imported(source_id, identity, result["id"], content["content_hash"])
    # Counted by what the gather planned, not by whether the package exists:
    # after a crash between writing a new package and recording it, the
    # retry finds the package, but the record is still an addition.
    records.count(job_id, **{"updated" if status == "change" else "added": 1})
    _make_current(harvest_object, result["id"])
    model.Session.commit()
    return True


def _extra(harvest_object, key: str) -> str | None:
    for extra in harvest_object.extras:
        if extra.key == key:
            return extra.value
    return None


def _make_current(harvest_object, package_id: str | None) -> None:
    model.Session.query(HarvestObject).filter(
        HarvestObject.guid == harvest_object.guid,
        HarvestObject.harvest_source_id == harvest_object.harvest_source_id,
        HarvestObject.id != harvest_object.id,
    ).update({"current": False}, synchronize_session=False)
    harvest_object.package_id = package_id
    harvest_object.current = package_id is not None
    harvest_object.add()


# Fields a record cannot do without, whatever its schema says of them.
_ESSENTIAL = frozenset({"name", "title", "owner_org", "type", "resources", "tag_string", "tags",
                        "source_identifier", quality.FIELD})


def salvage(package: dict, error_dict: dict) -> tuple[dict, list[Message]] | None:
    """A package CKAN's validation refused only for optional fields (a
    national theme no variant names, an address that is not a web address
    ...): the package with those fields left empty and a quality flag for
    each, saying what the source gave; None when a required or essential
    field is at fault, so the record is rejected as before."""
    schema = mapping.schema_fields().get(package.get("type") or "dataset", {})
    fixed, flags = dict(package), []
    for key, errors in error_dict.items():
        if not isinstance(key, str) or key.startswith("__") or key in _ESSENTIAL \
                or key not in schema or schema[key].required or not errors:
            return None
        problem = _validation_message({key: errors}, package)
        flags.append(Message(problem.code, f"{problem.zh}；该字段留空", f"{problem.en}; the field is left empty",
                             field=key, value=package.get(key)))
        fixed[key] = [] if isinstance(package.get(key), list) else ""
    if not flags:
        return None
    if quality.FIELD in schema:
        fixed[quality.FIELD] = json.dumps(quality.parse(package.get(quality.FIELD)) + [
            flag.as_dict() for flag in flags], ensure_ascii=False, sort_keys=True)
    return fixed, flags


def _validation_message(error_dict: dict, package: dict) -> Message:
    """The first problem CKAN's validation found in ``package``, as a
    message naming the field and the value the package had there: the
    portal's validators' own message (``bad-url``, ``bad-date`` ...; see
    logic/validators.py), or ``failed-validation`` with CKAN's text."""
    path, error = _first_error(error_dict) or ((), json.dumps(error_dict, ensure_ascii=False)[:500])
    value: Any = package if path else None
    for step in path:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            value = None
    if isinstance(error, MessageText):
        code, zh, en = error.message.code, error.message.zh, error.message.en
    else:
        # CKAN's own validators give one text, in the language of the request.
        code, zh, en = "failed-validation", str(error), str(error)
    field = ".".join(step for step in path if isinstance(step, str))
    return Message(code, f"校验未通过：{zh}", f"Failed validation: {en}", field=field or None, value=value)


def _first_error(errors: Any, path: tuple = ()) -> tuple[tuple, Any] | None:
    """The path (keys, and indexes into lists of dicts such as resources) and
    the first error of a CKAN error dict, or None if it holds none."""
    if isinstance(errors, dict):
        for key, inner in errors.items():
            if not path and str(key).startswith("__"):
                continue
            found = _first_error(inner, path + (key,))
            if found:
                return found
        return None
    if isinstance(errors, list):
        for index, inner in enumerate(errors):
            if isinstance(inner, (dict, list)):
                found = _first_error(inner, path + (index,))
                if found:
                    return found
            elif inner:
                return path, inner
        return None
    return (path, errors) if errors else None
