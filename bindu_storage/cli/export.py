"""``bindu-storage export``: one frame of the database streamed to Parquet or CSV.

Chunks come from the analysis toolkit's frames read with ``chunksize=`` (keyset-ordered reads in a
read-only transaction, constant memory); each is appended to the file as it arrives. The file
is written beside its destination and moved into place at the end, so a failed export never
leaves half a file under the requested name. A column of JSON values (arrays, objects, or a key
whose values differ in type: the frames' ``object`` columns) is written as each value's JSON
text, in Parquet and in CSV alike. The file gets the permissions any file the user
creates gets (0666 less the umask), not a temporary file's 0600.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bindu_storage.cli.app import CliError
from bindu_storage.cli.common import announce, resolve, settings
from bindu_storage.cli.table import fmt_int

if TYPE_CHECKING:
    import pandas as pd

FORMATS = {".parquet": "parquet", ".csv": "csv"}


def _loader(kind: str) -> Callable[..., Any]:
    """The frame function of ``kind`` (called with ``chunksize=``: an async iterator of frames)."""
    from bindu_storage.analysis import frames

    loaders: dict[str, Callable[..., Any]] = {
        "tasks": frames.tasks_frame,
        "contexts": frames.contexts_frame,
        "messages": frames.messages_frame,
        "feedback": frames.feedback_frame,
        "events": frames.events_frame,
    }
    return loaders[kind]


def json_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each ``object`` column (JSON values) as the JSON text of its values; missing
    stays missing. Every other column already has one type a file can hold."""
    import pandas as pd

    from bindu_storage.storage.codec import dumps

    texts = {
        name: [None if value is None else dumps(value).decode() for value in frame[name]]
        for name in frame.columns
        if frame[name].dtype == object
    }
    if not texts:
        return frame
    return frame.assign(**{name: pd.array(values, dtype="str") for name, values in texts.items()})


class _ParquetSink:
    """Appends frames to one Parquet file; the first frame fixes the schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: Any = None
        self.schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            # A column that is empty in the first chunk would be typed "null"; text is the safe guess.
            fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
            self.schema = pa.schema(fields)
            table = table.cast(self.schema)
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        else:
            table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _CsvSink:
    """Appends frames to one CSV file; the header comes with the first frame."""

    def __init__(self, path: Path) -> None:
        self.handle = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.first = True

    def write(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.handle, header=self.first, index=False)
        self.first = False

    def close(self) -> None:
        self.handle.close()


def _destination(text: str) -> tuple[Path, str]:
    path = Path(text).expanduser()
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CliError(f"--to must end in .parquet or .csv, got {text!r}")
    if path.is_dir():
        raise CliError(f"--to names a directory: {text!r}")
    if not path.parent.exists():
        raise CliError(f"the folder of --to does not exist: {str(path.parent)!r}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CliError(
                "Parquet needs pyarrow (a dependency): pip install pyarrow, or export to .csv"
            ) from None
    return path, fmt


def _temporary(path: Path) -> Path:
    """A new empty file beside ``path``, created as a normal file is (mode 0666 less the umask)."""
    for _ in range(100):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temp
    raise CliError(f"could not create a temporary file beside {str(path)!r}")  # pragma: no cover


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


async def run_export(args: argparse.Namespace) -> int:
    """The ``export`` command."""
    path, fmt = _destination(args.to)
    cfg = settings()
    target = resolve(args, cfg, needs="reads")
    announce(args, target)
    chunks = _loader(args.kind)(
        target.url, schema=target.schema, chunksize=args.chunksize, progress=not args.no_progress
    )
    temp = _temporary(path)
    sink = _ParquetSink(temp) if fmt == "parquet" else _CsvSink(temp)
    started, rows = time.perf_counter(), 0
    try:
        async with contextlib.aclosing(chunks):  # closed here on an error, not by the event loop later
            async for chunk in chunks:
                sink.write(json_texts(chunk))
                rows += len(chunk)
        sink.close()
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            sink.close()
        temp.unlink(missing_ok=True)
        raise
    print(f"Exported {fmt_int(rows)} rows of {args.kind} to {args.to} ({_size(path.stat().st_size)}) "
          f"in {time.perf_counter() - started:.1f} s.")
    return 0
