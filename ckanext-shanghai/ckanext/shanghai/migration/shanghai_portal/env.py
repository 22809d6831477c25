"""Alembic environment of the extension's tables; versions are kept in their
own table so CKAN's and other plugins' histories stay separate."""
import os

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
VERSION_TABLE = os.path.basename(os.path.dirname(__file__)) + "_alembic_version"


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=None,
                      literal_binds=True, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
