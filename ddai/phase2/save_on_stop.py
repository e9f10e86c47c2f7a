"""verl's V1 sync trainer, plus one behaviour: on a stop request, checkpoint at the step boundary and end.

WHY: a chained job is stopped by Slurm's time-limit signal. verl 0.9.1 saves only every
``save_freq`` steps, so each stop re-trains up to ``save_freq`` steps (hours of paid judge
calls). This subclass uses verl's own hook (``on_step_end``, called after the step's update
and its scheduled save, before metrics are logged) and verl's own ``_save_checkpoint``; it
does not copy the training loop. Ending the loop: ``total_training_steps`` is set to the
current step, so verl's loop condition ends the loop normally after logging this step.

It also puts the agent's image-error count (``ddai.agent.health``) into each step's metrics
through verl's ``_consume_sync_metrics`` path, so it reaches W&B (verl does not aggregate
per-trajectory extra fields into training metrics).

It is put in place of ``"sync"`` in verl's trainer registry by :func:`install`, which
``ddai.phase2.trainer``'s TaskRunner calls inside the Ray actor before verl looks the trainer
up. The mode name stays ``sync`` because verl tests ``trainer_mode == "sync"`` in several places.
"""

from __future__ import annotations

import logging
from pathlib import Path

from verl.trainer.ppo.v1 import trainer_base
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from ddai.agent import health
from ddai.phase2 import stop

logger = logging.getLogger(__name__)


class SaveOnStopTrainer(PPOTrainerSync):
    """PPOTrainerSync that saves and ends at the first step boundary after a stop request."""

    stopped_at_step: int | None = None

    def _stop_file(self) -> Path | None:
        return stop.stop_file(str(self.config.trainer.default_local_dir))

    def _saved_this_step(self) -> bool:
        """Did verl's own schedule already save at this step (save_freq or the last step)?"""
        freq = int(self.config.trainer.save_freq)
        is_last = self.global_steps >= self.total_training_steps
        return freq > 0 and (is_last or self.global_steps % freq == 0)

    def _agent_error_metrics(self) -> dict[str, float]:
        path = errors_file(str(self.config.trainer.default_local_dir))
        return {"ddai/agent_image_errors_total": float(health.count(path, "page_image")),
                "ddai/agent_errors_total": float(health.count(path))}

    def on_step_end(self) -> None:
        super().on_step_end()
        pending = dict(getattr(self, "_pending_sync_metrics", None) or {})
        pending.update(self._agent_error_metrics())
        self._pending_sync_metrics = pending
        if not stop.requested(self._stop_file()):
            return
        if not self._saved_this_step():
            self._save_checkpoint()
        self.stopped_at_step = self.global_steps
        msg = f"ddai: stop requested - checkpoint global_step_{self.global_steps} saved, ending after this step"
        logger.warning(msg)
        print(msg, flush=True)
        # verl's loop runs while global_steps <= total_training_steps; it increments after logging.
        self.total_training_steps = self.global_steps


def errors_file(default_local_dir: str) -> str:
    """Where the agent workers record image errors (``$DDAI_AGENT_ERRORS_FILE`` or the checkpoint dir)."""
    import os

    return os.environ.get(health.ENV) or str(Path(default_local_dir) / "agent_errors.jsonl")


def install() -> None:
    """Make verl's ``sync`` trainer mode build :class:`SaveOnStopTrainer` (in this process)."""
    current = trainer_base.TRAINER_REGISTRY.get("sync")
    if current is not SaveOnStopTrainer:
        if current is not None and not issubclass(SaveOnStopTrainer, current):
            raise RuntimeError(f"verl's 'sync' trainer is {current!r}; ddai's save-on-stop extends PPOTrainerSync")
        trainer_base.TRAINER_REGISTRY["sync"] = SaveOnStopTrainer
