"""The recipe of docs/architecture.md ("Adding a signal"), followed as written: a new signal with
its own settings section, a model entry, a face-crop request and a default rule, written as one
module at test time and registered by one line. A real run fills its column, its rule judges,
its setting is read from a TOML file, `curate models list` lists its model; rules on columns of
extractors the run leaves out are skipped, said so, and do not reject."""

from __future__ import annotations

import hashlib
import json
import textwrap

import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.query import query
from curate.run import run
from extractors import registry
from extractors.registry import (
    build,
    column_owners,
    dataset_schemas,
    in_effect,
    load_config,
    make_config,
    models_used,
    rules_off,
)
from settings.config import RunConfig

#: The signal module a user would write (extractors/skin.py), whole, but for the model's sha256
#: and size, which the test fills in for the weights file it writes.
SKIN = '''
    """Skin tone of the face: the weighted share of red in face crops (a toy signal)."""

    import json
    from collections.abc import Mapping
    from typing import Any, ClassVar

    import numpy as np
    import pyarrow as pa
    from pydantic import Field

    from extractors.base import ClipRef, Extraction, Extractor
    from extractors.face.extractor import too_few_face_frames
    from extractors.face.crops import face_samples
    from manifests.schema import field
    from settings.config import Rule, Section
    from settings.models import ModelFile, ModelSpec

    SKIN_WEIGHTS = ModelSpec(
        name="skin-weights",
        description="channel weights of the skin tone",
        licence="CC0-1.0",
        files=(ModelFile("skin.json", "{sha256}", {size}),),
    )


    class SkinConfig(Section):
        """Skin tone from face crops."""

        frames: int = Field(6, ge=1, le=128, description="face crops measured per clip")


    class SkinExtractor(Extractor):
        name = "skin"
        version = "1"
        needs = ("face",)
        settings_class = SkinConfig
        model_specs = (SKIN_WEIGHTS,)
        default_rules: ClassVar[dict[str, Rule]] = {{
            "odd_skin": Rule(column="skin_red_share", min=0.2, max=0.8, band=0.05, missing="review"),
        }}
        clip_fields: ClassVar[list[pa.Field]] = [
            field("skin_red_share", pa.float32(), "weighted share of red in the face crops, 0..1"),
            field("skin_frames", pa.int32(), "face crops measured"),
        ]
        track_fields: ClassVar[list[pa.Field]] = []

        @property
        def settings(self) -> SkinConfig:
            return self.config.section(self.name, SkinConfig)

        def models(self) -> list[str]:
            return [SKIN_WEIGHTS.name]

        def face_crops(self) -> int:
            return self.settings.frames

        def setup(self) -> None:
            self.weights = np.array(json.loads(self.model_path(SKIN_WEIGHTS.name).read_text())["rgb"])

        def extract(self, clip: ClipRef, earlier: Mapping[str, Any]) -> Extraction:
            boxes = earlier.get("face_box") or []
            if too_few_face_frames(self.config, boxes):
                return self.empty()
            crops = [s.crop.reshape(-1, 3).mean(axis=0) for s in face_samples(clip, boxes, self.settings.frames)]
            rgb = np.mean(crops, axis=0) * self.weights
            return Extraction({{"skin_red_share": float(rgb[0] / rgb.sum()), "skin_frames": len(crops)}})
'''


@pytest.fixture
def skin(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The module on the path, its weights file where ``CURATE_MODEL_SKIN_WEIGHTS`` says, and its
    one registration line."""
    weights = tmp_path / "weights" / "skin.json"
    weights.parent.mkdir()
    weights.write_text(json.dumps({"rgb": [1.0, 1.0, 1.0]}))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    module = textwrap.dedent(SKIN).format(sha256=digest, size=weights.stat().st_size)
    (tmp_path / "skin_example.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CURATE_MODEL_SKIN_WEIGHTS", str(weights))
    from skin_example import SkinExtractor  # type: ignore[import-not-found]

    monkeypatch.setattr(registry, "SIGNALS", [*registry.SIGNALS, SkinExtractor])  # the one line
    return weights


def test_the_signal_is_composed_into_config_schema_rules_and_models(skin, tmp_path) -> None:
    assert {"skin_red_share", "skin_frames"} <= set(dataset_schemas()["clips"].names)
    assert column_owners()["skin_red_share"] == "skin"
    config = make_config()
    assert config.run.extractors[-1] == "skin", "registered signals run by default"
    assert config.filter.rules["odd_skin"].column == "skin_red_share", "its default rule"
    assert config.section("skin", registry.extractor_class("skin").settings_class).frames == 6
    toml = tmp_path / "c.toml"
    toml.write_text("[skin]\nframes = 100\n")
    loaded = load_config(toml)
    extractors = {e.name: e for e in build(loaded)}
    assert extractors["face"].crops_wanted == 100, "the face extractor keeps the crops the signal asks for"
    assert "skin-weights" in models_used(loaded)
    toml.write_text("[skin]\nframez = 4\n")
    with pytest.raises(ValueError, match=r"skin\.framez"):
        load_config(toml)

    listed = CliRunner().invoke(app, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if line.startswith("skin-weights"))
    assert str(skin) in line, "listed, and found verified where CURATE_MODEL_SKIN_WEIGHTS says"


@pytest.mark.slow  # a real run over a fixture video
def test_the_signal_runs_and_its_rule_judges(skin, tmp_path, video) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        textwrap.dedent("""
        [run]
        extractors = ["face", "skin"]
        executor = "sequential"
        strict = true
        [skin]
        frames = 4
        [filter.rules.odd_skin]
        max = 0.3
        band = 0.01
        """)
    )
    config = load_config(toml)
    summary = run([str(video("vr_face_3.mp4"))], tmp_path / "root", config, progress=False)
    assert summary.filter is not None and "odd_skin" not in summary.filter.rules_off
    (row,) = query(
        tmp_path / "root",
        "select c.skin_red_share, c.skin_frames, d.verdict, d.reasons "
        "from clips c join current_decisions d using (clip_id)",
    ).to_pylist()
    assert row["skin_frames"] == 4, "the setting from the TOML file"
    assert 0.34 < row["skin_red_share"] < 0.6, row  # a face is redder than gray (1/3)
    assert row["verdict"] == "reject" and "odd_skin" in row["reasons"], row


def test_an_unknown_extractor_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown extractor 'mouth'"):
        make_config(run=RunConfig(extractors=["face", "mouth"]))


def test_a_configuration_without_signals_is_refused() -> None:
    from settings.config import Config

    with pytest.raises(TypeError, match="make_config"):
        Config()


def test_rules_on_columns_of_extractors_the_run_leaves_out_are_off() -> None:
    config = make_config(run=RunConfig(extractors=["face", "fingerprint"]))
    assert rules_off(config) == {
        "little_speech": "speech", "language_uncertain": "speech", "out_of_sync": "sync", "sync_undecided": "sync",
        "sync_offset": "sync", "face_too_small": "quality", "too_dark": "quality",
        "noisy_audio": "quality", "clipped_audio": "quality", "speaker_change": "identity",
        "speaker_cut": "identity",
    }  # fmt: skip
    assert set(in_effect(config).active) == {"face_missing", "multiple_faces", "too_short"}
    assert in_effect(make_config()) == make_config().filter, "with every extractor on, every rule counts"
