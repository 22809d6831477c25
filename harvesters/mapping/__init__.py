"""Declarative field mapping of agency export records onto the portal's dataset
schemas: pure functions, a source record in, a CKAN package dict out.

A mapping is a YAML file (see harvesters/mappings/README.md, which shows the
three real ones) loaded by ``load_mapping``; every problem in it is reported
at once in a ``MappingConfigError``. Keys:

``version``
    1 (the format of this file). Optional.
``description``
    Free text for people. Optional.
``name_prefix``
    Required; lower-case letters, digits and ``-``, at most 20 characters.
    Package names are ``<name_prefix>-<identity as a slug>``, never derived
    from titles (portals repeat titles).
``identity``
    How a record is recognised from one run to the next (stored as
    ``source_identifier``). ``from``: a source field; ``pattern``: a regular
    expression with one group that extracts the id from that field (e.g. the
    ``id=`` of a page address); ``hash_of``: a list of fields whose values,
    hashed, identify the record, used when ``from`` is absent or yields
    nothing. Choose fields that do not change when the data is updated.
``department``
    ``from: <field>`` (or a list of fields whose values are put together,
    a district and its bureau: ``join`` between them, ``prefix_if`` a
    regular expression the last one must match for the others to be put in
    front, a value a later one already contains said once) or ``fixed:
    <Chinese name>``; ``aliases`` maps variant spellings (of the whole name)
    to one name; ``empty_values`` more "no value" markers for these fields;
    ``placeholders`` names that are never departments (an account role such
    as 地区管理员): their records go to ``placeholder_department`` with a
    quality flag, or are rejected when it is not given.
``placeholder_dates``
    Source dates meaning "none", added to the built-in ones (0000-00-00,
    1900-01-01, 1970-01-01 ...; any date before 1900 is one too).
``dataset_type``
    ``fixed: <type>``, or ``by_department: {<Chinese name>: <type>}``, or
    ``from: <field>`` (the record names its type; one no schema has, or
    ``application``, takes the default), with ``default`` (``dataset`` when
    not given). Types are the ``dataset_type`` of the schemas in schemas/.
``fields_by_name``
    ``true``: every field of the schemas that ``fields`` does not name (but
    ``quality_flags`` and the generated ones) is taken from the source field
    of the same name, with the schema's kind. Optional.
``flags_from``
    A source field holding the quality flags another portal stored on the
    record (a JSON list of messages): kept on the product beside the flags
    this harvest raises. Optional.
``empty_values``
    Source values meaning "no value" for every field (e.g. ``暂无``); blank
    text always is.
``fields``
    Target field -> rule, or -> a source field name as a shorthand for
    ``{from: <name>}``. Targets are the schemas' dataset fields, plus ``tags``
    (written as ``tag_string``); ``name``, ``owner_org``, ``source_identifier``
    and ``tag_string`` are filled in by the harvest and cannot be mapped. A
    rule has ``from`` (a field, or a list of fields tried in order: the first
    non-empty one is used), and optionally ``values`` (raw value -> code),
    ``default``, ``required``, ``empty_values`` (more "no value" markers for
    this rule), ``type`` (``str``, ``int``, ``date``; implied by the target's
    schema), ``date_formats`` (strptime formats; ``2023年4月6日`` is always
    understood) and ``split`` (a regular expression cutting a text into tags
    or into several choices). A rule without ``from`` gives every record its
    ``default``.
``resources``
    One resource per format listed in ``formats_from`` (a list, or a text cut
    by ``split`` or picked out by ``findall``, a regular expression with at
    most one group), each linking to ``url_from`` (a field; empty when not
    given), named after the title and format; formats are upper-cased,
    unknown codes kept as given. Or, for sources that list their files,
    ``from``: a field holding a list of ``{url, format, name, description}``
    (one resource each; a missing name is made from the title and format).

What is decided where:

- A record is rejected (``RecordRejected``, carrying a ``Message``: a code,
  the field, the raw value, the reason in Chinese and English) only when it
  cannot be published: no identity, no department (or a placeholder one
  with no ``placeholder_department``), a required field (the title ...)
  with neither a usable value nor a default, or a record far larger than
  any real one. A rejection is a recorded error, never a silent skip.
- Anything else wrong but publishable costs the record only the field and
  is a quality flag (a ``Message`` in ``MappedRecord.warnings``, stored on
  the product as ``quality_flags``): a value no rule maps
  (``unmapped-value``), a date or number that cannot be read (``bad-date``,
  ``bad-number``), a placeholder date (``placeholder-date``), a negative or
  impossibly large count (``impossible-count``), a non-text value
  (``bad-value``): the rule's default is used, or the field left empty.
- A later record with the identity of an earlier one is rejected as a
  ``duplicate`` (same content) or ``conflicting-duplicate`` (``first_of_each``,
  which the harvest's gather runs batch by batch).
- Tags CKAN would refuse (shorter than 2 or longer than 100 characters, or
  with characters other than letters, digits, CJK, space and ``-_.``) are
  dropped and listed in ``MappedRecord.warnings`` (messages); the record
  still maps.
- A date before the date its schema says it may not precede (``last_updated``
  before ``first_published``) is kept as the source says, with a
  ``dates-inverted`` flag; the harvest stores it (the form and the API
  still refuse such dates, see ckanext.shanghai.quality).
- ``check_export`` runs a mapping over a whole export as a first harvest
  would and counts what would happen (``ckan shanghai mapping-check``).
- ``content_hash`` is the SHA-256 of the mapping's fingerprint and the
  canonical JSON of the source record (keys sorted), so an unchanged record is
  recognised before it is mapped, and a changed mapping re-imports everything.
"""
from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping as AbstractMapping

from ckanext.shanghai.harvesters.mapping.apply import FirstSeen, Mapping, first_of_each, map_records
from ckanext.shanghai.harvesters.mapping.compile import (
    ENGINE_VERSION, MAPPINGS_DIR, SCHEMA_DIR, FieldRule, MappedRecord, MappingConfigError,
    RecordRejected, SchemaField, read_mapping_config, schema_fields,
)
from ckanext.shanghai.harvesters.mapping.check import MappingCheck, check_export
from ckanext.shanghai.harvesters.mapping.departments import department_slug, department_type_of

__all__ = [
    "ENGINE_VERSION",
    "SCHEMA_DIR",
    "MAPPINGS_DIR",
    "FieldRule",
    "FirstSeen",
    "Mapping",
    "MappedRecord",
    "MappingCheck",
    "MappingConfigError",
    "RecordRejected",
    "SchemaField",
    "check_export",
    "department_slug",
    "department_type_of",
    "first_of_each",
    "load_mapping",
    "map_records",
    "schema_fields",
]


def load_mapping(source: str | Path | AbstractMapping, *,
                 schema_dir: str | Path = SCHEMA_DIR) -> Mapping:
    """A validated ``Mapping`` from a YAML file's path, or from the already
    parsed configuration.

    :raises MappingConfigError: listing every problem found.
    """
    return Mapping(read_mapping_config(source), schema_fields(str(schema_dir)))
