"""The launcher classes Hydra instantiates for ``hydra/launcher=submitit_slurm|submitit_local``.

Hydra accepts a launcher ``_target_`` only under ``hydra_plugins``; the behaviour is
implemented (and documented) in :mod:`ddai.launch.submitit_launcher`.

WHY the classes here only forward: Hydra imports every module under ``hydra_plugins`` on
every run to discover plugins -- also a plain local run that never submits anything.
Importing submitit and the implementation then cost ~0.07 s of every start, so they are
imported only when one of these launchers is constructed, and that construction returns the
implementation's launcher itself (what submitit pickles into each job).

submitit and hydra-submitit-launcher are base dependencies of ddai, but an environment
installed with ``--no-deps`` (or with them removed) must still run every non-submitit
command quietly (Hydra prints a five-line "Plugin is incompatible ... uninstall" warning for
any plugin module that fails to import, so this module imports neither); choosing a submitit
launcher there fails with a one-line error that says what to install.
"""

from typing import Any

from hydra.plugins.launcher import Launcher

from ddai.errors import ConfigError


def _implementation(name: str) -> Any:
    """The launcher class ``name`` of :mod:`ddai.launch.submitit_launcher`, or a one-line error."""
    try:
        # submitit itself first: hydra-submitit-launcher imports it only when a job is submitted, so
        # its plugin module loads fine without it and the failure would come mid-sweep.
        import submitit  # noqa: F401

        from ddai.launch import submitit_launcher
    except ImportError as missing:  # submitit / hydra-submitit-launcher not installed
        raise ConfigError(f"the submitit launchers need {missing.name or str(missing)!r}, which is not installed",
                          where="hydra/launcher",
                          expected="pip install 'submitit>=1.5.4,<2' hydra-submitit-launcher==1.2.0 "
                                   "(both are dependencies of ddai: pip install ddai installs them)") from None
    return getattr(submitit_launcher, name)


class _Deferred(Launcher):
    """Constructing it constructs (and returns) the implementation's launcher instead."""

    _implementation_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _implementation(cls._implementation_name)(*args, **kwargs)

    def setup(self, **kwargs: Any) -> None:  # pragma: no cover - never constructed
        raise NotImplementedError

    def launch(self, job_overrides, initial_job_idx):  # type: ignore[no-untyped-def]  # pragma: no cover
        raise NotImplementedError


class DdaiSlurmLauncher(_Deferred):
    """Slurm: validate all combinations, submit one array, summarize even when jobs fail."""

    _implementation_name = "SlurmLauncher"


class DdaiLocalLauncher(_Deferred):
    """Local processes, same behaviour as :class:`DdaiSlurmLauncher` (no cluster needed)."""

    _implementation_name = "LocalLauncher"
