"""Phone numbers: what people type and what Excel stores, turned into E.164 or a reason why not.

Numbers are read in the default country first; `+`, `00` and the trunk `0` work as people expect. Only
when that reading is not a valid number do we try the digits as an international number written without
`+` (the form WhatsApp exports use, e.g. 447911123456). A result is only accepted when
`phonenumbers.is_valid_number` says so: we report, never guess. Reasons are sentences about what was typed
("98765 4321 has 9 digits; mobile numbers in India have 10"), shared by the forms and the import's row report.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, ValidationResult
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

MAX_INPUT_LENGTH = 64

# Excel's scientific notation, e.g. 9.19876543210E+11 (a comma as the decimal mark in some locales).
_SCIENTIFIC = re.compile(r"^\+?(\d)(?:[.,](\d+))?[eE]\+?(\d{1,2})$")
# Separators between several numbers in one cell: / , ; | & newline, or the word "or".
_SEPARATORS = re.compile(r"\s*(?:[/,;|&\n]|\bor\b)\s*", re.IGNORECASE)
_MAY_HOLD_SEVERAL = re.compile(r"[/,;|&\n]|or", re.IGNORECASE).search
_ALLOWED = re.compile(r"^[\d\s+\-().]*$")
_WHOLE_FLOAT_TEXT = re.compile(r"^(\+?\d{7,})\.0$")  # 919876543210.0, as pandas and some exports write it
_SPACING = str.maketrans("", "", " -.()\t")
_GEOGRAPHIC = frozenset(phonenumbers.SUPPORTED_REGIONS)
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212\u00a0\u2007\u202f"), " ")


NO_NUMBER = "No phone number"


class InvalidPhone(ValueError):
    """The value is not a usable phone number; `reason` is a sentence for the person who typed it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_phone(raw: Any, region: str) -> str:
    """Return the E.164 form (+919876543210) of a typed or spreadsheet value, or raise InvalidPhone."""
    text = phone_text(raw)
    if not text:
        raise InvalidPhone(NO_NUMBER)
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhone("This is too long to be a phone number")
    if not _ALLOWED.match(text):
        raise InvalidPhone(_stray_characters(text))
    e164 = _fast_parse(text, region)
    if e164 is not None:
        return e164
    number, first_problem = _parse(text, region)
    if number is None:
        number = _international_reading(text)
    if number is None:
        raise InvalidPhone(first_problem)
    return f"+{number.country_code}{phonenumbers.national_significant_number(number)}"


def check_phone(raw: Any, region: str) -> tuple[str | None, str | None]:
    """(E.164, None) for a good number, (None, reason) otherwise: for loops that report instead of raising."""
    try:
        return normalise_phone(raw, region), None
    except InvalidPhone as error:
        return None, error.reason


def wa_id(e164: str) -> str:
    """WhatsApp's id for a number: the E.164 digits without the plus."""
    return e164.removeprefix("+")


