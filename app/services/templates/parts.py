"""Reading a template's components (Meta's JSON shape): its variables, and the pieces of a message bubble.

Pure functions over the stored JSON, shared by the template pages, the campaign composer and send-time rendering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.whatsapp.payloads import MEDIA_TYPES

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_KEY = "header.media"
BUTTON_LABELS = {"QUICK_REPLY": "Quick reply", "URL": "Website link", "PHONE_NUMBER": "Call button",
                 "COPY_CODE": "Copy code", "OTP": "Copy code", "FLOW": "Form", "CATALOG": "View catalog"}


@dataclass(frozen=True)
class TemplateVariable:
    """One value a campaign fills at send time; `key` is how Campaign.variables refers to it."""

    key: str  # "body.1", "header.1", "body.first_name", "button.0", "header.media"
    component: str  # body | header | button
    name: str  # "1", "first_name", the button index, or "media"
    label: str
    example: str = ""
    kind: str = "text"  # text | url_suffix | coupon_code | image | video | document


@dataclass(frozen=True)
class Button:
    index: int
    type: str  # Meta's button type: QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, …
    text: str
    detail: str = ""  # the URL or phone number

    @property
    def label(self) -> str:
        return BUTTON_LABELS.get(self.type, self.type.replace("_", " ").title())


@dataclass(frozen=True)
class TemplateParts:
    named: bool = False
    header_format: str | None = None  # TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION
    header_text: str = ""
    header_example: str = ""
    body: str = ""
    footer: str = ""
    buttons: list[Button] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)  # variable key -> Meta's example value


@dataclass(frozen=True)
class Segment:
    """A run of bubble text; a variable carries its key, and `empty` when it has no value."""

    text: str
    key: str | None = None
    empty: bool = False


@dataclass(frozen=True)
class Bubble:
    header_format: str | None
    header: list[Segment]
    body: list[Segment]
    footer: str
    buttons: list[Button]


def placeholders(text: str | None) -> list[str]:
    """Variable names in order of first appearance."""
    names: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in names:
            names.append(name)
    return names


def parse(components: list[dict[str, Any]] | None, parameter_format: str | None = "POSITIONAL") -> TemplateParts:
    """The parts of a template from Meta's component list (type names in any case)."""
    values: dict[str, Any] = {"named": (parameter_format or "").upper() == "NAMED", "buttons": [], "examples": {}}
    for component in components or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            _read_header(component, values)
        elif kind == "BODY":
            values["body"] = str(component.get("text") or "")
            values["examples"].update(_examples("body", values["body"], component.get("example")))
        elif kind == "FOOTER":
            values["footer"] = str(component.get("text") or "")
        elif kind == "BUTTONS":
            values["buttons"] = _buttons(component.get("buttons") or [], values["examples"])
    return TemplateParts(**values)


def _read_header(component: dict[str, Any], values: dict[str, Any]) -> None:
    header_format = str(component.get("format") or "TEXT").upper()
    values["header_format"] = header_format
    example = component.get("example") if isinstance(component.get("example"), dict) else {}
    if header_format == "TEXT":
        values["header_text"] = str(component.get("text") or "")
        values["examples"].update(_examples("header", values["header_text"], example))
    elif header_format.lower() in MEDIA_TYPES:
        handles = example.get("header_handle") or []
        values["header_example"] = str(handles[0]) if handles else ""


def _examples(component: str, text: str, example: Any) -> dict[str, str]:
    """Meta's example values keyed like variables: positional lists or named {param_name, example} pairs."""
    if not isinstance(example, dict):
        return {}
    named = example.get(f"{component}_text_named_params")
    if isinstance(named, list):
        return {f"{component}.{item.get('param_name')}": str(item.get("example", ""))
                for item in named if isinstance(item, dict)}
    positional = example.get(f"{component}_text") or []
    if positional and isinstance(positional[0], list):  # the body's examples are a list of rows
        positional = positional[0]
    names = placeholders(text)
    return {f"{component}.{name}": str(value) for name, value in zip(names, positional, strict=False)}


