"""lifecycle: a WABA's state, a number's throughput tier and Graph reads, a template's previous status and events

Revision ID: d8a2c4e6f1b3
Revises: c4e6f8a0b1d3
"""
from alembic import op
import sqlalchemy as sa

revision = 'd8a2c4e6f1b3'
down_revision = 'c4e6f8a0b1d3'

TIME = sa.DateTime(timezone=True)
COLUMNS = {
    'wabas': [('state', sa.String(32)), ('state_reason', sa.String(300)), ('state_until', TIME),
              ('state_at', TIME), ('business_verification_updated_at', TIME), ('health_checked_at', TIME)],
    'phone_numbers': [('throughput_tier', sa.String(32)), ('health_updated_at', TIME)],
    'message_templates': [('previous_status', sa.String(32)), ('last_event', sa.String(32)),
                          ('last_event_meaning', sa.String(300)), ('last_event_at', TIME)],
}


def upgrade():
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, kind in columns:
                batch.add_column(sa.Column(name, kind))
    op.create_index(op.f('ix_wabas_state'), 'wabas', ['state'])
    op.create_index(op.f('ix_message_templates_status'), 'message_templates', ['status'])


def downgrade():
    op.drop_index(op.f('ix_message_templates_status'), table_name='message_templates')
    op.drop_index(op.f('ix_wabas_state'), table_name='wabas')
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, _kind in reversed(columns):
                batch.drop_column(name)
