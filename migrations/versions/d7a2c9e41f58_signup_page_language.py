"""a signup page's language

Customers read the page, the widget and Meta's dialog in the page's language; NULL is the visitor's browser's.

Revision ID: d7a2c9e41f58
Revises: d7a9c1e3f5b2
"""

from alembic import op
import sqlalchemy as sa

revision = "d7a2c9e41f58"
down_revision = "d7a9c1e3f5b2"


def upgrade():
    with op.batch_alter_table("signup_pages") as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(16), nullable=True))


def downgrade():
    with op.batch_alter_table("signup_pages") as batch_op:
        batch_op.drop_column("language")
