"""Field mappings of the agency exports the portal harvests, one YAML file per
source (read by harvesters.mapping.load_mapping; see README.md)."""
