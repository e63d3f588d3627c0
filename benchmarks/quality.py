"""Tagging quality and training speed: nerbatch default (with and without pretrained
vectors) vs the seed network vs a linear-chain CRF.

    python benchmarks/quality.py DATA [--epochs N] [--out DIR]
        [--default-overrides JSON] [--default-train JSON] [--seeds 42 [1 2 ...]]
        [--timing-batches 100] [--timing-epochs 2] [--pad-to 140]
        [--crf-c1 0.1] [--crf-c2 0.1] [--crf-iterations 100]
        [--bootstrap-resamples 10000] [--train-subsample 1.0] [--skip NAME ...]

DATA is a ``nerbatch prepare`` output directory (or its ``sentences/``), or a
raw corpus file (GMB CSV, tutorial CSV, CoNLL, ...), which is first prepared
into ``OUT/prepared`` on a Dask LocalCluster with ``prepare_corpus``.

On the prepare split (train / validation / test by a hash of the sentence id)
it trains and evaluates:

a. ``default``: nerbatch's default preset (word embedding + GloVe 6B 50d
   vectors + char-CNN + casing, BiLSTM, CRF). ``--default-overrides
   '{"word_dropout": 0.2}'`` overrides fields of its TaggerConfig and
   ``--default-train '{"batch_size": 16}'`` fields of its TrainConfig, so a
   proposed preset can be measured before it is adopted.
b. ``novectors``: the default before vectors were on: the same overrides
   with ``vectors: null`` and a random word embedding of 100 (what it was tuned with).
c. ``seed``: the seed tutorial's network (``TaggerConfig.preset("seed")``)
   with TrainConfig's defaults.
d. ``crf``: a sklearn-crfsuite linear-chain CRF on hand-crafted word
   features (a benchmark-only dependency, imported here only).

Each network is trained once per ``--seeds`` value (the CRF's L-BFGS fit is
deterministic); with several seeds every run is printed and the targets are
judged on the mean, since one seed's test F1 moves by about half a point.

All four are scored with ``nerbatch.evaluate.score_entities`` (conlleval
chunks) on the test split; the networks are early-stopped on validation
entity F1 by ``train_tagger`` and then scored from their saved bundles
(``evaluate_bundle``, as ``nerbatch evaluate`` does).

How sure the differences are: a paired bootstrap over sentences
(``nerbatch.significance``) gives a 95% interval for default's (mean) F1
minus each other model's, on the validation split, the
test split, and both together. It measures how much the F1 difference depends
on which sentences a split holds; seed-to-seed spread is seen in the per-seed
runs. (Validation is what early stopping chose on, so its differences lean
slightly towards the networks.)

Speed: the seed network is trained for ``--timing-epochs`` short epochs of
the same ``--timing-batches`` batches twice, once padded dynamically (to each
batch's longest sentence) and once padded to ``--pad-to`` (the tutorial's
140); then the default network, dynamically padded, on as many sentences (the
same batches when its batch size is the seed's). The training-loop seconds of
the last (warm) epoch are compared; the first includes tracing.

Learning curve: ``--train-subsample 0.25`` trains on a random quarter of the
train split (vocabulary rebuilt from it; validation and test unchanged), to
see how each model's F1, and the margins between them, grow with data.

Prints P/R/F1 and training time of each model, the speed ratios, and a
summary of the targets and whether each holds; writes ``OUT/quality.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from nerbatch.batching import count_split, resolve_prepared
from nerbatch.evaluate import EntityScores, score_entities
from nerbatch.scoring import evaluate_bundle, load_split
from nerbatch.significance import F1Difference, paired_bootstrap_f1
from nerbatch.train import TrainConfig, describe_epoch, train_tagger

TARGET_DEFAULT_F1 = 0.835
TARGET_MARGIN_OVER_CRF = 0.015  # on validation + test, with a 95% interval that excludes 0
TARGET_MARGIN_OVER_SEED = 0.03
TARGET_DYNAMIC_SPEEDUP = 3.0
MODELS = ("default", "novectors", "seed", "crf")
SCORED_SPLITS = ("validation", "test")
BOTH_SPLITS = "+".join(SCORED_SPLITS)


@dataclass
class ModelResult:
    name: str
    precision: float
    recall: float
    f1: float
    val_f1: float
    train_seconds: float  # the training loop (networks: epoch loops only; CRF: fit)
    wall_seconds: float  # everything: features/validation/evaluation/bundle writing included
    detail: str
    # Tags predicted on the validation and test splits (empty for a mean of runs).
    predicted: dict[str, list[list[str]]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "predicted"}


@dataclass
class EpochTiming:
    name: str
    pad_to: int | None
    batch_size: int
    batches: int
    epoch_seconds: list[float]  # training loop only, per timed epoch
    train_sentences: int

    @property
    def warm_seconds(self) -> float:
        """The last timed epoch (the first one includes tracing)."""
        return self.epoch_seconds[-1]

    @property
    def full_epoch_seconds(self) -> float:
        """``warm_seconds`` scaled from the timed sentences to the whole train split."""
        return self.warm_seconds * self.train_sentences / (self.batches * self.batch_size)


# -- data ----------------------------------------------------------------------------------


def prepared_dir(data: Path, workdir: Path) -> Path:
    """A prepare output dir for ``data``: ``data`` itself when already prepared, else prepared now."""
    if data.is_dir():
        sentences, _ = resolve_prepared(data)
        return sentences.parent
    from nerbatch.cluster import dask_client
    from nerbatch.prepare import prepare_corpus

    out = workdir / "prepared"
    print(f"preparing {data} -> {out}", flush=True)
    with dask_client():
        report = prepare_corpus([str(data)], out)
    print(report.summary(), flush=True)
    return out


def subsample_train_split(prepared: Path, fraction: float, out: Path, *, seed: int = 0) -> Path:
    """A copy of ``prepared`` whose train split is a random ``fraction`` of its
    sentences (validation and test unchanged), with the vocabulary rebuilt from
    that train split as ``prepare`` builds it (the tag set kept whole, so every
    run has the same CRF): one point of a learning curve.
    """
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from nerbatch.batching import sentence_dataset
    from nerbatch.corpus.statistics import CorpusCounts
    from nerbatch.prepare import build_vocabulary
    from nerbatch.vocab import Vocabulary

    sentences, vocab_path = resolve_prepared(prepared)
    full_vocab = Vocabulary.load(vocab_path)
    table = sentence_dataset(sentences).to_table()
    is_train = pc.equal(table.column("split"), "train").to_numpy(zero_copy_only=False)
    train_rows = np.flatnonzero(is_train)
    keep = np.random.default_rng(seed).choice(train_rows, size=round(len(train_rows) * fraction), replace=False)
    rows = np.sort(np.concatenate([keep, np.flatnonzero(~is_train)]))
    (out / "sentences").mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(rows), out / "sentences" / "part-00000.parquet")

    counts = CorpusCounts()
    for words in table.column("words").take(keep).to_pylist():
        counts.words["train"].update(words)
    counts.tags["train"].update(full_vocab.tags)
    build_vocabulary(counts, min_count=full_vocab.min_count, max_size=full_vocab.max_size).save(out / "vocab.json")
    print(f"train split subsampled: {len(keep):,} of {len(train_rows):,} sentences (fraction {fraction}, seed {seed})", flush=True)
    return out


def longest_sentence(prepared: Path) -> int:
    sentences, _ = resolve_prepared(prepared)
    return max((len(w) for split in ("train", "validation", "test") for w in load_split(sentences, split)[0]), default=0)


# -- the networks --------------------------------------------------------------------------


def train_network(name: str, prepared: Path, bundles: Path, config: TrainConfig) -> ModelResult:
    """Train with ``train_tagger``, then tag the test split from the saved bundle and score it."""
    print(f"\n[{name}] training: {config.model_dump(exclude_defaults=True)}", flush=True)
    result = train_tagger(prepared, bundles / name, config, on_epoch=_print_epoch)
    evaluations = {split: evaluate_bundle(result.bundle_dir, prepared, split)[1] for split in SCORED_SPLITS}
    scores = evaluations["test"].scores
    return ModelResult(
        name=name,
        precision=scores.precision,
        recall=scores.recall,
        f1=scores.f1,
        val_f1=result.metrics["validation"]["scores"]["f1"],
        train_seconds=sum(h["seconds"] for h in result.history),
        wall_seconds=result.seconds,
        detail=f"best epoch {result.metrics['best_epoch']} of {len(result.history)}",
        predicted={split: e.predicted for split, e in evaluations.items()},
    )


def train_network_per_seed(name: str, prepared: Path, bundles: Path, config: TrainConfig, seeds: list[int]) -> list[ModelResult]:
    """:func:`train_network` once per seed (bundles ``NAME`` for one seed, ``NAME-seedS`` for several)."""
    return [
        train_network(name if len(seeds) == 1 else f"{name}-seed{s}", prepared, bundles, config.model_copy(update={"seed": s}))
        for s in seeds
    ]


def mean_result(name: str, runs: list[ModelResult]) -> ModelResult:
    """The mean of runs of one model with different seeds (the run itself when there is one)."""
    if len(runs) == 1:
        return runs[0]

    def mean(field: str) -> float:
        return sum(getattr(r, field) for r in runs) / len(runs)

    return ModelResult(
        name=f"{name} mean",
        precision=mean("precision"),
        recall=mean("recall"),
        f1=mean("f1"),
        val_f1=mean("val_f1"),
        train_seconds=mean("train_seconds"),
        wall_seconds=mean("wall_seconds"),
        detail=f"{len(runs)} seeds: test F1 {min(r.f1 for r in runs):.4f}-{max(r.f1 for r in runs):.4f}",
    )


def with_mean(runs: list[ModelResult], mean: ModelResult) -> list[ModelResult]:
    """The rows to print for one model: its runs, then their mean when there are several."""
    return runs if len(runs) == 1 else [*runs, mean]


def _print_epoch(row: dict) -> None:
    print("  " + describe_epoch(row), flush=True)


# -- the CRF baseline ----------------------------------------------------------------------


def word_shape(word: str) -> str:
    """``"McDonald's" -> "XxXx'x"``: character classes with repeats collapsed."""
    shape = []
    for c in word:
        s = "X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c
        if not shape or shape[-1] != s:
            shape.append(s)
    return "".join(shape)


def _word_features(word: str, prefix: str) -> dict:
    return {
        f"{prefix}lower": word.lower(),
        f"{prefix}istitle": word.istitle(),
        f"{prefix}isupper": word.isupper(),
        f"{prefix}suffix3": word[-3:].lower(),
        f"{prefix}shape": word_shape(word),
    }


def token_features(sentence: list[str], i: int) -> dict:
    """Classic CRF features of token ``i``: its spelling and its neighbours' (+-1, +-2)."""
    word = sentence[i]
    features = {
        "bias": 1.0,
        "word.lower": word.lower(),
        "word.suffix3": word[-3:],
        "word.suffix2": word[-2:],
        "word.prefix3": word[:3],
        "word.isupper": word.isupper(),
        "word.istitle": word.istitle(),
        "word.isdigit": word.isdigit(),
        "word.shape": word_shape(word),
        "word.length": min(len(word), 10),
    }
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if 0 <= j < len(sentence):
            features.update(_word_features(sentence[j], f"{offset:+d}:"))
    if i == 0:
        features["BOS"] = True
    if i == len(sentence) - 1:
        features["EOS"] = True
    return features


