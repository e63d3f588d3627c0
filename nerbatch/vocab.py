"""The vocabulary: words, characters and tags with their integer ids.

Words and characters reserve id 0 for padding and id 1 for unknown. Tags have
no padding entry: padded positions are carried by masks, and a tag's id is its
position in ``tags`` (what the CRF indexes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1


@dataclass(frozen=True)
class Vocabulary:
    """Id maps for words, characters and tags.

    ``words[0:2]`` and ``chars[0:2]`` are ``<pad>``, ``<unk>``; the rest are
    ordered by count (descending), ties by the string, so the same counts
    always give the same ids.
    """

    words: tuple[str, ...]
    word_counts: tuple[int, ...]
    chars: tuple[str, ...]
    tags: tuple[str, ...]
    min_count: int = 1
    max_size: int | None = None
    _word_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _char_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _tag_ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.words[:2] != (PAD, UNK) or self.chars[:2] != (PAD, UNK):
            raise ValueError("words and chars must start with <pad>, <unk>")
        object.__setattr__(self, "_word_ids", {w: i for i, w in enumerate(self.words)})
        object.__setattr__(self, "_char_ids", {c: i for i, c in enumerate(self.chars)})
        object.__setattr__(self, "_tag_ids", {t: i for i, t in enumerate(self.tags)})

    # -- lookups --------------------------------------------------------------
    def word_id(self, word: str) -> int:
        return self._word_ids.get(word, UNK_ID)

    def char_id(self, char: str) -> int:
        return self._char_ids.get(char, UNK_ID)

    def tag_id(self, tag: str) -> int:
        """The CRF index of ``tag``; raises KeyError for a tag never seen in training."""
        return self._tag_ids[tag]

    def has_word(self, word: str) -> bool:
        return word in self._word_ids

    @property
    def word_ids(self) -> Mapping[str, int]:
        return self._word_ids

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_counts(
        cls,
        word_counts: Mapping[str, int] | pd.Series,
        char_counts: Mapping[str, int] | pd.Series,
        tags: Iterable[str],
        *,
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Build from word and character frequencies and the set of tags seen.

        ``max_size`` bounds the number of words, not counting ``<pad>``/``<unk>``.
        Tags are ordered ``O`` first, then by entity type and prefix, so the order
        does not depend on which tag happened to be seen first.
        """
        words = _ordered_by_count(word_counts, min_count, max_size)
        chars = _ordered_by_count(char_counts, 1, None)
        return cls(
            words=(PAD, UNK, *(w for w, _ in words)),
            word_counts=(0, 0, *(c for _, c in words)),
            chars=(PAD, UNK, *(c for c, _ in chars)),
            tags=tuple(sort_tags(tags)),
            min_count=min_count,
            max_size=max_size,
        )

    # -- persistence ----------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": "nerbatch-vocab/1",
            "padding": PAD,
            "unknown": UNK,
            "min_count": self.min_count,
            "max_size": self.max_size,
            "words": [[w, c] for w, c in zip(self.words, self.word_counts)],
            "chars": list(self.chars),
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Vocabulary:
        return cls(
            words=tuple(w for w, _ in data["words"]),
            word_counts=tuple(int(c) for _, c in data["words"]),
            chars=tuple(data["chars"]),
            tags=tuple(data["tags"]),
            min_count=int(data["min_count"]),
            max_size=data["max_size"],
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _ordered_by_count(
    counts: Mapping[str, int] | pd.Series, min_count: int, max_size: int | None
) -> list[tuple[str, int]]:
    items = [(str(k), int(v)) for k, v in dict(counts).items() if int(v) >= min_count and k not in (PAD, UNK)]
    items.sort(key=lambda kv: (-kv[1], kv[0]))
    return items if max_size is None else items[:max_size]


def sort_tags(tags: Iterable[str]) -> list[str]:
    """``O`` first, then tags grouped by entity type, ``B`` before ``I``/``E``/``S``."""
    prefix_rank = {"B": 0, "I": 1, "E": 2, "S": 3}

    def key(tag: str) -> tuple:
        if tag == "O":
            return (0, "", 0)
        prefix, _, label = tag.partition("-")
        return (1, label, prefix_rank.get(prefix, 9), tag)

    return sorted(set(tags), key=key)
