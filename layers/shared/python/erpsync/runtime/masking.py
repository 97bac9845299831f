"""Personal data never reaches the logs: emails, phone numbers and street lines are masked."""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+)(\.[A-Za-z0-9.-]+)")
PHONE = re.compile(r"(?<![\w.:-])\+?\(?\d[\d ()-]{6,}\d(?![\w.:-])")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
STREET = re.compile(r"(\"(?:street|AddressLine1|AddressLine2|telephone|Phone1)\"\s*:\s*)(\"[^\"]*\"|\[[^\]]*\])")


def mask(text: str) -> str:
    """``text`` with emails kept to their first letter and domain, phones and street lines hidden."""
    text = STREET.sub(r'\1"***"', text)
    text = EMAIL.sub(r"\1***@\2\3", text)
    return PHONE.sub(_phone, text)


def _phone(m: re.Match[str]) -> str:
    """A phone number has 10 to 15 digits and a separator; dates and plain numbers stay."""
    raw = m.group()
    digits = re.sub(r"\D", "", raw)
    if not 10 <= len(digits) <= 15 or raw.isdigit() or DATE.search(raw):
        return raw
    return "***" + digits[-2:]


class MaskingFilter(logging.Filter):
    """Masks the formatted message of every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install(level: str = "INFO") -> None:
    """Configure the root logger once, with masking on every handler."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s %(message)s")
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
