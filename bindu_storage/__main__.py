"""``python -m bindu_storage``: the ``bindu-storage`` command line."""

from bindu_storage.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
