"""A small synthetic NER corpus for tests: sentences from templates with
entities drawn from gazetteers, written in the GMB layout, plus raw documents
built from the same templates (so a model trained on one tags the other)."""

from __future__ import annotations

import random
from pathlib import Path

PEOPLE = [("Angela", "Merkel"), ("John", "Smith"), ("Maria", "Garcia"), ("Li", "Wei"), ("Ahmed", "Khan"),
          ("Olga", "Ivanova"), ("Pierre", "Dubois"), ("Kofi", "Annan"), ("Sara", "Berg"), ("Tom", "Baker")]
PLACES = ["Paris", "Berlin", "Nairobi", "Lima", "Tokyo", "Cairo", "Oslo", "Quito", "Dublin", "Hanoi"]
ORGS = [("United", "Nations"), ("World", "Bank"), ("Red", "Cross"), ("Acme", "Corp"), ("Save", "Children")]
VERBS = ["visited", "left", "praised", "criticised", "met", "called"]
FILLER = ["the", "officials", "said", "on", "Monday", "that", "talks", "will", "continue", "in", "a", "week"]


def synthetic_sentences(n: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    """``n`` sentences of ``(word, tag)`` with PER, GEO and ORG entities (IOB2)."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        first, last = rng.choice(PEOPLE)
        place = rng.choice(PLACES)
        org = rng.choice(ORGS)
        verb = rng.choice(VERBS)
        shape = rng.randrange(3)
        if shape == 0:
            s = [(first, "B-per"), (last, "I-per"), (verb, "O"), (place, "B-geo")]
        elif shape == 1:
            s = [("The", "O"), (org[0], "B-org"), (org[1], "I-org"), (verb, "O"), (first, "B-per"), (last, "I-per"),
                 ("in", "O"), (place, "B-geo")]
        else:
            s = [("In", "O"), (place, "B-geo"), (",", "O"), (last, "B-per"), (verb, "O"), ("the", "O"),
                 (org[0], "B-org"), (org[1], "I-org")]
        s += [(w, "O") for w in rng.sample(FILLER, rng.randrange(0, 5))] + [(".", "O")]
        sentences.append(s)
    return sentences


def write_gmb(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    lines = ["Sentence #,Word,POS,Tag"]
    for i, s in enumerate(sentences, 1):
        for j, (w, t) in enumerate(s):
            word = f'"{w}"' if "," in w else w
            lines.append(f"{'Sentence: ' + str(i) if j == 0 else ''},{word},NN,{t}")
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def document_text(sentences: list[list[tuple[str, str]]]) -> str:
    """Raw text of sentences, words joined by spaces except before punctuation."""
    out = []
    for s in sentences:
        text = ""
        for w, _ in s:
            text += w if not text or w in {".", ","} else " " + w
        out.append(text)
    return " ".join(out)
