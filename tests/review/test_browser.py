"""An annotator's view: headless Chromium logs in, opens a pushed task, and the clip's video and
blendshape curves render. The screenshot is saved (``review_task.png`` in the test's folder,
or in ``$CURATE_ARTIFACTS`` when set)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from review.project import find_project

selenium = pytest.importorskip("selenium", reason="selenium is a dev dependency (pip install -e '.[dev]')")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1200",
        "--autoplay-policy=no-user-gesture-required",
    ):  # fmt: skip
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "")
    return webdriver.Chrome(options=options, service=service)


def wait_for(driver: webdriver.Chrome, script: str, timeout_s: float = 60.0) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for: {script}")


@pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")), reason="no chromium/chromedriver"
)
def test_a_task_shows_its_video_and_curves(label_studio, review_root, curate_argv, tmp_path: Path) -> None:
    root, config, config_file = review_root
    env = {**os.environ, **label_studio.env()}
    pushed = subprocess.run(
        curate_argv("review", "push", str(root), "--config", str(config_file), "--no-progress"),
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    client = label_studio.client()
    project = find_project(client, config.review.project)
    assert project is not None
    task = min(client.tasks(project["id"]), key=lambda t: t["id"])

    driver = chromium()
    try:
        driver.get(label_studio.url + "/user/login/")
        driver.find_element(By.NAME, "email").send_keys(label_studio.credentials.username)
        driver.find_element(By.NAME, "password").send_keys(label_studio.credentials.password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
        wait_for(driver, "return !location.pathname.startsWith('/user/login')")
        driver.get(f"{label_studio.url}/projects/{project['id']}/data?task={task['id']}")
        # The video decodes (it is served from local storage, with its audio) ...
        wait_for(
            driver,
            "const v = document.querySelector('video'); return v && v.readyState >= 2 && v.videoWidth > 0",
        )
        duration = driver.execute_script("return document.querySelector('video').duration")
        assert duration == pytest.approx(task["data"]["duration_s"], abs=0.1)
        # ... and the time series draws its channels as SVG paths.
        paths = wait_for(
            driver, "const p = document.querySelectorAll('svg path'); return p.length > 5 && p.length"
        )
        assert paths
        assert "Keep this clip for training?" in driver.page_source
        shot = Path(os.environ.get("CURATE_ARTIFACTS", tmp_path)) / "review_task.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] >= 1000 and float(np.std(image)) > 20
