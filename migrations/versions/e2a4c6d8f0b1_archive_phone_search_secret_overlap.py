"""archived onboardings, their numbers in E.164 for search, a forwarding target's previous secret

- ``onboardings.archived_at``: the admin archives test data and duplicates out of lists, charts and funnels.
- ``onboardings.phone_e164``: the number in one form (``+6281234567890``), so any typed form of it finds the
  onboarding; filled here from ``display_phone_number``.
- ``forwarding_targets.previous_secret`` and ``previous_secret_until``: a rotated secret keeps signing
  beside the new one for a while (Standard Webhooks' zero-downtime rotation).

Revision ID: e2a4c6d8f0b1
Revises: d7a2c9e4f615
"""

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision = "e2a4c6d8f0b1"
down_revision = 'd7a2c9e4f615'

onboardings = sa.table(
    "onboardings",
    sa.column("id", sa.Integer()),
    sa.column("display_phone_number", sa.String()),
    sa.column("phone_e164", sa.String()),
)


def e164(display):
    """Meta's display number (always with its country code, ``+`` or not) in E.164; None when it is not one.
    Written out here: a migration must not change when the app's code does."""
    text = (display or "").strip()
    if not text or not any(char.isdigit() for char in text):
        return None
    try:
        number = phonenumbers.parse(text if text.startswith("+") else "+" + text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def upgrade():
    # Plain ALTER TABLEs, no batch mode: SQLite's table copy would lose the expression indexes on onboardings.
    op.add_column("onboardings", sa.Column("phone_e164", sa.String(length=16), nullable=True))
    op.add_column("onboardings", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_onboardings_phone_e164"), "onboardings", ["phone_e164"], unique=False)
    op.add_column("forwarding_targets", sa.Column("previous_secret", sa.Text(), nullable=True))
    op.add_column("forwarding_targets", sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(onboardings.c.id, onboardings.c.display_phone_number).where(
            onboardings.c.display_phone_number.is_not(None)
        )
    ).all()
    for onboarding_id, display in rows:
        number = e164(display)
        if number is not None:
            connection.execute(onboardings.update().where(onboardings.c.id == onboarding_id).values(phone_e164=number))


def downgrade():
    op.drop_column("forwarding_targets", "previous_secret_until")
    op.drop_column("forwarding_targets", "previous_secret")
    op.drop_index(op.f("ix_onboardings_phone_e164"), table_name="onboardings")
    op.drop_column("onboardings", "archived_at")
    op.drop_column("onboardings", "phone_e164")
