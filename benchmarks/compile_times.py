"""Where a cold start goes: Inductor's instruction-set checks and the compile phases of VBKGC's first epoch.

Run (about a minute; an empty Inductor cache unless ``--warm-cache DIR`` names one)::

    python benchmarks/compile_times.py --data ../shared/data/fb15k237

Trains VBKGC+twins (d = 128, 768-d random features, 16 negatives, batch 2,048) for three epochs and prints the first
and a steady epoch and the per-graph times of :func:`torch._dynamo.utils.compile_times` (a ``compile_attempt_1`` row
means a restarted trace). With ``--timeline``, it also prints each C++ compiler call (start and end in seconds since
the first epoch began, and the calling thread) and the number of modules imported during the first epoch. With
``--checks-only``, it times Inductor's checks of the CPU's vector instruction sets instead: one after the other as
Inductor runs them, or, with ``--parallel-checks``, as :func:`pykeen_vbkgc.kernels._probe_vector_instructions` runs
them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from profile_step import add_model_arguments, make_models
from speed import load, train_epoch
from torch._dynamo.utils import compile_times
from torch._inductor import cpp_builder, cpu_vec_isa

from pykeen_vbkgc import kernels

PHASES = (
    "_compile.compile_inner",
    "compile_attempt_0",
    "compile_attempt_1",
    "bytecode_tracing",
    "compile_fx.<locals>.fw_compiler_base",
    "compile_fx.<locals>.bw_compiler",
    "async_compile.wait",
    "compile_file",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # the model and data of speed.py and profile_step.py
    add_model_arguments(parser)
    parser.set_defaults(threads=2)
    parser.add_argument("--num-train", type=int, default=20480)
    parser.add_argument("--checks-only", action="store_true", help="time the instruction-set checks only")
    parser.add_argument("--parallel-checks", action="store_true", help="run the checks as the kernels module does")
    parser.add_argument("--warm-cache", type=Path, default=None, help="an Inductor cache directory to reuse")
    parser.add_argument("--timeline", action="store_true", help="print each compiler call and count the imports")
    args = parser.parse_args()
    # Inductor reads the variable when it first needs its cache, i.e. at the first compilation
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(args.warm_cache or tempfile.mkdtemp(prefix="torchinductor_cold_"))
    torch.set_num_threads(args.threads)
    if args.checks_only:
        start = time.perf_counter()
        if args.parallel_checks:
            kernels._probe_vector_instructions()
        checks = cpu_vec_isa.valid_vec_isa_list()
        how = "in parallel" if args.parallel_checks else "one after the other"
        print(f"instruction-set checks ({how}): {time.perf_counter() - start:.1f} s -> {[str(isa) for isa in checks]}")
        return

    train, _, _ = load(args.data)
    train = train.clone_and_exchange_triples(train.mapped_triples[: args.num_train])
    loop = make_models(train, args, torch.device(args.device))["vbkgc_twins"]
    calls = []
    if args.timeline:
        calls = log_compiler_calls()
    modules = set(sys.modules)
    seconds = [train_epoch(loop, train, 1, args.batch_size)]
    imported = len(set(sys.modules) - modules)
    seconds += [train_epoch(loop, train, epoch, args.batch_size) for epoch in (2, 3)]
    steady = min(seconds[1:])
    print(f"first epoch {seconds[0]:.1f} s, steady {steady:.2f} s, first minus steady {seconds[0] - steady:.1f} s")
    table = compile_times(repr="str")
    for line in table.splitlines():
        if line.split("  ")[0].strip() in PHASES:
            print(line)
    if args.timeline:
        print(f"modules imported during the first epoch: {imported}")
        print("compiler calls (seconds since the first epoch began; the source's name shortened):")
        for begin, end, thread, source in calls:
            print(f"  {begin:6.2f} - {end:6.2f}  {end - begin:5.2f} s  {thread:<24} {source}")


def log_compiler_calls() -> list[tuple[float, float, str, str]]:
    """Record each call of Inductor's C++ compiler: begin and end (from now), thread and source file."""
    calls, start, run = [], time.perf_counter(), cpp_builder._run_compile_cmd

    def logged(command_line: str, cwd: str) -> None:
        begin = time.perf_counter() - start
        run(command_line, cwd)
        tokens = command_line.split()
        sources = [Path(token).name for token in tokens if token.endswith((".cpp", ".h"))]
        # Inductor's file names are long hashes: the first characters and the extension
        source = sources[0][:12] + "..." + sources[0].split(".", 1)[1] if sources else f"-o {Path(tokens[-1]).name}"
        calls.append((begin, time.perf_counter() - start, threading.current_thread().name, source))

    cpp_builder._run_compile_cmd = logged
    return calls


if __name__ == "__main__":
    main()
