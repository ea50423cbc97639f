"""The linear probe behind au_probe.py: cross-validated logistic regression, its table and chart.

One classifier for every route, so the routes differ only in their features: standardize (fit on
the training folds only, inside a Pipeline), then multinomial LogisticRegression with balanced
class weights and a fixed random_state. Folds are leave-one-group-out when groups are given
(e.g. one actor per fold: no person is seen in training and test), else stratified k-fold.
Accuracy and macro-F1 are computed on the pooled out-of-fold predictions; the per-fold figures
give the spread (std with ddof=0).
"""
from __future__ import annotations

import io
from collections import Counter
from typing import Mapping, Sequence

import numpy as np
from tqdm import tqdm

from my_affectgpt.common.atomic import atomic_write_bytes
from my_affectgpt.common.errors import InputError

MAX_ITER = 5000   # lbfgs on 400-d standardized text features needs more than the default 100
N_SPLITS = 5


def make_classifier(seed: int = 0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    # lbfgs optimizes the multinomial loss for 3+ classes (scikit-learn >= 1.5 has no multi_class).
    return Pipeline([("scale", StandardScaler()),
                     ("logreg", LogisticRegression(C=1.0, solver="lbfgs", max_iter=MAX_ITER,
                                                   class_weight="balanced", random_state=seed))])


def chance_levels(labels: Sequence[str]) -> dict:
    """`chance` is the majority-class share (what always answering that class scores)."""
    counts = Counter(labels)
    n = len(labels)
    return {"chance": max(counts.values()) / n, "uniform": 1.0 / len(counts),
            "class_counts": dict(sorted(counts.items()))}


def make_folds(labels: Sequence[str], groups: Sequence[str] | None, seed: int = 0) -> tuple[list, dict]:
    """[(train_idx, test_idx, group | None)] and a description of the scheme.

    The folds are computed once and shared by every route, so routes see the same splits.
    """
    y = np.asarray(labels)
    if groups is not None:
        from sklearn.model_selection import LeaveOneGroupOut

        g = np.asarray(groups)
        if len(set(g)) < 2:
            raise InputError("--group-column", f"leave-one-group-out needs at least 2 groups, got {len(set(g))}")
        folds = [(tr, te, str(g[te][0])) for tr, te in LeaveOneGroupOut().split(y, y, g)]
        for tr, _, group in folds:
            if len(set(y[tr])) < 2:
                raise InputError("--group-column", f"without group {group!r} the training folds hold one class only")
        return folds, {"scheme": "leave-one-group-out", "n_folds": len(folds)}
    from sklearn.model_selection import StratifiedKFold

    smallest, label = min((c, lab) for lab, c in Counter(labels).items())
    if smallest < 2:
        raise InputError("labels", f"class {label!r} has {smallest} usable video; stratified folds "
                                   "need at least 2 per class")
    k = min(N_SPLITS, smallest)
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = [(tr, te, None) for tr, te in skf.split(y, y)]
    return folds, {"scheme": f"stratified {k}-fold (shuffled)", "n_folds": k, "seed": seed}


def _spread(values: Sequence[float]) -> dict:
    return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}


def cross_validate(X: np.ndarray, labels: Sequence[str], folds: list, seed: int = 0,
                   bar: tqdm | None = None) -> dict:
    """Scores of one route: pooled accuracy / macro-F1, per-fold scores and their spread, confusion."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y = np.asarray(labels)
    classes = sorted(set(labels))
    pred = np.empty_like(y)
    fold_rows = []
    warned = []
    for tr, te, group in folds:
        clf = make_classifier(seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf.fit(X[tr], y[tr])
        warned += [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        pred[te] = clf.predict(X[te])
        row = {"accuracy": round(float(accuracy_score(y[te], pred[te])), 4),
               "macro_f1": round(float(f1_score(y[te], pred[te], average="macro", zero_division=0)), 4),
               "n": int(len(te))}
        if group is not None:
            row["group"] = group
        fold_rows.append(row)
        if bar is not None:
            bar.update(1)
    matrix = confusion_matrix(y, pred, labels=classes)
    return {"accuracy": round(float(accuracy_score(y, pred)), 4),
            "macro_f1": round(float(f1_score(y, pred, average="macro", labels=classes, zero_division=0)), 4),
            "n": int(len(y)), "dim": int(X.shape[1]),
            "fold_accuracy": _spread([r["accuracy"] for r in fold_rows]),
            "fold_macro_f1": _spread([r["macro_f1"] for r in fold_rows]),
            "folds": fold_rows,
            "confusion": {"labels": classes, "matrix": matrix.tolist()},
            "converged": not warned}


def format_table(report: Mapping) -> str:
    """The compact table printed after a run (also the one in bench/RESULTS.md)."""
    head = f"{'route':<11} {'n':>4} {'dim':>4}  {'accuracy':>8}  {'macro-F1':>8}  {'fold acc (mean±std)':>19}  {'fold F1 (mean±std)':>18}"
    lines = [head, "-" * len(head)]
    for name, r in report["routes"].items():
        fa, ff = r["fold_accuracy"], r["fold_macro_f1"]
        lines.append(f"{name:<11} {r['n']:>4} {r['dim']:>4}  {r['accuracy']:>8.3f}  {r['macro_f1']:>8.3f}  "
                     f"{fa['mean']:>11.3f} ± {fa['std']:.3f}  {ff['mean']:>10.3f} ± {ff['std']:.3f}")
    for name, reason in report["skipped"]["routes"].items():
        lines.append(f"{name:<11} skipped: {reason}")
    s = report["settings"]
    lines.append(f"chance (majority share) {report['chance']:.3f}; uniform 1/{len(s['class_counts'])} = "
                 f"{s['chance_uniform']:.3f}; folds: {s['cv']['scheme']}, {s['cv']['n_folds']} folds")
    return "\n".join(lines)


def plot_report(report: Mapping, out) -> None:
    """Bar chart: accuracy and macro-F1 per route, fold std as error bars, chance as a line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(report["routes"])
    x = np.arange(len(names))
    width = 0.38
    fig = Figure(figsize=(max(4.5, 1.5 * len(names) + 2), 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for k, (key, spread, label) in enumerate((("accuracy", "fold_accuracy", "accuracy"),
                                              ("macro_f1", "fold_macro_f1", "macro-F1"))):
        heights = [report["routes"][n][key] for n in names]
        errors = [report["routes"][n][spread]["std"] for n in names]
        bars = ax.bar(x + (k - 0.5) * width, heights, width, yerr=errors, capsize=3, label=label)
        for b, h, e in zip(bars, heights, errors):
            ax.annotate(f"{h:.2f}", (b.get_x() + b.get_width() / 2, h + e), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.axhline(report["chance"], color="black", ls="--", lw=1, label=f"chance ({report['chance']:.2f})")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.25)  # headroom for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("score (error bars: fold std)")
    ax.set_title(f"AU probe: n={report['n']}, {report['settings']['cv']['scheme']}", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", ncol=3, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(out, buf.getvalue())
