"""Meta's rules for a new message template, checked before we submit it, so a form mistake is never a rejection.

A `TemplateDraft` is what the create form holds (the templates blueprint reads it from the form); `problems` names
each broken rule by the draft's attribute ("examples.<key>" for one variable's example), and `components` builds
the JSON Meta expects (with the example values it requires for every variable).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

NAME = re.compile(r"^[a-z0-9_]+$")
VARIABLE = re.compile(r"\{\{([^{}]*)\}\}")
POSITIONAL = re.compile(r"^[1-9][0-9]*$")
NAMED = re.compile(r"^[a-z_][a-z0-9_]*$")
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
PHONE = re.compile(r"^\+[1-9][0-9]{6,18}$")
COUPON = re.compile(r"^[A-Za-z0-9]{1,15}$")
CATEGORIES = {"MARKETING": ("Marketing", "Offers, announcements, news"),
              "UTILITY": ("Utility", "Order updates, reminders, receipts")}
LANGUAGES = {"en_US": "English (US)", "en_GB": "English (UK)", "en": "English", "hi": "Hindi", "mr": "Marathi",
             "gu": "Gujarati", "bn": "Bengali", "ta": "Tamil", "te": "Telugu", "kn": "Kannada", "ml": "Malayalam",
             "pa": "Punjabi", "ur": "Urdu", "ar": "Arabic", "es": "Spanish", "pt_BR": "Portuguese (Brazil)",
             "fr": "French", "de": "German", "id": "Indonesian", "ms": "Malay"}
BUTTON_TYPES = {"QUICK_REPLY": "Quick reply", "URL": "Visit website", "PHONE_NUMBER": "Call phone number",
                "COPY_CODE": "Copy offer code"}
BUTTON_LIMITS = {"QUICK_REPLY": 3, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1}
MAX_BUTTONS, MAX_BUTTON_TEXT = 10, 25
MAX_NAME, MAX_BODY, MAX_HEADER, MAX_FOOTER, MAX_URL = 512, 1024, 60, 60, 2000
EXAMPLE_ERROR = "examples."  # a variable's missing or bad example is reported as "examples.<key>"


@dataclass
class ButtonDraft:
    type: str
    text: str = ""
    value: str = ""  # URL, phone number or coupon code
    example: str = ""  # example for the variable at the end of a URL


@dataclass
class TemplateDraft:
    name: str = ""
    language: str = "en_US"
    category: str = "MARKETING"
    header_text: str = ""
    body: str = ""
    footer: str = ""
    buttons: list[ButtonDraft] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)  # "body.1" / "header.first_name" -> example

    def variable_keys(self) -> list[str]:
        """Keys of the variables needing examples, as template_parts names them: header first, then body."""
        return [f"header.{name}" for name in _names(self.header_text)] + [f"body.{name}" for name in _names(self.body)]

    @property
    def named(self) -> bool:
        names = _names(self.body) + _names(self.header_text)
        return bool(names) and not any(POSITIONAL.match(name) for name in names)


def _names(text: str) -> list[str]:
    return list(dict.fromkeys(name for name in VARIABLE.findall(text or "")))


def problems(draft: TemplateDraft) -> dict[str, str]:
    """Every broken rule, keyed by the draft's attribute; {} when Meta should accept the template."""
    found: dict[str, str] = {}
    checks = [("name", _name_problem(draft.name)), ("language", _choice(draft.language, LANGUAGES, "language")),
              ("category", _choice(draft.category, CATEGORIES, "category")),
              ("body", _body_problem(draft.body) or _mixed_problem(draft)),
              ("header_text", _header_problem(draft.header_text)),
              ("footer", _footer_problem(draft.footer)), ("buttons", _buttons_problem(draft))]
    for name, problem in checks:
        if problem:
            found[name] = problem
    for key in draft.variable_keys():
        example = draft.examples.get(key, "")
        if not example:
            found[f"{EXAMPLE_ERROR}{key}"] = f"Give an example for {{{{{key.split('.', 1)[1]}}}}}: Meta requires one."
        elif "\n" in example or len(example) > 200:
            found[f"{EXAMPLE_ERROR}{key}"] = "Keep the example on one line and under 200 characters."
    return found


