"""The audio -> blendshape generator, trained on the shards of ``curate export``.

Modules: ``data`` (the export folder and its shard streams), ``features`` (log-mel with
``torch.stft``), ``model`` (dilated TCN), ``losses``, ``config`` (model shape and recipe),
``train`` (loop and resume) with ``checkpoint``, ``channels`` (groups by name), ``metrics`` and
``evaluate`` (the field's measures against baselines), ``predict`` and ``livelink`` (Live Link
Face CSV, JSON, NPY).
"""
