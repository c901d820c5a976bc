"""The public API: every name in ``npflow.__all__`` exists, and importing npflow stays light."""
import subprocess
import sys

import npflow


def test_every_public_name_exists():
    missing = [name for name in npflow.__all__ if not hasattr(npflow, name)]
    assert missing == []


def test_import_loads_only_numpy():
    code = ("import sys, npflow; heavy = [m for m in ('matplotlib', 'scipy', 'torch') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_npflow_train_trains_and_stays_the_module():
    import npflow.train as module
    assert module is npflow.train and module.Trainer is npflow.Trainer
    trainer = npflow.train(steps=3, batch_size=16, hidden=(8,), warmup_steps=0)
    assert trainer.step == 3
