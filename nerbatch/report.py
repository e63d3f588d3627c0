"""Human-readable training report: PNG plots and a Markdown summary.

matplotlib is imported inside the plotting functions and used through
``matplotlib.figure.Figure`` only (never ``pyplot``): PNGs are rendered by the
Agg canvas, so importing or calling this module needs no display and does not
switch the process-wide matplotlib backend.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nerbatch.evaluate import Calibration, EntityConfusion, EntityScores, TypeScores

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LEARNING_CURVES_PNG = "learning_curves.png"
PER_TYPE_F1_PNG = "per_type_f1.png"
CONFUSION_PNG = "confusion.png"
RELIABILITY_PNG = "reliability.png"
REPORT_MD = "report.md"

_DPI = 110


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_learning_curves(history: Sequence[Mapping[str, float]], path: str | Path) -> Path:
    """Per-epoch training loss (left) and validation P/R/F1 (right) as a PNG.

    ``history``: one dict per epoch with ``epoch`` and any of ``loss``,
    ``val_loss``, ``val_precision``, ``val_recall``, ``val_f1``. The epoch of
    the best ``val_f1`` is marked. Raises ``ValueError`` on an empty history.
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    epochs = [row["epoch"] for row in history]
    fig = _new_figure(10, 4)
    loss_ax, val_ax = fig.subplots(1, 2)

    for key, label in (("loss", "training loss"), ("val_loss", "validation loss")):
        if any(key in row for row in history):
            values = [row.get(key, math.nan) for row in history]
            loss_ax.plot(epochs, values, marker="o", label=label)
    loss_ax.set(title="Loss", xlabel="epoch", ylabel="loss")
    if loss_ax.has_data():
        loss_ax.legend()

    for key, label in (("val_precision", "precision"), ("val_recall", "recall"), ("val_f1", "F1")):
        if any(key in row for row in history):
            values = [row.get(key, math.nan) for row in history]
            val_ax.plot(epochs, values, marker="o", label=label)
    best = _best_epoch(history)
    if best is not None:
        val_ax.axvline(best["epoch"], color="grey", linestyle="--", linewidth=1)
        val_ax.annotate(
            f"best F1 {best['val_f1']:.4f}\n(epoch {best['epoch']})",
            xy=(best["epoch"], best["val_f1"]),
            xytext=(5, -30),
            textcoords="offset points",
            fontsize=8,
        )
    val_ax.set(title="Validation (entity level)", xlabel="epoch", ylabel="score", ylim=(0, 1.02))
    if val_ax.has_data():
        val_ax.legend(loc="lower right")
    return _save(fig, path)


def _best_epoch(history: Sequence[Mapping[str, float]]) -> Mapping[str, float] | None:
    rows = [row for row in history if "val_f1" in row]
    return max(rows, key=lambda row: row["val_f1"]) if rows else None


def plot_per_type_f1(scores: EntityScores, path: str | Path) -> Path:
    """Horizontal bar chart of F1 per entity type (label: F1 and support), as a PNG.

    Types are ordered by support, largest on top; a dashed line marks micro F1.
    """
    items = sorted(scores.per_type.items(), key=lambda kv: (-kv[1].support, kv[0]))
    fig = _new_figure(7, max(2.5, 1.2 + 0.45 * len(items)))
    ax = fig.subplots()
    if not items:
        ax.text(0.5, 0.5, "no entities in gold or prediction", ha="center", transform=ax.transAxes)
    names = [name for name, _ in items]
    f1s = [s.f1 for _, s in items]
    bars = ax.barh(range(len(items)), f1s, color="tab:blue")
    ax.set_yticks(range(len(items)), names)
    ax.invert_yaxis()
    for bar, (_, s) in zip(bars, items):
        # Inside the bar when there is room, else just right of it.
        inside = bar.get_width() > 0.3
        ax.text(
            bar.get_width() - 0.01 if inside else bar.get_width() + 0.01,
            bar.get_y() + bar.get_height() / 2,
            f"{s.f1:.3f} (n={s.support})",
            va="center",
            ha="right" if inside else "left",
            color="white" if inside else "black",
            fontsize=8,
        )
    ax.axvline(scores.f1, color="tab:red", linestyle="--", linewidth=1)
    title = f"Entity F1 per type (dashed line: micro F1 {scores.f1:.4f})"
    ax.set(xlim=(0, 1), xlabel="F1", title=title)
    return _save(fig, path)