def time_zone(e164: str) -> str | None:
    """The IANA timezone of an E.164 number: its area's where the country has several, else its country's; or None.

    This is the longest-prefix lookup of phonenumbers.timezone.time_zones_for_geographical_number, done on the digits
    we already have because imports call it for every row. time_zones_for_number would be wrong for mobiles in
    countries with several zones: it lists all of them, so the first would put a Moscow mobile in Asia/Almaty.
    Where a prefix still names several zones, the first one zoneinfo knows is taken.
    """
    digits = e164.removeprefix("+")
    for length in range(min(len(digits), TIMEZONE_LONGEST_PREFIX), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            return _first_known_zone(zones)
    return None


@cache
def known_time_zones() -> frozenset[str]:
    """Every timezone time_zone can return."""
    return frozenset(zone for zones in TIMEZONE_DATA.values() if (zone := _first_known_zone(zones)) is not None)


# phonenumbers still uses these old names; people look for the current ones (an Indian shop for Asia/Kolkata).
CURRENT_ZONE_NAMES = {
    "Africa/Asmera": "Africa/Asmara", "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Godthab": "America/Nuuk", "Asia/Calcutta": "Asia/Kolkata", "Asia/Choibalsan": "Asia/Ulaanbaatar",
    "Asia/Katmandu": "Asia/Kathmandu", "Asia/Rangoon": "Asia/Yangon", "Atlantic/Faeroe": "Atlantic/Faroe",
    "Pacific/Enderbury": "Pacific/Kanton", "Pacific/Ponape": "Pacific/Pohnpei", "Pacific/Truk": "Pacific/Chuuk",
}


@cache
def _first_known_zone(zones: tuple[str, ...]) -> str | None:
    # phonenumbers says "Etc/Unknown" for numbers it cannot place; anything zoneinfo cannot load would break quiet
    # hours, so it counts as unknown.
    for zone in (CURRENT_ZONE_NAMES.get(zone, zone) for zone in zones):
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return zone
    return None


def split_phone_numbers(value: Any) -> list[Any]:
    """The numbers in one cell: "98765 43210 / 98123 45678", "a, b", "a or b"; non-text values are one number."""
    if not isinstance(value, str):
        return [] if value is None else [value]
    text = value.strip()
    if not text:
        return []
    if not _MAY_HOLD_SEVERAL(text) or _SCIENTIFIC.match(text):  # "9,19877E+11" has a decimal comma
        return [text]
    parts = [part for part in _SEPARATORS.split(text) if part]
    # "N/A" or "call me, evenings" is one bad value, not several.
    return parts if sum(any(char.isdigit() for char in part) for part in parts) > 1 else [text]


def phone_text(raw: Any) -> str:
    """A cell value as text a phone parser can read: floats and scientific notation become their digits."""
    if raw is None or isinstance(raw, bool):
        return "" if raw is None else str(raw)
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float | Decimal):
        return _number_text(raw)
    text = str(raw)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_DASHES)
        text = "".join(_ascii_digit(char) for char in text)
    text = text.strip()
    scientific = _SCIENTIFIC.match(text)
    if scientific:
        return _scientific_digits(text, scientific)
    whole = _WHOLE_FLOAT_TEXT.match(text)
    return whole.group(1) if whole else text


def looks_like_phone(value: Any) -> bool:
    """A cheap test for column detection: phone punctuation only and 7 to 15 digits."""
    text = phone_text(value) if not isinstance(value, str) else value.strip()
    digits = sum(char.isdigit() for char in text)
    return 7 <= digits <= 15 and bool(_ALLOWED.match(text))


@cache
def region_name(region: str) -> str:
    """The country's English name ("India"), or the code when phonenumbers has none."""
    from phonenumbers import geocoder

    example = phonenumbers.example_number(region) if region in _GEOGRAPHIC else None
    return (geocoder.country_name_for_number(example, "en") if example else "") or region


def is_supported_region(region: str) -> bool:
    return region in phonenumbers.SUPPORTED_REGIONS


@cache
def supported_regions() -> list[tuple[str, str]]:
    """(code, "India (+91)") for every region phonenumbers knows, sorted by name."""
    choices = [(code, f"{region_name(code)} (+{phonenumbers.country_code_for_region(code)})")
               for code in phonenumbers.SUPPORTED_REGIONS]
    return sorted(choices, key=lambda choice: choice[1])


def _fast_parse(text: str, region: str) -> str | None:
    """What phonenumbers.parse returns for the plain shapes most cells hold, at a tenth of its cost.

    Only digits with spacing punctuation, an optional leading +, no leading zero, and a country whose
    national prefix is a plain literal the number doesn't start with: for these, parse's country-code and
    national-prefix rules reduce to the split below (tests compare both over many numbers). Anything else,
    and any number is_valid_number rejects, goes the full way.
    """
    digits = text.translate(_SPACING)
    plus = digits.startswith("+")
    digits = digits[1:] if plus else digits
    if not digits.isdigit() or len(digits) > 17:
        return None
    if not plus and digits.startswith("00") and _dials_00(region):  # 0091 98765 43210
        plus, digits = True, digits[2:]
    if plus:
        return _fast_number(*_split_country_code(digits)) if digits[:1] != "0" else None
    country_code = phonenumbers.country_code_for_region(region)
    if digits.startswith("0"):  # the trunk prefix: 0 98765 43210
        trunk = _plain_national_prefix(region) == "0" and digits[1:2] != "0"
        return _fast_number(country_code, digits[1:], region) if trunk else None
    e164 = _fast_number(country_code, digits, region)
    prefix = str(country_code)
    if e164 is None and digits.startswith(prefix):  # 919876543210: what parse or the + reading would give
        e164 = _fast_number(country_code, digits[len(prefix) :])
    return e164


