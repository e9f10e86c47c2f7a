"""Save on stop, driven through verl 0.9.1's REAL V1 training loop (``PPOTrainer.fit``) on CPU.

What is verl's own code here: ``fit`` (loop, scheduled saves, hooks, metric logging, loop
end), ``PPOTrainerSync.on_step_end``, ``_save_checkpoint`` (checkpoint layout, data.pt from a
real StatefulDataLoader, latest_checkpointed_iteration.txt, the checkpoint callback) and the
config composed from verl's packaged YAML. Stand-ins (no GPU here): one training step's body
(``step``/``_compute_metrics``), the actor worker group's ``save_checkpoint``, the rollout
weight sync, and TransferQueue's ``kv_clear``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.verl

v1 = pytest.importorskip("verl.trainer.ppo.v1", reason="verl 0.9.1 with TransferQueue (the train extra)")


class FakeActorGroup:
    """The actor worker group's checkpoint call: writes a file where FSDP shards would go."""

    def __init__(self) -> None:
        self.saved: list[int] = []

    def save_checkpoint(self, local_path: str, remote_path, global_step: int, max_ckpt_to_keep=None) -> None:
        Path(local_path).mkdir(parents=True, exist_ok=True)
        (Path(local_path) / "model_world_size_1_rank_0.pt").write_text(str(global_step))
        self.saved.append(global_step)


def make_trainer(tmp_path: Path, *, save_freq: int, total: int, stop_at: int | None, stop_file: Path):
    import torch
    from torch.utils.data import SequentialSampler
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback

    from ddai.phase2 import save_on_stop
    from ddai.phase2.validate import compose_verl

    cfg = compose_verl([f"trainer.default_local_dir={tmp_path / 'ckpt'}", f"trainer.save_freq={save_freq}",
                        "trainer.logger=[console]", "trainer.val_before_train=False", "trainer.test_freq=-1",
                        "trainer.total_epochs=1", "data.train_batch_size=2"])
    ran: list[int] = []

    class CpuStepTrainer(save_on_stop.SaveOnStopTrainer):
        def step(self, metrics: dict, timing_raw: dict):
            next(self._it)
            ran.append(self.global_steps)
            if stop_at is not None and self.global_steps == stop_at:  # the signal arrives mid-step
                stop_file.write_text("USR1\n")
            metrics["ddai/test_step"] = self.global_steps
            return SimpleNamespace(keys=[], partition_id="train")

        def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
            return None

    trainer = object.__new__(CpuStepTrainer)
    trainer.config = cfg
    trainer.trainer_mode = "sync"
    trainer.use_critic = False
    trainer.global_steps = 0
    trainer.steps_per_epoch = total
    trainer.total_training_steps = total
    data = list(range(2 * total))
    trainer.train_dataloader = StatefulDataLoader(data, batch_size=2, sampler=SequentialSampler(data), drop_last=True)
    trainer._it = iter(trainer.train_dataloader)
    trainer.actor_rollout_wg = FakeActorGroup()
    trainer.checkpoint_manager = SimpleNamespace(update_weights=lambda step: None, sleep_replicas=lambda: None)
    trainer.checkpoint_callback = build_checkpoint_callback(cfg)
    trainer._pending_sync_metrics = {}
    trainer.curr_step_profile = False
    trainer._init_dump_executor()  # verl's own
    torch.manual_seed(0)
    return trainer, ran


@pytest.fixture
def no_transfer_queue(monkeypatch: pytest.MonkeyPatch) -> list:
    cleared: list = []
    monkeypatch.setattr(v1.trainer_base, "tq", SimpleNamespace(kv_clear=lambda **kw: cleared.append(kw)))
    return cleared


