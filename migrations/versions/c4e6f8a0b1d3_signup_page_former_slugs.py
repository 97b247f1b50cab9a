"""a signup page's former slugs

A changed slug broke every link to the page; its former slugs now answer with a redirect to the current one.

Revision ID: c4e6f8a0b1d3
Revises: b3d5e7f90a12
"""
from alembic import op
import sqlalchemy as sa

revision = 'c4e6f8a0b1d3'
down_revision = 'b3d5e7f90a12'

TABLE = 'signup_page_former_slugs'


def upgrade():
    op.create_table(
        TABLE,
        sa.Column('slug', sa.String(64), primary_key=True),
        sa.Column('page_id', sa.Integer(), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('slug', name=op.f(f'pk_{TABLE}')),
        sa.ForeignKeyConstraint(['page_id'], ['signup_pages.id'], name=op.f(f'fk_{TABLE}_page_id_signup_pages'),
                                ondelete='CASCADE'),
    )
    op.create_index(op.f(f'ix_{TABLE}_page_id'), TABLE, ['page_id'])


def downgrade():
    op.drop_table(TABLE)  # its index goes with it
