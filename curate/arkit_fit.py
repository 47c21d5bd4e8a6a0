"""``curate calibrate ROOT --capture CSV``: fit the ARKit calibration of a dataset root's labels
(:mod:`manifests.arkit_map`) and keep it at ``ROOT/calibration.json``, where ``curate report``
draws it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from extractors.registry import dataset_schemas
from manifests.arkit_map import Calibration, CalibrationError, read_capture
from manifests.schema import BLENDSHAPE_NAMES, SHARD_BLENDSHAPE_NAMES
from manifests.store import DatasetRoot
from manifests.views import connect

CALIBRATION = "calibration.json"


def fit_root(root: str | Path, capture: str | Path) -> Calibration:
    """A calibration fitted on the frames with a face of the root's accepted clips against the
    capture CSV ``capture``, over the shard channels."""
    values, names = read_capture(capture)
    con = connect(DatasetRoot(root), dataset_schemas())
    index = ", ".join(f"f[{BLENDSHAPE_NAMES.index(n) + 1}]" for n in SHARD_BLENDSHAPE_NAMES)
    rows = con.sql(
        f"""with frames as (select unnest(t.blendshapes) f from current_decisions d
                            join tracks t using (clip_id) where d.verdict = 'accept')
            select [{index}] from frames where f is not null"""
    ).fetchall()
    if not rows:
        raise CalibrationError(f"{root} has no accepted clip with a face to calibrate on")
    corpus = np.asarray([r[0] for r in rows], np.float64)
    return Calibration.fit(corpus, SHARD_BLENDSHAPE_NAMES, values, names, Path(capture).name)
