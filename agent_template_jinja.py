"""The template's Jinja extension (cookiecutter's `_extensions`): answers stay data, they are checked as soon
as the last question is answered, and filters quote them for each file format they land in.

cookiecutter compiles every answer it did not prompt for (`--no-input` and extra context, `cruft create
--extra-context`, the answers `cruft update` reads back from `.cruft.json`) as a Jinja template, before any
hook runs: an answer like `{{ cycler.__init__.__globals__.os.popen('id').read() }}` would run code on the
machine that bakes or updates a repo. Every string compiled with `from_string` passes `preprocess` first: what
is not the template's own text comes out as a template that prints it literally, and the answer checks
(hooks/pre_gen_project.py) then reject it, naming its question.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from jinja2 import Environment, UndefinedError
from jinja2.ext import Extension

# Jinja's openers of a variable, a block and a comment (the template sets no other delimiters).
MARKERS = ("{{", "{%", "{#")
# How the template's file and folder names use answers: `{{cookiecutter.agent_slug}}`.
PATH_FRAGMENT = re.compile(r"\{\{cookiecutter\.[a-z_]+\}\}")
# Characters `quoted` writes as \\uXXXX: controls, format characters, private use, unassigned, separators.
ESCAPED = {"Cc", "Cf", "Co", "Cn", "Zl", "Zp"}
QUESTION_OF_ERROR = re.compile(r"^ERROR: (\w+): ", re.MULTILINE)
REFERENCE = re.compile(r"cookiecutter\.(\w+)")
# The commands the docs give; a re-run command is printed in the same form.
CRUFT = ["uvx", "--from", "cruft==2.16.0", "cruft"]
COOKIECUTTER = ["uvx", "cookiecutter"]
CRUFT_CREATE_VALUE_OPTIONS = {
    "--output-dir",
    "--config-file",
    "--extra-context",
    "--extra-context-file",
    "-E",
    "--directory",
    "--checkout",
    "-c",
    "--skip",
}
COOKIECUTTER_VALUE_OPTIONS = {
    "--checkout",
    "-c",
    "--directory",
    "--replay-file",
    "-o",
    "--output-dir",
    "--config-file",
    "--debug-file",
    "--accept-hooks",
}


def literal(source: str) -> str:
    """Jinja source that renders exactly ``source`` and evaluates none of it: each `{` is printed by an
    expression of its own, so no variable, block or comment can open (and each carriage return too, which
    Jinja would otherwise turn into a newline)."""
    return source.replace("{", '{{ "{" }}').replace("\r", '{{ "\\r" }}')


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def own_text(root: Path) -> frozenset[str]:
    """The template's own Jinja that cookiecutter compiles from strings: cookiecutter.json's values (the
    derived defaults), the hook scripts and the generated repo's folder name."""
    texts = set(_strings(json.loads((root / "cookiecutter.json").read_text(encoding="utf-8"))))
    texts |= {path.read_text(encoding="utf-8") for path in (root / "hooks").iterdir() if path.is_file()}
    texts |= {path.name for path in root.iterdir() if path.is_dir()}
    return frozenset(text for text in texts if any(marker in text for marker in MARKERS))


def load_checks(root: Path) -> ModuleType:
    """hooks/pre_gen_project.py of this template, executed fresh (no bytecode cache left in the template)."""
    path = root / "hooks" / "pre_gen_project.py"
    module = ModuleType("agent_template_answer_checks")
    module.__file__ = str(path)
    # the template's own hook file, next to this module
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)  # noqa: S102
    return module


def quoted(value: object) -> str:
    """A double-quoted string literal that JSON, YAML, TOML and Python all read back as ``value``."""
    text = str(value)
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        raise ValueError(f"{text!r}: a lone surrogate cannot be written as text")
    # JSON escapes C0 controls; YAML and TOML also refuse DEL, C1 controls, separators and noncharacters raw
    return "".join(
        f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF and unicodedata.category(ch) in ESCAPED else ch
        for ch in json.dumps(text, ensure_ascii=False)
    )