def problems_so_far(draft: TemplateDraft) -> dict[str, str]:
    """The problems worth showing while the form is being typed: the same sentences as `problems`, but a field
    still empty (the name, the message, an example) is not a problem yet, so a half-written form isn't all red."""
    return {key: message for key, message in problems(draft).items() if _typed(draft, key)}


def _typed(draft: TemplateDraft, key: str) -> bool:
    if key.startswith(EXAMPLE_ERROR):
        return bool(draft.examples.get(key.removeprefix(EXAMPLE_ERROR)))
    return bool({"name": draft.name, "body": draft.body}.get(key, True))


def _name_problem(name: str) -> str | None:
    if not name:
        return "Give the template a name."
    if len(name) > MAX_NAME:
        return f"Use at most {MAX_NAME} characters."
    if not NAME.match(name):
        return "Use only lowercase letters, digits and underscores, e.g. diwali_offer_2025."
    return None


def _choice(value: str, choices: dict[str, str], what: str) -> str | None:
    return None if value in choices else f"Choose a {what} from the list."


def _body_problem(body: str) -> str | None:
    if not body:
        return "Write the message text."
    if len(body) > MAX_BODY:
        return f"The message is {len(body):,} characters; Meta allows at most {MAX_BODY:,}."
    return _variables_problem(body, "message") or _numbering_problem(body) or _edge_problem(body)


def _variables_problem(text: str, where: str) -> str | None:
    names = VARIABLE.findall(text)
    rest = VARIABLE.sub("", text)
    if "{" in rest or "}" in rest:
        return f"The {where} has a stray brace; write variables as {{{{1}}}} or {{{{first_name}}}}."
    if any(not (POSITIONAL.match(name) or NAMED.match(name)) for name in names):
        return f"Write variables in the {where} as {{{{1}}}}, {{{{2}}}} or {{{{first_name}}}}: lowercase, no spaces."
    return None


def _numbering_problem(body: str) -> str | None:
    numbers = sorted({int(name) for name in VARIABLE.findall(body) if POSITIONAL.match(name)})
    if numbers != list(range(1, len(numbers) + 1)):
        expected = ", ".join(f"{{{{{n}}}}}" for n in range(1, len(numbers) + 1))
        return f"Number the variables from 1 with no gaps: {expected}."
    return None


def _edge_problem(body: str) -> str | None:
    if VARIABLE.match(body):
        return "The message can't start with a variable; put some words before it."
    if re.search(r"\{\{[^{}]*\}\}$", body):
        return "The message can't end with a variable; put some words (or a full stop) after it."
    return None


def _mixed_problem(draft: TemplateDraft) -> str | None:
    names = _names(draft.header_text) + _names(draft.body)
    positional = [name for name in names if POSITIONAL.match(name)]
    if positional and len(positional) != len(names):
        return "Use either numbered variables ({{1}}) or named ones ({{first_name}}) in a template, not both."
    return None


def _header_problem(header: str) -> str | None:
    if not header:
        return None
    if len(header) > MAX_HEADER:
        return f"The header is {len(header)} characters; Meta allows at most {MAX_HEADER}."
    if "\n" in header:
        return "Keep the header on one line."
    names = _names(header)
    if len(names) > 1:
        return "The header can have at most one variable."
    problem = _variables_problem(header, "header")
    if problem:
        return problem
    if names and POSITIONAL.match(names[0]) and names[0] != "1":
        return "The header's variable must be {{1}}."
    return None


def _footer_problem(footer: str) -> str | None:
    if len(footer) > MAX_FOOTER:
        return f"The footer is {len(footer)} characters; Meta allows at most {MAX_FOOTER}."
    if "{" in footer or "}" in footer:
        return "The footer can't have variables."
    if "\n" in footer:
        return "Keep the footer on one line."
    return None


