"""Shared helpers of the paper-experiment examples: datasets, features, settings, training, evaluation, tables.

Every example script (``table2_link_prediction.py``, ``table3_negative_sampling.py``, ``table4_ablation.py``,
``figure2_negatives.py``, ``figure3_inference_time.py``) builds a list of :class:`Setting` rows, trains each one
with PyKEEN's :func:`~pykeen.pipeline.pipeline` under one :class:`Budget`, evaluates it with PyKEEN's
:class:`~pykeen.evaluation.RankBasedEvaluator` (filtered ranks, both sides) and writes the rows as Markdown, CSV
and JSON with :func:`write_table`.

Model mapping (see docs/results.md):

- ``TransE``: PyKEEN's :class:`~pykeen.models.TransE` (L1 distance, entities constrained to unit L2 norm,
  relations free), same dimension, negatives, loss and budget as VBKGC.
- ``IKRL-style``: IKRL (Xie et al., 2017) scores a triple with the four TransE energies SS, SI, IS, II over a
  structural and an image-based entity representation (a projection of image features), trained with a pairwise
  margin loss and normal negatives. That is our ``vbkgc`` model with ``score_terms="ss,mm,sm,ms"``, the basic
  sampler and PyKEEN's pairwise ``marginranking`` loss; the features are the same (text) features as VBKGC's,
  IKRL's attention over several images per entity is not reproduced.
- ``VBKGC+Normal`` / ``VBKGC+Twins``: ``vbkgc`` with all five terms and the ``basic`` / ``twins`` sampler.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from pykeen.datasets import get_dataset
from pykeen.datasets.base import Dataset
from pykeen.pipeline import pipeline

import pykeen_vbkgc  # noqa: F401  (registers the model, sampler, loss and datasets)
from pykeen_vbkgc.cli import quiet_library_logs
from pykeen_vbkgc.defaults import BEST, preset_for
from pykeen_vbkgc.digests import input_digests
from pykeen_vbkgc.replacing import replacing
from pykeen_vbkgc.staging import OutputError, check_writable_directory
from pykeen_vbkgc.validation import FLOAT32_TINY, MAX_COUNT, MAX_SEED, check_float32

__all__ = [
    "DATASETS",
    "PAPER",
    "Budget",
    "Experiment",
    "Setting",
    "add_common_arguments",
    "ikrl",
    "prepare",
    "run_settings",
    "transe",
    "vbkgc",
    "write_table",
]

logger = logging.getLogger(__name__)

#: the datasets the examples accept
DATASETS = ("wn9", "fb15k237multimodal", "multimodaldemo", "nations")
#: the environment variables that point at a dataset's directory (see docs/datasets.md)
DATA_DIR_ENV = {"wn9": "PYKEEN_VBKGC_WN9_DIR", "fb15k237multimodal": "PYKEEN_VBKGC_FB15K237_DIR"}
#: where the encoded MiniLM features are expected if --features is not given (see docs/results.md)
DEFAULT_FEATURES = {
    "wn9": Path("results/features/wn9.minilm.safetensors"),
    "fb15k237multimodal": Path("results/features/fb15k237.minilm.safetensors"),
}
#: the metrics in every table: filtered, realistic ranks, both sides
METRICS = {
    "mrr": "inverse_harmonic_mean_rank",
    "hits@1": "hits_at_1",
    "hits@3": "hits_at_3",
    "hits@10": "hits_at_10",
}
#: the columns of a result row, in table order
COLUMNS = (
    "setting",
    "model",
    "sampler",
    "k",
    *METRICS,
    "head_mrr",
    "tail_mrr",
    "epochs",
    "train_seconds",
    "inference_seconds",
    "evaluation_seconds",
    "self_top1",
)

#: the paper's numbers (Tables 2-4), for the side-by-side in the Markdown tables
PAPER: Mapping[str, Mapping[str, Mapping[str, float]]] = {
    "table2/wn9": {
        "TransE": {"mrr": 0.766, "hits@10": 0.912, "hits@3": 0.885, "hits@1": 0.641},
        "IKRL-style": {"mrr": 0.433, "hits@10": 0.938, "hits@3": 0.849, "hits@1": 0.011},
        "VBKGC+Normal": {"mrr": 0.749, "hits@10": 0.919, "hits@3": 0.901, "hits@1": 0.592},
        "VBKGC+Twins": {"mrr": 0.857, "hits@10": 0.922, "hits@3": 0.904, "hits@1": 0.803},
    },
    "table2/fb15k237multimodal": {
        "TransE": {"mrr": 0.261, "hits@10": 0.437, "hits@3": 0.291, "hits@1": 0.173},
        "IKRL-style": {"mrr": 0.268, "hits@10": 0.449, "hits@3": 0.301, "hits@1": 0.177},
        "VBKGC+Normal": {"mrr": 0.299, "hits@10": 0.477, "hits@3": 0.331, "hits@1": 0.210},
        "VBKGC+Twins": {"mrr": 0.301, "hits@10": 0.478, "hits@3": 0.332, "hits@1": 0.213},
    },
    "table3/wn9": {
        "Normal": {"mrr": 0.749, "hits@10": 0.919, "hits@3": 0.901, "hits@1": 0.592},
        "NSCaching": {"mrr": 0.725, "hits@10": 0.868, "hits@3": 0.804, "hits@1": 0.630},
        "NoSampling": {"mrr": 0.426, "hits@10": 0.662, "hits@3": 0.492, "hits@1": 0.306},
        "Twins": {"mrr": 0.857, "hits@10": 0.922, "hits@3": 0.904, "hits@1": 0.803},
    },
    "table4/fb15k237multimodal": {
        "VBKGC": {"mrr": 0.299, "hits@10": 0.477, "hits@3": 0.331, "hits@1": 0.210},
        "S1: w/o VisualBERT": {"mrr": 0.226, "hits@10": 0.409, "hits@3": 0.261, "hits@1": 0.132},
        "S2: only F_ss": {"mrr": 0.147, "hits@10": 0.242, "hits@3": 0.153, "hits@1": 0.097},
        "S3: only F_all": {"mrr": 0.261, "hits@10": 0.435, "hits@3": 0.293, "hits@1": 0.173},
        "S4: only F_ss + F_mm": {"mrr": 0.251, "hits@10": 0.407, "hits@3": 0.273, "hits@1": 0.174},
        "S5: only F_sm + F_ms": {"mrr": 0.285, "hits@10": 0.464, "hits@3": 0.317, "hits@1": 0.195},
        "S6: only 1 negative": {"mrr": 0.269, "hits@10": 0.436, "hits@3": 0.297, "hits@1": 0.184},
    },
}


@dataclasses.dataclass
class Budget:
    """The training budget shared by all rows of one experiment (same for every model).

    The VBKGC settings default to :data:`pykeen_vbkgc.defaults.BEST` (see docs/results.md).
    """

    #: the number of training epochs
    epochs: int = 100
    #: the training batch size (positives per batch)
    batch_size: int = BEST.batch_size
    #: the number of negatives per positive, k
    num_negatives: int = BEST.num_negatives
    #: Adam's learning rate
    learning_rate: float = BEST.learning_rate
    #: the margin of the VBKGC-type models (a sum of up to five TransE terms)
    margin: float = BEST.margin
    #: the margin of TransE (a single TransE term)
    transe_margin: float = 12.0
    #: VBKGC's projection_lr_scale
    projection_lr_scale: float = BEST.projection_lr_scale
    #: the norm p of VBKGC's TransE terms (TransE keeps PyKEEN's L1)
    vbkgc_p: int = BEST.scoring_fct_norm
    #: whether VBKGC also L2-normalises its relation vectors
    vbkgc_normalize_relations: bool = BEST.normalize_relations
    #: the random seed
    seed: int = 0
    #: the batch size of the evaluation
    evaluation_batch_size: int = 256
    #: evaluate on the validation split instead of the test split
    validation: bool = False
    #: evaluate on a random subset of this many evaluation triples (None: all); for expensive datasets on CPU
    evaluation_subset: int | None = None


#: the budgets used for the full-size runs of docs/results.md; --quick uses QUICK_BUDGET
DEFAULT_BUDGETS: Mapping[str, Budget] = {
    "wn9": Budget(epochs=20),
    "fb15k237multimodal": Budget(epochs=2, batch_size=4096, evaluation_subset=2000),
    "multimodaldemo": Budget(epochs=50, batch_size=256),
    "nations": Budget(epochs=50, batch_size=256),
}
QUICK_BUDGET = Budget(epochs=1, batch_size=256, evaluation_batch_size=256)


@dataclasses.dataclass
class Setting:
    """One row of a table: a model, its keyword arguments and its negative sampler."""

    #: the row label, e.g. "VBKGC+Twins"
    label: str
    #: the PyKEEN model name
    model: str
    #: model keyword arguments besides the embedding dimension (and VBKGC's features)
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the negative sampler name (None for a training loop without negatives)
    negative_sampler: str | None = "basic"
    #: the loss name
    loss: str = "meanmarginranking"
    #: the loss's keyword arguments (None: the budget's margin)
    loss_kwargs: dict[str, Any] | None = None
    #: the PyKEEN training loop name
    training_loop: str = "slcwa"
    #: overrides the budget's number of negatives
    num_negatives: int | None = None
    #: use random features (ablation S1) even if features are available
    random_features: bool = False


def transe(label: str = "TransE") -> Setting:
    """Return PyKEEN's TransE with L1 distance (its default) as a setting."""
    return Setting(label=label, model="TransE", model_kwargs=dict(scoring_fct_norm=1))


