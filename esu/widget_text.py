"""The words the widget's script (``esu-signup.js``) shows, in the page's language.

The macro puts them in the widget's JSON block with its other settings, so the script carries no words of its
own and no inline script is needed (the strict Content-Security-Policy stays). ``%(name)s`` is filled in by
the script, as gettext's Python format would.
"""

from __future__ import annotations

from flask_babel import gettext

from .i18n import N_

#: Where the person was in Meta's dialog when they left, by the screen name Meta reports.
SCREENS = {
    "BUSINESS_ACCOUNT_SELECTION": N_("choosing your business portfolio"),
    "WABA_PHONE_PROFILE_PICKER": N_("choosing your WhatsApp Business account"),
    "WHATSAPP_BUSINESS_PROFILE_SETUP": N_("creating your WhatsApp Business profile"),
    "PHONE_NUMBER_SETUP": N_("adding your phone number"),
    "PHONE_NUMBER_VERIFICATION": N_("verifying your phone number"),
    "PERMISSIONS": N_("reviewing the permissions"),
}
#: What went wrong, by the step that failed, said for the person who signed up rather than for an engineer.
PROBLEMS = {
    "exchange_code": N_("Meta did not confirm your sign-up in time."),
    "confirm_ids": N_("Meta did not share your WhatsApp Business account with us."),
    "read_waba": N_("We could not read your WhatsApp Business account from Meta."),
    "subscribe_webhooks": N_("We could not connect your account so that messages reach us."),
    "assign_system_user": N_("We could not set up billing for your account."),
    "share_credit_line": N_("We could not set up billing for your account."),
    "read_phone_number": N_("We could not read your phone number from Meta."),
    "register_phone": N_("We could not switch on WhatsApp for your phone number."),
    "sync_contacts": N_("We could not start copying your WhatsApp Business app chats."),
    "sync_history": N_("We could not start copying your WhatsApp Business app chats."),
    "fetch_templates": N_("We could not load your message templates."),
    "request_code": N_("We could not send the verification code."),
    "verify_code": N_("The verification code was not accepted."),
}
#: A step's state in the list of steps.
STATES = {
    "pending": N_("Waiting"),
    "running": N_("In progress"),
    "ok": N_("Done"),
    "failed": N_("Failed"),
    "waiting": N_("Needs your code"),
    "waiting_meta": N_("Waiting for Meta"),
    "needs_pin": N_("Needs your PIN"),
}
MESSAGES = {
    "sdk_failed": N_(
        "The Facebook sign-up window could not load. Check your connection or ad blocker, then reload the page."
    ),
    "launched": N_("Finish the steps in the Facebook window; this page follows along."),
    "closed": N_("The Facebook window closed before you finished. Start again whenever you are ready."),
    "stopped": N_("You stopped while %(screen)s. Nothing was set up; start again whenever you are ready."),
    "signing_up": N_("signing up"),
    "dialog_error": N_("An error occurred in the signup window."),
    "meta_problem": N_("Meta reported a problem: %(message)s"),
    "meta_reference": N_("If you contact us, mention the reference %(reference)s."),
    "signed_up": N_("Meta signed you up. Finishing…"),
    "setting_up": N_("Setting up your WhatsApp Business account…"),
    "progress": N_("Setting up your WhatsApp Business account: %(done)s of %(total)s steps done."),
    "duplicate_title": N_("This sign-up was already received"),
    "duplicate_text": N_("We are already setting it up. If you hear nothing from us, start again."),
    "error_title": N_("Something went wrong on our side"),
    "error_text": N_("Please start again in a moment."),
    "done": N_("All done."),
    "connected_title": N_("You are connected"),
    "connected_number": N_("%(business)s can now send and receive WhatsApp messages on %(number)s."),
    "connected_waba": N_(
        "The WhatsApp Business account of %(business)s is connected, without a phone number yet. Add one in "
        "WhatsApp Manager whenever you are ready, and tell us: we will finish setting it up."
    ),
    "your_business": N_("Your business"),
    "problem": N_("One of the setup steps did not work."),
    "advice_retry": N_("This is usually temporary: try again in a moment."),
    "advice_restart": N_("You will need to go through the sign-up again."),
    "stopped_setup": N_("The setup stopped."),
    "failed_title": N_("We could not finish setting up your account"),
    "reference": N_("Reference: onboarding %(id)s."),
    "trying_again": N_("Trying again…"),
    "your_number": N_("your number"),
    "verify_intro": N_("Meta needs to check that %(number)s is yours. We will ask Meta to send it a 6-digit code."),
    "confirm_number": N_("One more thing: confirm your phone number."),
    "send_code": N_("Send the code"),
    "send_new_code": N_("Send a new code"),
    "request_failed": N_("We could not ask Meta for a code. Try again in a moment."),
    "sent_sms": N_("Meta sent a text message to %(number)s."),
    "sent_voice": N_("Meta is calling %(number)s."),
    "resend_in": N_("You can ask for a new code in %(seconds)s s."),
    "resend_now": N_("No code yet? You can ask for a new one now."),
    "enter_digits": N_("Enter the 6 digits of the code Meta sent."),
    "checking": N_("Checking the code…"),
    "code_failed": N_("That code did not work: %(reason)s"),
    "check_and_retry": N_("check it and try again."),
    # Coming back to a sign-up (a reload, a closed tab, the link we sent) and a dropped connection.
    "resume_welcome": N_("Welcome back: here is where your sign-up stopped."),
    "code_asked": N_("We already asked Meta for a code. Enter it below, or ask for a new one."),
    "stuck_title": N_("The setup was interrupted"),
    "stuck_text": N_("Our server stopped while setting up your account. Nothing is lost: try again to finish."),
    "dropped_title": N_("We could not reach our server"),
    "dropped_text": N_(
        "Your connection dropped before we could answer. Check your internet connection, then try again."
    ),
    "resume_unreachable": N_(
        "We could not reach our server to pick up your sign-up. Check your connection, then reload the page."
    ),
    "link_refused": N_(
        "This link to go on with your sign-up is not valid any more. Ask us for a new one, or start again."
    ),
    # A number that already has a two-step verification PIN.
    "your_number_title": N_("Your number"),
    "pin_intro": N_(
        "%(number)s already has two-step verification. Enter its 6-digit PIN to switch WhatsApp on for it."
    ),
    "pin_asked": N_("One more thing: your number's PIN."),
    "pin_digits": N_("Enter the 6 digits of the PIN."),
    "pin_switching": N_("Switching WhatsApp on for your number…"),
    "pin_wrong": N_("That is not the PIN of this number. Check it and try again."),
    "pin_failed": N_("That did not work. Try again in a moment."),
    # Meta is rate-limiting us: the server goes on by itself.
    "waiting_until": N_(
        "Meta asked us to slow down, so we are waiting until %(time)s. Setup then goes on by itself; you can leave "
        "this page."
    ),
    "waiting_soon": N_(
        "Meta asked us to slow down, so we are waiting a few minutes. Setup then goes on by itself; you can leave "
        "this page."
    ),
}


def texts() -> dict:
    """Every word of the script, in the request's language."""
    return {
        **{key: gettext(text) for key, text in MESSAGES.items()},
        "screens": {key: gettext(text) for key, text in SCREENS.items()},
        "problems": {key: gettext(text) for key, text in PROBLEMS.items()},
        "states": {key: gettext(text) for key, text in STATES.items()},
    }
