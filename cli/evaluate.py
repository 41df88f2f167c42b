"""``purenn evaluate``: test accuracy of a saved checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from purenn.errors import CheckpointError, ShapeError
from purenn.io.checkpoints import load_checkpoint
from purenn.io.datasets import DATASETS
from purenn.metrics import accuracy
from purenn.training import predict
from purenn_cli.report import fail, load_data, per_class_table


def evaluate(
    model: Annotated[Path, typer.Argument(help="A checkpoint written by `purenn mnist --save`.")],
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files.")] = None,
    dataset: Annotated[str, typer.Option(help=f"One of: {', '.join(DATASETS)}.")] = "mnist",
) -> None:
    """Report a saved model's accuracy on the test set, with a confusion matrix."""
    console = Console()
    try:
        net, params = load_checkpoint(model)
    except CheckpointError as e:
        raise fail(console, str(e)) from None
    data = load_data(console, data_dir, dataset)
    try:
        outputs = predict(net, params, data.test.images)
    except ShapeError as e:
        raise fail(console, f"the model does not fit {dataset}'s images: {e}") from None
    classes = int(data.test.labels.max()) + 1
    if outputs.ndim != 2 or outputs.shape[1] != classes:
        raise fail(
            console,
            f"{model}: the model gives outputs of shape {outputs.shape[1:]} per sample, but {dataset} "
            f"has {classes} classes; it needs one output per class",
        )
    console.print(per_class_table(outputs, data.test.labels, f"{model}: test set"))
    test_acc = accuracy(outputs, data.test.labels)
    console.print(f"test accuracy [bold]{test_acc:.2%}[/bold] on {len(outputs)} samples", highlight=False)
