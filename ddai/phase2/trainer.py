"""``python -m ddai.phase2.trainer <verl overrides>``: verl 0.9.1's ``main_ppo`` with two additions.

1. **Save on stop.** SIGTERM/SIGUSR1/SIGUSR2 create the stop file (``ddai.phase2.stop``)
   instead of killing the driver; verl's own ``run_ppo`` is given ddai's TaskRunner (verl's
   ``task_runner_class`` extension point), which installs ``SaveOnStopTrainer`` in its actor.
2. **Ray isolation.** verl calls ``ray.init(**ray_kwargs.ray_init)``; with no address Ray
   joins any cluster recorded under the default temp dir — on a shared node, another job's.
   Here the address is ``$RAY_ADDRESS`` when the job started its own multi-node cluster
   (slurm/ray_cluster.sh), else ``"local"`` (always a new cluster), and ``_temp_dir`` is this
   job's own directory (``$DDAI_RAY_TMPDIR``, default ``/tmp/ddai-ray-<job>``).

Everything else — config composition from verl's packaged YAML, ``validate_config``, the V1
TaskRunner's ``run`` — is verl's code.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ddai.phase2 import stop

STARTED_AT = time.time()
_STOP_PATH: list[Path] = []


def ray_temp_dir() -> str:
    """This job's Ray temp dir: short (Ray's socket paths must fit in 107 bytes), per job."""
    if os.environ.get("DDAI_RAY_TMPDIR"):
        return os.environ["DDAI_RAY_TMPDIR"]
    job = os.environ.get("SLURM_JOB_ID") or f"pid{os.getpid()}"
    return f"/tmp/ddai-ray-{job}"


def isolate_ray(config: Any) -> dict[str, Any]:
    """Point verl's ``ray.init`` at this job's own cluster; returns the settings used."""
    from omegaconf import open_dict

    address = os.environ.get("RAY_ADDRESS") or "local"
    temp_dir = ray_temp_dir()
    with open_dict(config):
        ray_init = config.ray_kwargs.ray_init
        ray_init.address = address
        if address == "local":  # joining an existing head: its temp dir is the head's (Ray creates it)
            ray_init._temp_dir = temp_dir
        # The stop file must be found by the trainer inside its Ray actor.
        env_vars = ray_init.setdefault("runtime_env", {}).setdefault("env_vars", {})
        if _STOP_PATH:
            env_vars[stop.ENV] = str(_STOP_PATH[0])
        # Agent-loop workers record image errors here; the trainer logs the count each step.
        env_vars["DDAI_AGENT_ERRORS_FILE"] = os.environ.get("DDAI_AGENT_ERRORS_FILE") or str(
            Path(str(config.trainer.default_local_dir)) / "agent_errors.jsonl")
    return {"address": address, "temp_dir": temp_dir if address == "local" else None}


def _on_signal(signum: int, _frame: Any) -> None:
    name = signal.Signals(signum).name
    if _STOP_PATH:
        stop.request(_STOP_PATH[0], f"{name} at {time.time():.0f}")
    print(f"ddai: got {name} - the trainer saves at the next step boundary and exits", file=sys.stderr, flush=True)


def install_signal_handlers(stop_path: Path | None) -> None:
    """Before the heavy imports: a signal during start-up must not kill the driver either."""
    if stop_path is not None:
        _STOP_PATH[:] = [stop_path]
    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, _on_signal)


def _task_runner():
    """verl's V1 TaskRunner whose ``run`` first installs the save-on-stop trainer in its actor."""
    import ray
    from verl.trainer.main_ppo import TaskRunnerV1

    class DdaiTaskRunner(TaskRunnerV1.__ray_actor_class__):  # type: ignore[name-defined,misc]
        def run(self, config: Any) -> None:
            from ddai.phase2.save_on_stop import install

            install()
            return super().run(config)

    return ray.remote(DdaiTaskRunner)


def _checkpoint_dir(argv: list[str]) -> str | None:
    for arg in argv:
        if arg.startswith("trainer.default_local_dir="):
            return arg.split("=", 1)[1].strip("'\"")
    return None


def main() -> None:
    stop_path = stop.stop_file(_checkpoint_dir(sys.argv[1:]))
    stop.clear_stale(stop_path, STARTED_AT)
    install_signal_handlers(stop_path)

    import hydra

    @hydra.main(config_path="pkg://verl.trainer.config", config_name="ppo_trainer", version_base=None)
    def _main(config: Any) -> None:
        from verl.trainer.main_ppo import run_ppo
        from verl.trainer.ppo.utils import need_critic, need_reference_policy
        from verl.utils.config import validate_config
        from verl.utils.device import auto_set_device

        auto_set_device(config)
        validate_config(config=config, use_reference_policy=need_reference_policy(config),
                        use_critic=need_critic(config))
        if not config.trainer.use_v1:
            raise SystemExit("ddai: error: trainer.use_v1=false (verl's legacy trainer) is not supported by ddai")
        used = isolate_ray(config)
        print(f"ddai: Ray for this job: address={used['address']} temp_dir={used['temp_dir']}", flush=True)
        run_ppo(config, task_runner_class=_task_runner())

    _main()


if __name__ == "__main__":
    main()
