"""Fixtures shared across test files: the loopback ELEMENT and Navixy fakes."""

from tests.test_daemon import fakes  # noqa: F401 - a fixture, found by name