def _buttons(raw: list[Any], examples: dict[str, str]) -> list[Button]:
    buttons = []
    for index, button in enumerate(item for item in raw if isinstance(item, dict)):
        kind = str(button.get("type", "")).upper()
        detail = str(button.get("url") or button.get("phone_number") or "")
        example = button.get("example")
        example = example[0] if isinstance(example, list) and example else example
        if kind == "URL" and placeholders(detail) and example:
            examples[f"button.{index}"] = _url_suffix(detail, str(example))
        elif kind == "COPY_CODE" and example:
            examples[f"button.{index}"] = str(example)
        buttons.append(Button(index=index, type=kind, text=str(button.get("text") or ""), detail=detail))
    return buttons


def _url_suffix(url: str, example_url: str) -> str:
    """Meta's URL example is the whole link; the variable is what replaces the placeholder."""
    prefix = PLACEHOLDER.split(url, maxsplit=1)[0]
    return example_url[len(prefix):] if example_url.startswith(prefix) else example_url


def variables(parts: TemplateParts) -> list[TemplateVariable]:
    """Every value a send of this template must fill, in display order: header, body, buttons."""
    found: list[TemplateVariable] = []
    header_format = (parts.header_format or "").lower()
    if header_format in MEDIA_TYPES:
        found.append(TemplateVariable(MEDIA_KEY, "header", "media", f"Header {header_format} link",
                                      parts.header_example, kind=header_format))
    for component, text, where in (("header", parts.header_text, "the header"), ("body", parts.body, "the message")):
        for name in placeholders(text):
            key = f"{component}.{name}"
            found.append(TemplateVariable(key, component, name, f"{{{{{name}}}}} in {where}",
                                          parts.examples.get(key, "")))
    for button in parts.buttons:
        key = f"button.{button.index}"
        if button.type == "URL" and placeholders(button.detail):
            found.append(TemplateVariable(key, "button", str(button.index), f"End of the “{button.text}” link",
                                          parts.examples.get(key, ""), kind="url_suffix"))
        elif button.type == "COPY_CODE":
            found.append(TemplateVariable(key, "button", str(button.index), "Coupon code for the copy-code button",
                                          parts.examples.get(key, ""), kind="coupon_code"))
    return found


def bubble(parts: TemplateParts, values: dict[str, str] | None = None, mark_empty: bool = True) -> Bubble:
    """What the customer sees; variables without a value show as {{name}} placeholders, marked empty when a value
    was expected (mark_empty=False for a draft, whose examples are not all typed yet)."""
    return Bubble(header_format=parts.header_format,
                  header=segments(parts.header_text, "header", values, mark_empty),
                  body=segments(parts.body, "body", values, mark_empty), footer=parts.footer, buttons=parts.buttons)


def segments(text: str, component: str, values: dict[str, str] | None, mark_empty: bool = True) -> list[Segment]:
    pieces: list[Segment] = []
    position = 0
    for match in PLACEHOLDER.finditer(text or ""):
        if match.start() > position:
            pieces.append(Segment(text[position:match.start()]))
        key = f"{component}.{match.group(1)}"
        value = values.get(key, "") if values is not None else ""
        empty = mark_empty and values is not None and not value
        pieces.append(Segment(value or "{{" + match.group(1) + "}}", key, empty=empty))
        position = match.end()
    if position < len(text or ""):
        pieces.append(Segment(text[position:]))
    return pieces


def plain_text(parts: TemplateParts, values: dict[str, str]) -> str:
    """The message as readable text (header, body, footer), variables filled."""
    def fill(text: str, component: str) -> str:
        return PLACEHOLDER.sub(lambda match: values.get(f"{component}.{match.group(1)}", ""), text)

    lines = [fill(parts.header_text, "header"), fill(parts.body, "body"), parts.footer]
    return "\n".join(line for line in lines if line)
