"""What a Phase 2 run needs on disk before validation lets it through, made small for tests.

A model directory with the files validation checks (config, tokenizer and processor configs;
never loaded by the CPU stand-in) and an image root holding one page image ``{deck}_{page}.jpg``.
Importable because the root conftest puts ``tests/support`` on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path


def phase2_inputs(where: Path) -> list[str]:
    """Create the inputs under ``where`` and return the overrides that point Phase 2 at them."""
    from PIL import Image

    model, pages = where / "model", where / "pages"
    model.mkdir(parents=True, exist_ok=True)
    pages.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer_config.json", "preprocessor_config.json"):
        (model / name).write_text("{}")
    Image.new("RGB", (8, 8), "white").save(pages / "2_1.jpg")
    return [f"phase2.model_path={model}", f"phase2.image_root={pages}"]
