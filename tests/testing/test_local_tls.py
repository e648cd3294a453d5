"""The stand-ins' throwaway certificate authority cleans up after itself."""

from __future__ import annotations

import gc
import ssl
import tempfile
from pathlib import Path

from livekit_platform_testing.tls import LocalTLS


def test_a_directory_it_made_is_removed_with_it() -> None:
    tls = LocalTLS()
    directory = tls.directory
    assert directory.is_dir()
    assert tls.ca_file.is_file()
    ssl.create_default_context(cafile=str(tls.ca_file))  # the files are usable while it lives
    del tls
    gc.collect()
    assert not directory.exists()  # hundreds of these used to pile up in /tmp over a test run


def test_a_directory_it_was_given_is_left_alone() -> None:
    with tempfile.TemporaryDirectory() as given:
        tls = LocalTLS(directory=Path(given) / "certs")
        del tls
        gc.collect()
        assert (Path(given) / "certs" / "ca.pem").is_file()
