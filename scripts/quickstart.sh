#!/usr/bin/env bash
# Set up, then run the main job on the sample media and print its summary and a few queries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
FIXTURES=${CURATE_FIXTURES:-../shared/fixtures}
OUT=${1:-runs/sample}
.venv/bin/curate run "$FIXTURES/video" --out "$OUT"
.venv/bin/curate query "$OUT" "select regexp_extract(v.uri, '[^/]+$') as video, round(c.start_s, 1) as start_s, round(c.duration_s, 1) as duration_s, round(c.face_detect_rate, 2) as faces, c.speech_language as lang, left(c.speech_text, 40) as text, map_keys(c.errors) as failed from clips c join videos v using (video_id) order by video, c.start_s"
.venv/bin/curate query "$OUT" "select reason, count(*) as n from failures group by reason order by n desc"
.venv/bin/curate query "$OUT" "select regexp_extract(v.uri, '[^/]+$') as video, d.verdict, d.reasons, c.sync_offset_frames as sync_off, round(c.sync_confidence, 2) as sync_conf, c.emotion_dominant as emotion from current_decisions d join clips c using (clip_id) join videos v using (video_id) order by video"
.venv/bin/curate report "$OUT"
