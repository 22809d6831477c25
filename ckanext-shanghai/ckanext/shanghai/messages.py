"""One type for what the portal refuses or warns about (a harvested record, a
source, an uploaded file): a stable code, the field, the raw value, and the
text in Chinese and in English, kept apart from where it is raised to the
report, the CSV, the API and the page."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["Message", "MessageError", "MessageText", "raw_text"]

# A raw value is shown so a person can find the record; a megabyte title
# need not be stored whole in every report that mentions it.
MAX_VALUE_LENGTH = 500
_CODE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def raw_text(value: Any) -> str | None:
    """A source value as text for a message: scalars as written, lists and
    objects as JSON, cut to ``MAX_VALUE_LENGTH`` characters; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, Decimal)):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE_LENGTH else text[:MAX_VALUE_LENGTH] + "…"


@dataclass(frozen=True)
class Message:
    """A rejection, warning or error.

    :param code: stable and machine-readable (``duplicate``, ``bad-number``,
        ``source-unreadable`` ...): what a program or a count keys on; the
        texts may be reworded, the code may not.
    :param zh: the text in Chinese.
    :param en: the text in English.
    :param field: the dataset field (or source column) it concerns, if any.
    :param value: the raw value as the source gave it, as text (see
        ``raw_text``), if any.
    """

    code: str
    zh: str
    en: str
    field: str | None = None
    value: str | None = None

    def __post_init__(self):
        if not _CODE.match(self.code):
            raise ValueError(f"message code {self.code!r} is not lower-case words joined by '-'")
        if not (self.zh and self.en):
            raise ValueError(f"message {self.code!r} needs a Chinese and an English text")
        object.__setattr__(self, "value", raw_text(self.value))

    def __str__(self) -> str:
        # For logs and for pages of other packages that show one string
        # (ckanext-harvest's gather errors, a form's error); never parsed.
        return f"{self.zh} / {self.en}"

    def as_dict(self) -> dict[str, str | None]:
        """The fields as the records table, the API and the CSV name them."""
        return {"code": self.code, "field": self.field, "value": self.value,
                "reason_zh": self.zh, "reason_en": self.en}


class MessageError(Exception):
    """An exception that carries one ``Message`` (``.message``)."""

    def __init__(self, message: Message):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)

    @property
    def code(self) -> str:
        return self.message.code

    @property
    def field(self) -> str | None:
        return self.message.field

    @property
    def value(self) -> str | None:
        return self.message.value

    @property
    def reason_zh(self) -> str:
        return self.message.zh

    @property
    def reason_en(self) -> str:
        return self.message.en


class MessageText(str):
    """A message where CKAN wants one string: a validator's ``Invalid``, a
    form's error list, the action API's error dict, which show it as both
    languages. Code that knows the type reads ``.message`` instead (the
    harvest's report does), so nothing parses the string back."""

    message: Message

    def __new__(cls, message: Message):
        text = super().__new__(cls, str(message))
        text.message = message
        return text

    def __getnewargs__(self):
        return (self.message,)
