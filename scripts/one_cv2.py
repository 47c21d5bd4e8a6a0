"""Leave exactly one OpenCV distribution installed (several write the same cv2 folder)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

KEEP = "opencv-contrib-python"  # mediapipe's own requirement
OTHERS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python-headless")


def installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def main() -> None:
    extra = [name for name in OTHERS if installed(name)]
    if not extra:
        return
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "uninstall", "-y", *extra], check=True)
    # The uninstall removed files the kept distribution shares: reinstall it whole.
    version = metadata.version(KEEP)
    subprocess.run([*pip, "install", "--force-reinstall", "--no-deps", f"{KEEP}=={version}"], check=True)
    print(f"removed {', '.join(extra)}; kept {KEEP} {version}")


if __name__ == "__main__":
    main()
