"""The quality gate: Great Expectations suites (expectations/) over the marts and raw loads.

``validate(url, as_of)`` stores every result in ``quality.validation_results`` and raises
``QualityGateFailed`` when a critical expectation fails; ``exops.publish`` refuses to run
for an as-of date whose latest validation did not pass.
"""

from exops.quality.gate import (
    ExpectationResult,
    QualityGateFailed,
    ValidationResult,
    validate,
)

__all__ = ["ExpectationResult", "QualityGateFailed", "ValidationResult", "validate"]
