"""Tag sentences with a trained model: length-bucketed batches under a token
budget, Viterbi tags and CRF marginals back in the input order. One code path
for ``evaluate``, ``predict`` and batch tagging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nerbatch.batching import bucket_batches
from nerbatch.evaluate import Entity, entity_confidences, extract_entities
from nerbatch.model.features import encode_inputs
from nerbatch.model.vectors import WordVectors
from nerbatch.vocab import Vocabulary


@dataclass(frozen=True)
class TaggedSentence:
    tags: list[str]
    confidences: np.ndarray  # float32 [n_tokens]: CRF marginal of each chosen tag


def entities_of(tagged: TaggedSentence) -> list[tuple[Entity, float]]:
    """Entities of a tagged sentence (chunks read as conlleval reads them) with
    their confidence: the smallest CRF marginal over the entity's tokens, i.e. a
    lower bound on how sure the model is of every tag in the span."""
    entities = extract_entities(tagged.tags, mode="conlleval")
    return list(zip(entities, entity_confidences(entities, tagged.confidences)))


class Predictor:
    """Wraps a decoder (see ``nerbatch.model.tagger.build_decoder``), its vocabulary
    and, when the model takes them, its pretrained vectors.

    ``max_tokens`` bounds the padded size of a batch (sentences x longest), so
    a very long sentence runs alone instead of blowing up a batch; nothing is
    truncated.
    """

    def __init__(
        self,
        decoder,
        vocab: Vocabulary,
        input_keys: Sequence[str],
        *,
        max_word_length: int,
        vectors: WordVectors | None = None,
        batch_size: int = 128,
        max_tokens: int = 8192,
    ) -> None:
        self.decoder = decoder
        self.vocab = vocab
        self.vectors = vectors
        self.input_keys = tuple(input_keys)
        self.max_word_length = max_word_length
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    def tag(self, sentences: Sequence[Sequence[str]]) -> list[TaggedSentence]:
        """Tags and confidences for each sentence, in the input order."""
        results: list[TaggedSentence | None] = [None] * len(sentences)
        positions = [str(i) for i in range(len(sentences))]
        nonempty = [i for i, s in enumerate(sentences) if len(s)]
        for i in set(range(len(sentences))) - set(nonempty):
            results[i] = TaggedSentence([], np.zeros(0, dtype=np.float32))
        batches = bucket_batches(
            [positions[i] for i in nonempty], [list(sentences[i]) for i in nonempty], None,
            batch_size=self.batch_size, max_tokens=self.max_tokens,
        )
        for batch in batches:
            tag_ids, marginals = self.tag_batch(batch.words)
            for row, position in enumerate(batch.ids):
                n = len(batch.words[row])
                results[int(position)] = TaggedSentence(
                    [self.vocab.tags[t] for t in tag_ids[row, :n]], marginals[row, :n].copy()
                )
        return results  # type: ignore[return-value]

    def tag_batch(self, words: Sequence[Sequence[str]], *, pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(tag_ids int32 [B, T], tag_marginals float32 [B, T])`` for one padded batch."""
        x = encode_inputs(
            words, self.vocab, max_word_length=self.max_word_length, pad_to=pad_to, include=self.input_keys,
            vectors=self.vectors,
        )
        out = self.decoder.predict_on_batch(x)
        return np.asarray(out["tag_ids"], dtype=np.int32), np.asarray(out["tag_marginals"], dtype=np.float32)
