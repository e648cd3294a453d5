"""Template injection: answers are data wherever they come from (prompts, `--no-input`, `cruft create
--extra-context`, `.cruft.json` on `make update`) and wherever they land (Makefile, shell, YAML, TOML, Python,
Bicep, Dockerfile). Each attack tries to create a marker file; none may.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import cruft
import pytest
import tomllib
import yaml
from cookiecutter.main import cookiecutter
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Environment

from tests.support.baking import REQUIRED_ANSWERS, Baker, load_extension
from tests.support.paths import REPO, SDK_DIR, TOOLS_BIN
from tests.support.template_repo import GIT_ENV, TemplateRepo, init_project

jinja = load_extension()

# {marker} is replaced by the path of the file an attack would create.
JINJA_ATTACKS = [
    "{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}",
    "{% set x = cycler.__init__.__globals__.os.popen('touch {marker}').read() %}ok",
    "{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}",
    "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch {marker}') }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{% endfor %}",
    "{{ cookiecutter.__class__.__init__.__globals__ }}",
    "{#- a comment -#}Support",
    "{% raw %}Support{% endraw %}",
    "{{ '{{' }} 7*7 }}",
]
SHELL_ATTACKS = ["$(touch {marker})", "`touch {marker}`", "x;touch {marker}", "x\ntouch {marker}", "x' #"]


def attack(template: str, marker: Path) -> str:
    return template.replace("{marker}", str(marker))


@pytest.fixture(autouse=True)
def isolated_cookiecutter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cookiecutter-config.yaml"
    folders = f"cookiecutters_dir: {tmp_path / 'cookiecutters'}\nreplay_dir: {tmp_path / 'replay'}\n"
    config.write_text(folders, encoding="utf-8")
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))


@pytest.mark.parametrize("question", ["agent_name", "description", "platform_url_prod", "aks_namespace"])
@pytest.mark.parametrize("payload", JINJA_ATTACKS)
def test_a_jinja_answer_never_runs_and_is_refused_naming_its_question(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], question: str, payload: str
) -> None:
    marker = tmp_path / "PWNED"
    answers = {**REQUIRED_ANSWERS, "_sdk_path": str(SDK_DIR), question: attack(payload, marker)}

    with pytest.raises(SystemExit):
        cookiecutter(str(REPO), no_input=True, extra_context=answers, output_dir=str(tmp_path / "out"))

    assert not marker.exists(), "the answer ran as code"
    assert f"ERROR: {question}: contains Jinja template syntax" in capfd.readouterr().err
    assert not (tmp_path / "out").exists()


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_cookiecutter_command_line_refuses_a_jinja_answer_without_a_traceback(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    answers = {**REQUIRED_ANSWERS, "_sdk_path": str(SDK_DIR), "agent_name": attack(JINJA_ATTACKS[0], marker)}

    result = run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(REPO), "-o", str(tmp_path / "out")]
        + [f"{key}={value}" for key, value in answers.items()],
        tmp_path,
    )

    assert result.returncode == 1
    assert not marker.exists()
    assert result.stderr.startswith("ERROR: agent_name: contains Jinja template syntax")
    assert "Traceback" not in result.stdout + result.stderr


def test_cruft_create_refuses_a_jinja_answer_without_a_traceback(tmp_path: Path) -> None:
    template = TemplateRepo.first_release(tmp_path / "template")
    marker = tmp_path / "PWNED"
    answers = {**REQUIRED_ANSWERS, "description": attack(JINJA_ATTACKS[1], marker)}

    result = run(
        [
            *(sys.executable, "-m", "cruft", "create", str(template.path), "--checkout", "v0.1.0"),
            *("--no-input", "--output-dir", str(tmp_path / "out"), "--extra-context", json.dumps(answers)),
        ],
        tmp_path,
    )

    assert result.returncode == 1
    assert not marker.exists()
    assert "ERROR: description: contains Jinja template syntax" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    rerun = result.stderr.strip().splitlines()[-1].split()
    assert rerun[:6] == ["uvx", "--from", "cruft==2.16.0", "cruft", "create", str(template.path)]
    kept = json.loads(Path(rerun[-1]).read_text())
    assert "description" not in kept, "the bad answer is asked again"
    assert kept["platform_url_prod"] == REQUIRED_ANSWERS["platform_url_prod"]

    # the printed command (this cruft is the release uvx runs): Enter keeps every kept answer, one is typed
    questions = [
        key for key in json.loads((REPO / "cookiecutter.json").read_text()) if not key.startswith("_")
    ]
    typed = "\n" * questions.index("description") + "Tells callers where their order is.\n" + "\n" * 40
    again = subprocess.run(
        [sys.executable, "-m", *rerun[3:], "--output-dir", str(tmp_path / "out")],
        cwd=tmp_path,
        input=typed,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    context = json.loads((tmp_path / "out" / "support-assistant" / ".cruft.json").read_text())["context"]
    assert context["cookiecutter"]["description"] == "Tells callers where their order is."
    assert context["cookiecutter"]["platform_url_prod"] == REQUIRED_ANSWERS["platform_url_prod"]
    Path(rerun[-1]).unlink()


@pytest.fixture
def linked_repo(tmp_path: Path) -> Path:
    """A repo made the documented way (cruft create from a release tag) and committed."""
    template = TemplateRepo.first_release(tmp_path / "template")
    answers = dict(REQUIRED_ANSWERS)
    output = tmp_path / "out"
    project = cruft.create(str(template.path), output_dir=output, checkout="v0.1.0", extra_context=answers)
    init_project(project)
    return project


def tamper(project: Path, **answers: Any) -> None:
    """What a pull request can do: change answers in .cruft.json."""
    state = json.loads((project / ".cruft.json").read_text())
    state["context"]["cookiecutter"].update(answers)
    (project / ".cruft.json").write_text(json.dumps(state, indent=2) + "\n")
    subprocess.run(["git", "-C", str(project), "commit", "-qam", "PR"], check=True, env=git_env())


def git_env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV}


def cruft_command() -> str:
    return str(Path(sys.executable).parent / "cruft")


@pytest.mark.parametrize("payload", JINJA_ATTACKS[:4])
def test_make_update_refuses_jinja_in_cruft_json_before_cruft_renders_anything(
    linked_repo: Path, tmp_path: Path, payload: str
) -> None:
    marker = tmp_path / "PWNED"
    tamper(linked_repo, agent_name=attack(payload, marker))

    result = run(["make", "update", f"CRUFT={cruft_command()}"], linked_repo)

    assert result.returncode != 0
    assert not marker.exists()
    assert "ERROR: .cruft.json: agent_name: contains Jinja template syntax" in result.stderr
    assert "Nothing was run" in result.stderr


def test_make_update_refuses_jinja_in_changed_answers(linked_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    answers = json.dumps({"description": attack(JINJA_ATTACKS[0], marker)})

    result = run(["make", "update", f"CRUFT={cruft_command()}"], linked_repo, ANSWERS=answers)

    assert result.returncode != 0
    assert not marker.exists()
    assert "ERROR: ANSWERS: description: contains Jinja template syntax" in result.stderr


def test_cruft_update_itself_refuses_jinja_in_cruft_json(
    linked_repo: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # the template's own guard, for an update run without `make update`'s check
    marker = tmp_path / "PWNED"
    tamper(linked_repo, owner_team=attack(JINJA_ATTACKS[0], marker))
    capfd.readouterr()

    with pytest.raises(SystemExit):
        cruft.update(linked_repo, skip_apply_ask=True, refresh_private_variables=True)

    assert not marker.exists()
    assert "ERROR: owner_team: contains Jinja template syntax" in capfd.readouterr().err


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Baker(tmp_path_factory.mktemp("injection")).bake().path


def fake_uv(bin_dir: Path, record: Path) -> None:
    """A `uv` that records the platform URL it was started with instead of running the agent."""
    bin_dir.mkdir()
    script = bin_dir / "uv"
    script.write_text(f'#!/bin/sh\nprintf "%s" "$LIVEKIT_PLATFORM_URL" > "{record}"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("payload", SHELL_ATTACKS[:3])
def test_make_dev_passes_the_platform_url_as_data(baked: Path, tmp_path: Path, payload: str) -> None:
    # the answer as the template writes it into the Makefile (the checks refuse such a URL; this is the second
    # line of defence): neither make nor the shell may run any of it
    marker = tmp_path / "PWNED"
    url = "https://platform.contoso.com/" + attack(payload, marker)
    repo = tmp_path / "repo"
    shutil.copytree(baked, repo)
    makefile = repo / "Makefile"
    written = f"PLATFORM_URL   ?= {jinja.make_value(url)}"
    text = re.sub(r"^PLATFORM_URL +\?= .*$", lambda _: written, makefile.read_text(), flags=re.MULTILINE)
    makefile.write_text(text)
    record = tmp_path / "url"
    fake_uv(tmp_path / "bin", record)

    result = run(["make", "dev"], repo, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")

    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert record.read_text() == url


HOSTILE_TEXT = [
    "O'Brien & Co",
    'say "hi"',
    "back\\slash",
    "$HOME ${HOME} $(id) `id`",
    "#not a comment",
    "{{ 7*7 }} {% x %}",
    "line\nbreak\ttab",
    "unicode é ✓ \u2028 \x85",
    "trailing backslash\\",
]


def make_sees(value: str, tmp_path: Path) -> str:
    makefile = tmp_path / "Makefile"
    show = "show:\n\t@printf '%s' \"$$VALUE\"\n"
    makefile.write_text(f"VALUE ?= {jinja.make_value(value)}\nexport VALUE\n{show}", encoding="utf-8")
    return run(["make", "-s", "-f", str(makefile), "show"], tmp_path).stdout


@pytest.mark.parametrize("value", [v for v in HOSTILE_TEXT if "\n" not in v and not v.endswith("\\")])
def test_make_value_is_kept_as_written_by_make_and_the_shell(tmp_path: Path, value: str) -> None:
    assert make_sees(value, tmp_path) == value


@pytest.mark.parametrize("value", ["a\nb", "ends with \\"])
def test_make_value_refuses_what_a_makefile_cannot_keep(value: str) -> None:
    with pytest.raises(ValueError, match="cannot be kept in a Makefile"):
        jinja.make_value(value)


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_quoted_reads_back_the_same_in_json_yaml_toml_and_python(value: str) -> None:
    literal = jinja.quoted(value)

    assert json.loads(literal) == value
    assert ast.literal_eval(literal) == value
    assert tomllib.loads(f"key = {literal}")["key"] == value
    assert yaml.safe_load(f"key: {literal}")["key"] == value


@given(st.text())
def test_literal_renders_exactly_its_source_and_evaluates_nothing(value: str) -> None:
    environment = Environment(keep_trailing_newline=True, autoescape=False)  # noqa: S701 (plain text)

    assert environment.from_string(jinja.literal(value)).render() == value


def bicep_unescape(text: str) -> str:
    """Bicep's string escapes (\\\\, \\', \\n, \\r, \\t, \\$, \\u{X}), as the Bicep compiler reads them."""
    simple = {"n": "\n", "r": "\r", "t": "\t"}
    return re.sub(
        r"\\(u\{([0-9A-Fa-f]+)\}|.)",
        lambda m: chr(int(m.group(2), 16)) if m.group(2) else simple.get(m.group(1), m.group(1)),
        text,
    )


def test_bicep_quoted_stays_one_string_for_the_bicep_parser(tmp_path: Path) -> None:
    python = TOOLS_BIN.parent / "checkov-venv" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make template-tools` (checkov brings the pycep Bicep parser)")
    source = "".join(f"param p{i} string = {jinja.bicep_quoted(v)}\n" for i, v in enumerate(HOSTILE_TEXT))
    source += "param sentinel string = 'end'\n"
    parse = (
        "import json, sys; from pycep import BicepParser; "
        "print(json.dumps(BicepParser().parse(text=sys.stdin.read())))"
    )

    result = subprocess.run(
        [str(python), "-c", parse], input=source, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    parameters = json.loads(result.stdout)["parameters"]
    assert [bicep_unescape(parameters[f"p{i}"]["default"]) for i in range(len(HOSTILE_TEXT))] == HOSTILE_TEXT
    assert parameters["sentinel"]["default"] == "end", "no string ran into the next line"


def docker_unquote(word: str) -> str:
    assert word[0] == word[-1] == '"'
    return re.sub(r"\\(.)", r"\1", word[1:-1])


@pytest.mark.parametrize("value", [v for v in HOSTILE_TEXT if "\n" not in v])
def test_docker_quoted_escapes_quotes_backslashes_and_variables(value: str) -> None:
    word = jinja.docker_quoted(value)

    assert docker_unquote(word) == value
    assert re.fullmatch(r'"([^"\\$]|\\.)*"', word), "no bare quote, backslash or $ inside"


def test_answers_with_quotes_and_ampersands_land_intact_in_every_format(tmp_path: Path) -> None:
    answers = {
        "agent_name": "O'Brien & Co (Support)",
        "owner_team": "Team O'Neil & Co.",
        "description": "It's 1+1=2.",
    }
    project = Baker(tmp_path).bake(**answers).path
    chart = yaml.safe_load(next((project / "charts").glob("*/Chart.yaml")).read_text())
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    agent = ast.parse(next((project / "src").glob("*/agent.py")).read_text())
    constants = {
        target.id: ast.literal_eval(node.value)
        for node in agent.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    assert chart["description"] == f"{answers['agent_name']}: {answers['description']}"
    maintainer = {"name": answers["owner_team"], "email": REQUIRED_ANSWERS["owner_contact"]}
    assert chart["maintainers"] == [maintainer]
    assert pyproject["project"]["description"] == answers["description"]
    assert constants["AGENT_NAME"] == answers["agent_name"]
    assert constants["DESCRIPTION"] == answers["description"]
    shutil.rmtree(project)
