"""a WhatsApp Business app number's contacts, as the smb_app_state_sync webhooks bring them

A number keeps how many contact changes the ``smb_app_state_sync`` webhooks brought (the contacts sync's, then
each one the business makes in the app) and Meta's time of the latest.

Revision ID: b3e5a7c9d1f2
Revises: d7a2c9e41f58
"""

import sqlalchemy as sa
from alembic import op

revision = "b3e5a7c9d1f2"
down_revision = "d7a2c9e41f58"


def upgrade():
    with op.batch_alter_table("phone_numbers") as batch_op:
        batch_op.add_column(sa.Column("contacts_received", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("contacts_received_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("phone_numbers") as batch_op:
        batch_op.drop_column("contacts_received_at")
        batch_op.drop_column("contacts_received")
