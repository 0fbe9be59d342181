"""On accelerators, VBKGC's training steps never wait for the device: checked on the CPU.

On CUDA, an operation whose result the host must read (a value, as ``item()`` or ``bool()``, or a size that depends on
values, as ``nonzero`` and boolean masks) waits until the device has finished all queued work; per batch, such waits
cost more than the arithmetic (docs/gpu.md). :class:`_HostReads` records these operations while the accelerators'
training path runs on the CPU (``kernels._DENSE_ON_CPU``, nothing compiled, as on CUDA by default), with the
innermost frame of our package that caused each one. PyKEEN's own loop reads the loss twice per batch (its finiteness
check and ``loss.item()``); those frames are PyKEEN's and are not counted.
"""

import collections
import traceback
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import pykeen_vbkgc
from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss
from pykeen_vbkgc import kernels as kernels_module
from pykeen_vbkgc.device_sampling import DeviceSLCWATrainingLoop

PACKAGE = str(Path(pykeen_vbkgc.__file__).parent)
aten = torch.ops.aten
#: operations that read a device tensor's value or data-dependent size on the host
READS = {aten._local_scalar_dense, aten.is_nonzero, aten.equal, aten.nonzero, aten.masked_select, aten._unique2,
         aten.unique_dim, aten.unique_consecutive}  # fmt: skip
#: indexing operations, which read the host-side size of a boolean mask
MASKED = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}


class _HostReads(TorchDispatchMode):
    """Count the operations that wait for the device on CUDA, by the line of our package that caused them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        self.sites: collections.Counter[str] = collections.Counter()
        # host copies, which do not reach the dispatcher for CPU tensors
        for name in ("tolist", "numpy", "cpu", "item"):
            method = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._recording(name, method))

    def _recording(self, name: str, method):
        def recorded(tensor, *args, **kwargs):
            self._record(name)
            return method(tensor, *args, **kwargs)

        return recorded

    def _record(self, name: str) -> None:
        for frame in reversed(traceback.extract_stack()):
            if frame.filename.startswith(PACKAGE):
                self.sites[f"{Path(frame.filename).name}:{frame.lineno} {name}"] += 1
                return

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        indices = args[1] if func.overloadpacket in MASKED and len(args) > 1 else ()
        if (
            func.overloadpacket in READS
            or (func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is None)
            or any(isinstance(index, torch.Tensor) and index.dtype == torch.bool for index in indices)
        ):
            self._record(str(func))
        return func(*args, **kwargs)


@pytest.fixture
def accelerator_path(monkeypatch):
    """The training path of accelerators, on the CPU."""
    monkeypatch.setattr(kernels_module, "_DENSE_ON_CPU", True)
    # nothing compiled, as on CUDA by default (and no kernel that another test compiled is reused)
    monkeypatch.setenv("PYKEEN_VBKGC_COMPILE", "0")


@pytest.mark.parametrize(
    ("sampler", "loss", "p", "term_weights"),
    [
        ("twins", "meanmarginranking", 2, None),
        ("twins", "nssa", 1, "mm=0.05,sm=0.05,ms=0.05,all=0.05"),
        ("basic", "marginranking", 2, None),
    ],
)
def test_training_waits_for_no_device(
    tiny_factory, tiny_features, accelerator_path, monkeypatch, sampler, loss, p, term_weights
):
    """Batches, negatives (twins ids included), scores, loss, backward and step of VBKGC: no host read of ours."""
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        scoring_fct_norm=p,
        term_weights=term_weights,
        loss=loss,
        random_seed=0,
    )
    loop = DeviceSLCWATrainingLoop(
        model=model,
        triples_factory=tiny_factory,
        negative_sampler=sampler,
        negative_sampler_kwargs=dict(num_negs_per_pos=3),
    )
    with _HostReads(monkeypatch) as reads:
        losses = loop.train(triples_factory=tiny_factory, num_epochs=2, batch_size=3, use_tqdm=False)
    assert len(losses) == 2
    assert dict(reads.sites) == {}


def test_the_recorder_sees_the_reads_of_the_filtered_loss(monkeypatch):
    """The recorder works: the margin loss over filtered negatives reads sizes of boolean masks, and the host reads
    whether any positive kept a negative.

    Filtering cannot avoid this anyway: PyKEEN's loop compacts the kept negatives with the mask before scoring.
    """
    loss = MeanMarginRankingLoss(margin=1.0)
    negative_scores = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    batch_filter = torch.tensor([[True, False], [True, True]])
    with _HostReads(monkeypatch) as reads:
        loss.process_slcwa_scores(torch.tensor([[1.0], [0.0]]), negative_scores, batch_filter=batch_filter)
    lines = {site.split(" ", 1)[1] for site in reads.sites}
    assert all(site.startswith("loss.py:") for site in reads.sites)
    assert lines == {"aten._local_scalar_dense.default", "aten.index_put_.default", "aten.index.Tensor"}
