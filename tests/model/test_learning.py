"""The default architecture learns a small synthetic NER task, transitions included."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import random  # noqa: E402
from collections import Counter  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nerbatch.model.crf import log_likelihood  # noqa: E402
from nerbatch.model.tagger import (  # noqa: E402
    TaggerConfig,
    build_decoder,
    build_tagger,
    encode_sentences,
    find_crf,
    predict_tags,
)
from nerbatch.vocab import Vocabulary  # noqa: E402

FIRST_NAMES = ["Anna", "Boris", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Irene", "Jonas"]
SURNAMES = ["Smith", "Novak", "Larsen", "Moreau", "Rossi", "Weber", "Kowalski", "Dubois"]
PLACES = ["Paris", "Berlin", "Oslo", "Lima", "Cairo", "Quito", "Porto", "Dakar"]
TWO_WORD_PLACES = [("New", "York"), ("San", "Diego"), ("Buenos", "Aires"), ("Hong", "Kong")]
FILLER = "the a man woman went to from saw met in at yesterday today and with city trip visit home".split()


def _sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    """Filler words with one to three entities dropped in: ``B-``/``I-`` tags, never ``I-`` after ``O``."""
    words: list[str] = []
    tags: list[str] = []
    for block in range(rng.randint(1, 3)):
        # Entities are separated by filler; a sentence may start with one.
        for _ in range(rng.randint(0 if block == 0 else 1, 4)):
            words.append(rng.choice(FILLER))
            tags.append("O")
        kind = rng.random()
        if kind < 0.4:
            words.append(rng.choice(FIRST_NAMES))
            tags.append("B-PER")
            if rng.random() < 0.6:
                words.append(rng.choice(SURNAMES))
                tags.append("I-PER")
        elif kind < 0.8:
            words.append(rng.choice(PLACES))
            tags.append("B-LOC")
        else:
            first, second = rng.choice(TWO_WORD_PLACES)
            words += [first, second]
            tags += ["B-LOC", "I-LOC"]
    if rng.random() < 0.5:
        words.append(rng.choice(FILLER))
        tags.append("O")
    return words, tags


def _corpus(n: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    rng = random.Random(seed)
    pairs = [_sentence(rng) for _ in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _inside_after_outside(tags: np.ndarray, mask: np.ndarray, vocab: Vocabulary) -> int:
    """How many ``I-X`` tags directly follow an ``O`` in decoded paths ``[B, T]``."""
    inside = np.array([t.startswith("I-") for t in vocab.tags])
    outside = np.array([t == "O" for t in vocab.tags])
    return int((inside[tags[:, 1:]] & outside[tags[:, :-1]] & mask[:, 1:]).sum())


@pytest.mark.slow
def test_learns_entities_and_transitions() -> None:
    keras.utils.set_random_seed(0)
    train_words, train_tags = _corpus(500, seed=1)
    test_words, test_tags = _corpus(200, seed=2)
    vocab = Vocabulary.from_counts(
        Counter(w for s in train_words for w in s),
        Counter(c for s in train_words for w in s for c in w),
        [t for s in train_tags for t in s],
    )
    config = TaggerConfig.preset("tiny", seed=0)
    model = build_tagger(config, vocab)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    x, y = encode_sentences(config, vocab, train_words, train_tags)
    history = model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]

    decoder = build_decoder(model)
    x_test, y_test = encode_sentences(config, vocab, test_words, test_tags)
    predicted, confidence = predict_tags(decoder, x_test)
    mask = x_test["words"] != 0
    entity = mask & (y_test != vocab.tag_id("O"))
    entity_accuracy = float((predicted == y_test)[entity].mean())
    token_accuracy = float((predicted == y_test)[mask].mean())
    all_o_accuracy = float((y_test == vocab.tag_id("O"))[mask].mean())
    # "all O" gets 0 of the entity tokens and all_o_accuracy of all tokens.
    assert entity_accuracy > 0.9, entity_accuracy
    assert token_accuracy > all_o_accuracy + 0.5 * (1 - all_o_accuracy), (token_accuracy, all_o_accuracy)
    assert np.all((confidence[mask] > 0) & (confidence[mask] <= 1 + 1e-6))

    # Into each I-X, every transition training never showed scores below every one it showed.
    transitions = find_crf(model).get_weights()[0]
    seen = {(vocab.tag_id(a), vocab.tag_id(b)) for tags in train_tags for a, b in zip(tags, tags[1:], strict=False)}
    for tag in (t for t in vocab.tags if t.startswith("I-")):
        j = vocab.tag_id(tag)
        shown = [transitions[i, j] for i in range(len(vocab.tags)) if (i, j) in seen]
        never = [transitions[i, j] for i in range(len(vocab.tags)) if (i, j) not in seen]
        assert max(never) < min(shown), (tag, shown, never)

    # Decoded held-out paths keep the rule training showed: no I-X right after O.
    # (The CRF's constraints are soft: a word seen only as I-X, put right after
    # filler, can outweigh a few epochs' transition penalty, so out-of-pattern
    # inputs are not asserted here.)
    assert _inside_after_outside(predicted, mask, vocab) == 0

    # And the gold paths of held-out data are likely under the model.
    gold_ll = keras.ops.convert_to_numpy(
        log_likelihood(model.predict(x_test, verbose=0), y_test, mask, *find_crf(model).get_weights())
    )
    assert np.exp(gold_ll.mean()) > 0.5
