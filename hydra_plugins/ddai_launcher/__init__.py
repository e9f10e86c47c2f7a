"""Hydra discovers launchers only inside the ``hydra_plugins`` namespace package.

ddai's launchers live in :mod:`ddai.launch.submitit_launcher`; this package only exposes
them where Hydra looks (``_target_`` of ``conf/hydra/launcher/submitit_*.yaml``).
"""
