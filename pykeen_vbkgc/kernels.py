r"""Fused distance kernels behind the VBKGC interaction.

Two shapes of work dominate VBKGC on a CPU:

- **Evaluation** scores every query against every entity. For $p = 1$ the five L1 terms are one L1 distance between
  concatenated vectors, computed by :func:`pairwise_l1_distance` without a ``(batch, entities, 5d)`` intermediate,
  also with gradients (training against all entities, e.g., :mod:`pykeen_vbkgc.nosampling`).
- **Training** scores rows $(h, r, t)$ whose entity arguments are rows of one small *piece table*.
  :func:`term_distances` sums the TransE terms of each row with a hand-written backward: the gradient of each row
  is computed densely (no scattered atomic additions), then added into the table with one
  :meth:`~torch.Tensor.index_add_` per side and chunk of rows; for small $d$ (at most 32) and at most two torch
  threads, the additions run inside a compiled single-threaded kernel, all rows at once.

On accelerators (CUDA), the cost of a training batch is the host's: launching kernels and waiting for the device.
There, :func:`term_distances` runs a *dense* variant instead: all terms of all rows in a few batched kernels, no
chunks, no host-device synchronisation (see :func:`uses_dense_path`).

Large inputs on the CPU run through kernels fused by :func:`torch.compile`. The environment variable
``PYKEEN_VBKGC_COMPILE`` chooses where: unset (or ``auto``) compiles on the CPU only, where the fused loops pay back
their compilation within an epoch; ``1`` compiles on every device; ``0`` never compiles. Any compilation failure
(e.g., no C++ compiler) falls back to the same functions run eagerly.

A cold compilation costs seconds per graph on a CPU, so a training step compiles few: the piece table and the twins
sums (forward and backward each), and one forward and one backward of :func:`term_distances`, shared by the
positives and the negatives of a batch (see :func:`term_distances`); a kernel compiled for large inputs also runs
the small ones. Inductor keeps compiled kernels on disk (``TORCHINDUCTOR_CACHE_DIR``), so later processes on the
same machine start faster.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from pykeen.typing import FloatTensor, LongTensor
from torch.nn import functional

__all__ = [
    "pairwise_l1_distance",
    "piece_table",
    "run_fused",
    "sum_rows",
    "term_distances",
    "unit_rows",
    "uses_dense_path",
    "weighted_sum",
]

logger = logging.getLogger(__name__)

#: below this many element operations, the eager implementations are fast enough and nothing is compiled
_COMPILE_MIN_WORK = 10_000_000
#: elements (rows times d) per chunk of the training backward: its dense (rows, 4, d) gradients stay below glibc's
#: mmap threshold; 4,096 rows at d = 128, more for narrower embeddings (fewer chunks, fewer calls)
_BACKWARD_CHUNK_ELEMENTS = 4096 * 128
#: up to this embedding dimension, and with at most two torch threads, the training backward adds the gradients into
#: the table inside a compiled kernel, all rows at once, in one thread (no atomic additions): ATen's index_add_ (a sort
#: of the indices, then the additions) costs more than the kernel itself. 32,768 twins rows, one thread, median ms of
#: fused against chunks: d = 8: 7 / 12, d = 16: 16 / 26, d = 32: 18 / 29, d = 64: 84 / 46, d = 128: 171 / 103 (there,
#: the chunks' buffers stay in the cache). Two threads, VBKGC's step against TransE's (batch_ratio.py, docs/speed.md):
#: d = 8: 1.16-1.23x against 1.50-1.57x with chunks; d = 16: 1.51x against 1.70x; d = 32: 1.69x against 2.68x; d = 64:
#: slower (93.5 against 66.8 ms per batch). The same kernel with Inductor's parallel (atomic) additions was slower
_FUSED_SCATTER_MAX_DIM = 32
#: ... and up to this many torch threads (more threads speed the chunks' dense part and index_add_ up, not this)
_FUSED_SCATTER_MAX_THREADS = 2
#: compiled kernels, by name; False once compilation failed or is disabled
_compiled: dict[str, Callable | bool] = {}
#: whether :func:`_probe_vector_instructions` ran in this process
_vector_instructions_probed = False
#: run the dense training kernels on the CPU, too (for tests: the accelerator path, checked without an accelerator)
_DENSE_ON_CPU = False
#: small constant tensors per device, made once: a tensor built from Python numbers is a host-to-device copy, which
#: synchronises with the device
_constants: dict[tuple, torch.Tensor] = {}


def _compile_enabled(device: torch.device) -> bool:
    setting = os.environ.get("PYKEEN_VBKGC_COMPILE", "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on", "all"):
        return True
    if setting not in ("auto", ""):
        # a typo must not silently compile (or not)
        raise ValueError(
            f"PYKEEN_VBKGC_COMPILE must be 0/false/no/off, 1/true/yes/on/all, or auto (the default), got "
            f"{os.environ['PYKEEN_VBKGC_COMPILE']!r}."
        )
    # on CUDA the compilation takes a minute and the kernels are bound by launches, not arithmetic
    return device.type == "cpu"


def uses_dense_path(device: torch.device) -> bool:
    """Return whether training kernels on ``device`` use the dense, synchronisation-free path.

    On the CPU, :func:`term_distances` differentiates in chunks (cache- and allocator-friendly) and VBKGC computes
    the twins rows only where needed (a host-side mask). On accelerators both would cost host-device synchronisations
    and kernel launches, so there every row is computed in a few batched kernels.

    :param device: the device of the model
    :return: whether to use the dense path
    """
    return device.type != "cpu" or _DENSE_ON_CPU


def _constant(values: Sequence[float], device: torch.device) -> FloatTensor:
    """Return ``values`` as a float tensor on ``device``, made once per process."""
    key = (tuple(values), device)
    if key not in _constants:
        _constants[key] = torch.tensor(values, dtype=torch.get_default_dtype()).to(device)
    return _constants[key]


def run_fused(
    name: str, function: Callable, large: bool, *args, fallback: Callable | None = None, serial: bool = False
):
    """Run ``function``, compiled with :func:`torch.compile` if the work is ``large`` and compilation works.

    Otherwise run ``fallback`` (default: ``function`` itself) eagerly. Whether compilation is enabled depends on the
    device of the first argument, see the module's description. Once compiled, the kernel also runs small inputs.
    ``serial`` compiles C++ code for one thread (Inductor's ``cpp.threads``): scattered additions then need no atomic
    operations.
    """
    kernel = _compiled.get(name)
    # a kernel compiled for large inputs also serves smaller ones (e.g., the positives of a batch) at no compile
    # cost, unless a dimension of size 0 or 1 would make Dynamo specialise (and compile again)
    reuse = callable(kernel) and all(
        arg.ndim == 0 or arg.shape[0] >= 2 for arg in args if isinstance(arg, torch.Tensor)
    )
    if (large or reuse) and _compile_enabled(args[0].device):
        if kernel is None:
            if args[0].device.type == "cpu":
                _probe_vector_instructions()
            options = {"cpp.threads": 1} if serial else None
            kernel = _compiled[name] = torch.compile(function, dynamic=True, options=options)
        if kernel is not False:
            # settings such as p and the term weights are Python floats: traced symbolically, they would be
            # specialised anyway, after a restart of the whole trace (set directly: config.patch costs 66 us a call)
            specialize_float, torch._dynamo.config.specialize_float = torch._dynamo.config.specialize_float, True
            try:
                return kernel(*args)
            except Exception as error:  # compilation fails for environmental reasons only, e.g., no C++ compiler
                logger.warning(f"Using eager PyTorch; compiling {name} failed: {error}")
                _compiled[name] = False
            finally:
                torch._dynamo.config.specialize_float = specialize_float
    return (fallback or function)(*args)


def _probe_vector_instructions() -> None:
    """Run Inductor's checks of the CPU's vector instruction sets at once, before its first C++ kernel.

    With an empty Inductor cache, Inductor compiles and loads one test program per instruction set that the CPU
    lists (AVX-512 VNNI, AVX-512, AVX2, ...), one after the other, 2-3 s each. The same checks run here in threads
    (the compiler runs in subprocesses); Inductor then reads their results from its cache. Nothing is decided here:
    where Inductor's internals differ from what this expects, its own sequential checks run as before.
    """
    global _vector_instructions_probed
    if _vector_instructions_probed:
        return
    _vector_instructions_probed = True
    try:
        from torch._inductor import config, cpu_vec_isa

        if config.cpp.vec_isa_ok is not None or platform.machine() not in ("x86_64", "AMD64"):
            return  # Inductor checks nothing, or not this way
        flags = cpu_vec_isa.x86_isa_checker()
        candidates = [
            isa for isa in cpu_vec_isa.supported_vec_isa_list if all(flag in flags for flag in str(isa).split())
        ]
        if len(candidates) > 1:
            with ThreadPoolExecutor(max_workers=len(candidates)) as pool:
                list(pool.map(bool, candidates))
    except Exception as error:  # an optimisation only: Inductor's own checks still run
        logger.debug(f"Vector instruction checks not run in parallel: {error}")


def _fused_l1(x: FloatTensor, y: FloatTensor) -> FloatTensor:
    return (x.unsqueeze(1) - y.unsqueeze(0)).abs().sum(dim=-1)


def _fused_l1_grad(x: FloatTensor, y_t: FloatTensor, grad: FloatTensor) -> FloatTensor:
    r"""Return $\sum_j g_{ij} \operatorname{sign}(x_i - y_j)$, the gradient of $\sum_{ij} g_{ij} \|x_i - y_j\|_1$ for x.

    ``y_t`` is $y^T$, shape: (d, m): with j innermost and contiguous, the sum over j vectorises (1.6x faster than
    reducing over the middle dimension of ``(n, m, d)``).
    """
    return ((x.unsqueeze(-1) - y_t.unsqueeze(0)).sign() * grad.unsqueeze(1)).sum(dim=-1)


def _cdist_l1_grad(x: FloatTensor, y_t: FloatTensor, grad: FloatTensor) -> FloatTensor:
    # the fallback of _fused_l1_grad: torch.cdist's backward, which needs no (n, m, d) intermediate either
    with torch.enable_grad():
        x = x.detach().requires_grad_()
        (result,) = torch.autograd.grad(torch.cdist(x, y_t.t(), p=1), x, grad)
    return result


class _PairwiseL1(torch.autograd.Function):
    """Autograd function of the fused :func:`pairwise_l1_distance`: forward and backward without ``(n, m, d)``."""

    @staticmethod
    def forward(ctx, x: FloatTensor, y: FloatTensor) -> FloatTensor:
        ctx.save_for_backward(x, y)
        return run_fused("pairwise_l1_distance", _fused_l1, True, x, y, fallback=_cdist_l1)

    @staticmethod
    def backward(ctx, grad: FloatTensor) -> tuple[FloatTensor | None, FloatTensor | None]:
        x, y = ctx.saved_tensors
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            y_t = y.t().contiguous()
            grad_x = run_fused("pairwise_l1_grad", _fused_l1_grad, True, x, y_t, grad, fallback=_cdist_l1_grad)
        if ctx.needs_input_grad[1]:
            # the same kernel with the roles swapped, as |x_i - y_j| = |y_j - x_i|
            x_t, grad_t = x.t().contiguous(), grad.t().contiguous()
            grad_y = run_fused("pairwise_l1_grad", _fused_l1_grad, True, y, x_t, grad_t, fallback=_cdist_l1_grad)
        return grad_x, grad_y


def pairwise_l1_distance(x: FloatTensor, y: FloatTensor) -> FloatTensor:
    r"""Compute all pairwise L1 distances, like ``torch.cdist(x, y, p=1)``.

    On CPU, :func:`torch.cdist` does about 1 G element operations per second and core, while broadcasting
    materialises a ``(n, m, d)`` tensor. For large inputs we therefore fuse subtraction, absolute value and sum into
    one vectorised loop; with gradients, the backward pass
    $\partial / \partial x_i = \sum_j g_{ij} \operatorname{sign}(x_i - y_j)$ (and the same for y) is fused, too.
    One thread, 512 x 1,024 vectors of 640 dimensions (``benchmarks/pairwise_l1.py``): forward 5.7x, forward and
    backward 3.0x faster than :func:`torch.cdist`. On CUDA, for small inputs, or when compilation is impossible,
    :func:`torch.cdist` is used.

    :param x: shape: (n, d)
    :param y: shape: (m, d)
    :return: shape: (n, m)
    """
    large = x.shape[0] * y.shape[0] * x.shape[1] >= _COMPILE_MIN_WORK
    if large and x.device.type == "cpu":
        # never the eager broadcast: it would materialise (n, m, d)
        return _PairwiseL1.apply(x, y)
    return _cdist_l1(x, y)


def _cdist_l1(x: FloatTensor, y: FloatTensor) -> FloatTensor:
    return torch.cdist(x, y, p=1)


def _gather(table, extra, index):
    """Look rows up in the table, or, for indices past its end, in ``extra``."""
    if extra is None:
        return table[index]
    rows = table.shape[0]
    inside = (index < rows).unsqueeze(dim=-1)
    return torch.where(inside, table[index.clamp(max=rows - 1)], extra[(index - rows).clamp(min=0)])


def _term_differences(table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece):
    r"""Yield $\mathbf{h}_a + \mathbf{r} - \mathbf{t}_b$ for each term $(a, b)$, shape: (n, d) each."""
    for a, b in zip(head_pieces, tail_pieces, strict=True):
        head = _gather(table, extra if a == extra_piece else None, h_index[:, a])
        tail = _gather(table, extra if b == extra_piece else None, t_index[:, b])
        yield head + r - tail


def _norm(x: FloatTensor, p: float) -> FloatTensor:
    if p == 1:
        return x.abs().sum(dim=-1)
    if p == 2:
        # spelled out: Inductor's C++ code for linalg.vector_norm inside the fused gathers is about six times slower
        return x.square().sum(dim=-1).sqrt()
    return torch.linalg.vector_norm(x, ord=p, dim=-1)


def _forward_kernel(table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece, p, weights):
    differences = _term_differences(table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece)
    return -weighted_sum((_norm(difference, p=p) for difference in differences), weights)


def _forward_norms_kernel(table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece, p, weights):
    """Return :func:`_forward_kernel`'s scores and each term's norm, shape: (n, terms), for the backward of p = 2."""
    differences = _term_differences(table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece)
    norms = torch.stack([_norm(difference, p=p) for difference in differences], dim=-1)
    return -weighted_sum(norms.unbind(dim=-1), weights), norms


def weighted_sum(terms: Iterable[FloatTensor], weights: Sequence[float]) -> FloatTensor:
    """Sum the terms, each multiplied by its weight.

    A unit weight skips the multiplication, so that unweighted sums stay bit-identical to a plain sum.
    """
    return sum(_weighted(term, weight) for term, weight in zip(terms, weights))


def _weighted(x: FloatTensor, weight: float) -> FloatTensor:
    # skip the multiplication for the (default) unit weight, so that unweighted scores stay bit-identical
    return x if weight == 1 else x * weight


def _backward_kernel(table, extra, r, h_index, t_index, grad, norms, head_pieces, tail_pieces, extra_piece, p, weights):
    """Return the dense gradients of each row: per distinct head piece, per distinct tail piece, and for r.

    ``norms`` are the forward's norms of each term (p = 2; None for p = 1): reading them spares a second pass over the
    gathered rows.
    """
    heads, tails = sorted(set(head_pieces)), sorted(set(tail_pieces))
    grad_heads = [0] * len(heads)
    grad_tails = [0] * len(tails)
    grad_r = 0
    differences = _term_differences(table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece)
    for term, (a, b, difference, weight) in enumerate(zip(head_pieces, tail_pieces, differences, weights, strict=True)):
        # d(-||x||_p)/dx for p = 1: -sign(x); for p = 2: -x / ||x|| (0 at x = 0, as autograd's subgradient)
        if p == 1:
            direction = difference.sign()
        else:
            direction = difference / norms[:, term].clamp_min(1e-12).unsqueeze(dim=-1)
        direction = direction * -_weighted(grad, weight).unsqueeze(dim=-1)
        grad_heads[heads.index(a)] = grad_heads[heads.index(a)] + direction
        grad_tails[tails.index(b)] = grad_tails[tails.index(b)] - direction
        grad_r = grad_r + direction
    return torch.stack(grad_heads, dim=1), torch.stack(grad_tails, dim=1), grad_r


def _backward_chunk_kernel(
    table, extra, r, h_index, t_index, grad, norms, rows, head_pieces, tail_pieces, extra_piece, p, weights
):
    """Return :func:`_backward_kernel` of the rows ``rows``.

    The rows are gathered here rather than sliced by the caller: slices are views at varying storage offsets, on which
    Dynamo's guards would compile the kernel once more per chunk.
    """
    return _backward_kernel(
        table,
        extra,
        r[rows],
        h_index[rows],
        t_index[rows],
        grad[rows],
        None if norms is None else norms[rows],
        head_pieces,
        tail_pieces,
        extra_piece,
        p,
        weights,
    )


def _backward_scatter_kernel(
    table, extra, r, h_index, t_index, grad, norms, head_pieces, tail_pieces, extra_piece, p, weights
):
    """Return the gradients of the table and ``extra`` (one tensor, extra's rows last) and of each row's r."""
    grad_heads, grad_tails, grad_r = _backward_kernel(
        table, extra, r, h_index, t_index, grad, norms, head_pieces, tail_pieces, extra_piece, p, weights
    )
    dim = table.shape[1]
    grad_rows = table.new_zeros(table.shape[0] + (0 if extra is None else extra.shape[0]), dim)
    heads, tails = sorted(set(head_pieces)), sorted(set(tail_pieces))
    grad_rows = grad_rows.index_add(0, _columns(h_index, heads).reshape(-1), grad_heads.reshape(-1, dim))
    grad_rows = grad_rows.index_add(0, _columns(t_index, tails).reshape(-1), grad_tails.reshape(-1, dim))
    return grad_rows, grad_r


class _TermDistances(torch.autograd.Function):
    r"""Autograd function of :func:`term_distances` (for $p \in \{1, 2\}$)."""

    @staticmethod
    def forward(ctx, table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece, p, weights, large):
        ctx.settings = (head_pieces, tail_pieces, extra_piece, p, weights)
        ctx.large = large
        name = f"term_distances_forward_p{p}"
        # detached: Dynamo guards on requires_grad, and the twins rows require it while the positives' zero rows do not
        inputs = _detached(table, extra, r)
        if p == 1:
            ctx.save_for_backward(table, extra, r, h_index, t_index, None)
            return run_fused(name, _forward_kernel, large, *inputs, h_index, t_index, *ctx.settings)
        scores, norms = run_fused(name, _forward_norms_kernel, large, *inputs, h_index, t_index, *ctx.settings)
        ctx.save_for_backward(table, extra, r, h_index, t_index, norms)
        return scores

    @staticmethod
    def backward(ctx, grad):
        table, extra, r, h_index, t_index, norms = ctx.saved_tensors
        table, extra, r, grad = _detached(table, extra, r, grad)
        head_pieces, tail_pieces, _, p, _ = ctx.settings
        heads, tails = sorted(set(head_pieces)), sorted(set(tail_pieces))
        # one buffer for the table and the extra rows; the two gradients are views of it
        num_rows, dim = table.shape[0] + (0 if extra is None else extra.shape[0]), table.shape[1]
        needs_rows = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        # the arguments of both backward kernels before their row selection and settings
        inputs = (table, extra, r, h_index, t_index, grad, norms)
        if needs_rows and dim <= _FUSED_SCATTER_MAX_DIM and torch.get_num_threads() <= _FUSED_SCATTER_MAX_THREADS:
            grad_rows, grad_r = run_fused(
                f"term_distances_backward_scatter_p{p}",
                _backward_scatter_kernel,
                ctx.large,
                *inputs,
                *ctx.settings,
                serial=True,
            )
            return _TermDistances._gradients(ctx, table, grad_rows, grad_r)
        grad_rows = table.new_zeros(num_rows, dim) if needs_rows else None
        grad_r = torch.empty_like(r) if ctx.needs_input_grad[2] else None
        # chunks keep each dense gradient small enough for the allocator to reuse its memory instead of mapping
        # (and page-faulting) fresh pages on every call
        chunk_rows = max(1, _BACKWARD_CHUNK_ELEMENTS // dim)
        bounds = list(range(0, r.shape[0], chunk_rows)) + [r.shape[0]]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            # no chunk of one row: Dynamo would specialise the compiled kernel on its size and compile it again
            del bounds[-2]
        for start, stop in zip(bounds, bounds[1:]):
            rows = slice(start, stop)
            grad_heads, grad_tails, chunk_grad_r = run_fused(
                f"term_distances_backward_p{p}",
                _backward_chunk_kernel,
                ctx.large,
                *inputs,
                torch.arange(start, stop, device=r.device),
                *ctx.settings,
            )
            if grad_rows is not None:
                grad_rows.index_add_(0, _columns(h_index[rows], heads).reshape(-1), grad_heads.reshape(-1, dim))
                grad_rows.index_add_(0, _columns(t_index[rows], tails).reshape(-1), grad_tails.reshape(-1, dim))
            if grad_r is not None:
                grad_r[rows] = chunk_grad_r
        return _TermDistances._gradients(ctx, table, grad_rows, grad_r)

    @staticmethod
    def _gradients(ctx, table, grad_rows, grad_r):
        """Split the rows' gradient into the table's and extra's, and return the gradients of all inputs."""
        grad_table = grad_extra = None
        if grad_rows is not None:
            grad_table = grad_rows[: table.shape[0]] if ctx.needs_input_grad[0] else None
            grad_extra = grad_rows[table.shape[0] :] if ctx.needs_input_grad[1] else None
        grad_r = grad_r if ctx.needs_input_grad[2] else None
        return grad_table, grad_extra, grad_r, None, None, None, None, None, None, None, None


def _detached(*tensors: FloatTensor | None) -> tuple[FloatTensor | None, ...]:
    return tuple(None if tensor is None else tensor.detach() for tensor in tensors)


def _columns(index: LongTensor, columns: list[int]) -> LongTensor:
    """Select columns of an index matrix; all of them in order is the matrix itself (no copy)."""
    return index if columns == list(range(index.shape[1])) else index[:, columns]


def _dense_rows(table, extra, h_index, t_index, head_pieces, tail_pieces, r_index):
    """Return the rows (table, then extra) and the rows each term reads, shape: (3, terms, n), or (2, terms, n).

    Per term: the row of its head, of its relation (only with ``r_index``: the relations are rows of the table) and of
    its tail; one stack of column views, so that one gather fetches them all (a list index would be copied to the
    device, a synchronisation; each operator is a kernel launch).
    """
    rows = table if extra is None else torch.cat([table, extra], dim=0)
    columns = [h_index[:, a] for a in head_pieces]
    if r_index is not None:
        columns += [r_index] * len(head_pieces)
    columns += [t_index[:, b] for b in tail_pieces]
    return rows, torch.stack(columns).view(-1, len(head_pieces), h_index.shape[0])


class _DenseTermDistances(torch.autograd.Function):
    r"""The dense variant of :func:`term_distances` (for $p \in \{1, 2\}$): all rows and terms at once.

    The relation vectors are ``r``, or, where ``r`` is None, the rows ``r_index`` of the table. The differences are
    kept for the backward instead of gathered again (memory for launches: accelerators have the one, and each
    operator costs a launch). Terms come first in the intermediate tensors (shape: (terms, n, d)), so that each
    term's rows are contiguous.
    """

    @staticmethod
    def forward(ctx, table, extra, r, h_index, t_index, head_pieces, tail_pieces, p, weights, r_index):
        rows, index = _dense_rows(
            table, extra, h_index, t_index, head_pieces, tail_pieces, r_index if r is None else None
        )
        gathered = rows[index]
        # shape: (terms, n, d)
        if r is None:
            difference = gathered[0] + gathered[1] - gathered[2]
        else:
            difference = gathered[0] + r - gathered[1]
        distances = _norm(difference, p=p)
        ctx.save_for_backward(rows, r, index, r_index, difference, distances if p == 2 else None)
        ctx.settings = (table.shape[0], extra is not None, p, weights)
        if weights is None:
            return -distances.sum(dim=0)
        # the weights' negatives, made once: a multiplication instead of a multiplication and a negation
        return (distances * _constant([-weight for weight in weights], table.device).unsqueeze(dim=-1)).sum(dim=0)

    @staticmethod
    def backward(ctx, grad):
        rows, r, index, r_index, difference, norms = ctx.saved_tensors
        num_table_rows, has_extra, p, weights = ctx.settings
        # d(-||x||_p)/dx for p = 1: -sign(x); for p = 2: -x / ||x|| (0 at x = 0, as autograd's subgradient); not in
        # place: the saved differences stay intact for another backward (retain_graph)
        if p == 1:
            direction = difference.sign()
        else:
            direction = difference / norms.clamp_min(1e-12).unsqueeze(dim=-1)
        coefficient = grad if weights is None else grad * _constant(weights, grad.device).unsqueeze(dim=-1)
        # the gradient of the score (the negative distance) with respect to the difference is -coefficient times
        # this; the sign goes into index_add_'s alpha (one operator less)
        direction = direction.mul_(coefficient.unsqueeze(dim=-1))
        grad_table = grad_extra = grad_r = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dim = rows.shape[1]
            grad_rows = rows.new_zeros(rows.shape)
            # heads and tails: the first and the last block of the index, each contiguous
            grad_rows.index_add_(0, index[0].reshape(-1), direction.reshape(-1, dim), alpha=-1)
            grad_rows.index_add_(0, index[-1].reshape(-1), direction.reshape(-1, dim))
            if r is None:
                grad_rows.index_add_(0, r_index, direction.sum(dim=0), alpha=-1)
            grad_table = grad_rows[:num_table_rows]
            grad_extra = grad_rows[num_table_rows:] if has_extra else None
        if ctx.needs_input_grad[2]:
            grad_r = direction.sum(dim=0).neg_()
        return grad_table, grad_extra, grad_r, None, None, None, None, None, None, None


def term_distances(
    table: FloatTensor,
    r: FloatTensor | None,
    h_index: LongTensor,
    t_index: LongTensor,
    head_pieces: Sequence[int],
    tail_pieces: Sequence[int],
    p: float,
    extra: FloatTensor | None = None,
    extra_piece: int | None = None,
    weights: Sequence[float] | None = None,
    r_index: LongTensor | None = None,
) -> FloatTensor:
    r"""Sum the negative TransE terms of rows whose entity arguments are rows of a table.

    For row $i$ and each term $(a, b)$ with weight $w$ this adds
    $-w \|\mathbf{T}[H_{i,a}] + \mathbf{r}_i - \mathbf{T}[T_{i,b}]\|_p$,
    where $\mathbf{T}$ is the table and $H$, $T$ hold, per row, the table row of each piece of the head and the tail.
    Rows of one piece may instead come from a second table ``extra``: an index $m + j$ past the end of the table
    (of $m$ rows) means row $j$ of ``extra``, which spares concatenating the two.

    On the CPU, large inputs run a fused (compiled) forward and a backward in chunks of rows (for $d \le 32$ and at
    most two threads: all rows at once, the additions into the table inside a single-threaded compiled kernel). Rows
    without extra rows run the same compiled kernels as rows with them (two zero rows stand in for ``extra``). Where
    :func:`uses_dense_path` holds (accelerators), all rows and terms run in a few batched kernels instead, with one
    :meth:`~torch.Tensor.index_add_` per side in the backward and no host-device synchronisation.

    :param table: shape: (m, d); the piece table
    :param r: shape: (n, d); the relation vector of each row; None if ``r_index`` points to them in the table
    :param h_index: shape: (n, num_pieces); the table rows of the head's pieces
    :param t_index: shape: (n, num_pieces); the table rows of the tail's pieces
    :param head_pieces: for each term, the head piece it uses (a column of ``h_index``)
    :param tail_pieces: for each term, the tail piece it uses (a column of ``t_index``)
    :param p: the order of the norm
    :param extra: shape: (k, d); further rows for the piece ``extra_piece``
    :param extra_piece: the only piece whose index may point into ``extra``
    :param weights: one non-negative weight per term; default: all 1
    :param r_index: shape: (n,); with ``r`` None, the table row of each row's relation vector (on the dense path the
        kernel gathers them and adds their gradient into the table's; elsewhere they are gathered first)
    :return: shape: (n,); the summed negative distances
    """
    head_pieces, tail_pieces = tuple(head_pieces), tuple(tail_pieces)
    weights = (1.0,) * len(head_pieces) if weights is None else tuple(float(weight) for weight in weights)
    twins_piece = extra_piece
    if extra is None:
        extra_piece = None
    dense = uses_dense_path(table.device) and p in (1, 2)
    if r is None and not dense:
        # only the dense kernel gathers the relation rows itself
        r = table.index_select(0, r_index)
    # about eight element operations per term and dimension, forward and backward
    large = h_index.shape[0] * table.shape[1] * len(head_pieces) * 8 >= _COMPILE_MIN_WORK
    if p not in (1, 2):
        # generic p: let autograd differentiate the gathers and norms
        return _forward_kernel(table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece, p, weights)
    if dense:
        # every piece may point into extra here; unit weights need no multiplication
        unit_weights = all(weight == 1 for weight in weights)
        return _DenseTermDistances.apply(
            table, extra, r, h_index, t_index, head_pieces, tail_pieces, p, None if unit_weights else weights, r_index
        )
    if extra is None and twins_piece is not None:
        # rows without extra rows (the positives) run the same compiled kernels as rows with them: two zero rows
        # that no index points to (Dynamo specialises sizes 0 and 1), instead of a second graph to compile
        extra, extra_piece = table.new_zeros(2, table.shape[1]), twins_piece
    elif extra is not None and extra.shape[0] < 2:
        extra = torch.cat([extra, extra.new_zeros(2 - extra.shape[0], extra.shape[1])])
    return _TermDistances.apply(
        table, extra, r, h_index, t_index, head_pieces, tail_pieces, extra_piece, p, weights, large
    )


#: the smallest norm that :func:`unit_rows` divides by, as :func:`torch.nn.functional.normalize`'s
_UNIT_ROWS_EPS = 1e-12


class _UnitRows(torch.autograd.Function):
    """Autograd function of :func:`unit_rows`."""

    @staticmethod
    def forward(ctx, x: FloatTensor) -> FloatTensor:
        norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        clamped = norms.clamp_min(_UNIT_ROWS_EPS)
        unit = x / clamped
        ctx.save_for_backward(unit, norms, clamped)
        return unit

    @staticmethod
    def backward(ctx, grad: FloatTensor) -> FloatTensor:
        unit, norms, clamped = ctx.saved_tensors
        # the part of grad along the row, removed where the norm is not clamped (clamp_min passes gradients at >=)
        along = (grad * unit).sum(dim=-1, keepdim=True) * (norms >= _UNIT_ROWS_EPS)
        return torch.addcmul(grad, unit, along, value=-1) / clamped


def unit_rows(x: FloatTensor) -> FloatTensor:
    r"""Divide each row by its L2 norm (at least $10^{-12}$): :func:`torch.nn.functional.normalize`, same values.

    The gradient is $(\mathbf{g} - \mathbf{y} \langle \mathbf{g}, \mathbf{y} \rangle) / \|\mathbf{x}\|$ with
    $\mathbf{y}$ the unit row, computed by six operators instead of the fourteen of autograd's way through the norm,
    the clamp and the division: on accelerators every operator is a kernel launch, which costs more than its
    arithmetic (docs/gpu.md, ``benchmarks/launch_counts.py``).

    :param x: shape: ``(*, d)``
    :return: shape: ``(*, d)``
    """
    return _UnitRows.apply(x)


def _piece_table(
    structural: FloatTensor,
    multimodal: FloatTensor,
    normalize: bool,
    twins_structural: FloatTensor | None = None,
    twins_multimodal: FloatTensor | None = None,
    relations: FloatTensor | None = None,
    sums: bool = True,
    unit: Callable = functional.normalize,
) -> FloatTensor:
    pieces = [structural, multimodal, structural + multimodal] if sums else [structural, multimodal]
    if twins_structural is not None:
        pieces.append(twins_structural + twins_multimodal)
    if relations is not None:
        pieces.append(relations)
    table = torch.cat(pieces, dim=0)
    return unit(table) if normalize else table


_eager_piece_table = functools.partial(_piece_table, unit=unit_rows)


def piece_table(
    structural: FloatTensor,
    multimodal: FloatTensor,
    normalize: bool,
    twins: tuple[FloatTensor, FloatTensor] | None = None,
    relations: FloatTensor | None = None,
    sums: bool = True,
) -> FloatTensor:
    r"""Stack $[\mathbf{S}; \mathbf{M}; \mathbf{S} + \mathbf{M}]$ row-wise, each row L2-normalised if ``normalize``.

    With ``twins`` $= (\mathbf{A}, \mathbf{B})$, the rows $\mathbf{A} + \mathbf{B}$ follow (the sum pieces of twins
    pairs, see :func:`sum_rows`), then the rows of ``relations``, all normalised with the others: one normalisation
    instead of three, for the accelerators' path, where each operator is a kernel launch. Where ``twins`` holds the
    sum piece of every position of a batch, the block $\mathbf{S} + \mathbf{M}$ is not needed: ``sums=False``
    leaves it out. Large tables are built (and differentiated) by one fused kernel.

    :param structural: shape: (n, d)
    :param multimodal: shape: (n, d)
    :param normalize: whether to L2-normalise each row
    :param twins: shape: (k, d) each; the summands of further rows
    :param relations: shape: (q, d); rows to append last
    :param sums: whether the block $\mathbf{S} + \mathbf{M}$ follows $\mathbf{M}$
    :return: shape: (3n + k + q, d) (with ``sums=False``: (2n + k + q, d)), with k = 0 without ``twins`` and q = 0
        without ``relations``
    """
    # about 24 element operations per entry, forward and backward, and a dozen eager kernels: compiled pays from
    # 100k entries (14.5k entities at d = 8: 1.0 against 2.9 ms per step)
    large = structural.numel() * 96 >= _COMPILE_MIN_WORK
    # one compiled kernel per combination of inputs
    name = (
        "piece_table"
        + ("" if sums else "_without_sums")
        + ("_with_twins" if twins else "")
        + ("_with_relations" if relations is not None else "")
    )
    # compiled, Inductor differentiates functional.normalize; eager (and on accelerators), unit_rows launches fewer
    return run_fused(
        name,
        _piece_table,
        large,
        structural,
        multimodal,
        normalize,
        *(twins or (None, None)),
        relations,
        sums,
        fallback=_eager_piece_table,
    )


def _sum_rows(x: FloatTensor, y: FloatTensor, normalize: bool, unit: Callable = functional.normalize) -> FloatTensor:
    total = x + y
    return unit(total) if normalize else total


_eager_sum_rows = functools.partial(_sum_rows, unit=unit_rows)


def sum_rows(x: FloatTensor, y: FloatTensor, normalize: bool) -> FloatTensor:
    """Add two row tables and L2-normalise each row if ``normalize``; fused for large inputs.

    :param x: shape: (n, d)
    :param y: shape: (n, d)
    :param normalize: whether to L2-normalise each row
    :return: shape: (n, d)
    """
    large = x.numel() * 8 >= _COMPILE_MIN_WORK
    return run_fused("sum_rows", _sum_rows, large, x, y, normalize, fallback=_eager_sum_rows)
