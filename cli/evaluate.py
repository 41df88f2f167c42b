"""``purenn evaluate``: test accuracy of a saved checkpoint. The model, read from a file, is
checked from its layers' shapes before it runs: it must take the images, give one output per
class and compute at most :data:`purenn.summary.MAX_SAMPLE_VALUES` values a sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from purenn.errors import ArgumentError, CheckpointError, ShapeError
from purenn.io.checkpoints import read_checkpoint
from purenn.io.datasets import DATASETS
from purenn.metrics import accuracy
from purenn.summary import check_sample_size
from purenn.training import predict
from purenn_cli.errors import explain, fail
from purenn_cli.report import load_data, per_class_table


def evaluate(
    model: Annotated[Path, typer.Argument(help="A checkpoint written by `purenn mnist --save`.")],
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files.")] = None,
    dataset: Annotated[str | None, typer.Option(help=f"One of: {', '.join(DATASETS)} [default: the one the checkpoint was trained on, else mnist].", show_default=False)] = None,
) -> None:
    """Report a saved model's accuracy on the test set, with a confusion matrix."""
    console = Console()
    try:
        checkpoint = read_checkpoint(model)
    except CheckpointError as e:
        raise fail(console, explain(e)) from None
    net, params = checkpoint.model, checkpoint.params
    dataset = dataset or trained_on(checkpoint.metadata)
    if dataset not in DATASETS:
        raise fail(console, f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    data = load_data(console, data_dir, dataset, splits=("test",))
    assert data.test is not None
    classes = DATASETS[dataset].num_classes
    try:  # from the layers' shapes, before the model runs
        shape = check_sample_size(net, data.test.images.shape[1:])
        if shape is not None:
            _check_outputs(console, model, dataset, shape, classes)
        outputs = predict(net, params, data.test.images, state=checkpoint.state)
    except ShapeError as e:
        raise fail(console, f"the model does not fit {dataset}'s images: {e.message}") from None
    except ArgumentError as e:
        raise fail(console, f"{model}: {e.message}") from None
    _check_outputs(console, model, dataset, outputs.shape[1:], classes)
    console.print(per_class_table(outputs, data.test.labels, f"{model}: test set"))
    test_acc = accuracy(outputs, data.test.labels)
    console.print(f"test accuracy [bold]{test_acc:.2%}[/bold] on {len(outputs)} samples", highlight=False)


def _check_outputs(console: Console, model: Path, dataset: str, shape: tuple[int, ...], classes: int) -> None:
    if tuple(shape) != (classes,):
        raise fail(
            console,
            f"{model}: the model gives outputs of shape {tuple(shape)} per sample, but {dataset} "
            f"has {classes} classes; it needs one output per class",
        )


def trained_on(metadata: dict[str, Any]) -> str:
    """The dataset a checkpoint written by ``purenn mnist --save`` was trained on (``mnist`` when
    its metadata does not say)."""
    run = metadata.get("run")
    name = run.get("dataset") if isinstance(run, dict) else None
    return name if isinstance(name, str) else "mnist"
