"""The admin's forms: login, POST-only buttons, list filters, the signup page editor and forwarding targets."""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from flask import session
from flask_babel import gettext
from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ... import embedding
from ... import prefill as prefill_setup
from ...cli import SLUG
from ...config import CREDIT_CURRENCIES
from ...extensions import db
from ...forwarding import KNOWN_FIELDS
from ...i18n import LANGUAGES
from ...i18n import lazy_gettext as _l
from ...models import OnboardingStatus, SignupPage
from ...models.admin import MAX_PASSWORD_LENGTH
from ...models.forwarding import DeliveryStatus
from ...onboarding.registration import LOCAL_STORAGE_REGIONS

# ISO 3166-1 alpha-2: the countries Meta's pre-fill accepts for the business address.
COUNTRY_CODES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())  # noqa: SIM905  (249 codes read better as a block than as 249 quoted strings)
# Meta's pre-fill writes time zones as UTC offsets: UTC-07:00, UTC+05:30, UTC+00:00.
TIMEZONE = re.compile(r"^UTC[+-](0[0-9]|1[0-4]):(00|15|30|45)\Z")
#: Meta's ids: ASCII digits ([0-9]; Python's \d also takes other scripts' digits).
META_ID = r"^[0-9]{1,32}\Z"
FEATURE_TYPES = [
    SelectChoice("", _l("Cloud API (new or existing number)")),
    SelectChoice("whatsapp_business_app_onboarding", _l("WhatsApp Business app number (coexistence)")),
]
WEBSITE_MESSAGE = _l("Enter a full address starting with https:// or http://.")
#: What a signup page speaks; "" (stored as NULL) is each visitor's browser's language.
LANGUAGE_CHOICES = [SelectChoice("", _l("The visitor's browser (English when it asks for none of these)"))] + [
    SelectChoice(code, name) for code, name in LANGUAGES.items()]
STATUS_CHOICES = [SelectChoice("", _l("Any status"))] + [SelectChoice(status.value, status.value.replace("_", " "))
                                                    for status in OnboardingStatus]
#: The onboardings list hides archived ones unless asked.
ARCHIVED_CHOICES = [SelectChoice("", _l("Hidden")), SelectChoice("only", _l("Only archived")),
                    SelectChoice("all", _l("Shown too"))]
WEBHOOK_STATUS_CHOICES = [SelectChoice("", _l("Any")), SelectChoice("applied"), SelectChoice("stored", _l("stored (not applied yet)")),
                          SelectChoice("ignored"), SelectChoice("failed"), SelectChoice("unparseable")]
#: "undelivered" is failed or dead: what replay sends again.
DELIVERY_STATUS_CHOICES = [SelectChoice("", _l("Any")), SelectChoice("undelivered", _l("failed or dead (replayable)"))] + [
    SelectChoice(status.value) for status in DeliveryStatus]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class EmptyForm(FlaskForm):
    """A POST-only button: nothing but the CSRF token."""


class LoginForm(FlaskForm):
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    next = HiddenField()


