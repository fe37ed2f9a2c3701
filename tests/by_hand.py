"""A record's figures recomputed here, from the dataset and the stored artifacts, without
the stage code: the split and bonafide draws, the models and their accuracies."""

from __future__ import annotations

import torch
from torch import nn

from mcbench.hashing import content_hash
from mcbench.kinds.data import Dataset, ImageSet
from mcbench.run.store import Store
from mcbench.toolkit.evaluation import recalibrate_batchnorm
from mcbench.toolkit.nets import Normalize


def permutation(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def evaluation_images(data: Dataset, config: dict) -> ImageSet:
    """The evaluation set of a record's cell: the test images after the defender's pool."""
    split = config["split"]
    order = permutation(len(data.test), split["seed"])[split["defender_pool"] :]
    if split["eval_size"]:
        order = order[: split["eval_size"]]
    return data.test.subset(order)


def bonafide_images(data: Dataset, config: dict) -> ImageSet:
    split = config["split"]
    pool = data.test.subset(permutation(len(data.test), split["seed"])[: split["defender_pool"]])
    seed = int(content_hash(["bonafide", config["seed"]], length=8), 16)
    return pool.subset(permutation(len(pool), seed)[: config["budget"]])


def model(network: nn.Module, data: Dataset, state: dict[str, torch.Tensor]) -> nn.Module:
    """``network`` behind the data's normalisation, as a plain nn.Sequential, holding
    ``state`` (which has the keys mcbench stores)."""
    model = nn.Sequential(Normalize(data.mean, data.std), network)
    model.load_state_dict({k: v for k, v in state.items() if k != "pruned_channels"})
    return model.eval()


def stored_model(results, stage: str, key: str, network: nn.Module, data: Dataset) -> nn.Module:
    return model(network, data, Store(results).load_tensors(stage, key))


def recalibrated(model: nn.Module, bonafide: ImageSet, batch_size: int) -> nn.Module:
    recalibrate_batchnorm(model, bonafide, torch.device("cpu"), batch_size)
    return model


@torch.no_grad()
def predictions(model: nn.Module, images: ImageSet) -> torch.Tensor:
    return model.eval()(images.images.float() / 255).argmax(1)


def accuracy(model: nn.Module, images: ImageSet) -> float:
    return (predictions(model, images) == images.labels).double().mean().item()
