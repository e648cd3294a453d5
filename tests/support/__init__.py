"""Helpers the test folders share, one module per thing they hold (import ``tests.support.<module>``).

Test modules import helpers from here only, never from another test module or a ``conftest.py``; fixtures
stay in the ``conftest.py`` of the folder that uses them, and the stand-ins come from the
``livekit_platform_testing`` pytest plugin.
"""
