"""The API reference page: the OpenAPI document rendered on the server, for anyone signed in to the dashboard."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from app.blueprints.api import openapi_document

bp = Blueprint("api_reference", __name__, url_prefix="/api-reference")
METHODS = ("get", "post", "put", "patch", "delete")


@bp.get("")
def index():
    document = openapi_document()
    return render_template("api/reference.html", document=document, groups=_groups(document),
                           schemas=document["components"]["schemas"], type_text=type_text)


def _groups(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Operations by tag, in the document's order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["Other"])[0]
                groups.setdefault(tag, []).append({"method": method.upper(), "path": path, **operation,
                                                   "anchor": operation["operationId"]})
    return groups


def type_text(schema: dict[str, Any] | bool | None) -> str:
    """A schema as a short type name: `ContactOut`, `array of string`, `string or null`."""
    if not isinstance(schema, dict) or not schema:  # JSON Schema's `true`: anything
        return "any"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(type_text(part) for part in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {type_text(schema.get('items'))}"
    if "enum" in schema:
        return " | ".join(str(value) for value in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    if schema.get("type") == "object" and "additionalProperties" in schema:
        return f"object of {type_text(schema['additionalProperties'])}"
    return str(schema.get("type", "any")) + (f" ({schema['format']})" if "format" in schema else "")
