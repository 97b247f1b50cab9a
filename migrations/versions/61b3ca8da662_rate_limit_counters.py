"""rate limit counters: revision 61b3ca8da662, after 9a1c3e7b2d40 (2026-12-07)

Flask-Limiter's counters (admin logins, signup calls) when no Redis is configured, so that every worker
counts against the same limit (esu.rate_limits).
"""
import sqlalchemy as sa
from alembic import op

revision, down_revision = '61b3ca8da662', '9a1c3e7b2d40'


def upgrade():
    op.create_table('rate_limit_counters',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_limit_counters'))
    )
    with op.batch_alter_table('rate_limit_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_counters_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('rate_limit_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_counters_expires_at'))

    op.drop_table('rate_limit_counters')
