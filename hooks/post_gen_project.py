"""Shape the generated repo to the answers: drop unchosen options' files, vendor the SDK and its stand-ins,
print next steps.

Runs with the generated repo as working directory, on first generation and again on every `cruft update`
and `cruft diff` (into a fresh temporary copy), so every step is idempotent: removing a missing file is a
no-op and the vendored SDK and stand-ins are replaced as a whole. It never writes `.cruft.json`: `cruft
create` does, and a repo made with plain cookiecutter gets it from `make link` (`cruft link`), fed the
answers kept here.
Unrendered, the file is plain Python, so tests import it and call its functions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

# Rendered by cookiecutter into a raw string holding JSON: tojson escapes single quotes (not double ones),
# so no answer can end the string.
ANSWERS_JSON = r'{{ cookiecutter | tojson }}'  # fmt: skip

# The rest is plain Python, not a template. {% raw %}
VENDOR_DIR = Path("vendor") / "livekit-platform-sdk"
# The template checkout's folders a vendored repo gets, and where: the SDK and its stand-ins (dev dependency).
VENDORED = {"sdk": VENDOR_DIR, "testing": Path("vendor") / "livekit-platform-testing"}
SDK_IGNORE = shutil.ignore_patterns(
    "__pycache__",
    "*.pyc",
    ".venv",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "dist",
    "build",
    "*.egg-info",
)


# Written only when plain cookiecutter made the repo: the answers `make link` hands to `cruft link`, which
# then writes .cruft.json itself (cruft create writes it directly; cruft update owns it).
LINK_ANSWERS = ".cookiecutter-answers.json"
# `make update` sets it: the hook then renders a throwaway copy for cruft to diff, and onboarding is not news.
UPDATE_ENV = "AGENT_TEMPLATE_UPDATE"
# A template argument `cruft link` can clone again: a URL, scp-like git@host:path, or an absolute path.
CLONABLE_RE = re.compile(r"^([A-Za-z][\w+.-]*://|[\w.-]+@[\w.-]+:|/)")
# A template source other machines can clone too (not a path or file:// URL on this one).
CLONABLE_URL_RE = re.compile(r"^((git\+)?(https?|ssh)://|[\w.-]+@[\w.-]+:|(gh|gl|bb):)")


class HookError(RuntimeError):
    """A step failed in a way the user must fix; the message says how."""


def generated_by_cruft(answers: Mapping[str, object]) -> bool:
    """cruft (create, update, diff) adds `_commit` to the context; plain cookiecutter never does."""
    return "_commit" in answers


def find_template_checkout(answers: Mapping[str, object]) -> Path | None:
    """The template directory plain cookiecutter rendered: its `_repo_dir`, when that is an absolute path (a
    clone of a git URL always is; a local template is as the user typed it, relative to a directory this hook
    cannot know)."""
    raw = Path(str(answers.get("_repo_dir") or ""))
    if raw.is_absolute() and (raw / "cookiecutter.json").is_file() and (raw / "hooks").is_dir():
        return raw
    return None


def link_answers(answers: Mapping[str, object]) -> dict[str, object]:
    """The questions' answers as `cruft link --extra-context` takes them (private keys come from the
    template)."""
    return {key: value for key, value in answers.items() if not key.startswith("_")}


def write_link_answers(root: Path, answers: Mapping[str, object]) -> bool:
    """Keep the answers for `make link` when plain cookiecutter made the repo; True when written."""
    if generated_by_cruft(answers) or (root / ".cruft.json").exists():
        return False
    text = json.dumps(link_answers(answers), ensure_ascii=False, indent=2) + "\n"
    (root / LINK_ANSWERS).write_text(text, encoding="utf-8")
    return True


def link_command(answers: Mapping[str, object]) -> str:
    """`make link` with the template and release cookiecutter was given, where cruft can clone them as
    they are."""
    template = str(answers.get("_template") or "")
    checkout = str(answers.get("_checkout") or f"v{answers.get('_template_version', '')}")
    shown = shlex.quote(template) if CLONABLE_RE.match(template) else "<template git URL>"
    return f"make link TEMPLATE={shown} CHECKOUT={shlex.quote(checkout)}"


def unchosen_paths(answers: Mapping[str, object]) -> list[Path]:
    """Files and folders that belong to options the answers did not choose."""
    package = str(answers["package_name"])
    paths: list[Path] = []
    if answers["ci_system"] != "github":
        paths += [Path(".github/workflows"), Path(".github/dependabot.yml")]
    else:
        # GitHub repos get Dependabot; everything else (Azure Repos included) gets Renovate.
        paths.append(Path("renovate.json"))
    if answers["ci_system"] != "azure_pipelines":
        paths.append(Path("azure-pipelines.yml"))
    if answers["telemetry_exporter"] != "azure_monitor":
        paths.append(Path("src") / package / "telemetry.py")
    if answers["sdk_source"] != "vendored":
        paths.append(Path("vendor"))
    return paths


def prune(root: Path, answers: Mapping[str, object]) -> list[Path]:
    """Remove the unchosen paths under root (and a .github left empty); returns what was removed."""
    removed = []
    for relative in unchosen_paths(answers):
        path = root / relative
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(relative)
        elif path.exists():
            path.unlink()
            removed.append(relative)
    github = root / ".github"
    if github.is_dir() and not any(github.iterdir()):
        github.rmdir()
    return removed


def _export_from_git(template: str, commit: str, root: Path) -> Path:
    """The vendored packages exactly as they were at the template commit that cruft generates from."""
    git = shutil.which("git") or "git"
    scratch = Path(tempfile.mkdtemp(prefix="template-sdk-"))
    repo = Path(template)
    if not (repo / ".git").exists():
        # fixed argv; the URL is cruft's own template source
        subprocess.run(  # noqa: S603
            [
                git,
                "clone",
                "--quiet",
                "--no-checkout",
                "--filter=blob:none",
                template,
                str(scratch / "repo"),
            ],
            check=True,
        )
        repo = scratch / "repo"
    archive = scratch / "sdk.tar"
    subprocess.run(  # noqa: S603
        [git, "-C", str(repo), "archive", f"--output={archive}", commit, *VENDORED],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(scratch / "export", filter="data")
    for folder, vendored in VENDORED.items():
        shutil.copytree(scratch / "export" / folder, root / vendored, ignore=SDK_IGNORE)
    shutil.rmtree(scratch)
    return root / VENDOR_DIR


def sdk_source_dir(answers: Mapping[str, object]) -> Path | None:
    """Where the SDK to vendor lives: `_sdk_path`, else `sdk/` beside the template (`_repo_dir`)."""
    explicit = str(answers.get("_sdk_path") or "")
    if explicit:
        return Path(explicit)
    checkout = find_template_checkout(answers)
    if checkout is not None and (checkout / "sdk" / "pyproject.toml").is_file():
        return checkout / "sdk"
    return None


def vendor_sdk(root: Path, answers: Mapping[str, object]) -> Path:
    """Replace vendor/livekit-platform-sdk and vendor/livekit-platform-testing with this release's (the
    stand-ins come from the `testing/` beside the SDK's folder)."""
    for vendored in VENDORED.values():
        if (root / vendored).exists():
            shutil.rmtree(root / vendored)
    (root / VENDOR_DIR).parent.mkdir(parents=True, exist_ok=True)
    source = sdk_source_dir(answers)
    if source is not None:
        for folder, vendored in VENDORED.items():
            shutil.copytree(
                source if folder == "sdk" else source.parent / folder, root / vendored, ignore=SDK_IGNORE
            )
        return root / VENDOR_DIR
    template, commit = str(answers.get("_template") or ""), str(answers.get("_commit") or "")
    if template and commit:
        try:
            return _export_from_git(template, commit, root)
        except (OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
            raise HookError(
                f"ERROR: sdk_source: could not export sdk/ and testing/ from {template} at {commit}: {exc}"
            ) from exc
    raise HookError(
        "ERROR: sdk_source: 'vendored' needs the SDK source and none was found next to the template: give "
        "cookiecutter the template's git URL or absolute path, or pass _sdk_path=/path/to/template/sdk"
    )


def next_steps(answers: Mapping[str, object]) -> str:
    slug, version = answers["agent_slug"], answers.get("_template_version", "")
    lines = [f"Generated {slug} from agent template {version}. Next steps:", f"  cd {slug}"]
    if not generated_by_cruft(answers):
        lines += [
            f"  {link_command(answers)}",
            "                                              # cruft link writes .cruft.json",
        ]
    lines += [
        f"  git init && git add -A && git commit -m 'Generate from agent template {version}'",
        "                                              # commit it untouched: updates merge against it",
        "  make setup                                  # uv lock + uv sync (commit uv.lock)",
        "  make test                                   # ruff + unit tests + smoke test on the SDK stand-ins",
        "  az login && make dev                        # run against the non-prod platform",
        "  infra/README.md                             # "
        + (
            "the app registration's scope, clients, federated credential, app role"
            if answers.get("agent_identity", "app_registration") == "app_registration"
            else "managed identity, federated credential, app role"
        ),
        f"  charts/{slug}/values-team-*.yaml   # your per-environment chart settings",
    ]
    if answers["ci_system"] == "github":
        lines.append("  .github/workflows/ci.yml                    # set the repository variables it lists")
    elif answers["ci_system"] == "azure_pipelines":
        lines.append("  azure-pipelines.yml                         # create the service connection it names")
    lines.append("  make update                                 # later: take a newer template release")
    lines += warnings(answers)
    return "\n".join(lines)


def warnings(answers: Mapping[str, object]) -> list[str]:
    """What works today but not for the whole team, or not for clients yet."""
    notes = []
    template = str(answers.get("_template") or "")
    if (
        answers.get("sdk_source") == "git"
        and not answers.get("_sdk_path")
        and not CLONABLE_URL_RE.match(template)
    ):
        notes.append(
            f"Note: sdk_source=git takes the SDK from {template}, which only this machine can reach: create "
            "the repo from the template's git URL so that CI and your team resolve it too."
        )
    enforced = answers.get("enforce_client_authz") is True
    if (
        enforced
        and answers.get("agent_identity") == "app_registration"
        and not str(answers.get("client_app_ids") or "").strip()
    ):
        notes.append(
            "Note: no client app is pre-authorized yet, so the platform refuses every session for this "
            'agent (403): add them with make update ANSWERS=\'{"client_app_ids": "<app id> ..."}\', '
            "then deploy infra/."
        )
    return notes


def main() -> int:
    answers = json.loads(ANSWERS_JSON)
    root = Path.cwd()
    prune(root, answers)
    if answers["sdk_source"] == "vendored":
        try:
            vendor_sdk(root, answers)
        except HookError as exc:
            print(exc, file=sys.stderr)
            return 1
    write_link_answers(root, answers)
    if not os.environ.get(UPDATE_ENV):
        print(next_steps(answers))
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
