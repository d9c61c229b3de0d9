"""Alembic's migrations build exactly the schema the ORM models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, inspect

from jalon.core.db import make_engine
from jalon.core.migrate import alembic_config, current, upgrade
from jalon.core.models import Base


def test_upgrade_head_on_an_empty_database_matches_the_models(empty_db_url):
    engine = make_engine(empty_db_url)
    try:
        assert inspect(engine).get_table_names() == []
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        assert current(engine) == head
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrading_twice_is_harmless(empty_db_url):
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        upgrade(engine)
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_the_comparison_sees_a_column_the_migrations_lack(empty_db_url):
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        drifted = MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(drifted)
        drifted.tables["clients"].append_column(Column("nickname", String(50)))
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), drifted)
        assert [(d[0], d[2], d[3].name) for d in differences] == [("add_column", "clients", "nickname")]
    finally:
        engine.dispose()