def docker_quoted(value: object) -> str:
    """A Dockerfile double-quoted word (LABEL): backslash, quote and `$` (variable expansion) escaped."""
    text = str(value)
    if any(ch in text for ch in "\r\n"):
        raise ValueError(f"{text!r}: a line break cannot be quoted in a Dockerfile")
    return '"' + re.sub(r'([\\"$])', r"\\\1", text) + '"'


def bicep_quoted(value: object) -> str:
    """A Bicep single-quoted string: quote, `${` (interpolation) and line breaks escaped. A backslash is
    written as \\u{5C}, which Bicep reads as one backslash and no parser can take for the start of `\\'`."""
    escapes = {"\\": "\\u{5C}", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    text = "".join(escapes.get(ch, ch) for ch in str(value)).replace("${", "\\${")
    return f"'{text}'"


def make_value(value: object) -> str:
    """The right-hand side of a Make assignment that Make keeps as written: `$` doubled, `#` escaped. Recipes
    read such variables from the environment ("$$NAME"), so the shell never parses them as code."""
    text = str(value)
    if any(ch in text for ch in "\r\n") or text.endswith("\\"):
        raise ValueError(f"{text!r}: a line break or a trailing backslash cannot be kept in a Makefile")
    return text.replace("$", "$$").replace("#", "\\#")


def invocation(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """The command line tool running this process and its arguments, when it is cookiecutter's or cruft's."""
    if not argv:
        return None
    program = Path(argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.stem
    if name == "cruft" and len(argv) > 1:
        return f"cruft {argv[1]}", list(argv[2:])
    if name == "cookiecutter":
        return "cookiecutter", list(argv[1:])
    return None


def without(
    args: Sequence[str], drop: set[str], value_options: set[str], *, extra_context: bool
) -> list[str]:
    """``args`` minus the options in ``drop`` (with their values) and, for cookiecutter, the `key=value`
    answers after the template argument."""
    kept: list[str] = []
    positional = 0
    items = iter(args)
    for arg in items:
        option = arg.split("=", 1)[0] if arg.startswith("-") else ""
        takes_value = option in value_options and "=" not in arg
        if option in drop:
            if takes_value:
                next(items, None)
            continue
        if option:
            kept.append(arg)
            if takes_value:
                kept.append(next(items, ""))
            continue
        positional += 1
        if extra_context and positional > 1 and "=" in arg:
            continue
        kept.append(arg)
    return kept


def replayed(args: Sequence[str]) -> dict[str, Any]:
    """The answers of the replay file given to cookiecutter as `--replay-file FILE`, if any."""
    for index, arg in enumerate(args):
        path = arg.partition("=")[2] if arg.startswith("--replay-file=") else ""
        if arg == "--replay-file" and index + 1 < len(args):
            path = args[index + 1]
        if path:
            context: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))["cookiecutter"]
            return context
    return {}


class AgentTemplate(Extension):
    """Loaded by cookiecutter for every Jinja environment it creates (questions, hooks, files)."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        # cookiecutter imports this module by name from the template folder it put on sys.path. A cached
        # module would make `cruft update` check the newer release's answers with the older release's rules
        # (both renders run in one process): drop it, so each environment imports the template it renders.
        sys.modules.pop(__name__, None)
        self.root = Path(__file__).resolve().parent
        self.own = own_text(self.root)
        environment.filters.update(
            check_answers=self.check_answers,
            quoted=quoted,
            docker_quoted=docker_quoted,
            bicep_quoted=bicep_quoted,
            make_value=make_value,
            git_source=self.git_source,
            client_ids=self.client_ids,
        )

    def git_source(self, template: str) -> str:
        """The URL uv clones the SDK from with sdk_source=git (the answer checks refused a template source
        that has none before any file is rendered)."""
        url, problem = load_checks(self.root).git_source(str(template))
        if problem:
            raise ValueError(f"sdk_source: the template source {template!r} {problem}")
        return str(url)

    def client_ids(self, value: str) -> list[str]:
        """The client app IDs of a `client_app_ids` answer."""
        return [str(text) for text in load_checks(self.root).client_ids(value)]

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        # named templates are the template's files; strings are answers, defaults, hook scripts and paths
        if name is not None or not any(marker in source for marker in MARKERS) or source in self.own:
            return source
        # with a loader set, cookiecutter is rendering file and folder names (below the output folder)
        remainder = PATH_FRAGMENT.sub("", source)
        if self.environment.loader is not None and not any(marker in remainder for marker in MARKERS):
            return source
        return literal(source)

    def check_answers(self, answers: Mapping[str, Any]) -> str:
        """Rendered by `__answers_checked`, the last entry of cookiecutter.json: every problem at once, then
        exit before anything is written (an exit, not an exception: cookiecutter and cruft would print a
        traceback)."""
        problems = load_checks(self.root).validate(answers, complete=False)
        if not problems:
            return ""
        for problem in problems:
            print(problem, file=sys.stderr)
        print(self.rerun(answers, QUESTION_OF_ERROR.findall("\n".join(problems)), sys.argv), file=sys.stderr)
        raise SystemExit(1)

    def rerun(self, answers: Mapping[str, Any], bad: Sequence[str], argv: Sequence[str]) -> str:
        """How to run again without retyping the good answers: the same command, fed the kept answers."""
        tool = invocation(argv)
        if tool is None:
            return "Nothing was generated: fix the answers above and run again."
        command, args = tool
        if command not in ("cookiecutter", "cruft create"):  # cruft update, diff or link
            return (
                "Nothing was changed: these answers come from .cruft.json (and ANSWERS or the extra context "
                "given): correct them there and run the same command again."
            )
        raw = json.loads((self.root / "cookiecutter.json").read_text(encoding="utf-8"))
        replay = command == "cookiecutter"
        if replay:
            # a replayed run asks (and so checks) only what its replay file lacks: keep the file's answers too
            answers = {**replayed(args), **answers}
        again = self.ask_again(answers, set(bad), raw, with_sources=replay)
        kept = {
            key: value
            for key, value in answers.items()
            if key not in again
            and not key.startswith("__")
            and (not key.startswith("_") or (key != "_extensions" and value != raw.get(key)))
        }
        handle, path = tempfile.mkstemp(prefix="agent-template-answers-", suffix=".json")
        with open(handle, "w", encoding="utf-8") as file:
            json.dump({"cookiecutter": kept} if replay else kept, file, indent=2, ensure_ascii=False)
        if replay:
            # cookiecutter asks only what the replay file lacks, and refuses --no-input or answers beside it
            rest = without(
                args,
                {"--no-input", "--replay", "--replay-file"},
                COOKIECUTTER_VALUE_OPTIONS,
                extra_context=True,
            )
            line = shlex.join([*COOKIECUTTER, "--replay-file", path, *rest])
            how = "it asks only the questions above"
        else:
            drop = {"--no-input", "-y", "--extra-context", "--extra-context-file", "-E"}
            rest = without(args, drop, CRUFT_CREATE_VALUE_OPTIONS, extra_context=False)
            line = shlex.join([*CRUFT, "create", *rest, "--extra-context-file", path])
            how = "Enter keeps each kept answer"
        return f"Nothing was generated. The other answers are kept in {path}; run again ({how}):\n  {line}"

    def ask_again(
        self, answers: Mapping[str, Any], bad: set[str], raw: Mapping[str, Any], *, with_sources: bool
    ) -> set[str]:
        """The bad answers, the derived answers that followed one of them by default (so they follow the
        fix), and with ``with_sources`` what each of those is derived from (cookiecutter renders a derived
        default from answers given in the same run only)."""
        derived = {
            key: set(REFERENCE.findall(value))
            for key, value in raw.items()
            if isinstance(value, str) and not key.startswith("_") and REFERENCE.search(value)
        }
        again = set(bad)
        grew = True
        while grew:
            grew = False
            for key, sources in derived.items():
                if key in again or key not in answers or not sources & again:
                    continue
                try:
                    default = self.environment.from_string(raw[key]).render(cookiecutter=answers)
                except UndefinedError:  # derived from an answer this run did not have
                    continue
                if default == answers[key]:
                    again.add(key)
                    grew = True
        while with_sources:
            sources = set().union(*(derived.get(key, set()) for key in again)) - again
            with_sources = bool(sources)
            again |= sources
        return again
