"""the assets a customer shared in Embedded Signup

Every WABA of an onboarding (several in a multi-WABA flow) and the v4 products' assets (ad accounts, Pages,
datasets, catalogs, Instagram accounts), one row each.

Revision ID: d7a9c1e3f5b2
Revises: d7a2c9e4f6b8
"""
from alembic import op
import sqlalchemy as sa

revision = 'd7a9c1e3f5b2'
down_revision = 'd7a2c9e4f6b8'

TABLE = 'onboarding_assets'


def upgrade():
    op.create_table(
        TABLE,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('onboarding_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(32), nullable=False),
        sa.Column('asset_id', sa.String(32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{TABLE}')),
        sa.ForeignKeyConstraint(['onboarding_id'], ['onboardings.id'],
                                name=op.f(f'fk_{TABLE}_onboarding_id_onboardings'), ondelete='CASCADE'),
        sa.UniqueConstraint('onboarding_id', 'kind', 'asset_id',
                            name=op.f(f'uq_{TABLE}_onboarding_id_kind_asset_id')),
    )
    op.create_index('ix_onboarding_assets_kind_asset_id', TABLE, ['kind', 'asset_id'])
    # The WABA each onboarding already names is its first asset.
    op.execute(f"INSERT INTO {TABLE} (onboarding_id, kind, asset_id, created_at) "
               "SELECT id, 'waba', waba_id, created_at FROM onboardings WHERE waba_id IS NOT NULL")


def downgrade():
    op.drop_table(TABLE)  # its index goes with it
