"""What the setup must leave behind on a CPU-only machine."""

from __future__ import annotations

from importlib import metadata

CV2_DISTRIBUTIONS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)


def installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_exactly_one_cv2_distribution() -> None:
    present = [d for d in CV2_DISTRIBUTIONS if installed(d)]
    assert len(present) == 1, present
    import cv2

    assert cv2.__version__


def test_no_cuda_packages_on_a_cpu_machine() -> None:
    cuda = sorted(
        d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].startswith("nvidia-")
    )
    assert cuda == []
