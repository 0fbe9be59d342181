"""Profile a few training batches of TransE and VBKGC+twins with :mod:`torch.profiler` (CPU and, if present, CUDA).

Run::

    python benchmarks/profile_step.py --data ../shared/data/fb15k237 --output profile.txt
    python benchmarks/profile_step.py --embedding-dim 8 --feature-dim 8   # the per-batch overhead proxy on a CPU

Each batch is split into phases, marked with :func:`torch.profiler.record_function` and timed with the device
synchronised between them: ``data`` (the DataLoader: positive ids and negative sampling, on the host for PyKEEN's
sLCWA loop), ``forward`` (scores and loss, including the transfer of the batch to the device), ``backward`` and
``step`` (the optimizer and ``post_parameter_update``). On CUDA, ``torch.cuda.set_sync_debug_mode`` counts the
host-device synchronisations of each phase. The summary lists the phases and the top operators by self host time
and by self device time.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import torch
from pykeen.models import TransE
from pykeen.training import training_loop_resolver
from torch.profiler import ProfilerActivity, profile, record_function

import pykeen_vbkgc
from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, TwinsNegativeSampler

# registration may have been deferred (pykeen.models imported first, see pykeen_vbkgc.registration): finish it now
pykeen_vbkgc.register()

try:  # run as a script from the repository root, or imported by the tests
    from speed import DEFAULT_DATA, load
except ImportError:  # pragma: no cover
    from benchmarks.speed import DEFAULT_DATA, load

PHASES = ("data", "forward", "backward", "step")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _phase(name: str, device: torch.device, seconds: dict, syncs: Counter):
    """Time a phase (device synchronised at both ends) and count its host-device synchronisations."""
    _synchronize(device)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, record_function(name):
        warnings.simplefilter("always")
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
    _synchronize(device)
    seconds[name] += time.perf_counter() - start
    syncs[name] += sum("synchroniz" in str(warning.message) for warning in caught)


def train_step(loop, batch, phase=lambda name: contextlib.nullcontext()) -> None:
    """Train one batch as PyKEEN's loop does; ``phase(name)`` wraps its forward, backward and step phases."""
    model = loop.model
    with phase("forward"):
        size = loop._get_batch_size(batch)
        loss = loop._process_batch(batch=batch, start=0, stop=size)
    with phase("backward"):
        loss.backward()
        # as PyKEEN's _forward_pass: a finiteness check and the loss as a float, two syncs per batch
        if not torch.isfinite(loss):
            raise RuntimeError("non-finite loss")
        float(loss.item())
        model.post_forward_pass()
    with phase("step"):
        loop.optimizer.step()
        loop.optimizer.zero_grad(set_to_none=True)
        model.post_parameter_update()


def run_batches(loop, train, batch_size: int, num_batches: int, seconds: dict, syncs: Counter) -> None:
    """Run ``num_batches`` training batches of the loop, phase by phase, as PyKEEN's loop does."""
    model = loop.model
    model.train()
    loader = loop._create_training_data_loader(
        train, batch_size=batch_size, drop_last=False, sampler=None, shuffle=True, num_workers=0, pin_memory=False
    )
    batches = iter(loader)
    for _ in range(num_batches):
        with _phase("data", model.device, seconds, syncs):
            batch = next(batches)
        train_step(loop, batch, phase=lambda name: _phase(name, model.device, seconds, syncs))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the data, model and device arguments that :func:`make_models` reads."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with train/valid/test.txt")
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--feature-dim", type=int, default=768)
    parser.add_argument("--num-negatives", type=int, default=16)
    parser.add_argument(
        "--scoring-fct-norm", type=int, choices=(1, 2), default=1, help="VBKGC's distance (2 is the BEST preset's)"
    )
    parser.add_argument(
        "--term-weights", default=None, help="VBKGC's term weights, e.g. the FB15k-237 preset's (default: all 1)"
    )
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")


