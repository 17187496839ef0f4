"""The Parquet lake: a directory of immutable Parquet files that any number of writer
processes, on any number of hosts, append to without a lock.

Layout (hive-style partitions, readable by DuckDB, pyarrow.dataset, Spark, ...)::

    LAKE/_shardscope_lake.json                       the marker: format, schema version
    LAKE/spans/run=<run_id>/writer=<writer_id>/<seq>.parquet
    LAKE/span_events/run=<run_id>/writer=<writer_id>/<seq>.parquet
    LAKE/writer_stats/writer=<writer_id>/<seq>.parquet

Each file holds rows exactly as the DuckDB store's table of that name would (same columns,
same types), so the same view SQL (``tracer.schema.VIEWS``) runs over both. A file is
written under a hidden temporary name in its final directory, flushed to disk, then renamed:
a reader sees a whole file or none, and a writer killed mid-write leaves only a ``.tmp``
file that every reader ignores. A writer owns its ``writer=`` directories (its id is random),
so writers never touch each other's files. See docs/lake.md.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shardscope.config.errors import StoreError

log = logging.getLogger("shardscope.tracer")

MARKER = "_shardscope_lake.json"
LAKE_FORMAT = 1
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # hive's name for a NULL partition value
TMP_SUFFIX = ".tmp"
# The tables a writer appends to. Any other table the store's ingest fills is written too
# (by name); these are the ones a reader needs even when empty.
LAKE_TABLES = ("spans", "span_events", "writer_stats")
# Rows that are the same row, whichever file holds them (compaction keeps one of each).
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "spans": ("trace_id", "span_id"),
    "span_events": ("trace_id", "span_id", "seq"),
    "writer_stats": ("writer_id", "recorded_at", "spans_written", "batches"),
}


def looks_like_lake(path: Path) -> bool:
    """A directory given where a store is expected is read as a lake."""
    return path.is_dir()


def _partition_value(value: str | None) -> str:
    return NULL_PARTITION if value is None else urllib.parse.quote(value, safe="")


def partition_dir(root: Path, table: str, writer_id: str, run_id: str | None = None,
                  by_run: bool = True) -> Path:
    """The directory of one writer's files of ``table`` (for one run when ``by_run``)."""
    base = root / table
    if by_run:
        base = base / f"run={_partition_value(run_id)}"
    return base / f"writer={_partition_value(writer_id)}"


