"""Column-selection arguments with NUL or lone surrogates: ``InvalidValueError`` naming the argument,
on both backends, instead of a raw driver error (issue 8, item 6)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bindu_storage import InvalidValueError, Storage
from bindu_storage.analysis import frames as F

BAD_NAMES = ["a\x00b", "\x00", "a\ud800", "\udfff.b", "ok.\ud83d"]

LOADERS: list[tuple[str, Callable[..., Awaitable[Any]]]] = [
    ("metadata_columns", F.tasks_frame),
    ("context_data_columns", F.contexts_frame),
    ("task_metadata_columns", F.feedback_frame),
    ("feedback_columns", F.feedback_frame),
]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
@pytest.mark.parametrize(("argument", "loader"), LOADERS, ids=[a for a, _ in LOADERS])
async def test_bad_column_names_are_typed_errors(
    storage: Storage, argument: str, loader: Callable[..., Awaitable[Any]], bad: str
) -> None:
    with pytest.raises(InvalidValueError, match=argument):
        await loader(storage, **{argument: ["fine", bad]})


async def test_iterating_loaders_refuse_them_too(storage: Storage) -> None:
    with pytest.raises(InvalidValueError, match="metadata_columns"):
        async for _ in F.tasks_frame(storage, metadata_columns=["x\x00"], chunksize=10):
            pass
