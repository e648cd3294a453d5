"""Shape the generated repo to the answers: drop unchosen options' files, vendor the SDK and its stand-ins,
record its origin.

Runs with the generated repo as working directory, on first generation and again on every `cruft update`
and `cruft diff` (into a fresh temporary copy), so every step is idempotent: removing a missing file is a
no-op, the vendored SDK and stand-ins are replaced, `.cruft.json` is only written when plain cookiecutter made
the repo, and the onboarding text is only printed on first generation.
Unrendered, the file is plain Python, so tests import it and call its functions.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

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


CRUFT_FILE = ".cruft.json"
# Keys plain cookiecutter adds to the context that cruft never records: paths on the generating machine.
COOKIECUTTER_ONLY_KEYS = ("_output_dir", "_repo_dir", "_checkout")
# Private answers that only make sense on the generating machine, recorded as their cookiecutter.json
# default. cruft never feeds private keys back into an update (it re-reads them from the new release), so
# the recorded value is informational only.
MACHINE_SPECIFIC_DEFAULTS = {"_sdk_path": ""}
# cookiecutter's remote template forms: URLs (https:, git+ssh:, file:), abbreviations (gh:, gl:, bb:) and
# scp-like git@host:path. A local path has none of these prefixes.
REMOTE_TEMPLATE_RE = re.compile(r"^([A-Za-z][\w+.-]+:|[\w.-]+@[\w.-]+:)")


class HookError(RuntimeError):
    """A step failed in a way the user must fix; the message says how."""


class TemplateOrigin(NamedTuple):
    """Where a generation came from, as cruft records it."""

    template: str
    commit: str
    directory: str | None
    uncommitted: list[str]
    question_order: list[str]


def team_owned_paths(answers: Mapping[str, object]) -> list[str]:
    """Files the agent team owns: listed in .cruft.json `skip`, so template updates never touch them.

    scripts/check_template_update.py in the generated repo holds the same list (to repair a `skip` that
    `cruft create` could not write); tests/template/test_upgrade.py proves the two agree.
    """
    package, slug = answers["package_name"], answers["agent_slug"]
    return [
        f"src/{package}/agent.py",
        "tests/test_local_time_tool.py",
        f"charts/{slug}/values-team-nonprod.yaml",
        f"charts/{slug}/values-team-prod.yaml",
    ]


def generated_by_cruft(answers: Mapping[str, object]) -> bool:
    """cruft (create, update, diff) adds `_commit` to the context; plain cookiecutter never does."""
    return "_commit" in answers


def regenerating_for_cruft(answers: Mapping[str, object], cwd: Path) -> bool:
    """True while `cruft update`/`cruft diff` renders a throwaway copy to diff against the project.

    cruft has no flag for this (cruft/cruft#143); it renders into a fresh `tempfile.TemporaryDirectory()`
    (`utils/generate.py: _generate_output`), so the repo lands at <tempdir>/tmpXXXXXXXX/<slug>.
    """
    if not generated_by_cruft(answers):
        return False
    parent = cwd.resolve().parent
    return parent.name.startswith("tmp") and parent.parent == Path(tempfile.gettempdir()).resolve()


def _git(args: list[str], cwd: Path) -> str:
    git = shutil.which("git") or "git"
    # fixed argv: git plumbing on the template checkout
    result = subprocess.run(  # noqa: S603
        [git, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout


def _parent_process_cwd() -> Path | None:
    # cookiecutter runs hooks from inside the template directory (hooks.run_hook_from_repo_dir: work_in)
    try:
        return Path(os.readlink(f"/proc/{os.getppid()}/cwd"))
    except OSError:
        return None


def find_template_checkout(answers: Mapping[str, object]) -> Path | None:
    """The template directory cookiecutter rendered (its `_repo_dir`, made absolute), or None."""
    raw = str(answers.get("_repo_dir") or "")
    if not raw:
        return None
    candidates = [Path(raw)] if Path(raw).is_absolute() else []
    if not candidates:
        # relative to the directory cookiecutter was started from: the shell's PWD, else (Linux) the
        # cookiecutter process's own working directory, which is the template while hooks run
        if os.environ.get("PWD"):
            candidates.append(Path(os.environ["PWD"]) / raw)
        parent_cwd = _parent_process_cwd()
        if parent_cwd is not None:
            candidates.append(parent_cwd)
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file() and (candidate / "hooks").is_dir():
            return candidate.resolve()
    return None


def template_origin(answers: Mapping[str, object]) -> TemplateOrigin:
    """Template source, commit and sub-directory of a plain cookiecutter run, read from the checkout's git."""
    checkout = find_template_checkout(answers)
    if checkout is None:
        raise HookError(
            f"could not locate the template directory {answers.get('_repo_dir')!r} that cookiecutter used"
        )
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], checkout).strip())
        commit = _git(["rev-parse", "HEAD"], checkout).strip()
        prefix = _git(["rev-parse", "--show-prefix"], checkout).strip().rstrip("/")
        inputs = [p.name for p in checkout.iterdir() if p.name in ("cookiecutter.json", "hooks", *VENDORED)]
        inputs += [p.name for p in checkout.glob("{{cookiecutter.*}}")]
        # the template's own inputs only: the rest of the repository does not shape generated repos
        status = _git(["status", "--porcelain", "--", *inputs], checkout)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise HookError(f"the template at {checkout} is not a git checkout with a commit ({exc})") from exc
    template = str(answers.get("_template") or "")
    if REMOTE_TEMPLATE_RE.match(template):
        # cookiecutter cloned it: the clone's origin is the expanded URL (gh:org/x -> https://github.com/...)
        with contextlib.suppress(subprocess.CalledProcessError):
            template = _git(["remote", "get-url", "origin"], checkout).strip()
    else:
        # like `cruft create <path>`: the absolute path of the checkout
        template = str(top)
    uncommitted = [line[3:] for line in status.splitlines() if line.strip()]
    return TemplateOrigin(template, commit, prefix or None, uncommitted, _question_order(checkout))


