"""Settings read from environment variables with pydantic-settings: one field per variable declares its name,
default, bounds and reference text once; every problem is reported at once, naming the variable, what is
wrong and the fix (never a secret's value).

This file is both ``livekit_platform_sdk/envsettings.py`` and ``lkps/envsettings.py`` (the SDK and the
service share no dependency); ``tests/test_envsettings.py`` keeps the two copies identical.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from types import UnionType
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BeforeValidator, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_S = TypeVar("_S", bound="EnvSettings")


class SettingsError(ValueError):
    """One or more settings are missing or invalid; the message lists each variable and how to fix it."""

    def __init__(self, problems: list[str], subject: str = "this program") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{subject} is not configured correctly:\n{lines}")


# -- value types ------------------------------------------------------------------------------------------


def _boolean(value: object) -> object:
    if isinstance(value, str):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError("is not a boolean: set it to true or false")
    return value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _lowercase(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def url(*schemes: str) -> BeforeValidator:
    """Accepts a URL with one of ``schemes`` and a host (or "", a default meaning "not given"); trailing
    slashes are dropped."""
    names = "http(s)" if set(schemes) == {"http", "https"} else "/".join(schemes)
    article = "an" if names[0] in "aehiou" else "a"
    problem = f"is not {article} {names} URL: set it to a URL like {schemes[0]}://host"

    def check(value: object) -> object:
        if isinstance(value, str) and value:
            parts = urlsplit(value)
            if parts.scheme not in schemes or not parts.netloc:
                raise ValueError(problem)
            return value.rstrip("/")
        return value

    return BeforeValidator(check)


Flag = Annotated[bool, BeforeValidator(_boolean)]
"""A boolean spelled true/false, 1/0, yes/no or on/off (any case)."""
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]
"""Comma-separated values, each trimmed; empty ones dropped."""
Lowercase = BeforeValidator(_lowercase)
"""Lower-cases a value before it is checked (``Annotated[Literal["a", "b"], Lowercase]``)."""
HttpUrl = Annotated[str, url("https", "http")]
"""An ``https://`` or ``http://`` URL with a host."""


# -- the mechanism ------------------------------------------------------------------------------------------


def variable_of(field_name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from: its ``validation_alias``."""
    alias = field.validation_alias
    return alias if isinstance(alias, str) else field_name


def field_notes(field: FieldInfo) -> Mapping[str, Any]:
    """The settings-specific keys of a field's ``json_schema_extra``: ``group`` (its reference section),
    ``unit``, ``default_text`` (the default as the docs say it, when derived), ``blank`` (an empty value is
    a value, not unset), ``sensitive`` (never echo the value, though it is no ``SecretStr``)."""
    extra = field.json_schema_extra
    return extra if isinstance(extra, Mapping) else {}


def value_type(field: FieldInfo) -> Any:
    """The field's type without ``| None``."""
    annotation = field.annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if get_origin(annotation) in (Union, UnionType) and len(args) == 1 else annotation


def is_secret(field: FieldInfo) -> bool:
    return value_type(field) is SecretStr


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class EnvironmentSource(PydanticBaseSettingsSource):
    """Each field's variable looked up by its exact name in one mapping; surrounding blanks are trimmed and an
    empty value counts as unset (unless the field says a blank is a value)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = variable_of(field_name, field)
        raw = self._environ.get(name)
        value = None if raw is None else raw.strip()
        if value == "" and not field_notes(field).get("blank"):
            value = None
        return value, name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[name] = value
        return values


class EnvSettings(BaseSettings):
    """Settings read from environment variables by ``from_env``, one field per variable: the field's
    ``validation_alias`` names the variable, ``title`` says what to set it to (for required ones),
    ``description`` is its reference text, and its bounds are the field's constraints.

    Constructing one directly (``Settings(platform_url=...)``) takes the values given plus the defaults and
    never reads the environment. Either way an invalid value raises ``SettingsError`` listing every problem.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        defer_build=True,  # built on first use: importing a settings module stays cheap
        hide_input_in_errors=True,
    )
    subject: ClassVar[str] = "this program"
    """Who is not configured correctly, as the error's first line says."""
    prefix: ClassVar[str | None] = None
    """Variables starting with this are expected to be settings of this class; others are reported."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            problems = _problems(type(self), error)
        else:
            return
        # raised outside the handler: the ValidationError (it holds every input, secrets too) is not chained
        raise SettingsError(problems, type(self).subject)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # only what the caller passes: from_env passes the environment it was given
        return (init_settings,)

    @classmethod
    def from_env(cls: type[_S], environ: Mapping[str, str] | None = None) -> _S:
        """Read every setting from ``environ`` (default ``os.environ``); raise one ``SettingsError`` listing
        all problems found, and then also the variables ``unknown_variables`` reports (a misspelt variable
        is often why a required one is missing)."""
        env = os.environ if environ is None else environ
        try:
            return cls(**EnvironmentSource(cls, env)())
        except SettingsError as error:
            problems = error.problems + cls.unknown_variables(env)
        raise SettingsError(problems, cls.subject)

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Field name -> the environment variable it is read from, in declaration order."""
        return {name: variable_of(name, field) for name, field in cls.model_fields.items()}

    @classmethod
    def unknown_variables(cls, environ: Mapping[str, str] | None = None) -> list[str]:
        """A warning for each variable with this class's ``prefix`` that is no setting (a typo, or one this
        version does not know), with the closest known name. Ignored, not refused: a deployment may carry a
        newer setting to an older image."""
        if cls.prefix is None:
            return []
        from difflib import get_close_matches

        env = os.environ if environ is None else environ
        known = set(cls.variables().values())
        warnings = []
        for name in sorted(n for n in env if n.startswith(cls.prefix) and n not in known):
            close = get_close_matches(name, known, n=1, cutoff=0.8)
            hint = f"did you mean {close[0]}?" if close else "remove it or check the spelling"
            warnings.append(f"{name} is set but is not a setting of {cls.subject} and is ignored: {hint}")
        return warnings

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        fields = type(self).model_fields
        for name, value in super().__repr_args__():
            field = fields.get(name) if name else None
            if field is not None and is_secret(field):
                yield name, _Shown("<unset>" if value is None else "<set>")
            else:
                yield name, value


