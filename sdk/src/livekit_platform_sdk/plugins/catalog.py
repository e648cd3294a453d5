"""The LiveKit-published plugins the SDK offers as extras: name, distribution, module and categories.

Source: the ``livekit-plugins-*`` distributions LiveKit releases with livekit-agents (same version line), plus
LiveKit's separately versioned ones. ``tests/sdk/test_plugins.py`` checks ``sdk/pyproject.toml`` against it.
"""

from __future__ import annotations

from dataclasses import dataclass

STT = "stt"
TTS = "tts"
LLM = "llm"
AVATAR = "avatar"
AUDIO = "audio"
OTHER = "other"
CATEGORIES = (STT, TTS, LLM, AVATAR, AUDIO)
"""Categories that get an extra of their own (``pip install "livekit-platform-sdk[tts]"``)."""

_LOCKSTEP = ">=1.8.9,<1.9"  # released together with livekit-agents: same minor range as the SDK pins


@dataclass(frozen=True)
class PluginInfo:
    extra: str
    """The extra's name, also the plugin's name without ``livekit-plugins-``."""
    module: str
    """``livekit.plugins.<module>``, and ``livekit_platform_sdk.plugins.<module>``."""
    categories: tuple[str, ...]
    version: str = _LOCKSTEP
    marker: str = ""
    """An environment marker for plugins that cannot install everywhere the SDK runs."""

    @property
    def distribution(self) -> str:
        return f"livekit-plugins-{self.extra}"

    @property
    def requirement(self) -> str:
        return f"{self.distribution}{self.version}" + (f"; {self.marker}" if self.marker else "")


def _p(
    extra: str, *categories: str, module: str | None = None, version: str = _LOCKSTEP, marker: str = ""
) -> PluginInfo:
    return PluginInfo(extra, module or extra.replace("-", "_"), categories, version, marker)


PLUGINS: tuple[PluginInfo, ...] = (
    _p("anam", AVATAR),
    _p("anthropic", LLM),
    _p("assemblyai", STT),
    _p("asyncai", TTS),
    _p("avatario", AVATAR),
    _p("avatartalk", AVATAR),
    _p("aws", STT, TTS, LLM),
    _p("azure", STT, TTS),
    _p("baseten", STT, TTS, LLM),
    _p("bey", AVATAR),
    _p("bithuman", AVATAR),
    _p("bland", TTS),
    _p("boson-avatar", AVATAR),
    _p("cambai", TTS),
    _p("cartesia", STT, TTS),
    _p("cerebras", LLM),
    _p("clova", STT),
    _p("deepgram", STT, TTS),
    _p("did", AVATAR),
    _p("elevenlabs", STT, TTS),
    _p("fal", STT),
    _p("fireworksai", LLM),
    _p("fishaudio", TTS),
    _p("gladia", STT),
    _p("gnani", STT, TTS),
    _p("google", STT, TTS, LLM),
    _p("gradium", STT, TTS),
    _p("groq", STT, TTS, LLM),
    _p("hamming", OTHER),
    _p("hedra", AVATAR, version=">=1.7.1,<2"),
    _p("hume", TTS),
    _p("inworld", STT, TTS),
    _p("keyframe", AVATAR),
    _p("krisp", AUDIO, version=">=0.4.9,<0.5"),
    _p("langchain", LLM),
    _p("lemonslice", AVATAR),
    _p("liveavatar", AVATAR),
    _p("lmnt", TTS),
    _p("meta", STT),
    _p("microsoft-ai", STT, TTS),
    _p("minimax-ai", TTS, LLM, module="minimax"),
    _p("mistralai", LLM, STT),
    _p("murf", TTS),
    _p("nabrah", STT),
    _p("neuphonic", TTS),
    _p("nltk", OTHER),
    _p("noise-cancellation", AUDIO, version=">=0.3.2,<0.4"),
    _p("nvidia", STT, TTS),
    _p("openai", STT, TTS, LLM),
    _p("palabra", STT, TTS),
    _p("perplexity", LLM),
    _p("phonic", LLM),
    _p("protoface", AVATAR),
    _p("resemble", TTS),
    _p("respeecher", TTS),
    _p("rime", TTS),
    _p("rtzr", STT),
    _p("runway", AVATAR),
    _p("sarvam", STT, TTS),
    _p("silero", AUDIO),
    _p("simli", AVATAR),
    _p("simplismart", STT, TTS),
    _p("slng", STT, TTS),
    _p("smallestai", STT, TTS),
    _p("soniox", STT),
    _p("spatialreal", AVATAR),
    _p("spatius", AVATAR),
    _p("speechify", TTS),
    _p("speechmatics", STT),
    _p("spitch", STT, TTS),
    _p("synthesia", AVATAR),
    _p("tavus", AVATAR),
    _p("telnyx", STT, TTS),
    _p("thunderphone", LLM),
    _p("trugen", AVATAR),
    # its onnxruntime pin has no Python 3.10 build
    _p("turn-detector", AUDIO, marker="python_version >= '3.11'"),
    _p("typesafe", OTHER),
    _p("ultravox", LLM),
    _p("upliftai", TTS),
    _p("vakyam", TTS),
    _p("xai", LLM, TTS),
)

BY_MODULE: dict[str, PluginInfo] = {p.module: p for p in PLUGINS}


def expected_extras() -> dict[str, list[str]]:
    """The ``[project.optional-dependencies]`` entries the plugin table calls for (testing extra excluded)."""
    extras = {p.extra: [p.requirement] for p in PLUGINS}
    for category in CATEGORIES:
        extras[category] = sorted(p.requirement for p in PLUGINS if category in p.categories)
    return extras
