"""``purenn mnist``: train a preset on MNIST with progress, results, checkpoint and run record."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID

from purenn.errors import ArgumentError, DivergenceError, PurennError, TrainingInterrupted
from purenn.io.checkpoints import Checkpoint, read_checkpoint, save_checkpoint
from purenn.io.datasets import DATASETS
from purenn.recipes.presets import PRESETS
from purenn.recipes.records import write_run_record
from purenn.recipes.runs import (
    DATA_SEED,
    RunConfig,
    RunResult,
    check_new_run,
    run_preset,
    split_of,
    start_from,
)
from purenn.splits import split_fraction
from purenn.summary import summary as model_summary
from purenn.training_state import TrainingState
from purenn.validation import MAX_THREADS
from purenn_cli.checkpoint_dir import (
    Saver,
    check_outputs,
    config_differences,
    describe_position,
    locked,
    prepare,
    resume_command,
    saved_config,
    saver,
    state_path,
)
from purenn_cli.checkpoint_dir import load as load_checkpoint_dir
from purenn_cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, explain, fail
from purenn_cli.mnist_seeds import mnist_experiment
from purenn_cli.options import checked, positive_float
from purenn_cli.progress import format_loss, print_curves, training_progress
from purenn_cli.report import load_data, per_class_table, print_summary
from purenn_cli.signals import EXIT_CODES, StopRequests, sigterm_exits, stop_requests

PRESET_HELP = "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())


def run(config: RunConfig, data_dir: Path | None, console: Console, *,
        saver: Saver | None = None, resume: TrainingState | None = None,
        init: Checkpoint | None = None) -> RunResult:
    """Train and test ``config`` (:func:`purenn.recipes.runs.run_preset`) with a progress bar per
    epoch, then show the results; return them.

    With a ``saver`` (of a ``--checkpoint-dir``), the training state is saved after every epoch,
    and Ctrl-C or SIGTERM stop the run after its current step, save it, and exit saying how to
    continue; ``resume`` continues a saved state. ``init``: the checkpoint a config of
    ``--init-from`` starts from."""
    data = load_data(console, data_dir, config.dataset)
    try:
        split_of(config, data.train.labels)  # before anything runs
    except ArgumentError as e:
        raise fail(console, f"--validation: {e.message}") from None
    announce(console, config, data.train.images, resume)
    with training_progress(console) as progress, \
            (stop_requests() if saver is not None else contextlib.nullcontext()) as stop:
        on_batch, on_epoch = epoch_bars(progress, config, resume)
        try:
            result = run_preset(config, data, init=init, callback=on_epoch, on_batch=on_batch,
                                checkpoint=saver, stop=stop, resume=resume)
        except DivergenceError as e:
            if saver is None:
                raise
            progress.stop()
            raise fail(console, f"{e.message}. No checkpoint or record was written; {saver.holds()}. "
                                "Try a smaller --lr.", EXIT_FAILED) from None
        except TrainingInterrupted as e:
            progress.stop()
            raise fail(console, interrupted(saver, stop.name, e.state), stop.exit_code) from None
    signal_after_training(stop)
    show_results(console, result, data.test.labels, resumed=resume is not None)
    return result


def announce(console: Console, config: RunConfig, x: np.ndarray, resume: TrainingState | None) -> None:
    """What is about to run: the preset and its settings (the samples held out for validation,
    the checkpoint it starts from), then the model, or where a resumed run continues from."""
    s = config.resolved()
    n = len(x) if config.limit is None else min(len(x), config.limit)
    seeds = f"data seed {config.data_seed} and seed {config.seed}" if config.vary_split else \
        f"data seed {config.data_seed}"
    held = "" if config.validation is None else (
        f" ({config.validation * 100:g}% held out for validation, stratified, split by {seeds})")
    console.print(
        f"[bold]{config.preset}[/bold] preset on {n} {config.dataset} training samples{held}: "
        f"{s['epochs']} epochs, batch {s['batch_size']}, lr {s['lr']:g}, seed {config.seed}",
        highlight=False,
    )
    if resume is not None:
        console.print(f"continuing from {describe_position(resume)}", highlight=False)
        return
    if config.init_digest is not None:
        console.print(escape(f"starting from the params of {config.init_from} (params digest "
                             f"{config.init_digest[:16]}...)"), highlight=False)
    print_summary(console, model_summary(PRESETS[config.preset].model, x.shape[1:]),
                  f"the {config.preset} model", compact=True)


def epoch_bars(progress: Progress, config: RunConfig,
               resume: TrainingState | None) -> tuple[Callable[[int, int], None], Callable[[Any], None]]:
    """``on_batch`` and ``callback`` for the run: a bar per epoch (numbered from the resumed
    run's next epoch), its status the epoch's loss and the accuracy on the set it watches
    (validation, else test)."""
    first_epoch = 1 if resume is None else resume.epoch + 1
    epochs = config.resolved()["epochs"]
    tasks: list[TaskID] = []

    def on_batch(done: int, total: int) -> None:
        if not tasks or progress.tasks[tasks[-1]].finished:
            tasks.append(progress.add_task(f"epoch {first_epoch + len(tasks)}/{epochs}", total=total,
                                           status=""))
        if done == total or done % max(1, total // 100) == 0:
            progress.update(tasks[-1], completed=done)

    def on_epoch(log: Any) -> None:
        if tasks:
            progress.update(tasks[-1], status=f"loss {format_loss(log.loss)}  "
                                              f"{config.evaluated_on} accuracy {log.val_accuracy:.2%}")

    return on_batch, on_epoch


def signal_after_training(stop: StopRequests | None) -> None:
    """A Ctrl-C or SIGTERM that came after the last step, while the test set was predicted, ends
    the command as it does outside training (the training state is saved: it ended)."""
    if stop is None or not stop():
        return
    if stop.exit_code == EXIT_CODES[signal.SIGTERM]:
        raise SystemExit(stop.exit_code)  # as sigterm_exits does
    raise KeyboardInterrupt


def show_results(console: Console, result: RunResult, labels: np.ndarray, *, resumed: bool) -> None:
    """The confusion matrix (``labels``: the test set's), how early stopping ended the run, the
    curves (of the set the run watched) and the test accuracy."""
    console.print(per_class_table(result.test_outputs, labels,
                                  "Test set: confusion matrix and accuracy per class"))
    history, watched = result.trained.history, result.config.evaluated_on
    if history.stopped_early:
        console.print(f"stopped early after epoch {len(history.epochs)}: the {watched} loss had not "
                      f"improved for {result.config.patience} epochs; keeping epoch "
                      f"{history.best_epoch}'s params", highlight=False)
    elif history.best_epoch is not None and history.best_epoch != len(history.epochs):
        console.print(f"keeping epoch {history.best_epoch}'s params, whose {watched} loss was the lowest",
                      highlight=False)
    # labelled with validation only: without it, the chart is the one runs have always shown
    print_curves(console, history.loss, history.val_accuracy,
                 "accuracy on the validation set" if watched == "validation" else "")
    once = "" if result.validation_samples is None else " (read once, after training)"
    console.print(
        f"test accuracy [bold]{result.test_accuracy:.2%}[/bold] on {len(labels)} samples{once}; "
        f"training took {result.train_seconds:.1f} s" + (" (this session)" if resumed else ""),
        highlight=False,
    )


def mnist(
    preset: Annotated[str, typer.Option(help=f"Training recipe. {PRESET_HELP}.")] = "mlp",
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the training set [default: the preset's].")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Samples per step [default: the preset's].")] = None,
    lr: Annotated[float | None, typer.Option(callback=positive_float, help="Learning rate [default: the preset's].")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed of initialisation, shuffling and dropout [default: 0].", show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the four MNIST .gz files [default: $PURENN_DATA, else the cache, downloading if needed].")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Train on the first N samples only.")] = None,
    dataset: Annotated[str, typer.Option(help=f"Dataset in MNIST's four-file IDX layout: {', '.join(DATASETS)}.")] = "mnist",
    save: Annotated[Path | None, typer.Option(help="Write the trained model and params to this .npz checkpoint.")] = None,
    record: Annotated[Path | None, typer.Option(help="Write a JSON run record (config, versions, history, metrics, params digest).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="BLAS threads; results differ between thread counts, so the record keeps it [default: as NumPy's BLAS is set up].")] = None,
    patience: Annotated[int | None, typer.Option(min=1, help="With --validation: stop when the validation loss has not improved for N epochs, keeping the best epoch's params.")] = None,
    validation: Annotated[float | None, typer.Option(callback=checked(split_fraction), help="Hold out this fraction of the training set (stratified by label) as a validation set: each epoch's metrics and --patience watch it, and the test set is read once, after training.", show_default=False)] = None,
    data_seed: Annotated[int | None, typer.Option(min=0, help=f"With --validation: the seed of the split [default: {DATA_SEED}, the same split whatever --seed is].", show_default=False)] = None,
    vary_split: Annotated[bool, typer.Option("--vary-split", help="With --validation: draw the split from --data-seed and --seed together, one split per seed (with --seeds, the spread then includes the data's).")] = False,
    init_from: Annotated[Path | None, typer.Option(help="Start from this checkpoint's params and state (fine-tuning, or training on) instead of the preset's initialisation; it must hold the preset's model. The record keeps its file name and params digest: `purenn reproduce RUN.json --init-from FILE` repeats the run.", show_default=False)] = None,
    checkpoint_dir: Annotated[str | None, typer.Option(help="Keep the latest training state in this folder (after every epoch, and on Ctrl-C or SIGTERM); `purenn resume DIR` continues it. Rerunning the same command continues it too. One run at a time: the folder's lock file (purenn.lock) names the run using it. With --seeds: each run keeps its state in a folder of its own inside, so an interrupted experiment's runs resume mid-run.")] = None,
    seeds: Annotated[str | None, typer.Option(help="An experiment: run the recipe once per seed, e.g. 0-9 or 1,4,7; --record EXP.json then writes the experiment record (after every finished run: Ctrl-C keeps them, `purenn resume EXP.json` continues) and one run record per run beside it.", show_default=False)] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="With --seeds: sweep a run setting, NAME=V1,V2,... (e.g. lr=1e-3,4e-3; repeat for a grid): every combination runs once per seed. NAME is one of the run settings the options give (lr, epochs, batch_size, ...).", show_default=False)] = None,
    jobs: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="With --seeds: runs at a time, in worker processes [default: one per core], each with cores / jobs BLAS threads unless --threads says otherwise.", show_default=False)] = None,
    scheduler: Annotated[str | None, typer.Option(help="With --seeds: run on the Dask cluster whose scheduler is at this address (tcp://HOST:PORT); its workers need purenn and the data (--data-dir or $PURENN_DATA) at the same path.", show_default=False)] = None,
) -> None:
    """Train on MNIST and report test accuracy, a confusion matrix and the training time.

    Presets: `seed` replays the tutorial (try `--limit 5000 --epochs 3` for a run of seconds);
    `mlp` (default) reaches about 98.5% in about 11 s on 2 idle cores; `cnn` about 99.2% in
    about 33 s; `resnet` (BatchNorm, a residual block) about 99.4% in about 140 s. With `--checkpoint-dir DIR`, Ctrl-C saves the run and `purenn resume DIR`
    continues it. With `--validation 0.1`, each epoch (and --patience) watches a held-out part
    of the training set, and the test set is read once, after training.
    """
    console = Console()
    if dataset not in DATASETS:
        raise fail(console, f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    if seeds is None and (jobs is not None or scheduler is not None or sets):
        raise fail(console, "--jobs, --scheduler and --set run an experiment: give --seeds too")
    if validation is None and (data_seed is not None or vary_split):
        raise fail(console, "--data-seed and --vary-split choose the validation split: give "
                            "--validation FRACTION too (such as --validation 0.1)")
    try:
        config = RunConfig(preset=preset, seed=seed or 0, epochs=epochs, batch_size=batch_size, lr=lr,
                           limit=limit, dataset=dataset, threads=threads, patience=patience,
                           validation=validation, data_seed=DATA_SEED if data_seed is None else data_seed,
                           vary_split=vary_split)
        if seeds is None:  # the count in use is recorded, so that reproduce can use it again
            config = config.with_threads_in_use()
    except ArgumentError as e:
        raise fail(console, e.message) from None
    refuse_test_set_selection(console, config)
    if seeds is not None:
        for option, given in (("--seed", seed), ("--save", save), ("--init-from", init_from)):
            if given is not None:
                raise fail(console, f"{option} is for a single run; an experiment (--seeds) runs "
                                    "each seed from its start and writes only records")
        options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "limit": limit, "threads": threads,
                   "patience": patience, "preset": preset if preset != "mlp" else None,
                   "dataset": dataset if dataset != "mnist" else None, "validation": validation,
                   "data_seed": data_seed, "vary_split": vary_split or None}
        return mnist_experiment(console, config, seeds, sets=sets or [],
                                given={k for k, v in options.items() if v is not None}, jobs=jobs,
                                scheduler=scheduler, data_dir=data_dir, record=record,
                                checkpoint_dir=checkpoint_folder(console, checkpoint_dir))
    folder = checkpoint_folder(console, checkpoint_dir)
    start = None
    if init_from is not None:
        start, config = starting_point(console, init_from, config)
    check_outputs(console, {"--save": save, "--record": record}, folder,  # before training
                  {} if init_from is None else {"the --init-from checkpoint": init_from})
    if folder is None:
        return save_results(console, train(console, config, data_dir, init=start), save, record)
    checkpointed_run(console, folder, config, data_dir, save, record, start)


def refuse_test_set_selection(console: Console, config: RunConfig) -> None:
    """A new run must not choose by the test set (:func:`purenn.recipes.runs.check_new_run`):
    ``--patience`` needs ``--validation``. (Records of such runs made before still reproduce.)"""
    try:
        check_new_run(config)
    except ArgumentError:
        raise fail(console, "--patience without --validation would keep the epoch whose test loss was "
                            "the lowest, choosing by the test set, and the test accuracy would then "
                            "overstate the model's: hold out a validation set too (such as "
                            "--validation 0.1)") from None


def starting_point(console: Console, path: Path, config: RunConfig) -> tuple[Checkpoint, RunConfig]:
    """The checkpoint ``--init-from`` names (read with every check of :func:`read_checkpoint`),
    and ``config`` starting from it (:func:`purenn.recipes.runs.start_from`: it must hold the
    preset's model); else a message saying why not."""
    try:
        checkpoint = read_checkpoint(path)
        return checkpoint, start_from(config, checkpoint, path.name)
    except PurennError as e:
        raise fail(console, f"--init-from: {explain(e)}") from None


def checkpoint_folder(console: Console, option: str | None) -> Path | None:
    """The folder ``--checkpoint-dir`` names (None without one); a blank name is refused."""
    if option is None:
        return None
    if not option.strip():
        raise fail(console, "--checkpoint-dir: give the name of a folder")
    return Path(option)


def checkpointed_run(console: Console, folder: Path, config: RunConfig, data_dir: Path | None,
                     save: Path | None, record: Path | None, start: Checkpoint | None = None) -> None:
    """The run with its state kept in ``folder`` (continuing the one there, of these settings),
    holding the folder's lock until its outputs are written; ``start``: the checkpoint of
    ``--init-from`` (a run continued from the folder's state needs it no more)."""
    outputs = {k: None if p is None else str(p.resolve())
               for k, p in (("save", save), ("record", record), ("data_dir", data_dir))}
    prepare(console, folder)
    with sigterm_exits(), locked(console, folder):
        resume = continued_run(console, folder, config)
        keep = saver(folder, PRESETS[config.preset].model, config, outputs, warner(console), resume)
        result = train(console, config, data_dir, saver=keep, resume=resume, init=start)
        save_results(console, result, save, record)


def train(console: Console, config: RunConfig, data_dir: Path | None, **options: Any) -> RunResult:
    """:func:`run`, with Ctrl-C outside a checkpointed run's training said to write nothing."""
    try:
        return run(config, data_dir, console, **options)
    except KeyboardInterrupt:
        raise fail(console, "interrupted during training (Ctrl-C): no checkpoint or record was written",
                   EXIT_INTERRUPTED) from None


def warner(console: Console) -> Callable[[str], None]:
    def warn(message: str) -> None:
        console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)

    return warn


def interrupted(saver: Saver | None, signal_name: str, state: TrainingState) -> str:
    """What a run stopped by a signal says: where it stopped, and how to continue it."""
    where = f"interrupted by {signal_name} at {describe_position(state)}"
    if saver is None:
        return where
    command = resume_command(saver.folder, saver.metadata["outputs"])
    if saver.failure is None:
        return f"{where}; the training state is saved in {saver.folder}. Continue with: {command}"
    then = f"; continue from there with: {command}" if saver.saved is not None else ""
    return f"{where}; the training state could not be saved ({saver.failure}): {saver.holds()}{then}"


def continued_run(console: Console, folder: Path, config: RunConfig) -> TrainingState | None:
    """The state saved in ``folder`` by an earlier run of these settings (None: a new run);
    a folder holding a run of other settings, or something else, is refused."""
    if not state_path(folder).exists():
        return None
    try:
        saved = load_checkpoint_dir(folder, console)
        differences = config_differences(saved_config(saved), config)
    except PurennError as e:
        raise fail(console, f"--checkpoint-dir: {state_path(folder)} cannot be continued "
                            f"({explain(e)}); choose another folder") from None
    if differences:
        raise fail(console, f"--checkpoint-dir: {folder} holds a run with other settings "
                            f"({'; '.join(differences)}); continue that one with `purenn resume "
                            f"{folder}`, or choose another folder")
    return saved.state


def save_results(console: Console, result: RunResult, save: Path | None, record: Path | None) -> None:
    """Write the checkpoint and the run record the command was asked for, each on its own: one
    that cannot be written (a full disk) is reported, the other is still written, and the
    command then exits with EXIT_FAILED."""
    trained = result.trained
    writers: list[tuple[str, Path | None, Callable[[], None], str]] = [
        ("--save", save, lambda: save_checkpoint(
            save, trained.model, trained.params, state=trained.state,  # type: ignore[arg-type]
            metadata=result.checkpoint_metadata()),
         f"saved checkpoint to {save}"),
        ("--record", record, lambda: write_run_record(record, result.record()),  # type: ignore[arg-type]
         f"wrote run record to {record} (digest {trained.digest[:16]}...)"),
    ]
    failed = False
    for option, path, write, done in writers:
        if path is None:
            continue
        try:
            write()
        except (PurennError, OSError) as e:
            failed = True
            fail(console, f"{option} {path} was not written: "
                          f"{explain(e) if isinstance(e, PurennError) else e.strerror or e}")
            continue
        console.print(done, highlight=False, markup=False)
    if failed:
        raise typer.Exit(EXIT_FAILED)