def _buttons_problem(draft: TemplateDraft) -> str | None:
    buttons = draft.buttons
    if len(buttons) > MAX_BUTTONS:
        return f"Use at most {MAX_BUTTONS} buttons."
    counts = Counter(button.type for button in buttons)
    for kind, limit in BUTTON_LIMITS.items():
        if counts[kind] > limit:
            return f"Use at most {limit} “{BUTTON_TYPES[kind]}” button{'s' if limit > 1 else ''}."
    kinds = [button.type == "QUICK_REPLY" for button in buttons]
    if counts["QUICK_REPLY"] and len([k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]) > 2:
        return "Keep the quick-reply buttons together, before or after the other buttons."
    if counts["COPY_CODE"] and draft.category != "MARKETING":
        return "A copy-code button is only allowed in marketing templates."
    texts = [button.text.casefold() for button in buttons if button.type != "COPY_CODE"]
    if len(texts) != len(set(texts)):
        return "Give each button a different text."
    for number, button in enumerate(buttons, start=1):
        problem = _button_problem(button)
        if problem:
            return f"Button {number}: {problem}"
    return None


def _button_problem(button: ButtonDraft) -> str | None:
    if button.type != "COPY_CODE" and not button.text:
        return "give it a text."
    if len(button.text) > MAX_BUTTON_TEXT:
        return f"the text is {len(button.text)} characters; Meta allows at most {MAX_BUTTON_TEXT}."
    if "{" in button.text or "}" in button.text:
        return "the text can't have variables."
    if button.type == "URL":
        return _url_problem(button)
    if button.type == "PHONE_NUMBER" and not PHONE.match(button.value.replace(" ", "")):
        return "enter the phone number with its country code, e.g. +919876543210."
    if button.type == "COPY_CODE" and not COUPON.match(button.value):
        return "enter an example code of up to 15 letters and digits, e.g. DIWALI20."
    return None


def _url_problem(button: ButtonDraft) -> str | None:
    url, variables = button.value, VARIABLE.findall(button.value)
    if not URL.match(url) or len(url) > MAX_URL:
        return "enter a web address starting with https://."
    if variables and (variables != ["1"] or not url.endswith("{{1}}")):
        return "a link can have one variable, {{1}}, at its very end."
    if variables and not button.example:
        return "give an example for the end of the link (Meta requires one)."
    return None


def parameter_format(draft: TemplateDraft) -> str:
    return "NAMED" if draft.named else "POSITIONAL"


def components(draft: TemplateDraft) -> list[dict[str, Any]]:
    """The template in Meta's create format, with examples for every variable."""
    built: list[dict[str, Any]] = []
    if draft.header_text:
        built.append({"type": "HEADER", "format": "TEXT", "text": draft.header_text,
                      **_example("header", draft.header_text, draft)})
    built.append({"type": "BODY", "text": draft.body, **_example("body", draft.body, draft)})
    if draft.footer:
        built.append({"type": "FOOTER", "text": draft.footer})
    if draft.buttons:
        built.append({"type": "BUTTONS", "buttons": [_button(button) for button in draft.buttons]})
    return built


def _example(component: str, text: str, draft: TemplateDraft) -> dict[str, Any]:
    names = _names(text)
    if not names:
        return {}
    if draft.named:
        pairs = [{"param_name": name, "example": draft.examples.get(f"{component}.{name}", "")} for name in names]
        return {"example": {f"{component}_text_named_params": pairs}}
    values = [draft.examples.get(f"{component}.{name}", "") for name in sorted(names, key=int)]
    return {"example": {f"{component}_text": [values] if component == "body" else values}}


def _button(button: ButtonDraft) -> dict[str, Any]:
    if button.type == "URL":
        data: dict[str, Any] = {"type": "URL", "text": button.text, "url": button.value}
        if "{{1}}" in button.value:
            data["example"] = [button.value.replace("{{1}}", button.example)]
        return data
    if button.type == "PHONE_NUMBER":
        return {"type": "PHONE_NUMBER", "text": button.text, "phone_number": button.value.replace(" ", "")}
    if button.type == "COPY_CODE":
        return {"type": "COPY_CODE", "example": button.value}
    return {"type": "QUICK_REPLY", "text": button.text}
