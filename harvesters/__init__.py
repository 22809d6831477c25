"""Harvesters of the portal (installed as ckanext.shanghai.harvesters): one
module per source kind, the shared stage runner and field mapping."""