class FilterForm(FlaskForm):
    """A GET form: read from the query string, no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False


class OnboardingFilterForm(FilterForm):
    q = StringField(_l("Search"), filters=[_strip], validators=[Optional(), Length(max=100)],
                    description=_l("Any part of the business name; the number in any form (national in the page's "
                                   "country); the reference the customer saw (onboarding 42); a WABA, number or "
                                   "business id"))
    status = SelectField(_l("Status"), choices=STATUS_CHOICES, default="")
    page = SelectField(_l("Page"), choices=[SelectChoice("", _l("Any page"))], default="")
    archived = SelectField(_l("Archived"), choices=ARCHIVED_CHOICES, default="")


class WebhookFilterForm(FilterForm):
    field = StringField(_l("Field"), filters=[_strip], validators=[Optional(), Length(max=64)],
                        description=_l("e.g. account_update, messages"))
    waba = StringField(_l("WABA id"), filters=[_strip], validators=[Optional(), Regexp(META_ID,
                       message=_l("A WABA id is digits only."))])
    status = SelectField(_l("Status"), choices=WEBHOOK_STATUS_CHOICES, default="")


class DeliveryFilterForm(FilterForm):
    status = SelectField(_l("Status"), choices=DELIVERY_STATUS_CHOICES, default="")


class CheckboxesField(SelectMultipleField):
    """Several choices as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ForwardingTargetForm(FlaskForm):
    """Where a client's events go. Whether esu may send there is the forwarding policy's call (the view
    asks it), not a validator's: it depends on the environment and on DNS."""

    #: The add form's one-time token (``issue_once``): reloading the answer that showed a new target's secret
    #: sends the form again, which must not add the target twice.
    once = HiddenField()

    url = StringField(_l("URL"), filters=[_strip], validators=[DataRequired(), Length(max=2048)],
                      description=_l("The client's endpoint; https:// except in development."))
    fields = CheckboxesField(_l("Fields"), description=_l("None checked: every field, also ones Meta adds later."))

    def __init__(self, *args, current_fields: list[str] | tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        # A target saved with a field the list does not know (from the shell) keeps it when edited here.
        self.fields.choices = [*KNOWN_FIELDS, *(name for name in current_fields if name not in KNOWN_FIELDS)]


_ONCE = "admin_forms_once"
#: Add forms open at once (tabs); past that the oldest token goes.
_MAX_OPEN_FORMS = 20


def issue_once() -> str:
    """A token for one form, kept in the admin's session until the form is used."""
    token = secrets.token_urlsafe(16)
    session[_ONCE] = [*session.get(_ONCE, [])[-(_MAX_OPEN_FORMS - 1):], token]
    return token


def once_is_used(token: str | None) -> bool:
    """Whether the form carrying ``token`` was already sent (a form without one is not checked)."""
    return bool(token) and token not in session.get(_ONCE, [])


def use_once(token: str | None) -> None:
    session[_ONCE] = [issued for issued in session.get(_ONCE, []) if issued != token]


class SignupPageForm(FlaskForm):
    """A signup page and the pre-fill Meta's dialog opens with (``extras.setup.business``)."""

    slug = StringField(_l("Slug"), filters=[_strip], validators=[DataRequired(), Regexp(
        SLUG, message=_l("Use lowercase letters, digits and '-' (not first or last), at most 64 characters."))],
        description=_l("The page's address: /signup/<slug>."))
    title = StringField(_l("Title"), filters=[_strip], validators=[DataRequired(), Length(max=200)])
    client_name = StringField(_l("Client"), filters=[_strip], validators=[Optional(), Length(max=200)])
    intro = TextAreaField(_l("Introduction"), filters=[_strip], validators=[Optional(), Length(max=2000)])
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES, default="",
                           description=_l("What the page, the widget and Meta's dialog speak to the customer."))
    config_id = StringField(_l("Configuration id"), filters=[_strip], validators=[Optional(), Regexp(
        META_ID, message=_l("A Facebook Login for Business configuration id is digits only."))],
        description=_l("Leave empty to use META_CONFIG_ID."))
    feature_type = SelectField(_l("Signup flow"), choices=FEATURE_TYPES, default="")
    data_localization_region = SelectField(
        _l("Local storage"), default="", choices=[SelectChoice("", _l("None: Meta's data centres"))] + [
            SelectChoice(code, f"{name} ({code})") for code, name in LOCAL_STORAGE_REGIONS.items()],
        description=_l("Where Meta keeps the numbers' messages at rest, sent when registering them. Meta's list; "
                       "it cannot be changed later without deregistering the number."))
    credit_currency = SelectField(
        _l("Credit line currency"), default="",
        choices=[SelectChoice("", _l("The default (ESU_CREDIT_CURRENCY)"))]
        + [SelectChoice(code) for code in CREDIT_CURRENCIES],
        description=_l("Solution Partners: the currency our credit line invoices this page's customers in."))
    business_name = StringField(_l("Business name"), filters=[_strip], validators=[Optional(), Length(max=100)])
    email = StringField(_l("Email"), filters=[_strip], validators=[Optional(), Length(max=254), Regexp(
        r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("Enter an email address."))])
    website = StringField(_l("Website"), filters=[_strip], validators=[
        Optional(), Length(max=500), Regexp(r"^https?://", re.IGNORECASE, message=WEBSITE_MESSAGE),
        URL(message=WEBSITE_MESSAGE)])
    phone_code = IntegerField(_l("Country calling code"), validators=[Optional(), NumberRange(
        min=1, max=999, message=_l("A calling code is 1 to 3 digits, e.g. 1 or 44."))])
    phone_number = StringField(_l("Phone number"), filters=[_strip], validators=[Optional(), Regexp(
        r"^[0-9]{4,15}\Z", message=_l("Digits only, without the country code."))])
    country = StringField(_l("Country"), filters=[_strip, lambda value: value.upper() if isinstance(value, str) else value],
                          validators=[Optional()], description=_l("ISO 3166 two-letter code, e.g. US."))
    timezone = StringField(_l("Time zone"), filters=[_strip], validators=[Optional(), Regexp(
        TIMEZONE, message=_l("Write it as Meta does: UTC-07:00, UTC+05:30."))])
    embed_origins = TextAreaField(
        _l("Sites that may embed this page"), filters=[_strip], validators=[Optional(), Length(max=6000)],
        description=_l("One site a line, as its origin: https://www.client-site.com (with :port if it has one). "
                       "Empty: no other site may show this page."))

    def __init__(self, *args, page: SignupPage | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.page = page

    def validate_slug(self, field) -> None:
        taken = sa.select(SignupPage.id).where(SignupPage.slug == field.data)
        if self.page is not None:
            taken = taken.where(SignupPage.id != self.page.id)
        if db.session.scalar(taken) is not None:
            raise ValidationError(gettext("A signup page '%(slug)s' already exists.", slug=field.data))

    def validate_embed_origins(self, field) -> None:
        try:
            embedding.parse_origins(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_country(self, field) -> None:
        if field.data and field.data not in COUNTRY_CODES:
            raise ValidationError(gettext("Not an ISO 3166 two-letter country code."))

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        # Checked here: Optional() ends a field's own validators when it is empty.
        if bool(self.phone_number.data) != (self.phone_code.data is not None):
            self.phone_number.errors = [*self.phone_number.errors,
                                        gettext("Give both the calling code and the number, or neither.")]
            valid = False
        return valid

    def page_fields(self) -> dict:
        """The SignupPage columns this form sets."""
        return {
            "slug": self.slug.data,
            "title": self.title.data,
            "client_name": self.client_name.data or None,
            "intro": self.intro.data or None,
            "config_id": self.config_id.data or None,
            "feature_type": self.feature_type.data,
            "language": self.language.data or None,
            "data_localization_region": self.data_localization_region.data or None,
            "credit_currency": self.credit_currency.data or None,
            "prefill": self.prefill(),
            "embed_origins": embedding.parse_origins(self.embed_origins.data),
        }

    def prefill(self) -> dict:
        """``extras.setup`` for Meta's dialog, with only what was filled in (and what the form does not
        show, such as ``preVerifiedPhone`` set from the shell, kept)."""
        kept = {key: value for key, value in (self.page.prefill if self.page else {}).items() if key != "business"}
        phone = {"code": self.phone_code.data, "number": self.phone_number.data} if self.phone_number.data else None
        return {**kept, **prefill_setup.from_business({
            "name": self.business_name.data, "email": self.email.data, "website": self.website.data,
            "phone": phone, "address": {"country": self.country.data}, "timezone": self.timezone.data})}

    def fill_from(self, page: SignupPage) -> None:
        """Show an existing page's values (on GET)."""
        self.slug.data, self.title.data, self.client_name.data = page.slug, page.title, page.client_name
        self.intro.data, self.config_id.data, self.feature_type.data = page.intro, page.config_id, page.feature_type
        self.language.data = page.language or ""
        self.data_localization_region.data = page.data_localization_region or ""
        self.credit_currency.data = page.credit_currency or ""
        business = prefill_setup.business_of(page.prefill)
        phone = business.get("phone") or {}
        self.business_name.data = business.get("name")
        self.email.data = business.get("email")
        self.website.data = business.get("website")
        self.phone_code.data = phone.get("code")
        self.phone_number.data = phone.get("number")
        self.country.data = (business.get("address") or {}).get("country")
        self.timezone.data = business.get("timezone")
        self.embed_origins.data = "\n".join(page.embed_origins or ())
