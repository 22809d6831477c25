"""Harvesting real agency exports into the Solr-indexed catalog: every record
in the catalog or explained, reconciliation by content hash, withdrawals,
failing closed on broken sources, three portals through mappings alone."""

from collections import Counter

import pytest

import ckan.model as model
from ckan.tests import helpers
from ckanext.shanghai.harvesters.mapping import department_slug

from portal_testing import create_source, load_catalog, run_job, write_export

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")


def catalog_names() -> set[str]:
    rows = model.Session.query(model.Package.name).filter(
        model.Package.type != "harvest", model.Package.state == "active")
    return {name for (name,) in rows}


def test_the_whole_shanghai_export_is_in_the_catalog_or_explained(tmp_path):
    records = load_catalog("shanghai.json")
    source = create_source("shanghai", str(write_export(tmp_path / "sh.json", records)), {"mapping": "shanghai"})
    report = run_job(source["id"])
    assert report["outcome"] == "finished"
    assert report["records_read"] == len(records) == 4494
    assert report["added"] + report["rejected"] == len(records)
    assert report["added"] == len(catalog_names())
    answer = helpers.call_action("shanghai_harvest_report", id=report["job_id"])
    rejections = answer["rejections"]
    assert len(rejections) == report["rejected"]
    assert all(r["reason_zh"] and r["reason_en"] for r in rejections)
    # The counts the mapping's unit tests find in the export, here through
    # the gather's batches of 500 (repeats across batches told apart
    # through the records table): 2,232 products, 2,262 repeats.
    assert (report["added"], report["rejected"]) == (2232, 2262)
    assert Counter(r["code"] for r in rejections) == {"duplicate": 2258, "conflicting-duplicate": 4}
    conflicts = [r for r in rejections if r["code"] == "conflicting-duplicate"]
    assert [r["position"] for r in conflicts] == [1126, 1710, 2297, 3406]
    assert "record 641 is kept" in conflicts[0]["reason_en"] and "641" in conflicts[0]["reason_zh"]
    assert all(r["field"] == "source_identifier" and r["value"] == r["identity"] for r in rejections)
    # Tags CKAN would refuse were dropped from 67 products, and said so.
    assert report["warnings"] == len(answer["warnings"]) == 67
    assert {(w["code"], w["field"], w["value"]) for w in answer["warnings"]} == {("tag-too-short", "tags", "1")}

    # Found through Solr by department and by a Chinese word.
    slug = department_slug("上海市公安局")
    police_org = model.Group.get(slug)
    in_database = model.Session.query(model.Package).filter_by(owner_org=police_org.id, state="active").count()
    police = helpers.call_action("package_search", fq=f"organization:{slug}", rows=0)
    assert police["count"] == in_database > 0
    assert in_database <= sum(1 for r in records if r["数据提供方"] == "上海市公安局")
    hits = helpers.call_action("package_search", q="养老", rows=1000)["results"]
    assert hits and all("养老" in (d["title"] + (d.get("notes") or "") + " ".join(t["name"] for t in d["tags"]))
                        for d in hits)


def test_unchanged_updated_and_withdrawn_are_counted_exactly(tmp_path):
    records = load_catalog("shanghai.json")[:300]
    export = write_export(tmp_path / "sh.json", records)
    source = create_source("shanghai-slice", str(export), {"mapping": "shanghai"})
    first = run_job(source["id"])
    assert first["added"] + first["rejected"] == 300

    second = run_job(source["id"])
    assert (second["added"], second["updated"], second["withdrawn"]) == (0, 0, 0)
    assert second["unchanged"] == first["added"]

    edited = [dict(r) for r in records]
    imported = [r for r in edited if r["摘要"]][:15]
    for record in imported[:10]:
        record["摘要"] = record["摘要"] + "（已更新 zqxedit）"
    removed = {id(r) for r in imported[10:15]}
    write_export(export, [r for r in edited if id(r) not in removed])
    third = run_job(source["id"])
    assert (third["added"], third["updated"], third["withdrawn"]) == (0, 10, 5)
    assert len(catalog_names()) == first["added"] - 5
    hits = helpers.call_action("package_search", q="zqxedit", rows=50)["count"]
    assert hits == 10


@pytest.mark.parametrize("broken", ["empty", "half"])
def test_a_broken_source_fails_closed_and_withdraws_nothing(tmp_path, broken):
    records = load_catalog("shanghai.json")[:200]
    export = write_export(tmp_path / "sh.json", records)
    source = create_source(f"shanghai-{broken}", str(export), {"mapping": "shanghai"})
    first = run_job(source["id"])
    before = catalog_names()
    assert len(before) == first["added"] > 0

    write_export(export, [] if broken == "empty" else records[:100])
    report = run_job(source["id"])
    assert report["outcome"] == "failed_closed"
    assert report["message_zh"] and report["message_en"]
    assert report["message_code"] == {"empty": "empty-source", "half": "withdraw-limit"}[broken]
    assert (report["added"], report["updated"], report["withdrawn"]) == (0, 0, 0)
    assert catalog_names() == before


@pytest.mark.parametrize("export_name,mapping_name", [
    ("guizhou_guiyang.json", "guiyang"), ("guangxi_liuzhou.json", "liuzhou")])
def test_other_portals_go_in_through_their_mappings(tmp_path, export_name, mapping_name):
    records = load_catalog(export_name)[:250]
    source = create_source(mapping_name, str(write_export(tmp_path / export_name, records)),
                           {"mapping": mapping_name})
    report = run_job(source["id"])
    assert report["outcome"] == "finished"
    assert report["added"] + report["rejected"] == 250
    assert report["added"] >= 200
    facets = helpers.call_action("package_search", q="*:*", rows=0,
                                 **{"facet.field": ["data_domain", "update_frequency", "open_condition"]})
    assert facets["count"] == report["added"]
    assert sum(facets["facets"]["open_condition"].values()) == report["added"]


def test_a_truncated_export_fails_closed_and_imports_nothing(tmp_path):
    records = load_catalog("shanghai.json")[:1200]
    export = write_export(tmp_path / "sh.json", records)
    text = export.read_text(encoding="utf-8")
    export.write_text(text[: int(len(text) * 0.9)], encoding="utf-8")
    source = create_source("shanghai-truncated", str(export), {"mapping": "shanghai"})
    report = run_job(source["id"])
    assert report["outcome"] == "failed_closed"
    assert "不完整" in report["message_zh"] and "incomplete" in report["message_en"]
    # The code names the problem: the JSON breaks off before its end.
    assert report["message_code"] == "json-broken"
    assert (report["added"], report["withdrawn"]) == (0, 0)
    assert catalog_names() == set()
    from ckanext.harvest.model import HarvestObject
    assert model.Session.query(HarvestObject).filter(HarvestObject.state == "WAITING").count() == 0
