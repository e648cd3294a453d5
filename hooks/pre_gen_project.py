"""Reject invalid answers before the agent repo is generated: one `ERROR: <question>: ...` line each, exit 1.

Cookiecutter renders this file with Jinja; the answers arrive as one JSON string literal (data, never code).
Unrendered, the file is plain Python too, so tests import it and call ``validate`` directly.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

# Rendered by cookiecutter into a raw string holding JSON: tojson escapes single quotes (not double ones),
# so no answer can end the string.
ANSWERS_JSON = r'{{ cookiecutter | tojson }}'  # fmt: skip

# The rest is plain Python, not a template. {% raw %}
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DNS_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
PACKAGE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ACR_RE = re.compile(r"^[a-z0-9]{5,50}\.azurecr\.(io|cn|us)$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
OWNER_RE = re.compile(r"^(@[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?|" + EMAIL_RE.pattern[1:-1] + ")$")
NAME_RE = re.compile(r"^\w[\w .()&'-]*$")
# Free text lands in TOML, YAML, Dockerfile labels and Markdown: keep out what would need escaping there.
UNSAFE_TEXT = set('"\\`${}<>#%') | {chr(c) for c in range(32)}

SLUG_MAX = 40
NAMESPACE_MAX = 63
RESERVED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
RESERVED_PACKAGES = {"livekit", "livekit_platform_sdk", "lkps", "src", "test", "tests", "vendor", "charts"}
CHOICES = {
    "sdk_source": ("package", "vendored"),
    "plugins": ("openai", "openai+deepgram+cartesia", "openai-realtime"),
    "telemetry_exporter": ("otlp", "azure_monitor", "none"),
    "ci_system": ("github", "azure_pipelines", "none"),
    "python_version": ("3.11", "3.12", "3.13"),
}
EXAMPLES = {
    "agent_name": "Support Assistant",
    "agent_slug": "support-assistant",
    "package_name": "support_assistant",
    "description": "Answers questions about orders.",
    "owner_team": "Voice Agents Team",
    "owner_contact": "voice-agents@example.com",
    "codeowners": "@example-org/voice-agents",
    "entra_tenant_id": "8c2b5f0e-6d1a-4e3b-9f7c-1a2b3c4d5e6f",
    "agent_entra_app_id": "4f6e2d1c-3b5a-4978-8c6d-5e4f3a2b1c0d",
    "platform_app_id": "b1d2c3e4-f5a6-4b7c-8d9e-0a1b2c3d4e5f",
    "platform_url_nonprod": "https://livekit-platform.nonprod.example.com",
    "platform_url_prod": "https://livekit-platform.example.com",
    "aks_namespace": "support-assistant",
    "container_registry": "contosoagents.azurecr.io",
    "enforce_client_authz": "true",
    "_sdk_path": "/path/to/template/sdk",
}
GUID_QUESTIONS = ("entra_tenant_id", "agent_entra_app_id", "platform_app_id")


def error(question: str, problem: str) -> str:
    """One line in the shape every answer error has: question, problem, a valid example."""
    example = EXAMPLES.get(question) or " or ".join(CHOICES.get(question, ()))
    return f"ERROR: {question}: {problem} ({example})"


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def check_free_text(question: str, value: object, max_len: int) -> list[str]:
    text = _text(value)
    if not text.strip():
        return [error(question, "is empty; give a short text")]
    if text != text.strip():
        return [error(question, "has leading or trailing spaces; remove them")]
    if len(text) > max_len:
        return [error(question, f"is {len(text)} characters long; keep it to {max_len}")]
    bad = sorted({ch for ch in text if ch in UNSAFE_TEXT})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        return [error(question, f"contains {shown}, which cannot be used in generated files; remove it")]
    return []


def check_agent_name(value: object) -> list[str]:
    problems = check_free_text("agent_name", value, 60)
    if not problems and not NAME_RE.match(_text(value)):
        problems.append(error("agent_name", "use letters, digits, spaces and . ( ) & ' - only"))
    return problems


def check_slug(value: object) -> list[str]:
    slug = _text(value)
    if len(slug) > SLUG_MAX:
        problem = f"{slug!r} is {len(slug)} characters; Kubernetes names need <= {SLUG_MAX}"
        return [error("agent_slug", problem)]
    if not DNS_LABEL_RE.match(slug):
        return [
            error(
                "agent_slug",
                f"{slug!r} is not a DNS-1123 label: lowercase letters, digits and '-', "
                "starting with a letter and ending with a letter or digit",
            )
        ]
    return []


def check_package(value: object) -> list[str]:
    name = _text(value)
    if not PACKAGE_RE.match(name) or len(name) > SLUG_MAX:
        return [
            error(
                "package_name",
                f"{name!r} is not a valid package name: lowercase letters, digits and '_', "
                f"starting with a letter, at most {SLUG_MAX} characters",
            )
        ]
    if keyword.iskeyword(name) or name in RESERVED_PACKAGES or name in sys.stdlib_module_names:
        return [error("package_name", f"{name!r} would shadow a Python keyword, stdlib or platform module")]
    return []


def check_guid(question: str, value: object) -> list[str]:
    text = _text(value)
    if not GUID_RE.match(text):
        return [error(question, f"{text!r} is not a GUID (8-4-4-4-12 hexadecimal digits)")]
    if set(text.replace("-", "")) == {"0"}:
        return [error(question, "is the nil GUID; use the real ID from the Entra portal")]
    return []


def check_distinct_guids(answers: Mapping[str, object]) -> list[str]:
    problems = []
    seen: dict[str, str] = {}
    for question in GUID_QUESTIONS:
        text = _text(answers.get(question, "")).lower()
        if not GUID_RE.match(text):
            continue
        if text in seen:
            problems.append(
                error(question, f"is the same GUID as {seen[text]}; each must be a different Entra ID")
            )
        else:
            seen[text] = question
    return problems


def check_https_url(question: str, value: object) -> list[str]:
    text = _text(value)
    if any(ch.isspace() for ch in text):
        return [error(question, f"{text!r} contains whitespace")]
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises on a malformed port
    except ValueError as exc:
        return [error(question, f"{text!r} is not a valid URL ({exc})")]
    if parts.scheme != "https":
        return [error(question, f"{text!r} must use https (the platform only accepts TLS)")]
    if not parts.hostname:
        return [error(question, f"{text!r} has no host name")]
    if parts.username or parts.password or parts.query or parts.fragment:
        return [error(question, f"{text!r} must not carry credentials, a query or a fragment")]
    return []


def check_distinct_urls(answers: Mapping[str, object]) -> list[str]:
    nonprod = _text(answers.get("platform_url_nonprod", "")).rstrip("/")
    prod = _text(answers.get("platform_url_prod", "")).rstrip("/")
    if nonprod and nonprod == prod:
        problem = "is the same URL as platform_url_nonprod; give each environment its own"
        return [error("platform_url_prod", problem)]
    return []


def check_namespace(value: object) -> list[str]:
    name = _text(value)
    if len(name) > NAMESPACE_MAX or not DNS_LABEL_RE.match(name):
        problem = f"{name!r} is not a DNS-1123 label of at most {NAMESPACE_MAX} characters"
        return [error("aks_namespace", problem)]
    if name in RESERVED_NAMESPACES:
        return [error("aks_namespace", f"{name!r} is a shared system namespace; give the agent its own")]
    return []


def check_registry(value: object) -> list[str]:
    text = _text(value)
    if not ACR_RE.match(text):
        return [
            error(
                "container_registry",
                f"{text!r} is not an Azure Container Registry login server "
                "(5-50 lowercase letters or digits, then .azurecr.io; no scheme, path or tag)",
            )
        ]
    return []


def check_email(value: object) -> list[str]:
    text = _text(value)
    return [] if EMAIL_RE.match(text) else [error("owner_contact", f"{text!r} is not an e-mail address")]


def check_codeowners(value: object) -> list[str]:
    owners = _text(value).split()
    bad = [owner for owner in owners if not OWNER_RE.match(owner)]
    if not owners:
        return [error("codeowners", "is empty; name at least one owner")]
    if bad:
        return [error("codeowners", f"{' '.join(bad)} is not an @handle, @org/team or e-mail")]
    return []


def check_bool(question: str, value: object) -> list[str]:
    if isinstance(value, bool):
        return []
    return [error(question, f"{value!r} is not a yes/no answer")]


def check_choice(question: str, value: object) -> list[str]:
    allowed = CHOICES[question]
    if value in allowed:
        return []
    return [error(question, f"{value!r} is not one of the choices")]


def check_sdk_path(value: object) -> list[str]:
    text = _text(value)
    if not text:
        return []
    if not (Path(text) / "pyproject.toml").is_file():
        return [error("_sdk_path", f"{text!r} is not a directory holding the SDK's pyproject.toml")]
    return []


CHECKS: dict[str, Callable[[object], list[str]]] = {
    "agent_name": check_agent_name,
    "agent_slug": check_slug,
    "package_name": check_package,
    "description": lambda v: check_free_text("description", v, 200),
    "owner_team": lambda v: check_free_text("owner_team", v, 80),
    "owner_contact": check_email,
    "codeowners": check_codeowners,
    "entra_tenant_id": lambda v: check_guid("entra_tenant_id", v),
    "agent_entra_app_id": lambda v: check_guid("agent_entra_app_id", v),
    "platform_app_id": lambda v: check_guid("platform_app_id", v),
    "platform_url_nonprod": lambda v: check_https_url("platform_url_nonprod", v),
    "platform_url_prod": lambda v: check_https_url("platform_url_prod", v),
    "aks_namespace": check_namespace,
    "container_registry": check_registry,
    "enforce_client_authz": lambda v: check_bool("enforce_client_authz", v),
    "_sdk_path": check_sdk_path,
    **{question: (lambda v, q=question: check_choice(q, v)) for question in CHOICES},
}


def validate(answers: Mapping[str, object]) -> list[str]:
    """Every problem with the answers, in question order; empty when they are all valid."""
    problems: list[str] = []
    for question, check in CHECKS.items():
        if question not in answers:
            if not question.startswith("_"):
                problems.append(error(question, "has no answer"))
            continue
        problems.extend(check(answers[question]))
    problems.extend(check_distinct_guids(answers))
    problems.extend(check_distinct_urls(answers))
    return problems


def main() -> int:
    problems = validate(json.loads(ANSWERS_JSON))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("Nothing was generated: fix the answers above and run cookiecutter again.", file=sys.stderr)
        return 1
    return 0


def remove_rendered_copy(script: Path) -> None:
    """cookiecutter runs this hook from a rendered copy in the temporary directory and never deletes it
    (cookiecutter#886), so every bake or ``cruft update`` would leave one behind: remove that copy, never
    the template's own file."""
    if script.parent == Path(tempfile.gettempdir()).resolve() and script.name.startswith("tmp"):
        script.unlink(missing_ok=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        remove_rendered_copy(Path(__file__).resolve())
# {% endraw %}
