"""Alembic environment of this migration folder (see ckanext.shanghai.migration_env)."""
from ckanext.shanghai.migration_env import run

run(__file__)
