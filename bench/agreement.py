"""Agreement of likelihood attribution with outcome ablation in a store where both ran
(`shardscope run`, `shardscope ablate`, `shardscope attribute` on the same episodes): per
model and pooled, the Spearman rank correlation of the two influences over the model · scaffold
x task x shard x mode cells, the cells whose outcome influence is not 0, the sign agreement
where the outcome interval excludes 0, and the rank correlation with the trajectory change;
then the same pooled over tasks, for shard names measured on two or more tasks.

    python bench/agreement.py --db store.duckdb --suite arithmetic
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shardscope.analysis.agreement import Agreement, agreement, pooled_agreement
from shardscope.analysis.compare import ablation_detail
from shardscope.analysis.influence import excluded_note
from shardscope.tracer.queries.attributions import stored_attributions
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store


def line(label: str, found: Agreement) -> str:
    return (f"{label}: {found.cells} cells ({found.nonzero} with a nonzero {found.outcome_value}); "
            f"Spearman {found.spearman:.3f} (p = {found.p_value:.3g}); significant outcome cells "
            f"{found.significant}, same sign {found.same_sign}; Spearman with the trajectory "
            f"change {found.trajectory_spearman:.3f} ({found.trajectory_cells} cells)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--suite", action="append", required=True)
    args = parser.parse_args()
    store = Store(args.db)
    influence, pairs = ablation_detail(store, Selection(suites=tuple(args.suite)))
    rows = stored_attributions(store, suites=args.suite)
    print(line("all models", agreement(rows, influence)))
    pooled = pooled_agreement(rows, pairs)
    if pooled is not None:
        print(line("all models, pooled over tasks by shard name", pooled))
    note = excluded_note(influence)
    if note:
        print(note)
    for model in sorted(rows.model.unique()):
        print(line(model, agreement(rows[rows.model == model], influence[influence.model == model])))
        pooled = pooled_agreement(rows[rows.model == model], pairs[pairs.model == model] if len(pairs) else pairs)
        if pooled is not None:
            print(line(f"{model}, pooled", pooled))
    return 0


if __name__ == "__main__":
    sys.exit(main())
