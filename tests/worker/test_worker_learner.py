"""The training thread's lock-step decision with several worker ranks.

The surrogate's optimizer step is collective (its backward all-reduces the gradients), so every
rank must take it or none.  The decision is agreed over the ranks (``DataParallel.agree``); the
main thread may meanwhile end the stream on its own rank (``finish_training`` sets the drain
target), and the step must still follow what was agreed, or one rank enters the all-reduce while
the other waits in the next agreement: gloo's 'Received data size doesn't match expected size'.
"""
from __future__ import annotations

from types import SimpleNamespace

from bridge.worker.learner import Learner
from models.buffers import BufferConfig, make_buffer


class FakeEngine:
    """Counts surrogate steps; no torch work."""

    def __init__(self):
        self.trainer = SimpleNamespace(step=10)
        self.inference = None

    def train(self, samples):
        self.trainer.step += 1
        return {"loss": 1.0}


class MainThreadEndsStreamDuringAgree:
    """Two-rank decision stand-in: every rank ready and wanting a step; while the collective is in
    flight, this rank's main thread ends the stream with min_steps already reached (the window of
    issue 15, item 3).  Stops the loop at the second iteration."""

    rank, size, active = 0, 2, True

    def __init__(self):
        self.learner = None
        self.calls = 0

    def agree(self, ready, stop, surrogate=None, pending=0):
        self.calls += 1
        if self.calls == 1:
            self.learner._draining_to = 5  # trainer.step (10) >= 5: this rank no longer wants a step
            decision = True, False, True, 0  # what the ranks agreed before that
        else:
            decision = False, True, False, 0
        return decision if surrogate is not None else decision[:2]  # (the two-flag form of before the fix)

    def pool_statistics(self, model):
        raise AssertionError("not at the warm-up step")


def test_agreed_surrogate_step_is_taken_even_if_the_stream_ends_meanwhile():
    buffer = make_buffer(BufferConfig(kind="reservoir", capacity=8, watermark=1, seed=0))
    for k in range(4):
        buffer.put(k)
    engine, ddp = FakeEngine(), MainThreadEndsStreamDuringAgree()
    train = SimpleNamespace(batch_size=2, max_steps=0, norm_warmup_steps=1, log_every=100, nice=0)
    learner = Learner(engine, buffer, ddp, train, emulate=None, training=True)
    ddp.learner = learner
    learner._loop()
    # the other rank took the agreed step, so this one must have too (before the fix it re-read
    # its own wish after the agreement and skipped the collective backward)
    assert engine.trainer.step == 11
    assert learner.history == [(11, 1.0)]
