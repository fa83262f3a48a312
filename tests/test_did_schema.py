"""An agent DID names the same PostgreSQL schema here as in upstream Bindu, always.

Upstream's own ``sanitize_did_for_schema`` (in its virtualenv, ``tests/upstream.py``) and ours
map thousands of generated DIDs: short and long (the hashed names past 63 characters), with
non-ASCII letters, leading digits, separators of every kind. Equal names mean an agent finds
the schema upstream filled, and two DIDs upstream keeps apart are kept apart here.
"""

from __future__ import annotations

import json
import random
import string

import pytest

from bindu_storage import InvalidValueError
from bindu_storage.sqlnames import schema_for_did

MAPPER = """
import json, sys
from bindu.utils.schema_manager import sanitize_did_for_schema
dids = json.loads(sys.stdin.read() if sys.argv[1] == "-" else sys.argv[1])
print("RESULT " + json.dumps([sanitize_did_for_schema(d) for d in dids]))
"""

# non-ASCII letters, among them the dotted capital I, the dotless i and the Kelvin sign
ALPHABET = string.ascii_letters + string.digits + ":-_.@/+ %$#" + "éëÉß\u0130\u0131\u212aøΩжü中🙂"


def generated_dids(count: int, seed: int = 7) -> list[str]:
    """DIDs of every shape: upstream-like ones and random strings of 1..90 characters."""
    rng = random.Random(seed)
    dids = []
    for i in range(count):
        if i % 3 == 0:
            org = "".join(rng.choices(string.ascii_lowercase + "_-", k=rng.randint(1, 30)))
            agent = "".join(rng.choices(string.ascii_lowercase + "-", k=rng.randint(1, 30)))
            dids.append(f"did:bindu:{org}:{agent}:{rng.getrandbits(128):032x}")
        else:
            dids.append("".join(rng.choices(ALPHABET, k=rng.randint(1, 90))))
    # names around the 63-character limit, and pairs that differ only past the cut
    dids += ["did:" + "a" * n for n in range(55, 66)]
    dids += [f"did:bindu:acme_research_lab:literature-review-agent:{n:036d}" for n in range(20)]
    dids += ["did:bindu:josé:agent", "did:bindu:josë:agent", "9lives", "Did:Bindu:UPPER"]
    return dids


def test_every_did_maps_to_upstreams_schema(upstream) -> None:
    dids = generated_dids(3000)
    done = upstream.run(MAPPER, "-", input_text=json.dumps(dids))
    theirs = json.loads(done.stdout.splitlines()[-1].removeprefix("RESULT "))
    ours = [schema_for_did(d) for d in dids]
    mismatches = [(d, o, t) for d, o, t in zip(dids, ours, theirs, strict=True) if o != t]
    assert mismatches == []
    assert len({s for s in ours if len(s) == 63}) > 100  # the hashed form was exercised
    long_ones = [o for d, o in zip(dids, ours, strict=True) if "literature-review-agent" in d and len(d) > 80]
    assert len(set(long_ones)) == len(long_ones)  # same 54-character prefix, still apart


@pytest.mark.parametrize("bad", ["", None, 42])
def test_no_schema_for_an_empty_or_non_string_did(bad: object) -> None:
    with pytest.raises(InvalidValueError, match="did"):
        schema_for_did(bad)  # type: ignore[arg-type]
