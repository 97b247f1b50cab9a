"""registration: local storage and credit currency per page, coexistence syncs, rate-limited steps

A signup page may set the local storage region sent at register and the credit line's currency; a number
keeps Meta's ``is_on_biz_app``, the region it was registered with, when each WhatsApp Business app sync was
asked, the 24-hour window and what the ``history`` webhook said; a step Meta rate-limited keeps until when
it waits.

Revision ID: d7a2c9e4f6b8
Revises: d5f7a9b1c3e5
"""
from alembic import op
import sqlalchemy as sa

revision = 'd7a2c9e4f6b8'
down_revision = 'd5f7a9b1c3e5'

WHEN = sa.DateTime(timezone=True)


def page_columns():
    return [sa.Column('data_localization_region', sa.String(2), nullable=True),
            sa.Column('credit_currency', sa.String(3), nullable=True)]


def phone_columns():
    return [sa.Column('is_on_biz_app', sa.Boolean(), nullable=True),
            sa.Column('data_localization_region', sa.String(2), nullable=True),
            sa.Column('contacts_sync_requested_at', WHEN, nullable=True),
            sa.Column('history_sync_requested_at', WHEN, nullable=True),
            sa.Column('business_app_sync_until', WHEN, nullable=True),
            sa.Column('history_status', sa.String(16), nullable=True),
            sa.Column('history_progress', sa.Integer(), nullable=True),
            sa.Column('history_status_at', WHEN, nullable=True)]


def upgrade():
    with op.batch_alter_table('signup_pages') as batch_op:
        for column in page_columns():
            batch_op.add_column(column)
    with op.batch_alter_table('phone_numbers') as batch_op:
        for column in phone_columns():
            batch_op.add_column(column)
    with op.batch_alter_table('onboarding_steps') as batch_op:
        batch_op.add_column(sa.Column('wait_until', WHEN, nullable=True))
        batch_op.create_index(batch_op.f('ix_onboarding_steps_wait_until'), ['wait_until'])


def downgrade():
    with op.batch_alter_table('onboarding_steps') as batch_op:
        batch_op.drop_index(batch_op.f('ix_onboarding_steps_wait_until'))
        batch_op.drop_column('wait_until')
    with op.batch_alter_table('phone_numbers') as batch_op:
        for column in reversed(phone_columns()):
            batch_op.drop_column(column.name)
    with op.batch_alter_table('signup_pages') as batch_op:
        for column in reversed(page_columns()):
            batch_op.drop_column(column.name)
