"""verl's own data path on a curriculum bucket (CPU): order kept, resume exact.

Uses verl 0.9's ``create_rl_dataset`` (RLHFDataset), ``create_rl_sampler`` and
``StatefulDataLoader`` with the data settings ddai renders (``data.shuffle=False``,
``drop_last=True`` as verl's trainer builds it), a tokenizer trained in memory (no hub).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ddai.errors import ConfigError

pytestmark = pytest.mark.verl

ROWS, BATCH = 40, 8


def small_tokenizer():
    """A WordLevel tokenizer trained in memory, with a chat template (no downloads)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["Question : what is on page 3 of the slide deck ? system user assistant answer search"] * 4
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "<|eot|>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="<|eot|>")
    fast.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] if m['content'] is string "
                          "else '' }} <|eot|> {% endfor %}{% if add_generation_prompt %}assistant : {% endif %}")
    return fast


def verl_data_config(helpers, tmp_path: Path, manifest: Path):
    """The ``data`` node verl composes from ddai's rendered overrides."""
    from omegaconf import OmegaConf

    from ddai.phase2.plan import build_plan
    from ddai.phase2.prepare import compose_ddai
    from ddai.phase2.validate import compose_verl

    cfg = compose_ddai([
        "+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), f"phase2.manifest={manifest}", f"phase2.train_batch_size={BATCH}",
        f"phase2.ppo_mini_batch_size={BATCH}", f"phase2.run_dir={tmp_path / 'run'}",
    ])
    plan = build_plan(cfg.phase2, semantic=False)
    vcfg = compose_verl(plan.overrides)
    OmegaConf.resolve(vcfg)
    data = vcfg.data
    assert data.shuffle is False and data.train_batch_size == BATCH
    data.dataloader_num_workers = 0  # CPU test; the sampler decides the order, not the workers
    return data, plan


def loader_for(data, dataset):
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.trainer.ppo.utils import create_rl_sampler
    from verl.utils.dataset.rl_dataset import collate_fn

    sampler = create_rl_sampler(data, dataset)
    assert type(sampler).__name__ == "SequentialSampler"
    return StatefulDataLoader(dataset=dataset, batch_size=data.train_batch_size, num_workers=0, drop_last=True,
                              collate_fn=collate_fn, sampler=sampler)


def batch_indices(batch) -> list[int]:
    return [int(i) for i in batch["index"]]


def curriculum_manifest(helpers, tmp_path: Path, source: str) -> Path:
    """A training bucket written by ddai's curriculum task, or built from the example generator."""
    if source == "generated":
        manifest = helpers.write_bucket(tmp_path / "cur", rows=ROWS, batch=BATCH, extra_rows=3)
        with pytest.raises(ConfigError, match="drops the last 3"):
            verl_data_config(helpers, tmp_path, manifest)
        return helpers.write_bucket(tmp_path / "cur", rows=ROWS, batch=BATCH)
    res = helpers.launch(["task=curriculum", f"curriculum.out_dir={tmp_path / 'cur'}",
                          f"curriculum.train_batch_size={BATCH}", "curriculum.remainder=trim",
                          f"hydra.run.dir={tmp_path / 'h'}"])
    assert res.returncode == 0, res.stderr
    return tmp_path / "cur" / "manifest.json"


@pytest.mark.parametrize("source", ["generated", "curriculum_task"])
def test_curriculum_order_and_exact_resume(helpers, tmp_path: Path, source: str) -> None:
    import pyarrow.parquet as pq
    from verl.trainer.ppo.utils import create_rl_dataset

    manifest = curriculum_manifest(helpers, tmp_path, source)
    data, plan = verl_data_config(helpers, tmp_path, manifest)
    bucket = pq.read_table(plan.train_file)
    curriculum = [int(e["index"]) for e in bucket.column("extra_info").to_pylist()]
    assert curriculum != sorted(curriculum), "the test bucket must not be in file-index order"
    rows = bucket.num_rows
    assert rows % BATCH == 0 and rows >= 3 * BATCH

    dataset = create_rl_dataset([plan.train_file], data, small_tokenizer(), None, is_train=True)
    assert len(dataset) == rows
    loader = loader_for(data, dataset)
    seen = [batch_indices(b) for b in loader]
    assert len(seen) == rows // BATCH == plan.steps_per_epoch
    assert [i for b in seen for i in b] == curriculum

    # Stop after two steps, save the state as verl does (data.pt), restore into a fresh loader.
    import torch

    first = loader_for(data, dataset)
    it = iter(first)
    done = [batch_indices(next(it)) for _ in range(2)]
    torch.save(first.state_dict(), tmp_path / "data.pt")
    resumed = loader_for(data, create_rl_dataset([plan.train_file], data, small_tokenizer(), None))
    resumed.load_state_dict(torch.load(tmp_path / "data.pt", weights_only=False))
    rest = [batch_indices(b) for b in resumed]
    assert done + rest == seen
    assert rest[0] == seen[2]
