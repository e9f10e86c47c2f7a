"""The launcher classes Hydra instantiates for ``hydra/launcher=submitit_slurm|submitit_local``.

Hydra accepts a launcher ``_target_`` only under ``hydra_plugins``; the behaviour is
implemented (and documented) in :mod:`ddai.launch.submitit_launcher`.
"""

from ddai.launch import submitit_launcher as _impl


class DdaiSlurmLauncher(_impl.SlurmLauncher):
    """Slurm: validate all combinations, submit one array, summarize even when jobs fail."""


class DdaiLocalLauncher(_impl.LocalLauncher):
    """Local processes, same behaviour as :class:`DdaiSlurmLauncher` (no cluster needed)."""
