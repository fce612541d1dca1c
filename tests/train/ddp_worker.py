"""Worker of test_train_ddp: one training step's loss and gradients, single process or under torchrun."""

import sys

import torch

from utilabel.data.registry import load_dataset
from utilabel.labels.mixing import plan_labels
from utilabel.labels.sources import human_labels
from utilabel.retrieve.encoder import ModelConfig
from utilabel.train.data import GroupSampler, TrainingData
from utilabel.train.losses import get_loss
from utilabel.train.model import BiEncoder
from utilabel.train.trainer import _TokenCache, forward_backward

mode, model_dir, out, loss_name = sys.argv[1:5]
torch.set_num_threads(1)
if mode == "ddp":
    import torch.distributed as dist

    dist.init_process_group("gloo")
ds = load_dataset("scifact")
plan = plan_labels(human_labels(ds, "train"), None)
qids = list(ds.split_queries("train"))[:6]
cands = {q: list(ds.corpus)[i * 7 : i * 7 + 5] for i, q in enumerate(qids)}
sampler = GroupSampler(plan, cands, list(ds.corpus), group_size=4, max_positives=2, seed=5, query_ids=qids,
                       single_positive=loss_name == "infonce")
groups = sampler.epoch_groups(0)
groups[1].doc_ids[-1] = groups[0].doc_ids[0]  # query 0's positive also sits in another rank's group
model = BiEncoder(ModelConfig(base_model=model_dir, passage_max_len=48, query_max_len=16, temperature=0.1))
model.train(False)
data = TrainingData(plan, cands, list(ds.corpus), lambda q: ds.queries[q].text, lambda d: ds.corpus[d].full_text())
loss, masked = forward_backward(model, get_loss(loss_name), groups, _TokenCache(model, data), plan.all_positive_ids())
if mode == "single" or torch.distributed.get_rank() == 0:
    torch.save({"loss": loss, "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None}}, out)
if mode == "ddp":
    torch.distributed.barrier()  # rank 1 tearing gloo down while rank 0 still saves aborted once in CI
    torch.distributed.destroy_process_group()
