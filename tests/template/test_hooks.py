"""The hooks: invalid answers are rejected before generation, naming the question; post-gen is idempotent."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, SDK_DIR, Baker, load_hook
from cookiecutter.exceptions import FailedHookException
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")


def default_answers() -> dict[str, Any]:
    """cookiecutter.json's defaults as `--no-input` renders them."""
    context = generate_context(context_file=str(REPO / "cookiecutter.json"))
    return dict(prompt_for_config(context, no_input=True))


INVALID_ANSWERS = [
    ("agent_name", "", "is empty"),
    ("agent_name", 'Say "hi"', "cannot be used in generated files"),
    ("agent_name", "A" * 61, "keep it to 60"),
    ("agent_slug", "Support_Assistant", "not a DNS-1123 label"),
    ("agent_slug", "1st-agent", "not a DNS-1123 label"),
    ("agent_slug", "agent-", "not a DNS-1123 label"),
    ("agent_slug", "a" * 41, "Kubernetes names need <= 40"),
    ("package_name", "support-assistant", "not a valid package name"),
    ("package_name", "json", "would shadow"),
    ("package_name", "class", "would shadow"),
    ("description", "Uses {{ jinja }}", "cannot be used in generated files"),
    ("description", "line one\nline two", "cannot be used in generated files"),
    ("owner_team", " ", "is empty"),
    ("owner_contact", "voice-agents", "not an e-mail address"),
    ("codeowners", "voice-agents", "not an @handle"),
    ("entra_tenant_id", "not-a-guid", "not a GUID"),
    ("entra_tenant_id", "00000000-0000-0000-0000-000000000000", "nil GUID"),
    ("agent_entra_app_id", "4f6e2d1c-3b5a-4978-8c6d-5e4f3a2b1c0", "not a GUID"),
    ("platform_app_id", "{b1d2c3e4-f5a6-4b7c-8d9e-0a1b2c3d4e5f}", "not a GUID"),
    ("platform_url_nonprod", "http://livekit-platform.nonprod.example.com", "must use https"),
    ("platform_url_prod", "https://", "has no host name"),
    ("platform_url_prod", "https://user:pw@platform.example.com", "must not carry credentials"),
    ("platform_url_prod", "https://platform.example.com:99999", "not a valid URL"),
    ("aks_namespace", "kube-system", "shared system namespace"),
    ("aks_namespace", "Voice_Agents", "not a DNS-1123 label"),
    ("container_registry", "https://contoso.azurecr.io", "not an Azure Container Registry"),
    ("container_registry", "docker.io/contoso", "not an Azure Container Registry"),
    ("enforce_client_authz", "maybe", "not a yes/no answer"),
    ("sdk_source", "git", "not one of the choices"),
    ("plugins", "whisper", "not one of the choices"),
    ("telemetry_exporter", "datadog", "not one of the choices"),
    ("ci_system", "jenkins", "not one of the choices"),
    ("python_version", "3.9", "not one of the choices"),
    ("_sdk_path", "/nonexistent/sdk", "not a directory holding the SDK"),
]


def test_defaults_pass_validation() -> None:
    assert pre_gen.validate(default_answers()) == []


@pytest.mark.parametrize(
    ("question", "value", "problem"), INVALID_ANSWERS, ids=[f"{q}={v!r}"[:60] for q, v, _ in INVALID_ANSWERS]
)
def test_invalid_answer_is_rejected_naming_its_question(question: str, value: object, problem: str) -> None:
    errors = pre_gen.validate({**default_answers(), question: value})

    assert len(errors) == 1, errors
    assert errors[0].startswith(f"ERROR: {question}: ")
    assert problem in errors[0]
    assert errors[0].endswith(")"), "every error ends with an example of a valid value"


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

    assert [e.split(":")[1].strip() for e in pre_gen.validate(answers)] == ["platform_url_prod"]


def test_every_problem_is_reported_at_once() -> None:
    answers = {
        **default_answers(),
        "entra_tenant_id": "x",
        "aks_namespace": "default",
        "container_registry": "",
    }

    questions = [e.split(":")[1].strip() for e in pre_gen.validate(answers)]

    assert questions == ["entra_tenant_id", "aks_namespace", "container_registry"]


@pytest.mark.parametrize(
    ("question", "value"),
    [
        ("entra_tenant_id", "00000000-0000-0000-0000-000000000000"),
        ("platform_url_prod", "http://platform.example.com"),
        ("agent_name", "99 Problems"),  # derives the slug 99-problems, which is not a DNS-1123 label
        ("description", 'Breaks "quotes"'),
    ],
)
def test_baking_with_an_invalid_answer_fails_before_anything_is_written(
    baker: Baker, tmp_path: Path, capfd: pytest.CaptureFixture[str], question: str, value: str
) -> None:
    with pytest.raises(FailedHookException):
        baker.bake(**{question: value})

    err = capfd.readouterr().err
    bad = "agent_slug" if question == "agent_name" else question
    assert f"ERROR: {bad}: " in err
    assert "Nothing was generated" in err
    assert not any((baker.root / f"bake-{baker._count}").glob("*")), "the hook left a partial repo behind"


def test_the_hooks_leave_no_rendered_copy_in_the_temporary_directory(
    baker: Baker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cookiecutter writes each hook, rendered, to a temporary file it never deletes (cookiecutter#886)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where the hook processes look
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where cookiecutter writes them
    baker.bake()
    with pytest.raises(FailedHookException):
        baker.bake(owner_contact="not-an-address")
    assert list(scratch.iterdir()) == []
    assert (REPO / "hooks" / "pre_gen_project.py").is_file()
    assert (REPO / "hooks" / "post_gen_project.py").is_file()


def test_answers_reach_the_hook_as_data_not_code(baker: Baker) -> None:
    # quotes and backslashes the JSON embedding must carry through without ending the string
    baked = baker.bake(agent_name="O'Brien (Support)", owner_team="Team O'Neil & Co.")

    assert "O'Brien (Support)" in (baked.path / "README.md").read_text()
    assert baked.path.name == "o-brien-support"


def test_package_sdk_source_pins_the_version_range_without_a_local_path(baker: Baker, tmp_path: Path) -> None:
    baked = baker.bake(sdk_source="package", _sdk_path="")

    pyproject = (baked.path / "pyproject.toml").read_text()
    assert '"livekit-platform-sdk[openai,silero]>=0.1,<0.2"' in pyproject
    assert '"livekit-platform-testing>=0.1,<0.2"' in pyproject, "the stand-ins: same range, dev dependency"
    assert "[tool.uv.sources]" not in pyproject
    assert not (baked.path / "vendor").exists()


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


def test_vendoring_without_any_sdk_source_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(post_gen.HookError, match="_sdk_path=/path/to/template/sdk"):
        post_gen.vendor_sdk(tmp_path, {"_sdk_path": "", "_template": "", "_commit": ""})


def test_hook_answers_line_survives_ruff_format() -> None:
    # the embedding relies on single quotes (tojson escapes them, not double quotes)
    for name in ("pre_gen_project", "post_gen_project"):
        source = (REPO / "hooks" / f"{name}.py").read_text()
        assert "ANSWERS_JSON = r'{{ cookiecutter | tojson }}'  # fmt: skip" in source
