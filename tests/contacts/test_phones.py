"""Phone numbers as people type them and as Excel stores them, into E.164 or a clear reason."""

import random
from decimal import Decimal

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from app.services.contacts import phones
from app.services.contacts.phones import (
    InvalidPhone,
    check_phone,
    looks_like_phone,
    normalise_phone,
    phone_text,
    region_name,
    split_phone_numbers,
    supported_regions,
    wa_id,
)

GOOD = [
    ("9876543210", "IN", "+919876543210"),
    ("98765 43210", "IN", "+919876543210"),
    ("98765-43210", "IN", "+919876543210"),
    ("98765.43210", "IN", "+919876543210"),
    ("(987) 654-3210", "IN", "+919876543210"),
    ("+91 98765 43210", "IN", "+919876543210"),
    ("+91-98765-43210", "IN", "+919876543210"),
    ("(+91) 98765 43210", "IN", "+919876543210"),
    ("919876543210", "IN", "+919876543210"),  # country code without +
    ("0 98765 43210", "IN", "+919876543210"),  # trunk prefix
    ("09876543210", "IN", "+919876543210"),
    ("0091 98765 43210", "IN", "+919876543210"),  # 00 international prefix
    ("  +91 98765 43210  ", "IN", "+919876543210"),
    ("+91\u00a098765\u00a043210", "IN", "+919876543210"),  # non-breaking spaces from web pages
    ("+91 98765–43210", "IN", "+919876543210"),  # an en dash from Word
    ("०९८७६५४३२१०", "IN", "+919876543210"),  # Devanagari digits
    ("022 2345 6789", "IN", "+912223456789"),  # a Mumbai landline
    (919876543210, "IN", "+919876543210"),  # an Excel number cell
    (919876543210.0, "IN", "+919876543210"),  # …read as a float
    (9.1987654321e11, "IN", "+919876543210"),
    (Decimal("919876543210"), "IN", "+919876543210"),
    ("9.19876543210E+11", "IN", "+919876543210"),  # scientific notation with every digit kept
    ("9,19876543210E+11", "IN", "+919876543210"),  # …with a decimal comma
    ("919876543210.0", "IN", "+919876543210"),
    ("87283.00000", "IN", "+918728300000"),  # dots grouping digits, not a decimal point
    ("+44 7911 123456", "IN", "+447911123456"),
    ("447911123456", "IN", "+447911123456"),  # a foreign number written the WhatsApp way, without +
    ("0044 7911 123456", "US", "+447911123456"),  # 00 where the default region dials 011
    ("(415) 555-2671", "US", "+14155552671"),
    ("07911 123456", "GB", "+447911123456"),
    ("+971 50 123 4567", "IN", "+971501234567"),
]

BAD = [
    ("", "No phone number"),
    (None, "No phone number"),
    ("   ", "No phone number"),
    ("N/A", "“N/A” has letters in it"),
    ("call me", "“call me” has letters in it"),
    ("98765 43210 ext 12", "“98765 43210 ext 12” has letters in it"),
    ("98765#43210", "“98765#43210” has # in it, which is not part of a phone number"),
    ("12345", "12345 has 5 digits; mobile numbers in India have 10"),
    ("98765 4321", "98765 4321 has 9 digits; mobile numbers in India have 10"),
    ("98765432", "98765432 has 8 digits; mobile numbers in India have 10"),
    ("9876543210123456", "9876543210123456 has 16 digits; mobile numbers in India have 10"),
    ("+91 98765 4321", "+91 98765 4321 has 9 digits after +91; mobile numbers in India have 10"),
    ("0 98765 4321", "0 98765 4321 has 9 digits after the leading 0; mobile numbers in India have 10"),
    ("+999 1234 5678", "+999 1234 5678 does not start with a country code we know"),
    ("+91 55555 55555", "+91 55555 55555 is not a valid number in India; check the digits"),
    ("+44 1234 567", "+44 1234 567 has 7 digits after +44; mobile numbers in the United Kingdom have 10"),
    ("9.19877E+11", "Excel shortened this number"),  # Excel dropped the last digits: never guess them
    ("1" * 80, "This is too long to be a phone number"),
    (True, "has letters in it"),
    (float("nan"), "No phone number"),
]


@pytest.mark.parametrize(("raw", "region", "expected"), GOOD)
def test_good_numbers_become_e164(raw, region, expected):
    assert normalise_phone(raw, region) == expected
    assert check_phone(raw, region) == (expected, None)