def vbkgc(label: str, sampler: str = "twins", **model_kwargs: Any) -> Setting:
    """Return a VBKGC setting; ``model_kwargs`` go to :class:`pykeen_vbkgc.VBKGC` (e.g. ``score_terms``)."""
    random_features = model_kwargs.pop("random_features", False)
    num_negatives = model_kwargs.pop("num_negatives", None)
    return Setting(
        label=label,
        model="vbkgc",
        model_kwargs=model_kwargs,
        negative_sampler=sampler,
        num_negatives=num_negatives,
        random_features=random_features,
    )


def ikrl(label: str = "IKRL-style") -> Setting:
    """Return the IKRL-style baseline: four TransE energies (SS, SI, IS, II), pairwise margin loss, normal negatives."""
    setting = vbkgc(label, sampler="basic", score_terms="ss,mm,sm,ms")
    setting.loss = "marginranking"
    return setting


@dataclasses.dataclass
class Experiment:
    """What an example script needs: the dataset, its features, the budget and where to write."""

    dataset_name: str
    #: None if nothing is trained (e.g., a figure drawn from a written table)
    dataset: Dataset | None
    features: Path | None
    budget: Budget
    output: Path
    quick: bool
    #: a folder of finished rows, by configuration; rows are reused across scripts (e.g. Table 2's VBKGC+Normal is
    #: Table 3's Normal and Table 4's VBKGC); None disables it
    cache: Path | None = None


