"""A city's catalog export built to hold the patterns real agency exports
have (English camelCase keys, bureaus named relative to their district,
placeholder publishers, dates going backwards or zero, values the mapping
does not know), and its mapping; shared by the unit and integration tests."""
from __future__ import annotations

# A city portal exporting English camelCase keys; 发布单位 is relative to its district.
CITY_MAPPING = {
    "name_prefix": "xc",
    "identity": {"from": "catalogId"},
    "department": {
        "from": ["districtName", "publisher"],
        "prefix_if": "^(区|县)",
        "empty_values": ["市本级"],
        "aliases": {"南明区区数据资源局": "贵阳市南明区数据资源局"},
        "placeholders": ["地区管理员", "系统管理员"],
        "placeholder_department": "新城市大数据管理局",
    },
    "fields": {
        "title": "catalogName",
        "notes": "summary",
        "tags": {"from": "keywords", "split": "[,，]"},
        "data_domain": {"from": "domain", "values": {"城建住房": "urban-construction", "医疗卫生": "health"},
                        "default": "social-development"},
        "first_published": "publishTime",
        "last_updated": "updateTime",
        "update_frequency": {"from": "updateCycle", "values": {"每月": "monthly", "每年": "annual"}},
        "open_condition": {"from": "openType", "values": {"无条件开放": "unconditional", "有条件开放": "conditional"}},
        "record_count": "dataCount",
    },
}


def city(number: int, **changes) -> dict:
    record = {
        "catalogId": f"C{number:05d}", "catalogName": f"数据目录{number}", "summary": "说明",
        "keywords": "交通,出行", "domain": "城建住房", "publishTime": "2021-03-01", "updateTime": "2023-05-01",
        "updateCycle": "每月", "openType": "无条件开放", "dataCount": "1,200",
        "districtName": "市本级", "publisher": "新城市交通局",
    }
    record.update(changes)
    return record



def built_export() -> list:
    """An export with every pattern: 20 plain records, 5 relative bureaus in
    two districts, 3 placeholder publishers, 4 backwards dates, 2 zero
    dates, 3 unknown domains (two values), 2 unknown update cycles (a
    required field without default), 1 exact repeat, 1 without a title."""
    records = [city(n) for n in range(20)]
    records += [city(100 + n, districtName="云岩区" if n < 3 else "花溪区", publisher="区数据资源局")
                for n in range(5)]
    records += [city(200 + n, publisher="地区管理员") for n in range(3)]
    records += [city(300 + n, publishTime="2023-09-01", updateTime="2023-01-01") for n in range(4)]
    records += [city(400 + n, publishTime="0000-00-00") for n in range(2)]
    records += [city(500, domain="气象服务"), city(501, domain="气象服务"), city(502, domain="防疫复工")]
    records += [city(600, updateCycle="每两年"), city(601, updateCycle="实时")]
    records += [city(0), city(700, catalogName="")]
    return records
