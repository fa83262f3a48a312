"""Analysis over any storage: DataFrames, JSONB containment filters, read-only diagnostics.

The async functions are primary (``await tasks_frame(storage)`` works in Jupyter);
``bindu_storage.analysis.notebook`` offers the same synchronously for pandas-style use.
"""
