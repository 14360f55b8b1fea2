"""Management endpoint tests (a package: test_keys.py is also a name in tests/guards)."""
