"""every onboarding's WABA among its assets

Forwarding finds the onboardings of an event's WABA among their `waba` assets. Onboardings that Meta's
PARTNER_ADDED webhook created had none: each onboarding with a `waba_id` gets that row, unless it has it.

Revision ID: e5b7d9f1a3c6
Revises: b3e5a7c9d1f2
"""
from alembic import op

revision = 'e5b7d9f1a3c6'
down_revision = 'b3e5a7c9d1f2'


def upgrade():
    op.execute(
        "INSERT INTO onboarding_assets (onboarding_id, kind, asset_id, created_at) "
        "SELECT o.id, 'waba', o.waba_id, o.created_at FROM onboardings o WHERE o.waba_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM onboarding_assets a "
        "WHERE a.onboarding_id = o.id AND a.kind = 'waba' AND a.asset_id = o.waba_id)")
    if op.get_bind().dialect.name == "postgresql":
        # Forwarding's routing joins this table for every batch of webhooks: without statistics after a
        # large backfill, PostgreSQL's planner walks every asset per event until autovacuum analyses it.
        op.execute("ANALYZE onboarding_assets")


def downgrade():
    # The rows added are true of their onboardings, and the code before this revision reads them too.
    pass
