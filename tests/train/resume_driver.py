"""Driver of test_train_resume: trains; with a kill step, SIGKILLs itself right after that step; with a third
argument ``mid-save``, SIGKILLs itself in the middle of writing its first checkpoint."""

import json
import os
import signal
import sys

import utilabel.train.trainer as trainer
from utilabel.train.config import TrainConfig

cfg = TrainConfig(**json.loads(sys.argv[1]))
kill_at = int(sys.argv[2])
if kill_at:
    trainer._after_step = lambda step: os.kill(os.getpid(), signal.SIGKILL) if step == kill_at else None
if sys.argv[3:] == ["mid-save"]:
    import torch

    def _save_and_die(obj, fh):
        fh.write(b"half a checkpoint")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = _save_and_die
trainer.train(cfg)
