"""The database and the Solr index drift apart three ways (a dataset missing
from the index, an index document older than its row, a document whose
dataset is gone); the check names each and the repair puts them right."""
import datetime as dt

import pytest

import ckan.model as model
from ckan.lib.search.common import make_connection
from ckan.tests import factories, helpers
from ckanext.shanghai.harvesters.index import check as index_check

from portal_testing import make_department

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

CORE = dict(data_domain="health", update_frequency="annual", open_condition="unconditional")


def test_missing_stale_and_orphaned_documents_are_found_and_repaired(run_ckan):
    org = make_department()
    missing, stale, orphan, fine = (factories.Dataset(owner_org=org["id"], title=f"数据{n}", **CORE)
                                    for n in range(4))
    connection = make_connection()
    connection.delete(q=f'id:"{missing["id"]}"', commit=True)
    package = model.Package.get(stale["id"])
    package.title = "改过的标题"
    package.metadata_modified = dt.datetime.utcnow()
    model.Session.commit()
    model.Session.execute(model.package_table.delete().where(model.package_table.c.id == orphan["id"]))
    model.Session.commit()

    difference = index_check.compare()
    assert difference.missing == [missing["id"]]
    assert difference.stale == [stale["id"]]
    assert difference.orphaned == [orphan["id"]]
    assert run_ckan("shanghai", "index-check").returncode == 1

    result = run_ckan("shanghai", "index-check", "--repair")
    assert result.returncode == 0, result.stderr
    assert index_check.compare().total == 0
    found = {d["id"]: d["title"] for d in helpers.call_action("package_search", q="*:*")["results"]}
    assert found == {missing["id"]: "数据0", stale["id"]: "改过的标题", fine["id"]: "数据3"}
