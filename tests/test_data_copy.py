"""Which copy of the data a results folder was computed from: another copy is refused
before anything is reused, and a copy that cannot be read is an input error (exit 2)."""

import io
import json
import tarfile

from click.testing import CliRunner

from mcbench.cli import cli
from tests.conftest import TINY
from tests.test_datasets import make_images, write_folders

ON_CIFAR = (
    TINY.replace(
        "[{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 64, "
        "test_per_class: 40}]",
        "[{name: cifar10, source: folder, download: false}]",
    )
    .replace("widths: [8, 16]", "widths: [4]")
    .replace("split: {defender_pool: 60}", "split: {defender_pool: 10}")
    .replace("budgets: [40]", "budgets: [10]")
    .replace("connections: [linear, bezier]", "connections: [linear]")
    .replace("train: {epochs: 2, batch_size: 32, lr: 0.05}", "train: {epochs: 1, batch_size: 8}")
    .replace("{name: path, epochs: 2, batch_size: 32}", "{name: path, epochs: 1, batch_size: 8}")
)


def run(bench, results, data_root, cache):
    return CliRunner().invoke(
        cli,
        [
            "run",
            str(bench),
            "--results",
            str(results),
            "--data-root",
            str(data_root),
            "--cache-dir",
            str(cache),
        ],
    )


def test_artifacts_of_another_copy_of_the_data_are_refused(write_yaml, tmp_path):
    assert "cifar10" in ON_CIFAR and "defender_pool: 10" in ON_CIFAR
    first = write_folders(tmp_path / "copy-1", make_images(seed=0))
    second = write_folders(tmp_path / "copy-2", make_images(seed=1))
    results, cache = tmp_path / "results", tmp_path / "cache"
    done = run(write_yaml(ON_CIFAR), results, first, cache)
    assert done.exit_code == 0, done.output
    (record,) = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    assert str(first) in record["data_source"]
    endpoints = sorted((results / "artifacts" / "endpoint").glob("*.safetensors"))

    # a new cell that would reuse the endpoints, on the other copy
    grid5 = write_yaml(ON_CIFAR.replace("{grid: 3}", "{grid: 5}"), "grid5.yaml")
    refused = run(grid5, results, second, cache)
    assert refused.exit_code == 2, refused.output
    (message,) = [line for line in refused.output.splitlines() if line.startswith("error: ")]
    assert f"results folder {results}: the cached endpoint artifact" in message
    assert str(first) in message and str(second) in message
    assert "use another --results folder" in message
    assert len(list((results / "records").glob("*.json"))) == 1  # nothing ran
    assert sorted((results / "artifacts" / "endpoint").glob("*.safetensors")) == endpoints

    # the same copy reuses them, and another results folder takes the other copy
    assert run(grid5, results, first, cache).exit_code == 0
    elsewhere = run(grid5, tmp_path / "results-2", second, cache)
    assert elsewhere.exit_code == 0, elsewhere.output


def test_a_broken_torchvision_folder_is_an_input_error(write_yaml, tmp_path):
    broken = tmp_path / "data" / "cifar-10-batches-py"
    broken.mkdir(parents=True)
    (broken / "data_batch_1").write_bytes(b"not a pickle")
    bench = write_yaml(ON_CIFAR.replace("source: folder", "source: torchvision"))
    out = run(bench, tmp_path / "results", tmp_path / "data", tmp_path / "cache")
    assert out.exit_code == 2, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    assert f"{bench}: tracks.backdoor-repair.datasets: dataset 'cifar10' cannot be loaded" in (
        out.output
    )
    assert f"torchvision rejects {broken}" in out.output
    assert "Traceback" not in out.output
    assert not (tmp_path / "results" / "records").exists()


def test_a_truncated_archive_is_an_input_error(write_yaml, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        payload = bytes(range(256)) * 800
        member = tarfile.TarInfo("train/airplane/0.png")
        member.size = len(payload)
        archive.addfile(member, io.BytesIO(payload))
    data = tmp_path / "data"
    data.mkdir()
    (data / "cifar10-jpeg.tar.gz").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    bench = write_yaml(ON_CIFAR.replace("source: folder", "source: archive"))
    out = run(bench, tmp_path / "results", data, tmp_path / "cache")
    assert out.exit_code == 2, out.output
    assert f"{bench}: tracks.backdoor-repair.datasets: dataset 'cifar10' cannot be loaded" in (
        out.output
    )
    assert "Traceback" not in out.output
    assert f"{data / 'cifar10-jpeg.tar.gz'} is not a readable .tar.gz" in out.output
