"""the client sites that may embed a signup page

A signup page lists the origins allowed to show it in an iframe (its frame-ancestors); existing pages
allow none, as before.

Revision ID: d5f7a9b1c3e5
Revises: e2a4c6d8f0b1
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'd5f7a9b1c3e5'
down_revision = 'e2a4c6d8f0b1'


def upgrade():
    op.add_column('signup_pages', sa.Column('embed_origins', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'),
                                            server_default='[]', nullable=False))


def downgrade():
    with op.batch_alter_table('signup_pages') as batch:
        batch.drop_column('embed_origins')
