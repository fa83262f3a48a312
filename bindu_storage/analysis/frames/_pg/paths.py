"""SQL over the key paths of a JSONB document: reaching a value, classifying it, checking a guess.

* ``chain`` reaches the value at a key path through objects only;
* ``type_mask`` classifies one value as a bit mask (``TYPE_BITS``, ``NOT_INT``, ``OTHER_KEYS``):
  the verification pass ORs it over every document, and a page statement checks it per row;
* a ``Guess`` is what a sample of the documents showed (each path's allowed bits and the keys of
  its objects); ``Guess.outside`` flags a document holding anything the sample
  lacked, computed in the page statement itself, so a sampled plan costs no second scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bindu_storage.analysis.frames._columns import INT64_MAX, INT64_MIN
from bindu_storage.analysis.frames._pg.params import Params

Path = tuple[str, ...]

TYPE_BITS = {"string": 1, "number": 2, "boolean": 4, "array": 8, "null": 16, "object": 32}
"""The bit of each JSON type in a mask."""
NOT_INT, OTHER_KEYS = 64, 128
"""Mask bits: a number that is no int64; an object with keys outside the known ones."""


def chain(doc: str, path: Sequence[str], p: Params, text: bool = False) -> str:
    """``(doc -> k1 -> k2 ...)``: the value at ``path`` through objects only (``->>`` last for text).

    Unlike ``#>``, a text key never indexes into an array, so only the values the discovery
    walk saw are reached.
    """
    expr = doc
    for i, key in enumerate(path):
        expr = f"{expr} {'->>' if text and i == len(path) - 1 else '->'} {p.key(key)}"
    return f"({expr})" if path else expr


def other_keys(v: str, keys: Sequence[str], p: Params, typed: bool = True) -> str:
    """Whether ``v`` is an object with keys outside ``keys`` (``typed=False``: known an object)."""
    test = f"{v} - {p(list(keys), 'text[]')} <> '{{}}'::jsonb"
    return f"CASE WHEN jsonb_typeof({v}) = 'object' THEN {test} ELSE false END" if typed else test


def type_mask(doc: str, path: Path, keys: Sequence[str], p: Params) -> str:
    """The mask of the value at ``path`` of ``doc`` (NULL when absent); ``keys``: the known keys
    of an object there."""
    v = chain(doc, path, p)
    text = chain(doc, path, p, text=True) if path else f"({v} #>> '{{}}')"
    number, other = TYPE_BITS["number"], TYPE_BITS["number"] | NOT_INT
    return (
        f"CASE jsonb_typeof({v}) WHEN 'string' THEN {TYPE_BITS['string']}"
        # a number's text has a '.' when it has decimals (never an exponent)
        f" WHEN 'number' THEN CASE WHEN strpos({text}, '.') > 0 THEN {other}"
        f" WHEN length({text}) < 19 THEN {number}"
        f" WHEN {v}::numeric BETWEEN {INT64_MIN} AND {INT64_MAX} THEN {number} ELSE {other} END"
        f" WHEN 'boolean' THEN {TYPE_BITS['boolean']} WHEN 'array' THEN {TYPE_BITS['array']}"
        f" WHEN 'null' THEN {TYPE_BITS['null']} WHEN 'object' THEN CASE WHEN"
        f" {other_keys(v, keys, p, typed=False)} THEN {TYPE_BITS['object'] | OTHER_KEYS}"
        f" ELSE {TYPE_BITS['object']} END END"
    )


@dataclass(frozen=True)
class Guess:
    """The key paths a sample of a JSONB column's documents showed, to check every document against."""

    doc: str
    """The JSONB expression in the page statement."""
    paths: tuple[tuple[Path, tuple[str, ...], int], ...]
    """(path, keys of its objects in the sample, the mask bits the sample allowed there)."""

    def outside(self, p: Params) -> str:
        """SQL: the mask bits of what the row's document holds and the sample lacked (a path, a
        type, an object key), NULL when there are none (an empty CSV field: most rows)."""
        tests = [
            f"coalesce({type_mask(self.doc, path, keys, p)}, 0) & {~allowed & 255}"
            for path, keys, allowed in self.paths
            if ~allowed & 255
        ]
        return f"nullif({' | '.join(tests)}, 0)" if tests else "NULL::int"
