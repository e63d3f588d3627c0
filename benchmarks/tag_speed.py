"""End-to-end speed and memory of ``nerbatch tag`` on a raw-text document dump.

    python benchmarks/tag_speed.py BUNDLE [DATA] [--docs 32000] [--docs-per-file 2000]
        [--workers 1 2] [--memory-scale 8] [--repeats 1] [--out DIR] [--skip speed memory]
        [--baseline OTHER_BUNDLE]

BUNDLE is a model bundle (``nerbatch train``). DATA is where the sentences of
the dump come from: a ``prepare`` output dir (or its ``sentences/``) or a raw
corpus file (prepared first into ``OUT/prepared``); by default, the sentence
dataset the bundle was trained on (``config.json``: ``data.sentences``).

The dump: ``--docs`` documents of 2-6 sentences each, the sentences drawn at
random (seeded) from DATA and detokenised once (NLTK's Treebank detokenizer)
into raw text, written as Parquet files of ``--docs-per-file`` documents (one
row group each, i.e. one tagging partition each). Building it is the only
thing not timed.

Speed: for each ``--workers`` count, in its own process: a fresh Dask
LocalCluster of that many single-threaded worker processes (``dask_client``,
as the CLI), then ``tag_documents`` (the whole ``nerbatch tag`` run: fingerprint,
plan, duplicate-id pass, read, tokenise, infer, write, commit) on the dump twice,
for two dates:

* *wall* = tokens / seconds of the whole process (interpreter start, imports,
  cluster start, TensorFlow import and model load in every worker, the first date);
* *warm* = tokens / seconds of the second date's ``tag_documents`` call on the
  same cluster: everything but start-up. **This is the number compared with
  the targets** (>= 20,000 tokens/s for one worker; 2 workers >= 1.6x of 1).

The per-stage seconds (``TagSummary.stage_seconds``: read, tokenize, model,
write summed over the tasks; fingerprint on the driver) of the warm date give
the share of each stage; "other" is the part of the wall seconds no stage
counts (the duplicate-id pass, scheduling, commit).

Memory: ``nerbatch tag`` (the CLI, default workers) in its own process on the
first ``max(workers)`` files of the dump (1x) and on ``--memory-scale`` times
as many files (8x), peak RSS summed over the whole process tree (driver, nannies,
workers), sampled as ``benchmarks/_measure.py`` does. Target: 8x / 1x < 1.3.

Baseline: with ``--baseline OTHER_BUNDLE`` every speed run is also made with
the other bundle, on the same dump, right after the first bundle's (same
worker count): typically a bundle with pretrained vectors against one without.
Target: warm tokens/s per worker of BUNDLE >= 90% of the baseline's; the
workers' peak RSS of both is printed.

The machine may be shared: each measurement prints the load average before it
and the CPU other processes used during it (in cores, from system-wide CPU time
minus this benchmark's child processes); ``--repeats N`` keeps the fastest of N.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Measurement, measure  # noqa: E402

TARGET_ONE_WORKER = 20_000  # tokens/s, end to end, one single-threaded worker, warm
TARGET_TWO_WORKER_RATIO = 1.6  # 2 workers / 1 worker on a 2-core machine
TARGET_MEMORY_GROWTH = 1.3  # peak memory 8x dump / 1x dump: less than this
TARGET_BASELINE_RATIO = 0.9  # warm tokens/s of BUNDLE / of --baseline, per worker count
STAGES = ("fingerprint", "read", "tokenize", "model", "write")
SENTENCES_PER_DOC = (2, 6)  # inclusive range
DATES = ("2030-01-01", "2030-01-02")  # cold, warm


# -- the dump --------------------------------------------------------------------------------


def sentences_dir(data: Path | None, bundle: Path, workdir: Path) -> Path:
    """The sentence dataset to draw from: DATA (prepared now if raw), else the bundle's training data."""
    from nerbatch.batching import resolve_prepared

    if data is None:
        config = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
        data = Path(config.get("data", {}).get("sentences", ""))
        if not data.is_dir():
            sys.exit(f"give DATA: the bundle's training sentences ({data}) are not there")
        return data
    if data.is_dir():
        return resolve_prepared(data)[0]
    from nerbatch.cluster import dask_client
    from nerbatch.prepare import prepare_corpus

    out = workdir / "prepared"
    print(f"preparing {data} -> {out}", flush=True)
    with dask_client():
        prepare_corpus([str(data)], out)
    return out / "sentences"