def sentence_features(sentence: list[str]) -> list[dict]:
    return [token_features(sentence, i) for i in range(len(sentence))]


def train_crf(prepared: Path, *, c1: float, c2: float, iterations: int) -> ModelResult:
    """Fit a sklearn-crfsuite CRF on the train split and score it on the test split."""
    import sklearn_crfsuite

    print(f"\n[crf] training: c1={c1} c2={c2} max_iterations={iterations}", flush=True)
    started = time.perf_counter()
    sentences, _ = resolve_prepared(prepared)
    splits = {s: load_split(sentences, s) for s in ("train", "validation", "test")}
    features = {s: [sentence_features(w) for w in words] for s, (words, _) in splits.items()}
    crf = sklearn_crfsuite.CRF(
        algorithm="lbfgs", c1=c1, c2=c2, max_iterations=iterations, all_possible_transitions=True
    )
    fit_started = time.perf_counter()
    crf.fit(features["train"], splits["train"][1])
    fit_seconds = time.perf_counter() - fit_started
    predicted = {s: [list(t) for t in crf.predict(features[s])] for s in SCORED_SPLITS}
    scores: dict[str, EntityScores] = {s: score_entities(splits[s][1], predicted[s], mode="conlleval") for s in predicted}
    test = scores["test"]
    return ModelResult(
        name="crf",
        precision=test.precision,
        recall=test.recall,
        f1=test.f1,
        val_f1=scores["validation"].f1,
        train_seconds=fit_seconds,
        wall_seconds=time.perf_counter() - started,
        detail=f"{len(crf.state_features_):,} state features",
        predicted=predicted,
    )


