"""the Meta simulator's documents

Its businesses, WABAs, numbers, templates, codes, tokens, faults and the calls it served, in the app's
database so that every worker sees them (esu.simulator.store). Made in every database; only simulator mode
writes to it.

Revision ID: f7bc0ea24b18
Revises: 61b3ca8da662
"""
from alembic import op
import sqlalchemy as sa

revision = 'f7bc0ea24b18'
down_revision = '61b3ca8da662'

TABLE = 'meta_simulator_documents'
BY_PARENT = 'ix_meta_simulator_documents_kind_parent'


def upgrade():
    op.create_table(
        TABLE,
        sa.Column('seq', sa.Integer()),
        sa.Column('kind', sa.String(32), nullable=False),
        sa.Column('key', sa.String(200), nullable=False),
        sa.Column('parent', sa.String(64)),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_meta_simulator_documents')),
        sa.UniqueConstraint('kind', 'key', name=op.f('uq_meta_simulator_documents_kind_key')),
    )
    op.create_index(BY_PARENT, TABLE, ['kind', 'parent'])


def downgrade():
    op.drop_index(BY_PARENT, table_name=TABLE)
    op.drop_table(TABLE)
