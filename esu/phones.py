"""Phone numbers: the one way esu shows them (international format, ``+62 812-3456-7890``), the one way it
compares them (E.164, ``+6281234567890``), and how a number typed in any form is read, with Google's
libphonenumber (the ``phonenumbers`` package).

Meta gives a number's ``display_phone_number`` as it pleases (``15551234567``, ``+1 555-123-4567``): always
with its country code, with or without ``+``. People type numbers as they know them, which in their own
country is often the national form (``081234567890`` in Indonesia): that needs a country to be read.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

#: What a typed number may hold besides its digits: one + (``+62``, ``(+62)``), spaces, dots, dashes, brackets.
NUMBER_LIKE = re.compile(r"^[ (]*\+?[0-9 ().-]+\Z")
#: Fewer digits than this is a piece of a number (or an id), not a number to read.
MIN_DIGITS = 6


def _parse(text: str, region: str | None = None) -> phonenumbers.PhoneNumber | None:
    """``text`` read as a number: international when it starts with ``+`` or, without a ``region``, with the
    country code in front of its digits (as Meta writes them); else national in ``region``. None when it
    cannot be a number."""
    text = (text or "").strip()
    if not NUMBER_LIKE.match(text) or sum(char.isdigit() for char in text) < MIN_DIGITS:
        return None
    if "+" not in text and region is None:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def international(value: str | None) -> str | None:
    """A number as esu shows it everywhere (admin and widget): ``+62 812-3456-7890``. A value that is not a
    number is shown as it is; None stays None. The ``phone`` filter of the templates."""
    if not value:
        return value
    number = _parse(value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL) if number else value


def e164(value: str | None, region: str | None = None) -> str | None:
    """A number as esu compares it: ``+6281234567890``; None when ``value`` is not one. A national number
    (``081234567890``) is read in ``region`` (ISO 3166 code); without one only international forms are."""
    national = (value or "").strip().lstrip("(")[:1] == "0"
    number = _parse(value or "", region if national else None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number else None


def page_region(prefill: dict[str, Any] | None) -> str | None:
    """The country a signup page is for, as its pre-fill says it: the business address's country, else the
    calling code of its phone. None when it says neither."""
    business = (prefill or {}).get("business")
    business = business if isinstance(business, dict) else {}
    address = business.get("address") if isinstance(business.get("address"), dict) else {}
    country = address.get("country")
    if isinstance(country, str) and country.strip().upper() in phonenumbers.SUPPORTED_REGIONS:
        return country.strip().upper()
    phone = business.get("phone") if isinstance(business.get("phone"), dict) else {}
    code = str(phone.get("code") or "").lstrip("+")
    if code.isascii() and code.isdigit():
        region = phonenumbers.region_code_for_country_code(int(code))
        return region if region in phonenumbers.SUPPORTED_REGIONS else None
    return None
