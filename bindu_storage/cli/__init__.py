"""``bindu-storage``: demo, seed, diagnose, export and migrate from the command line.

``main()`` is the console script (``bindu-storage``) and ``python -m bindu_storage``.
"""

from bindu_storage.cli.app import CliError, build_parser, main

__all__ = ["CliError", "build_parser", "main"]
