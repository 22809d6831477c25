"""The Alembic environment every migration folder of the extension runs:
each keeps its versions in its own table (<folder>_alembic_version), so
CKAN's and other plugins' histories stay separate."""
from __future__ import annotations

import os

from sqlalchemy import engine_from_config, pool

__all__ = ["run"]


def run(env_file: str) -> None:
    from alembic import context

    config = context.config
    version_table = os.path.basename(os.path.dirname(env_file)) + "_alembic_version"
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=None,
                          literal_binds=True, version_table=version_table)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, version_table=version_table)
        with context.begin_transaction():
            context.run_migrations()
