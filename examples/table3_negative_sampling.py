"""Table 3 of the VBKGC paper: negative sampling strategies for VBKGC, and for TransE as a reference.

Rows: normal (``basic``), Bernoulli, twins, NSCaching (:mod:`pykeen_vbkgc.nscaching`, at the reference code's
settings) and NoSampling (:mod:`pykeen_vbkgc.nosampling`, the non-sampling loss over all entities). Writes
``table3_<dataset>.{md,csv,json}`` into ``--output``::

    python examples/table3_negative_sampling.py --dataset wn9 --data-dir ../shared/data/wn9 --output results/table3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from common import Setting, add_common_arguments, prepare, run_settings, transe, vbkgc, write_table

from pykeen_vbkgc.allocator import keep_freed_memory

#: the strategies: name -> (row label, PyKEEN negative sampler or None, further Setting fields)
STRATEGIES = {
    "normal": ("Normal", "basic", {}),
    "bernoulli": ("Bernoulli", "bernoulli", {}),
    "twins": ("Twins", "twins", {}),
    "nscaching": ("NSCaching", "nscaching", {}),
    "nosampling": ("NoSampling", None, dict(training_loop="nosampling", loss="nosampling")),
}
#: NoSampling's square loss needs targets on the scale of the model's scores (docs/nosampling.md): 0 for positives and
#: about the mean score of the initialised model for the others; TransE as NS-KGE's (squared L2, so decomposed)
NOSAMPLING = {
    "vbkgc": dict(loss_kwargs=dict(negative_weight=1e-3, positive_target=0.0, negative_target=-9.0)),
    "transe": dict(
        loss_kwargs=dict(negative_weight=1e-3, positive_target=0.0, negative_target=-3.0),
        model_kwargs=dict(scoring_fct_norm=2, power_norm=True),
    ),
}
#: the strategies that apply to TransE (twins needs two embeddings per entity)
TRANSE_STRATEGIES = ("normal", "nscaching", "nosampling")


def settings(names: Sequence[str], models: Sequence[str] = ("vbkgc",)) -> list[Setting]:
    """Return each model with each of the given strategies (TransE only with those that apply to it)."""
    rows = []
    for model in models:
        for name in names:
            label, sampler, fields = STRATEGIES[name]
            if model == "vbkgc":
                setting = vbkgc(label)
            elif name in TRANSE_STRATEGIES:
                setting = transe(f"TransE+{label}")
            else:
                continue
            if name == "nosampling":
                fields = {**fields, **NOSAMPLING[model]}
            rows.append(Setting(**{**vars(setting), "negative_sampler": sampler, **fields}))
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Run Table 3 and write it; return the written paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_output="results/table3")
    parser.add_argument(
        "--samplers", nargs="+", choices=list(STRATEGIES), default=list(STRATEGIES), help="rows to run (default: all)"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=["vbkgc", "transe"],
        default=["vbkgc", "transe"],
        help="VBKGC, and TransE as a reference (with normal, NSCaching and NoSampling only)",
    )
    args = parser.parse_args(argv)
    experiment = prepare(args)
    rows = run_settings(settings(args.samplers, args.models), experiment)
    return write_table(
        rows,
        experiment,
        name=f"table3_{experiment.dataset_name}",
        title=f"Table 3: negative sampling for VBKGC on {experiment.dataset_name}",
        paper_key=f"table3/{experiment.dataset_name}",
    )


if __name__ == "__main__":
    # the script owns its process: freed memory stays in it for reuse (fewer page faults per batch)
    keep_freed_memory()
    main()