def sentence_texts(sentences: Path) -> list[str]:
    """Every sentence of the dataset as raw text (detokenised once; documents reuse them)."""
    import pyarrow.dataset as ds
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    words = ds.dataset(str(sentences), format="parquet").to_table(columns=["words"]).column("words").to_pylist()
    detokenizer = TreebankWordDetokenizer()
    return [text for text in (detokenizer.detokenize(w) for w in words if w) if text.strip()]


def write_dump(texts: list[str], out: Path, *, docs: int, docs_per_file: int, seed: int = 0) -> list[Path]:
    """``docs`` documents (``doc_id``, ``text``) in Parquet files of ``docs_per_file`` rows, one row group each."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for first in range(0, docs, docs_per_file):
        n = min(docs_per_file, docs - first)
        counts = rng.integers(SENTENCES_PER_DOC[0], SENTENCES_PER_DOC[1] + 1, size=n)
        picks = rng.integers(0, len(texts), size=int(counts.sum()))
        bounds = np.concatenate([[0], np.cumsum(counts)])
        table = pa.table({
            "doc_id": [f"doc-{first + i:09d}" for i in range(n)],
            "text": [" ".join(texts[j] for j in picks[bounds[i]:bounds[i + 1]]) for i in range(n)],
        })
        path = out / f"docs-{first // docs_per_file:05d}.parquet"
        pq.write_table(table, path, row_group_size=n)
        files.append(path)
    return files


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Load:
    """What else ran on the machine during a measurement."""

    before: float  # 1-minute load average just before
    other_cores: float  # CPU seconds of processes not ours / wall seconds

    def __str__(self) -> str:
        return f"load avg {self.before:.2f} before; other processes used {self.other_cores:.2f} cores during"


def _busy_cpu_seconds() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for descendants, recursively
    return usage.ru_utime + usage.ru_stime


def measured(cmd: list[str]) -> tuple[Measurement, Load]:
    """``_measure.measure`` plus the load of other processes while it ran."""
    load = os.getloadavg()[0]
    busy, ours = _busy_cpu_seconds(), _children_cpu_seconds()
    m = measure(cmd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"})
    other = (_busy_cpu_seconds() - busy) - (_children_cpu_seconds() - ours)
    return m, Load(load, max(other, 0.0) / m.seconds)


def _worker_stats() -> tuple[float, int]:
    """CPU seconds (all threads) and peak RSS bytes of this worker process."""
    return time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(spec: dict) -> None:
    """In its own process: a fresh LocalCluster, ``tag_documents`` once per date; JSON on stdout."""
    from nerbatch.cluster import dask_client
    from nerbatch.tag import TagOptions, tag_documents

    runs = []
    with dask_client(n_workers=spec["workers"]) as client:
        for date in spec["dates"]:
            before, driver = client.run(_worker_stats), time.process_time()
            summary = tag_documents(spec["files"], spec["bundle"], spec["out"], TagOptions(date=dt.date.fromisoformat(date)))
            after = client.run(_worker_stats)
            run = summary.model_dump(include={"tokens", "documents", "sentences", "entities", "rejects", "seconds", "stage_seconds"})
            run["ended"] = time.time()
            run["driver_cpu"] = time.process_time() - driver
            run["worker_cpu"] = sum(after[w][0] - before[w][0] for w in after if w in before)
            run["worker_peak_rss"] = sorted(a[1] for a in after.values())
            runs.append(run)
    print("RESULT " + json.dumps({"runs": runs}))


@dataclass
class SpeedRun:
    workers: int
    process: Measurement
    load: Load
    started: float  # time.time() when the process was started
    runs: list[dict]  # one TagSummary (subset) plus CPU accounting per date: cold, warm

    @property
    def cold(self) -> dict:
        return self.runs[0]

    @property
    def warm(self) -> dict:
        return self.runs[-1]

    @property
    def wall_seconds(self) -> float:
        """From starting the process (interpreter, imports, cluster, workers' TensorFlow and model) to the end of the cold date."""
        return self.cold["ended"] - self.started

    @property
    def wall_tps(self) -> float:
        return self.cold["tokens"] / self.wall_seconds

    @property
    def warm_tps(self) -> float:
        return self.warm["tokens"] / self.warm["seconds"]

    @property
    def startup_seconds(self) -> float:
        """Wall to the end of the cold date minus the warm date's seconds: start-up plus first-date tracing."""
        return self.wall_seconds - self.warm["seconds"]


def speed_run(files: list[Path], bundle: Path, workers: int, out: Path) -> SpeedRun:
    shutil.rmtree(out, ignore_errors=True)
    spec = {"files": [str(f) for f in files], "bundle": str(bundle), "out": str(out), "workers": workers, "dates": list(DATES)}
    started = time.time()
    m, load = measured([sys.executable, __file__, "--child", json.dumps(spec)])
    lines = [line for line in m.stdout.splitlines() if line.startswith("RESULT ")]
    if m.returncode or not lines:
        sys.exit(f"the {workers}-worker run failed:\n{m.stdout[-5000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return SpeedRun(workers, m, load, started, json.loads(lines[-1].removeprefix("RESULT "))["runs"])


@dataclass
class MemoryRun:
    files: int
    tokens: int
    process: Measurement
    load: Load


def memory_run(files: list[Path], bundle: Path, workers: int, out: Path) -> MemoryRun:
    """The ``nerbatch tag`` CLI in its own process; peak RSS of its process tree."""
    shutil.rmtree(out, ignore_errors=True)
    nerbatch = str(Path(sys.executable).parent / "nerbatch")
    cmd = [nerbatch, "tag", *map(str, files), "--model", str(bundle), "--out", str(out), "--date", DATES[0],
           "--workers", str(workers), "--no-progress"]
    m, load = measured(cmd)
    if m.returncode:
        sys.exit(f"nerbatch tag failed:\n{m.stdout[-5000:]}")
    tokens = int(m.stdout.split(" sentences, ")[1].split(" tokens")[0].replace(",", ""))
    shutil.rmtree(out, ignore_errors=True)
    return MemoryRun(len(files), tokens, m, load)


# -- report ----------------------------------------------------------------------------------


def machine() -> str:
    return (f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPU(s); Python {platform.python_version()}; "
            f"load avg {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def print_speed(run: SpeedRun) -> None:
    warm, cold = run.warm, run.cold
    stages = warm["stage_seconds"]
    task_seconds = sum(stages.get(s, 0.0) for s in STAGES if s != "fingerprint")
    busy = task_seconds / (warm["seconds"] * run.workers)  # how much of the workers' wall time tasks ran
    print(f"\n{run.workers} worker(s): {warm['documents']:,} documents, {warm['sentences']:,} sentences, "
          f"{warm['tokens']:,} tokens, {warm['entities']:,} entities, {warm['rejects']} rejects per date")
    print(f"  {run.load}")
    print(f"  wall incl. start-up: {run.wall_seconds:7.1f}s -> {run.wall_tps:9,.0f} tokens/s  "
          f"(process start to end of the first date; the cold date's tag_documents {cold['seconds']:.1f}s; "
          f"start-up + first-call tracing ~{run.startup_seconds:.1f}s)")
    print(f"  warm (2nd date):     {warm['seconds']:7.1f}s -> {run.warm_tps:9,.0f} tokens/s  (tag_documents on the running cluster)")
    print(f"  CPU of the warm date: workers {warm['worker_cpu']:.1f}s ({warm['tokens'] / warm['worker_cpu']:,.0f} tokens per "
          f"worker-CPU-second), driver + scheduler {warm['driver_cpu']:.1f}s")
    print("  stage shares (task seconds summed over partitions; wall clock, so waits for a busy CPU count too): "
          + ", ".join(f"{s} {100 * stages.get(s, 0.0) / task_seconds:.1f}%" for s in STAGES if s != "fingerprint"))
    print(f"  tasks kept the workers busy {100 * busy:.0f}% of the warm wall; driver fingerprint "
          f"{stages.get('fingerprint', 0.0):.2f}s; the rest (duplicate-id pass, scheduling, commit) "
          f"~{warm['seconds'] - stages.get('fingerprint', 0.0) - task_seconds / run.workers:.1f}s")
    print(f"  worker peak RSS (MiB): {', '.join(f'{p / 2**20:.0f}' for p in warm['worker_peak_rss'])}; "
          f"whole process tree peak {run.process.peak_mib:,.0f} MiB")


def baseline_rows(speed: dict[int, SpeedRun], baseline: dict[int, SpeedRun]) -> list[tuple[str, ...]]:
    """Per worker count: this bundle's warm tokens/s over the baseline bundle's, and both workers' peak RSS."""
    rows = []
    for workers in sorted(set(speed) & set(baseline)):
        mine, other = speed[workers], baseline[workers]
        ratio = mine.warm_tps / other.warm_tps
        rows.append((f"{workers} worker(s), warm: bundle / baseline tokens/s", f"{ratio:.2f}x", f">= {TARGET_BASELINE_RATIO}x",
                     _yes(ratio >= TARGET_BASELINE_RATIO), f"{_others(mine)} / {_others(other)}"))
        rss = [f"{max(run.warm['worker_peak_rss']) / 2**20:,.0f}" for run in (mine, other)]
        rows.append((f"{workers} worker(s), worker peak RSS MiB: bundle / baseline", " / ".join(rss), "(reported)", "-", "n/a"))
    return rows


def summary_rows(speed: dict[int, SpeedRun], memory: list[MemoryRun], scale: int) -> list[tuple[str, ...]]:
    """``(what, measured, target, holds, other processes' cores during the measurement)`` rows."""
    rows = []
    if 1 in speed:
        one = speed[1]
        tps = one.warm_tps
        rows.append(("1 worker, warm, tokens/s", f"{tps:,.0f}", f">= {TARGET_ONE_WORKER:,}", _yes(tps >= TARGET_ONE_WORKER), _others(one)))
        rows.append(("1 worker, wall incl. start-up, tokens/s", f"{one.wall_tps:,.0f}", "(reported)", "-", _others(one)))
        cpu = one.warm["tokens"] / one.warm["worker_cpu"]
        rows.append(("1 worker, warm, tokens per worker-CPU-s", f"{cpu:,.0f}", "(reported)", "-", "n/a"))
    if 1 in speed and 2 in speed:
        two = speed[2]
        ratio = two.warm_tps / speed[1].warm_tps
        others = f"{_others(speed[1])} / {_others(two)}"
        rows.append(("2 workers, warm, tokens/s", f"{two.warm_tps:,.0f}", "(reported)", "-", _others(two)))
        rows.append(("2 / 1 workers, warm", f"{ratio:.2f}x", f">= {TARGET_TWO_WORKER_RATIO}x", _yes(ratio >= TARGET_TWO_WORKER_RATIO), others))
        rows.append(("2 / 1 workers, wall incl. start-up", f"{two.wall_tps / speed[1].wall_tps:.2f}x", "(reported)", "-", others))
    if len(memory) == 2:
        growth = memory[1].process.peak_mib / memory[0].process.peak_mib
        rows.append((f"peak memory (process tree) {scale}x / 1x dump", f"{growth:.2f}x", f"< {TARGET_MEMORY_GROWTH}x",
                     _yes(growth < TARGET_MEMORY_GROWTH), f"{memory[0].load.other_cores:.2f} / {memory[1].load.other_cores:.2f}"))
    return rows


def _others(run: SpeedRun) -> str:
    return f"{run.load.other_cores:.2f}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def print_summary(rows: list[tuple[str, ...]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'summary':<{width}}  {'measured':>9}  {'target':>10}  holds  other processes (cores)")
    for what, value, target, holds, others in rows:
        print(f"{what:<{width}}  {value:>9}  {target:>10}  {holds:<5}  {others}")
    print(f"(the targets are judged on the warm numbers; this machine has {os.cpu_count()} cores, and CPU that other "
          "processes took during a measurement is CPU the run did not have)")


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="a model bundle directory")
    parser.add_argument("data", type=Path, nargs="?", help="a `prepare` output dir (or its sentences/) or a raw corpus file")
    parser.add_argument("--docs", type=int, default=32_000, help="documents in the speed dump")
    parser.add_argument("--docs-per-file", type=int, default=2_000, help="documents per Parquet file (= per partition)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    parser.add_argument("--memory-scale", type=int, default=8, help="the large memory dump has this many times the files")
    parser.add_argument("--repeats", type=int, default=1, help="run each speed configuration N times, keep the fastest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="work dir (dump, outputs); default: a temporary one, removed")
    parser.add_argument("--skip", nargs="*", default=[], choices=["speed", "memory"])
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another bundle (e.g. without pretrained vectors) timed on the same dump after each speed run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(json.loads(sys.argv[2]))
    args = parse_args(argv)
    bundle = args.bundle.absolute()
    workdir = args.out or Path(tempfile.mkdtemp(prefix="nerbatch-tag-speed-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    try:
        base = max(args.workers)
        docs = max(args.docs, base * args.memory_scale * args.docs_per_file) if "memory" not in args.skip else args.docs
        started = time.perf_counter()
        source = sentences_dir(args.data, bundle, workdir)
        files = write_dump(sentence_texts(source), workdir / "dump", docs=docs, docs_per_file=args.docs_per_file, seed=args.seed)
        print(f"dump: {docs:,} documents in {len(files)} files of {args.docs_per_file:,} from {source} "
              f"({time.perf_counter() - started:.1f}s to build, not timed)", flush=True)
        bundles = {"bundle": bundle, **({"baseline": args.baseline.absolute()} if args.baseline else {})}
        speed: dict[str, dict[int, SpeedRun]] = {name: {} for name in bundles}
        if "speed" not in args.skip:
            speed_files = files[: -(-args.docs // args.docs_per_file)]
            for workers in args.workers:
                for name, path in bundles.items():
                    runs = []
                    for attempt in range(args.repeats):
                        run = speed_run(speed_files, path, workers, workdir / "tagged")
                        print(f"[{name} {path.name}, {workers} worker(s), run {attempt + 1}] warm {run.warm_tps:,.0f} "
                              f"tokens/s, wall incl. start-up {run.wall_tps:,.0f} tokens/s; {run.load}", flush=True)
                        runs.append(run)
                    speed[name][workers] = max(runs, key=lambda r: r.warm_tps)
                    print(f"\n[{name}: {path}]")
                    print_speed(speed[name][workers])
        memory: list[MemoryRun] = []
        if "memory" not in args.skip:
            for n in (base, base * args.memory_scale):
                run = memory_run(files[:n], bundle, base, workdir / "tagged")
                memory.append(run)
                print(f"\nmemory, {n} files ({run.tokens:,} tokens), `nerbatch tag --workers {base}`: "
                      f"peak {run.process.peak_mib:,.0f} MiB (whole process tree), {run.process.seconds:.1f}s; {run.load}",
                      flush=True)
        print(f"\nmachine: {machine()}")
        rows = summary_rows(speed["bundle"], memory, args.memory_scale)
        if args.baseline:
            rows += baseline_rows(speed["bundle"], speed["baseline"])
        if rows:
            print_summary(rows)
    finally:
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
