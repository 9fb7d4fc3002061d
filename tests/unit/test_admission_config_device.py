"""The fair queue, config validation and device resolution."""

from __future__ import annotations

import threading
import time

import pytest

from engine.admission import CancelledWhileWaiting, FairQueue
from engine.config import EngineConfig, SamplingParams
from engine.device import pick_dtype, resolve_device
from engine.errors import ConfigError, DeviceUnavailable, EngineBusy


def test_queue_serves_in_arrival_order():
    queue = FairQueue(max_waiting=10)
    order: list[int] = []
    gate = threading.Event()

    def worker(n: int) -> None:
        with queue.slot():
            order.append(n)
            gate.wait(1)

    threads = []
    for n in range(4):
        threads.append(threading.Thread(target=worker, args=(n,)))
        threads[-1].start()
        time.sleep(0.15)  # make arrival order unambiguous
    gate.set()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3]


def test_full_queue_answers_busy_at_once():
    queue = FairQueue(max_waiting=1)
    release = threading.Event()

    def hold():
        with queue.slot():
            release.wait(2)

    threads = [threading.Thread(target=hold) for _ in range(2)]  # one runs, one waits
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    assert queue.active == 1 and queue.depth == 1
    with pytest.raises(EngineBusy, match="busy"):
        with queue.slot():
            pass
    release.set()
    for thread in threads:
        thread.join()
    assert queue.active == 0 and queue.depth == 0


def test_cancel_while_waiting_leaves_the_queue():
    queue = FairQueue()
    release = threading.Event()

    def hold():
        with queue.slot():
            release.wait(2)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledWhileWaiting):
        with queue.slot(cancel):
            pass
    assert queue.depth == 0
    release.set()
    holder.join()


@pytest.mark.parametrize("kwargs", [
    {"temperature": -1}, {"top_p": 0}, {"max_new_tokens": 0}, {"top_k": -2}, {"repetition_penalty": 5},
])
def test_sampling_params_reject_bad_values(kwargs):
    with pytest.raises(ConfigError):
        SamplingParams(**kwargs)


def test_stop_accepts_a_single_string():
    assert SamplingParams(stop="END").stop == ("END",)


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "tpu"}, "--device"), ({"dtype": "int3"}, "--dtype"), ({"quantization": "2bit"}, "--quantization"),
    ({"backend": "openai"}, "--base-url"), ({"max_context": 10}, "--max-context"),
])
def test_engine_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EngineConfig(**kwargs)


def test_cpu_is_chosen_when_asked():
    device = resolve_device("cpu")
    assert device.kind == "cpu" and device.torch_device == "cpu" and not device.warning


def test_missing_accelerator_falls_back_with_a_warning(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device = resolve_device("cuda")
    assert device.kind == "cpu"
    assert "no such accelerator" in device.warning and "CPU" in device.warning


def test_missing_accelerator_with_strict_device_is_an_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailable, match="--strict-device"):
        resolve_device("dcu", strict=True)


def test_cpu_dtype_is_float32_for_fast_prefill():
    import torch

    assert pick_dtype(resolve_device("cpu")) == torch.float32
    assert pick_dtype(resolve_device("cpu"), "bfloat16") == torch.bfloat16