def _fast_number(country_code: int, national: str, region: str | None = None) -> str | None:
    prefix = _plain_national_prefix(region or phonenumbers.region_code_for_country_code(country_code))
    if prefix is None or not national or national[0] == "0" or (prefix and national.startswith(prefix)):
        return None
    return f"+{country_code}{national}" if _is_valid(country_code, national) else None


def _is_valid(country_code: int, national: str) -> bool:
    """phonenumbers.is_valid_number, checking the likeliest number types first (it finds the exact type)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) != 1 or regions[0] not in _GEOGRAPHIC:  # shared codes (+1, +7, +44…): its own region logic
        return phonenumbers.is_valid_number(PhoneNumber(country_code=country_code, national_number=int(national)))
    general, types = _number_patterns(regions[0])
    return _matches(national, general) and any(_matches(national, each) for each in types)


def _matches(national: str, description: tuple[frozenset[int], re.Pattern[str] | None]) -> bool:
    lengths, pattern = description
    return pattern is not None and (not lengths or len(national) in lengths) and pattern.fullmatch(national) is not None


@cache
def _number_patterns(region: str):
    """The region's general pattern and its per-type patterns, compiled once, mobile and fixed line first."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    descriptions = [metadata.mobile, metadata.fixed_line, metadata.premium_rate, metadata.toll_free,
                    metadata.shared_cost, metadata.voip, metadata.personal_number, metadata.pager, metadata.uan,
                    metadata.voicemail]
    return _compiled(metadata.general_desc), [_compiled(each) for each in descriptions if each is not None]


def _compiled(description) -> tuple[frozenset[int], re.Pattern[str] | None]:
    pattern = description.national_number_pattern
    return frozenset(description.possible_length or ()), re.compile(pattern) if pattern else None


