"""Build, write and read the per-run plan (``<run_dir>/plan.json``).

WHY a file: every job of a chain (and the submitit path) must run the identical command
with the identical budgets; rendering once and freezing the result removes any chance that
an edited YAML changes a run half-way through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ddai.atomic import atomic_write_text
from ddai.errors import ConfigError, InputError
from ddai.phase2 import lengths, render, validate
from ddai.phase2.data import load_train_data, resolve_train_file

PLAN_NAME = "plan.json"
# Stands in for the training parquet until the pipeline's curriculum job has written it.
DEFERRED = "@DDAI_DEFERRED_TRAIN_FILE@"


def build_plan(p: Any, *, compose: bool = True, semantic: bool = True) -> render.Plan:
    """Render and validate ``p`` (the ``phase2`` node). Reads the manifest and parquet footer.

    With ``p.defer_data_check`` (pipeline: the manifest is written by an earlier job) the row
    count and step totals are left at 0 and checked when the first job starts.
    """
    validate.check_settings(p)
    image_root = validate.check_inputs(p)
    response_length = lengths.response_length(p)
    max_model_len = lengths.model_len(p)
    lengths.check_batched_tokens(p, max_model_len)
    run_dir = render.abspath(p.run_dir)
    ckpt = render.abspath(p.checkpoint_dir) if p.checkpoint_dir else str(Path(run_dir) / "checkpoints")
    if p.defer_data_check:
        train_file = render.abspath(p.train_file) if p.train_file else DEFERRED
        rows = steps = 0
    else:
        data = load_train_data(p.manifest, p.train_file)
        train_file, rows = data.train_file, data.rows
        steps = validate.check_data(p, rows, allow_remainder=p.allow_remainder,
                                    manifest_steps=data.manifest_steps_per_epoch)
    val_file = render.abspath(p.val_file) if p.val_file else train_file
    reward_path = render.package_file(p.reward.module, "phase2.reward.module")
    loops_yaml = render.package_file(p.agent.loops_yaml, "phase2.agent.loops_yaml")
    tool_cfg = render.package_file(p.agent.tool_config, "phase2.agent.tool_config") if p.agent.tool_config else None
    overrides = render.verl_overrides(p, train_file=train_file, val_file=val_file, checkpoint_dir=ckpt,
                                      reward_path=reward_path, loops_yaml=loops_yaml, tool_config=tool_cfg,
                                      image_root=image_root, response_length=response_length,
                                      max_model_len=max_model_len)
    env_names = render.required_env(p)
    validate.check_no_secret_in(overrides, env_names)
    if compose:
        cfg = validate.compose_verl(overrides)
        if semantic:
            validate.verl_semantic_check(cfg)
    plan = render.Plan(
        run_dir=run_dir, checkpoint_dir=ckpt, train_file=train_file, train_rows=rows,
        steps_per_epoch=steps, total_steps=steps * p.total_epochs, save_freq=p.save_freq,
        overrides=overrides, command=["-m", render.TRAINER_MODULE, *overrides], required_env=env_names,
        sbatch_args=render.sbatch_args(p, run_dir), max_restarts=p.slurm.max_restarts,
        max_no_progress=p.slurm.max_no_progress, nodes=p.slurm.nodes, gpus_per_node=p.slurm.gpus_per_node,
        wandb_run_id=render.wandb_run_id(run_dir, p.experiment_name),
    )
    if p.defer_data_check:
        plan.notes.append(f"data check deferred: manifest {p.manifest} is read when the first job starts")
        plan.notes.append("deferred_manifest=" + str(render.abspath(p.manifest) if p.manifest else ""))
        plan.notes.append(f"allow_remainder={bool(p.allow_remainder)}")
    return plan


def finalize_deferred(plan_path: Path) -> dict[str, Any]:
    """At the first job of a pipeline: resolve the manifest now and fill in rows and steps."""
    plan = read_plan(plan_path)
    notes = [n for n in plan.get("notes", []) if n.startswith("deferred_manifest=")]
    if not notes or plan.get("total_steps"):
        return plan
    manifest = notes[0].split("=", 1)[1]
    train_file, _ = resolve_train_file(manifest, None)
    from ddai.phase2.data import count_rows, manifest_steps

    rows = count_rows(train_file)
    tbs = int(plan["train_batch_size"]) if "train_batch_size" in plan else _tbs_from(plan)
    steps, rest = divmod(rows, tbs)
    claimed = manifest_steps(manifest)
    if steps == 0 or (claimed is not None and claimed != steps):
        raise ConfigError(f"training bucket has {rows} rows for batch {tbs}", where=manifest,
                          expected="at least one full batch, matching the manifest's steps_per_epoch")
    if rest and "allow_remainder=True" not in plan.get("notes", []):
        raise ConfigError(f"the training bucket has {rows} rows: verl drops the last {rest} (drop_last)",
                          where=manifest, expected=f"a multiple of {tbs} rows (curriculum.remainder=trim|pad)")
    epochs = _epochs_from(plan)
    subst = lambda s: s.replace(DEFERRED, train_file)
    plan["overrides"] = [subst(o) for o in plan["overrides"]]
    plan["command"] = [subst(o) for o in plan["command"]]
    plan.update(train_file=train_file, train_rows=rows, steps_per_epoch=steps, total_steps=steps * epochs)
    write_plan(plan_path, plan)
    return plan


def _override_value(plan: dict[str, Any], key: str) -> str:
    for o in plan["overrides"]:
        if o.startswith(key + "="):
            return o.split("=", 1)[1]
    raise InputError(f"plan lacks override {key}", where=key, expected="a plan written by ddai")


def _tbs_from(plan: dict[str, Any]) -> int:
    return int(_override_value(plan, "data.train_batch_size"))


def _epochs_from(plan: dict[str, Any]) -> int:
    return int(_override_value(plan, "trainer.total_epochs"))


def write_plan(path: Path, plan: render.Plan | dict[str, Any]) -> None:
    data = plan.to_json() if isinstance(plan, render.Plan) else plan
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_plan(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no plan.json in the run directory", where=path,
                         expected="a run rendered by `python -m ddai.launch task=phase2`") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"plan is not valid JSON ({exc.msg})", where=path, expected="plan.json written by ddai") from None
    if data.get("version") != render.PLAN_VERSION:
        raise InputError(f"plan version {data.get('version')!r}", where=path, expected=f"version {render.PLAN_VERSION}")
    return data
