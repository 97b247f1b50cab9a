"""a signup page's former slugs

A changed slug broke every link to the page; its former slugs now answer with a redirect to the current one.

Revision ID: c4e6f8a0b1d3
Revises: b3d5e7f90a12
"""
from alembic import op
import sqlalchemy as sa

revision = 'c4e6f8a0b1d3'
down_revision = 'b3d5e7f90a12'


def upgrade():
    op.create_table('signup_page_former_slugs',
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['page_id'], ['signup_pages.id'], name=op.f('fk_signup_page_former_slugs_page_id_signup_pages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('slug', name=op.f('pk_signup_page_former_slugs'))
    )
    with op.batch_alter_table('signup_page_former_slugs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signup_page_former_slugs_page_id'), ['page_id'], unique=False)


def downgrade():
    with op.batch_alter_table('signup_page_former_slugs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signup_page_former_slugs_page_id'))
    op.drop_table('signup_page_former_slugs')
