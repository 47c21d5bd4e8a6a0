"""Schemas of every table in a dataset root: the single source of truth.

Core columns live here. Each extractor declares its own namespaced columns (``face_*``,
``speech_*``) next to its code; :func:`compose` joins core and extractor columns into the
schema a writer must use. Column names carry units (``_s``, ``_hz``, ``_fps``, ``_db``).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

SCHEMA_VERSION = "1"

#: The 52 MediaPipe Face Landmarker blendshapes, in model output order (ARKit names plus ``_neutral``).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip


def _mirror(name: str) -> str:
    for a, b in (("Left", "Right"), ("Right", "Left")):
        if name.endswith(a):
            return name[: -len(a)] + b
    return name


#: For each blendshape, the index of its mirror image (left and right swapped; the others keep
#: their place): the channels a horizontally flipped face shows.
BLENDSHAPE_MIRROR: tuple[int, ...] = tuple(BLENDSHAPE_NAMES.index(_mirror(n)) for n in BLENDSHAPE_NAMES)

#: Head pose components per frame: rotation in degrees, translation in centimetres (camera space).
HEAD_POSE_NAMES: tuple[str, ...] = ("yaw_deg", "pitch_deg", "roll_deg", "tx_cm", "ty_cm", "tz_cm")

#: Face box components per frame, normalised to [0, 1] of the frame width and height.
FACE_BOX_NAMES: tuple[str, ...] = ("x0", "y0", "x1", "y1")

#: Reason codes of recorded failures. An ``errors`` map holds ``stage -> "code: detail"``.
FAILURE_REASONS: dict[str, str] = {
    "missing_file": "the path or URI does not exist",
    "unreachable": "the object store could not be read",
    "empty_file": "the file has zero bytes",
    "not_regular_file": "a pipe, device, socket or folder, not a file: never opened",
    "unreadable": "not a media file the decoder can open",
    "no_video_stream": "the container has no video stream",
    "truncated": "the file ends before its declared duration",
    "no_audio": "the container has no audio stream",
    "too_short": "a shot shorter than [segment] min_clip_s: recorded, not extracted",
    "no_face": "no face was detected in the clip",
    "no_speech": "digital silence, or voice activity detection found too little speech",
    "extractor_error": "an extractor raised an unexpected error (traceback in the run's log)",
    "decode_error": "the decoder failed on the file's data beyond what could be skipped",
    "stage_error": "probing or segmenting raised an unexpected error (traceback in the run's log)",
    "worker_lost": "the worker process died on it repeatedly (after its retries)",
}

ERRORS = pa.map_(pa.string(), pa.string())


def field(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    """A column with its documentation stored in the Parquet field metadata."""
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def error_text(code: str, detail: str) -> str:
    """Format an ``errors`` map value; ``code`` must be one of :data:`FAILURE_REASONS`."""
    if code not in FAILURE_REASONS:
        raise ValueError(f"unknown failure reason {code!r}")
    return f"{code}: {detail}"


def error_code(text: str) -> str:
    """The reason code of an ``errors`` map value (the part before the first colon)."""
    return text.split(":", 1)[0].strip()


VIDEO_FIELDS = [
    field(
        "video_id",
        pa.string(),
        "content hash of the file (sha256 prefix), or uri- hash when unreadable",
        False,
    ),
    field("uri", pa.string(), "path or URI the video was first read from", False),
    field(
        "source_tags",
        pa.map_(pa.string(), pa.string()),
        "the other columns of the CSV list that named the input (e.g. speaker_id); empty otherwise",
    ),
    field("size_bytes", pa.int64(), "file size"),
    field("duration_s", pa.float64(), "duration from the demuxed packets (container field not trusted)"),
    field("container_duration_s", pa.float64(), "duration the container declares, null when absent"),
    field("fps_nominal", pa.float64(), "frame rate the video stream declares"),
    field("fps_avg", pa.float64(), "frames per second actually present (frame count / duration)"),
    field("vfr", pa.bool_(), "variable frame rate: frame intervals vary or average differs from nominal"),
    field("n_frames", pa.int64(), "video packets demuxed"),
    field("width", pa.int32(), "pixels, as displayed (after rotation)"),
    field("height", pa.int32(), "pixels, as displayed (after rotation)"),
    field(
        "rotation_deg",
        pa.int32(),
        "display matrix rotation, degrees counter-clockwise; frames are turned upright",
    ),
    field("video_codec", pa.string(), "decoder name"),
    field("has_audio", pa.bool_(), "an audio stream is present"),
    field("audio_stream", pa.int32(), "index of the audio stream used: the default one, else the first"),
    field("audio_streams", pa.int32(), "audio streams in the container"),
    field("audio_codec", pa.string(), "decoder name"),
    field("audio_sr_hz", pa.int32(), "audio sample rate"),
    field("audio_channels", pa.int32(), "audio channel count"),
    field("audio_loudest_db", pa.float64(), "loudest 10 ms RMS level of the audio track, dBFS"),
    field("n_clips", pa.int32(), "clips cut from this video"),
    field(
        "damaged_spans",
        pa.list_(pa.struct([("stream", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64())])),
        "spans of packets the decoder rejected as damaged and skipped (audio: silence there)",
    ),
    field("errors", ERRORS, "stage -> 'reason: detail' for failures of the whole video"),
    field("run_id", pa.string(), "run that committed this row"),
]

CLIP_FIELDS = [
    field("clip_id", pa.string(), "video_id + start and end in milliseconds", False),
    field("video_id", pa.string(), "video this clip was cut from", False),
    field("clip_index", pa.int32(), "position of the clip within its video"),
    field("start_s", pa.float64(), "clip start in source time"),
    field("end_s", pa.float64(), "clip end in source time"),
    field("duration_s", pa.float64(), "end_s - start_s"),
    field("cut_start", pa.string(), "why the clip starts here: start | shot | silence | max_length"),
    field("cut_end", pa.string(), "why the clip ends here: end | shot | silence | max_length"),
    field("fps", pa.float64(), "constant rate the clip's tracks were resampled to"),
    field(
        "damaged_s",
        pa.float64(),
        "seconds of damaged spans of its video (skipped packets) within the clip, summed over streams",
    ),
    field("errors", ERRORS, "stage -> 'reason: detail' for failures of this clip"),
]

TRACK_FIELDS = [
    field("clip_id", pa.string(), "clip these per-frame arrays belong to", False),
    field("video_id", pa.string(), "video of the clip", False),
    field(
        "t_s", pa.list_(pa.float64()), "output frame times in source seconds, evenly spaced at the clip fps"
    ),
]

INPUT_FIELDS = [
    field("uri", pa.string(), "input as named or found (absolute path or URI)", False),
    field("run_id", pa.string(), "run that read it", False),
    field("video_id", pa.string(), "content id (or id of the name, when it could not be read)"),
    field("outcome", pa.string(), "processed | failed | done (by an earlier run) | duplicate", False),
    field("duplicate_of_uri", pa.string(), "for a duplicate: the input of the run with the same bytes"),
]

DECISION_FIELDS = [
    field("clip_id", pa.string(), "clip the decision is about", False),
    field("verdict", pa.string(), "accept | reject | review", False),
    field("reasons", pa.list_(pa.string()), "reason codes behind the verdict"),
    field(
        "source",
        pa.string(),
        "filter | review (the clip's verdict from its annotators) | annotation (one annotator's, as given) | gold (a known verdict)",
    ),
    field("who", pa.string(), "filter name, annotator, or the aggregation method of a review verdict"),
    field("decided_at", pa.timestamp("us", tz="UTC"), "when the decision was made"),
    field("config_hash", pa.string(), "hash of the thresholds that produced it"),
    field("duplicate_of", pa.string(), "clip kept in this one's place when its audio is the same recording"),
    field("duplicate_why", pa.string(), "why the clip of duplicate_of was kept rather than this one"),
    field("emotion", pa.string(), "expression class a reviewer chose"),
    field("sync_offset_frames", pa.int32(), "sync offset a reviewer entered (+: audio late)"),
    field("annotation", pa.string(), "Label Studio annotation id and its update time, for annotation rows"),
    field(
        "confidence", pa.float64(), "review verdict: its probability given the annotations (0..1); gold: 1"
    ),
    field("annotators", pa.int32(), "review verdict: how many annotations it rests on"),
    field("decision_set", pa.string(), "id of the batch of decisions it was appended with"),
]


#: Speaker-relative emotion labels (``curate emotion speakers``, extractors/emotion/speaker.py):
#: each labelling appends one row per clip it judged; the latest per clip is ``speaker_emotion``.
EMOTION_SPEAKER_FIELDS = [
    field("clip_id", pa.string(), "clip the label is about", False),
    field(
        "speaker",
        pa.string(),
        "the speaker its clips were judged against (speaker_id tag, else corpus file name)",
    ),
    field("speaker_clips", pa.int32(), "clips of that speaker in the root with a face-model reading"),
    field("emotion_probs", pa.list_(pa.float32()), "fused class probabilities of the speaker-relative cues"),
    field(
        "emotion_dominant", pa.string(), "most probable class from [emotion] min_confidence; null: uncertain"
    ),
    field("emotion_confidence", pa.float32(), "largest speaker-relative class probability, 0..1"),
    field("emotion_intensity", pa.float32(), "1 - speaker-relative p(neutral), 0..1"),
    field("labelled_at", pa.timestamp("us", tz="UTC"), "when the labelling ran"),
    field("label_set", pa.string(), "id of the labelling that wrote the row"),
]


#: Identities over a root (extractors/identity/assign.py): each assignment appends one row per
#: clip it filed (a clip is filed once) ...
CLIP_IDENTITY_FIELDS = [
    field("clip_id", pa.string(), "clip whose subject's face descriptor was filed", False),
    field("identity_id", pa.string(), "the identity it joined or founded: id- and 12 hex digits"),
    field(
        "distance",
        pa.float32(),
        "distance of its descriptor to the identity's centroid after the filing, 0..2",
    ),
    field("assigned_at", pa.timestamp("us", tz="UTC"), "when the assignment ran"),
    field("assign_set", pa.string(), "id of the assignment that wrote the row"),
]
#: ... and one row per identity it founded or grew; the latest row per identity is current (the
#: ``identities`` view).
IDENTITY_UPDATE_FIELDS = [
    field("identity_id", pa.string(), "id- and 12 hex digits of the SHA-1 of its founding clip's id", False),
    field("centroid", pa.list_(pa.float32()), "mean of its members' unit face descriptors"),
    field("clips", pa.int32(), "clips filed under it so far"),
    field(
        "voice_sum",
        pa.list_(pa.float32()),
        "sum of its members' unit voice descriptors (tracks.identity_voice); null: none has one",
    ),
    field("voice_clips", pa.int32(), "members with a voice descriptor"),
    field("assigned_at", pa.timestamp("us", tz="UTC"), "when the assignment ran"),
    field("assign_set", pa.string(), "id of the assignment that wrote the row"),
]


def schema_problem(found: pa.Schema, table: pa.Schema) -> str | None:
    """Why a part of schema ``found`` is not a part of a table of schema ``table``: a required
    (non-nullable) column missing, or a column of another kind than the table's (numbers of
    another width and the two string types count as the same kind: parts written by older
    versions read as well); ``None`` when it is one. Columns the table lacks are let through,
    as are missing nullable ones (parts written before an extractor existed)."""
    for want in table:
        index = found.get_field_index(want.name)
        if index < 0:
            if not want.nullable:
                return f"it has no {want.name!r} column"
            continue
        if not _same_kind(found.field(index).type, want.type):
            return f"its column {want.name!r} is {found.field(index).type}, not {want.type}"
    return None


def _same_kind(a: pa.DataType, b: pa.DataType) -> bool:
    if a == b:
        return True
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(t(a) for t in numeric) and any(t(b) for t in numeric):
        return True
    text = (pa.types.is_string, pa.types.is_large_string)
    if any(t(a) for t in text) and any(t(b) for t in text):
        return True
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if any(t(a) for t in lists) and any(t(b) for t in lists):
        return _same_kind(a.value_type, b.value_type)
    if pa.types.is_map(a) and pa.types.is_map(b):
        return _same_kind(a.key_type, b.key_type) and _same_kind(a.item_type, b.item_type)
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        inner = {f.name: f.type for f in a}
        return all(f.name not in inner or _same_kind(inner[f.name], f.type) for f in b)
    return False


def compose(core: Iterable[pa.Field], extra: Iterable[pa.Field], table: str) -> pa.Schema:
    """Join core columns and extractor columns into one schema; a name may appear once."""
    fields = list(core) + list(extra)
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise ValueError(f"column {f.name!r} declared twice in table {table!r}")
        seen.add(f.name)
    metadata = {"table": table, "schema_version": SCHEMA_VERSION}
    if table == "tracks":
        metadata["blendshape_names"] = ",".join(BLENDSHAPE_NAMES)
        metadata["head_pose_names"] = ",".join(HEAD_POSE_NAMES)
        metadata["face_box_names"] = ",".join(FACE_BOX_NAMES)
    return pa.schema(fields, metadata=metadata)


#: Blendshape channels of training shards: the ARKit channels MediaPipe gives (``_neutral`` dropped).
SHARD_BLENDSHAPE_NAMES: tuple[str, ...] = tuple(n for n in BLENDSHAPE_NAMES if n != "_neutral")

#: Training shards (``curate export``): one row per accepted clip, audio and blendshapes aligned.
SHARD_FIELDS = [
    field("clip_id", pa.string(), "clip the row was exported from", False),
    field("video_id", pa.string(), "video of the clip", False),
    field("group_id", pa.string(), "speaker or group; every clip of a group is in one split", False),
    field("split", pa.string(), "train | val | test, assigned by group", False),
    field("source_uri", pa.string(), "video the audio was read from", False),
    field("start_s", pa.float64(), "source time of the first frame", False),
    field("fps", pa.float64(), "constant frame rate of the blendshapes", False),
    field("n_frames", pa.int32(), "frames of blendshapes; frame k is at start_s + k / fps", False),
    field("sample_rate_hz", pa.int32(), "audio sample rate (16 kHz)", False),
    field(
        "sync_offset_frames",
        pa.int32(),
        "measured offset that was corrected (+k: the audio lagged the video by k frames); null: not measured",
    ),
    field(
        "audio_offset_s",
        pa.float64(),
        "the audio was read from start_s + audio_offset_s: sample i lines up with frame i * fps / sample_rate_hz",
        False,
    ),
    field(
        "audio_pcm16",
        pa.list_(pa.int16()),
        "mono PCM, round(n_frames / fps * sample_rate_hz) samples (zeros where the source has none)",
        False,
    ),
    field(
        "blendshapes",
        pa.list_(pa.list_(pa.float32(), len(SHARD_BLENDSHAPE_NAMES))),
        "per frame the channels named in the schema metadata; frames without a face interpolated",
        False,
    ),
    field("face_present", pa.list_(pa.bool_()), "per frame: a face was tracked (false: interpolated)", False),
    field(
        "neutral",
        pa.list_(pa.float32(), len(SHARD_BLENDSHAPE_NAMES)),
        "the speaker's resting pose in this clip: per channel the median over frames with a face "
        "(speaker-relative targets are blendshapes minus neutral)",
        False,
    ),
    field(
        "emotion",
        pa.string(),
        "expression class: a reviewer's, else the clip's speaker-relative label (speaker_emotion), else its "
        "emotion_dominant; null: uncertain or not measured",
    ),
    field("emotion_confidence", pa.float32(), "the label's fused probability (1 for a reviewer's label)"),
    field(
        "emotion_intensity",
        pa.float32(),
        "1 - fused p(neutral) of the clip (speaker-relative where labelled so), 0..1",
    ),
    field("decision_set", pa.string(), "decision set of the accept verdict"),
    field("config_hash", pa.string(), "thresholds behind the accept verdict"),
]


def shard_schema() -> pa.Schema:
    """Schema of a training shard file, the channel names in its metadata."""
    metadata = {
        "table": "shards",
        "schema_version": SCHEMA_VERSION,
        "blendshape_names": ",".join(SHARD_BLENDSHAPE_NAMES),
    }
    return pa.schema(SHARD_FIELDS, metadata=metadata)
