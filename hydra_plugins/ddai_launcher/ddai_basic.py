"""The launcher class Hydra instantiates by default (``conf/hydra/launcher/ddai_basic.yaml``).

Behaviour: :mod:`ddai.launch.basic_launcher`.
"""

from ddai.launch.basic_launcher import ValidatingBasicLauncher


class DdaiBasicLauncher(ValidatingBasicLauncher):
    """In-process sweep: validate every combination first, summarize even when a job fails."""
