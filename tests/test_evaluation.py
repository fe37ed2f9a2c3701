"""BatchNorm recalibration against statistics computed by hand."""

import torch
from torch import nn

from mcbench.kinds.data import ImageSet
from mcbench.toolkit.evaluation import predict, recalibrate_batchnorm


def test_recalibration_matches_hand_computed_statistics():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.BatchNorm2d(4), nn.Dropout(0.9), nn.Flatten())
    images = torch.randint(0, 256, (23, 3, 6, 6), dtype=torch.uint8)
    data = ImageSet(images, torch.zeros(23, dtype=torch.int64))
    bn = model[1]
    bn.running_mean.fill_(7.0)
    recalibrate_batchnorm(model, data, torch.device("cpu"), batch_size=10)  # batches 10, 10, 3

    with torch.no_grad():
        feats = conv(images.float() / 255)  # [N, 4, H, W]
    per_channel = feats.permute(1, 0, 2, 3).reshape(4, 23, -1)
    expected_mean = per_channel.reshape(4, -1).mean(1)
    sizes = [10, 10, 3]
    chunks = torch.split(per_channel, sizes, dim=1)
    variances = [c.reshape(4, -1).var(1, unbiased=True) for c in chunks]
    expected_var = sum(n * v for n, v in zip(sizes, variances)) / 23
    assert torch.allclose(bn.running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(bn.running_var, expected_var, atol=1e-5)
    assert not model.training and bn.momentum == 0.1  # restored


def test_augmented_passes_average_the_statistics_of_every_augmented_copy():
    """k passes with the training's crop and flip: the running mean is the mean over the k
    augmented copies, drawn batch by batch from one generator of the seed, as by hand."""
    from mcbench.kinds.data import as_batch
    from mcbench.toolkit.augment import random_crop_flip

    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.BatchNorm2d(4), nn.Flatten())
    images = torch.randint(0, 256, (13, 3, 8, 8), dtype=torch.uint8)
    data = ImageSet(images, torch.zeros(13, dtype=torch.int64))
    recalibrate_batchnorm(model, data, torch.device("cpu"), 5, passes=3, augment_seed=11)

    generator = torch.Generator().manual_seed(11)
    feats = []
    with torch.no_grad():
        for _ in range(3):
            for start in range(0, 13, 5):
                x = random_crop_flip(as_batch(images[start : start + 5]), generator)
                feats.append(conv(x))
    expected = torch.cat(feats).permute(1, 0, 2, 3).reshape(4, -1).mean(1)
    assert torch.allclose(model[1].running_mean, expected, atol=1e-5)
    # without augmentation, more passes over the same images change nothing
    plain = nn.Sequential(conv, nn.BatchNorm2d(4), nn.Flatten())
    recalibrate_batchnorm(plain, data, torch.device("cpu"), 5)
    again = nn.Sequential(conv, nn.BatchNorm2d(4), nn.Flatten())
    recalibrate_batchnorm(again, data, torch.device("cpu"), 5, passes=3)
    assert torch.allclose(plain[1].running_mean, again[1].running_mean, atol=1e-6)
    assert not torch.allclose(plain[1].running_mean, model[1].running_mean, atol=1e-4)


def test_predict_is_dropout_free_and_batched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(12, 3))
    images = torch.randint(0, 256, (7, 3, 2, 2), dtype=torch.uint8)
    data = ImageSet(images, torch.zeros(7, dtype=torch.int64))
    out = predict(model, data, torch.device("cpu"), batch_size=3)
    model.eval()
    assert torch.allclose(out, model(images.float() / 255))
