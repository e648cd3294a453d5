"""The answer checks: bad answers are refused before anything is written, all at once, each naming its
question; identity and URL answers have no usable default; post-gen is idempotent."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import tomllib
from cookiecutter.exceptions import FailedHookException
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config

from tests.support.baking import REQUIRED_ANSWERS, Baker, load_hook
from tests.support.paths import REPO, SDK_DIR

pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")


@contextmanager
def template_importable() -> Iterator[None]:
    """cookiecutter puts the template folder on sys.path while it renders (its Jinja extension is there)."""
    sys.path.append(str(REPO))
    try:
        yield
    finally:
        sys.path.remove(str(REPO))


def default_answers() -> dict[str, Any]:
    """cookiecutter.json's defaults as `--no-input` renders them, with the answers that have no default."""
    context = generate_context(context_file=str(REPO / "cookiecutter.json"), extra_context=REQUIRED_ANSWERS)
    with template_importable():
        return dict(prompt_for_config(context, no_input=True))


def cookiecutter_cli(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The cookiecutter command line (as `uvx cookiecutter` runs it), with a throwaway user config."""
    config = cwd / "cookiecutter-config.yaml"
    config.write_text(f"cookiecutters_dir: {cwd / 'cc'}\nreplay_dir: {cwd / 'replay'}\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--config-file", str(config), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def replay_bake(baker: Baker, replay: Path, output: Path) -> None:
    cookiecutter(str(REPO), replay=str(replay), output_dir=str(output), config_file=str(baker.config_file))


def questions_in(errors: str) -> list[str]:
    return re.findall(r"^ERROR: (\w+): ", errors, re.MULTILINE)


INVALID_ANSWERS = [
    ("agent_name", "", "is empty"),
    ("agent_name", 'Say "hi"', "cannot be used in generated files"),
    ("agent_name", "A" * 61, "keep it to 60"),
    ("agent_name", "Support\u200bAssistant", "invisible or line-breaking character U+200B"),
    ("agent_slug", "Support_Assistant", "not a DNS-1123 label"),
    ("agent_slug", "1st-agent", "not a DNS-1123 label"),
    ("agent_slug", "agent-", "not a DNS-1123 label"),
    ("agent_slug", "agent\n", "line-breaking character U+000A"),
    ("agent_slug", "a" * 41, "Kubernetes names need <= 40"),
    ("package_name", "support-assistant", "not a valid package name"),
    ("package_name", "json", "would shadow"),
    ("package_name", "class", "would shadow"),
    ("package_name", "support_assistant\n", "line-breaking character U+000A"),
    ("description", "line one\nline two", "line-breaking character U+000A"),
    ("description", "Reads \u202eevil", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("description", "Costs $5", "cannot be used in generated files"),
    ("owner_team", " ", "is empty"),
    ("owner_team", "Voice\u00a0Team", "U+00A0 NO-BREAK SPACE"),
    ("owner_contact", "voice-agents", "not an e-mail address"),
    ("owner_contact", "voice-agents@contoso.com\n", "line-breaking character U+000A"),
    ("codeowners", "voice-agents", "not an @handle"),
    ("codeowners", "@contoso/team\n/etc @attacker", "line-breaking character U+000A"),
    ("entra_tenant_id", "not-a-guid", "not a GUID"),
    ("entra_tenant_id", "00000000-0000-0000-0000-000000000000", "nil GUID"),
    ("entra_tenant_id", REQUIRED_ANSWERS["entra_tenant_id"] + "\n", "line-breaking character U+000A"),
    ("agent_entra_app_id", "4f6e2d1c-3b5a-4978-8c6d-5e4f3a2b1c0", "not a GUID"),
    ("platform_app_id", "{b1d2c3e4-f5a6-4b7c-8d9e-0a1b2c3d4e5f}", "not a GUID"),
    ("platform_url_nonprod", "http://voice-platform.nonprod.contoso.com", "must start with https://"),
    ("platform_url_prod", "https://", "has no host name"),
    ("platform_url_prod", "https://user:pw@platform.contoso.com", "must not carry credentials"),
    ("platform_url_prod", "https://platform.contoso.com/?next=x", "must not carry credentials, a query"),
    ("platform_url_prod", "https://platform.contoso.com:99999", "not a valid URL"),
    ("platform_url_prod", "https://platform.contoso.com;id", "invalid host name"),
    ("platform_url_prod", "https://platform.contoso.com/;touch${IFS}x", "'$' ';' '{' '}' in its path"),
    ("platform_url_prod", "https://platform.contoso.com/$(id)", "'$' '(' ')' in its path"),
    ("platform_url_prod", "https://platform.contoso.com/`id`", "'`' in its path"),
    ("platform_url_prod", "https://platform.contoso.com/a'b", '"\'" in its path'),
    ("platform_url_prod", "https://platform.contoso.com/%0a", "'%' in its path"),
    ("platform_url_prod", "https://platform.contoso.com/a b", "' ' in its path"),
    ("platform_url_prod", "https://pl\u0430tform.contoso.com", "non-ASCII character U+0430 CYRILLIC"),
    ("platform_url_prod", "https://platform.contoso.com\n", "line-breaking character U+000A"),
    ("aks_namespace", "kube-system", "shared system namespace"),
    ("aks_namespace", "Voice_Agents", "not a DNS-1123 label"),
    ("aks_namespace", "voice\nkind: Secret", "line-breaking character U+000A"),
    ("container_registry", "https://contoso.azurecr.io", "not an Azure Container Registry"),
    ("container_registry", "docker.io/contoso", "not an Azure Container Registry"),
    ("container_registry", "contosoagents.azurecr.io\n", "line-breaking character U+000A"),
    ("enforce_client_authz", "maybe", "not a yes/no answer"),
    ("sdk_source", "svn", "not one of the choices"),
    ("agent_identity", "service_principal", "not one of the choices"),
    ("client_app_ids", "not-a-guid", "'not-a-guid' is not a client app ID"),
    ("client_app_ids", "00000000-0000-0000-0000-000000000000", "is not a client app ID"),
    ("client_app_ids", "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f", "is the documented example"),
    (
        "client_app_ids",
        "11111111-2222-4333-8444-555555555555,11111111-2222-4333-8444-555555555555",
        "lists 11111111-2222-4333-8444-555555555555 twice",
    ),
    ("client_app_ids", "11111111-2222-4333-8444-555555555555\n", "line-breaking character U+000A"),
    ("plugins", "whisper", "not one of the choices"),
    ("telemetry_exporter", "datadog", "not one of the choices"),
    ("ci_system", "jenkins", "not one of the choices"),
    ("python_version", "3.9", "not one of the choices"),
    ("_sdk_path", "/nonexistent/sdk", "not a directory holding the SDK"),
]


def test_defaults_with_the_required_answers_pass_validation() -> None:
    assert pre_gen.validate(default_answers()) == []


@pytest.mark.parametrize(
    ("question", "value", "problem"), INVALID_ANSWERS, ids=[f"{q}={v!r}"[:60] for q, v, _ in INVALID_ANSWERS]
)
def test_invalid_answer_is_rejected_naming_its_question(question: str, value: object, problem: str) -> None:
    errors = pre_gen.validate({**default_answers(), question: value})

    assert len(errors) == 1, errors
    assert errors[0].startswith(f"ERROR: {question}: ")
    assert problem in errors[0]


@pytest.mark.parametrize("question", sorted(pre_gen.REQUIRED))
def test_each_identity_and_url_question_has_no_default(question: str) -> None:
    defaults = json.loads((REPO / "cookiecutter.json").read_text())

    assert defaults[question] == ""
    assert pre_gen.validate({**default_answers(), question: ""}) == [
        pre_gen.error(question, f"has no answer; give {pre_gen.REQUIRED[question]}", example=False)
    ]


DOCUMENTED_EXAMPLES = [
    *((question, pre_gen.EXAMPLES[question]) for question in sorted(pre_gen.REQUIRED)),
    ("platform_url_nonprod", "https://platform.nonprod.example.org/"),
    ("platform_url_prod", "https://voice.example"),
    ("owner_contact", "team@sub.example.net"),
    ("codeowners", "@contoso/voice team@example.com"),
]


@pytest.mark.parametrize(("question", "value"), DOCUMENTED_EXAMPLES)
def test_documented_example_values_are_refused(question: str, value: str) -> None:
    errors = pre_gen.validate({**default_answers(), question: value})

    assert questions_in("\n".join(errors)) == [question]
    assert "is the documented example, not yours" in errors[0]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("entra_tenant_id", "agent_entra_app_id"),
        ("entra_tenant_id", "platform_app_id"),
        ("agent_entra_app_id", "platform_app_id"),
    ],
)
def test_guids_that_must_differ_are_rejected_when_equal(first: str, second: str) -> None:
    answers = default_answers()
    # case differences do not make two GUIDs different
    answers[second] = str(answers[first]).upper()

    errors = pre_gen.validate(answers)

    assert errors == [
        pre_gen.error(second, f"is the same GUID as {first}; each must be a different Entra ID")
    ]


def test_same_platform_url_for_both_environments_is_rejected() -> None:
    answers = {**default_answers(), "platform_url_prod": default_answers()["platform_url_nonprod"] + "/"}

    assert questions_in("\n".join(pre_gen.validate(answers))) == ["platform_url_prod"]


def test_every_problem_is_reported_at_once() -> None:
    answers = {
        **default_answers(),
        "entra_tenant_id": "x",
        "aks_namespace": "default",
        "container_registry": "",
    }

    assert questions_in("\n".join(pre_gen.validate(answers))) == [
        "entra_tenant_id",
        "aks_namespace",
        "container_registry",
    ]


FEED = "https://pkgs.dev.azure.com/contoso/_packaging/voice-agents/pypi/simple/"
INVALID_FEEDS = [
    ("http://feed.contoso.com/simple/", "must start with https:// (http only for a feed on 127.0.0.1)"),
    ("ftp://feed.contoso.com/simple/", "must start with https://"),
    ("https://build:s3cret@feed.contoso.com/simple/", "must not carry credentials"),
    ("https://feed.contoso.com/simple/?token=x", "must not carry credentials, a query"),
    ("https://feed.contoso.com/simple/$(id)", "in its path"),
    ("https://feed.example.com/simple/", "is the documented example"),
    (pre_gen.EXAMPLES["sdk_index_url"], "is the documented example"),
]


@pytest.mark.parametrize(("url", "problem"), INVALID_FEEDS)
def test_a_package_feed_url_that_cannot_be_used_is_refused(url: str, problem: str) -> None:
    errors = pre_gen.validate({**default_answers(), "sdk_source": "package", "sdk_index_url": url})

    assert questions_in("\n".join(errors)) == ["sdk_index_url"]
    assert problem in errors[0]
    assert "s3cret" in errors[0] or "s3cret" not in url


@pytest.mark.parametrize(
    "url", [FEED, "http://127.0.0.1:8080/simple/", "https://feed.contoso.com:8443/pypi/"]
)
def test_a_package_feed_url_is_accepted(url: str) -> None:
    assert pre_gen.validate({**default_answers(), "sdk_source": "package", "sdk_index_url": url}) == []


COMBINATIONS = [
    (
        {"agent_identity": "managed_identity", "enforce_client_authz": True},
        "enforce_client_authz",
        "is true, but agent_identity is 'managed_identity'",
    ),
    (
        {
            "agent_identity": "managed_identity",
            "enforce_client_authz": False,
            "client_app_ids": "11111111-2222-4333-8444-555555555555",
        },
        "client_app_ids",
        "are given, but agent_identity is 'managed_identity'",
    ),
    (
        {"client_app_ids": REQUIRED_ANSWERS["agent_entra_app_id"]},
        "client_app_ids",
        "lists agent_entra_app_id itself",
    ),
    ({"sdk_source": "package"}, "sdk_index_url", "has no answer, but sdk_source is 'package'"),
    ({"sdk_source": "git", "sdk_index_url": FEED}, "sdk_index_url", "is set, but sdk_source is 'git'"),
    (
        {"sdk_source": "vendored", "sdk_index_url": FEED},
        "sdk_index_url",
        "is set, but sdk_source is 'vendored'",
    ),
    (
        {"sdk_source": "git", "_template": "agent-template"},
        "sdk_source",
        "is 'git', but the template source 'agent-template' is not a git URL or an absolute path",
    ),
    (
        {"sdk_source": "git", "_template": "https://example.net/agent-template-v0.2.0.zip"},
        "sdk_source",
        "is a zip archive, which git cannot clone",
    ),
]


@pytest.mark.parametrize(
    ("answers", "question", "problem"), COMBINATIONS, ids=[question for _, question, _ in COMBINATIONS]
)
def test_answers_that_cannot_work_together_are_refused_naming_both(
    answers: dict[str, object], question: str, problem: str
) -> None:
    errors = pre_gen.validate({**default_answers(), **answers})

    assert questions_in("\n".join(errors)) == [question]
    assert problem in errors[0]
    partner = next(
        name for name in ("agent_identity", "agent_entra_app_id", "sdk_source") if name in errors[0]
    )
    assert partner != question or "template source" in errors[0], "the line names the other answer too"


def test_git_from_a_folder_that_is_not_a_repository_is_refused(tmp_path: Path) -> None:
    answers = {**default_answers(), "sdk_source": "git", "_template": str(tmp_path)}

    (error,) = pre_gen.validate(answers)

    assert error.startswith("ERROR: sdk_source: is 'git', but the template source")
    assert "not a git repository, which uv cannot clone" in error
    assert pre_gen.validate({**answers, "_sdk_path": str(SDK_DIR)}) == [], "a local SDK path needs no clone"


@pytest.mark.parametrize(
    ("template", "url"),
    [
        ("https://github.com/contoso/agent-template", "https://github.com/contoso/agent-template"),
        ("git+https://dev.azure.com/contoso/p/_git/tpl", "https://dev.azure.com/contoso/p/_git/tpl"),
        ("gh:contoso/agent-template", "https://github.com/contoso/agent-template.git"),
        ("git@github.com:contoso/agent-template.git", "ssh://git@github.com/contoso/agent-template.git"),
        ("ssh://git@ssh.dev.azure.com/v3/contoso/p/tpl", "ssh://git@ssh.dev.azure.com/v3/contoso/p/tpl"),
        (str(REPO), REPO.as_uri()),
    ],
)
def test_git_source_is_the_template_source_as_uv_clones_it(template: str, url: str) -> None:
    assert pre_gen.git_source(template) == (url, "")


def test_managed_identity_with_client_authorization_stops_the_bake_naming_both(tmp_path: Path) -> None:
    answers = [f"{key}={value}" for key, value in REQUIRED_ANSWERS.items()]

    result = cookiecutter_cli(
        "--no-input", str(REPO), "-o", str(tmp_path / "out"), *answers, "agent_identity=managed_identity",
        cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 1
    assert questions_in(result.stderr) == ["enforce_client_authz"]
    assert "agent_identity is 'managed_identity'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_input_without_the_required_answers_fails_naming_each_question(tmp_path: Path) -> None:
    result = cookiecutter_cli("--no-input", str(REPO), "-o", str(tmp_path / "out"), cwd=tmp_path)

    assert result.returncode == 1
    assert questions_in(result.stderr) == list(pre_gen.REQUIRED)
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_input_with_the_documented_examples_fails_naming_each_question(tmp_path: Path) -> None:
    examples = [f"{question}={pre_gen.EXAMPLES[question]}" for question in pre_gen.REQUIRED]

    result = cookiecutter_cli("--no-input", str(REPO), "-o", str(tmp_path / "out"), *examples, cwd=tmp_path)

    assert result.returncode == 1
    assert questions_in(result.stderr) == list(pre_gen.REQUIRED)
    assert result.stderr.count("is the documented example, not yours") == len(pre_gen.REQUIRED)
    assert "Traceback" not in result.stdout + result.stderr


def test_a_failed_run_prints_a_replay_command_that_asks_only_the_bad_answers(tmp_path: Path) -> None:
    answers = {**REQUIRED_ANSWERS, "owner_contact": "voice-agents", "_sdk_path": str(SDK_DIR)}
    given = [f"{key}={value}" for key, value in answers.items()]

    failed = cookiecutter_cli("--no-input", str(REPO), "-o", str(tmp_path / "out"), *given, cwd=tmp_path)

    assert failed.returncode == 1
    assert questions_in(failed.stderr) == ["owner_contact"]
    assert "Traceback" not in failed.stdout + failed.stderr
    command = shlex.split(failed.stderr.strip().splitlines()[-1])
    assert command[:3] == ["uvx", "cookiecutter", "--replay-file"]
    replay = json.loads(Path(command[3]).read_text())["cookiecutter"]
    assert "owner_contact" not in replay
    assert replay["platform_url_prod"] == REQUIRED_ANSWERS["platform_url_prod"]
    config = str(tmp_path / "cookiecutter-config.yaml")
    assert command[4:] == ["--config-file", config, str(REPO), "-o", str(tmp_path / "out")], "no answers"

    # the printed command, run as printed (this cookiecutter stands in for uvx's), asks one question
    rerun = subprocess.run(
        [sys.executable, "-m", *command[1:]],
        cwd=tmp_path,
        input="voice-agents@contoso.com\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "[1/1]" in rerun.stdout, "only the bad answer was asked again"
    generated = tmp_path / "out" / "support-assistant"
    chart = (generated / "charts" / generated.name / "Chart.yaml").read_text()
    assert 'email: "voice-agents@contoso.com"' in chart
    Path(command[3]).unlink()


def test_a_replay_that_skips_the_questions_is_still_checked_by_the_pre_generation_hook(
    baker: Baker, tmp_path: Path
) -> None:
    # a replay file that carries `__answers_checked` is never re-rendered: the hook is the second line
    replay = tmp_path / "replay.json"
    answers = {**default_answers(), "owner_contact": "not-an-address", "_sdk_path": str(SDK_DIR)}
    replay.write_text(json.dumps({"cookiecutter": answers}))

    with pytest.raises(FailedHookException):
        replay_bake(baker, replay, tmp_path / "out")

    assert not (tmp_path / "out" / "support-assistant").exists()


@pytest.mark.parametrize(
    ("question", "value"),
    [
        ("entra_tenant_id", "00000000-0000-0000-0000-000000000000"),
        ("platform_url_prod", "http://platform.contoso.com"),
        ("agent_name", "99 Problems"),  # derives the slug 99-problems, which is not a DNS-1123 label
        ("description", 'Breaks "quotes"'),
    ],
)
def test_baking_with_an_invalid_answer_fails_before_anything_is_written(
    baker: Baker, tmp_path: Path, capfd: pytest.CaptureFixture[str], question: str, value: str
) -> None:
    # in process, the check ends the run as the command line tools end: an exit, never an exception
    with pytest.raises(SystemExit) as exited:
        baker.bake(**{question: value})

    assert exited.value.code == 1
    err = capfd.readouterr().err
    bad = "agent_slug" if question == "agent_name" else question
    assert f"ERROR: {bad}: " in err
    assert "Nothing was generated" in err
    assert not (baker.root / f"bake-{baker._count}").exists(), "nothing was written"


def test_the_hooks_leave_no_rendered_copy_in_the_temporary_directory(
    baker: Baker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cookiecutter writes each hook, rendered, to a temporary file it never deletes (cookiecutter#886)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where the hook processes look
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where cookiecutter writes them
    baker.bake()
    replay = tmp_path / "replay.json"  # reaches the pre-generation hook, which refuses it
    answers = {**default_answers(), "owner_contact": "not-an-address", "_sdk_path": str(SDK_DIR)}
    replay.write_text(json.dumps({"cookiecutter": answers}))
    with pytest.raises(FailedHookException):
        replay_bake(baker, replay, tmp_path / "out")
    assert list(scratch.iterdir()) == []
    assert (REPO / "hooks" / "pre_gen_project.py").is_file()
    assert (REPO / "hooks" / "post_gen_project.py").is_file()


def test_answers_reach_the_hook_as_data_not_code(baker: Baker) -> None:
    # quotes and backslashes the JSON embedding must carry through without ending the string
    baked = baker.bake(agent_name="O'Brien (Support)", owner_team="Team O'Neil & Co.")

    assert "O'Brien (Support)" in (baked.path / "README.md").read_text()
    assert baked.path.name == "o-brien-support"


def test_package_sdk_source_pins_both_packages_to_the_feed_and_nowhere_else(baker: Baker) -> None:
    baked = baker.bake(sdk_source="package", sdk_index_url=FEED, _sdk_path="")

    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text())
    sdk_range = json.loads((REPO / "cookiecutter.json").read_text())["_sdk_version_range"]
    assert f"livekit-platform-sdk[openai,silero]{sdk_range}" in pyproject["project"]["dependencies"]
    assert f"livekit-platform-testing{sdk_range}" in pyproject["dependency-groups"]["dev"]
    assert pyproject["tool"]["uv"]["index"] == [{"name": "livekit-platform", "url": FEED, "explicit": True}]
    assert pyproject["tool"]["uv"]["sources"] == {
        "livekit-platform-sdk": {"index": "livekit-platform"},
        "livekit-platform-testing": {"index": "livekit-platform"},
    }
    assert not (baked.path / "vendor").exists()


def test_git_sdk_source_takes_both_packages_from_the_template_at_its_release_tag(baker: Baker) -> None:
    baked = baker.bake(_sdk_path="")

    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text())
    version = json.loads((REPO / "cookiecutter.json").read_text())["_template_version"]
    assert pyproject["tool"]["uv"]["sources"] == {
        name: {"git": REPO.as_uri(), "tag": f"v{version}", "subdirectory": folder}
        for name, folder in (("livekit-platform-sdk", "sdk"), ("livekit-platform-testing", "testing"))
    }
    assert "index" not in pyproject["tool"]["uv"]
    assert "apt-get install --yes --no-install-recommends git" in (baked.path / "Dockerfile").read_text()


def test_vendored_sdk_and_stand_ins_are_copied_without_caches(baker: Baker) -> None:
    baked = baker.bake(sdk_source="vendored")

    pyproject = (baked.path / "pyproject.toml").read_text()
    for folder, package in (("sdk", "livekit_platform_sdk"), ("testing", "livekit_platform_testing")):
        distribution = package.replace("_", "-")
        vendored = baked.path / "vendor" / distribution
        assert (vendored / "pyproject.toml").read_text() == (REPO / folder / "pyproject.toml").read_text()
        assert (vendored / "src" / package / "__init__.py").is_file()
        assert not list(vendored.rglob("__pycache__"))
        assert f'{distribution} = {{ path = "vendor/{distribution}" }}' in pyproject


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_post_gen_hook_is_idempotent(baker: Baker, tmp_path: Path) -> None:
    baked = baker.bake(sdk_source="vendored", ci_system="azure_pipelines", telemetry_exporter="otlp")
    answers = {**baked.answers, "sdk_source": "vendored", "ci_system": "azure_pipelines"}
    answers |= {"telemetry_exporter": "otlp", "_sdk_path": str(SDK_DIR)}
    before = snapshot(baked.path)

    assert post_gen.prune(baked.path, answers) == []
    post_gen.vendor_sdk(baked.path, answers)

    assert snapshot(baked.path) == before


def test_post_gen_prunes_exactly_the_unchosen_options(tmp_path: Path) -> None:
    template = REPO / "{{cookiecutter.agent_slug}}"
    shutil.copytree(template, tmp_path / "repo")
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir()
    (root / "src" / "pkg" / "telemetry.py").write_text("")
    answers = {
        "package_name": "pkg",
        "ci_system": "none",
        "telemetry_exporter": "none",
        "sdk_source": "package",
    }

    removed = post_gen.prune(root, answers)

    assert sorted(map(str, removed)) == sorted(
        [
            ".github/workflows",
            ".github/dependabot.yml",
            "azure-pipelines.yml",
            "src/pkg/telemetry.py",
            "vendor",
        ]
    )
    assert not (root / ".github").exists()
    assert (root / "renovate.json").exists()


def test_vendoring_prefers_the_explicit_sdk_path_then_the_template_checkout(tmp_path: Path) -> None:
    explicit = {"_sdk_path": str(tmp_path), "_repo_dir": str(REPO)}
    beside_template = {"_sdk_path": "", "_repo_dir": str(REPO)}

    assert post_gen.sdk_source_dir(explicit) == tmp_path
    assert post_gen.sdk_source_dir(beside_template) == REPO / "sdk"
    assert (
        post_gen.sdk_source_dir({"_sdk_path": "", "_template": "gh:org/template", "_commit": "abc"}) is None
    )


def test_a_relative_template_path_is_never_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cookiecutter records a local template as typed; the hook runs elsewhere and cannot know relative to what
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PWD", str(REPO))

    assert post_gen.find_template_checkout({"_repo_dir": "."}) is None
    assert post_gen.sdk_source_dir({"_sdk_path": "", "_repo_dir": ".", "_template": "."}) is None
    with pytest.raises(post_gen.HookError, match="git URL or absolute path"):
        post_gen.vendor_sdk(tmp_path, {"_sdk_path": "", "_repo_dir": ".", "_template": "."})


def test_plain_cookiecutter_keeps_the_answers_for_make_link_and_cruft_never_gets_them(tmp_path: Path) -> None:
    answers = {"agent_name": "Bot", "enforce_client_authz": True, "_template": "/t", "_repo_dir": "/t"}
    plain, under_cruft = tmp_path / "plain", tmp_path / "cruft"
    plain.mkdir()
    under_cruft.mkdir()

    assert post_gen.write_link_answers(plain, answers)
    assert not post_gen.write_link_answers(under_cruft, {**answers, "_commit": "abc"})

    kept = json.loads((plain / post_gen.LINK_ANSWERS).read_text())
    assert kept == {"agent_name": "Bot", "enforce_client_authz": True}, "only the questions' answers"
    assert list(under_cruft.iterdir()) == []


@pytest.mark.parametrize(
    ("template", "checkout", "expected"),
    [
        ("https://github.com/contoso/agent-template", "v0.3.0", "https://github.com/contoso/agent-template"),
        ("git@github.com:contoso/agent-template.git", None, "git@github.com:contoso/agent-template.git"),
        ("/srv/templates/agent template", None, "'/srv/templates/agent template'"),
        ("gh:contoso/agent-template", None, "<template git URL>"),
        ("../agent-template", None, "<template git URL>"),
    ],
)
def test_next_steps_name_the_link_command_with_what_cookiecutter_was_given(
    template: str, checkout: str | None, expected: str
) -> None:
    answers = {"_template": template, "_checkout": checkout, "_template_version": "0.2.0"}

    assert post_gen.link_command(answers) == f"make link TEMPLATE={expected} CHECKOUT={checkout or 'v0.2.0'}"


def test_vendoring_without_any_sdk_source_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(post_gen.HookError, match="_sdk_path=/path/to/template/sdk"):
        post_gen.vendor_sdk(tmp_path, {"_sdk_path": "", "_template": "", "_commit": ""})


def test_hook_answers_line_survives_ruff_format() -> None:
    # the embedding relies on single quotes (tojson escapes them, not double quotes)
    for name in ("pre_gen_project", "post_gen_project"):
        source = (REPO / "hooks" / f"{name}.py").read_text()
        assert "ANSWERS_JSON = r'{{ cookiecutter | tojson }}'  # fmt: skip" in source
