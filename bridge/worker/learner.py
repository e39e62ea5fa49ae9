"""``Learner``: the training thread.  It trains on the buffer while the main
thread receives from the ocean, and serves emulation requests first, so the
ocean waits as little as possible.

Training and receiving overlap because torch releases the GIL in its kernels
and the bridge's receive polls with short sleeps.  The thread keeps its own
clock: time spent in optimizer steps, in sampling, and waiting for data.

In the ``infer`` mode every optimizer step of the surrogate is followed by one
step of the posterior estimator on the same samples (``engine.inference``);
after the stream both train on the buffer up to their ``min_steps``, then
``finish_inference`` writes the posterior of the observation.
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time

import numpy as np

log = logging.getLogger(__name__)
IDLE_WAIT = 0.005  # s between checks when there is nothing to do


def _lower_priority(nice: int) -> None:
    """Raise this thread's nice value (Linux schedules threads one by one), so the ocean ranks and
    the receiving thread win the cores when they need them; training takes what is left."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(os.getpriority(os.PRIO_PROCESS, 0) + nice, 19))
    except OSError as err:
        log.warning("could not lower the training thread's priority: %s", err)


class LearnerError(RuntimeError):
    """The training thread failed; the message carries its exception."""


class Learner(threading.Thread):
    def __init__(self, engine, buffer, ddp, train, emulate, *, training: bool):
        super().__init__(name="oceanbridge-learner", daemon=True)
        self.engine, self.buffer, self.ddp = engine, buffer, ddp
        self.train_cfg, self.emu_cfg, self.training = train, emulate, training
        self._requests: queue.Queue = queue.Queue()
        self._pending: collections.deque = collections.deque()  # collected, not yet served
        self._results: dict = {}
        self._done = threading.Condition()
        self._stopping = threading.Event()
        self.lock = threading.Lock()  # held during a step or a sample; a checkpoint takes it too
        self.error: BaseException | None = None
        self.history: list[tuple[int, float]] = []  # (optimizer step, loss)
        self.infer_history: list[tuple[int, float]] = []  # (posterior step, negative log-likelihood)
        self.posterior: dict | None = None  # the posterior's summary once written
        self._draining_to: int | None = None  # after the stream: the surrogate's min_steps
        self.train_s = self.sample_s = self.wait_s = 0.0
        self.wall_s = 0.0
        self._t0 = None

    # -- called from the main (communication) thread ---------------------------
    def request(self, key, state: np.ndarray, theta: np.ndarray, seed: int) -> None:
        """Ask for emulated samples of the state following ``state`` (non-blocking)."""
        self._requests.put((key, state, theta, seed))

    def result(self, key, timeout: float) -> np.ndarray:
        """The samples of request ``key``: (n, C, nj, ni); waits at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._done:
            while key not in self._results:
                self._raise_if_failed()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"emulated state {key} not ready after {timeout:g} s")
                self._done.wait(min(left, 0.5))
            return self._results.pop(key)

    def stop(self) -> None:
        self._stopping.set()

    def finish_training(self, min_steps: int, timeout: float) -> None:
        """After the stream: let the trainer (and the posterior estimator) reach their ``min_steps`` on
        what the buffer holds; then, in the infer mode, write the posterior."""
        trainer, inference = self.engine.trainer, self.engine.inference
        self._draining_to = min_steps

        def behind() -> bool:
            return trainer.step < min_steps or (inference is not None and inference.wants(draining=True))
        if self.training and behind() and len(self.buffer):
            self.buffer.close()  # the watermark no longer applies
            log.info("the ocean has finished; training on the buffer from step %d to %d%s", trainer.step, min_steps,
                     "" if inference is None else f" (posterior: step {inference.step} to "
                     f"{inference.plan.settings.min_steps})")
            deadline = time.monotonic() + timeout
            while behind() and self.is_alive() and len(self.buffer) and time.monotonic() < deadline:
                time.sleep(0.05)
        if inference is not None:
            self.finish_inference()

    def finish_inference(self) -> dict | None:
        """Sample the posterior of the observation and write its files (infer mode); its summary."""
        self._raise_if_failed()
        with self.lock:
            self.posterior = self.engine.inference.finish(self.ddp.rank, self.ddp.size)
        return self.posterior

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise LearnerError(f"training thread failed: {self.error!r}") from self.error

    # -- the thread --------------------------------------------------------------
    def run(self) -> None:
        self._t0 = t0 = time.perf_counter()
        _lower_priority(self.train_cfg.nice)
        try:
            self._loop()
        except BaseException as err:  # reported to the main thread by result()/check()
            log.exception("training thread failed")
            self.error = err
        finally:
            self.wall_s = time.perf_counter() - t0
            with self._done:
                self._done.notify_all()

    def check(self) -> None:
        self._raise_if_failed()

    def _loop(self) -> None:
        bs = self.train_cfg.batch_size
        while True:
            self._collect_requests()
            surrogate = self._surrogate_wants()  # read once: finish_training may change it meanwhile
            ready = self.training and len(self.buffer) > 0 and (surrogate or self._inference_wants()) \
                and self.buffer.ready(bs)
            all_ready, stop, surrogate, serve = self.ddp.agree(ready, self._stopping.is_set(), surrogate,
                                                                len(self._pending))
            if stop:
                return
            for _ in range(serve):  # the requests every rank holds: sampling is collective across bands
                self._serve(self._pending.popleft())
            if all_ready:
                self._train_step(self.buffer.get(bs), surrogate)
            elif not serve:
                t = time.perf_counter()
                try:  # sleep until a request arrives, or a short while
                    self._pending.append(self._requests.get(timeout=IDLE_WAIT))
                except queue.Empty:
                    pass
                self.wait_s += time.perf_counter() - t

    def _surrogate_wants(self) -> bool:
        steps, step = self.train_cfg.max_steps, self.engine.trainer.step
        if self._draining_to is not None:  # after the stream: up to min_steps only
            return step < self._draining_to
        return steps == 0 or step < steps

    def _inference_wants(self) -> bool:
        inference = self.engine.inference
        return inference is not None and inference.wants(draining=self._draining_to is not None)

    def _train_step(self, samples, surrogate: bool) -> None:
        """One step on ``samples``: the surrogate's when every rank agreed on it (``surrogate``; collective),
        then the posterior estimator's when this rank wants one (local to the rank)."""
        t = time.perf_counter()
        trainer = self.engine.trainer
        with self.lock:
            stats = self.engine.train(samples) if surrogate else None
            if self._inference_wants():
                nll = self.engine.infer_step(samples)
                if nll is not None:
                    self.infer_history.append((self.engine.inference.step, nll))
        self.train_s += time.perf_counter() - t
        if stats is None:
            return
        self.history.append((trainer.step, stats["loss"]))
        if trainer.step % self.train_cfg.log_every == 0:
            recent = [loss for _, loss in self.history[-self.train_cfg.log_every:]]
            log.info("train step %d: loss %.4f (mean of last %d), buffer %s", trainer.step, float(np.mean(recent)),
                     len(recent), self.buffer.stats())

    def _collect_requests(self) -> None:
        """Move the main thread's requests to ``_pending`` (FIFO: every rank's main thread asks in the same
        order), where they wait until every rank holds them."""
        while True:
            try:
                self._pending.append(self._requests.get_nowait())
            except queue.Empty:
                return

    def _serve(self, request) -> None:
        key, state, theta, seed = request
        t = time.perf_counter()
        with self.lock:
            out = self.engine.emulate(state, theta, self.emu_cfg.samples, self.emu_cfg.num_steps, seed,
                                      self.emu_cfg.churn, self.emu_cfg.churn_window)
        self.sample_s += time.perf_counter() - t
        with self._done:
            self._results[key] = out
            self._done.notify_all()

    def timing(self) -> dict:
        """Seconds training, sampling and waiting, and their share of the thread's wall time so far."""
        wall = self.wall_s if not self.is_alive() or self._t0 is None else time.perf_counter() - self._t0
        wall = max(wall, 1e-12)
        return {"learner_wall_s": wall, "train_s": self.train_s, "sample_s": self.sample_s,
                "wait_s": self.wait_s, "train_fraction": self.train_s / wall,
                "busy_fraction": (self.train_s + self.sample_s) / wall}
