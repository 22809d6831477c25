"""One harvester per source kind: agency exports, CKAN APIs, DCAT catalogs."""