# -- how sure the differences are -----------------------------------------------------------


def f1_differences(
    prepared: Path, runs: dict[str, list[ModelResult]], *, resamples: int
) -> dict[str, dict[str, F1Difference]]:
    """``{other: {split: difference}}``: paired bootstrap of default's mean F1 minus each other
    model's, on validation, test, and both (``"validation+test"``, the sentences of the two together)."""
    if "default" not in runs:
        return {}
    sentences, _ = resolve_prepared(prepared)
    gold = {split: load_split(sentences, split)[1] for split in SCORED_SPLITS}
    groups = {**{split: (split,) for split in SCORED_SPLITS}, BOTH_SPLITS: SCORED_SPLITS}

    def joined(model: str, splits: tuple[str, ...]) -> list[list[list[str]]]:
        return [[tags for split in splits for tags in run.predicted[split]] for run in runs[model]]

    return {
        other: {
            name: paired_bootstrap_f1(
                [tags for split in splits for tags in gold[split]], joined("default", splits), joined(other, splits),
                resamples=resamples,
            )
            for name, splits in groups.items()
        }
        for other in ("crf", "novectors", "seed")
        if other in runs
    }


def print_differences(differences: dict[str, dict[str, F1Difference]]) -> None:
    first = next(iter(next(iter(differences.values())).values()))
    print(f"\nF1 differences in points, with the {100 * first.confidence:.0f}% interval of a paired bootstrap "
          f"over sentences ({first.resamples:,} resamples):")
    for other, by_split in differences.items():
        for split, d in by_split.items():
            print(f"  default - {other:<9} {split:<16} ({d.sentences:>5,} sentences) {d.describe():<24} "
                  f"default higher on {100 * d.a_better:5.1f}% of resamples; {d.verdict}")


