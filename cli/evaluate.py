"""``purenn evaluate``: test accuracy of a saved checkpoint. The model, read from a file, is
checked from its layers' shapes before it runs: it must take the images (flat rows of 784
pixels, or the per-sample shape ``--input-shape`` gives them, e.g. ``28,28,1``), give one output
per class and compute at most :data:`purenn.summary.MAX_SAMPLE_VALUES` values a sample."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console

from purenn.errors import ArgumentError, ShapeError
from purenn.io.datasets import DATASETS
from purenn.metrics import accuracy
from purenn.summary import check_sample_size
from purenn.training import predict
from purenn_cli.checkpoint_files import read_model_file
from purenn_cli.errors import fail
from purenn_cli.report import load_data, per_class_table
from purenn_cli.summary import parse_shape


def evaluate(
    model: Annotated[Path, typer.Argument(help="A checkpoint written by `purenn mnist --save`.")],
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files.")] = None,
    dataset: Annotated[str | None, typer.Option(help=f"One of: {', '.join(DATASETS)} [default: the one the checkpoint was trained on, else mnist].", show_default=False)] = None,
    input_shape: Annotated[str | None, typer.Option(help="Per-sample shape the model takes, e.g. 28,28,1: the images are reshaped to it [default: flat rows of 784 pixels].", show_default=False)] = None,
) -> None:
    """Report a saved model's accuracy on the test set, with a confusion matrix."""
    console = Console()
    checkpoint = read_model_file(console, model)
    net, params = checkpoint.model, checkpoint.params
    dataset = dataset or trained_on(checkpoint.metadata)
    if dataset not in DATASETS:
        raise fail(console, f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    shape = None if input_shape is None else parse_shape(console, input_shape)
    data = load_data(console, data_dir, dataset, splits=("test",))
    assert data.test is not None
    images = data.test.images if shape is None else reshaped(console, data.test.images, shape)
    classes = DATASETS[dataset].num_classes
    try:  # from the layers' shapes, before the model runs
        out_shape = check_sample_size(net, images.shape[1:])
        if out_shape is not None:
            _check_outputs(console, model, dataset, out_shape, classes)
        outputs = predict(net, params, images, state=checkpoint.state)
    except ShapeError as e:
        advice = "" if shape is not None else \
            "; a model taking images of another shape needs --input-shape, e.g. --input-shape 28,28,1"
        raise fail(console, f"the model does not fit {dataset}'s images: {e.message}{advice}") from None
    except ArgumentError as e:
        raise fail(console, f"{model}: {e.message}") from None
    _check_outputs(console, model, dataset, outputs.shape[1:], classes)
    console.print(per_class_table(outputs, data.test.labels, f"{model}: test set"))
    test_acc = accuracy(outputs, data.test.labels)
    console.print(f"test accuracy [bold]{test_acc:.2%}[/bold] on {len(outputs)} samples", highlight=False)


def reshaped(console: Console, images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The images (flat rows) as samples of ``shape``, which must hold as many values."""
    size = math.prod(shape)
    if size != math.prod(images.shape[1:]):
        raise fail(console, f"--input-shape {','.join(map(str, shape))} holds {size} values per sample, "
                            f"but the images have {math.prod(images.shape[1:])} (28 x 28 pixels); give "
                            "a shape of that many values, e.g. 28,28,1 or 784")
    return images.reshape((len(images), *shape))


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
