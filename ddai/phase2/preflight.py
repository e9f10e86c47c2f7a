"""``python -m ddai.phase2.preflight RUN_DIR``: check the GPU node before Ray or vLLM start.

WHY: a setup mistake found by the trainer costs minutes of model loading and Ray start-up
per job, and a chain would retry it until its budget ends; some mistakes (an image root the
node cannot see, a processor that does not load) never fail at all, they train blind. Every
check here is cheap, reads the run's frozen ``plan.json`` and says what to fix.

Prints a table on stderr and a JSON summary on stdout; exit 0 when every check passes, 1
when any fails, 2 when the run directory has no readable plan. ``slurm/phase2.slurm`` runs it
after joining the chain; on failure the chain stops at once with FAILED and this table
(``python -m ddai.phase2.chain fail-preflight``), without using its restart budget.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ddai.errors import DdaiError

# What the V1 trainer imports on a GPU node (module, distribution name for its version).
IMPORTS = [("verl", "verl"), ("transfer_queue", "TransferQueue"), ("vllm", "vllm"), ("torch", "torch"),
           ("torchvision", "torchvision"), ("transformers", "transformers"), ("ray", "ray"),
           ("flash_attn", "flash-attn")]
# The GPU during a colocated step holds ~73 GB of 80 (docs/phase2.md): it must be (nearly) empty.
MIN_FREE_FRACTION = 0.9
CHECKPOINT_BYTES_PER_PARAM = 16  # fp32 weights + 2 fp32 Adam moments + bf16 HF copy, rounded up
DEFAULT_PARAMS = 8.29e9
TIMEOUT_S = 20.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """Rendered ``key=value`` overrides -> dict (``+`` removed, ddai's single quoting undone)."""
    out: dict[str, str] = {}
    for arg in overrides:
        key, _, value = arg.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        out[key.lstrip("+")] = value
    return out


def nested(ov: dict[str, str], prefix: str) -> dict[str, Any]:
    """Dotted overrides under ``prefix`` -> nested dict with YAML-typed values."""
    import yaml

    out: dict[str, Any] = {}
    for key, value in ov.items():
        if not key.startswith(prefix + "."):
            continue
        node = out
        parts = key[len(prefix) + 1:].split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        try:
            node[parts[-1]] = yaml.safe_load(value) if value != "null" else None
        except yaml.YAMLError:
            node[parts[-1]] = value
    return out


# ----------------------------------------------------------------------------- checks


def check_imports() -> Check:
    found, missing = [], []
    for module, dist in IMPORTS:
        if importlib.util.find_spec(module) is None:
            missing.append(module)
            continue
        try:
            found.append(f"{module} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{module} ?")
    if missing:
        return Check("imports", False, "missing: " + ", ".join(missing) + (f"; found {', '.join(found)}" if found else ""),
                     "install the GPU stack: pip install -e '.[gpu]' (docs/phase2.md, 'Install on a GPU node')")
    # torchvision from a build that does not match torch fails only when imported.
    res = subprocess.run([sys.executable, "-c", "import torchvision.transforms.v2.functional"], capture_output=True,
                         text=True, timeout=120)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        return Check("imports", False, f"torchvision does not import: {last}",
                     "install torch and torchvision as the pinned pair of the gpu extra")
    return Check("imports", True, ", ".join(found))


def check_gpus(n_gpus: int) -> Check:
    if not shutil.which("nvidia-smi"):
        return Check("gpus", False, "no GPU visible (nvidia-smi not found)",
                     f"run on a GPU node with {n_gpus} GPUs (sbatch --gpus-per-node)")
    res = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.free,memory.total", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=30)
    rows = [r.split(",") for r in res.stdout.strip().splitlines() if r.strip()]
    if res.returncode != 0 or not rows:
        return Check("gpus", False, f"nvidia-smi failed: {res.stderr.strip()[:200]}", "check the node's driver")
    gpus = [(int(i), float(f), float(t)) for i, f, t in rows]
    detail = "; ".join(f"GPU{i} {f / 1024:.0f}/{t / 1024:.0f} GiB free" for i, f, t in gpus)
    if len(gpus) < n_gpus:
        return Check("gpus", False, f"{len(gpus)} visible, plan needs {n_gpus}: {detail}",
                     "request as many GPUs as trainer.n_gpus_per_node (phase2.slurm.gpus_per_node)")
    busy = [i for i, f, t in gpus if f < MIN_FREE_FRACTION * t]
    if busy:
        return Check("gpus", False, f"GPU(s) {busy} are in use: {detail}",
                     f"the plan needs >= {MIN_FREE_FRACTION:.0%} of each GPU free (another process holds memory)")
    return Check("gpus", True, detail)


def check_model(model_path: str) -> Check:
    path = Path(model_path)
    if not path.is_dir():
        return Check("model", False, f"{path} is not a directory on this node", "put the model on a shared filesystem")
    try:
        from transformers import AutoConfig, AutoProcessor, AutoTokenizer

        config = AutoConfig.from_pretrained(path)
        AutoTokenizer.from_pretrained(path)
        processor = AutoProcessor.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - any load failure is the finding
        return Check("model", False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
                     "the model dir must load its config, tokenizer and processor (torchvision installed)")
    if getattr(processor, "image_processor", None) is None:
        return Check("model", False, f"{type(processor).__name__} has no image processor: training would be image-blind",
                     "save the Qwen2.5-VL processor (preprocessor_config.json) into the model dir")
    return Check("model", True, f"{config.model_type}, {type(processor).__name__}")


def sample_page(image_root: str) -> Path | None:
    from ddai.phase2.validate import PAGE_IMAGE

    with os.scandir(image_root) as it:
        for entry in it:
            if entry.is_file() and PAGE_IMAGE.match(entry.name):
                return Path(entry.path)
    return None


def check_image_root(image_root: str) -> Check:
    if not image_root or not Path(image_root).is_dir():
        return Check("image root", False, f"{image_root or '(not set)'} is not a directory on this node",
                     "set phase2.image_root to a shared directory the GPU nodes mount")
    page = sample_page(image_root)
    if page is None:
        return Check("image root", False, f"{image_root} holds no page image", "point it at the {deck}_{page}.jpg pages")
    try:
        from PIL import Image

        with Image.open(page) as img:
            img.load()
            size = img.size
    except OSError as exc:
        return Check("image root", False, f"{page} does not open: {exc}", "check the files and their permissions")
    return Check("image root", True, f"{page.name} opens ({size[0]}x{size[1]})")


def check_search(agent: dict[str, Any], image_root: str, dataset_id: str) -> Check:
    import asyncio

    from ddai.agent.config import AgentConfig
    from ddai.agent.search_client import SearchClient

    settings = dict(agent)
    settings["search_retry"] = {"max_attempts": 1, "timeout_s": TIMEOUT_S, "total_budget_s": TIMEOUT_S}
    try:
        cfg = AgentConfig.from_kwargs(settings, where="actor_rollout_ref.rollout.custom.ddai_agent")
    except DdaiError as exc:
        return Check("search server", False, str(exc), "fix phase2.agent.settings")

    async def one() -> list[str]:
        client = SearchClient(cfg)
        try:
            return await client.search("preflight check", dataset_id)
        finally:
            await client.aclose()

    try:
        results = asyncio.run(one())
    except Exception as exc:  # noqa: BLE001
        return Check("search server", False, f"{cfg.search_url}: {type(exc).__name__}: {str(exc)[:160]}",
                     "start the search server and check phase2.agent.settings.search_url from this node")
    if not results:
        return Check("search server", False, f"{cfg.search_url} returned no result for deck {dataset_id!r}",
                     "index the corpus the training set was built from")
    missing = [r for r in results if not Path(r).is_file()]
    if missing:
        return Check("search server", False, f"{len(missing)}/{len(results)} result files are not under the image root "
                     f"(e.g. {missing[0]})", "phase2.image_root must hold the pages the search server returns")
    return Check("search server", True, f"{len(results)} results, files found under {image_root}")


def _env_key(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def check_judge_key(reward: dict[str, Any]) -> Check:
    key = _env_key("GEMINI_API_KEY", "GOOGLE_API_KEY")
    model = str(reward.get("judge_model") or "gemini-3-flash-preview")
    if not key:
        return Check("judge key", False, "GEMINI_API_KEY (or GOOGLE_API_KEY) is not set", "export it in the job's environment")
    try:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(timeout=int(TIMEOUT_S * 1000), api_version=str(reward.get("judge_api_version") or "v1beta"),
                                    base_url=reward.get("judge_base_url") or None)
        client = genai.Client(api_key=key, http_options=options)  # kept alive for the call
        client.models.get(model=model)
    except Exception as exc:  # noqa: BLE001
        return Check("judge key", False, f"model lookup of {model} refused: {type(exc).__name__}: {str(exc)[:160]}",
                     "check the key and phase2.reward.kwargs.judge_model / judge_base_url")
    return Check("judge key", True, f"{model} found (model lookup, no tokens billed)")


def check_generator_key(generator: dict[str, Any]) -> Check:
    key = _env_key("OPENAI_API_KEY")
    model = str(generator.get("model") or "gpt-5-mini-2025-08-07")
    if not key:
        return Check("generator key", False, "OPENAI_API_KEY is not set", "export it in the job's environment")
    try:
        from openai import OpenAI

        client = OpenAI(api_key=key, base_url=generator.get("base_url") or None, timeout=TIMEOUT_S, max_retries=0)
        client.models.retrieve(model)
    except Exception as exc:  # noqa: BLE001
        return Check("generator key", False, f"model lookup of {model} refused: {type(exc).__name__}: {str(exc)[:160]}",
                     "check the key and phase2.agent.settings.generator.model / base_url")
    return Check("generator key", True, f"{model} found (model lookup, no tokens billed)")


def check_wandb(loggers: str) -> Check:
    if "wandb" not in loggers:
        return Check("wandb", True, "not logging to W&B")
    if not os.environ.get("WANDB_API_KEY"):
        return Check("wandb", False, "trainer.logger has wandb but WANDB_API_KEY is not set", "export WANDB_API_KEY")
    return Check("wandb", True, "WANDB_API_KEY set")


def model_params(model_path: str) -> float:
    """Parameter count from the safetensors index (bf16 bytes / 2), else the 7B reference."""
    index = Path(model_path) / "model.safetensors.index.json"
    try:
        return float(json.loads(index.read_text())["metadata"]["total_size"]) / 2
    except (OSError, KeyError, ValueError):
        return DEFAULT_PARAMS


def check_disk(checkpoint_dir: str, model_path: str) -> Check:
    need = model_params(model_path) * CHECKPOINT_BYTES_PER_PARAM
    probe = Path(checkpoint_dir)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / 1e9:.0f} GB free at {probe}, one checkpoint ~{need / 1e9:.0f} GB"
    if free < need:
        return Check("checkpoint space", False, detail, "free space or set phase2.max_actor_ckpt_to_keep / checkpoint_dir")
    return Check("checkpoint space", True, detail)


def check_ray() -> Check:
    from ddai.phase2.trainer import ray_temp_dir

    address = os.environ.get("RAY_ADDRESS")
    if address:
        return Check("ray", True, f"joins this job's cluster at {address}")
    temp = ray_temp_dir()
    if len(temp) > 60:
        return Check("ray", False, f"temp dir {temp} is too long for Ray's socket paths", "set DDAI_RAY_TMPDIR=/tmp/r-$SLURM_JOB_ID")
    existed = Path(temp).exists()
    try:
        Path(temp).mkdir(parents=True, exist_ok=True)
        probe = Path(temp) / ".ddai-write-test"
        probe.write_text("ok")
        probe.unlink()
        if not existed:
            Path(temp).rmdir()  # the trainer creates it again; leave no litter in /tmp
    except OSError as exc:
        return Check("ray", False, f"cannot write {temp}: {exc}", "set DDAI_RAY_TMPDIR to a writable local directory")
    return Check("ray", True, f"new local cluster, temp dir {temp} (never the shared /tmp/ray)")


# ----------------------------------------------------------------------------- run


def first_dataset_id(train_file: str) -> str:
    import pyarrow.parquet as pq

    try:
        row = pq.read_table(train_file).slice(0, 1).to_pylist()[0]
    except Exception:  # noqa: BLE001
        return "0"
    extra = row.get("extra_info") or {}
    return str(row.get("id") or extra.get("id") or "0")


def run_checks(run_dir: Path) -> list[Check]:
    from ddai.phase2.plan import PLAN_NAME, read_plan

    plan = read_plan(run_dir / PLAN_NAME)
    ov = parse_overrides(plan["overrides"])
    agent = nested(ov, "actor_rollout_ref.rollout.custom.ddai_agent")
    reward = nested(ov, "reward.custom_reward_function.reward_kwargs")
    image_root = str(agent.get("image_root") or "")
    n_gpus = int(ov.get("trainer.n_gpus_per_node", "1"))
    model_path = ov.get("actor_rollout_ref.model.path", "")
    steps: list[Callable[[], Check]] = [
        check_imports,
        lambda: check_gpus(n_gpus),
        lambda: check_model(model_path),
        lambda: check_image_root(image_root),
        lambda: check_search(agent, image_root, first_dataset_id(plan["train_file"])),
        lambda: check_judge_key(reward),
        lambda: check_generator_key(dict(agent.get("generator") or {})),
        lambda: check_wandb(ov.get("trainer.logger", "")),
        lambda: check_disk(plan["checkpoint_dir"], model_path),
        check_ray,
    ]
    out = []
    for step in steps:
        try:
            out.append(step())
        except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check, not a traceback
            name = getattr(step, "__name__", "check").removeprefix("check_")
            out.append(Check(name, False, f"{type(exc).__name__}: {str(exc)[:200]}", "see the job log"))
    return out


def render_table(checks: list[Check]) -> str:
    """The table as plain text (also written into the FAILED marker)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="ddai Phase 2 preflight", show_lines=False)
    for col in ("check", "result", "detail", "what to fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.name, "pass" if c.ok else "FAIL", escape(c.detail), "" if c.ok else escape(c.fix))
    console = Console(file=open(os.devnull, "w"), width=140, record=True)  # noqa: SIM115
    console.print(table)
    return console.export_text()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m ddai.phase2.preflight RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(args[0]).resolve()
    try:
        checks = run_checks(run_dir)
    except DdaiError as exc:
        print(f"ddai: error: {exc}", file=sys.stderr)
        return 2
    text = render_table(checks)
    sys.stderr.write(text)
    ok = all(c.ok for c in checks)
    print(json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}))
    if not ok:
        failed = ", ".join(c.name for c in checks if not c.ok)
        sys.stderr.write(f"ddai: preflight FAILED ({failed}) - nothing was started\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