def plot_confusion(confusion: EntityConfusion, path: str | Path) -> Path:
    """Heatmap of the entity-type confusion table with the counts written in, as a PNG.

    Rows: gold type (+ ``spurious``); columns: predicted type (+ ``missed``).
    """
    counts = confusion.counts
    n_rows, n_cols = counts.shape
    fig = _new_figure(2.5 + 0.8 * n_cols, 2.0 + 0.6 * n_rows)
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues", aspect="auto", vmin=0)
    fig.colorbar(image, ax=ax, label="entities")
    ax.set_xticks(range(n_cols), confusion.column_labels, rotation=45, ha="right")
    ax.set_yticks(range(n_rows), confusion.row_labels)
    ax.set(xlabel="predicted", ylabel="gold", title="Entity-type confusion (same span)")
    threshold = counts.max() / 2 if counts.size else 0
    for r in range(n_rows):
        for c in range(n_cols):
            ax.text(
                c, r, str(int(counts[r, c])),
                ha="center", va="center", fontsize=8,
                color="white" if counts[r, c] > threshold else "black",
            )  # fmt: skip
    return _save(fig, path)


def plot_reliability(calibration: Calibration, path: str | Path) -> Path:
    """Reliability diagram (accuracy per bin against the diagonal) over bin counts, as a PNG."""
    edges = calibration.bin_edges
    lowers, widths = edges[:-1], [hi - lo for lo, hi in zip(edges[:-1], edges[1:])]
    filled = [i for i, n in enumerate(calibration.bin_count) if n > 0]
    fig = _new_figure(6, 6.5)
    rel_ax, count_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    rel_ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="perfect calibration")
    rel_ax.bar(
        [lowers[i] for i in filled],
        [calibration.bin_accuracy[i] for i in filled],
        width=[widths[i] for i in filled],
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    rel_ax.plot(
        [calibration.bin_confidence[i] for i in filled],
        [calibration.bin_accuracy[i] for i in filled],
        "o",
        color="tab:red",
        label="(mean confidence, accuracy)",
    )
    rel_ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        ylabel="fraction correct",
        title=f"Entity confidence reliability (ECE {calibration.ece:.4f}, n={calibration.n})",
    )
    rel_ax.legend(loc="upper left", fontsize=8)
    count_ax.bar(
        lowers, calibration.bin_count, width=widths, align="edge", edgecolor="black", color="tab:grey"
    )
    count_ax.set(xlabel="confidence", ylabel="entities")
    return _save(fig, path)


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------


def _num(x: float) -> str:
    """How every score is written in the report."""
    return f"{x:.4f}"


def _prf(scores: EntityScores | TypeScores) -> list[str]:
    return [_num(scores.precision), _num(scores.recall), _num(scores.f1)]


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _headline_section(test: EntityScores, validation: EntityScores) -> list[str]:
    return [
        "## Headline: test set, entity level",
        "",
        f"**Entity F1 {_num(test.f1)}** — precision {_num(test.precision)}, "
        f"recall {_num(test.recall)} (micro average; an entity counts only with exact "
        f"span and type; chunk rules `{test.mode}`"
        + (f", scheme `{test.scheme}`" if test.mode == "strict" else "")
        + ").",
        "",
        f"{test.n_correct} of {test.n_predicted} predicted entities are correct; the test set "
        f"has {test.n_gold} gold entities in {test.n_sentences} sentences "
        f"({test.n_tokens} tokens).",
        "",
        *_table(
            ["split", "precision", "recall", "F1", "macro F1", "gold entities", "sentences"],
            [
                [name, *_prf(s), _num(s.macro_f1), s.n_gold, s.n_sentences]
                for name, s in (("test", test), ("validation", validation))
            ],
        ),
        "",
    ]


def _per_type_section(test: EntityScores, figure: str) -> list[str]:
    rows = [[name, *_prf(s), s.support, s.n_predicted] for name, s in test.per_type.items()]
    macro = [_num(test.macro_precision), _num(test.macro_recall), _num(test.macro_f1)]
    rows.append(["**micro avg**", *_prf(test), test.n_gold, test.n_predicted])
    rows.append(["macro avg", *macro, test.n_gold, test.n_predicted])
    return [
        "## Per-type scores (test)",
        "",
        "Support = number of gold entities of the type. The macro average weighs every "
        "type equally, including types that were only predicted.",
        "",
        *_table(["type", "precision", "recall", "F1", "support", "predicted"], rows),
        "",
        f"![Entity F1 per type]({figure})",
        "",
    ]


