"""Shape the generated repo to the answers: drop unchosen options' files, vendor the SDK, print next steps.

Runs with the generated repo as working directory, on first generation and again on every `cruft update`
(into a fresh copy), so every step is idempotent: removing a missing file is a no-op and the vendored SDK
is replaced as a whole. Unrendered, the file is plain Python, so tests import it and call its functions.
"""

from __future__ import annotations

import json
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


class HookError(RuntimeError):
    """A step failed in a way the user must fix; the message says how."""


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


def _export_from_git(template: str, commit: str, destination: Path) -> Path:
    """The SDK exactly as it was at the template commit that cruft generates from."""
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
        [git, "-C", str(repo), "archive", f"--output={archive}", commit, "sdk"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(scratch / "export", filter="data")
    shutil.copytree(scratch / "export" / "sdk", destination, ignore=SDK_IGNORE)
    shutil.rmtree(scratch)
    return destination


def sdk_source_dir(answers: Mapping[str, object]) -> Path | None:
    """Where the SDK to vendor lives: `_sdk_path`, else `sdk/` beside the template (`_repo_dir`)."""
    explicit = str(answers.get("_sdk_path") or "")
    if explicit:
        return Path(explicit)
    repo_dir = str(answers.get("_repo_dir") or "")
    if repo_dir and (Path(repo_dir) / "sdk" / "pyproject.toml").is_file():
        return Path(repo_dir) / "sdk"
    template = str(answers.get("_template") or "")
    if template and (Path(template) / "sdk" / "pyproject.toml").is_file() and not answers.get("_commit"):
        return Path(template) / "sdk"
    return None


def vendor_sdk(root: Path, answers: Mapping[str, object]) -> Path:
    """Replace vendor/livekit-platform-sdk with the SDK this template release ships."""
    destination = root / VENDOR_DIR
    if destination.exists():
        shutil.rmtree(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    source = sdk_source_dir(answers)
    if source is not None:
        shutil.copytree(source, destination, ignore=SDK_IGNORE)
        return destination
    template, commit = str(answers.get("_template") or ""), str(answers.get("_commit") or "")
    if template and commit:
        try:
            return _export_from_git(template, commit, destination)
        except (OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
            raise HookError(
                f"ERROR: sdk_source: could not export sdk/ from {template} at {commit}: {exc}"
            ) from exc
    raise HookError(
        "ERROR: sdk_source: 'vendored' needs the SDK source and none was found next to the template "
        "(pass it with --extra-context or extra_context: _sdk_path=/path/to/template/sdk)"
    )


def next_steps(answers: Mapping[str, object]) -> str:
    slug = answers["agent_slug"]
    lines = [
        f"Generated {slug}. Next steps:",
        f"  cd {slug} && git init && make setup      # uv lock + uv sync (commit uv.lock)",
        "  make test                                   # ruff + unit tests + smoke test on the SDK stand-ins",
        "  az login && make dev                        # run against the non-prod platform",
        "  infra/README.md                             # managed identity, federated credential, app role",
    ]
    if answers["ci_system"] == "github":
        lines.append("  .github/workflows/ci.yml                    # set the repository variables it lists")
    elif answers["ci_system"] == "azure_pipelines":
        lines.append("  azure-pipelines.yml                         # create the service connection it names")
    return "\n".join(lines)


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
    print(next_steps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
# {% endraw %}
