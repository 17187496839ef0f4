"""Materializing a suite's world on disk: the corpus, the DuckDB dataset, the package."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from shardscope.scaffolds.tasks.model import Edit

SCHEMA_FILE = "schema.sql"
_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def read_corpus(directory: Path) -> dict[str, str]:
    """doc id (file stem) -> text for every ``*.md`` and ``*.txt`` file, sorted by id."""
    files = sorted(p for p in directory.iterdir() if p.suffix in (".md", ".txt") and p.is_file())
    return {p.stem: p.read_text(encoding="utf-8") for p in files}


def dataset_tables(directory: Path) -> tuple[str, ...]:
    """The tables ``schema.sql`` creates, in file order."""
    return tuple(_CREATE_TABLE.findall((directory / SCHEMA_FILE).read_text(encoding="utf-8")))


def build_dataset(directory: Path, target: Path) -> None:
    """Create the DuckDB file ``target`` from ``schema.sql`` and one CSV per table."""
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target))
    try:
        con.execute((directory / SCHEMA_FILE).read_text(encoding="utf-8"))
        for table in dataset_tables(directory):
            csv = (directory / f"{table}.csv").as_posix().replace("'", "''")
            con.execute(f"COPY {table} FROM '{csv}' (HEADER, DELIMITER ',')")
    finally:
        con.close()


def change_rows(database: Path, table: str, where: str, values: Mapping[str, Any] | None) -> int:
    """Delete (``values`` None) or update the rows of ``table`` matching ``where``; the count."""
    con = duckdb.connect(str(database))
    try:
        if values is None:
            sql, params = f"DELETE FROM {table} WHERE {where}", []
        else:
            sets = ", ".join(f'"{column}" = ?' for column in values)
            sql, params = f"UPDATE {table} SET {sets} WHERE {where}", list(values.values())
        (count,) = con.execute(sql, params).fetchone() or (0,)
        con.execute("CHECKPOINT")
        return int(count)
    finally:
        con.close()


def copy_package(source: Path, target: Path) -> None:
    """Copy the package tree (without caches) to ``target``."""
    shutil.copytree(source, target, ignore=_IGNORED, dirs_exist_ok=True)


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """``text`` with each edit's ``find`` (which must occur) replaced by its ``replace``."""
    for edit in edits:
        if edit.find not in text:
            raise ValueError(f"text to replace not found: {edit.find!r}")
        text = text.replace(edit.find, edit.replace)
    return text


def edit_file(path: Path, edits: Iterable[Edit]) -> None:
    path.write_text(apply_edits(path.read_text(encoding="utf-8"), edits), encoding="utf-8")
