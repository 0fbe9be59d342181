"""Run a matrix of :mod:`benchmarks.pipeline_run` configurations side by side, each under one wall-clock budget.

Made for a lent GPU machine (many CPU cores, one GPU): the per-batch cost of both models is host-side, so several
processes share the GPU well. Each row is one ``pipeline_run.py`` call; the rows and their labels are in
:data:`MATRICES`, so that docs/results.md can name the exact configuration of every number::

    python benchmarks/accuracy_matrix.py --matrix fb15k237 --data DIR --budget 300 --workers 10 --output OUT.jsonl

A row stops training after the first epoch that ends past ``--budget`` seconds (or at its epoch cap), then is
evaluated on the full test split (filtered); the number of epochs trained is recorded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pykeen_vbkgc.defaults import BEST, FB15K237_PRESET  # noqa: E402

HERE = Path(__file__).resolve().parent


def text_terms(weight: float) -> str:
    """Return ``term_weights`` that weigh the four text terms ``weight`` each, next to the structural term's 1."""
    return f"mm={weight},sm={weight},ms={weight},all={weight}"


def nssa(margin: float, k: int, lr: float | None = None, model_kwargs: dict | None = None) -> dict:
    """Return pipeline keyword arguments for PyKEEN's self-adversarial loss with ``k`` negatives."""
    kwargs: dict = dict(
        loss="nssa",
        loss_kwargs=dict(margin=margin, adversarial_temperature=1.0),
        negative_sampler_kwargs=dict(num_negs_per_pos=k),
    )
    if lr is not None:
        kwargs.update(optimizer="adam", optimizer_kwargs=dict(lr=lr))
    if model_kwargs:
        kwargs.update(model_kwargs=model_kwargs)
    return kwargs


#: PyKEEN's TransE as issue 18 configured it on WN9: L1, margin 12, Eq. 15's loss, 16 filtered negatives
TRANSE_MARGIN = (
    "transe",
    "basic",
    dict(
        model_kwargs=dict(scoring_fct_norm=1, embedding_dim=128),
        loss="meanmarginranking",
        loss_kwargs=dict(margin=12.0),
        negative_sampler_kwargs=dict(num_negs_per_pos=16, filtered=True),
    ),
)

#: the best VBKGC configuration of the WN9 study (issue 10) without its learning rate: p 1, unit relations, text
#: terms weighted 0.03, margin 24, 16 filtered negatives
WN9_STUDY = dict(
    model_kwargs=dict(scoring_fct_norm=1, normalize_relations=True, term_weights=text_terms(0.03)),
    loss="meanmarginranking",
    loss_kwargs=dict(margin=24.0),
    negative_sampler_kwargs=dict(num_negs_per_pos=16, filtered=True),
)


#: the loss of the wn9 preset until 2026-12-05: Eq. 15's mean margin loss with margin 12
WN9_MMR12 = dict(loss="meanmarginranking", loss_kwargs=dict(margin=12.0))
#: the fb15k237 preset until 2026-12-05 (third session): the five terms averaged, free relations
AVERAGED_MODEL_KWARGS = dict(term_weights="mean", normalize_relations=False)
FB15K237_AVERAGED = dataclasses.replace(FB15K237_PRESET, **AVERAGED_MODEL_KWARGS)

#: what pipeline() users get from VBKGC with the dataset's preset (only the budget set), and its ablations: the normal
#: sampler, the structural term alone, random features; and the same with NSCaching's negatives
DEFAULTS_ROWS: dict[str, tuple[str, str, dict]] = {
    "vbkgc-defaults": ("vbkgc", "twins", {}),
    "vbkgc-normal-defaults": ("vbkgc", "basic", {}),
    "vbkgc-ss-defaults": ("vbkgc", "twins", dict(model_kwargs=dict(score_terms="ss"))),
    "vbkgc-random-defaults": ("vbkgc", "twins", dict(model_kwargs=dict(features="random"))),
    "vbkgc-nscaching-defaults": ("vbkgc", "nscaching", {}),
}

