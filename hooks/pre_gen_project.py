"""The template's answer checks: one `ERROR: <question>: ...` line per problem, all of them at once.

They run twice. In process, when the last question is answered (`__answers_checked` in cookiecutter.json,
through agent_template_jinja.py), so a bad answer stops the run before anything is written and without a
traceback; and here, as the pre-generation hook, which also covers answers no question asked (a replay file).
Cookiecutter renders this file with Jinja; the answers arrive as one JSON string literal (data, never code).
Unrendered, the file is plain Python too, so tests and the Jinja extension import it and call ``validate``.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path

# Rendered by cookiecutter into a raw string holding JSON: tojson escapes single quotes (not double ones),
# so no answer can end the string.
ANSWERS_JSON = r'{{ cookiecutter | tojson }}'  # fmt: skip

# The rest is plain Python, not a template. {% raw %}
# fullmatch everywhere: `$` in re.match also accepts a trailing newline, which would start a new line in YAML,
# a Makefile or CODEOWNERS.
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DNS_LABEL_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
HOST_LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
URL_PATH_RE = re.compile(r"(/[A-Za-z0-9._~-]*)*")
PACKAGE_RE = re.compile(r"[a-z][a-z0-9_]*")
ACR_RE = re.compile(r"[a-z0-9]{5,50}\.azurecr\.(io|cn|us)")
EMAIL_RE = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
OWNER_RE = re.compile(r"@[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?|" + EMAIL_RE.pattern)
NAME_RE = re.compile(r"\w[\w .()&'-]*")
# Jinja's block, variable and comment openers: cookiecutter would render them, so no answer may hold one.
JINJA_MARKERS = ("{{", "{%", "{#")
# Free text lands in TOML, YAML, Dockerfile labels, Python strings and Markdown: keep out what needs escaping.
UNSAFE_TEXT = set('"\\`${}<>#%')
# Unicode categories that are invisible or break lines: controls, format (bidi overrides, zero-width),
# surrogates, private use, unassigned, line and paragraph separators.
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# Domains and top-level domains reserved for documentation (RFC 2606, RFC 6761): never a real platform.
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
EXAMPLE_TLDS = ("example", "invalid", "test", "localhost")

SLUG_MAX = 40
NAMESPACE_MAX = 63
HOST_MAX = 253
RESERVED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
RESERVED_PACKAGES = {"livekit", "livekit_platform_sdk", "lkps", "src", "test", "tests", "vendor", "charts"}
CHOICES = {
    "agent_identity": ("app_registration", "managed_identity"),
    "sdk_source": ("git", "package", "vendored"),
    "plugins": ("openai", "openai+deepgram+cartesia", "openai-realtime"),
    "telemetry_exporter": ("otlp", "azure_monitor", "none"),
    "ci_system": ("github", "azure_pipelines", "none"),
    "python_version": ("3.11", "3.12", "3.13"),
}
# The examples the docs and these errors show. For the questions in REQUIRED they are refused as answers:
# a repo generated with them looks ready and cannot work.
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
    "container_registry": "exampleagents.azurecr.io",
    "enforce_client_authz": "true",
    "client_app_ids": "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
    "sdk_index_url": "https://pkgs.dev.azure.com/example-org/_packaging/agents/pypi/simple/",
    "_sdk_path": "/path/to/template/sdk",
}
# Identity and URL answers: no usable default exists, so each must be given.
REQUIRED = {
    "owner_contact": "the owning team's e-mail address",
    "codeowners": "the GitHub/Azure DevOps handles that review changes",
    "entra_tenant_id": "your Entra tenant ID (Entra ID > Overview > Tenant ID)",
    "agent_entra_app_id": "the agent's app registration's Application (client) ID",
    "platform_app_id": "the platform service's app ID (ask the platform team)",
    "platform_url_nonprod": "the non-production platform URL (ask the platform team)",
    "platform_url_prod": "the production platform URL (ask the platform team)",
    "container_registry": "your Azure Container Registry login server",
}
GUID_QUESTIONS = ("entra_tenant_id", "agent_entra_app_id", "platform_app_id")
# Hosts an index URL may reach over plain http: a mirror on this machine, never a shared feed.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Where uv finds the SDK with sdk_source=git: the template repository itself, which the bake knows as
# cookiecutter's `_template`. cookiecutter's abbreviations, expanded as cookiecutter does.
ABBREVIATIONS = {
    "gh": "https://github.com/{}.git",
    "gl": "https://gitlab.com/{}.git",
    "bb": "https://bitbucket.org/{}",
}
SCP_LIKE_RE = re.compile(r"(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>[^/].*)")
GIT_URL_SCHEMES = ("https://", "http://", "ssh://", "file://")


def error(question: str, problem: str, *, example: bool = True) -> str:
    """One line in the shape every answer error has: question, problem, a valid example."""
    shown = EXAMPLES.get(question) or " or ".join(CHOICES.get(question, ()))
    suffix = f" (e.g. {shown})" if example and shown else ""
    return f"ERROR: {question}: {problem}{suffix}"


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _codepoint(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}"


def check_characters(question: str, value: object) -> list[str]:
    """What no answer may hold, whatever the question: Jinja syntax, invisible or line-breaking characters."""
    if not isinstance(value, str):
        return []
    markers = [marker for marker in JINJA_MARKERS if marker in value]
    if markers:
        shown = " ".join(repr(marker) for marker in markers)
        problem = f"contains Jinja template syntax ({shown}); answers are data, not templates: remove it"
        return [error(question, problem, example=False)]
    hidden = [ch for ch in value if unicodedata.category(ch) in INVISIBLE or (ch.isspace() and ch != " ")]
    if hidden:
        problem = f"contains the invisible or line-breaking character {_codepoint(hidden[0])}; remove it"
        return [error(question, problem, example=False)]
    return []


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
    if not problems and not NAME_RE.fullmatch(_text(value)):
        problems.append(error("agent_name", "use letters, digits, spaces and . ( ) & ' - only"))
    return problems


def check_slug(value: object) -> list[str]:
    slug = _text(value)
    if len(slug) > SLUG_MAX:
        problem = f"{slug!r} is {len(slug)} characters; Kubernetes names need <= {SLUG_MAX}"
        return [error("agent_slug", problem)]
    if not DNS_LABEL_RE.fullmatch(slug):
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
    if not PACKAGE_RE.fullmatch(name) or len(name) > SLUG_MAX:
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


def is_example(question: str, text: str) -> bool:
    return question in REQUIRED and text.lower() == EXAMPLES.get(question, "").lower()


def example_domain(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host.rsplit(".", 1)[-1] in EXAMPLE_TLDS:
        return True
    return any(host == domain or host.endswith("." + domain) for domain in EXAMPLE_DOMAINS)


def refuse_example(question: str, text: str) -> list[str]:
    problem = f"{text!r} is the documented example, not yours; give {REQUIRED[question]}"
    return [error(question, problem, example=False)]


def check_guid(question: str, value: object) -> list[str]:
    text = _text(value)
    if not GUID_RE.fullmatch(text):
        return [error(question, f"{text!r} is not a GUID (8-4-4-4-12 hexadecimal digits)")]
    if set(text.replace("-", "")) == {"0"}:
        return [error(question, "is the nil GUID; use the real ID from the Entra portal")]
    if is_example(question, text):
        return refuse_example(question, text)
    return []


def check_distinct_guids(answers: Mapping[str, object]) -> list[str]:
    problems = []
    seen: dict[str, str] = {}
    for question in GUID_QUESTIONS:
        text = _text(answers.get(question, "")).lower()
        if not GUID_RE.fullmatch(text):
            continue
        if text in seen:
            problems.append(
                error(question, f"is the same GUID as {seen[text]}; each must be a different Entra ID")
            )
        else:
            seen[text] = question
    return problems


def check_https_url(question: str, value: object) -> list[str]:
    """An https URL made only of characters that mean nothing to a shell, Make, YAML or TOML."""
    text = _text(value)
    if not text.startswith("https://"):
        return [error(question, f"{text!r} must start with https:// (the platform only accepts TLS)")]
    foreign = [ch for ch in text if not ch.isascii()]
    if foreign:
        problem = (
            f"{text!r} contains the non-ASCII character {_codepoint(foreign[0])}; type the host name in "
            "ASCII (punycode xn--... for an international name)"
        )
        return [error(question, problem)]
    authority, _, path = text[len("https://") :].partition("/")
    if "@" in authority or "?" in text or "#" in text:
        return [error(question, f"{text!r} must not carry credentials, a query or a fragment")]
    host, _, port = authority.partition(":")
    if not host:
        return [error(question, f"{text!r} has no host name")]
    labels = host.split(".")
    if len(host) > HOST_MAX or not all(HOST_LABEL_RE.fullmatch(label) for label in labels):
        problem = f"{text!r} has an invalid host name {host!r} (letters, digits, '-' and '.' only)"
        return [error(question, problem)]
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return [error(question, f"{text!r} is not a valid URL (port {port!r} is not 1-65535)")]
    if path and not URL_PATH_RE.fullmatch("/" + path):
        bad = sorted({ch for ch in path if not (ch.isalnum() or ch in "._~-/")})
        shown = " ".join(repr(ch) for ch in bad)
        problem = f"{text!r} has {shown} in its path; use letters, digits and . _ ~ - / only"
        return [error(question, problem)]
    if is_example(question, text.rstrip("/")) or example_domain(host):
        return refuse_example(question, text)
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
    if len(name) > NAMESPACE_MAX or not DNS_LABEL_RE.fullmatch(name):
        problem = f"{name!r} is not a DNS-1123 label of at most {NAMESPACE_MAX} characters"
        return [error("aks_namespace", problem)]
    if name in RESERVED_NAMESPACES:
        return [error("aks_namespace", f"{name!r} is a shared system namespace; give the agent its own")]
    return []


def check_registry(value: object) -> list[str]:
    text = _text(value)
    if not ACR_RE.fullmatch(text):
        return [
            error(
                "container_registry",
                f"{text!r} is not an Azure Container Registry login server "
                "(5-50 lowercase letters or digits, then .azurecr.io; no scheme, path or tag)",
            )
        ]
    if is_example("container_registry", text):
        return refuse_example("container_registry", text)
    return []


def check_email(value: object) -> list[str]:
    text = _text(value)
    if not EMAIL_RE.fullmatch(text):
        return [error("owner_contact", f"{text!r} is not an e-mail address")]
    if example_domain(text.rpartition("@")[2]):
        return refuse_example("owner_contact", text)
    return []


def check_codeowners(value: object) -> list[str]:
    owners = _text(value).split()
    bad = [owner for owner in owners if not OWNER_RE.fullmatch(owner)]
    if not owners:
        return [error("codeowners", "is empty; name at least one owner")]
    if bad:
        return [error("codeowners", f"{' '.join(bad)} is not an @handle, @org/team or e-mail")]
    examples = [
        owner
        for owner in owners
        if is_example("codeowners", owner) or ("@" in owner[1:] and example_domain(owner.rpartition("@")[2]))
    ]
    if examples:
        return refuse_example("codeowners", " ".join(examples))
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


def client_ids(value: object) -> list[str]:
    """The client app IDs of a `client_app_ids` answer, in order: separated by spaces or commas."""
    return [part for part in re.split(r"[\s,]+", _text(value)) if part]


def check_client_app_ids(value: object) -> list[str]:
    ids = client_ids(value)
    bad = [text for text in ids if not GUID_RE.fullmatch(text) or set(text.replace("-", "")) == {"0"}]
    if bad:
        shown = " ".join(repr(text) for text in bad)
        return [error("client_app_ids", f"{shown} is not a client app ID (a GUID, not the nil GUID)")]
    examples = [text for text in ids if text.lower() == EXAMPLES["client_app_ids"]]
    if examples:
        problem = (
            f"{examples[0]!r} is the documented example, not one of your client apps; give their app IDs"
        )
        return [error("client_app_ids", problem, example=False)]
    seen: set[str] = set()
    repeated = [text for text in ids if text.lower() in seen or seen.add(text.lower())]
    if repeated:
        return [error("client_app_ids", f"lists {repeated[0]} twice; name each client app once")]
    return []


def check_index_url(value: object) -> list[str]:
    """A package index URL: https (http only on loopback), no credentials, query or fragment."""
    text = _text(value)
    if not text:
        return []
    scheme, _, rest = text.partition("://")
    authority = rest.split("/", 1)[0]
    host = authority.rpartition("@")[2].rsplit(":", 1)[0] if not authority.endswith("]") else authority
    if scheme not in ("https", "http") or not rest:
        return [error("sdk_index_url", f"{text!r} must start with https://")]
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        return [
            error("sdk_index_url", f"{text!r} must start with https:// (http only for a feed on 127.0.0.1)")
        ]
    if any(not ch.isascii() or ch.isspace() for ch in text):
        return [error("sdk_index_url", f"{text!r} contains a space or a non-ASCII character")]
    if "@" in authority or "?" in text or "#" in text:
        problem = (
            f"{text!r} must not carry credentials, a query or a fragment: answers are stored in .cruft.json; "
            "give uv the credentials as UV_INDEX_LIVEKIT_PLATFORM_USERNAME/_PASSWORD or a keyring"
        )
        return [error("sdk_index_url", problem, example=False)]
    if not host or not all(
        HOST_LABEL_RE.fullmatch(label) for label in host.strip("[]").replace(":", ".").split(".")
    ):
        return [error("sdk_index_url", f"{text!r} has an invalid host name {host!r}")]
    path = rest[len(authority) :]
    if path and not URL_PATH_RE.fullmatch(path):
        return [
            error(
                "sdk_index_url",
                f"{text!r} has characters other than letters, digits and . _ ~ - / in its path",
            )
        ]
    if example_domain(host) or "example-org" in path:
        problem = f"{text!r} is the documented example, not your feed; give your feed's simple index URL"
        return [error("sdk_index_url", problem, example=False)]
    return []


def git_source(template: str) -> tuple[str, str]:
    """(the URL uv clones the SDK from with sdk_source=git, why it cannot): the template source cookiecutter
    or cruft was given (`_template`), as uv's `git` source takes it. One of the two is empty."""
    text = template.strip()
    prefix, colon, rest = text.partition(":")
    if colon and prefix in ABBREVIATIONS and not rest.startswith("//"):
        text = ABBREVIATIONS[prefix].format(rest)
    text = text.removeprefix("git+")
    if text.lower().rstrip("/").endswith(".zip"):
        return "", "is a zip archive, which git cannot clone"
    if text.startswith(GIT_URL_SCHEMES):
        return text, ""
    scp = SCP_LIKE_RE.fullmatch(text)
    if scp:
        return f"ssh://{scp['user']}@{scp['host']}/{scp['path']}", ""
    path = Path(text)
    if not text or not path.is_absolute():
        return "", "is not a git URL or an absolute path, so the generated repo cannot find it again"
    if not (path / ".git").exists() and not (path / "HEAD").is_file():
        return "", "is a folder that is not a git repository, which uv cannot clone"
    return path.as_uri(), ""