def _question_order(checkout: Path) -> list[str]:
    try:
        questions = json.loads((checkout / "cookiecutter.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [key for key in questions if not key.startswith("__")]


def cruft_state(answers: Mapping[str, object], origin: TemplateOrigin) -> dict[str, object]:
    """.cruft.json as `cruft create` writes it (same keys and order), plus the team-owned `skip` list."""
    recorded = {key: value for key, value in answers.items() if key not in COOKIECUTTER_ONLY_KEYS}
    recorded |= {key: default for key, default in MACHINE_SPECIFIC_DEFAULTS.items() if key in recorded}
    # the hook receives the answers sorted (Jinja's tojson); cruft writes cookiecutter.json's order, so the
    # first `cruft update` would otherwise reorder the whole file
    order = [key for key in origin.question_order if key in recorded]
    context = {key: recorded[key] for key in [*order, *sorted(set(recorded) - set(order))]}
    context["_template"] = origin.template
    context["_commit"] = origin.commit
    return {
        "template": origin.template,
        "commit": origin.commit,
        "checkout": answers.get("_checkout") or None,
        "context": {"cookiecutter": context},
        "directory": origin.directory,
        "skip": team_owned_paths(answers),
    }


def dump_cruft_state(state: Mapping[str, object]) -> str:
    """cruft's own serialisation (cruft/_commands/utils/cruft.py: json_dumps), so updates diff cleanly."""
    return json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"


def record_origin(root: Path, answers: Mapping[str, object]) -> list[str]:
    """Write .cruft.json when plain cookiecutter made the repo; returns warnings for the user.

    cruft writes its own file after this hook (create) or owns it (update), and an existing file is the
    project's linked state: both are left alone.
    """
    if generated_by_cruft(answers) or (root / CRUFT_FILE).exists():
        return []
    try:
        origin = template_origin(answers)
    except HookError as exc:
        return [
            f"WARNING: {CRUFT_FILE}: not written: {exc}. Link the repo to the template after `git init` "
            "with `uvx --from cruft cruft link <template-git-url> --checkout <tag>`, then run "
            "`python3 scripts/check_template_update.py --fix-skip`."
        ]
    (root / CRUFT_FILE).write_text(dump_cruft_state(cruft_state(answers, origin)), encoding="utf-8")
    if not origin.uncommitted:
        return []
    shown = ", ".join(origin.uncommitted[:5]) + (" ..." if len(origin.uncommitted) > 5 else "")
    return [
        f"WARNING: {CRUFT_FILE}: the template checkout has uncommitted changes ({shown}); the file records "
        f"commit {origin.commit[:12]}, so `cruft diff` shows those changes until the next template update. "
        "Generate from a committed release tag for an exact record."
    ]


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
    template = str(answers.get("_template") or "")
    if template and (Path(template) / "sdk" / "pyproject.toml").is_file() and not answers.get("_commit"):
        return Path(template) / "sdk"
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
        "ERROR: sdk_source: 'vendored' needs the SDK source and none was found next to the template "
        "(pass it with --extra-context or extra_context: _sdk_path=/path/to/template/sdk)"
    )


def next_steps(answers: Mapping[str, object]) -> str:
    slug, version = answers["agent_slug"], answers.get("_template_version", "")
    lines = [
        f"Generated {slug} from agent template {version}. Next steps:",
        f"  cd {slug} && git init && git add -A && git commit -m 'Generate from agent template {version}'",
        "                                              # commit it untouched: updates merge against it",
        "  make setup                                  # uv lock + uv sync (commit uv.lock)",
        "  make test                                   # ruff + unit tests + smoke test on the SDK stand-ins",
        "  az login && make dev                        # run against the non-prod platform",
        "  infra/README.md                             # managed identity, federated credential, app role",
        f"  charts/{slug}/values-team-*.yaml   # your per-environment chart settings",
    ]
    if answers["ci_system"] == "github":
        lines.append("  .github/workflows/ci.yml                    # set the repository variables it lists")
    elif answers["ci_system"] == "azure_pipelines":
        lines.append("  azure-pipelines.yml                         # create the service connection it names")
    lines.append("  make update                                 # later: take a newer template release")
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
    for warning in record_origin(root, answers):
        print(warning, file=sys.stderr)
    if not regenerating_for_cruft(answers, root):
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
