"""Write the project's speaker-disjoint split of ../shared/pool (chosen once; see docs/sync.md).

A speaker goes to test when sha256 of its speaker id, read as an integer, is divisible by 5
(about a fifth of the speakers); every file of a speaker lands in the same split. The pool's
README table gives each file's speaker id. Output: docs/pool/train.csv and docs/pool/test.csv,
list files that ``curate run`` reads (``uri`` relative to the list file; ``speaker_id`` and
``split`` become the video's ``source_tags``, for ``curate export --group/--test-where``); and
docs/pool/emotion_train.csv and emotion_test.csv, the clips with an emotion label (the pool's
``emotion/`` folder and the MEAD files of ``video/``), with an ``emotion`` column, split by the
same rule (for ``curate emotion train`` and ``eval``); and docs/pool/generated.csv, the
``generated/`` folder's clips with ``generated`` (yes/no) and ``family`` (generator family; ``real``
for the real clips shipped beside them) tags, for ``python -m bench.synthetic``.

    python scripts/pool_split.py [POOL_DIR]
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: MEAD's emotion in a file name (the pool's MEAD clips; contempt is outside the seven classes).
MEAD_LABEL = re.compile(r"_(angry|disgusted|fear|happy|neutral|sad|surprised)_")


def split_of(speaker_id: str) -> str:
    return "test" if int(hashlib.sha256(speaker_id.encode()).hexdigest(), 16) % 5 == 0 else "train"


def main(pool: Path) -> None:
    rows = []
    for line in (pool / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and (pool / "video" / cells[0]).is_file():
            rows.append((cells[0], cells[6]))
    out = ROOT / "docs" / "pool"
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with open(out / f"{split}.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["uri", "speaker_id", "split"])
            for name, speaker in sorted(rows):
                if split_of(speaker) == split:
                    writer.writerow([os.path.relpath(pool / "video" / name, out), speaker, split])
    print(f"{len(rows)} files, {len({s for _, s in rows})} speakers -> {out}")
    labelled = [(pool / "video" / name, speaker) for name, speaker in rows]
    labelled += [
        (path, "mead_" + path.stem.split("_")[1]) for path in sorted((pool / "emotion").glob("*.mp4"))
    ]
    for split in ("train", "test"):
        with open(out / f"emotion_{split}.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["uri", "speaker_id", "split", "emotion"])
            for path, speaker in labelled:
                label = MEAD_LABEL.search(path.name)
                if label and split_of(speaker) == split:
                    writer.writerow([os.path.relpath(path, out), speaker, split, label.group(1)])
    write_generated(pool / "generated", out)


def write_generated(folder: Path, out: Path) -> None:
    """docs/pool/generated.csv from the table of ``folder``'s README."""
    with open(out / "generated.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["uri", "speaker_id", "generated", "family", "generator"])
        for line in (folder / "README.md").read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 10 and (folder / cells[0]).is_file():
                family = cells[3] if cells[1] == "yes" else "real"
                speaker = "gen_" + Path(cells[0]).stem
                writer.writerow(
                    [os.path.relpath(folder / cells[0], out), speaker, cells[1], family, cells[2]]
                )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "pool")
