"""Tabular resources into the DataStore: reading a table and loading it."""
