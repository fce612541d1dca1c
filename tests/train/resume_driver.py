"""Driver of test_train_resume: trains; with a kill step, SIGKILLs itself right after that step."""

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
trainer.train(cfg)