def positive_int(text: str) -> int:
    """An argparse type: an integer from 1 to :data:`~pykeen_vbkgc.validation.MAX_COUNT`."""
    value = int(text)
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_COUNT}, got {value}")
    return value


def _float_type(minimum: float) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            return check_float32("value", float(text), minimum=minimum)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


#: argparse types: numbers the models can use in float32 (a margin, a learning rate, W's learning-rate scale)
non_negative_float = _float_type(0.0)
positive_float = _float_type(FLOAT32_TINY)


def seed(text: str) -> int:
    """An argparse type: a seed NumPy's generator takes."""
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_SEED}, got {value}")
    return value


def existing_file(text: str) -> Path:
    """An argparse type: a file that exists."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {path}")
    return path


def output_directory(text: str) -> Path:
    """An argparse type: a directory that exists or can be made, and written (checked before any training)."""
    path = Path(text)
    try:
        check_writable_directory(path)
    except OutputError as error:
        raise argparse.ArgumentTypeError(str(error).rstrip(".")) from None
    return path


def add_common_arguments(parser: argparse.ArgumentParser, default_output: str) -> argparse.ArgumentParser:
    """Add the options every example script shares."""
    parser.add_argument("--dataset", choices=DATASETS, help="the dataset (default: wn9; multimodaldemo with --quick)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the dataset directory (default: $PYKEEN_VBKGC_WN9_DIR / $PYKEEN_VBKGC_FB15K237_DIR, else the cache)",
    )
    parser.add_argument(
        "--features",
        type=existing_file,
        help="a features file (default: the dataset's own, else results/features/<dataset>.minilm.safetensors; "
        "random features if none exists)",
    )
    parser.add_argument(
        "--epochs", type=positive_int, help="training epochs (default: per dataset, see DEFAULT_BUDGETS)"
    )
    parser.add_argument("--batch-size", type=positive_int, help="training batch size (default: per dataset)")
    parser.add_argument("--num-negatives", type=positive_int, help="negatives per positive k (default: 16)")
    parser.add_argument("--learning-rate", type=positive_float, help="Adam learning rate (default: per dataset)")
    parser.add_argument(
        "--margin", type=non_negative_float, help="margin of the VBKGC-type models (default: per dataset)"
    )
    parser.add_argument("--transe-margin", type=non_negative_float, help="margin of TransE (default: per dataset)")
    parser.add_argument(
        "--projection-lr-scale",
        type=positive_float,
        help="factor on the learning rate of VBKGC's projection W (default: 1e-3, see docs/results.md)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--validation", action="store_true", help="evaluate on the validation split, not test")
    parser.add_argument(
        "--evaluation-subset",
        type=positive_int,
        help="evaluate on a fixed random subset of this many test triples (default: all; filtering still uses all)",
    )
    parser.add_argument(
        "--normalize-relations",
        action=argparse.BooleanOptionalAction,
        help="whether VBKGC L2-normalises its relation vectors too (OpenKE's norm_flag; default: per dataset)",
    )
    parser.add_argument("--vbkgc-p", type=int, choices=[1, 2], help="norm p of VBKGC's terms (default: per dataset)")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--output", type=output_directory, default=default_output, help="output folder (%(default)s)")
    parser.add_argument(
        "--cache",
        type=output_directory,
        help="reuse rows of identical configurations (model, sampler, k, budget, dataset, the contents of its training "
        "triples and features file; for VBKGC also the dataset's preset) across runs and scripts from this folder, "
        "e.g. results/cache (default: off)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: a couple of epochs on multimodaldemo (unless --dataset is given explicitly), seconds",
    )
    return parser


def prepare(args: argparse.Namespace, load: bool = True) -> Experiment:
    """Turn parsed arguments into an :class:`Experiment`: load the dataset, find features, set the budget.

    :param args: the parsed arguments of :func:`add_common_arguments`
    :param load: whether to load the dataset and look for features (not needed if nothing is trained)
    :return: the experiment
    """
    quiet_library_logs()
    if not logger.handlers:
        # the examples' progress as plain lines on stderr, not as "WARNING:common: ..."
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset_name = args.dataset or ("multimodaldemo" if args.quick else "wn9")
    base = QUICK_BUDGET if args.quick else DEFAULT_BUDGETS[dataset_name]
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "num_negatives": args.num_negatives,
        "learning_rate": args.learning_rate,
        "margin": args.margin,
        "transe_margin": args.transe_margin,
        "projection_lr_scale": args.projection_lr_scale,
        "vbkgc_p": args.vbkgc_p,
        "vbkgc_normalize_relations": args.normalize_relations,
        "evaluation_subset": args.evaluation_subset,
    }
    budget = dataclasses.replace(
        base,
        seed=args.seed,
        validation=args.validation,
        **{key: value for key, value in overrides.items() if value is not None},
    )
    dataset = load_dataset(dataset_name, args.data_dir) if load else None
    return Experiment(
        dataset_name=dataset_name,
        dataset=dataset,
        features=find_features(dataset_name, dataset, args.features) if load else args.features,
        budget=budget,
        output=args.output,
        quick=args.quick,
        cache=args.cache,
    )


def load_dataset(name: str, directory: Path | None = None) -> Dataset:
    """Load a dataset by name; the multimodal ones from ``directory`` or their environment variable."""
    kwargs: dict[str, Any] = {}
    if directory is not None:
        kwargs["directory"] = directory
    elif name in DATA_DIR_ENV and os.environ.get(DATA_DIR_ENV[name]):
        kwargs["directory"] = Path(os.environ[DATA_DIR_ENV[name]])
    return get_dataset(dataset=name, dataset_kwargs=kwargs)


def find_features(name: str, dataset: Dataset, features: Path | None) -> Path | None:
    """Return the features file to use: explicit, the dataset's own, the default results path, or None (random)."""
    if features is not None:
        if not features.is_file():
            raise FileNotFoundError(f"Features file not found: {features}")
        return features
    if getattr(dataset, "has_features", False):
        return dataset.features_path
    default = DEFAULT_FEATURES.get(name)
    if default is not None and default.is_file():
        return default
    logger.warning(f"Warning: no features for {name}: VBKGC rows use random features (ablation S1).")
    return None


