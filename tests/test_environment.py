"""What the setup must leave behind on a CPU-only machine."""

from __future__ import annotations

from importlib import metadata

CV2_DISTRIBUTIONS = {
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
}


def distribution_names() -> set[str]:
    return {d.metadata["Name"].lower() for d in metadata.distributions()}


def test_exactly_one_cv2_distribution() -> None:
    present = CV2_DISTRIBUTIONS & distribution_names()
    assert len(present) == 1, present
    import cv2

    assert cv2.__version__


def test_no_cuda_packages_on_a_cpu_machine() -> None:
    assert sorted(n for n in distribution_names() if n.startswith("nvidia-")) == []