def make_models(train, args, device: torch.device, training_loop: str = "slcwa") -> dict:
    """Return the two benchmark models (as in ``speed.py``) with their sLCWA loops (PyKEEN's or ``deviceslcwa``)."""
    torch.manual_seed(0)
    transe = TransE(triples_factory=train, embedding_dim=args.embedding_dim, random_seed=0).to(device)
    vbkgc = VBKGC(
        triples_factory=train,
        features=torch.randn(train.num_entities, args.feature_dim),
        embedding_dim=args.embedding_dim,
        scoring_fct_norm=args.scoring_fct_norm,
        term_weights=args.term_weights,
        loss=MeanMarginRankingLoss(margin=6.0),
        random_seed=0,
    ).to(device)
    loops = {}
    for name, model, sampler in (("transe", transe, "basic"), ("vbkgc_twins", vbkgc, TwinsNegativeSampler)):
        loops[name] = training_loop_resolver.make(
            training_loop,
            model=model,
            triples_factory=train,
            optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
            negative_sampler=sampler,
            negative_sampler_kwargs=dict(num_negs_per_pos=args.num_negatives),
        )
    return loops


def summarise(name: str, prof, seconds: dict, syncs: Counter, num_batches: int, device: torch.device) -> str:
    """Format the phases and the top operators of one model."""
    total = sum(seconds.values())
    lines = [f"## {name}: {1000 * total / num_batches:.1f} ms per batch ({num_batches} batches, {device})", ""]
    lines.append("| phase | ms per batch | share | syncs per batch |")
    lines.append("| --- | ---: | ---: | ---: |")
    for phase in PHASES:
        lines.append(
            f"| {phase} | {1000 * seconds[phase] / num_batches:.2f} | {seconds[phase] / total:.0%} | "
            f"{syncs[phase] / num_batches:.1f} |"
        )
    lines.append("")
    averages = prof.key_averages()
    lines.append(f"Top operators by self host time ({name}):")
    lines.append("```")
    lines.append(averages.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60))
    lines.append("```")
    if device.type == "cuda":
        lines.append(f"Top operators by self device time ({name}):")
        lines.append("```")
        try:
            table = averages.table(sort_by="self_device_time_total", row_limit=15, max_name_column_width=60)
        except (AttributeError, KeyError):  # older torch
            table = averages.table(sort_by="self_cuda_time_total", row_limit=15, max_name_column_width=60)
        lines.append(table)
        lines.append("```")
    return "\n".join(lines)


def main() -> None:
    """Profile both models."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--warmup", type=int, default=5, help="batches before profiling (compilation, caches)")
    parser.add_argument("--batches", type=int, default=10, help="profiled batches per model")
    parser.add_argument(
        "--training-loops", nargs="+", default=["slcwa", "deviceslcwa"], help="slcwa (PyKEEN's) and/or deviceslcwa"
    )
    parser.add_argument("--output", type=Path, default=None, help="write the summary here (Markdown)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    train, _, _ = load(args.data)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    header = (
        f"# Training-step profile, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f", {torch.get_num_threads()} threads; d = {args.embedding_dim}, features {args.feature_dim}, "
        f"k = {args.num_negatives}, batch {args.batch_size}; {args.warmup} warm-up batches, then {args.batches}.\n"
    )
    sections = [header]
    runs = {}
    for training_loop in args.training_loops:
        for name, loop in make_models(train, args, device, training_loop).items():
            runs[f"{name}, {training_loop}"] = loop
    for name, loop in runs.items():
        scratch_seconds, scratch_syncs = defaultdict(float), Counter()
        run_batches(loop, train, args.batch_size, args.warmup, scratch_seconds, scratch_syncs)
        seconds, syncs = defaultdict(float), Counter()
        with profile(activities=activities) as prof:
            run_batches(loop, train, args.batch_size, args.batches, seconds, syncs)
        sections.append(summarise(name, prof, seconds, syncs, args.batches, device))
        print(sections[-1], flush=True)
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text("\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
