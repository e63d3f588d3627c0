"""Tutorial-style pandas grouping vs ``nerbatch prepare``, side by side.

    python benchmarks/prepare_speed.py DATA [--copies 1 4 16] [--workdir DIR]

DATA is a GMB-layout (``ner_dataset.csv``) or tutorial-layout (``ner.csv``)
file. For each copy count the file is concatenated that many times with
distinct sentence ids per copy; then, each in its own process:

* tutorial: ``pd.read_csv`` + (GMB: forward-fill) +
  ``groupby(sentence).apply(lambda s: [(w, t) for w, t in zip(...)])``;
* nerbatch: the ``nerbatch prepare`` command end to end (interpreter start,
  Dask LocalCluster start, reading, grouping, splits, writing Parquet, vocab).

Prints wall seconds, the speed-up (tutorial / nerbatch) and peak memory of
each whole process tree (nerbatch's includes any Dask worker processes).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402

from nerbatch.corpus.layouts import CorpusFormat, detect_format  # noqa: E402

TUTORIAL_GMB = """
import sys, time, pandas as pd
t = time.perf_counter()
df = pd.read_csv(sys.argv[1], encoding="latin1")
df["Sentence #"] = df["Sentence #"].ffill()
grouped = df.groupby("Sentence #").apply(lambda s: [(w, t) for w, t in zip(s["Word"].values.tolist(), s["Tag"].values.tolist())])
print(f"tutorial: {len(grouped)} sentences in {time.perf_counter() - t:.2f}s")
"""
TUTORIAL_NER = """
import sys, time, pandas as pd
t = time.perf_counter()
df = pd.read_csv(sys.argv[1], encoding="latin1")
grouped = df.groupby("sentence_idx").apply(lambda s: [(w, t) for w, t in zip(s["word"].values.tolist(), s["tag"].values.tolist())])
print(f"tutorial: {len(grouped)} sentences in {time.perf_counter() - t:.2f}s")
"""


def make_copies(data: Path, fmt: CorpusFormat, copies: int, out: Path) -> Path:
    """``copies`` concatenated copies of ``data`` with distinct sentence ids."""
    raw = data.read_bytes()
    header, _, body = raw.partition(b"\n")
    with out.open("wb") as f:
        f.write(header + b"\n")
        for c in range(copies):
            if fmt is CorpusFormat.GMB:
                f.write(body.replace(b"\nSentence: ", f"\nSentence: {c}-".encode()).replace(b"Sentence: ", f"Sentence: {c}-".encode(), 1) if c else body)
            else:
                import pandas as pd

                frame = pd.read_csv(data, encoding="latin1", dtype=str, keep_default_na=False)
                frame["sentence_idx"] = f"{c}-" + frame["sentence_idx"]
                f.write(frame.to_csv(index=False, header=False, encoding="latin1").encode("latin1"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    fmt = detect_format(str(args.data))
    if fmt not in (CorpusFormat.GMB, CorpusFormat.TUTORIAL):
        sys.exit("DATA must be a GMB (ner_dataset.csv) or tutorial (ner.csv) layout file")
    workdir = Path(tempfile.mkdtemp(prefix="prepare-speed-", dir=args.workdir))
    nerbatch = str(Path(sys.executable).parent / "nerbatch")
    rows = []
    try:
        for copies in args.copies:
            data = make_copies(args.data, fmt, copies, workdir / f"x{copies}.csv")
            script = TUTORIAL_GMB if fmt is CorpusFormat.GMB else TUTORIAL_NER
            tut = measure([sys.executable, "-c", script, str(data)])
            ner = measure([nerbatch, "prepare", str(data), "--out", str(workdir / f"out{copies}"), "--no-progress"])
            if tut.returncode or ner.returncode:
                sys.exit(f"a run failed:\n{tut.stdout}\n{ner.stdout}")
            tokens = ner.stdout.split("kept ")[1].split(";")[0]
            rows.append((copies, tokens, tut, ner))
            print(f"{copies:>3}x ({tokens} tokens): tutorial {tut.seconds:6.2f}s {tut.peak_mib:7.0f} MiB | "
                  f"nerbatch {ner.seconds:6.2f}s {ner.peak_mib:7.0f} MiB | speed-up {tut.seconds / ner.seconds:5.2f}x",
                  flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    first, last = rows[0], rows[-1]
    size_ratio = last[0] / first[0]
    print(f"\nnerbatch peak memory {last[0]}x / {first[0]}x: {last[3].peak_mib / first[3].peak_mib:.2f} "
          f"(data grew {size_ratio:.0f}x; target: less than linear)")
    print(f"speed-up at {last[0]}x: {last[2].seconds / last[3].seconds:.2f}x (target: >= 5x)")


if __name__ == "__main__":
    main()