def check_combinations(answers: Mapping[str, object]) -> list[str]:
    """Answers that are each valid but cannot work together; each line names both questions."""
    problems = []
    identity, authz = answers.get("agent_identity"), answers.get("enforce_client_authz")
    if identity == "managed_identity" and authz is True:
        problems.append(
            error(
                "enforce_client_authz",
                "is true, but agent_identity is 'managed_identity': a managed identity has no app "
                "registration, so it cannot expose access_as_client or list pre-authorized clients, and the "
                "platform would refuse every client; choose agent_identity=app_registration or "
                "enforce_client_authz=false",
                example=False,
            )
        )
    if identity == "managed_identity" and client_ids(answers.get("client_app_ids", "")):
        problems.append(
            error(
                "client_app_ids",
                "are given, but agent_identity is 'managed_identity', which has no app registration to "
                "list pre-authorized clients on; choose agent_identity=app_registration or leave "
                "client_app_ids empty",
                example=False,
            )
        )
    agent = _text(answers.get("agent_entra_app_id", "")).lower()
    if agent and agent in (text.lower() for text in client_ids(answers.get("client_app_ids", ""))):
        problems.append(error("client_app_ids", "lists agent_entra_app_id itself; list the client apps only"))
    source, index = answers.get("sdk_source"), _text(answers.get("sdk_index_url", ""))
    if source == "package" and "sdk_index_url" in answers and not index:
        problem = (
            "has no answer, but sdk_source is 'package', which installs the SDK only from your feed: give "
            "its simple index URL, or choose sdk_source=git"
        )
        problems.append(error("sdk_index_url", problem, example=False))
    if source in ("git", "vendored") and index:
        problem = (
            f"is set, but sdk_source is {source!r}: only 'package' uses a feed; leave it empty or choose "
            "sdk_source=package"
        )
        problems.append(error("sdk_index_url", problem, example=False))
    template = answers.get("_template")
    if source == "git" and template is not None and not answers.get("_sdk_path"):
        problem = git_source(_text(template))[1]
        if problem:
            problems.append(
                error(
                    "sdk_source",
                    f"is 'git', but the template source {_text(template)!r} {problem}; create the repo "
                    "from the template's git URL (cruft create https://...), or choose sdk_source=package "
                    "or vendored",
                    example=False,
                )
            )
    return problems


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
    "client_app_ids": check_client_app_ids,
    "sdk_index_url": check_index_url,
    "_sdk_path": check_sdk_path,
    **{question: (lambda v, q=question: check_choice(q, v)) for question in CHOICES},
}


def validate(answers: Mapping[str, object], *, complete: bool = True) -> list[str]:
    """Every problem with the answers, in question order; empty when they are all valid.

    ``complete=False`` checks only the questions present (a replayed run asks only for some of them).
    """
    problems: list[str] = []
    for question, check in CHECKS.items():
        if question not in answers:
            if complete and not question.startswith("_"):
                problems.append(error(question, "has no answer"))
            continue
        value = answers[question]
        if question in REQUIRED and value in ("", None):
            problems.append(error(question, f"has no answer; give {REQUIRED[question]}", example=False))
            continue
        problems.extend(check_characters(question, value) or check(value))
    problems.extend(check_distinct_guids(answers))
    problems.extend(check_distinct_urls(answers))
    problems.extend(check_combinations(answers))
    return problems


def main() -> int:
    problems = validate(json.loads(ANSWERS_JSON))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("Nothing was generated: fix the answers above and run again.", file=sys.stderr)
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