#: label -> (model, sampler, pipeline keyword arguments)
MATRICES: dict[str, dict[str, tuple[str, str, dict]]] = {
    "fb15k237": {
        **DEFAULTS_ROWS,
        "transe-nssa9-k64": ("transe", "basic", nssa(9, 64)),
        "transe-d128-nssa9-k64": ("transe", "basic", nssa(9, 64, model_kwargs=dict(embedding_dim=128))),
        "transe-nssa9-k64-lr1e-2": ("transe", "basic", nssa(9, 64, lr=1e-2)),
        "vbkgc-twins-nssa3-k64": ("vbkgc", "twins", nssa(3, 64)),
        "vbkgc-twins-nssa3-k64-lr1e-2": ("vbkgc", "twins", nssa(3, 64, lr=1e-2)),
        "vbkgc-normal-nssa3-k64-lr1e-2": ("vbkgc", "basic", nssa(3, 64, lr=1e-2)),
        "vbkgc-ss-nssa3-k64-lr1e-2": ("vbkgc", "twins", nssa(3, 64, lr=1e-2, model_kwargs=dict(score_terms="ss"))),
        "vbkgc-random-nssa3-k64-lr1e-2": (
            "vbkgc",
            "twins",
            nssa(3, 64, lr=1e-2, model_kwargs=dict(features="random")),
        ),
        "vbkgc-twins-nssa3-k256-lr1e-2": ("vbkgc", "twins", nssa(3, 256, lr=1e-2)),
        "vbkgc-twins-nssa4-k64-lr3e-3": ("vbkgc", "twins", nssa(4, 64, lr=3e-3)),
        # WN9's weighting (text terms 0.03 next to ss 1), which gains 0.08 MRR there with the same loss
        "vbkgc-twins-w0.03": (
            "vbkgc",
            "twins",
            dict(model_kwargs=dict(term_weights=text_terms(0.03))),
        ),
        "vbkgc-twins-w0.03-unit-relations": (
            "vbkgc",
            "twins",
            dict(model_kwargs=dict(term_weights=text_terms(0.03), normalize_relations=True)),
        ),
        # the defaults with the MiniLM features centred or whitened (benchmarks/transform_features.py writes the files)
        "vbkgc-centred-defaults": (
            "vbkgc",
            "twins",
            dict(model_kwargs=dict(features="results/features/fb15k237.minilm.centre.safetensors")),
        ),
        "vbkgc-whitened-defaults": (
            "vbkgc",
            "twins",
            dict(model_kwargs=dict(features="results/features/fb15k237.minilm.whiten.safetensors")),
        ),
        # the defaults rows with the preset until 2026-12-05 (fourth session): the five terms averaged, free relations
        **{
            f"{label}-averaged": (
                model,
                sampler,
                {**kwargs, "model_kwargs": {**kwargs.get("model_kwargs", {}), **AVERAGED_MODEL_KWARGS}},
            )
            for label, (model, sampler, kwargs) in DEFAULTS_ROWS.items()
        },
    },
    # the defaults question of issue 18 on WN9: every row at the pipeline's learning rate 1e-3 unless named
    "wn9": {
        # since 2026-12-04 (second session) the "defaults" rows get WN9's preset from the dataset
        **DEFAULTS_ROWS,
        "vbkgc-twins-nssa2-k64": ("vbkgc", "twins", nssa(2, 64)),
        "vbkgc-twins-nssa3-k64": ("vbkgc", "twins", nssa(3, 64)),
        "vbkgc-twins-nssa5-k64": ("vbkgc", "twins", nssa(5, 64)),
        "vbkgc-twins-nssa3-k64-w0.1": (
            "vbkgc",
            "twins",
            nssa(3, 64, model_kwargs=dict(term_weights=text_terms(0.1))),
        ),
        "vbkgc-twins-nssa3-k64-lr1e-2": ("vbkgc", "twins", nssa(3, 64, lr=1e-2)),
        "vbkgc-normal-nssa3-k64": ("vbkgc", "basic", nssa(3, 64)),
        "vbkgc-ss-nssa3-k64": ("vbkgc", "twins", nssa(3, 64, model_kwargs=dict(score_terms="ss"))),
        "vbkgc-twins-mmr10-k64": (
            "vbkgc",
            "twins",
            dict(loss_kwargs=dict(margin=10.0), negative_sampler_kwargs=dict(num_negs_per_pos=64)),
        ),
        "transe-nssa9-k64": ("transe", "basic", nssa(9, 64)),
        "transe-l1-m12-mmr-k16f": TRANSE_MARGIN,
        "vbkgc-twins-best-preset": ("vbkgc", "twins", BEST.pipeline_kwargs()),
        "vbkgc-twins-best-preset-w0.1": (
            "vbkgc",
            "twins",
            BEST.pipeline_kwargs(model_kwargs=dict(term_weights=text_terms(0.1))),
        ),
        "vbkgc-ss-best-preset": ("vbkgc", "twins", BEST.pipeline_kwargs(model_kwargs=dict(score_terms="ss"))),
        # the tuned WN9 configuration of the issue-10 study (docs/study/wn9-twins-best-config.json) at lr 1e-3
        "vbkgc-twins-wn9study-lr1e-3": ("vbkgc", "twins", WN9_STUDY),
        "vbkgc-twins-wn9study-lr1e-3-unfiltered": (
            "vbkgc",
            "twins",
            {**WN9_STUDY, "negative_sampler_kwargs": dict(num_negs_per_pos=16)},
        ),
        "vbkgc-twins-wn9study-lr1e-3-w0.01": (
            "vbkgc",
            "twins",
            {
                **WN9_STUDY,
                "model_kwargs": {**WN9_STUDY["model_kwargs"], "term_weights": text_terms(0.01)},
            },
        ),
        "vbkgc-twins-wn9study-lr1e-3-free-relations": (
            "vbkgc",
            "twins",
            {**WN9_STUDY, "model_kwargs": {**WN9_STUDY["model_kwargs"], "normalize_relations": False}},
        ),
        "vbkgc-twins-wn9study-lr1e-3-m12": ("vbkgc", "twins", {**WN9_STUDY, "loss_kwargs": dict(margin=12.0)}),
        "vbkgc-twins-wn9study-lr1e-3-m6": ("vbkgc", "twins", {**WN9_STUDY, "loss_kwargs": dict(margin=6.0)}),
        "vbkgc-twins-wn9study-lr1e-3-m12-free-relations": (
            "vbkgc",
            "twins",
            {
                **WN9_STUDY,
                "loss_kwargs": dict(margin=12.0),
                "model_kwargs": {**WN9_STUDY["model_kwargs"], "normalize_relations": False},
            },
        ),
        "vbkgc-twins-wn9study-lr1e-3-k64": (
            "vbkgc",
            "twins",
            {**WN9_STUDY, "negative_sampler_kwargs": dict(num_negs_per_pos=64, filtered=True)},
        ),
        "vbkgc-ss-wn9study-lr1e-3": (
            "vbkgc",
            "twins",
            {**WN9_STUDY, "model_kwargs": {**WN9_STUDY["model_kwargs"], "score_terms": "ss"}},
        ),
        "vbkgc-random-wn9study-lr1e-3": (
            "vbkgc",
            "twins",
            {**WN9_STUDY, "model_kwargs": {**WN9_STUDY["model_kwargs"], "features": "random"}},
        ),
        # 2026-12-05: does FB15k-237's preset of the day (five terms averaged, nssa 9, 64 negatives) let the text help?
        "vbkgc-twins-fbpreset": ("vbkgc", "twins", FB15K237_AVERAGED.pipeline_kwargs()),
        "vbkgc-ss-fbpreset": ("vbkgc", "twins", FB15K237_AVERAGED.pipeline_kwargs(model_kwargs=dict(score_terms="ss"))),
        # the same with unit relations (WN9's preset has them): free relations fall into the self-candidate trap
        "vbkgc-twins-fbpreset-unit-relations": (
            "vbkgc",
            "twins",
            FB15K237_AVERAGED.pipeline_kwargs(model_kwargs=dict(normalize_relations=True)),
        ),
        "vbkgc-ss-fbpreset-unit-relations": (
            "vbkgc",
            "twins",
            FB15K237_AVERAGED.pipeline_kwargs(model_kwargs=dict(score_terms="ss", normalize_relations=True)),
        ),
        # the wn9 preset of 2026-12-04 (mean margin loss, margin 12) with W learning at the full rate (on FB15k-237
        # that let the text terms follow the structure)
        "vbkgc-twins-wn9-W1": ("vbkgc", "twins", dict(model_kwargs=dict(projection_lr_scale=1.0), **WN9_MMR12)),
        "vbkgc-twins-wn9-W1-w0.1": (
            "vbkgc",
            "twins",
            dict(model_kwargs=dict(projection_lr_scale=1.0, term_weights=text_terms(0.1)), **WN9_MMR12),
        ),
        # the defaults rows with the wn9 preset of 2026-12-04, whose loss was the mean margin loss with margin 12
        **{
            f"{label}-mmr-margin12": (model, sampler, {**kwargs, **WN9_MMR12})
            for label, (model, sampler, kwargs) in DEFAULTS_ROWS.items()
        },
        # the wn9 preset's model with the loss of FB15k-237's (nssa margin 9, 64 negatives): the structural term
        # alone reached MRR 0.788 with it (vbkgc-ss-fbpreset-unit-relations)
        "vbkgc-twins-wn9-nssa9-k64": ("vbkgc", "twins", nssa(9, 64)),
        "vbkgc-ss-wn9-nssa9-k64": ("vbkgc", "twins", nssa(9, 64, model_kwargs=dict(score_terms="ss"))),
        # the same loss with pipeline()'s 16 negatives
        "vbkgc-twins-wn9-nssa9": (
            "vbkgc",
            "twins",
            dict(loss="nssa", loss_kwargs=dict(margin=9, adversarial_temperature=1.0)),
        ),
        # does the text's content count more when the text terms weigh more? The preset with its text terms weighted
        # 0.1, and 0.05 (between that and the preset's 0.03), each with the MiniLM features and with random ones
        **{
            f"vbkgc-{name}-wn9-nssa9-w{weight}": (
                "vbkgc",
                "twins",
                dict(loss="nssa", model_kwargs=dict(term_weights=text_terms(weight), **features)),
            )
            for weight in (0.1, 0.05)
            for name, features in (("twins", {}), ("random", dict(features="random")))
        },
        "transe-d128-nssa9-k64": ("transe", "basic", nssa(9, 64, model_kwargs=dict(embedding_dim=128))),
    },
    # the embedded demo (500 entities): how fast the defaults leave the self-candidate trap
    "demo": {
        "vbkgc-defaults": DEFAULTS_ROWS["vbkgc-defaults"],
        "vbkgc-lr1e-2": ("vbkgc", "twins", dict(optimizer="adam", optimizer_kwargs=dict(lr=1e-2))),
        "vbkgc-twins-nssa3-k64": ("vbkgc", "twins", nssa(3, 64)),
        "vbkgc-free-relations": ("vbkgc", "twins", dict(model_kwargs=dict(normalize_relations=False))),
        "transe-l1-m12-mmr-k16f": TRANSE_MARGIN,
    },
}


