"""reconciliation: where a delivery came from, and each integration's cursor

A delivery is a webhook the tool sent, or an event the connector's
reconciliation found by asking the tool (``origin``): both go through the same
inbox, keyed for idempotency. Each integration's reconciliation remembers when
it last succeeded (``source_cursors``), so one integration failing never holds
back the others.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jalon.core.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("origin", sa.String(20), nullable=False, server_default="webhook"))
    op.create_table(
        "source_cursors",
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("last_success_at", jalon.core.types.UTCDateTime(), nullable=True),
        sa.Column("last_attempt_at", jalon.core.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"],
                                name=op.f("fk_source_cursors_integration_id_integrations")),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_source_cursors")),
    )


def downgrade() -> None:
    op.drop_table("source_cursors")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("origin")
