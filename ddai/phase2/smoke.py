"""Inputs for a first run on a new cluster: page images and a tiny random Qwen2.5-VL, built locally.

WHY: a user should prove the whole GPU stack (verl V1 trainer, vLLM, processor, agent,
judge) in minutes before spending a week of judge calls, without downloading weights.
``tools/gpu_smoke.sh`` builds these and runs 2 steps; the CPU tests build the same model and
processor (``build_tiny_qwen25vl``), and the render/chain tests use ``write_pages`` and
``write_model_stub``.

CLI: ``python -m ddai.phase2.smoke model DIR`` | ``pages DIR`` (prints the path on stdout).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|image_pad|>", "<|video_pad|>"]
# Qwen2.5-VL's chat template, reduced to what the agent sends (text and image parts).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_pages(root: Path, decks: dict[str, int] | None = None, size: tuple[int, int] = (640, 480)) -> Path:
    """JPEG pages ``{deck}_{page}.jpg`` with their name drawn on them (what the search server returns)."""
    from PIL import Image, ImageDraw

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for deck, pages in (decks or {"1": 3}).items():
        for page in range(1, pages + 1):
            img = Image.new("RGB", size, (250, 250, 245))
            ImageDraw.Draw(img).text((20, 20), f"deck {deck} page {page}", fill=(0, 0, 0))
            img.save(root / f"{deck}_{page}.jpg", quality=90)
    return root


def write_model_stub(path: Path) -> Path:
    """A model directory with the files the validator looks for and no weights (render tests only)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        (path / name).write_text(json.dumps({"_ddai": "stub for validation tests; not loadable"}) + "\n")
    return path


def build_tokenizer():
    """A lossless byte-level tokenizer with Qwen's special tokens and chat markers (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(sorted(alphabet))}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIALS[3:])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_qwen25vl(path: Path, *, seed: int = 0, max_pixels: int = 64 * 28 * 28,
                        min_pixels: int = 16 * 28 * 28) -> Path:
    """Save a randomly initialised Qwen2.5-VL-architecture model (~1M parameters) with its processor.

    Needs torchvision (transformers' Qwen2.5-VL processor includes a video processor built on it).
    """
    import torch
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    vocab = len(tokenizer)
    text = {"vocab_size": vocab, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32768,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "tie_word_embeddings": True,
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
              "fullatt_block_indexes": [1]}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                              video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                              vision_end_token_id=ids["<|vision_end|>"], bos_token_id=ids["<|endoftext|>"],
                              eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                              tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(path)
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=Qwen2VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(path)
    return path


def write_dataset(out: Path, rows: int = 4) -> tuple[Path, dict[str, int]]:
    """A training parquet in the users' schema (ddai's example generator) and the decks it asks about."""
    import pyarrow.parquet as pq

    from ddai.examples.generate import dataset_table, generate_dataset

    table = dataset_table(generate_dataset(rows, seed=0)).slice(0, rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    decks: dict[str, int] = {}
    for row in table.to_pylist():
        deck = str(row["file_name"]).rsplit(".", 1)[0]
        decks[deck] = max(decks.get(deck, 0), max(row["reference_page"] or [1]) + 2)
    return out, decks


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in ("model", "pages", "inputs"):
        print("usage: python -m ddai.phase2.smoke {model,pages,inputs} DIR", file=sys.stderr)
        return 2
    if args[0] == "model":
        print(build_tiny_qwen25vl(Path(args[1])))
    elif args[0] == "pages":
        print(write_pages(Path(args[1]), {"1": 4, "2": 4}))
    else:  # everything tools/gpu_smoke.sh needs, as JSON: model, training parquet, image root, decks
        work = Path(args[1])
        train, decks = write_dataset(work / "train.parquet")
        pages = write_pages(work / "img", decks)
        model = build_tiny_qwen25vl(work / "model")
        print(json.dumps({"model": str(model), "train_file": str(train), "image_root": str(pages), "decks": decks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
