"""A second `--resume` of the same run is refused, naming the process that holds it; a run
into a path that cannot hold a store fails before any episode (issue 16, finding 7)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

from shardscope.tracer.locking import RunLock
from shardscope.tracer.queries.runs import run_info
from shardscope.tracer.store import Store
from tests.helpers.bad_input import RUN, Case, run_case


def test_second_resume_of_a_run_is_refused_naming_the_holder() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        first = run_case(Case("a run", RUN), workdir, timeout=120)
        assert first.code == 0, first.message
        store = Store(workdir / "default.duckdb")
        info = run_info(store)
        assert info is not None
        with RunLock(store.path, info["run_id"]):  # as a resume in progress holds it
            second = run_case(Case("resume", ("run", "--resume", "latest", "--no-progress")),
                              workdir, timeout=120)
        assert second.code == 1 and second.kind == "clear", second.message
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in second.message
        assert info["run_id"] in second.message
        third = run_case(Case("resume", ("run", "--resume", "latest", "--no-progress")), workdir,
                         timeout=120)
        assert third.code == 0, third.message  # the lock is released with its holder