def _split_country_code(digits: str) -> tuple[int, str]:
    """E.164 country codes are prefix-free: the first 1-3 digits that name one are it (as parse does)."""
    for length in (1, 2, 3):
        if int(digits[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return int(digits[:length]), digits[length:]
    return 0, ""


@cache
def _dials_00(region: str) -> bool:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None) if region in _GEOGRAPHIC else None
    return metadata is not None and metadata.international_prefix == "00"


@cache
def _plain_national_prefix(region: str) -> str | None:
    """The region's national prefix when parsing strips just that literal (e.g. "0"); None for fancier rules."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None) if region in _GEOGRAPHIC else None
    if metadata is None or metadata.national_prefix_transform_rule is not None:
        return None
    prefix = metadata.national_prefix or ""
    rule = metadata.national_prefix_for_parsing
    return prefix if rule is None or (rule == prefix and prefix.isdigit()) else None


def _parse(text: str, region: str) -> tuple[PhoneNumber | None, str]:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as error:
        return None, _parse_error_reason(text, error)
    if phonenumbers.is_valid_number(number):
        return number, ""
    return None, _invalid_reason(text, number)


def _international_reading(text: str) -> PhoneNumber | None:
    """The digits as an international number written without +: 0091…, or 44… when not valid at home."""
    if text.startswith("+"):
        return None
    digits = re.sub(r"\D", "", text)
    candidates = [digits[2:]] if digits.startswith("00") else []
    if len(digits) >= 11 and not digits.startswith("0"):
        candidates.append(digits)
    for candidate in candidates:
        number, _ = _parse("+" + candidate, "ZZ")
        if number is not None:
            return number
    return None


def _stray_characters(text: str) -> str:
    if any(char.isalpha() for char in text):
        return f"“{text}” has letters in it; a phone number has only digits"
    strays = "".join(dict.fromkeys(char for char in text if not _ALLOWED.match(char)))
    return f"“{text}” has {strays} in it, which is not part of a phone number"


def _parse_error_reason(text: str, error: NumberParseException) -> str:
    if error.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        return f"{text} does not start with a country code we know"
    if error.error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        return f"{text} is too short to be a phone number"
    if error.error_type == NumberParseException.TOO_LONG:
        return f"{text} is too long to be a phone number"
    return f"{text} is not a phone number"


def _invalid_reason(text: str, number: PhoneNumber) -> str:
    """Why a parsed number is not valid, in the words of someone counting its digits.

    WhatsApp numbers are mobiles, so a wrong count is measured against the country's mobile lengths from
    phonenumbers' metadata (India 10, Germany 10 or 11 …), whatever the configured default country.
    """
    if phonenumbers.is_possible_number_with_reason(number) == ValidationResult.INVALID_COUNTRY_CODE:
        return f"{text} does not start with a country code we know"
    country, lengths = _country_of(number), _mobile_lengths(number.country_code)
    count = len(phonenumbers.national_significant_number(number))
    if lengths and count not in lengths:
        digits = f"{count} digit{'s' if count != 1 else ''}{_after_prefix(text, number, count)}"
        return f"{text} has {digits}; mobile numbers in {country} have {_spoken_lengths(lengths)}"
    return f"{text} is not a valid number in {country}; check the digits"


@cache
def _mobile_lengths(country_code: int) -> tuple[int, ...]:
    """How many digits (after the country code) the country's mobile numbers have; () when unknown."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None) if region in _GEOGRAPHIC else None
    if metadata is None:
        return ()
    described = [desc.possible_length for desc in (metadata.mobile, metadata.general_desc) if desc is not None]
    return next((tuple(sorted(each)) for each in described if each and each[0] != -1), ())


def _after_prefix(text: str, number: PhoneNumber, count: int) -> str:
    """" after +91" or " after the leading 0" when the person typed more digits than the ones counted."""
    if sum(char.isdigit() for char in text) == count:
        return ""
    if text.startswith("+") or text.startswith("00"):
        return f" after +{number.country_code}"
    return " after the leading 0" if text.startswith("0") else f" after {number.country_code}"


def _spoken_lengths(lengths: tuple[int, ...]) -> str:
    """(10,) → "10", (10, 11) → "10 or 11", (8, 9, 10) → "8 to 10", (8, 10, 11) → "8, 10 or 11"."""
    if len(lengths) > 2 and lengths[-1] - lengths[0] == len(lengths) - 1:
        return f"{lengths[0]} to {lengths[-1]}"
    words = [str(length) for length in lengths]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _country_of(number: PhoneNumber) -> str:
    region = phonenumbers.region_code_for_country_code(number.country_code)
    if region in (None, "ZZ", "001"):
        return f"+{number.country_code}"
    name = region_name(region)
    return f"the {name}" if name.startswith(_NAMES_SAID_WITH_THE) or name.endswith(_NAMES_SAID_WITH_THE) else name


# "mobile numbers in the United Kingdom": the country names English says with "the".
_NAMES_SAID_WITH_THE = ("United ", "Netherlands", "Philippines", "Bahamas", "Gambia", "Maldives", "Republic",
                        "Islands")


def _number_text(value: float | Decimal) -> str:
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        return ""
    if value == int(value):
        return str(int(value))
    return str(value)


def _scientific_digits(text: str, match: re.Match[str]) -> str:
    """9.19876543210E+11 → 919876543210; refuse 9.19877E+11, whose last digits Excel has already lost."""
    lead, fraction, exponent = match.group(1), match.group(2) or "", int(match.group(3))
    significant = len(lead + fraction)
    if significant < exponent + 1:
        raise InvalidPhone(
            f"Excel shortened this number to {text}; format the column as Text in Excel and export again"
        )
    try:
        value = Decimal(f"{lead}.{fraction or '0'}E{exponent}")
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid decimals
        raise InvalidPhone("Not a phone number") from None
    return _number_text(value)


def _ascii_digit(char: str) -> str:
    """Devanagari, Arabic-Indic and other decimal digits, as typed on local keyboards, become 0-9."""
    if char.isdigit() and not char.isascii():
        digit = unicodedata.decimal(char, None)
        return str(digit) if digit is not None else char
    return char