# -- speed ---------------------------------------------------------------------------------


def time_epochs(name: str, prepared: Path, bundles: Path, config: TrainConfig) -> EpochTiming:
    """Training-loop seconds of each epoch of a short run (the same batches for the same seed and batch size)."""
    result = train_tagger(prepared, bundles / f"timing-{name}", config)
    sentences, _ = resolve_prepared(prepared)
    timing = EpochTiming(
        name, config.pad_to, config.batch_size, config.max_batches_per_epoch or 0,
        [h["seconds"] for h in result.history], count_split(sentences, "train")[0],
    )
    print(f"  {name}: {timing.batches} batches of {timing.batch_size} per epoch: "
          + ", ".join(f"{s:.1f}s" for s in timing.epoch_seconds), flush=True)
    return timing


def measure_speed(
    prepared: Path, bundles: Path, default: TrainConfig, seed: TrainConfig, *, batches: int, epochs: int, pad_to: int
) -> dict[str, EpochTiming]:
    """Seed network dynamic vs padded on the same batches; the default network on as many sentences."""
    longest = longest_sentence(prepared)
    if longest > pad_to:
        print(f"  note: the longest sentence has {longest} tokens; padding to {longest} instead of {pad_to}")
        pad_to = longest
    sentences = batches * seed.batch_size

    def short(config: TrainConfig, **update) -> TrainConfig:
        # patience >= epochs so that early stopping never ends a timing run early.
        n = -(-sentences // config.batch_size)
        return config.model_copy(update={"epochs": epochs, "patience": epochs, "max_batches_per_epoch": n, **update})

    print(f"\n[speed] {epochs} epoch(s) of {sentences:,} training sentences each "
          f"({batches} seed batches); the last epoch is compared", flush=True)
    return {
        "seed-dynamic": time_epochs("seed-dynamic", prepared, bundles, short(seed, pad_to=None)),
        "seed-padded": time_epochs(f"seed-pad{pad_to}", prepared, bundles, short(seed, pad_to=pad_to)),
        "default-dynamic": time_epochs("default-dynamic", prepared, bundles, short(default, pad_to=None)),
    }


# -- report --------------------------------------------------------------------------------


def machine() -> str:
    from nerbatch.model.backend import describe_devices, load_keras

    keras = load_keras()  # started where nerbatch starts it: without TensorFlow's start-up lines
    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPU(s); {describe_devices()}; "
        f"Python {platform.python_version()}, Keras {keras.__version__}"
    )


