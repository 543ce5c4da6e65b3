#!/usr/bin/env python3
"""Replays headroom's seeded image trace (`headroom bench-memory --write-trace FILE`) through
PyTorch's CUDA caching allocator and prints reserved peak / allocated peak, and the latency of a
cached torch.empty + free pair, as JSON. The allocator's mode is fixed when CUDA starts, so run it
once per mode:

    python3 replay_trace.py trace.txt
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True python3 replay_trace.py trace.txt
"""
import json, os, sys, time
import torch


def main():
    steps = [line.split() for line in open(sys.argv[1])]
    dev = torch.device("cuda")
    torch.empty(1, device=dev)  # context
    torch.cuda.reset_peak_memory_stats()
    live = {}
    for s in steps:
        if s[0] == "alloc":
            live[s[1]] = torch.empty(int(s[2]), dtype=torch.uint8, device=dev)
        else:
            del live[s[1]]
    stats = torch.cuda.memory_stats()
    alloc_peak = stats["allocated_bytes.all.peak"]
    reserved_peak = stats["reserved_bytes.all.peak"]
    latency = {}
    for size in (4096, 1 << 20, 64 << 20):
        for _ in range(10000):
            del_me = torch.empty(size, dtype=torch.uint8, device=dev)
            del del_me
        ns = []
        for _ in range(200000):
            t0 = time.perf_counter_ns()
            x = torch.empty(size, dtype=torch.uint8, device=dev)
            del x
            ns.append(time.perf_counter_ns() - t0)
        ns.sort()
        latency[f"{size} bytes"] = {"p50_us": ns[len(ns) // 2] / 1000, "p99_us": ns[len(ns) * 99 // 100] / 1000}
    print(json.dumps({
        "torch": torch.__version__,
        "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "default"),
        "trace_allocated_peak_bytes": alloc_peak,
        "trace_reserved_peak_bytes": reserved_peak,
        "trace_reserved_over_allocated": round(reserved_peak / alloc_peak, 3),
        "alloc_free_pair": latency,
    }, indent=1))


if __name__ == "__main__":
    main()
