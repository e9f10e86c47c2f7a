"""torchvision + the Qwen2.5-VL processor on CPU, and the tiny model of tools/gpu_smoke.sh.

Runs in ``$DDAI_VISION_PYTHON`` (tools/run_tests.sh makes it: a venv over this interpreter's
packages with a torch/torchvision pair that imports together; PyPI's torchvision is a CUDA
build that cannot import beside the CPU torch of the main interpreter).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import torch, torchvision
    import torchvision.transforms.v2.functional  # the import that fails with a mismatched build
    from PIL import Image
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    from verl.utils.tokenizer import hf_processor
    from ddai.phase2.preflight import check_model
    from ddai.phase2.smoke import build_tiny_qwen25vl

    path = build_tiny_qwen25vl(Path(sys.argv[1]))
    verl_proc = hf_processor(str(path))  # what verl's workers call; None would mean image-blind
    proc = AutoProcessor.from_pretrained(path)
    msgs = [{"role": "user", "content": [{"type": "image", "image": "page"}, {"type": "text", "text": "Where?"}]}]
    text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    batch = proc(text=[text], images=[Image.new("RGB", (640, 480), "white")], return_tensors="pt")
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path)
    with torch.no_grad():
        logits = model(**batch).logits
    grid = batch["image_grid_thw"][0].tolist()
    print(json.dumps({
        "torchvision": torchvision.__version__, "verl_processor": type(verl_proc).__name__,
        "image_tokens": int((batch["input_ids"] == proc.image_token_id).sum()),
        "expected_tokens": grid[0] * grid[1] * grid[2] // 4, "logits": list(logits.shape),
        "vocab": model.config.text_config.vocab_size, "params": sum(p.numel() for p in model.parameters()),
        "preflight_model": check_model(str(path)).ok, "files": sorted(p.name for p in path.iterdir()),
    }))
""")


def vision_python() -> str:
    exe = os.environ.get("DDAI_VISION_PYTHON")
    if not exe or not Path(exe).exists():
        if os.environ.get("CI"):
            pytest.fail("DDAI_VISION_PYTHON is not set: run tools/run_tests.sh (it builds the torchvision venv)")
        pytest.skip("DDAI_VISION_PYTHON not set (tools/run_tests.sh builds it)")
    return exe


@pytest.mark.verl
def test_tiny_qwen25vl_and_its_processor_build_and_run_on_cpu(tmp_path: Path) -> None:
    exe = vision_python()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([exe, "-c", PROBE, str(tmp_path / "tiny")], capture_output=True, text=True, env=env,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["verl_processor"] == "Qwen2_5_VLProcessor"  # verl would NOT fall back to processor=None
    assert out["image_tokens"] == out["expected_tokens"] > 0
    assert out["logits"][-1] == out["vocab"] and out["params"] < 2_000_000
    assert out["preflight_model"] is True
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= set(out["files"])


def test_main_interpreter_torch_is_untouched() -> None:
    """The vision venv never replaces the CPU torch the rest of the suite uses."""
    import torch

    assert torch.__version__.startswith("2.13.0"), torch.__version__
    assert sys.executable != os.environ.get("DDAI_VISION_PYTHON")


@pytest.mark.verl
def test_gpu_smoke_inputs_build_on_cpu_and_pass_validation(tmp_path: Path) -> None:
    """The CPU part of tools/gpu_smoke.sh: model + processor + pages + dataset, accepted by the validator."""
    exe = vision_python()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([exe, "-m", "ddai.phase2.smoke", "inputs", str(tmp_path / "w")], capture_output=True,
                         text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    from ddai.phase2.validate import check_image_root, check_model_dir

    check_model_dir(out["model"])
    assert check_image_root(out["image_root"]) == out["image_root"]
    import pyarrow.parquet as pq

    decks = {str(f).rsplit(".", 1)[0] for f in pq.read_table(out["train_file"]).column("file_name").to_pylist()}
    assert decks == set(out["decks"])
    for deck, pages in out["decks"].items():
        assert (Path(out["image_root"]) / f"{deck}_{pages}.jpg").is_file()
    assert subprocess.run(["bash", "-n", str(REPO / "tools" / "gpu_smoke.sh")]).returncode == 0
