"""What each field Meta sends changes: one function per field, in the module of the record it changes
(``waba``, ``phone``, ``template``), and :data:`APPLIERS`, the table that names them.

An applier gets the :class:`~esu.webhooks.records.Event` and the batch's
:class:`~esu.webhooks.records.Records`, loaded and locked already. It sets facts only when the event is
not older than the one that last set them, and keeps the event's time with them: ``set_if_newer`` does
both for facts set together, and an applier whose facts depend on what the record holds compares
``event.newer_than`` itself. It raises when the change is not one it can apply (the event is then
``failed``, with the error), and calls ``event.ignore(reason)`` when the change names a record esu does
not have. A change that names none at all (no id, or a placeholder: ``records.unnamed``) never reaches it:
``applying`` ignores it with what is missing.

A new field: its function, in the module of the record it changes; a line in :data:`APPLIERS`; and its
name in the set of ``values`` that names that record (``WABA_FIELDS``, ``PHONE_FIELDS``,
``TEMPLATE_FIELDS``), which tells parsing to keep its changes for applying and ``Records`` what to load
and lock. A field about another kind of record needs a set of its own there, and its loading in
``Records``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..records import Event, Records
from .coexistence import apply_history, apply_smb_app_state_sync
from .phone import apply_phone_number_name_update, apply_phone_number_quality_update, apply_security
from .template import (
    apply_message_template_quality_update,
    apply_message_template_status_update,
    apply_template_category_update,
)
from .waba import apply_account_review_update, apply_account_update, apply_business_capability_update

APPLIERS: dict[str, Callable[[Event, Records], None]] = {
    "account_update": apply_account_update,
    "account_review_update": apply_account_review_update,
    "business_capability_update": apply_business_capability_update,
    "phone_number_name_update": apply_phone_number_name_update,
    "phone_number_quality_update": apply_phone_number_quality_update,
    "security": apply_security,
    "history": apply_history,
    "smb_app_state_sync": apply_smb_app_state_sync,
    "message_template_status_update": apply_message_template_status_update,
    "template_category_update": apply_template_category_update,
    "message_template_quality_update": apply_message_template_quality_update,
}