@pytest.mark.parametrize(("raw", "reason"), BAD)
def test_bad_numbers_are_reported_with_a_reason(raw, reason):
    phone, problem = check_phone(raw, "IN")
    assert phone is None
    assert reason in problem
    with pytest.raises(InvalidPhone) as raised:
        normalise_phone(raw, "IN")
    assert raised.value.reason == problem


@pytest.mark.parametrize(("raw", "region", "reason"), [
    ("0151 2345", "DE", "0151 2345 has 7 digits after the leading 0; mobile numbers in Germany have 10 or 11"),
    ("170 1234", "US", "170 1234 has 7 digits; mobile numbers in the United States have 10"),
    ("9123 456", "SG", "9123 456 has 7 digits; mobile numbers in Singapore have 8"),
])
def test_digit_counts_follow_the_default_country(raw, region, reason):
    assert check_phone(raw, region) == (None, reason)


@pytest.mark.parametrize(
    ("cell", "parts"),
    [
        ("98765 43210 / 98123 45678", ["98765 43210", "98123 45678"]),
        ("9876543210, 9123456789", ["9876543210", "9123456789"]),
        ("9876543210;9123456789", ["9876543210", "9123456789"]),
        ("9876543210 or 9123456789", ["9876543210", "9123456789"]),
        ("9876543210 OR 9123456789", ["9876543210", "9123456789"]),
        ("9876543210\n9123456789", ["9876543210", "9123456789"]),
        ("9876543210 | 9123456789 & 9012345678", ["9876543210", "9123456789", "9012345678"]),
        ("+91 98765 43210", ["+91 98765 43210"]),
        ("9,19876543210E+11", ["9,19876543210E+11"]),  # a decimal comma, not two numbers
        (919876543210, [919876543210]),
        ("N/A", ["N/A"]),
        ("9876543210 / none", ["9876543210 / none"]),
        ("", []),
        (None, []),
    ],
)
def test_split_phone_numbers(cell, parts):
    assert split_phone_numbers(cell) == parts


def test_phone_text_turns_excel_numbers_into_digits():
    assert phone_text(919876543210.0) == "919876543210"
    assert phone_text(" 9.19876543210E+11 ") == "919876543210"
    assert phone_text(12.5) == "12.5"


def test_looks_like_phone_is_a_cheap_shape_test():
    assert looks_like_phone("+91 98765 43210")
    assert looks_like_phone(919876543210)
    assert not looks_like_phone("Ravi Kumar")
    assert not looks_like_phone("12")


def test_wa_id_and_regions():
    assert wa_id("+919876543210") == "919876543210"
    codes = dict(supported_regions())
    assert codes["IN"] == "India (+91)"
    assert region_name("GB").startswith("United Kingdom")
    assert len(codes) > 200


def _samples() -> list[tuple[str, str]]:
    """Valid-looking and random numbers in many shapes and regions, for comparing the two parsing paths."""
    rng = random.Random(7)
    samples = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        code = str(phonenumbers.country_code_for_region(region))
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = str(example.national_number)
            for variant in sorted({national, national[:-2] + f"{rng.randint(0, 99):02d}", national[:-1]}):
                spaced = f"({variant[:3]}) {variant[3:]}"
                shapes = (variant, "+" + code + variant, code + variant, "0" + variant, "00" + code + variant,
                          "00" + variant, "0" + code + variant, spaced)
                samples += [(text, where) for text in shapes for where in (region, "IN")]
    for _ in range(1000):
        digits = str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=rng.randint(5, 13)))
        samples += [(digits, rng.choice(["IN", "US", "GB", "RU", "MX", "AR", "BR"])), ("+" + digits, "IN")]
    return samples


def test_fast_path_gives_the_same_answers_as_phonenumbers_parse(monkeypatch):
    samples = _samples()
    fast = [check_phone(text, region) for text, region in samples]
    monkeypatch.setattr(phones, "_fast_parse", lambda text, region: None)
    slow = [check_phone(text, region) for text, region in samples]
    differences = [(sample, a, b) for sample, a, b in zip(samples, fast, slow, strict=True) if a != b]
    assert not differences, differences[:10]
    assert sum(result[0] is not None for result in fast) > 2000  # plenty of valid numbers compared
