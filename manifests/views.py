"""DuckDB views over a dataset root: the query layer of every table.

Each view reads the parts of one snapshot of the root's commits (:meth:`DatasetRoot.snapshot`),
taken when the connection is made: a batch committed, or a compaction finished, after that is
not seen, and rows are never seen twice. On a local root DuckDB reads the Parquet files itself
(``read_parquet``); on an object-store root, where DuckDB's ``httpfs`` extension may not be at
hand, and on a local root whose path holds glob characters (which DuckDB would expand), each
table is an Arrow dataset over the parts through the root's fsspec filesystem,
registered with the connection (projections and filters are pushed down into it).

Views: ``videos``, ``clips``, ``tracks``, ``decisions`` (one per table, with every column of its
schema even when empty or when older parts lack a column),
``failures`` (one row per recorded failure of a video or a clip) and ``current_decisions``
(the latest decision of each clip: a gold verdict outranks the review verdict aggregated from
annotators, which outranks any filter run; single annotations are never current),
``speaker_emotion`` (the latest speaker-relative emotion label of each clip) and ``clip_emotion``
(each clip's label to use: a reviewer's, else the speaker-relative one, else the clip's own,
with ``emotion_source`` saying which), ``identities`` (the latest row of each identity: centroid,
clips, voices), ``voice_matches`` (each clip's voice against its identity's other clips' voices:
``voice_match``, a cosine, -1..1; only clips whose identity has another voice) and, in ``clips``, each clip's ``identity_id`` (from ``clip_identity``); macro ``blendshape_index(name)`` gives the 1-based position
of a blendshape channel, so queries address channels by name.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from manifests.schema import BLENDSHAPE_NAMES
from manifests.store import DatasetRoot, Snapshot

#: Statements user SQL may hold: reading only (an EXPLAIN only of a SELECT).
READ_ONLY = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
_EXPLAIN = re.compile(r"^\s*explain\s+(\([^)]*\)\s*)?(analy[sz]e\s+)?", re.IGNORECASE)


def not_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    """Why ``sql`` may not run as user SQL (a statement that would write or change settings:
    COPY, CREATE, ATTACH, SET..., or an EXPLAIN of one), or ``None`` when it only reads."""
    for statement in con.extract_statements(sql):
        if statement.type not in READ_ONLY:
            return f"{statement.type.name} statements are refused"
        if statement.type == duckdb.StatementType.EXPLAIN:
            inner = _EXPLAIN.sub("", statement.query, count=1)
            kinds = {s.type for s in con.extract_statements(inner)} if inner.strip() else set()
            if inner == statement.query or kinds != {duckdb.StatementType.SELECT}:
                return "EXPLAIN is allowed only of a SELECT"
    return None


def lock_down(
    con: duckdb.DuckDBPyConnection,
    root: DatasetRoot,
    readable: Sequence[str | Path] = (),
    memory_mb: int | None = None,
) -> None:
    """Let ``con`` read no file outside ``root`` and the ``readable`` folders, spill nothing to
    disk, use at most ``memory_mb`` (none: DuckDB's default), install or load no extension, and
    never change that back (for user SQL; refuse writing statements with :func:`not_read_only`
    first)."""
    # An object-store root's views read through Arrow datasets registered already, not by path.
    own = [] if root.remote else [str(root.path.resolve()) + "/"]
    folders = [*own, *(str(Path(p).resolve()) + "/" for p in readable)]
    # A temporary directory would be readable from the SQL (DuckDB allows its own, <cwd>/.tmp).
    con.execute("SET temp_directory = ''")
    con.execute("SET enable_progress_bar = false")
    if memory_mb is not None:
        con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET allowed_directories = $folders", {"folders": folders})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class DamagedPart(UserWarning):
    """A part of the root is not a complete Parquet file, or not one of its table's schema; the
    views leave it out."""


#: Characters DuckDB's read_parquet expands in a path.
GLOB_CHARACTERS = set("*?[]{}")


def _sql_path(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def connect(
    root: DatasetRoot, schemas: Mapping[str, pa.Schema], snapshot: Snapshot | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table of ``root``, as of ``snapshot``
    (default: one taken now)."""
    con = duckdb.connect()
    snapshot = snapshot or root.snapshot()  # every view reads the same commit
    with_identity = "clip_identity" in schemas and "clips" in schemas
    for table, schema in schemas.items():
        view = "_clips_own" if table == "clips" and with_identity else table
        # The empty typed table gives every column of the schema, also those that parts written
        # before an extractor existed lack (null there).
        con.register(f"_{table}_empty", schema.empty_table())
        rels = root.part_rels(table, snapshot)
        problems = {rel: root.part_problem(rel, schema) for rel in rels}
        for rel, why in problems.items():
            if why is not None:
                warnings.warn(
                    f"left out the damaged part {root.locate(rel)} ({why}); "
                    f"`curate check {root.uri} --repair` moves it aside and the next run redoes it",
                    DamagedPart,
                    stacklevel=2,
                )
        readable = [rel for rel in rels if problems[rel] is None]
        if readable and (root.remote or GLOB_CHARACTERS & set(root.uri)):
            # DuckDB expands glob characters in the paths it reads (a root in a folder named
            # "st*r" would read its siblings): such roots go through Arrow, which takes paths literally.
            filesystem = root.storage.arrow("")[0]
            keys = [root.storage.arrow(rel)[1] for rel in readable]
            con.register(
                f"_{table}_parts", ds.dataset(keys, schema=schema, format="parquet", filesystem=filesystem)
            )
            con.execute(
                f"CREATE VIEW {view} AS SELECT * FROM _{table}_empty UNION ALL BY NAME SELECT * FROM _{table}_parts"
            )
        elif readable:
            listed = ", ".join(_sql_path(root.locate(rel)) for rel in readable)
            con.execute(
                f"CREATE VIEW {view} AS SELECT * FROM _{table}_empty UNION ALL BY NAME "
                f"SELECT * FROM read_parquet([{listed}], union_by_name=true)"
            )
        else:
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM _{table}_empty")
    if with_identity:
        con.execute(
            """
        CREATE VIEW clips AS
        SELECT c.*, i.identity_id FROM _clips_own c LEFT JOIN (
            SELECT clip_id, arg_max(identity_id, assigned_at) AS identity_id FROM clip_identity GROUP BY clip_id
        ) i USING (clip_id)
        """
        )
    if "identity_updates" in schemas:
        con.execute(
            """
        CREATE VIEW identities AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY identity_id ORDER BY assigned_at DESC, assign_set DESC) AS rn
            FROM identity_updates) WHERE rn = 1
        """
        )
        if with_identity and "tracks" in schemas:
            # A clip's voice against the sum S of its identity's members' voices (itself among
            # them): the cosine to the others' sum S - v is (v.S - 1) / sqrt(S.S - 2 v.S + 1).
            con.execute(
                """
            CREATE VIEW voice_matches AS
            SELECT clip_id, identity_id, voice_clips - 1 AS other_voices,
                   ((vs - 1) / sqrt(greatest(ss - 2 * vs + 1, 1e-12)))::FLOAT AS voice_match
            FROM (
                SELECT c.clip_id, c.identity_id, i.voice_clips,
                       list_dot_product(t.identity_voice::FLOAT[], i.voice_sum) AS vs,
                       list_dot_product(i.voice_sum, i.voice_sum) AS ss
                FROM clips c JOIN tracks t USING (clip_id) JOIN identities i USING (identity_id)
                WHERE t.identity_voice IS NOT NULL AND i.voice_clips >= 2)
            """
            )
    con.execute(
        """
        CREATE VIEW failures AS
        SELECT 'video' AS level, video_id, NULL::VARCHAR AS clip_id, uri, e.key AS stage,
               trim(split_part(e.value, ':', 1)) AS reason, e.value AS message
        FROM (SELECT video_id, uri, unnest(map_entries(errors)) AS e FROM videos)
        UNION ALL
        SELECT 'clip', c.video_id, c.clip_id, v.uri, e.key, trim(split_part(e.value, ':', 1)), e.value
        FROM (SELECT video_id, clip_id, unnest(map_entries(errors)) AS e FROM clips) c
        LEFT JOIN videos v USING (video_id)
        """
    )
    con.execute(
        """
        CREATE VIEW current_decisions AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (
                PARTITION BY clip_id
                ORDER BY coalesce(list_position(['gold', 'review'], source), 3), decided_at DESC, decision_set DESC
            ) AS rn
            FROM decisions WHERE source IS DISTINCT FROM 'annotation') WHERE rn = 1
        """
    )
    if "emotion_speaker" in schemas:
        con.execute(
            """
        CREATE VIEW speaker_emotion AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY clip_id ORDER BY labelled_at DESC, label_set DESC) AS rn
            FROM emotion_speaker) WHERE rn = 1
        """
        )
        con.execute(
            """
        CREATE VIEW clip_emotion AS
        SELECT c.clip_id,
               CASE WHEN d.emotion IS NOT NULL THEN d.emotion
                    WHEN e.clip_id IS NOT NULL THEN e.emotion_dominant
                    ELSE c.emotion_dominant END AS emotion,
               CASE WHEN d.emotion IS NOT NULL THEN 1.0
                    WHEN e.clip_id IS NOT NULL THEN e.emotion_confidence
                    ELSE c.emotion_confidence END AS emotion_confidence,
               coalesce(e.emotion_intensity, c.emotion_intensity) AS emotion_intensity,
               CASE WHEN d.emotion IS NOT NULL THEN 'review'
                    WHEN e.clip_id IS NOT NULL THEN 'speaker'
                    WHEN c.emotion_probs IS NOT NULL THEN 'clip' END AS emotion_source
        FROM clips c LEFT JOIN current_decisions d USING (clip_id) LEFT JOIN speaker_emotion e USING (clip_id)
        """
        )
    names = ", ".join(f"'{n}'" for n in BLENDSHAPE_NAMES)
    con.execute(f"CREATE MACRO blendshape_index(name) AS list_position([{names}], name)")
    return con