def print_models(results: list[ModelResult]) -> None:
    print(f"\n{'model':<14} {'test P':>8} {'test R':>8} {'test F1':>8} {'val F1':>8} {'train s':>9} {'wall s':>9}  detail")
    for r in results:
        print(
            f"{r.name:<14} {r.precision:>8.4f} {r.recall:>8.4f} {r.f1:>8.4f} {r.val_f1:>8.4f} "
            f"{r.train_seconds:>9.1f} {r.wall_seconds:>9.1f}  {r.detail}"
        )
    print("(test = entity-level micro P/R/F1, conlleval chunks; train s = epoch loops or CRF fit; wall s = all of it)")


def summary_rows(
    results: dict[str, ModelResult], differences: dict[str, dict[str, F1Difference]], timings: dict[str, EpochTiming]
) -> list[tuple[str, str, str, str]]:
    """``(what, measured, target, holds)`` rows."""
    rows = []
    if "default" in results:
        f1 = results["default"].f1
        rows.append(("default test F1", f"{f1:.4f}", f">= {TARGET_DEFAULT_F1:.3f}", _yes(f1 >= TARGET_DEFAULT_F1)))
        if "crf" in differences:
            both = differences["crf"][BOTH_SPLITS]
            holds = both.difference >= TARGET_MARGIN_OVER_CRF and both.low > 0
            rows.append((f"default - crf, {BOTH_SPLITS} (points, 95% interval)", both.describe(),
                         f">= +{100 * TARGET_MARGIN_OVER_CRF:.1f}, > 0", _yes(holds)))
        if "novectors" in results:
            margin = f1 - results["novectors"].f1
            rows.append(("default - novectors, test (points)", f"{100 * margin:+.2f}", "(reported)", "-"))
        if "seed" in results:
            margin = f1 - results["seed"].f1
            rows.append(("default - seed, test (points)", f"{100 * margin:+.2f}", f">= +{100 * TARGET_MARGIN_OVER_SEED:.1f}",
                         _yes(margin >= TARGET_MARGIN_OVER_SEED)))
    if timings:
        dynamic, padded = timings["seed-dynamic"].warm_seconds, timings["seed-padded"].warm_seconds
        ratio = padded / dynamic
        rows.append(
            (f"seed: pad {timings['seed-padded'].pad_to} / dynamic epoch time", f"{ratio:.2f}x", f">= {TARGET_DYNAMIC_SPEEDUP:.0f}x", _yes(ratio >= TARGET_DYNAMIC_SPEEDUP))
        )
        default_ratio = padded / timings["default-dynamic"].warm_seconds
        rows.append((f"seed pad {timings['seed-padded'].pad_to} / default dynamic epoch time", f"{default_ratio:.2f}x", "(reported)", "-"))
    return rows


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def print_summary(rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'summary':<{width}}  {'measured':>9}  {'target':>9}  holds")
    for what, measured, target, holds in rows:
        print(f"{what:<{width}}  {measured:>9}  {target:>9}  {holds}")


