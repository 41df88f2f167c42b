"""The ``purenn`` command: a Typer app whose commands live one per module."""

import typer

from purenn_cli import evaluate, mnist, reproduce, xor

app = typer.Typer(
    help="purenn: functional neural networks in plain NumPy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def main() -> None:
    """purenn: functional neural networks in plain NumPy. Run `purenn COMMAND --help` for details."""

app.command("xor")(xor.xor)
app.command("mnist")(mnist.mnist)
app.command("evaluate")(evaluate.evaluate)
app.command("reproduce")(reproduce.reproduce)

if __name__ == "__main__":  # pragma: no cover
    app()
