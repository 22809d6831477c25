"""Marks this folder as the package ckanext.shanghai.schemas so scheming can locate the YAML."""
