"""ddai: Phase 1 rollout logs -> curriculum -> Phase 2 GSPO on Slurm -> Phase 3 report."""

__version__ = "0.1.0"