class _Shown(str):
    def __repr__(self) -> str:
        return str(self)


def allowed(field: FieldInfo) -> str:
    """What a numeric field accepts, as its errors and its reference entry say it ("an integer between 0 and
    65535", "a number of seconds at least 0.1"); "" for other fields."""
    kind = value_type(field)
    if kind not in (int, float):
        return ""
    unit = field_notes(field).get("unit")
    if kind is int:
        text = f"a whole number of {unit}" if unit else "an integer"
    else:
        text = f"a number of {unit}" if unit else "a number"
    low = high = None
    above = False
    for item in field.metadata:
        for attribute, strict in (("ge", False), ("gt", True)):
            if getattr(item, attribute, None) is not None:
                low, above = getattr(item, attribute), strict
        if getattr(item, "le", None) is not None:
            high = item.le
    if low is not None and high is not None:
        return f"{text} between {number_text(low)} and {number_text(high)}"
    if low is not None:
        return f"{text} {'above' if above else 'at least'} {number_text(low)}"
    return f"{text} at most {number_text(high)}" if high is not None else text


def _problem(variable: str, field: FieldInfo | None, error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        what = field.title if field is not None and field.title else "a value"
        return f"{variable} is not set: set it to {what}"
    value = error.get("input")
    hidden = field is None or is_secret(field) or field_notes(field).get("sensitive")
    # a rule that fails on the default value (e.g. "required in entra mode") is about an unset variable
    unset = value is None or (field is not None and value == field.default)
    subject = variable if hidden or unset else f"{variable}={value!r}"
    accepted = allowed(field) if field is not None else ""
    choices = get_args(value_type(field)) if field is not None else ()
    if kind == "value_error":
        return f"{subject} {error['ctx']['error']}"
    if kind in ("int_parsing", "int_from_float", "int_type") and accepted:
        return f"{subject} is not an integer: set it to {accepted} or unset it"
    if kind in ("float_parsing", "float_type", "finite_number") and accepted:
        return f"{subject} is not a number: set it to {accepted} or unset it"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal") and accepted:
        return f"{subject} is out of range: set it to {accepted}"
    if kind == "literal_error" and choices:
        return f"{subject} is not one of {', '.join(map(str, choices))}: pick one of them"
    if kind == "extra_forbidden":
        return f"{variable} is not a setting: remove it or check the spelling"
    return f"{subject} is invalid ({error['msg']}): fix it or unset it"


def _problems(cls: type[EnvSettings], error: ValidationError) -> list[str]:
    by_key: dict[str, tuple[str, FieldInfo | None]] = {}
    for name, declared in cls.model_fields.items():
        by_key[name] = by_key[variable_of(name, declared)] = (variable_of(name, declared), declared)
    problems = []
    for item in error.errors(include_url=False):
        key = str(item["loc"][0]) if item["loc"] else ""
        variable, field = by_key.get(key, (key, None))
        problems.append(_problem(variable, field, item))
    return problems
