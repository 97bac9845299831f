"""Logging: one JSON object per line (for CloudWatch Logs Insights), personal data masked.

Emails keep their first letter and domain, phone numbers their last two digits, street lines
and phone fields are hidden. Extra fields given with ``extra={...}`` (flow, record, outcome,
error_type, ...) become top-level keys, so queries can filter on them.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

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


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"level", "logger", "message", ...extras}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = mask(value) if isinstance(value, str) else value
        if record.exc_info:
            doc["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


def install(level: str = "INFO", json_lines: bool = True) -> None:
    """Configure the root logger once: JSON lines (in Lambda) and masking on every handler."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
        if json_lines:
            for handler in root.handlers:
                handler.setFormatter(JsonFormatter())
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