def _model_kwargs(setting: Setting, experiment: Experiment) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(embedding_dim=BEST.embedding_dim, **setting.model_kwargs)
    if setting.model == "vbkgc":
        budget = experiment.budget
        kwargs.setdefault("projection_lr_scale", budget.projection_lr_scale)
        kwargs.setdefault("scoring_fct_norm", budget.vbkgc_p)
        kwargs.setdefault("normalize_relations", budget.vbkgc_normalize_relations)
        if setting.random_features or experiment.features is None:
            kwargs["features"] = "random"
            # random features of VisualBERT's width, or the width of the features they replace
            kwargs.setdefault("feature_dim", 64 if experiment.dataset_name == "nations" else 768)
        else:
            kwargs["features"] = experiment.features
    return kwargs


def _cache_path(setting: Setting, experiment: Experiment) -> Path | None:
    if experiment.cache is None:
        return None
    setting_key = {
        **dataclasses.asdict(setting),
        "label": None,
        "num_negatives": setting.num_negatives or experiment.budget.num_negatives,
    }
    # fields added later leave the keys of the rows cached before them unchanged while they keep their defaults
    for name in ("loss_kwargs", "training_loop"):
        if setting_key[name] == _SETTING_DEFAULTS[name]:
            del setting_key[name]
    key = dict(
        setting=setting_key,
        budget=dataclasses.asdict(experiment.budget),
        dataset=experiment.dataset_name,
        features=str(experiment.features),
    )
    if experiment.dataset is not None:
        # the contents, too: a graph or features file rewritten at the same path is another input
        key.update(input_digests(experiment.dataset.training, experiment.features))
    if setting.model == "vbkgc" and experiment.dataset is not None:
        # the dataset's preset fills in what the row leaves out (term weights, the vote, ...): a changed preset is
        # another configuration, not a cached row
        key["preset"] = dataclasses.asdict(preset_for(experiment.dataset.training))
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return experiment.cache / f"{experiment.dataset_name}-{digest}.json"


