"""Demo content of the public portal on top of the harvested real catalog:
the real tables of config/demo/tables uploaded to fitting data products
(then loaded into the DataStore by the job queue), and a few data
applications linked to those products."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from werkzeug.datastructures import FileStorage

import ckan.model as model
import ckan.plugins.toolkit as tk

log = logging.getLogger(__name__)

__all__ = ["TABLES", "COORDINATE_CRS", "APPLICATIONS", "seed", "seed_when_harvested"]

# table file -> (title of the real Shanghai product it goes with, resource name, note)
TABLES = {
    "sh_elderly_care_institutions_utf8bom.csv": (
        "上海市养老机构", "上海市养老机构名录（含坐标）",
        "来源：上海市公共数据开放平台 data.sh.gov.cn（UTF-8 BOM）。"),
    "sh_community_health_centres_utf8.csv": (
        "上海市社区卫生服务中心基本信息", "上海市社区卫生服务中心名录",
        "来源：上海市公共数据开放平台 data.sh.gov.cn（UTF-8）。"),
    "nbs_health_institution_beds_1978_2014.csv": (
        "全市医疗卫生机构、床位、人员基本情况统计表", "全国医疗卫生机构床位数（1978—2014，国家统计局）",
        "参考数据：国家统计局 data.stats.gov.cn。"),
    "bj_realestate_developer_qualifications_gbk.csv": (
        "房地产开发企业资质", "房地产开发企业资质核定（北京市样例，GBK 编码）",
        "参考样例：北京市公共数据开放平台 data.beijing.gov.cn，GBK 编码原文件。"),
    "bj_env_bureau_penalties_gbk.csv": (
        "双公示-行政处罚结果信息", "生态环境行政处罚信息（北京市样例，GBK 编码，含换行单元格）",
        "参考样例：北京市生态环境局，GBK 编码原文件；有一个单元格内含换行。"),
    "bj_new_housing_presale_permits_utf8bom.csv": (
        "嘉定区预售许可信息", "新建商品房预售许可信息（北京市样例，UTF-8 BOM）",
        "参考样例：北京市住房城乡建设委，UTF-8 BOM 原文件。"),
    "nbs_admin_divisions_counties.csv": (
        "静安区行政区划", "全国县级行政区划代码（国家统计局）",
        "参考数据：国家统计局县级行政区划代码。"),
}

# The coordinate system of a table's coordinates, as its publisher would
# declare it: the elderly-care table was geocoded with the AMap (Gaode)
# geocoding API (geocode_elder.py in the source repository), which answers
# in GCJ-02.
COORDINATE_CRS = {"sh_elderly_care_institutions_utf8bom.csv": "gcj02"}

APPLICATIONS = [
    {"name": "elderly-care-map", "title": "上海养老机构地图",
     "notes": "在地图上查找全市养老机构及其床位数，并就近查找社区卫生服务中心。",
     "app_kind": "map", "tables": ["sh_elderly_care_institutions_utf8bom.csv",
                                   "sh_community_health_centres_utf8.csv"]},
    {"name": "health-beds-trends", "title": "医疗卫生床位变化分析",
     "notes": "以图表展示 1978 年以来医疗卫生机构床位数的变化。", "app_kind": "report",
     "tables": ["nbs_health_institution_beds_1978_2014.csv"]},
    {"name": "housing-presale-lookup", "title": "商品房预售许可查询",
     "notes": "按项目名称、开发企业查询预售许可证和开发企业资质。", "app_kind": "web",
     "tables": ["bj_new_housing_presale_permits_utf8bom.csv",
                "bj_realestate_developer_qualifications_gbk.csv"]},
]


def _context() -> dict:
    user = tk.get_action("get_site_user")({"ignore_auth": True}, {})
    return {"user": user["name"], "ignore_auth": True}


def _product(title: str) -> model.Package | None:
    return (model.Session.query(model.Package)
            .filter(model.Package.title == title, model.Package.state == "active",
                    model.Package.private == False)  # noqa: E712
            .order_by(model.Package.metadata_created).first())


def seed(tables_dir: Path) -> dict:
    """Attach the tables and create the applications (idempotent); returns
    table -> product name and the application names."""
    context = _context()
    attached: dict[str, str] = {}
    for file_name, (title, resource_name, note) in TABLES.items():
        path = tables_dir / file_name
        product = _product(title)
        if product is None or not path.exists():
            log.warning("demo: no product %r or no file %s", title, path)
            continue
        attached[file_name] = product.name
        if any(r.name == resource_name and r.state == "active" for r in product.resources):
            continue
        extra = {"coordinate_crs": COORDINATE_CRS[file_name]} if file_name in COORDINATE_CRS else {}
        with path.open("rb") as handle:
            tk.get_action("resource_create")(dict(context), {
                "package_id": product.id, "name": resource_name, "description": note,
                "format": "CSV", "url": file_name,
                "upload": FileStorage(stream=handle, filename=file_name, content_type="text/csv"),
                **extra,
            })
    applications = []
    for app in APPLICATIONS:
        products = [attached[t] for t in app["tables"] if t in attached]
        if not products:
            continue
        applications.append(app["name"])
        if model.Package.get(app["name"]) is not None:
            continue
        owner = model.Package.get(products[0]).owner_org
        tk.get_action("package_create")(dict(context), {
            "type": "application", "name": app["name"], "title": app["title"], "notes": app["notes"],
            "owner_org": owner, "app_kind": app["app_kind"],
            "app_url": f"{tk.config.get('ckan.site_url').rstrip('/')}/application/{app['name']}",
            "related_datasets": json.dumps(products),
        })
    return {"tables": attached, "applications": applications}


def seed_when_harvested(source_id: str, tables_dir: str, timeout: float = 1800) -> dict:
    """Job: wait for the source's harvest to finish, then seed."""
    from ckanext.harvest.model import HarvestJob

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model.Session.remove()
        unfinished = model.Session.query(HarvestJob).filter(
            HarvestJob.source_id == source_id, HarvestJob.status != "Finished").count()
        if not unfinished:
            break
        time.sleep(10)
    result = seed(Path(tables_dir))
    log.info("demo: %s", result)
    return result
