"""MkDocs hook: fills marker comments in pages with blocks rendered from the code, so the guide cannot drift.

``<!-- generated:openapi -->`` becomes the HTTP API reference (from ``lkps.api.openapi.document()``),
``<!-- generated:sdk-plugins -->`` the SDK's plugin table (from ``livekit_platform_sdk.plugins.catalog``),
``<!-- generated:settings KEY GROUP -->`` the table of one group of a settings class's variables, and
``<!-- generated:settings-error KEY -->`` the error those settings raise for a sample of mistakes (KEY:
``sdk``, ``service`` or ``agent``, the generated repo's ``AgentConfig``); the OpenAPI document itself is
published next to the reference as ``reference/openapi.json``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

OPENAPI_MARKER = "<!-- generated:openapi -->"
PLUGINS_MARKER = "<!-- generated:sdk-plugins -->"
OPENAPI_FILE = "reference/openapi.json"
_METHODS = ("get", "put", "post", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    from lkps.api.openapi import document

    return document()


# -- OpenAPI -> Markdown -------------------------------------------------------------------------------------


def _cell(text: object) -> str:
    """Table-cell safe: pipes escaped, newlines folded."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _resolve(schema: Mapping[str, Any], spec: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """``(component name, schema)`` for a ``$ref``; ``(None, schema)`` for an inline schema."""
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return None, schema
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise PluginError(f"OpenAPI: unsupported $ref {ref!r} (only {prefix}* is rendered)")
    name = ref[len(prefix) :]
    try:
        return name, spec["components"]["schemas"][name]
    except KeyError:
        raise PluginError(f"OpenAPI: $ref {ref!r} names no schema in components.schemas") from None


def _type(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    raw = schema.get("type", "any")
    kind = " or ".join(raw) if isinstance(raw, list) else str(raw)
    if kind == "array" and isinstance(schema.get("items"), Mapping) and "$ref" in schema["items"]:
        name = str(schema["items"]["$ref"]).rsplit("/", 1)[1]
        return f"array of [`{name}`](#schema-{name.lower()})"
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _constraints(schema: Mapping[str, Any]) -> str:
    parts = []
    if "default" in schema:
        parts.append(f"Default `{json.dumps(schema['default'])}`.")
    if "maxProperties" in schema:
        parts.append(f"At most {schema['maxProperties']} keys.")
    return " ".join(parts)


def _fields(schema: Mapping[str, Any], spec: Mapping[str, Any], prefix: str = "") -> Iterator[list[str]]:
    """Rows ``[field, type, required, notes]`` with nested objects flattened to dotted names."""
    _, schema = _resolve(schema, spec)
    required = set(schema.get("required", []))
    for name, raw in schema.get("properties", {}).items():
        ref_name, prop = _resolve(raw, spec)
        dotted = f"{prefix}{name}"
        notes = " ".join(p for p in (str(prop.get("description", "")), _constraints(prop)) if p)
        kind = f"[`{ref_name}`](#schema-{ref_name.lower()})" if ref_name else _type(prop)
        yield [f"`{dotted}`", kind, "yes" if name in required else "no", notes]
        if prop.get("type") == "object" and "properties" in prop:
            yield from _fields(prop, spec, prefix=f"{dotted}.")


def _field_table(schema: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    rows = list(_fields(schema, spec))
    if not rows:
        return [f"A JSON value of type {_type(_resolve(schema, spec)[1])}.", ""]
    lines = ["| Field | Type | Required | Notes |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _schema_link(schema: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    name, resolved = _resolve(schema, spec)
    return f"[`{name}`](#schema-{name.lower()})" if name else _type(resolved)


def _security(operation: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    options = operation.get("security", spec.get("security", []))
    if not options:
        return "none"
    names = [name for option in options for name in option]
    return " or ".join(f"[`{n}`](#security-{n.lower()})" for n in names)


def _operation(path: str, method: str, op: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    anchor = str(op.get("operationId", f"{method}-{path}")).lower()
    lines = [f"### `{method.upper()} {path}` {{#{anchor}}}", ""]
    if op.get("summary"):
        lines += [str(op["summary"]), ""]
    if op.get("description"):
        lines += [str(op["description"]), ""]
    lines += [f"**Authentication:** {_security(op, spec)}", ""]
    parameters = op.get("parameters", [])
    if parameters:
        lines += ["**Query parameters:**", "", "| Parameter | Type | Notes |", "|---|---|---|"]
        for parameter in parameters:
            schema = parameter.get("schema", {})
            notes = " ".join(p for p in (str(parameter.get("description", "")), _constraints(schema)) if p)
            lines.append(f"| `{parameter['name']}` | {_cell(_type(schema))} | {_cell(notes)} |")
        lines.append("")
    body = op.get("requestBody")
    if body:
        required = "required" if body.get("required") else "optional"
        for media, content in body.get("content", {}).items():
            lines += [f"**Request body** (`{media}`, {required}):", ""]
            lines += _field_table(content.get("schema", {}), spec)
    lines += ["**Responses:**", "", "| Status | Meaning | Body |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        schemas = [c.get("schema", {}) for c in response.get("content", {}).values()]
        body_cell = ", ".join(_schema_link(s, spec) for s in schemas) or "empty"
        lines.append(f"| `{status}` | {_cell(response.get('description', ''))} | {body_cell} |")
    return [*lines, ""]


def render_openapi(spec: Mapping[str, Any]) -> str:
    """The reference section for every operation, schema and security scheme of ``spec``."""
    info = spec.get("info", {})
    lines = [
        f"Rendered from the service's OpenAPI {spec.get('openapi', '')} document "
        f"(*{info.get('title', '')}* {info.get('version', '')}); download it as "
        f"[`openapi.json`](openapi.json) or fetch `GET /openapi.json` from a running service.",
        "",
        "## Operations",
        "",
        "| Method | Path | Summary |",
        "|---|---|---|",
    ]
    operations = [
        (path, method, item[method])
        for path, item in spec.get("paths", {}).items()
        for method in _METHODS
        if method in item
    ]
    if not operations:
        raise PluginError("OpenAPI: the document has no operations to render")
    for path, method, op in operations:
        anchor = str(op.get("operationId", f"{method}-{path}")).lower()
        lines.append(f"| `{method.upper()}` | [`{path}`](#{anchor}) | {_cell(op.get('summary', ''))} |")
    lines.append("")
    for path, method, op in operations:
        lines += _operation(path, method, op, spec)
    lines += ["## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += [f"### `{name}` {{#schema-{name.lower()}}}", ""]
        if schema.get("description"):
            lines += [str(schema["description"]), ""]
        lines += _field_table(schema, spec)
    lines += ["## Security schemes", ""]
    for name, scheme in spec.get("components", {}).get("securitySchemes", {}).items():
        if scheme.get("type") == "http":
            how = f"HTTP `{scheme.get('scheme')}` authentication"
            if scheme.get("bearerFormat"):
                how += f" ({scheme['bearerFormat']})"
        else:
            how = f"`{scheme.get('type')}` in the `{scheme.get('name')}` {scheme.get('in')}"
        lines += [f"### `{name}` {{#security-{name.lower()}}}", "", how + ".", ""]
    return "\n".join(lines)


# -- SDK plugin catalog -> Markdown --------------------------------------------------------------------------


def render_plugins() -> str:
    from livekit_platform_sdk.plugins.catalog import CATEGORIES, PLUGINS

    lines = [
        "| Extra | Import | Categories | Requirement |",
        "|---|---|---|---|",
    ]
    for plugin in PLUGINS:
        categories = ", ".join(plugin.categories)
        lines.append(
            f"| `{plugin.extra}` | `livekit_platform_sdk.plugins.{plugin.module}` | {categories} "
            f"| `{_cell(plugin.requirement)}` |"
        )
    extras = ", ".join(f"`{c}`" for c in CATEGORIES)
    lines += ["", f"Category extras ({extras}) install every plugin of that category."]
    return "\n".join(lines)


# -- settings classes -> Markdown ----------------------------------------------------------------------------

SETTINGS_MARKER = re.compile(r"<!-- generated:settings (\w+) (.+?) -->")
SETTINGS_ERROR_MARKER = re.compile(r"<!-- generated:settings-error (\w+) -->")
_TEMPLATE_CONFIG = (
    Path(__file__).resolve().parents[2]
    / "{{cookiecutter.agent_slug}}"
    / "src"
    / "{{cookiecutter.package_name}}"
    / "config.py"
)
# What each settings-error block shows: the error the settings raise for these variables (and the prefix the
# program prints before it).
_SAMPLE_MISTAKES: dict[str, tuple[str, dict[str, str]]] = {
    "sdk": (
        "",
        {"LIVEKIT_PLATFORM_SCOPE": "api://platform/.default", "LIVEKIT_PLATFORM_RENEW_MARGIN": "soon"},
    ),
    "service": (
        "lkps: ",
        {
            "LIVEKIT_URL": "wss://livekit.example.com",
            "LIVEKIT_API_KEY": "APIkey",
            "LIVEKIT_API_SECRET": "too-short",
            "LKPS_ENTRA_TENANT_ID": "11111111-2222-4333-8444-555555555555",
            "LKPS_ENTRA_AUDIENCES": "app-id",
        },
    ),
    "agent": ("", {"AGENT_DRAIN_TIMEOUT_SECONDS": "30m"}),
}


def settings_class(key: str) -> Any:
    """The settings class a marker names: the SDK's, the service's, or the generated repo's AgentConfig."""
    if key == "sdk":
        from livekit_platform_sdk.settings import Settings

        return Settings
    if key == "service":
        from lkps.settings import Settings as ServiceSettings

        return ServiceSettings
    if key == "agent":
        # the template file is plain Python (no Jinja), so it loads as a module
        spec = importlib.util.spec_from_file_location("generated_repo_config", _TEMPLATE_CONFIG)
        if spec is None or spec.loader is None:
            raise PluginError(f"settings: cannot load {_TEMPLATE_CONFIG}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.AgentConfig
    raise PluginError(f"settings: unknown settings class {key!r} (sdk, service or agent)")


def _default(field: Any, notes: Mapping[str, Any]) -> str:
    if field.is_required():
        return "required"
    if "default_text" in notes:
        return str(notes["default_text"])
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`" if value else "empty"
    if isinstance(value, (int, float)):
        from livekit_platform_sdk.envsettings import number_text

        return f"`{number_text(value)}`"
    return f"`{value}`" if value != "" else "empty"


def _meaning(field: Any) -> str:
    from livekit_platform_sdk.envsettings import allowed, is_secret, value_type

    parts = [str(field.description or "")]
    kind = value_type(field)
    accepted = allowed(field)
    if accepted:
        parts.append(f"Accepts {accepted}.")
    elif kind is bool:
        parts.append("`true` or `false`.")
    elif get_origin(kind) is tuple:
        parts.append("Comma-separated.")
    elif get_origin(kind) is Literal:
        parts.append("One of " + ", ".join(f"`{choice}`" for choice in get_args(kind)) + ".")
    if is_secret(field):
        parts.append("A secret: never logged, printed or shown in an error.")
    return " ".join(p for p in parts if p)


def settings_rows(cls: Any, group: str) -> list[tuple[str, str, str]]:
    """``(variable, default, meaning)`` for each field of ``cls`` in ``group``, in declaration order."""
    from livekit_platform_sdk.envsettings import field_notes, variable_of

    return [
        (variable_of(name, field), _default(field, field_notes(field)), _meaning(field))
        for name, field in cls.model_fields.items()
        if field_notes(field).get("group") == group
    ]


def render_settings(key: str, group: str) -> str:
    rows = settings_rows(settings_class(key), group)
    if not rows:
        raise PluginError(f"settings: {key} declares no variable in group {group!r}")
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {_cell(default)} | {_cell(meaning)} |" for name, default, meaning in rows]
    return "\n".join(lines)


def render_settings_error(key: str) -> str:
    prefix, env = _SAMPLE_MISTAKES[key]
    try:
        settings_class(key).from_env(env)
    except ValueError as error:
        return f"```text\n{prefix}{error}\n```"
    raise PluginError(f"settings: the sample mistakes for {key} raised no error")


# -- MkDocs events -------------------------------------------------------------------------------------------

_BLOCKS: dict[str, Callable[[], str]] = {
    OPENAPI_MARKER: lambda: render_openapi(openapi_document()),
    PLUGINS_MARKER: render_plugins,
}


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    files.append(
        File.generated(config, OPENAPI_FILE, content=json.dumps(openapi_document(), indent=2) + "\n")
    )
    return files


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    for marker, render in _BLOCKS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    markdown = SETTINGS_MARKER.sub(lambda m: render_settings(m[1], m[2]), markdown)
    return SETTINGS_ERROR_MARKER.sub(lambda m: render_settings_error(m[1]), markdown)
