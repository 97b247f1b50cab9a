"""onboarding steps keep Meta's whole error: error_data and whether it was transient

Meta's envelope carries ``error_data`` (``details``) and ``is_transient``; a step kept neither, so the admin
could not read the details and the customer was offered "try again" for errors that never pass.

Revision ID: b3e1f0a9c2d7
Revises: f7bc0ea24b18
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = 'b3e1f0a9c2d7'
down_revision = 'f7bc0ea24b18'

def columns():
    return [sa.Column('error_data', sa.JSON().with_variant(JSONB(), 'postgresql'), nullable=True),
            sa.Column('error_transient', sa.Boolean(), nullable=True)]


def upgrade():
    with op.batch_alter_table('onboarding_steps') as batch_op:
        for column in columns():
            batch_op.add_column(column)


def downgrade():
    with op.batch_alter_table('onboarding_steps') as batch_op:
        for column in reversed(columns()):
            batch_op.drop_column(column.name)
