"""room for secrets sealed at rest

An integration's and a channel's ``secret`` now hold a sealed text
(jalon.core.secrets), longer than the 500 characters they allowed: TEXT. The
JSON documents sealed (an integration's credentials, a channel's target) stay
JSON columns, each holding one JSON string. Values stored in clear are left
as they are: they are still read, ``jalon serve`` and ``jalon worker`` warn of
them, and ``jalon secrets rotate-key`` seals them.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SECRET_COLUMNS = (("integrations", "secret"), ("integrations", "previous_secret"), ("notification_channels", "secret"))


def _sqlite_retype(table: str, column: str, sql_type: str) -> None:
    """SQLite changes no column's type in place, and rebuilding a table that
    others refer to fails with foreign keys on: a new column takes the
    values, the old one goes, the new one takes its name (SQLite 3.35+).
    For nullable columns that no index, constraint or trigger names."""
    op.execute(f"ALTER TABLE {table} ADD COLUMN {column}__new {sql_type}")
    op.execute(f"UPDATE {table} SET {column}__new = {column}")
    op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {column}__new TO {column}")


def _retype(sql_type: str) -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, column in SECRET_COLUMNS:
        if postgresql:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {sql_type}")
        else:
            _sqlite_retype(table, column, sql_type)


def upgrade() -> None:
    _retype("TEXT")


def downgrade() -> None:
    _retype("VARCHAR(500)")
