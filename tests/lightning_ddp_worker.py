"""Train VBKGC + twins with Lightning DDP on CPU (2 gloo processes) and record what each rank saw.

Run by tests/test_lightning.py as ``python tests/lightning_ddp_worker.py OUTPUT_DIRECTORY``. Lightning's DDP launcher
re-runs this script for rank 1, so everything below runs once per rank. Each rank writes ``rank{r}.pt`` with its
batches (positives and twins negatives per epoch), its per-epoch mean loss and a digest of its final parameters;
rank 0 also writes ``metrics.json`` with the filtered test metrics of the trained and of the untrained model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path

import pytorch_lightning
import torch

from pykeen_vbkgc.lightning import train_lightning

#: the configuration shared with the test, which rebuilds the per-rank negatives from it
CONFIG = dict(
    dataset="nations",
    batch_size=128,
    num_negs_per_pos=4,
    seed=3,
    num_epochs=3,
    learning_rate=0.02,
)


class Recorder(pytorch_lightning.Callback):
    """Record each rank's batches and losses, and the initial parameters."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, torch.Tensor]]] = []
        self.losses: list[list[float]] = []
        self.initial_state: dict[str, torch.Tensor] | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.initial_state = copy.deepcopy(pl_module.model.state_dict())

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.batches.append([])
        self.losses.append([])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches[-1].append(dict(positives=batch["positives"].clone(), negatives=batch["negatives"].clone()))
        self.losses[-1].append(float(outputs["loss"]))


def digest(state: dict[str, torch.Tensor]) -> str:
    """Hash a state dict."""
    hasher = hashlib.sha256()
    for key in sorted(state):
        hasher.update(key.encode())
        hasher.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def main(output: Path) -> None:
    recorder = Recorder()
    result = train_lightning(
        dataset=CONFIG["dataset"],
        model="vbkgc",
        model_kwargs=dict(features=None, feature_dim=16, embedding_dim=32, loss_kwargs=dict(margin=4.0)),
        negative_sampler="twins",
        negative_sampler_kwargs=dict(num_negs_per_pos=CONFIG["num_negs_per_pos"]),
        batch_size=CONFIG["batch_size"],
        learning_rate=CONFIG["learning_rate"],
        num_epochs=CONFIG["num_epochs"],
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        random_seed=CONFIG["seed"],
        trainer_kwargs=dict(callbacks=[recorder], enable_progress_bar=False),
    )
    trainer = result.trainer
    rank = trainer.global_rank
    torch.save(
        dict(
            rank=rank,
            world_size=trainer.world_size,
            batches=recorder.batches,
            losses=recorder.losses,
            parameters=digest(result.model.state_dict()),
        ),
        output / f"rank{rank}.pt",
    )
    if not trainer.is_global_zero:
        return
    trained = result.evaluate(batch_size=64)
    result.model.load_state_dict(recorder.initial_state)
    untrained = result.evaluate(batch_size=64)
    key = "both.realistic.inverse_harmonic_mean_rank"
    metrics = dict(
        trained_mrr=trained.get_metric(key),
        trained_hits_at_10=trained.get_metric("both.realistic.hits_at_10"),
        untrained_mrr=untrained.get_metric(key),
    )
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
