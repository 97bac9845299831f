"""Personal data masked out of text that is logged or stored (log lines, sync-log messages,
failure reasons, payload excerpts).

Below ``state`` and ``runtime`` alike (it imports nothing of erpsync), so the sync log masks what it
stores and the logger what it prints with the same rules:

- emails keep their first letter and domain (``j***@example.com``): enough to tell two apart;
- phone numbers keep their last two digits (10 to 15 digits with a separator; dates, amounts and
  order numbers stay);
- the value of a personal field is hidden wherever the text quotes a record: JSON and Python
  reprs (``"lastname": "Costello"``, ``'postcode': '49628'``), Acumatica's value wrappers
  (``"LastName": {"value": "Costello"}``), escaped JSON inside JSON, a payload excerpt cut short in
  the middle of a value, and ``key=value`` reprs (``firstname='Veronica'``, a validation
  error's ``input_value='...'``). Personal fields: names, street lines, postcodes, phones (``PERSONAL``).

Free text naming a person without a field ("order for Veronica Costello") cannot be recognised;
messages are written from ids, not names, for that reason.
"""

from __future__ import annotations

import re
from typing import Any

PERSONAL = (
    # names (Magento, Acumatica contacts and customers)
    "firstname",
    "lastname",
    "middlename",
    "first_name",
    "last_name",
    "middle_name",
    "customer_firstname",
    "customer_lastname",
    "customer_middlename",
    "fullname",
    "full_name",
    "displayname",
    "attention",
    "customername",
    "businessname",
    "contactname",
    "prefix",
    "suffix",
    # street lines
    "street",
    "street1",
    "street2",
    "street3",
    "addressline1",
    "addressline2",
    "addressline3",
    "address_line1",
    "address_line2",
    "address1",
    "address2",
    # postcodes
    "postcode",
    "postalcode",
    "postal_code",
    "zip",
    "zipcode",
    "zip_code",
    # phones
    "telephone",
    "phone",
    "phone1",
    "phone2",
    "phone3",
    "fax",
    "mobile",
    # other personal identifiers Magento keeps on a customer
    "dob",
    "taxvat",
    "vat_id",
)
"""Field names (case-insensitive) whose values are personal data."""

HIDDEN = "***"

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+)(\.[A-Za-z0-9.-]+)")
PHONE = re.compile(r"(?<![\w.:-])\+?\(?\d[\d ()-]{6,}\d(?![\w.:-])")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_KEYS = "|".join(sorted(PERSONAL, key=len, reverse=True))
_VALUE = (
    r"\\\"(?:[^\\]|\\(?!\"))*(?:\\\"|$)"  # an escaped string inside a JSON string
    r"|\"(?:[^\"\\]|\\.)*(?:\"|$)"  # "...", or cut short at the end of an excerpt
    r"|'(?:[^'\\]|\\.)*(?:'|$)"  # '...'
    r"|\[[^\]]*(?:\]|$)"  # ["6146 Honey Bluff Parkway"] (a list of street lines)
    r"|-?\d[\d.]*"  # 49628 (a postcode as a number)
)
_WRAPPER = r"(?:\{\s*\\?[\"']value\\?[\"']\s*:\s*)?"
"""Acumatica's ``{"value": ...}`` around a field's value."""
QUOTED_FIELD = re.compile(rf"((\\?[\"'])(?:{_KEYS})\2\s*:\s*{_WRAPPER})({_VALUE})", re.IGNORECASE)
"""``"lastname": "Costello"`` and its kin: group 1 keeps the key; the value goes."""
ASSIGNED_FIELD = re.compile(
    rf"(\b(?:{_KEYS}|input_value)=)(?:'(?:[^'\\]|\\.)*(?:'|$)|\"(?:[^\"\\]|\\.)*(?:\"|$)|\[[^\]]*(?:\]|$)|[^\s,)\]]+)",
    re.IGNORECASE,
)
"""``firstname='Veronica'`` (a model's repr), ``input_value='...'`` (a validation error quoting its input)."""


def mask(text: str) -> str:
    """``text`` with personal fields hidden, emails kept to their first letter and domain, phones
    to their last two digits."""
    if not text:
        return text
    if ":" in text:
        text = QUOTED_FIELD.sub(_hide_quoted, text)
    if "=" in text:
        text = ASSIGNED_FIELD.sub(rf"\1'{HIDDEN}'", text)
    if "@" in text:
        text = EMAIL.sub(r"\1***@\2\3", text)
    return PHONE.sub(_phone, text)


def mask_value(value: Any) -> Any:
    """``value`` with every string in it masked (dicts and lists walked; keys of personal fields
    have their whole value hidden)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: HIDDEN if _personal(k) and v is not None else mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def _personal(key: Any) -> bool:
    return isinstance(key, str) and key.lower() in _PERSONAL_SET


_PERSONAL_SET = frozenset(PERSONAL)


def _hide_quoted(m: re.Match[str]) -> str:
    """The key (and a value wrapper) kept, the value hidden in the quotes it had."""
    head, key_quote, value = m.group(1), m.group(2), m.group(3)
    if value.startswith("["):
        return f"{head}[{key_quote}{HIDDEN}{key_quote}]"
    if value.startswith('\\"'):
        q = '\\"'
    elif value[:1] in ("'", '"'):
        q = value[0]
    else:
        q = key_quote
    return f"{head}{q}{HIDDEN}{q}"


def _phone(m: re.Match[str]) -> str:
    """A phone number has 10 to 15 digits and a separator; dates and plain numbers stay."""
    raw = m.group()
    digits = re.sub(r"\D", "", raw)
    if not 10 <= len(digits) <= 15 or raw.isdigit() or DATE.search(raw):
        return raw
    return "***" + digits[-2:]
