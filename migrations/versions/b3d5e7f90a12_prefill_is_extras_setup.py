"""a signup page's pre-fill is Meta's extras.setup

Pages stored their pre-fill in two shapes: the admin's form wrote ``{"business": {...}}`` (extras.setup), pages
made from the shell or CLI the business object alone (``{"name": ..., "phone": {...}}``), and the widget
wrapped either in ``business`` again, so Meta's dialog never saw it. Now every page stores extras.setup
(esu.prefill); this rewrites the flat ones. Downgrading gives the old code the flat shape it read.

Revision ID: b3d5e7f90a12
Revises: b3e1f0a9c2d7
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'b3d5e7f90a12'
down_revision = 'b3e1f0a9c2d7'

# Copied from esu.prefill as it is today: a migration must not change when the app's code does.
SETUP_KEYS = {'business', 'preVerifiedPhone', 'phone', 'whatsAppBusinessAccount'}

pages = sa.table('signup_pages', sa.column('id', sa.Integer()),
                 sa.column('prefill', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')))


def as_setup(prefill):
    """extras.setup from either stored shape (None when it already is one)."""
    if not isinstance(prefill, dict) or not prefill:
        return None
    business = prefill.get('business')
    if set(prefill) == {'business'} and isinstance(business, dict) and set(business) == {'business'}:
        return {'business': business['business']}  # wrapped twice
    flat_phone = isinstance(prefill.get('phone'), dict) and {'code', 'number'} & set(prefill['phone'])
    if set(prefill) - SETUP_KEYS or (flat_phone and 'business' not in prefill):
        return {'business': prefill}
    return None


def rewrite(change):
    connection = op.get_bind()
    for page_id, prefill in connection.execute(sa.select(pages.c.id, pages.c.prefill)).all():
        changed = change(prefill)
        if changed is not None:
            connection.execute(pages.update().where(pages.c.id == page_id).values(prefill=changed))


def upgrade():
    rewrite(as_setup)


def downgrade():
    rewrite(lambda prefill: prefill['business'] if isinstance(prefill, dict) and set(prefill) == {'business'}
            else None)