def run_row(label: str, row: tuple[str, str, dict], args: argparse.Namespace) -> int:
    """Run one row as a subprocess; its log goes next to the output."""
    model, sampler, kwargs = row
    if args.training_loop is not None:
        kwargs = {**kwargs, "training_loop": args.training_loop}
    command = [
        sys.executable,
        str(HERE / "pipeline_run.py"),
        "--dataset",
        args.dataset,
        *(["--data", str(args.data)] if args.data else []),
        "--model",
        model,
        "--sampler",
        sampler,
        "--epochs",
        str(args.max_epochs),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(args.seed),
        *(["--time-budget", str(args.budget)] if args.budget else []),
        "--label",
        label,
        "--kwargs",
        json.dumps(kwargs),
        "--output",
        str(args.output),
        *(["--save-weights", str(args.save_weights / f"{label}-seed{args.seed}.pt")] if args.save_weights else []),
    ]
    log = args.output.with_name(f"{args.output.stem}-{label}-seed{args.seed}.log")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    with log.open("w") as file:
        return subprocess.call(command, stdout=file, stderr=subprocess.STDOUT, env=env)


def main() -> None:
    """Run the selected rows of a matrix in parallel."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--matrix", choices=sorted(MATRICES), required=True)
    parser.add_argument("--dataset", default="fb15k237multimodal")
    parser.add_argument("--data", type=Path, help="the dataset directory (not for multimodaldemo)")
    parser.add_argument("--rows", nargs="*", help="labels to run (default: all)")
    parser.add_argument("--budget", type=float, help="training seconds per row (default: no limit)")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--training-loop", help="e.g. deviceslcwa (default: PyKEEN's sLCWA loop)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--save-weights", type=Path, help="a directory for each row's trained weights")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    args = parser.parse_args()
    matrix = MATRICES[args.matrix]
    rows = {label: matrix[label] for label in (args.rows or matrix)}
    if args.list:
        for label, row in rows.items():
            print(label, json.dumps(row))
        return
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.workers) as pool:
        codes = dict(zip(rows, pool.map(lambda item: run_row(*item, args), rows.items())))
    print(json.dumps(codes))


if __name__ == "__main__":
    main()
