"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 05:48:50.939562
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jalon.core.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.String(length=20), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', jalon.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("scope IN ('admin', 'finance')", name=op.f('ck_api_tokens_scope')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('digest', name=op.f('uq_api_tokens_digest'))
    )
    op.create_table('audit_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('subject_type', sa.String(length=50), nullable=False),
    sa.Column('subject_id', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_records'))
    )
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.create_index('ix_audit_subject', ['subject_type', 'subject_id'], unique=False)

    op.create_table('clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('siren', sa.String(length=9), nullable=True),
    sa.Column('siret', sa.String(length=14), nullable=True),
    sa.Column('vat_number', sa.String(length=20), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('terms_kind', sa.String(length=30), nullable=False),
    sa.Column('terms_days', sa.Integer(), nullable=False),
    sa.Column('billing_emails', sa.JSON(), nullable=False),
    sa.Column('created_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('address_line1', sa.String(length=200), nullable=False),
    sa.Column('address_line2', sa.String(length=200), nullable=True),
    sa.Column('postcode', sa.String(length=20), nullable=False),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('country_code', sa.String(length=2), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clients')),
    sa.UniqueConstraint('code', name=op.f('uq_clients_code'))
    )
    op.create_table('entities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('legal_form', sa.String(length=50), nullable=True),
    sa.Column('share_capital', jalon.core.types.ExactDecimal(), nullable=True),
    sa.Column('siren', sa.String(length=9), nullable=True),
    sa.Column('siret', sa.String(length=14), nullable=True),
    sa.Column('rcs', sa.String(length=100), nullable=True),
    sa.Column('vat_number', sa.String(length=20), nullable=True),
    sa.Column('iban', sa.String(length=34), nullable=True),
    sa.Column('bic', sa.String(length=11), nullable=True),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('invoice_prefix', sa.String(length=20), nullable=False),
    sa.Column('vat_on_debits', sa.Boolean(), nullable=False),
    sa.Column('created_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('address_line1', sa.String(length=200), nullable=False),
    sa.Column('address_line2', sa.String(length=200), nullable=True),
    sa.Column('postcode', sa.String(length=20), nullable=False),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('country_code', sa.String(length=2), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entities')),
    sa.UniqueConstraint('code', name=op.f('uq_entities_code'))
    )
    op.create_table('integrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('secret', sa.String(length=500), nullable=True),
    sa.Column('previous_secret', sa.String(length=500), nullable=True),
    sa.Column('secret_rotated_at', jalon.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('credentials', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integrations')),
    sa.UniqueConstraint('key', name=op.f('uq_integrations_key'))
    )
    op.create_table('contracts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_amount', jalon.core.types.ExactDecimal(), nullable=True),
    sa.Column('retainer_amount', jalon.core.types.ExactDecimal(), nullable=True),
    sa.Column('retainer_period', sa.String(length=10), nullable=True),
    sa.Column('hours_per_day', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('vat_category', sa.String(length=3), nullable=False),
    sa.Column('vat_rate', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('vat_exemption_reason', sa.String(length=300), nullable=True),
    sa.Column('purchase_order_ref', sa.String(length=100), nullable=True),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('created_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('fixed_price', 'time_and_materials', 'retainer')", name=op.f('ck_contracts_kind')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_contracts_client_id_clients')),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_contracts_entity_id_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contracts')),
    sa.UniqueConstraint('reference', name=op.f('uq_contracts_reference'))
    )
    op.create_table('invoice_sequences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last_no', sa.Integer(), nullable=False),
    sa.Column('last_issue_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_invoice_sequences_entity_id_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_sequences')),
    sa.UniqueConstraint('entity_id', 'year', name=op.f('uq_invoice_sequences_entity_id'))
    )
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('amount', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('method', sa.String(length=30), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('created_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_payments_client_id_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments'))
    )
    op.create_table('task_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('integration_id', sa.Integer(), nullable=False),
    sa.Column('task_ref', sa.String(length=100), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('last_event_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integrations.id'], name=op.f('fk_task_states_integration_id_integrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_states')),
    sa.UniqueConstraint('integration_id', 'task_ref', name=op.f('uq_task_states_integration_id'))
    )
    op.create_table('contract_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('person_ref', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_contract_members_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_members')),
    sa.UniqueConstraint('contract_id', 'person_ref', name=op.f('uq_contract_members_contract_id'))
    )
    op.create_table('mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('integration_id', sa.Integer(), nullable=False),
    sa.Column('pm_project', sa.String(length=200), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('done_statuses', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_mappings_contract_id_contracts')),
    sa.ForeignKeyConstraint(['integration_id'], ['integrations.id'], name=op.f('fk_mappings_integration_id_integrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mappings')),
    sa.UniqueConstraint('integration_id', 'pm_project', name=op.f('uq_mappings_integration_id'))
    )
    op.create_table('milestones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('amount', jalon.core.types.ExactDecimal(), nullable=True),
    sa.Column('percentage', jalon.core.types.ExactDecimal(), nullable=True),
    sa.Column('match_task_id', sa.String(length=100), nullable=True),
    sa.Column('match_label', sa.String(length=100), nullable=True),
    sa.Column('match_task_type', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('task_ref', sa.String(length=100), nullable=True),
    sa.Column('task_url', sa.String(length=500), nullable=True),
    sa.Column('done_at', jalon.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_event_at', jalon.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'done', 'invoiced')", name=op.f('ck_milestones_status')),
    sa.CheckConstraint('(amount IS NULL) <> (percentage IS NULL)', name=op.f('ck_milestones_amount_or_percentage')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_milestones_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_milestones')),
    sa.UniqueConstraint('contract_id', 'reference', name=op.f('uq_milestones_contract_id'))
    )
    op.create_table('rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('person_ref', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=100), nullable=True),
    sa.Column('amount', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('unit', sa.String(length=10), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.CheckConstraint("unit IN ('hour', 'day')", name=op.f('ck_rates_unit')),
    sa.CheckConstraint('(person_ref IS NULL) <> (role IS NULL)', name=op.f('ck_rates_person_or_role')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_rates_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rates')),
    sa.UniqueConstraint('contract_id', 'person_ref', 'role', 'effective_from', name=op.f('uq_rates_contract_id'))
    )
    op.create_table('time_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('integration_id', sa.Integer(), nullable=False),
    sa.Column('worklog_ref', sa.String(length=100), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('project_ref', sa.String(length=200), nullable=False),
    sa.Column('task_ref', sa.String(length=100), nullable=False),
    sa.Column('person_ref', sa.String(length=200), nullable=True),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('started_at', jalon.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('last_event_at', jalon.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_time_entries_contract_id_contracts')),
    sa.ForeignKeyConstraint(['integration_id'], ['integrations.id'], name=op.f('fk_time_entries_integration_id_integrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_time_entries')),
    sa.UniqueConstraint('integration_id', 'worklog_ref', name=op.f('uq_time_entries_integration_id'))
    )
    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('milestone_id', sa.Integer(), nullable=True),
    sa.Column('corrects_invoice_id', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('number', sa.String(length=50), nullable=True),
    sa.Column('sequence_year', sa.Integer(), nullable=True),
    sa.Column('sequence_no', sa.Integer(), nullable=True),
    sa.Column('issue_date', sa.Date(), nullable=True),
    sa.Column('service_date', sa.Date(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('purchase_order_ref', sa.String(length=100), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('total_net', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('total_vat', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('total_gross', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('seller', sa.JSON(), nullable=True),
    sa.Column('buyer', sa.JSON(), nullable=True),
    sa.Column('payment_terms', sa.JSON(), nullable=True),
    sa.Column('created_at', jalon.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('issued_at', jalon.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('issued_by', sa.String(length=200), nullable=True),
    sa.CheckConstraint("kind IN ('invoice', 'credit_note')", name=op.f('ck_invoices_kind')),
    sa.CheckConstraint("status IN ('draft', 'issued', 'partially_paid', 'paid', 'credited', 'cancelled')", name=op.f('ck_invoices_status')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_invoices_client_id_clients')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_invoices_contract_id_contracts')),
    sa.ForeignKeyConstraint(['corrects_invoice_id'], ['invoices.id'], name=op.f('fk_invoices_corrects_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_invoices_entity_id_entities')),
    sa.ForeignKeyConstraint(['milestone_id'], ['milestones.id'], name=op.f('fk_invoices_milestone_id_milestones')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('entity_id', 'number', name=op.f('uq_invoices_entity_id'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_client_status', ['client_id', 'status'], unique=False)
        batch_op.create_index('uq_invoices_live_milestone', ['milestone_id'], unique=True, sqlite_where=sa.text("milestone_id IS NOT NULL AND status NOT IN ('cancelled', 'credited')"), postgresql_where=sa.text("milestone_id IS NOT NULL AND status NOT IN ('cancelled', 'credited')"))

    op.create_table('invoice_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('quantity', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('unit', sa.String(length=10), nullable=False),
    sa.Column('unit_price', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('vat_category', sa.String(length=3), nullable=False),
    sa.Column('vat_rate', jalon.core.types.ExactDecimal(), nullable=False),
    sa.Column('vat_exemption_reason', sa.String(length=300), nullable=True),
    sa.Column('net_amount', jalon.core.types.ExactDecimal(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines'))
    )
    op.create_table('payment_allocations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('amount', jalon.core.types.ExactDecimal(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_allocations_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_allocations_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_allocations'))
    )
    


def downgrade() -> None:
    
    op.drop_table('payment_allocations')
    op.drop_table('invoice_lines')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('uq_invoices_live_milestone', sqlite_where=sa.text("milestone_id IS NOT NULL AND status NOT IN ('cancelled', 'credited')"), postgresql_where=sa.text("milestone_id IS NOT NULL AND status NOT IN ('cancelled', 'credited')"))
        batch_op.drop_index('ix_invoices_client_status')

    op.drop_table('invoices')
    op.drop_table('time_entries')
    op.drop_table('rates')
    op.drop_table('milestones')
    op.drop_table('mappings')
    op.drop_table('contract_members')
    op.drop_table('task_states')
    op.drop_table('payments')
    op.drop_table('invoice_sequences')
    op.drop_table('contracts')
    op.drop_table('integrations')
    op.drop_table('entities')
    op.drop_table('clients')
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_subject')

    op.drop_table('audit_records')
    op.drop_table('api_tokens')
    
