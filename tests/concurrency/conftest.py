"""The real pipeline fixtures of the reliability tests, for C5 here."""

from tests.reliability.conftest import pipeline, staff  # noqa: F401
