"""The ``purenn`` command: a Typer app whose commands live one per module."""

from typing import Annotated, Optional

import typer

import purenn
from purenn_cli import compare, diff, evaluate, lr_find, mnist, plot, reproduce, resume, summary, xor
from purenn_cli.errors import guarded

app = typer.Typer(
    help="purenn: functional neural networks in plain NumPy.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"purenn {purenn.__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Print purenn's version and exit.")] = None,
) -> None:
    """purenn: functional neural networks in plain NumPy. Run `purenn COMMAND --help` for details."""
    if ctx.invoked_subcommand is None:  # bare `purenn`: the help, and success
        typer.echo(ctx.get_help())
        raise typer.Exit()


app.command("xor")(guarded(xor.xor))
app.command("mnist")(guarded(mnist.mnist))
app.command("evaluate")(guarded(evaluate.evaluate))
app.command("reproduce")(guarded(reproduce.reproduce))
app.command("summary")(guarded(summary.summary))
app.command("resume")(guarded(resume.resume))
app.command("diff")(guarded(diff.diff))
app.command("plot")(guarded(plot.plot))
app.command("lr-find")(guarded(lr_find.lr_find))
app.command("compare")(guarded(compare.compare))

if __name__ == "__main__":  # pragma: no cover
    app()
