"""The one naming convention for template-variable inputs, used by the composer, the inbox's template reply and
auto-replies: `var-{key}-source`, `var-{key}-field` (a contact field), `var-{key}-text` (fixed text) and
`var-{key}-fallback`, where key is the variable's key, such as "body.1" or "header.media". The inbox and
auto-replies ask only for the text. A variable's error is shown under `var-{key}`.
"""

from __future__ import annotations

import re

from app.services.campaigns.drafts import VariableChoice

INPUT = re.compile(r"^var-(?P<key>.+)-(?P<part>source|field|text|fallback)$")


def name(key: str, part: str) -> str:
    return f"var-{key}-{part}"


def texts(form) -> dict[str, str]:
    """{variable key: typed text} from the `var-{key}-text` inputs."""
    return {match["key"]: value for field, value in form.items()
            if (match := INPUT.match(field)) and match["part"] == "text"}


def choices(form) -> dict[str, VariableChoice]:
    """{variable key: what fills it} from the composer's inputs; a variable is there once its source input is."""
    keys = [match["key"] for field in form if (match := INPUT.match(field)) and match["part"] == "source"]
    return {key: _choice(form, key) for key in keys}


def _choice(form, key: str) -> VariableChoice:
    source = form.get(name(key, "source"), "")
    value = form.get(name(key, "field" if source == "attribute" else "text"), "")
    return VariableChoice(source, value, form.get(name(key, "fallback"), ""))


def inputs(key: str, choice: VariableChoice) -> list[tuple[str, str]]:
    """The composer's inputs showing a saved choice."""
    return [(name(key, "source"), choice.source),
            (name(key, "field" if choice.source == "attribute" else "text"), choice.value),
            (name(key, "fallback"), choice.fallback)]


def error_field(key: str) -> str:
    """Where a variable's problem is shown."""
    return f"var-{key}"
