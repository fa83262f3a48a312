"""Redaction in frames: the one rule of ``bindu_storage.analysis.redact``, under its old name."""

from bindu_storage.analysis.redact import REDACTED, is_secret_key, redact, redact_arrow, redact_text

__all__ = ["REDACTED", "is_secret_key", "redact", "redact_arrow", "redact_text"]
