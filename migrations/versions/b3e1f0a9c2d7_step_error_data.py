"""onboarding steps keep Meta's whole error: error_data and whether it was transient

Meta's envelope carries ``error_data`` (``details``) and ``is_transient``; a step kept neither, so the admin
could not read the details and the customer was offered "try again" for errors that never pass.

Revision ID: b3e1f0a9c2d7
Revises: f7bc0ea24b18
Create Date: 2026-12-07 16:10:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'b3e1f0a9c2d7'
down_revision = 'f7bc0ea24b18'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('onboarding_steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'),
                                      nullable=True))
        batch_op.add_column(sa.Column('error_transient', sa.Boolean(), nullable=True))


def downgrade():
    with op.batch_alter_table('onboarding_steps', schema=None) as batch_op:
        batch_op.drop_column('error_transient')
        batch_op.drop_column('error_data')
