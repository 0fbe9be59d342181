"""Count the operators of a training batch on the accelerators' path, on the CPU: a proxy for CUDA kernel launches.

On a GPU, a batch of these models is bound by the host (launching kernels, Python), not by arithmetic
(docs/gpu.md). The number of operators that would launch a kernel is the same on any device, so it can be counted
here: TransE and VBKGC+twins (the models of ``speed.py`` and ``profile_step.py``) train with the ``deviceslcwa`` loop
(or, with ``--training-loop slcwa``, PyKEEN's) on the path that VBKGC takes on accelerators
(``kernels._DENSE_ON_CPU``, nothing compiled, as on CUDA by default), and a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` counts every operator from the second batch on (the first one
includes PyKEEN's sub-batch size search). Views and other metadata operators launch nothing and are listed apart.
Adam runs its multi-tensor (``foreach``) update, as by default on CUDA.

Run (about a minute)::

    python benchmarks/launch_counts.py --data ../shared/data/fb15k237
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

os.environ["PYKEEN_VBKGC_COMPILE"] = "0"  # as on CUDA, where nothing is compiled by default

import torch
from profile_step import add_model_arguments, make_models
from pykeen.training.callbacks import TrainingCallback
from speed import load
from torch.utils._python_dispatch import TorchDispatchMode

from pykeen_vbkgc import kernels

#: operators that only make views or read metadata: no kernel on a GPU
NO_KERNEL = {
    "aten.detach", "aten.view", "aten.select", "aten.slice", "aten.unsqueeze", "aten.squeeze", "aten.expand",
    "aten._unsafe_view", "aten.t", "aten.transpose", "aten.permute", "aten.as_strided", "aten.alias", "aten.unbind",
    "aten.split", "aten.split_with_sizes", "aten.reshape", "aten._reshape_alias", "aten.lift_fresh", "aten.empty",
    "aten.empty_like", "aten.new_empty", "aten.new_empty_strided", "aten.empty_strided",
    "profiler._record_function_enter_new", "profiler._record_function_exit",
}  # fmt: skip


class _Counting(TorchDispatchMode):
    """Count the operators dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


class _CountFromSecondBatch(TrainingCallback):
    """Switch the counting on before the second batch and off after training; count the batches in between."""

    def __init__(self, mode: _Counting) -> None:
        super().__init__()
        self.mode, self.batches, self.active = mode, 0, False

    def pre_batch(self, **kwargs) -> None:  # noqa: D102
        self.batches += 1
        if self.batches == 2:
            self.mode.__enter__()
            self.active = True

    def post_train(self, **kwargs) -> None:  # noqa: D102
        if self.active:
            self.mode.__exit__(None, None, None)
            self.active = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.set_defaults(device="cpu", embedding_dim=8, feature_dim=8)
    parser.add_argument("--num-train", type=int, default=20480, help="training triples (batches: this / batch size)")
    parser.add_argument(
        "--training-loop",
        default="deviceslcwa",
        help="deviceslcwa (one scoring call per batch) or slcwa (PyKEEN's, two)",
    )
    args = parser.parse_args()
    kernels._DENSE_ON_CPU = True
    train, _, _ = load(args.data)
    train = train.clone_and_exchange_triples(train.mapped_triples[: args.num_train])
    loops = make_models(train, args, torch.device(args.device), training_loop=args.training_loop)
    for loop in loops.values():
        # Adam's multi-tensor update, its default on CUDA (on the CPU it updates one parameter after the other)
        loop.optimizer = torch.optim.Adam(loop.model.parameters(), lr=1e-3, foreach=True)
    print(f"operators per training batch, {args.training_loop}, accelerators' path on the CPU, "
          f"batch {args.batch_size}, k = {args.num_negatives}, p = {args.scoring_fct_norm}:")  # fmt: skip
    kernel_counts = {}
    for name, loop in loops.items():
        mode = _Counting()
        callback = _CountFromSecondBatch(mode)
        loop.train(triples_factory=train, num_epochs=1, batch_size=args.batch_size, use_tqdm=False, callbacks=callback)
        batches = callback.batches - 1
        kernels_ = {op: count / batches for op, count in mode.counts.items() if op not in NO_KERNEL}
        views = sum(count for op, count in mode.counts.items() if op in NO_KERNEL) / batches
        kernel_counts[name] = sum(kernels_.values())
        top = ", ".join(f"{op.removeprefix('aten.')} {count:.1f}" for op, count in Counter(kernels_).most_common(12))
        print(f"- {name}: {kernel_counts[name]:.0f} with a kernel, {views:.0f} views ({batches} batches); most: {top}")
    print(f"ratio VBKGC+twins / TransE: {kernel_counts['vbkgc_twins'] / kernel_counts['transe']:.2f}")


if __name__ == "__main__":
    main()
