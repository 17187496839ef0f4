"""The store's query functions: every SQL statement the app, the CLI and the analysis run
against a store lives in this package (pages and commands call these functions and hold no
SQL of their own, beyond what the SQL console runs for the user).

- :mod:`~shardscope.tracer.queries.frames`: trusted SQL into pandas frames (``read_frame``).
- :mod:`~shardscope.tracer.queries.user_sql`: SQL typed by a user, read-only and sandboxed
  (``run_sql``, the console's ``sql_result`` and example queries).
- :mod:`~shardscope.tracer.queries.status`: the store's tables and views with their columns
  (``describe_schema``), its counters (``store_status``) and change token (``store_version``).
- :mod:`~shardscope.tracer.queries.runs`: runs and their progress (``store_summary``), what
  ``--resume`` and baseline reuse skip, a run's episodes for its summary (``run_episodes``).
- :mod:`~shardscope.tracer.queries.filters`: which episodes a page shows (``EpisodeFilter``).
- :mod:`~shardscope.tracer.queries.overview`: the Overview's episode cube (``episode_cube``).
- :mod:`~shardscope.tracer.queries.episodes`: the Runs page's episode table.
- :mod:`~shardscope.tracer.queries.trace`: one episode's trace (``load_trace``).
- :mod:`~shardscope.tracer.queries.comparison`: the lean reads a comparison works on.

The schema they query (tables, views, the episode row) is :mod:`shardscope.tracer.schema`.
Statistics over the frames they return are in :mod:`shardscope.analysis`.

Every function that reads opens one read-only connection under the store's shared lock, runs
its queries and closes it (or takes an open connection, to read many things through one):
nothing is held between calls, so a run writing the store is never kept waiting for long and
no reader ever meets a lock error.
"""
