"""The launcher classes Hydra instantiates for ``hydra/launcher=submitit_slurm|submitit_local``.

Hydra accepts a launcher ``_target_`` only under ``hydra_plugins``; the behaviour is
implemented (and documented) in :mod:`ddai.launch.submitit_launcher`.

WHY the import guard: Hydra imports every module under ``hydra_plugins`` on every run to
discover plugins, and prints a five-line "Plugin is incompatible ... uninstall" warning for
any module that fails to import. submitit and hydra-submitit-launcher are base dependencies
of ddai, but an environment installed with ``--no-deps`` (or with them removed) must still
run every non-submitit command quietly; choosing the submitit launcher there fails with a
one-line error that says what to install.
"""

from hydra.plugins.launcher import Launcher

from ddai.errors import ConfigError

try:
    # submitit itself first: hydra-submitit-launcher imports it only when a job is submitted, so
    # its plugin module loads fine without it and the failure would come mid-sweep.
    import submitit  # noqa: F401

    from ddai.launch import submitit_launcher as _impl
except ImportError as _missing:  # submitit / hydra-submitit-launcher not installed
    _reason = f"{_missing.name or _missing}"

    class _Unavailable(Launcher):
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise ConfigError(f"the submitit launchers need {_reason!r}, which is not installed",
                              where="hydra/launcher",
                              expected="pip install 'submitit>=1.5.4,<2' hydra-submitit-launcher==1.2.0 "
                                       "(both are dependencies of ddai: pip install ddai installs them)")

        def setup(self, **kwargs: object) -> None:  # pragma: no cover - never constructed
            raise NotImplementedError

        def launch(self, job_overrides, initial_job_idx):  # type: ignore[no-untyped-def]  # pragma: no cover
            raise NotImplementedError

    class DdaiSlurmLauncher(_Unavailable):
        """Placeholder: submitit is not installed."""

    class DdaiLocalLauncher(_Unavailable):
        """Placeholder: submitit is not installed."""

else:

    class DdaiSlurmLauncher(_impl.SlurmLauncher):  # type: ignore[no-redef]
        """Slurm: validate all combinations, submit one array, summarize even when jobs fail."""

    class DdaiLocalLauncher(_impl.LocalLauncher):  # type: ignore[no-redef]
        """Local processes, same behaviour as :class:`DdaiSlurmLauncher` (no cluster needed)."""
