"""What the benchmarks share: the machine they ran on, torch's threads, interleaved timing,
peak memory of one call and the network-only forward of a pose model."""
import ctypes
import gc
import math
import os
import os.path as osp
import platform
import re
import statistics
import time
from typing import Callable, Dict, NamedTuple, Optional

import torch
from torch import nn

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def machine_summary(device: torch.device) -> str:
    """One line naming the processor or GPU, torch and the thread count."""
    if device.type == 'cuda':
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        if osp.exists('/proc/cpuinfo'):
            with open('/proc/cpuinfo') as cpuinfo:
                found = re.search(r'model name\s*:\s*(.*)', cpuinfo.read())
            name = found.group(1).strip() if found else name
        name = f'{name}, {os.cpu_count()} logical CPUs'
    return f'{name}; torch {torch.__version__}; torch threads {torch.get_num_threads()}'


def set_threads(threads: Optional[int]) -> int:
    """Fix torch's intra-op threads (default: the CPUs this process may use)."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') \
        else os.cpu_count()
    torch.set_num_threads(threads or available)
    return torch.get_num_threads()


class Timing(NamedTuple):
    """Median milliseconds of one timed function."""
    ms: float  # wall-clock time
    cpu_ms: float  # CPU time of this process: on a loaded machine, without time others took


def time_interleaved(fns: Dict[str, Callable[[], object]], warmup: int, repeats: int,
                     device: torch.device) -> Dict[str, Timing]:
    """Median wall and process CPU time of every function, calling them round-robin, so that
    load from other jobs hits them alike.

    Args:
        fns (dict): name -> function of no arguments.
        warmup (int): untimed rounds first.
        repeats (int): timed rounds.
        device (torch.device): synchronised around every call when CUDA.

    Returns:
        dict: name -> :class:`Timing` in milliseconds.
    """
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for round_index in range(warmup + repeats):
        for name, fn in fns.items():
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            if round_index >= warmup:
                wall[name].append((time.perf_counter() - start_wall) * 1e3)
                cpu[name].append((time.process_time() - start_cpu) * 1e3)
    return {
        name: Timing(statistics.median(wall[name]), statistics.median(cpu[name]))
        for name in fns
    }


class TensorForward(nn.Module):
    """The network of a pose estimator (backbone, neck, head) on an image batch
    (``mode='tensor'``: no pre-processing, no decoding)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, None, mode='tensor')


def _proc_status_kib(key: str) -> int:
    with open('/proc/self/status') as status:
        return int(re.search(key + r':\s+(\d+)', status.read()).group(1))


def _glibc() -> Optional[ctypes.CDLL]:
    try:
        libc = ctypes.CDLL('libc.so.6')
        libc.mallopt, libc.malloc_trim  # noqa: B018  (both must exist)
    except (OSError, AttributeError):
        return None
    return libc


def peak_memory_mib(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory one call of ``fn`` adds on top of what is allocated before it, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` over the call, minus the memory allocated
    before. CPU (Linux with glibc): the process's resident-set high-water mark (VmHWM,
    reset through ``/proc/self/clear_refs``) minus its resident set before the call. torch
    allocates CPU tensors with plain malloc; to make the resident set follow live tensors,
    malloc is told to map every block of 64 KiB or more separately (so ``free`` returns it
    to the system) and free heap memory is returned before the call. This changes malloc's
    behaviour for the rest of the process: measure memory after timing. Returns NaN where
    neither mechanism exists.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    libc = _glibc()
    if libc is None or not os.access('/proc/self/clear_refs', os.W_OK):
        return math.nan
    libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    gc.collect()
    libc.malloc_trim(0)
    base = _proc_status_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as clear_refs:
        clear_refs.write('5')  # reset VmHWM to the current resident set
    fn()
    return (_proc_status_kib('VmHWM') - base) / 1024
