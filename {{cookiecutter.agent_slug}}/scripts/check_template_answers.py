"""Refuse template answers that cruft would run as code: Jinja syntax, invisible characters, values that are
not plain text or yes/no. Stdlib only.

`make update` and `make link` run it before cruft: cruft renders every answer in .cruft.json (and in ANSWERS)
as a Jinja template, also with the template release the repo is on now, and .cruft.json can arrive in a pull
request. The template checks each answer fully (format, examples, quoting) when it renders.

Usage: python3 scripts/check_template_answers.py [ANSWERS_FILE]
  without a file: the answers in .cruft.json and the ANSWERS environment variable (`make update ANSWERS=...`)
  with a file: a JSON object of answers (`make link` passes .cookiecutter-answers.json)
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRUFT_FILE = ROOT / ".cruft.json"
# Jinja's openers of a variable, a block and a comment, spelled so this file holds none of them.
OPEN = "{"
MARKERS = tuple(OPEN + second for second in (OPEN, "%", "#"))
# controls, format characters (bidi overrides, zero-width), surrogates, private use, unassigned, separators
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def answer_problems(source: str, answers: object) -> list[str]:
    """Every answer in ``answers`` (a JSON object) that cruft must not render, one line each."""
    if not isinstance(answers, dict):
        return [f"{source}: not a JSON object of answers"]
    problems = []
    for key, value in answers.items():
        if key.startswith("_"):
            continue  # cruft never feeds private keys back; the template release provides them
        where = f"{source}: {key}"
        if isinstance(value, bool):
            continue
        if not isinstance(value, str):
            problems.append(f"{where}: {value!r} is not a text or yes/no answer")
            continue
        markers = [marker for marker in MARKERS if marker in value]
        if markers:
            shown = " ".join(markers)
            problems.append(f"{where}: contains Jinja template syntax ({shown}), which cruft would run")
        hidden = [ch for ch in value if unicodedata.category(ch) in INVISIBLE or (ch.isspace() and ch != " ")]
        if hidden:
            name = unicodedata.name(hidden[0], "unnamed")
            problems.append(f"{where}: contains the invisible character U+{ord(hidden[0]):04X} {name}")
    return problems


def main(argv: list[str]) -> int:
    problems: list[str] = []
    sources: list[tuple[str, str]] = []
    if argv:
        sources.append((argv[0], Path(argv[0]).read_text(encoding="utf-8")))
    else:
        if CRUFT_FILE.is_file():
            sources.append((".cruft.json", CRUFT_FILE.read_text(encoding="utf-8")))
        if os.environ.get("ANSWERS"):
            sources.append(("ANSWERS", os.environ["ANSWERS"]))
    for source, text in sources:
        try:
            data = json.loads(text)
        except ValueError as exc:
            problems.append(f"{source}: not valid JSON ({exc})")
            continue
        if source == ".cruft.json":
            data = (data.get("context") or {}).get("cookiecutter") if isinstance(data, dict) else None
        problems.extend(answer_problems(source, data))
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    if problems:
        print("Nothing was run: correct these answers (and review where they came from).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