def _token_accuracy_section(test: EntityScores) -> list[str]:
    return [
        "## Token accuracy (for comparison only)",
        "",
        f"- token accuracy: {_num(test.token_accuracy)} over {test.n_tokens} real tokens",
        f"- token accuracy without tokens whose gold and predicted tags are both O: "
        f"{_num(test.token_accuracy_non_o)} over {test.n_tokens_non_o} tokens",
        "",
        "Token accuracy is shown only for comparison; it is not the headline. It is computed "
        "over real tokens and excludes padding. An accuracy that counts O tokens and padding "
        'positions — the tutorial\'s "99% accuracy" — is misleading: most tokens are O (and '
        "padding is trivially right), so a tagger that finds no entity at all can score near "
        "99%. Judge the model by entity F1.",
        "",
    ]


def _confusion_section(confusion: EntityConfusion, figure: str) -> list[str]:
    rows = [
        [label, *(int(n) for n in row)]
        for label, row in zip(confusion.row_labels, confusion.counts)
    ]
    return [
        "## Entity-type confusion (test)",
        "",
        "Rows: gold type; columns: the type predicted on exactly the same span. `missed`: no "
        "predicted entity on the gold span; `spurious`: a predicted entity on a span with no "
        "gold entity (a boundary error counts as one missed plus one spurious).",
        "",
        *_table(["gold \\ predicted", *confusion.column_labels], rows),
        "",
        f"![Entity-type confusion]({figure})",
        "",
    ]


def _calibration_section(calibration: Calibration, figure: str) -> list[str]:
    rows = [
        [_num(t.threshold), t.n_kept, _num(t.precision), _num(t.recall), _num(t.f1)]
        for t in calibration.thresholds
    ]
    return [
        "## Confidence calibration (test)",
        "",
        f"Expected calibration error (ECE): **{_num(calibration.ece)}** over {calibration.n} "
        f"predicted entities in {len(calibration.bin_count)} equal-width bins (count-weighted "
        "mean of |accuracy − mean confidence|; an entity is correct on an exact span and "
        "type match).",
        "",
        "Keeping only entities with confidence ≥ threshold:",
        "",
        *_table(["threshold", "entities kept", "precision", "recall", "F1"], rows),
        "",
        f"![Reliability diagram]({figure})",
        "",
    ]


def _learning_section(history: Sequence[Mapping[str, float]], figure: str | None) -> list[str]:
    if not history:
        return ["## Learning curves", "", "No training history was given.", ""]
    columns = ("loss", "val_precision", "val_recall", "val_f1", "seconds")
    keys = [k for k in columns if any(k in row for row in history)]
    rows = [[row["epoch"], *(_num(row[k]) if k in row else "" for k in keys)] for row in history]
    best = _best_epoch(history)
    lines = ["## Learning curves", ""]
    if best is not None:
        lines += [f"Best validation F1 {_num(best['val_f1'])} at epoch {best['epoch']}.", ""]
    lines += [*_table(["epoch", *keys], rows), "", f"![Learning curves]({figure})", ""]
    return lines


def _mapping_section(title: str, values: Mapping[str, Any]) -> list[str]:
    rows = [[key, values[key]] for key in sorted(values)]
    return [f"## {title}", "", *_table(["name", "value"], rows, align="ll"), ""]


def write_report(
    out_dir: str | Path,
    *,
    history: Sequence[Mapping[str, float]],
    validation: EntityScores,
    test: EntityScores,
    confusion: EntityConfusion,
    calibration: Calibration,
    config: Mapping[str, Any],
    model_version: str,
    dataset_summary: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``report.md`` and its PNGs into ``out_dir``; return the path of ``report.md``.

    ``history``: per-epoch dicts (see ``plot_learning_curves``; may be empty,
    then no learning-curve PNG is written). ``validation`` / ``test``: from
    ``score_entities``; ``confusion`` and ``calibration``: of the test set.
    ``config``: every hyper-parameter. The test entity scores come first.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = plot_learning_curves(history, out / LEARNING_CURVES_PNG).name if history else None
    per_type = plot_per_type_f1(test, out / PER_TYPE_F1_PNG).name
    confusion_png = plot_confusion(confusion, out / CONFUSION_PNG).name
    reliability = plot_reliability(calibration, out / RELIABILITY_PNG).name

    lines = [f"# Training report — model `{model_version}`", ""]
    lines += _headline_section(test, validation)
    lines += _per_type_section(test, per_type)
    lines += _token_accuracy_section(test)
    lines += _confusion_section(confusion, confusion_png)
    lines += _calibration_section(calibration, reliability)
    lines += _learning_section(history, curves)
    lines += _mapping_section("Hyper-parameters", config)
    if dataset_summary is not None:
        lines += _mapping_section("Dataset", dataset_summary)
    path = out / REPORT_MD
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
