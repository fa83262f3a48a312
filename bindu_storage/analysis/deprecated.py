"""Old spellings kept for one release: each use warns with a ``DeprecationWarning`` naming the new one.

``renamed`` moves a keyword argument given under its old name to its new one; the frames
package uses ``warn_renamed`` for its ``iter_*_frame`` functions. Both name the replacement, so
fixing a warning never needs the changelog.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from bindu_storage.errors import InvalidTypeError


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (both as the user writes them)."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed(where: str, given: Mapping[str, Any], names: Mapping[str, str], **current: Any) -> dict[str, Any]:
    """``current`` (new name → value) with the old spellings in ``given`` moved to their new names.

    ``names`` maps each old keyword of ``where`` to its new one; each old keyword used warns.
    An unknown keyword is a ``TypeError``, as Python raises it; an old and a new spelling of the
    same argument together are an ``InvalidTypeError``.
    """
    out = dict(current)
    for old, value in given.items():
        new = names.get(old)
        if new is None:
            raise TypeError(f"{where}() got an unexpected keyword argument {old!r}")
        warn_renamed(f"{where}({old}=...)", f"{new}=", stacklevel=4)
        if out.get(new) is not None:
            raise InvalidTypeError(f"{where}() got both {old}= (deprecated) and {new}=; pass {new}= only")
        out[new] = value
    return out
