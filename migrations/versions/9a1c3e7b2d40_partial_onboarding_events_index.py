"""webhook events: index only those linked to an onboarding

Messages and statuses, nearly all of the events, are never linked to an onboarding; a partial index keeps
them off the index on the webhook's write path. Queries by onboarding (``onboarding_id = ?``) use it on
both databases.

Revision ID: 9a1c3e7b2d40
Revises: 5e472cf3338b
Create Date: 2026-11-26 01:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '9a1c3e7b2d40'
down_revision = '5e472cf3338b'
branch_labels = None
depends_on = None

NAME = 'ix_webhook_events_onboarding_id_received_at'
LINKED = sa.text('onboarding_id IS NOT NULL')


def upgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(NAME)
        batch_op.create_index(NAME, ['onboarding_id', 'received_at'], unique=False, sqlite_where=LINKED,
                              postgresql_where=LINKED)


def downgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(NAME)
        batch_op.create_index(NAME, ['onboarding_id', 'received_at'], unique=False)
