"""Credentials inside input URIs (a user and password before the host, signing parameters in
the query) reach no row, log, summary or message: a real ``curate run`` on a list file naming
such URIs (a closed local port: they fail as unreachable) and a fixture video."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from curate.query import query
from tests.conftest import curate_command

SECRETS = ("hunter2pass", "sigsecret99", "AKIAEXAMPLEKEY", "tok3nvalue")
URIS = (
    "https://alice:hunter2pass@127.0.0.1:9/v.mp4?X-Amz-Signature=sigsecret99&X-Amz-Credential=AKIAEXAMPLEKEY",
    "http://127.0.0.1:9/w.mp4?token=tok3nvalue&n=1",
)


def test_no_credential_is_stored_or_said(tmp_path: Path, fixtures: Path) -> None:
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join([*URIS, str(fixtures / "video" / "vr_face_5.mp4")]) + "\n")
    root, logs = tmp_path / "root", tmp_path / "crash-logs"
    done = subprocess.run(
        curate_command("run", str(inputs), "-o", str(root), "--executor", "sequential", "--no-progress"),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CURATE_LOG_DIR": str(logs)},
    )
    assert done.returncode == 0, done.stderr
    stored = {
        r["uri"]: r["errors"]
        for r in query(root, "select uri, map_values(errors) errors from videos").to_pylist()
    }
    assert "https://REDACTED@127.0.0.1:9/v.mp4?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED" in stored
    assert "http://127.0.0.1:9/w.mp4?token=REDACTED&n=1" in stored
    assert len(stored) == 3  # each input still named: the failures say which file they were
    for table in ("videos", "clips", "inputs", "failures", "decisions"):  # Parquet is compressed
        rows = str(query(root, f"select * from {table}").to_pylist())
        assert not any(s in rows for s in SECRETS), table
    said = done.stdout + done.stderr
    for path in [*root.rglob("*"), *tmp_path.glob("crash-logs/*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in SECRETS), path
    assert not any(s in said for s in SECRETS), said
