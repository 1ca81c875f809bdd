"""Which column is the phone, which the name, which hold tags: guessed from headers and values, then confirmed
(the mapping page's `MappingChoice` becomes a `ColumnMapping` through `mapping_for`)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.services.contacts import phones
from app.services.contacts.tags import parse_tag_list
from app.services.errors import ServiceError


class Role(StrEnum):
    PHONE = "phone"
    NAME = "name"
    TAGS = "tags"
    ATTRIBUTE = "attribute"
    IGNORE = "ignore"


ROLE_LABELS = {
    Role.PHONE: "Phone number",
    Role.NAME: "Name",
    Role.TAGS: "Tags",
    Role.ATTRIBUTE: "Keep as attribute",
    Role.IGNORE: "Don't import",
}

# Headers are compared as lower-case words with the Devanagari nukta removed, so फ़ोन and फोन match.
STRONG_PHONE_WORDS = {"phone", "mobile", "whatsapp", "cellphone", "telephone", "msisdn", "फोन", "मोबाइल",
                      "व्हाट्सएप", "व्हाट्सऐप", "दूरभाष"}
SHORT_PHONE_WORDS = {"mob", "cell", "tel", "ph", "wa", "mobno", "phno"}
WEAK_PHONE_WORDS = {"number", "no", "num", "contact", "नंबर", "नम्बर", "संपर्क", "सम्पर्क"}
NAME_WORDS = {"name", "customer", "client", "नाम", "ग्राहक"}
NAME_COMPOUNDS = {"fullname", "customername", "clientname", "contactname", "firstname"}
TAG_WORDS = {"tag", "tags", "label", "labels", "group", "groups", "segment", "segments", "list", "टैग", "समूह"}
_WORD_SPLIT = re.compile(r"[\s\-_./:#()\[\]{}|,;'\"*+]+")
MAX_ATTRIBUTE_KEY = 64
MAX_HEADING_WORDS = 4  # "WhatsApp mobile number" is a heading; "Customer list for the Diwali sale" is a title


@dataclass(frozen=True)
class ColumnMapping:
    """The confirmed plan for a file: a role per column plus import-wide options."""

    roles: tuple[str, ...]
    region: str
    tags: tuple[str, ...] = ()
    update_existing: bool = True
    names: tuple[str, ...] = ()  # column names, for attribute keys and problem reports
    header_row: int | None = None  # the headings' row as the sheet numbers it (0: none); None: imports before it

    @property
    def phone_column(self) -> int | None:
        return self.roles.index(Role.PHONE) if Role.PHONE in self.roles else None

    def to_json(self) -> dict[str, Any]:
        return {"roles": list(self.roles), "tags": list(self.tags), "region": self.region,
                "update_existing": self.update_existing, "header_row": self.header_row}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], names: Sequence[str]) -> ColumnMapping:
        return cls(roles=tuple(data.get("roles", ())), tags=tuple(data.get("tags", ())),
                   region=data["region"],
                   update_existing=bool(data.get("update_existing", True)), names=tuple(names),
                   header_row=data.get("header_row"))


@dataclass(frozen=True)
class MappingChoice:
    """What staff chose on the mapping page. A problem is raised as ServiceError(field="roles" or "region")."""

    roles: Mapping[int, str]  # column index → Role value; a column left out is not imported
    tags: str = ""  # tags for every imported contact, separated by commas
    region: str = ""  # country for numbers written without a country code
    update_existing: bool = True  # False: leave contacts that already exist as they are


def mapping_for(choice: MappingChoice, names: Sequence[str]) -> ColumnMapping:
    """The confirmed mapping for a file with these column names; ServiceError if it cannot be used."""
    roles = tuple(choice.roles.get(index, Role.IGNORE) for index in range(len(names)))
    if any(role not in Role.__members__.values() for role in roles):
        raise ServiceError("Choose what each column holds from the list.", field="roles")
    if roles.count(Role.PHONE) != 1:
        raise ServiceError("Choose exactly one column as the phone number.", field="roles")
    if roles.count(Role.NAME) > 1:
        raise ServiceError("Choose at most one column as the name.", field="roles")
    region = choice.region.upper()
    if not phones.is_supported_region(region):
        raise ServiceError("Choose the country for numbers written without a country code.", field="region")
    return ColumnMapping(roles=roles, tags=tuple(parse_tag_list(choice.tags)), region=region,
                         update_existing=choice.update_existing, names=tuple(names))


def header_words(header: str) -> list[str]:
    text = unicodedata.normalize("NFC", header).replace("\u093c", "").casefold()
    return [word for word in _WORD_SPLIT.split(text) if word]


def phone_header_score(header: str) -> int:
    """3: the header says phone; 1: it only says number/contact; 0: it doesn't (or it is a name)."""
    words = set(header_words(header))
    if words & SHORT_PHONE_WORDS or any(strong in word for word in words for strong in STRONG_PHONE_WORDS):
        return 3
    if words & WEAK_PHONE_WORDS and not words & NAME_WORDS:
        return 1
    return 0


