"""Removing secrets from SQL text shown by diagnostics: ``bindu_storage.analysis.redact``'s rule.

``pg_stat_activity`` shows statements as sent, literals included, and ``pg_stat_statements``
keeps utility statements (``CREATE ROLE … PASSWORD '…'``) verbatim, so every query text a
diagnostic returns passes through :func:`redact_sql` first.
"""

from bindu_storage.analysis.redact import redact_sql

__all__ = ["redact_sql"]
