"""the last live check of the Meta app

``flask --app wsgi check --live`` keeps what it found, so the admin dashboard can show it.

Revision ID: d7a2c9e4f615
Revises: d8a2c4e6f1b3
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'd7a2c9e4f615'
down_revision = 'd8a2c4e6f1b3'

TABLE = 'live_checks'


def upgrade():
    op.create_table(
        TABLE,
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('findings', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f(f'ck_{TABLE}_last_only')),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{TABLE}')),
    )


def downgrade():
    op.drop_table(TABLE)