def name_header_score(header: str) -> int:
    ordered = header_words(header)
    words = set(ordered)
    if (len(words) == 1 and words & {"name", "नाम"}) or "".join(ordered) in NAME_COMPOUNDS:
        return 3
    if words & NAME_WORDS and not words & {"company", "business", "shop", "firm", "father", "user"}:
        return 2
    return 0


def is_tag_header(header: str) -> bool:
    return bool(set(header_words(header)) & TAG_WORDS)


def known_headings(values: Sequence[Any]) -> int:
    """How many cells read like a column heading we know (phone, name, tags); a long title doesn't count."""
    cells = [value for value in values if isinstance(value, str) and 0 < len(header_words(value)) <= MAX_HEADING_WORDS]
    return sum(1 for cell in cells if phone_header_score(cell) or name_header_score(cell) or is_tag_header(cell))


def column_names(header: Sequence[Any] | None, width: int) -> list[str]:
    """Header texts, with "Column C" for blank ones and "City (2)" for repeats."""
    names: list[str] = []
    for index in range(width):
        value = header[index] if header is not None and index < len(header) else None
        text = " ".join(str(value).split())[:MAX_ATTRIBUTE_KEY] if value not in (None, "") else ""
        text = text or f"Column {column_letter(index)}"
        candidate, copy = text, 2
        while candidate in names:
            candidate, copy = f"{text} ({copy})", copy + 1
        names.append(candidate)
    return names


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def guess_mapping(names: Sequence[str], samples: Sequence[Sequence[Any]], has_header: bool, region: str,
                  tags: Sequence[str] = ()) -> ColumnMapping:
    """A first guess the person confirms; the phone column may be None when nothing looks like one."""
    columns = [[row[index] if index < len(row) else None for row in samples] for index in range(len(names))]
    ratios = [_phone_ratio(values, region) for values in columns]
    phone = _guess_phone(names if has_header else None, ratios)
    name = _guess_name(names, columns, phone, has_header)
    roles = []
    for index, header in enumerate(names):
        if index == phone:
            roles.append(Role.PHONE)
        elif index == name:
            roles.append(Role.NAME)
        elif has_header and is_tag_header(header):
            roles.append(Role.TAGS)
        elif has_header and any(value not in (None, "") for value in columns[index]):
            roles.append(Role.ATTRIBUTE)
        else:
            roles.append(Role.IGNORE)
    return ColumnMapping(roles=tuple(roles), tags=tuple(tags), region=region, names=tuple(names))


def _phone_ratio(values: Sequence[Any], region: str) -> float:
    filled = [value for value in values if value not in (None, "")]
    if not filled:
        return 0.0
    good = sum(1 for value in filled if _holds_phone(value, region))
    return good / len(filled)


def _holds_phone(value: Any, region: str) -> bool:
    return any(phones.looks_like_phone(part) and phones.check_phone(part, region)[0]
               for part in phones.split_phone_numbers(value))


def _guess_phone(headers: Sequence[str] | None, ratios: list[float]) -> int | None:
    scores = [phone_header_score(header) for header in headers] if headers else [0] * len(ratios)
    by_header = [index for index, score in enumerate(scores) if score and ratios[index] >= 0.3]
    if by_header:
        return max(by_header, key=lambda index: (scores[index], ratios[index], -index))
    by_values = [index for index, ratio in enumerate(ratios) if ratio >= 0.5]
    if by_values:
        return max(by_values, key=lambda index: (ratios[index], -index))
    strong = [index for index, score in enumerate(scores) if score == 3]
    return strong[0] if strong else None  # a "Phone" column of bad numbers: import it and report each row


def _guess_name(names: Sequence[str], columns: list[list[Any]], phone: int | None, has_header: bool) -> int | None:
    if has_header:
        scored = [(name_header_score(header), -index) for index, header in enumerate(names) if index != phone]
        best = max(scored, default=(0, 0))
        return -best[1] if best[0] else None
    for index, values in enumerate(columns):  # no header: the first column of mostly words
        filled = [value for value in values if value not in (None, "")]
        words = sum(isinstance(value, str) and value[:1].isalpha() for value in filled)
        if index != phone and filled and words >= 0.8 * len(filled):
            return index
    return None
