"""Creating and upgrading generated repos: `cruft create` (or plain cookiecutter, then `make link`) records
the origin in .cruft.json, the repo's own checks pass with no manual step, `make update` brings a template
release and keeps the team's files, conflicts stay visible, a changed answer re-renders only what it controls.

Each test releases a throwaway git copy of this checkout's template (v0.1.0, then v0.2.0) and drives cruft
through its command line (as the docs and `make` do) or its Python API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cruft
import pytest
import tomllib
import yaml
from cookiecutter.main import cookiecutter

from tests.support.baking import REQUIRED_ANSWERS, Baker
from tests.support.generated_repo import run
from tests.support.paths import REPO
from tests.support.template_repo import TEMPLATE_DIR, TemplateRepo, commit_all, git, init_project
from tests.support.tools import uv_binary

# The one way to create a repo, as README.md, docs/getting-started.md and docs/upgrading.md give it.
CREATE = "uvx --from cruft==2.16.0 cruft create <template git URL> --checkout vX.Y.Z"
CRUFT_PIN = "cruft==2.16.0"
CHART = TEMPLATE_DIR + "/charts/{{cookiecutter.agent_slug}}"
TEMPLATE_AGENT = TEMPLATE_DIR + "/src/{{cookiecutter.package_name}}/agent.py"
NEW_LABEL = 'LABEL org.example.agent-template="0.2.0"'
SDK_RANGE = json.loads((REPO / "cookiecutter.json").read_text())["_sdk_version_range"]
SDK_VERSION = tomllib.loads((REPO / "sdk" / "pyproject.toml").read_text())["project"]["version"]
_MAJOR, _MINOR = (int(part) for part in SDK_VERSION.split(".")[:2])
NEW_SDK = f'version = "{_MAJOR}.{_MINOR + 1}.0"'
NEW_SDK_RANGE = f">={_MAJOR}.{_MINOR + 1},<{_MAJOR}.{_MINOR + 2}"
TEAM_CLIENT_ID = "0f1e2d3c-4b5a-4697-8d8e-9f0a1b2c3d4e"


@pytest.fixture(autouse=True)
def isolated_cookiecutter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cookiecutter and cruft read the user config (replay and clone folders) from here, never from ~
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'cookiecutters'}\nreplay_dir: {tmp_path / 'replay'}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))


@pytest.fixture
def template(tmp_path: Path) -> TemplateRepo:
    return TemplateRepo.first_release(tmp_path / "template", "0.1.0")


def create(template: TemplateRepo, output: Path, **answers: Any) -> Path:
    """`cruft create` at the release tag, the documented way to create a repo."""
    context = {**REQUIRED_ANSWERS, **answers}
    return cruft.create(str(template.path), output_dir=output, checkout="v0.1.0", extra_context=context)


def generate(template: TemplateRepo, output: Path, **answers: Any) -> Path:
    """Plain cookiecutter, as a team without cruft runs it."""
    context = {**REQUIRED_ANSWERS, **answers}
    return Path(
        cookiecutter(
            str(template.path),
            checkout="v0.1.0",
            no_input=True,
            extra_context=context,
            output_dir=str(output),
        )
    )


def release_0_2_0(template: TemplateRepo) -> str:
    """Edits template-owned files (Dockerfile, chart, new and removed files, SDK) and team-owned ones."""
    template.edit(TEMPLATE_DIR + "/Dockerfile", lambda text: text + NEW_LABEL + "\n")
    template.edit(CHART + "/Chart.yaml", lambda text: text.replace("version: 0.1.0", "version: 0.2.0"))
    runbook = template.generated / "docs" / "runbook.md"
    runbook.parent.mkdir()
    runbook.write_text("# {{ cookiecutter.agent_name }} runbook\n\nOn-call steps.\n", encoding="utf-8")
    (template.path / CHART / "templates" / "NOTES.txt").unlink()
    # the same line the team edits in test_update_brings_the_release_and_keeps_the_teams_files: skip wins
    template.edit(TEMPLATE_AGENT, lambda text: text.replace("Keep answers short", "Keep answers brief"))
    template.edit(CHART + "/values-team-prod.yaml", lambda text: text + "# added by template 0.2.0\n")
    # the template's next SDK minor, whatever this checkout's SDK is
    template.edit("sdk/pyproject.toml", lambda text: text.replace(f'version = "{SDK_VERSION}"', NEW_SDK, 1))
    template.edit("cookiecutter.json", lambda text: text.replace(f'"{SDK_RANGE}"', f'"{NEW_SDK_RANGE}"'))
    return template.release("0.2.0")


def cruft_state(project: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    return state


def leftovers_check(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = project / "scripts" / "check_template_update.py"
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=project, capture_output=True, text=True, check=False
    )


def update(project: Path, **options: Any) -> None:
    assert cruft.update(project, skip_apply_ask=True, **options), "cruft update refused to run"


def make(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A target of the generated Makefile, this environment's cruft standing in for the pinned uvx one."""
    cruft_command = str(Path(sys.executable).parent / "cruft")
    return subprocess.run(
        ["make", *args, f"CRUFT={cruft_command}"],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def team_owned(project: Path) -> list[str]:
    skip: list[str] = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["cruft"]["skip"]
    return skip


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def shell_commands(markdown: str) -> list[str]:
    """The commands in a page's ```sh blocks, comments removed."""
    blocks = re.findall(r"^```sh\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_docs_give_one_way_to_create_and_one_way_to_update() -> None:
    pages = {
        name: (REPO / name).read_text()
        for name in ("README.md", "docs/getting-started.md", "docs/upgrading.md")
    }
    generated_readme = (REPO / TEMPLATE_DIR / "README.md").read_text()

    for name, text in pages.items():
        commands = shell_commands(text)
        creates = [
            c for c in commands if "cruft create" in c or c.startswith(("cookiecutter", "uvx cookiecutter"))
        ]
        assert creates == [CREATE], f"{name}: {creates}"
    assert "make update" in shell_commands(pages["README.md"])
    assert any(c.startswith("make update") for c in shell_commands(pages["docs/upgrading.md"]))
    assert any(c.startswith("make update") for c in shell_commands(generated_readme))


def test_every_cruft_command_runs_the_same_pinned_release() -> None:
    generated = REPO / TEMPLATE_DIR
    texts = {
        "Makefile": (generated / "Makefile").read_text(),
        "ci.yml": (generated / ".github" / "workflows" / "ci.yml").read_text(),
        "azure-pipelines.yml": (generated / "azure-pipelines.yml").read_text(),
        "agent_template_jinja.py": (REPO / "agent_template_jinja.py").read_text(),
    }

    for name, text in texts.items():
        assert set(re.findall(r"cruft==[\d.]+", text)) == {CRUFT_PIN}, name


def test_cruft_create_gives_a_repo_whose_own_checks_pass_with_no_manual_step(
    template: TemplateRepo, tmp_path: Path
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(REQUIRED_ANSWERS))
    documented = CREATE.replace("<template git URL>", str(template.path)).replace("vX.Y.Z", "v0.1.0").split()
    assert documented[:4] == ["uvx", "--from", CRUFT_PIN, "cruft"]
    (tmp_path / "out").mkdir()

    # the documented command (this cruft is the pinned release uvx runs), answers from a file, not prompts
    created = subprocess.run(
        [sys.executable, "-m", *documented[3:], "--no-input", "--extra-context-file", str(answers)],
        cwd=tmp_path / "out",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "out" / "support-assistant"
    state = cruft_state(project)
    head = git(template.path, "rev-parse", "v0.1.0^{commit}").strip()
    assert (state["template"], state["commit"], state["checkout"]) == (str(template.path), head, "v0.1.0")
    assert "skip" not in state, "cruft create writes no skip list; pyproject.toml carries it"
    assert all((project / path).is_file() for path in team_owned(project)), "skip names files that exist"
    assert not (project / ".cookiecutter-answers.json").exists(), "only plain cookiecutter needs make link"
    assert "make link" not in created.stdout
    init_project(project)
    for script in ("check_template_update.py", "check_template_answers.py"):
        check = subprocess.run(
            [sys.executable, f"scripts/{script}"], cwd=project, capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, f"{script}: {check.stderr}"
    assert cruft.check(project), "a fresh repo is up to date with its template"


def test_plain_cookiecutter_then_make_link_records_what_cruft_create_records(
    template: TemplateRepo, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    plain = generate(template, tmp_path / "plain")
    printed = capfd.readouterr().out
    created = create(template, tmp_path / "cruft")

    unlinked = leftovers_check(plain)
    assert unlinked.returncode == 1
    assert ".cruft.json: missing" in unlinked.stderr
    assert "make link TEMPLATE=<template git URL> CHECKOUT=<release tag>" in unlinked.stderr
    assert f"make link TEMPLATE={template.path} CHECKOUT=v0.1.0" in printed, "the next steps say how"

    linked = make(plain, "link", f"TEMPLATE={template.path}", "CHECKOUT=v0.1.0")

    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert not (plain / ".cookiecutter-answers.json").exists(), "make link consumes the answers"
    assert files(plain) == files(created), "the same repo and the same .cruft.json, however it was created"
    assert leftovers_check(plain).returncode == 0
    assert cruft.check(plain)

    # and it takes the next release like any other repo
    init_project(plain)
    agent = plain / "src" / "support_assistant" / "agent.py"
    agent.write_text(agent.read_text().replace("Keep answers short", "Keep answers short and warm"))
    commit_all(plain, "Team change")
    release = release_0_2_0(template)
    update(plain)  # `make update` runs this, then `uv lock` (the vendored case shows the whole target)
    assert cruft_state(plain)["commit"] == release
    assert (plain / "Dockerfile").read_text().endswith(NEW_LABEL + "\n")
    assert "Keep answers short and warm" in agent.read_text(), "the team's file was skipped"


def test_make_link_refuses_jinja_in_the_kept_answers(template: TemplateRepo, tmp_path: Path) -> None:
    plain = generate(template, tmp_path / "plain")
    kept = plain / ".cookiecutter-answers.json"
    marker = tmp_path / "PWNED"
    payload = f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"
    kept.write_text(json.dumps({**json.loads(kept.read_text()), "agent_name": payload}))

    linked = make(plain, "link", f"TEMPLATE={template.path}", "CHECKOUT=v0.1.0")

    assert linked.returncode != 0
    assert not marker.exists()
    assert "agent_name: contains Jinja template syntax" in linked.stderr
    assert not (plain / ".cruft.json").exists()


def test_make_link_says_what_it_needs(template: TemplateRepo, tmp_path: Path) -> None:
    plain = generate(template, tmp_path / "plain")

    result = make(plain, "link")

    assert result.returncode != 0
    assert "make link needs TEMPLATE=<template git URL>" in result.stderr


@pytest.mark.timeout(300)
def test_update_brings_the_release_and_keeps_the_teams_files(
    template: TemplateRepo, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = create(template, tmp_path / "out", sdk_source="vendored")
    package = project / "src" / project.name.replace("-", "_")
    chart = project / "charts" / project.name
    init_project(project)
    # the team's changes: agent code, a values override, a new module with its own test
    agent = package / "agent.py"
    agent.write_text(agent.read_text().replace("Keep answers short", "Keep answers short and warm"))
    team_values = chart / "values-team-prod.yaml"
    team_values.write_text(f'azure:\n  clientId: "{TEAM_CLIENT_ID}"\n')
    (package / "greetings.py").write_text(
        '"""Greetings the team added."""\n\n\ndef greeting(name: str) -> str:\n'
        '    return f"Hello {name}, how can I help?"\n'
    )
    (project / "tests" / "test_greetings.py").write_text(
        f'"""The team\'s own test."""\n\nfrom {package.name}.greetings import greeting\n\n\n'
        "def test_greeting_names_the_caller() -> None:\n"
        '    assert greeting("Ada") == "Hello Ada, how can I help?"\n'
    )
    commit_all(project, "Team changes")
    team_files = {p: p.read_bytes() for p in (agent, team_values, package / "greetings.py")}

    release = release_0_2_0(template)
    assert not cruft.check(project), "behind the template once it releases"
    updated = make(project, "update")
    assert updated.returncode == 0, updated.stdout[-4000:] + updated.stderr[-4000:]

    assert (project / "Dockerfile").read_text().endswith(NEW_LABEL + "\n")
    assert "version: 0.2.0" in (chart / "Chart.yaml").read_text()
    assert (project / "docs" / "runbook.md").read_text().startswith("# Support Assistant runbook")
    assert not (chart / "templates" / "NOTES.txt").exists(), "a file the release removed is removed"
    assert {p: p.read_bytes() for p in team_files} == team_files, "team-owned and team-added files untouched"
    vendored = project / "vendor" / "livekit-platform-sdk" / "pyproject.toml"
    assert vendored.read_text() == (template.path / "sdk" / "pyproject.toml").read_text(), (
        "SDK 0.2.0 vendored"
    )
    stand_ins = project / "vendor" / "livekit-platform-testing" / "pyproject.toml"
    assert stand_ins.read_text() == (template.path / "testing" / "pyproject.toml").read_text()
    state = cruft_state(project)
    assert (state["commit"], state["context"]["cookiecutter"]["_template_version"]) == (release, "0.2.0")
    assert "skip" not in state
    assert "Next steps" not in updated.stdout, "onboarding text is printed on first generation only"
    assert git(project, "diff", "--name-only", "--diff-filter=U") == "", "no conflicts"
    clean = leftovers_check(project)
    assert clean.returncode == 0, clean.stderr
    assert cruft.check(project)

    # the repo's own fast checks still pass on the updated tree (the smoke test runs in test_generated_repo)
    assert (project / "uv.lock").is_file(), "make update locks"
    uv = uv_binary()
    sync = run([uv, "sync"], project, timeout=240)
    assert sync.returncode == 0, sync.stderr[-4000:]
    for check in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        lint = run([uv, "run", "--no-sync", *check], project, timeout=60)
        assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-2000:]
    tests = run(
        [uv, "run", "--no-sync", "pytest", "-v", "-p", "no:cacheprovider", "-k", "not smoke"], project, 180
    )
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    assert "test_greetings.py::test_greeting_names_the_caller PASSED" in tests.stdout


def test_team_edit_to_a_template_owned_line_becomes_a_git_conflict(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = create(template, tmp_path / "out")
    init_project(project)
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + 'LABEL org.example.team="voice"\n')
    commit_all(project, "Team label")
    release_0_2_0(template)

    update(project)

    assert git(project, "diff", "--name-only", "--diff-filter=U").split() == ["Dockerfile"]
    text = dockerfile.read_text()
    assert re.search(
        r"^<<<<<<< .*\n.*org\.example\.team.*\n=======\n.*agent-template.*\n>>>>>>> ", text, re.M
    )
    assert (project / "docs" / "runbook.md").is_file(), "the rest of the release still arrives"
    check = leftovers_check(project)
    assert check.returncode == 1
    assert "Dockerfile: unmerged" in check.stderr
    assert re.search(r"^Dockerfile:\d+: conflict marker <<<<<<<", check.stderr, re.M)


def test_a_hunk_that_cannot_merge_outside_git_is_left_as_a_rej_file_the_check_rejects(
    template: TemplateRepo, tmp_path: Path
) -> None:
    # without a git repository cruft falls back to `git apply --reject`
    project = create(template, tmp_path / "out")
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + 'LABEL org.example.team="voice"\n')
    release_0_2_0(template)

    update(project)

    assert (project / "Dockerfile.rej").is_file()
    assert NEW_LABEL not in dockerfile.read_text(), "not silently overwritten, not silently merged"
    check = leftovers_check(project)
    assert check.returncode == 1
    assert "Dockerfile.rej: hunks `cruft update` could not apply: apply them to Dockerfile" in check.stderr


EVERY_ANSWER = {
    "agent_name": "Order Status Bot",
    "agent_slug": "order-status",
    "package_name": "order_status",
    "description": "Tells callers where their order is.",
    "owner_team": "Fulfilment Voice",
    "owner_contact": "fulfilment-voice@contoso.com",
    "codeowners": "@contoso/fulfilment-voice",
    "entra_tenant_id": "11111111-2222-4333-8444-555555555555",
    "agent_entra_app_id": "66666666-7777-4888-9999-aaaaaaaaaaaa",
    "platform_app_id": "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff",
    "platform_url_nonprod": "https://voice-platform.test.contoso.com",
    "platform_url_prod": "https://voice-platform.contoso.com",
    "aks_namespace": "fulfilment-voice",
    "container_registry": "contosovoice.azurecr.io",
    "enforce_client_authz": False,
    "sdk_source": "package",
    "sdk_index_url": "https://pkgs.dev.azure.com/contoso/_packaging/fulfilment/pypi/simple/",
    "plugins": "openai+deepgram+cartesia",
    "telemetry_exporter": "azure_monitor",
    "ci_system": "azure_pipelines",
    "python_version": "3.13",
}


@pytest.mark.parametrize(
    ("question", "new"),
    [
        ("container_registry", "fulfilmentagents.azurecr.io"),
        ("platform_url_prod", "https://voice-platform-eu.contoso.com"),
    ],
)
def test_changing_one_answer_rerenders_only_what_it_controls(
    template: TemplateRepo, tmp_path: Path, question: str, new: str
) -> None:
    project = create(template, tmp_path / "out", **EVERY_ANSWER)
    init_project(project)
    old = EVERY_ANSWER[question]
    assert isinstance(old, str)
    before = cruft_state(project)
    expected_files = set(git(project, "grep", "-l", "-F", old, "--", ".", ":!.cruft.json").split())

    update(project, extra_context={question: new})

    changed = set(git(project, "diff", "HEAD", "--name-only", "--", ".", ":!.cruft.json").split())
    assert changed == expected_files
    diff = git(project, "diff", "HEAD", "-U0", "--", ".", ":!.cruft.json").splitlines()
    removed = [line for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    assert removed, "the answer appears in generated files"
    assert all(old in line for line in removed), removed
    assert [line[1:].replace(new, old) for line in added] == [line[1:] for line in removed], "swaps only"
    after = cruft_state(project)
    assert after["context"]["cookiecutter"] == {**before["context"]["cookiecutter"], question: new}
    assert after["commit"] == before["commit"]


def test_make_update_with_a_bad_answer_changes_nothing_and_says_why(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = create(template, tmp_path / "out")
    init_project(project)

    result = make(project, "update", ANSWERS=json.dumps({"container_registry": "docker.io/contoso"}))

    assert result.returncode != 0
    assert (
        "ERROR: container_registry: 'docker.io/contoso' is not an Azure Container Registry" in result.stderr
    )
    assert "Nothing was changed: these answers come from .cruft.json (and ANSWERS" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert git(project, "status", "--porcelain") == ""


def test_generated_ci_fails_when_behind_the_template_without_blocking_deploys(baker: Baker) -> None:
    github = baker.bake(ci_system="github").path
    workflow = yaml.safe_load((github / ".github" / "workflows" / "ci.yml").read_text())
    jobs = workflow["jobs"]
    template_job = next(
        name for name, job in jobs.items() if any("cruft check" in s.get("run", "") for s in job["steps"])
    )
    assert all(template_job not in str(job.get("needs", "")) for job in jobs.values()), (
        "deploys do not wait on it"
    )
    assert "schedule" in workflow[True], "weekly, even without pushes"  # PyYAML reads the `on:` key as True
    assert any("check_template_update.py" in s.get("run", "") for s in jobs["lint-test"]["steps"])

    pipelines = baker.bake(ci_system="azure_pipelines").path
    pipeline = yaml.safe_load((pipelines / "azure-pipelines.yml").read_text())
    stage = next(s for s in pipeline["stages"] if "cruft check" in json.dumps(s))
    assert stage["dependsOn"] == []
    assert "ne(variables['Build.Reason'], 'Schedule')" in next(
        s["condition"] for s in pipeline["stages"] if s["stage"] == "build"
    ), "scheduled runs never deploy"
    assert "check_template_update.py" in json.dumps(pipeline["stages"][0])

    makefile = (github / "Makefile").read_text()
    assert "update --skip-apply-ask" in makefile
    assert re.search(r"^update: .*## ", makefile, re.M)


def test_dependency_updates_group_the_sdk_with_livekit_agents(baker: Baker) -> None:
    dependabot = yaml.safe_load(
        (baker.bake(ci_system="github").path / ".github" / "dependabot.yml").read_text()
    )
    uv_updates = next(u for u in dependabot["updates"] if u["package-ecosystem"] == "uv")
    assert {"livekit-platform-sdk", "livekit-agents"} <= set(uv_updates["groups"]["livekit"]["patterns"])

    renovate = json.loads((baker.bake(ci_system="none").path / "renovate.json").read_text())
    group = next(rule for rule in renovate["packageRules"] if rule.get("groupName") == "livekit")
    assert {"livekit-platform-sdk", "livekit-agents"} <= set(group["matchPackageNames"])
    assert renovate["lockFileMaintenance"]["enabled"], (
        "livekit-agents inside the SDK's range arrives via the lock"
    )


def test_changelog_states_this_release_and_the_sdk_it_pins() -> None:
    questions = json.loads((REPO / "cookiecutter.json").read_text())
    changelog = (REPO / "CHANGELOG.md").read_text()
    sdk_version = re.search(r'^version = "([^"]+)"', (REPO / "sdk" / "pyproject.toml").read_text(), re.M)
    assert sdk_version is not None

    releases = re.findall(r"^## (\d+\.\d+\.\d+)$", changelog, re.M)
    assert releases, "CHANGELOG.md has no `## X.Y.Z` release heading"
    assert releases[0] == questions["_template_version"], "the newest release is the version generated"
    newest = changelog.split(f"## {releases[0]}", 1)[1].split("\n## ", 1)[0]
    assert f"livekit-platform-sdk {sdk_version.group(1)}" in newest
    assert f"`{questions['_sdk_version_range']}`" in newest
    assert "### Upgrading" in newest
