"""Identities over a dataset root: the clips whose face descriptor no identity holds yet join one.

At the end of every run (and with ``curate identities assign``), the descriptors of the clips not
yet assigned are filed among the root's identities (:func:`extractors.identity.clustering.assign`):
a clip never changes identity, an identity never changes id, and a new one is named after its
founding clip, so that the same clips give the same ids in any root. Each assignment commits two
parts at once: ``clip_identity`` (one row per newly assigned clip) and ``identity_updates`` (one
row per identity it founded or grew: its centroid and member count, and the sum of its members'
voice descriptors; the latest row per identity is current, the ``identities`` view). The ``clips``
view carries each clip's ``identity_id``, and the ``voice_matches`` view each clip's voice
against the voices of its person's other clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from extractors.identity.clustering import VoiceVeto, assign, pairwise_distances
from extractors.identity.extractor import IdentityConfig
from extractors.identity.voice import VOICE_DIM
from extractors.registry import dataset_schemas
from manifests.lock import hold
from manifests.store import existing_root, new_key
from manifests.views import connect
from settings.config import Config


@dataclass(frozen=True)
class IdentityAssignment:
    assign_set: str | None  # None: nothing new to assign
    clips: int  # clips newly assigned
    joined: int  # of them, clips that joined an identity that existed before
    founded: int  # identities this assignment founded
    identities: int  # identities in the root after it

    def to_text(self) -> str:
        if self.assign_set is None:
            return f"identities: no new face descriptor to assign ({self.identities} identities in the root)"
        return (
            f"identities ({self.assign_set}): {self.clips} clip(s) assigned, {self.joined} to an existing "
            f"identity; {self.founded} new, {self.identities} in the root"
        )


def assign_root(root_path: str | Path, config: Config) -> IdentityAssignment:
    """File every clip of the root that has a face descriptor and no identity among the root's
    identities at ``[identity] threshold`` (where faces are ambiguous, from ``[identity]
    voice_apart_from``, voices that do not match keep them apart), and commit the result (under
    the root's lock)."""
    root = existing_root(root_path)
    schemas = dataset_schemas()
    settings = config.section("identity", IdentityConfig)
    veto = VoiceVeto(settings.voice_apart_from, settings.voice_min_match) if settings.voice else None
    with hold(root, f"identity-{new_key()}"):
        con = connect(root, schemas)
        known = con.sql(
            "select identity_id, centroid, clips, voice_sum from identities order by identity_id"
        ).fetchall()
        new = con.sql(
            """select t.clip_id, t.identity_embedding, t.identity_voice from tracks t
               where t.identity_embedding is not null
                 and t.clip_id not in (select clip_id from clip_identity) order by t.clip_id"""
        ).fetchall()
        if not new:
            return IdentityAssignment(None, 0, 0, 0, len(known))
        dim = len(new[0][1])
        centroids = np.array([row[1] for row in known], np.float64).reshape(len(known), dim)
        result = assign(
            [row[0] for row in known],
            centroids,
            [row[2] for row in known],
            [row[0] for row in new],
            np.array([row[1] for row in new], np.float64),
            settings.threshold,
            veto,
            voice_rows([row[2] for row in new]),
            voice_rows([row[3] for row in known]),
        )
        assign_set, now = new_key(), datetime.now(UTC)
        position = {identity: i for i, identity in enumerate(result.identity_ids)}
        vectors = np.array([row[1] for row in new], np.float64)
        mine = np.array([position[i] for i in result.ids])
        distance = pairwise_distances(vectors, result.centroids)[np.arange(len(new)), mine]
        clip_rows = pa.table(
            {
                "clip_id": [row[0] for row in new],
                "identity_id": result.ids,
                "distance": distance.astype(np.float32),
                "assigned_at": [now] * len(new),
                "assign_set": [assign_set] * len(new),
            },
            schema=schemas["clip_identity"],
        )
        touched = sorted(set(result.ids))
        voices = voice_sums(con, touched, [row[0] for row in new], result.ids)
        identity_rows = pa.table(
            {
                "identity_id": touched,
                "centroid": [result.centroids[position[i]].astype(np.float32).tolist() for i in touched],
                "clips": [int(result.counts[position[i]]) for i in touched],
                "voice_sum": [voices[i][0] if i in voices else None for i in touched],
                "voice_clips": [voices[i][1] if i in voices else 0 for i in touched],
                "assigned_at": [now] * len(touched),
                "assign_set": [assign_set] * len(touched),
            },
            schema=schemas["identity_updates"],
        )
        root.commit({"clip_identity": clip_rows, "identity_updates": identity_rows}, assign_set)
    return IdentityAssignment(
        assign_set,
        len(new),
        sum(1 for i in result.ids if i not in result.new_ids),
        len(result.new_ids),
        len(result.identity_ids),
    )


def voice_rows(voices: list[list[float] | None]) -> np.ndarray:
    """Voice descriptors (or sums) as rows, shape (n, 256); a zero row where there is none."""
    return np.array(
        [np.zeros(VOICE_DIM) if v is None else np.asarray(v, np.float64) for v in voices]
    ).reshape(len(voices), VOICE_DIM)


def voice_sums(
    con: duckdb.DuckDBPyConnection, touched: list[str], new_clips: list[str], new_ids: list[str]
) -> dict[str, tuple[list[float], int]]:
    """For each identity of ``touched``: the sum of its members' voice descriptors (256,) and how
    many members have one; members are the clips filed before and ``new_clips`` (filed under
    ``new_ids``). Identities without a voice are left out."""
    con.register("_filed_now", pa.table({"clip_id": new_clips, "identity_id": new_ids}))
    con.register("_touched", pa.table({"identity_id": touched}))
    rows = con.sql(
        """with members as (
               select clip_id, arg_max(identity_id, assigned_at) identity_id from clip_identity group by clip_id
               union all select clip_id, identity_id from _filed_now)
           select m.identity_id, t.identity_voice from members m join _touched using (identity_id)
           join tracks t using (clip_id) where t.identity_voice is not null order by m.identity_id, m.clip_id"""
    ).fetchall()
    sums: dict[str, tuple[np.ndarray, int]] = {}
    for identity, voice in rows:
        total, count = sums.get(identity, (np.zeros(len(voice)), 0))
        sums[identity] = (total + np.asarray(voice, np.float64), count + 1)
    return {i: ([float(x) for x in total], count) for i, (total, count) in sums.items()}