def print_timings(timings: dict[str, EpochTiming]) -> None:
    print(f"\n{'network':<16} {'padding':>8} {'batches':>12} {'warm s':>8} {'~full epoch s':>14}  all timed epochs (s)")
    for t in timings.values():
        padding = "dynamic" if t.pad_to is None else str(t.pad_to)
        print(f"{t.name:<16} {padding:>8} {f'{t.batches} x {t.batch_size}':>12} {t.warm_seconds:>8.2f} "
              f"{t.full_epoch_seconds:>14.1f}  " + ", ".join(f"{s:.2f}" for s in t.epoch_seconds))
    print("(warm s = training loop of the last timed epoch; ~full epoch s = scaled to the whole train split)")


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a `prepare` output dir (or its sentences/), or a raw corpus file")
    parser.add_argument("--epochs", type=int, default=30, help="most epochs of each network (early stopping on validation F1)")
    parser.add_argument("--out", type=Path, default=None, help="work dir for the prepared data, bundles and quality.json")
    parser.add_argument("--default-overrides", type=json.loads, default={}, help="JSON: TaggerConfig fields for the default preset")
    parser.add_argument("--default-train", type=json.loads, default={}, help="JSON: TrainConfig fields for the default model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="random seeds of both networks (one run each)")
    parser.add_argument("--timing-batches", type=int, default=100,
                        help="batches of the seed network per timed epoch (the default network gets as many sentences)")
    parser.add_argument("--timing-epochs", type=int, default=2, help="the first includes tracing; the last is compared")
    parser.add_argument("--pad-to", type=int, default=140)
    parser.add_argument("--crf-c1", type=float, default=0.1)
    parser.add_argument("--crf-c2", type=float, default=0.1)
    parser.add_argument("--crf-iterations", type=int, default=100)
    parser.add_argument("--bootstrap-resamples", type=int, default=10_000,
                        help="resamples of the sentences for the intervals of the F1 differences")
    parser.add_argument("--train-subsample", type=float, default=1.0,
                        help="train on this random share of the train split (a learning-curve point); validation and test unchanged")
    parser.add_argument("--skip", nargs="*", default=[], choices=[*MODELS, "speed"], help="parts to leave out")
    args = parser.parse_args(argv)
    if not 0 < args.train_subsample <= 1:
        parser.error(f"--train-subsample must be in (0, 1], got {args.train_subsample}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # per-shape retracing notes of predict
    workdir = args.out or Path(tempfile.mkdtemp(prefix="nerbatch-quality-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bundles = workdir / "bundles"
    print(f"machine: {machine()}")
    prepared = prepared_dir(args.data, workdir)
    if args.train_subsample < 1:
        prepared = subsample_train_split(prepared, args.train_subsample, workdir / f"prepared-train-{args.train_subsample}")
    print(f"data: {prepared}; work dir: {workdir}", flush=True)

    default = TrainConfig(
        preset="default", epochs=args.epochs, seed=args.seeds[0], tagger=args.default_overrides,
        **{k: v for k, v in args.default_train.items() if k not in ("preset", "tagger")},
    )
    novectors = default.model_copy(
        update={"tagger": {**args.default_overrides, "vectors": None, "word_dim": 100, "word_init_from_vectors": False}}
    )
    seed = TrainConfig(preset="seed", epochs=args.epochs, seed=args.seeds[0])
    runs: dict[str, list[ModelResult]] = {}
    for name, config in (("default", default), ("novectors", novectors), ("seed", seed)):
        if name not in args.skip:
            runs[name] = train_network_per_seed(name, prepared, bundles, config, args.seeds)
    if "crf" not in args.skip:
        runs["crf"] = [train_crf(prepared, c1=args.crf_c1, c2=args.crf_c2, iterations=args.crf_iterations)]
    results = {name: mean_result(name, model_runs) for name, model_runs in runs.items()}
    differences = f1_differences(prepared, runs, resamples=args.bootstrap_resamples)
    timings: dict[str, EpochTiming] = {}
    if "speed" not in args.skip:
        timings = measure_speed(
            prepared, bundles, default, seed, batches=args.timing_batches, epochs=args.timing_epochs, pad_to=args.pad_to
        )

    print(f"\nmachine: {machine()}")
    print(f"default config: tagger overrides {json.dumps(args.default_overrides)}; training {json.dumps(args.default_train)}")
    if results:
        print_models([r for name, model_runs in runs.items() for r in with_mean(model_runs, results[name])])
    if differences:
        print_differences(differences)
    if timings:
        print_timings(timings)
    rows = summary_rows(results, differences, timings)
    if rows:
        print_summary(rows)
    report = {
        "machine": machine(),
        "data": str(prepared),
        "train_subsample": args.train_subsample,
        "default_config": default.model_dump(mode="json"),
        "seed_config": seed.model_dump(mode="json"),
        "models": {k: v.to_dict() for k, v in results.items()},
        "runs": {k: [r.to_dict() for r in v] for k, v in runs.items()},
        "f1_differences": {
            f"default - {other}": {split: d.to_dict() for split, d in by_split.items()} for other, by_split in differences.items()
        },
        "timings": {
            k: {**asdict(v), "warm_seconds": v.warm_seconds, "full_epoch_seconds": v.full_epoch_seconds}
            for k, v in timings.items()
        },
        "summary": [dict(zip(("what", "measured", "target", "holds"), r)) for r in rows],
    }
    (workdir / "quality.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"\nwrote {workdir / 'quality.json'}")


if __name__ == "__main__":
    sys.exit(main())