_SETTING_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Setting)}


def run_setting(setting: Setting, experiment: Experiment) -> dict[str, Any]:
    """Train and evaluate one setting (or reuse its cached row); return its result row (see :data:`COLUMNS`)."""
    cache = _cache_path(setting, experiment)
    if cache is not None and cache.is_file():
        try:
            row = json.loads(cache.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            logger.warning(f"{cache} is not a readable row (damaged by hand?); training {setting.label} again")
        else:
            logger.info(f"Reusing {cache} for {setting.label}")
            return {**row, "setting": setting.label}
    row = _run_setting(setting, experiment)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        # whole or not at all: an interrupted write must not leave a row that later runs would read
        with replacing(cache) as temporary:
            temporary.write_text(json.dumps(row, indent=2) + "\n")
    return row


def _run_setting(setting: Setting, experiment: Experiment) -> dict[str, Any]:
    budget = experiment.budget
    dataset = experiment.dataset
    num_negatives = budget.num_negatives if setting.num_negatives is None else setting.num_negatives
    margin = budget.transe_margin if setting.model.lower() == "transe" else budget.margin
    evaluation_triples = dataset.validation if budget.validation else dataset.testing
    if budget.evaluation_subset is not None and budget.evaluation_subset < evaluation_triples.num_triples:
        generator = torch.Generator().manual_seed(0)
        keep = torch.randperm(evaluation_triples.num_triples, generator=generator)[: budget.evaluation_subset]
        evaluation_triples = evaluation_triples.clone_and_exchange_triples(evaluation_triples.mapped_triples[keep])
    sampler_kwargs: dict[str, Any] = {}
    if setting.negative_sampler is not None:
        sampler_kwargs.update(
            negative_sampler=setting.negative_sampler,
            negative_sampler_kwargs=dict(num_negs_per_pos=num_negatives, filtered=True),
        )
    logger.info(f"Training {setting.label} on {experiment.dataset_name} ({budget.epochs} epochs)")
    result = pipeline(
        training=dataset.training,
        validation=dataset.validation,
        testing=evaluation_triples,
        model=setting.model,
        model_kwargs=_model_kwargs(setting, experiment),
        training_loop=setting.training_loop,
        **sampler_kwargs,
        loss=setting.loss,
        loss_kwargs=dict(margin=margin) if setting.loss_kwargs is None else setting.loss_kwargs,
        optimizer="adam",
        optimizer_kwargs=dict(lr=budget.learning_rate),
        training_kwargs=dict(num_epochs=budget.epochs, batch_size=budget.batch_size, use_tqdm=False),
        evaluator="rankbased",
        evaluator_kwargs=dict(filtered=True),
        evaluation_kwargs=dict(
            batch_size=budget.evaluation_batch_size,
            use_tqdm=False,
            additional_filter_triples=[
                dataset.training.mapped_triples,
                dataset.validation.mapped_triples,
                dataset.testing.mapped_triples,
            ],
        ),
        random_seed=budget.seed,
        device="cpu",
    )
    row: dict[str, Any] = dict(
        setting=setting.label,
        model=setting.model,
        sampler=setting.negative_sampler or setting.training_loop,
        k=num_negatives if setting.negative_sampler is not None else None,
    )
    for column, metric in METRICS.items():
        row[column] = result.metric_results.get_metric(f"both.realistic.{metric}")
    row["head_mrr"] = result.metric_results.get_metric(f"head.realistic.{METRICS['mrr']}")
    row["tail_mrr"] = result.metric_results.get_metric(f"tail.realistic.{METRICS['mrr']}")
    row["epochs"] = budget.epochs
    row["train_seconds"] = result.train_seconds
    row["inference_seconds"] = time_inference(result.model, evaluation_triples.mapped_triples, budget)
    row["evaluation_seconds"] = result.evaluate_seconds
    row["self_top1"] = self_top1(result.model, evaluation_triples.mapped_triples, budget.evaluation_batch_size)
    logger.info(f"{setting.label}: MRR {row['mrr']:.3f}, Hits@1 {row['hits@1']:.3f} ({row['train_seconds']:.0f} s)")
    return row


@torch.no_grad()
def time_inference(model: torch.nn.Module, triples: torch.Tensor, budget: Budget) -> float:
    """Return the seconds to score every test triple against all entities, both sides (after a warm-up)."""
    model.eval()
    batch_size = budget.evaluation_batch_size

    def score_all() -> None:
        for batch in triples.split(batch_size):
            model.score_t(batch[:, :2])
            model.score_h(batch[:, 1:])

    # warm-up: one full untimed pass, so that every kernel (both sides, every batch shape, including the last and
    # smaller one) is compiled and cached before the clock runs; a single call warmed up only one of them
    score_all()
    start = time.perf_counter()
    score_all()
    return time.perf_counter() - start


@torch.no_grad()
def self_top1(model: torch.nn.Module, triples: torch.Tensor, batch_size: int) -> float:
    """Return the fraction of (head and tail) queries whose top-ranked candidate is the query entity itself.

    The self-candidate ``(h, r, h)`` is never a known triple, so filtering keeps it; for a translational model it
    scores minus the norm of the relation vector in each term, whatever the entity (docs/results.md, "Accuracy
    diagnosis").
    """
    model.eval()
    hits = 0
    for batch in triples.split(batch_size):
        hits += int((model.score_t(batch[:, :2]).argmax(dim=1) == batch[:, 0]).sum())
        hits += int((model.score_h(batch[:, 1:]).argmax(dim=1) == batch[:, 2]).sum())
    return hits / (2 * triples.shape[0])


def run_settings(settings: Iterable[Setting], experiment: Experiment) -> list[dict[str, Any]]:
    """Run several settings one after the other."""
    return [run_setting(setting, experiment) for setting in settings]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Format rows as a Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines.extend("| " + " | ".join(_format(row.get(column, "")) for column in columns) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def write_table(
    rows: Sequence[Mapping[str, Any]],
    experiment: Experiment,
    name: str,
    title: str,
    columns: Sequence[str] = COLUMNS,
    paper_key: str | None = None,
) -> dict[str, Path]:
    """Write rows as ``<name>.md``, ``<name>.csv`` and ``<name>.json`` into the experiment's output folder.

    :param rows: the result rows
    :param experiment: the experiment (its output folder, dataset and budget are recorded)
    :param name: the file stem
    :param title: the Markdown heading
    :param columns: the columns of the Markdown and CSV tables (JSON keeps every key)
    :param paper_key: a key of :data:`PAPER`; its numbers are appended as a second table
    :return: the paths, by suffix
    """
    output = experiment.output
    output.mkdir(parents=True, exist_ok=True)
    paths = {suffix: output / f"{name}.{suffix}" for suffix in ("md", "csv", "json")}
    split = "validation" if experiment.budget.validation else "test"
    features = experiment.features or "random (no features file)"
    text = [
        f"# {title}\n",
        f"Dataset `{experiment.dataset_name}` ({split} split, filtered ranks, both sides), features: `{features}`, "
        f"budget: `{dataclasses.asdict(experiment.budget)}`, torch threads: {torch.get_num_threads()}, "
        f"machine: {platform.machine()} ({os.cpu_count()} CPUs), date: {time.strftime('%Y-%m-%d %H:%M')}.\n",
        markdown_table(rows, columns),
    ]
    if paper_key is not None and paper_key in PAPER:
        paper_rows = [dict(setting=label, **values) for label, values in PAPER[paper_key].items()]
        text.append(f"\nThe paper's numbers ({paper_key}):\n\n")
        text.append(markdown_table(paper_rows, ["setting", *METRICS]))
    with replacing(paths["md"]) as temporary:
        temporary.write_text("\n".join(text))
    with replacing(paths["csv"]) as temporary, temporary.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    metadata = dict(
        dataset=experiment.dataset_name,
        split=split,
        features=str(experiment.features) if experiment.features else None,
        budget=dataclasses.asdict(experiment.budget),
        rows=list(rows),
    )
    with replacing(paths["json"]) as temporary:
        temporary.write_text(json.dumps(metadata, indent=2) + "\n")
    print(paths["md"].read_text())  # noqa: T201
    return paths


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Read the rows of a JSON file written by :func:`write_table`."""
    return json.loads(path.read_text())["rows"]


def new_figure():
    """Start a headless matplotlib figure in the examples' size; return ``(figure, axis)``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(figsize=(5.5, 4))


def save_figure(figure, axis, path: Path) -> Path:
    """Add the grid, lay out, save as PNG and close; return the path."""
    from matplotlib import pyplot as plt

    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