def test_stop_request_saves_at_step_boundary_and_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      no_transfer_queue: list) -> None:
    stop_file = tmp_path / "STOP"
    monkeypatch.setenv("DDAI_PHASE2_STOP_FILE", str(stop_file))
    trainer, ran = make_trainer(tmp_path, save_freq=30, total=6, stop_at=3, stop_file=stop_file)
    trainer.fit(agent_loop_manager=None)
    assert ran == [1, 2, 3]  # step 4 never started
    assert trainer.actor_rollout_wg.saved == [3]  # save_freq=30 would have saved nothing
    ckpt = tmp_path / "ckpt"
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text() == "3"
    assert (ckpt / "global_step_3" / "data.pt").is_file()
    assert trainer.stopped_at_step == 3
    # The resumed loader continues with the next batch (rows 6, 7), exactly as verl restores it.
    import torch
    from torch.utils.data import SequentialSampler
    from torchdata.stateful_dataloader import StatefulDataLoader

    data = list(range(12))
    loader = StatefulDataLoader(data, batch_size=2, sampler=SequentialSampler(data), drop_last=True)
    loader.load_state_dict(torch.load(ckpt / "global_step_3" / "data.pt", weights_only=False))
    assert next(iter(loader)).tolist() == [6, 7]


def test_stop_on_a_scheduled_save_step_saves_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  no_transfer_queue: list) -> None:
    stop_file = tmp_path / "STOP"
    monkeypatch.setenv("DDAI_PHASE2_STOP_FILE", str(stop_file))
    trainer, ran = make_trainer(tmp_path, save_freq=2, total=6, stop_at=2, stop_file=stop_file)
    trainer.fit(agent_loop_manager=None)
    assert ran == [1, 2] and trainer.actor_rollout_wg.saved == [2]


def test_no_stop_request_trains_to_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           no_transfer_queue: list, capsys: pytest.CaptureFixture) -> None:
    from ddai.agent import health

    monkeypatch.setenv("DDAI_PHASE2_STOP_FILE", str(tmp_path / "STOP"))
    monkeypatch.setenv("DDAI_AGENT_ERRORS_FILE", str(tmp_path / "agent_errors.jsonl"))
    health.record("page_image", "/x/2_7.jpg: OSError")  # as an agent-loop worker would
    trainer, ran = make_trainer(tmp_path, save_freq=4, total=6, stop_at=None, stop_file=tmp_path / "STOP")
    trainer.fit(agent_loop_manager=None)
    assert ran == [1, 2, 3, 4, 5, 6] and trainer.actor_rollout_wg.saved == [4, 6]
    assert trainer.stopped_at_step is None
    # verl's console logger printed the agent's error count with every step's metrics
    out = capsys.readouterr().out
    assert out.count("ddai/agent_image_errors_total:1.0") == 6


def test_install_replaces_verl_sync_trainer_with_the_subclass() -> None:
    from ddai.phase2.save_on_stop import SaveOnStopTrainer, install

    install()
    cls = v1.get_trainer_cls("sync")
    assert cls is SaveOnStopTrainer and issubclass(cls, v1.PPOTrainerSync)


def test_entry_point_isolates_ray_per_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ddai.phase2 import trainer
    from ddai.phase2.validate import compose_verl

    cfg = compose_verl(["trainer.logger=[console]"])
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("DDAI_RAY_TMPDIR", raising=False)
    used = trainer.isolate_ray(cfg)
    assert cfg.ray_kwargs.ray_init.address == "local"  # never joins a cluster found in /tmp/ray
    assert cfg.ray_kwargs.ray_init._temp_dir == "/tmp/ddai-ray-4242" == used["temp_dir"]
    cfg2 = compose_verl(["trainer.logger=[console]"])
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6391")  # multi-node: the job's own head (ray_cluster.sh)
    trainer.isolate_ray(cfg2)
    assert cfg2.ray_kwargs.ray_init.address == "10.0.0.5:6391" and "_temp_dir" not in cfg2.ray_kwargs.ray_init
    # The task runner verl gets is verl's V1 runner with the save-on-stop install in front.
    runner = trainer._task_runner()
    from verl.trainer.main_ppo import TaskRunnerV1

    assert issubclass(runner.__ray_actor_class__, TaskRunnerV1.__ray_actor_class__)
    json.dumps(used)
