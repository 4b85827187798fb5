"""The quality gate: Great Expectations suites over the marts and raw loads."""
