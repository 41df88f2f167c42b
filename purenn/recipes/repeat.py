"""What a preset run was, as its run record says it, and whether this purenn repeats it (see
:mod:`purenn.recipes.runs`): :func:`describe` and :func:`run_record` make the record's data from
a :class:`~purenn.recipes.config.RunConfig`; :func:`repeatable_config` reads the config back
and refuses a run this purenn would compute differently."""

from __future__ import annotations

import re
from typing import Any

import attrs

from purenn.errors import RecordError
from purenn.io.environment import blas_thread_limit
from purenn.io.records import make_record
from purenn.io.serialize import to_data
from purenn.optim.optimizers import SGD
from purenn.optim.transforms import ADAM_CHANGED
from purenn.recipes.config import RunConfig
from purenn.recipes.presets import PRESETS
from purenn.recipes.train import TrainedRun

__all__ = ["arithmetic_change", "config_from_record", "describe", "record_differences", "repeatable_config",
           "run_record", "same_update"]

def describe(config: RunConfig, n_train: int, n_validation: int | None = None) -> dict[str, Any]:
    """The run's full configuration as JSON data: overrides, resolved settings, model,
    optimizer, the samples trained on, and ``evaluated_on``, the set each epoch's ``val_*``
    metrics (and early stopping) come from; with a validation split, ``validation_samples``
    (``n_validation``: how many it held out)."""
    described = {
        "run": attrs.asdict(config),
        "resolved": config.resolved(),
        "model": to_data(PRESETS[config.preset].model),
        "update": to_data(config.optimizer(n_train)),
        "train_samples": n_train,
        "evaluated_on": config.evaluated_on,
    }
    if n_validation is not None:
        described["validation_samples"] = n_validation
    return described


def run_record(config: RunConfig, trained: TrainedRun, n_train: int,
               metrics: dict[str, Any], *, validation_samples: int | None = None,
               provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run record: configuration, seed, versions, history, metrics, params digest (which
    covers the layers' state too when the model has any), and ``provenance`` when given (what
    the run read: :mod:`purenn.io.provenance`). ``versions`` is read with the run's BLAS thread
    limit in force, so ``blas_threads`` is the count the run used. ``validation_samples``: how
    many the run held out (with ``config.validation``)."""
    extra: dict[str, Any] = {} if not provenance else {"provenance": provenance}
    if config.patience is not None:
        extra["early_stopping"] = {"monitor": "val_loss", "patience": config.patience,
                                   "stopped_early": trained.history.stopped_early,
                                   "best_epoch": trained.history.best_epoch}
    with blas_thread_limit(config.threads):
        return make_record(
            config=describe(config, n_train, validation_samples),
            seed=config.seed,
            digest=trained.digest,
            history=[attrs.asdict(e) for e in trained.history.epochs],
            **extra,
            metrics=metrics,
        )


def config_from_record(record: dict[str, Any]) -> RunConfig:
    """The :class:`RunConfig` a run record (as :func:`purenn.recipes.records.read_run_record` returns it)
    was made with; :class:`~purenn.errors.RecordError` if it holds none."""
    try:
        return RunConfig(**record["config"]["run"])
    except (KeyError, TypeError, ValueError) as e:
        raise RecordError(f"not a purenn mnist run record ({e})") from None


def repeatable_config(record: dict[str, Any]) -> RunConfig:
    """The :class:`RunConfig` that repeats a run record here, or a
    :class:`~purenn.errors.RecordError` saying why this purenn cannot: the arithmetic of its
    update rule changed since the purenn that made it (:func:`arithmetic_change`), or the
    preset is no longer what the record describes (:func:`record_differences`)."""
    config = config_from_record(record)
    made_by = record.get("versions", {}).get("purenn", "?")
    change = arithmetic_change(record)
    if change is not None:
        raise RecordError(f"the record was made by purenn {made_by}, and {change}; reproduce it "
                          f"with purenn {made_by}")
    changed = record_differences(record, config)
    if changed:
        raise RecordError(f"the record's {' and '.join(changed)} differ from this purenn's "
                          f"{config.preset!r} preset (recorded with purenn {made_by}); reproduce "
                          "it with that version")
    return config


def arithmetic_change(record: dict[str, Any]) -> str | None:
    """What this purenn computes differently for the record's update rule than the version that
    made it (from ``versions.purenn``), or None: Adam's arithmetic changed in
    :data:`~purenn.optim.transforms.ADAM_CHANGED`'s version."""
    since, what = ADAM_CHANGED
    made_by = _version(record.get("versions", {}).get("purenn"))
    if made_by is not None and made_by >= _version(since):  # type: ignore[operator]
        return None
    if not _uses_old_adam(record.get("config", {}).get("update")):
        return None
    return f"purenn {since} changed Adam's arithmetic: {what}"


def _version(text: Any) -> tuple[int, ...] | None:
    """``"0.2.0"`` -> ``(0, 2, 0)``; None for anything else (an unknown version counts as old)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d+(\.\d+)*", text):
        return None
    return tuple(int(part) for part in text.split("."))


def _uses_old_adam(data: Any) -> bool:
    """Whether encoded optimizer data holds an ``Adam`` record, or a ``ScaleByAdam`` with the
    learning rate folded in (which it no longer takes)."""
    if isinstance(data, dict):
        fields = data.get("fields")
        if data.get("type") == "Adam" or (data.get("type") == "ScaleByAdam" and isinstance(fields, dict)
                                          and fields.get("lr") is not None):
            return True
        return any(_uses_old_adam(v) for v in data.values())
    if isinstance(data, list):
        return any(_uses_old_adam(v) for v in data)
    return False


def record_differences(record: dict[str, Any], config: RunConfig) -> list[str]:
    """The parts of a record's configuration (``resolved`` settings, ``model``, ``update``) that
    this purenn would run differently for ``config``: empty when the run can be repeated."""
    recorded = record["config"]
    current = describe(config, recorded.get("train_samples", 0))
    changed = [k for k in ("resolved", "model") if k in recorded and recorded[k] != current[k]]
    if "update" in recorded and not same_update(recorded["update"], current["update"]):
        changed.append("update")
    return changed


def same_update(recorded: Any, current: Any) -> bool:
    """Whether a record's ``update`` describes ``current``'s. Records written before optimizers
    became transformations stored plain SGD as ``{"sgd_step": {"lr": x}}``: that is ``SGD(x)``."""
    if isinstance(recorded, dict) and recorded.keys() == {"sgd_step"}:
        lr = recorded["sgd_step"].get("lr") if isinstance(recorded["sgd_step"], dict) else None
        try:
            recorded = to_data(SGD(lr))  # type: ignore[arg-type]  # SGD checks it
        except (TypeError, ValueError):
            return False
    return bool(recorded == current)
