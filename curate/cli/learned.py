"""Commands that fit and measure what the project learns from labelled clips: sync and emotion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from curate.cli.options import (
    ConfigOption,
    ProgressOption,
    _local,
    _local_root,
    _print_and_save,
    emotion_app,
    sync_app,
)
from extractors.registry import load_config
from settings.errors import InvalidInput


def _sync_recipe(features: str) -> Any:
    from extractors.sync.extractor import FEATURE_CHOICES
    from extractors.sync.training import Recipe

    if features not in FEATURE_CHOICES:
        raise InvalidInput(f"unknown sync features {features!r}: use one of {', '.join(FEATURE_CHOICES)}")
    return Recipe(features=dict(FEATURE_CHOICES[features]))


SyncFeatures = Annotated[
    str, typer.Option(help="Audio features: whisper-tiny-en (default), whisper-base or log-mel.")
]
SyncTags = Annotated[
    list[str] | None,
    typer.Option(
        "--tag", help="Only clips of videos with this source tag, KEY=VALUE (e.g. split=train); repeatable."
    ),
]


def _tags(given: list[str] | None) -> dict[str, str]:
    tags = {}
    for item in given or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--tag {item!r}: write KEY=VALUE, e.g. split=train")
        tags[key] = value
    return tags


@sync_app.command("train")
def sync_train(
    root: Annotated[Path, _local("Dataset root written by `curate run`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.npz).")],
    accepted_only: Annotated[
        bool, typer.Option(help="Learn only from clips whose current verdict is accept.")
    ] = False,
    features: SyncFeatures = "whisper-tiny-en",
    tag: SyncTags = None,
    progress: ProgressOption = True,
) -> None:
    """Fit the audio -> mouth sync model (and its null bank) on every usable clip of ROOT.

    Score with it by naming the file in the config: `[sync] model = "FILE.npz"`.
    """
    from extractors.sync.training import train

    model = train(root, accepted_only, _sync_recipe(features), progress=progress, tags=_tags(tag))
    model.save(out)
    info = model.recipe
    typer.echo(
        f"{out}: {info['clips']} clips, {info['frames']} frames ({info['seconds']:.1f} s) at {model.fps:g} fps"
    )


@sync_app.command("eval")
def sync_eval(
    root: Annotated[Path, _local("Dataset root whose clips are scored (the test speakers).")],
    train_root: Annotated[
        Path | None,
        typer.Option(
            help="Train one model on this root (other speakers) and score ROOT with it; "
            "without it, each group of ROOT is scored by a model fit on the others.",
            callback=_local_root,
        ),
    ] = None,
    config: ConfigOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    accepted_only: Annotated[
        bool, typer.Option(help="Use only clips whose current verdict is accept.")
    ] = False,
    features: SyncFeatures = "whisper-tiny-en",
    tag: SyncTags = None,
    train_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--train-tag", help="Only clips of --train-root's videos with this source tag; repeatable."
        ),
    ] = None,
    progress: ProgressOption = True,
) -> None:
    """Measure sync on negatives made from ROOT's clips (shifted by 2, 3, 5, 8, 12 frames each
    way; swapped between clips), scored by a model that never saw them; and the sync rules'
    verdicts on the clips and on windows of them, by seconds of speech (under 3 s, 3-6 s, over
    6 s), in sync, shifted by 5, 8, 12 frames and with foreign audio, with the evidence model
    fitted on them ([sync] in_sync_z_slope and in_sync_z_spread)."""

    from extractors.sync.training import evaluate

    recipe = _sync_recipe(features)
    result = evaluate(
        root,
        train_root,
        accepted_only=accepted_only,
        recipe=recipe,
        config=load_config(config),
        progress=progress,
        tags=_tags(tag),
        train_tags=_tags(train_tag),
    )
    _print_and_save(result, json_out)


EmotionLabels = Annotated[
    Path | None,
    typer.Option(
        help="CSV with file (or uri) and emotion columns; default: the emotion source tag, else "
        "the file name (MEAD, RAVDESS, CREMA-D naming)."
    ),
]


@emotion_app.command("train")
def emotion_train(
    root: Annotated[Path, _local("Dataset root of labelled clips (the training speakers).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Fusion weights to write (.npz).")],
    labels: EmotionLabels = None,
    config: ConfigOption = None,
) -> None:
    """Fit the fusion of the face model and the blendshapes on ROOT's labelled clips.

    Label with it by naming the file in the config: `[emotion] fusion = "FILE.npz"`.
    """
    from extractors.emotion.training import train_root

    typer.echo(train_root(root, out, load_config(config), labels))


@emotion_app.command("eval")
def emotion_eval(
    root: Annotated[Path, _local("Dataset root of labelled clips (speakers the fusion never saw).")],
    labels: EmotionLabels = None,
    config: ConfigOption = None,
    held_out: Annotated[
        bool,
        typer.Option(
            "--each-speaker-held-out",
            help="Judge each speaker with a fusion fitted on ROOT's other speakers (a training split).",
        ),
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
) -> None:
    """Top-1, neutral-vs-emotional AUC and confusion of each cue and of the fused labels, and
    the coverage and precision of the labels at [emotion] min_confidence."""
    from extractors.emotion.training import evaluate_root

    _print_and_save(evaluate_root(root, load_config(config), labels, held_out), json_out)


@emotion_app.command("speakers")
def emotion_speakers(
    root: Annotated[Path, _local("Dataset root whose clips are labelled against their speakers.")],
    config: ConfigOption = None,
) -> None:
    """Label every clip against its speaker's other clips (speaker-relative emotion).

    A clip's speaker is its speaker_id source tag, else its face's identity (identity_id), else
    the actor in a MEAD, RAVDESS or CREMA-D file name; clips of none keep their own label. The labels go to the emotion_speaker table
    (latest per clip: the speaker_emotion view) and `curate export` prefers them. Run again after
    a run adds clips of a speaker.
    """
    from extractors.emotion.speaker import label_root

    typer.echo(label_root(root, load_config(config)).to_text())


@emotion_app.command("eval-speech")
def emotion_eval_speech(
    folder: Annotated[
        Path, typer.Argument(help="Folder of audio files (the labels' file paths are under it).")
    ],
    labels: Annotated[
        Path,
        typer.Option(
            help="CSV with file, dataset and label columns (speaker optional), as the pool's labels.csv."
        ),
    ],
    config: ConfigOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    progress: ProgressOption = True,
) -> None:
    """Score FOLDER's labelled audio with the voice cue alone, per dataset.

    Prints top-1, unweighted average recall, the confusion matrix, and the coverage and precision
    at [emotion] min_confidence. Calm counts as neutral; labels of no class of ours (boredom) are
    left out and counted. A file's prediction is the most probable of the classes its dataset's
    labels use (URDU: four).
    """
    from extractors.emotion.speech_eval import evaluate_speech

    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    _print_and_save(evaluate_speech(folder, labels, load_config(config), progress), json_out)
