"""``purenn summary``: the layers, shapes and sizes of a saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from purenn.errors import ShapeError
from purenn.summary import summary as model_summary
from purenn.validation import shape, to_shape
from purenn_cli.checkpoint_files import read_model_file
from purenn_cli.errors import fail
from purenn_cli.report import print_summary

#: per-sample input shape of the datasets `purenn mnist` trains on (28 x 28 images, as flat rows)
DATASET_INPUT = (784,)


def summary(
    model: Annotated[Path, typer.Argument(help="A checkpoint written by `purenn mnist --save` or `purenn.save_checkpoint`.")],
    input_shape: Annotated[str | None, typer.Option(help="Per-sample input shape, e.g. 784 or 28,28,1 [default: 784 for a model trained by `purenn mnist`].", show_default=False)] = None,
    compact: Annotated[bool, typer.Option(help="Only the model's own layers, not those inside its blocks.")] = False,
) -> None:
    """Show a saved model's layers: output shapes, parameter counts, state sizes and totals."""
    console = Console()
    checkpoint = read_model_file(console, model)
    shape_ = parse_shape(console, input_shape) if input_shape is not None else default_shape(console, model, checkpoint.metadata)
    try:
        described = model_summary(checkpoint.model, shape_)
    except ShapeError as e:
        raise fail(console, f"{model}: the model cannot take inputs of shape {shape_}: {e.message}") from None
    print_summary(console, described, f"{model}", compact=compact)


def parse_shape(console: Console, text: str) -> tuple[int, ...]:
    """``"28,28,1"`` -> ``(28, 28, 1)``, or a message saying what a shape looks like."""
    try:
        value = to_shape([int(part) for part in text.replace("x", ",").split(",")])
        if not shape.kind(value) or not shape.test(value):
            raise ValueError
    except ValueError:
        raise fail(console, f"--input-shape: expected positive integers separated by commas, "
                            f"e.g. 784 or 28,28,1; got {text!r}") from None
    return value


def default_shape(console: Console, path: Path, metadata: dict[str, Any]) -> tuple[int, ...]:
    """The input shape of a checkpoint written by ``purenn mnist``; others need --input-shape."""
    if isinstance(metadata.get("run"), dict):
        return DATASET_INPUT
    raise fail(console, f"{path} does not say what input it takes (it was not written by "
                        "`purenn mnist`); give --input-shape, e.g. --input-shape 784")


