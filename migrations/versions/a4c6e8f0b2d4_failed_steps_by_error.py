"""onboarding steps: index the failed ones by Meta's error

The dashboard's "Failed onboardings" and "Codes Meta did not recognise" ask which onboardings' code
exchange failed with Meta's invalid-code error; without an index that was a scan of every step (50 ms at a
million steps on PostgreSQL, for each of the two signals, twice). Only failed steps carry an error code, so
a partial index stays small and off the write path of the steps that succeed.

Revision ID: a4c6e8f0b2d4
Revises: e5b7d9f1a3c6
"""
import sqlalchemy as sa
from alembic import op

revision = 'a4c6e8f0b2d4'
down_revision = 'e5b7d9f1a3c6'
branch_labels = None
depends_on = None

NAME = 'ix_onboarding_steps_error_code_error_subcode'
FAILED = sa.text('error_code IS NOT NULL')


def upgrade():
    with op.batch_alter_table('onboarding_steps', schema=None) as batch_op:
        batch_op.create_index(NAME, ['error_code', 'error_subcode'], unique=False, sqlite_where=FAILED,
                              postgresql_where=FAILED)


def downgrade():
    with op.batch_alter_table('onboarding_steps', schema=None) as batch_op:
        batch_op.drop_index(NAME)
