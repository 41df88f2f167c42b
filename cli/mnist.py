"""``purenn mnist``: train a preset on MNIST with progress, results, checkpoint and run record."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import attrs
import typer
from rich.console import Console

from purenn.errors import ArgumentError, DivergenceError, PurennError, TrainingInterrupted
from purenn.io.atomic import check_writable
from purenn.io.checkpoints import save_checkpoint
from purenn.io.datasets import DATASETS
from purenn.io.environment import blas_threads
from purenn.io.records import write_record
from purenn.metrics import accuracy
from purenn.recipes.presets import PRESETS
from purenn.summary import summary as model_summary
from purenn.recipes.runs import RunConfig, run_record, train_preset
from purenn.training import predict
from purenn.training_state import TrainingState
from purenn.validation import MAX_THREADS
from purenn_cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, explain, fail
from purenn_cli.checkpoint_dir import (
    config_differences, describe_position, saved_config, saver, state_path,
)
from purenn_cli.checkpoint_dir import load as load_checkpoint_dir
from purenn_cli.options import positive_float
from purenn_cli.progress import format_loss, print_curves, training_progress
from purenn_cli.report import load_data, per_class_table, print_summary
from purenn_cli.mnist_seeds import mnist_experiment
from purenn_cli.signals import stop_requests

PRESET_HELP = "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())


def run(config: RunConfig, data_dir: Path | None, console: Console, *,
        checkpoint_dir: Path | None = None, resume: TrainingState | None = None,
        outputs: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Train ``config`` with a progress bar per epoch; return the trained run and its metrics.

    With ``checkpoint_dir``, the training state is saved there after every epoch, and Ctrl-C or
    SIGTERM stop the run after its current step, save it, and exit saying how to continue;
    ``resume`` continues a saved state."""
    data = load_data(console, data_dir, config.dataset)
    s = config.resolved()
    x, y = data.train.images, data.train.labels
    x_test, y_test = data.test.images, data.test.labels
    n = len(x) if config.limit is None else min(len(x), config.limit)
    console.print(
        f"[bold]{config.preset}[/bold] preset on {n} {config.dataset} training samples: "
        f"{s['epochs']} epochs, batch {s['batch_size']}, lr {s['lr']:g}, seed {config.seed}",
        highlight=False,
    )
    if resume is not None:
        console.print(f"continuing from {describe_position(resume)}", highlight=False)
    else:
        print_summary(console, model_summary(PRESETS[config.preset].model, x.shape[1:]),
                      f"the {config.preset} model", compact=True)
    save = None
    if checkpoint_dir is not None:
        save = saver(checkpoint_dir, PRESETS[config.preset].model, config, outputs or {})
    start = time.perf_counter()
    first_epoch = 1 if resume is None else resume.epoch + 1
    with training_progress(console) as progress, \
            (stop_requests() if checkpoint_dir is not None else contextlib.nullcontext()) as stop:
        tasks: list[int] = []

        def on_batch(done: int, total: int) -> None:
            if not tasks or progress.tasks[tasks[-1]].finished:
                label = f"epoch {first_epoch + len(tasks)}/{s['epochs']}"
                tasks.append(progress.add_task(label, total=total, status=""))
            if done == total or done % max(1, total // 100) == 0:
                progress.update(tasks[-1], completed=done)

        def on_epoch(log: Any) -> None:
            if tasks:
                progress.update(tasks[-1], status=f"loss {format_loss(log.loss)}  "
                                                  f"test accuracy {log.val_accuracy:.2%}")

        try:
            trained = train_preset(
                config, x, y, validation=(x_test, y_test), callback=on_epoch, on_batch=on_batch,
                checkpoint=save, stop=stop, resume=resume,
            )
        except DivergenceError as e:
            if checkpoint_dir is None:
                raise
            progress.stop()
            raise fail(console, f"{e.message}. No checkpoint or record was written; {checkpoint_dir} "
                                "keeps the training state of the last finished epoch. Try a smaller --lr.",
                       EXIT_FAILED) from None
        except TrainingInterrupted as e:
            progress.stop()
            raise fail(console, f"interrupted by {stop.name} at {describe_position(e.state)}; the "
                                f"training state is saved in {checkpoint_dir}. Continue with: "
                                f"purenn resume {checkpoint_dir}", stop.exit_code) from None
    seconds = time.perf_counter() - start
    outputs_ = predict(trained.model, trained.params, x_test, state=trained.state)
    test_acc = accuracy(outputs_, y_test)
    console.print(per_class_table(outputs_, y_test, "Test set: confusion matrix and accuracy per class"))
    history = trained.history
    if history.stopped_early:
        console.print(f"stopped early after epoch {len(history.epochs)}: the test loss had not "
                      f"improved for {config.patience} epochs; keeping epoch {history.best_epoch}'s params",
                      highlight=False)
    elif history.best_epoch is not None and history.best_epoch != len(history.epochs):
        console.print(f"keeping epoch {history.best_epoch}'s params, whose test loss was the lowest",
                      highlight=False)
    print_curves(console, trained.history.loss, trained.history.val_accuracy)
    console.print(
        f"test accuracy [bold]{test_acc:.2%}[/bold] on {len(y_test)} samples; "
        f"training took {seconds:.1f} s" + (" (this session)" if resume is not None else ""),
        highlight=False,
    )
    return {
        "trained": trained, "train_samples": n,
        "metrics": {"test_accuracy": test_acc, "train_seconds": seconds},
    }


def mnist(
    preset: Annotated[str, typer.Option(help=f"Training recipe. {PRESET_HELP}.")] = "mlp",
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the training set [default: the preset's].")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Samples per step [default: the preset's].")] = None,
    lr: Annotated[float | None, typer.Option(callback=positive_float, help="Learning rate [default: the preset's].")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="Seed of initialisation, shuffling and dropout [default: 0].", show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the four MNIST .gz files [default: $PURENN_DATA, else the cache, downloading if needed].")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Train on the first N samples only.")] = None,
    dataset: Annotated[str, typer.Option(help=f"Dataset in MNIST's four-file IDX layout: {', '.join(DATASETS)}.")] = "mnist",
    save: Annotated[Path | None, typer.Option(help="Write the trained model and params to this .npz checkpoint.")] = None,
    record: Annotated[Path | None, typer.Option(help="Write a JSON run record (config, versions, history, metrics, params digest).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="BLAS threads; results differ between thread counts, so the record keeps it [default: as NumPy's BLAS is set up].")] = None,
    patience: Annotated[int | None, typer.Option(min=1, help="Stop when the test loss has not improved for N epochs, keeping the best epoch's params.")] = None,
    checkpoint_dir: Annotated[str | None, typer.Option(help="Keep the latest training state in this folder (after every epoch, and on Ctrl-C or SIGTERM); `purenn resume DIR` continues it. Rerunning the same command continues it too.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="An experiment: run the recipe once per seed, e.g. 0-9 or 1,4,7; --record EXP.json then writes the experiment record and one run record per seed beside it.", show_default=False)] = None,
    jobs: Annotated[Optional[int], typer.Option(min=1, max=MAX_THREADS, help="With --seeds: runs at a time, in worker processes [default: one per core], each with cores / jobs BLAS threads unless --threads says otherwise.", show_default=False)] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="With --seeds: run on the Dask cluster whose scheduler is at this address (tcp://HOST:PORT); its workers need purenn and the data (--data-dir or $PURENN_DATA) at the same path.", show_default=False)] = None,
) -> None:
    """Train on MNIST and report test accuracy, a confusion matrix and the training time.

    Presets: `seed` replays the tutorial (try `--limit 5000 --epochs 3` for a run of seconds);
    `mlp` (default) reaches about 98.5% in about 11 s on 2 idle cores; `cnn` about 99.2% in
    about 33 s; `resnet` (BatchNorm, a residual block) about 99.4% in about 140 s. With `--checkpoint-dir DIR`, Ctrl-C saves the run and `purenn resume DIR`
    continues it.
    """
    console = Console()
    if dataset not in DATASETS:
        raise fail(console, f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    if seeds is None and (jobs is not None or scheduler is not None):
        raise fail(console, "--jobs and --scheduler run the seeds of an experiment: give --seeds too")
    try:  # the thread count in use is recorded, so that reproduce can use it again
        config = RunConfig(preset=preset, seed=seed or 0, epochs=epochs, batch_size=batch_size,
                           lr=lr, limit=limit, dataset=dataset,
                           threads=threads or (None if seeds else blas_threads() or None),
                           patience=patience)
    except ArgumentError as e:
        raise fail(console, e.message) from None
    if seeds is not None:
        for option, given in (("--seed", seed), ("--save", save), ("--checkpoint-dir", checkpoint_dir)):
            if given is not None:
                raise fail(console, f"{option} is for a single run; an experiment (--seeds) runs "
                                    "each seed from its start and writes only records")
        return mnist_experiment(console, config, seeds, jobs=jobs, scheduler=scheduler,
                                data_dir=data_dir, record=record)
    if save is not None and record is not None and save.resolve() == record.resolve():
        raise fail(console, f"--save and --record name the same file ({save}); give each its own")
    for option, path in (("--save", save), ("--record", record)):
        try:  # before training, not after it
            if path is not None:
                check_writable(path)
        except ArgumentError as e:
            raise fail(console, f"{option}: {e.message}") from None
    resume, folder = None, None
    if checkpoint_dir is not None:
        if not checkpoint_dir.strip():
            raise fail(console, "--checkpoint-dir: give the name of a folder")
        folder = Path(checkpoint_dir)
        resume = continued_run(console, folder, config)
    outputs = {"save": None if save is None else str(save.resolve()),
               "record": None if record is None else str(record.resolve()),
               "data_dir": None if data_dir is None else str(data_dir.resolve())}
    try:
        result = run(config, data_dir, console, checkpoint_dir=folder, resume=resume,
                     outputs=outputs)
    except KeyboardInterrupt:
        raise fail(console, "interrupted during training (Ctrl-C): no checkpoint or record was written",
                   EXIT_INTERRUPTED) from None
    save_results(console, config, result, save, record)


def continued_run(console: Console, folder: Path, config: RunConfig) -> TrainingState | None:
    """The state saved in ``folder`` by an earlier run of these settings (None: a new run);
    a folder holding a run of other settings, or something else, is refused."""
    if folder.exists() and not folder.is_dir():
        raise fail(console, f"--checkpoint-dir: {folder} exists and is not a folder")
    if not state_path(folder).exists():
        try:
            folder.mkdir(exist_ok=True)
        except OSError as e:
            raise fail(console, f"--checkpoint-dir: cannot create {folder} ({e.strerror or e})") from None
        return None
    try:
        saved = load_checkpoint_dir(folder)
        differences = config_differences(saved_config(saved), config)
    except PurennError as e:
        raise fail(console, f"--checkpoint-dir: {state_path(folder)} cannot be continued "
                            f"({explain(e)}); choose another folder") from None
    if differences:
        raise fail(console, f"--checkpoint-dir: {folder} holds a run with other settings "
                            f"({'; '.join(differences)}); continue that one with `purenn resume "
                            f"{folder}`, or choose another folder")
    return saved.state


def save_results(console: Console, config: RunConfig, result: dict[str, Any], save: Path | None,
                 record: Path | None) -> None:
    """Write the checkpoint and the run record the command was asked for."""
    try:
        trained = result["trained"]
        if save is not None:
            save_checkpoint(save, trained.model, trained.params, state=trained.state,
                            metadata={"run": attrs.asdict(config), "metrics": result["metrics"]})
            console.print(f"saved checkpoint to {save}")
        if record is not None:
            write_record(record, run_record(config, trained, result["train_samples"], result["metrics"]))
            console.print(f"wrote run record to {record} (digest {trained.digest[:16]}...)")
    except (PurennError, OSError) as e:
        raise fail(console, explain(e) if isinstance(e, PurennError) else str(e), EXIT_FAILED) from None
