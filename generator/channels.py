"""Blendshape channel groups, addressed by name (ARKit names as in the shards)."""

from __future__ import annotations

from collections.abc import Sequence

#: Name prefixes of each group: lip = jaw and mouth; upper = brow and the eye lids.
GROUP_PREFIXES: dict[str, tuple[str, ...]] = {
    "lip": ("jaw", "mouth"),
    "upper": ("brow", "eyeBlink", "eyeSquint", "eyeWide"),
}


#: Channels that speech determines (phones), documented in docs/generator.md: the jaw and the lip
#: shapes of vowels (open, rounded) and consonants (closed, pressed, rolled), not the expression
#: channels (smile, frown, dimple, stretch, sneer) that follow emotion.
PHONETIC: tuple[str, ...] = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "mouthPressLeft",
    "mouthPressRight",
)


def phonetic_indices(names: Sequence[str]) -> list[int]:
    """Positions in ``names`` of the :data:`PHONETIC` channels present."""
    found = [i for i, n in enumerate(names) if n in PHONETIC]
    if not found:
        raise ValueError(f"no phonetic channel among {list(names)}")
    return found


def group_indices(names: Sequence[str], group: str) -> list[int]:
    """Positions in ``names`` of the channels of ``group`` (a key of :data:`GROUP_PREFIXES`)."""
    if group not in GROUP_PREFIXES:
        raise KeyError(f"unknown channel group {group!r}: one of {sorted(GROUP_PREFIXES)}")
    found = [i for i, n in enumerate(names) if n.startswith(GROUP_PREFIXES[group])]
    if not found:
        raise ValueError(f"no channel of group {group!r} among {list(names)}")
    return found


def channel_index(names: Sequence[str], name: str) -> int:
    """Position of channel ``name`` in ``names``; ``ValueError`` naming the channel when absent."""
    try:
        return list(names).index(name)
    except ValueError:
        raise ValueError(f"no channel {name!r} among the model's channels") from None