def ensure_lake(root: Path, schema_version: int) -> None:
    """Create the lake directory and its marker (once; concurrent creators agree)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create lake directory {root}: {exc.strerror}") from None
    if not root.is_dir():
        raise StoreError(f"lake path {root} is a file, not a directory; choose another path")
    marker = root / MARKER
    if marker.exists():
        return
    text = json.dumps({"format": LAKE_FORMAT, "schema_version": schema_version})
    tmp = root / f".{MARKER}.{os.getpid()}.{threading.get_ident()}{TMP_SUFFIX}"
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, marker)


def write_atomically(table: pa.Table, final: Path) -> None:
    """Write ``table`` to ``final`` so that no reader ever sees part of it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}{TMP_SUFFIX}")
    with open(tmp, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def split_by(table: pa.Table, column: str) -> Iterator[tuple[str | None, pa.Table]]:
    """The rows of ``table`` grouped by the values of ``column`` (NULL is a group too)."""
    values = table.column(column)
    distinct = values.unique().to_pylist()
    if len(distinct) == 1:
        yield distinct[0], table
        return
    import pyarrow.compute as pc

    for value in distinct:
        mask = pc.is_null(values) if value is None else pc.equal(values, value)
        yield value, table.filter(pc.fill_null(mask, False))


def lake_version(root: Path) -> str:
    """A cheap token that changes whenever a file is renamed into the lake."""
    count = size = latest = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                stat = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue  # renamed or removed meanwhile
            count, size, latest = count + 1, size + stat.st_size, max(latest, stat.st_mtime_ns)
    return f"lake:{count}:{size}:{latest}"


# --- reading ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LakeFile:
    table: str
    path: Path
    rows: int


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass
class LakeScan:
    """What a reader found: the good files per table, the files it left out and why, and the
    temporary files of writers still writing (or killed while writing)."""

    files: dict[str, list[LakeFile]] = field(default_factory=dict)
    skipped: list[SkippedFile] = field(default_factory=list)
    in_progress: int = 0

    def rows(self, table: str) -> int:
        return sum(f.rows for f in self.files.get(table, []))

    @property
    def key(self) -> tuple[tuple[str, ...], ...]:
        """Changes whenever the set of readable files does."""
        return tuple(tuple(sorted(str(f.path) for f in self.files.get(t, [])))
                     for t in sorted(self.files))


class LakeScanner:
    """Lists and checks a lake's files, remembering each file's verdict (files are immutable
    once renamed into place, so a verdict is kept until the file's size or mtime changes)."""

    def __init__(self, root: Path, expected: dict[str, pa.Schema]) -> None:
        self.root = root
        self.expected = expected
        self._verdicts: dict[Path, tuple[tuple[int, int], LakeFile | SkippedFile]] = {}
        self._warned: set[Path] = set()
        self._lock = threading.Lock()

    def scan(self) -> LakeScan:
        if not self.root.is_dir():
            raise StoreError(f"no lake at {self.root}: the directory does not exist")
        if not (self.root / MARKER).is_file():
            raise StoreError(
                f"{self.root} is a directory but not a shardscope lake (no {MARKER}); point "
                "--db at a .duckdb store or at a lake written by the parquet exporter")
        scan = LakeScan(files={t: [] for t in self.expected})
        with self._lock:
            seen: set[Path] = set()
            for path in self._candidates(scan):
                seen.add(path)
                verdict = self._verdict(path)
                if isinstance(verdict, LakeFile):
                    scan.files[verdict.table].append(verdict)
                else:
                    scan.skipped.append(verdict)
                    self._warn(verdict)
            for gone in set(self._verdicts) - seen:
                del self._verdicts[gone]
        for files in scan.files.values():
            files.sort(key=lambda f: str(f.path))
        return scan

    def _candidates(self, scan: LakeScan) -> Iterable[Path]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(TMP_SUFFIX):
                    scan.in_progress += 1
                elif not (name.startswith(".") or (Path(dirpath) == self.root and name == MARKER)):
                    yield Path(dirpath) / name

    def _verdict(self, path: Path) -> LakeFile | SkippedFile:
        try:
            stat = path.stat()
        except OSError as exc:
            return SkippedFile(path, f"cannot read it: {exc.strerror}")
        stamp = (stat.st_size, stat.st_mtime_ns)
        cached = self._verdicts.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        verdict = self._check(path)
        self._verdicts[path] = (stamp, verdict)
        return verdict

    def _check(self, path: Path) -> LakeFile | SkippedFile:
        relative = path.relative_to(self.root)
        table = relative.parts[0] if len(relative.parts) > 1 else None
        if table not in self.expected:
            return SkippedFile(path, "not in a table directory of the lake ("
                               f"{', '.join(sorted(self.expected))})")
        if path.suffix != ".parquet":
            return SkippedFile(path, "not a .parquet file")
        try:
            metadata = pq.read_metadata(path)
            schema = metadata.schema.to_arrow_schema()
        except (OSError, pa.ArrowException) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return SkippedFile(path, f"not a readable Parquet file (corrupt or cut short): {first}")
        problem = schema_problem(schema, self.expected[table], ROW_KEYS.get(table, ()))
        if problem:
            return SkippedFile(path, f"foreign Parquet file for table {table}: {problem}")
        return LakeFile(table, path, metadata.num_rows)

    def _warn(self, skipped: SkippedFile) -> None:
        if skipped.path not in self._warned:
            self._warned.add(skipped.path)
            log.warning("shardscope: lake file skipped: %s: %s", skipped.path, skipped.reason)


def schema_problem(found: pa.Schema, expected: pa.Schema, keys: tuple[str, ...]) -> str | None:
    """Why a file's columns cannot be read as the table's, or None.

    A file may lack columns (a writer of an older schema: they read as NULL) but every column
    it has must be one of the table's, with the table's type, and the row key must be there."""
    names = set(expected.names)
    unknown = [n for n in found.names if n not in names]
    if unknown:
        return (f"columns this shardscope does not know: {', '.join(unknown[:5])} (written by "
                "another program, or by a newer shardscope)")
    missing = [k for k in keys if k not in found.names]
    if missing:
        return f"no {', '.join(missing)} column"
    for name in found.names:
        want, got = expected.field(name).type, found.field(name).type
        if not _compatible(got, want):
            return f"column {name} is {got}, expected {want}"
    return None


def _compatible(got: pa.DataType, want: pa.DataType) -> bool:
    if got == want:
        return True
    strings = (pa.string(), pa.large_string(), pa.string_view())
    if got in strings and want in strings:
        return True
    if pa.types.is_timestamp(got) and pa.types.is_timestamp(want):
        return (got.tz is None) == (want.tz is None)
    return False
