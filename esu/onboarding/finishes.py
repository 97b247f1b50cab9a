"""How the customer finished Embedded Signup, and so which steps apply: each finish event is a route through
``STEPS`` (the README's table says which steps each runs, and why), and how esu is set up (Solution
Partner or Tech Provider) decides the credit line. Each function answers a reason to skip a step, or None.
"""

from __future__ import annotations

from .context import Context

# The events that end Embedded Signup (embedded-signup/implementation.md, FLOW_FINISH_TYPE), each a route
# through the steps. A new one is named here and in FINISH_EVENTS; the ``applies`` functions below say which
# steps it leaves out, and the README's table says why. Any other ``FINISH_*`` Meta may add is kept as sent
# and runs only the exchange, the confirmation and the reads (``unknown_finish``).
FINISH = "FINISH"
FINISH_ONLY_WABA = "FINISH_ONLY_WABA"
FINISH_COEXISTENCE = "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING"
FINISH_OBO_MIGRATION = "FINISH_OBO_MIGRATION"
FINISH_GRANT_ONLY_API_ACCESS = "FINISH_GRANT_ONLY_API_ACCESS"
FINISH_EVENTS = (FINISH, FINISH_ONLY_WABA, FINISH_COEXISTENCE, FINISH_OBO_MIGRATION, FINISH_GRANT_ONLY_API_ACCESS)
#: The finishes whose number is already in use on the platform: it is registered only when Meta does not
#: show it connected to Cloud API already (``run_register``).
FINISH_NUMBER_IN_USE = (FINISH_OBO_MIGRATION, FINISH_GRANT_ONLY_API_ACCESS)
#: Why the number steps did not run for a WABA that has no number yet (any finish: allowed since v3).
NO_NUMBER_YET = "the WhatsApp Business Account has no phone number yet: connected, with a number to add"


def unknown_finish(ctx: Context) -> str | None:
    """Why a step that changes something at Meta does not run for a finish esu does not know, or None."""
    if ctx.event in FINISH_EVENTS:
        return None
    return (f"Meta reported a finish esu does not know ({ctx.event}): only the code exchange, the "
            "confirmation and the reads run")


def applies_always(ctx: Context) -> str | None:
    return None


def subscribes(ctx: Context) -> str | None:
    return unknown_finish(ctx)


def partner_only(ctx: Context) -> str | None:
    if not ctx.solution_partner:
        return "Tech Provider: the customer pays Meta directly (no META_CREDIT_LINE_ID)"
    if ctx.event == FINISH_GRANT_ONLY_API_ACCESS:
        # App-Only Install (embedded-signup/app-only-install.md): only the customer's business token reaches
        # their assets, not our system user; sharing the credit line needs our system user on the WABA
        # (onboarding-business-customers-as-a-solution-partner.md, step 3).
        return "App-Only Install: only the customer's business token reaches their account, not our system user"
    return unknown_finish(ctx)


def has_phone(ctx: Context) -> str | None:
    if ctx.event == FINISH_ONLY_WABA and not ctx.phone_number_id:
        return "the customer finished without a phone number"
    return None


def syncs(ctx: Context) -> str | None:
    """The one-shot syncs ask Meta to send the app's data as webhooks: they change something at Meta, and
    need the subscription, which an unknown finish does not make."""
    return has_phone(ctx) or unknown_finish(ctx)


def registers(ctx: Context) -> str | None:
    if ctx.event == FINISH_ONLY_WABA and not ctx.phone_number_id:
        return "the customer finished without a phone number"
    if ctx.event == FINISH_COEXISTENCE:
        return "WhatsApp Business app numbers stay registered on the app; their data is synced instead"
    return unknown_finish(ctx)
