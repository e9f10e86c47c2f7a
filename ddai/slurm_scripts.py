"""Where the installed sbatch scripts are: ``python -m ddai.slurm_scripts [NAME]`` prints the path.

WHY: clusters install ddai as a wheel into a shared environment, with no checkout to
``cd`` into, yet the documented command is ``sbatch slurm/phase2.slurm``. The scripts ship
inside the package (``ddai/slurm`` is a link to the checkout's ``slurm/`` and is packaged
as data), so ``sbatch "$(python -m ddai.slurm_scripts)"`` works the same from a checkout and
from a wheel, and Python code finds them through :func:`script_path`.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent / "slurm"


def script_path(name: str = "phase2.slurm") -> Path:
    """Absolute path of an installed sbatch script (the checkout's own when editable)."""
    return (SCRIPTS_DIR / name).resolve()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print("usage: python -m ddai.slurm_scripts [NAME]\n\nPrint the absolute path of an sbatch script "
              "shipped with ddai (default: phase2.slurm), e.g.\n  sbatch \"$(python -m ddai.slurm_scripts)\" RUN_DIR")
        return 0
    name = args[0] if args else "phase2.slurm"
    path = script_path(name)
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in SCRIPTS_DIR.iterdir() if p.is_file())) if SCRIPTS_DIR.is_dir() else "none"
        print(f"ddai: error: {name}: no such script shipped with ddai (expected one of {known})", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
