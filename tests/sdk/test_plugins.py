"""Plugins by name: the real module when installed, a falsy placeholder naming the extra when not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from livekit_platform_sdk import plugins
from livekit_platform_sdk.plugins import PluginNotInstalledError
from livekit_platform_sdk.plugins.catalog import BY_MODULE, CATEGORIES, PLUGINS, expected_extras

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli before 3.11
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

SDK_PYPROJECT = Path(__file__).resolve().parents[2] / "sdk" / "pyproject.toml"


def test_missing_plugin_is_falsy_and_its_use_names_the_extra_to_install() -> None:
    from livekit_platform_sdk.plugins import openai, silero

    assert not openai
    assert not silero
    with pytest.raises(PluginNotInstalledError) as error:
        openai.LLM(model="gpt-4o-mini")
    assert 'pip install "livekit-platform-sdk[openai]"' in str(error.value)
    assert "livekit.plugins.openai is not installed" in str(error.value)
    with pytest.raises(ImportError, match=r"livekit-platform-sdk\[silero\]"):
        silero.VAD.load()


def test_unknown_plugin_names_its_distribution() -> None:
    with pytest.raises(ImportError, match="pip install livekit-plugins-made-up"):
        plugins.made_up.STT()


def test_installed_plugin_is_the_real_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "livekit" / "plugins" / "sdkdemo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("MARKER = 'real plugin'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "livekit.plugins.sdkdemo", raising=False)
    monkeypatch.delattr(plugins, "sdkdemo", raising=False)

    from livekit_platform_sdk.plugins import sdkdemo

    assert sdkdemo is sys.modules["livekit.plugins.sdkdemo"]
    assert sdkdemo.MARKER == "real plugin"


def test_private_names_are_not_treated_as_plugins() -> None:
    with pytest.raises(AttributeError):
        plugins._secret  # noqa: B018


def test_catalog_modules_and_extras_are_unique_and_categorised() -> None:
    assert len({p.extra for p in PLUGINS}) == len(PLUGINS)
    assert len(BY_MODULE) == len(PLUGINS)
    assert BY_MODULE["minimax"].distribution == "livekit-plugins-minimax-ai"
    for category in CATEGORIES:
        assert expected_extras()[category], f"category extra {category} would be empty"


def test_sdk_pyproject_extras_match_the_plugin_table() -> None:
    declared = tomllib.loads(SDK_PYPROJECT.read_text())["project"].get("optional-dependencies", {})
    declared = {name: sorted(reqs) for name, reqs in declared.items() if name != "testing"}
    expected = {name: sorted(reqs) for name, reqs in expected_extras().items()}
    missing = sorted(set(expected) - set(declared))
    extra = sorted(set(declared) - set(expected))
    assert not missing, f"sdk/pyproject.toml lacks extras {missing}: paste notes/sdk_extras.toml"
    assert not extra, f"sdk/pyproject.toml has extras the plugin table does not know: {extra}"
    different = [name for name in expected if declared[name] != expected[name]]
    assert not different, f"extras differ from the plugin table: {different}"
