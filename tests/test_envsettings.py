"""The settings mechanism is one file kept in both the SDK and the service (they share no dependency)."""

from __future__ import annotations

from pathlib import Path

import livekit_platform_sdk.envsettings as sdk_copy
import lkps.envsettings as service_copy


def test_the_sdk_and_the_service_carry_the_same_settings_mechanism() -> None:
    sdk = Path(str(sdk_copy.__file__)).read_text(encoding="utf-8")
    service = Path(str(service_copy.__file__)).read_text(encoding="utf-8")
    assert sdk == service, (
        "sdk/src/livekit_platform_sdk/envsettings.py and service/src/lkps/envsettings.py differ:"
        " change one, then copy it over the other"
    )
