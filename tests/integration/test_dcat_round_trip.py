"""Lossless DCAT round trip: products of every department schema, each with
every field filled in and under both open conditions, exported by a portal
running this software at /catalog.ttl (or .rdf, .jsonld) and harvested by
the DCAT harvester of another, arrive with the same value in every field of
their schema (the quality flags their first harvest raised too)."""
import json

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import helpers
from ckanext.scheming.helpers import scheming_get_dataset_schema
from ckanext.shanghai import quality

from dcat_testing import every_field_product, product_types
from portal_testing import make_department, run_job, site_context

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

FLAGS = json.dumps([{
    "code": "unmapped-value", "field": "update_frequency", "value": "每两年",
    "reason_zh": "更新频度「每两年」没有对应的 update_frequency 取值；改用默认值「irregular」",
    "reason_en": "更新频度 value '每两年' has no update_frequency code; the default 'irregular' is used instead"}],
    ensure_ascii=False)
# Fields the harvest itself fills in: the copy's own name, and the
# identifier a harvested product keeps (checked below).
OWN_FIELDS = {"name", "source_identifier"}


def schema_values(product: dict) -> dict:
    """Every field of the product's schema as package_show gives it, its
    tags as a set, its resources as (name, description, format, url) in
    any order (DCAT's distributions have none)."""
    schema = scheming_get_dataset_schema(product["type"])
    values = {field["field_name"]: product.get(field["field_name"]) for field in schema["dataset_fields"]
              if field["field_name"] not in OWN_FIELDS | {"tag_string"}}
    values["type"] = product["type"]
    values["tags"] = sorted(tag["name"] for tag in product["tags"])
    values["resources"] = sorted((r["name"], r.get("description") or "", r["format"], r["url"])
                                 for r in product["resources"])
    return values


@pytest.mark.parametrize("catalog", ["catalog.ttl", "catalog.rdf", "catalog.jsonld"])
def test_every_field_of_every_department_schema_survives_the_round_trip(served_portal, monkeypatch, catalog):
    from ckanext.shanghai.access.policy import gated_url

    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    department = make_department(name="health-commission", title="上海市卫生健康委员会（上海市中医药管理局）")
    # The conditional ones as a harvest wrote them, with the flags it raised.
    originals = [helpers.call_action(
        "package_create", context={**site_context(), quality.HARVEST_CONTEXT: condition == "conditional"},
        owner_org=department["id"], **every_field_product(kind, condition, number),
        **({"quality_flags": FLAGS} if condition == "conditional" else {}))
        for number, (kind, condition) in enumerate(
            (kind, condition) for kind in product_types() for condition in ("unconditional", "conditional"))]
    assert sum(bool(original.get("quality_flags")) for original in originals) == len(product_types())
    # Without the description and the landing page DCAT-AP requires: the
    # export fills them in, the harvest leaves them out again.
    originals.append(helpers.call_action("package_create", context=site_context(), owner_org=department["id"],
                                         **dict(every_field_product("dataset", "unconditional", 99), notes="", url="")))
    source = tk.get_action("harvest_source_create")(site_context(), {
        "name": "sibling-portal", "title": "兄弟平台", "url": f"{served_portal}/{catalog}",
        "source_type": "shanghai_dcat", "owner_org": department["id"], "config": "{}"})
    report = run_job(source["id"])
    assert (report["added"], report["rejected"]) == (len(originals), 0), report

    model.Session.remove()
    copies = {}
    for (name,) in model.Session.query(model.Package.name).filter(model.Package.name.like("dcat-%")):
        copy = helpers.call_action("package_show", context=site_context(), id=name)
        copies[copy["source_identifier"]] = copy
    assert set(copies) == {original["source_identifier"] for original in originals}
    for original in originals:
        expected = schema_values(original)
        if original["open_condition"] == "conditional":
            # A conditional product's files are behind its portal's
            # application gate: the copy links there, not to the files.
            expected["resources"] = sorted(
                (r["name"], r.get("description") or "", r["format"], gated_url(original["id"], r["id"]))
                for r in original["resources"])
        assert schema_values(copies[original["source_identifier"]]) == expected, original["name"]
