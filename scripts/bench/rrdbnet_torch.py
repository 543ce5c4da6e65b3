#!/usr/bin/env python3
"""PyTorch reference for `headroom bench --synthetic rrdbnet-x4`: RRDBNet x4 (23 blocks, 64 features,
growth 32; the architecture of scripts/golden/make_golden.py), channels_last, cudnn.benchmark, on one
GPU. Prints one JSON line per (mode, dtype, tile): median ms of a forward pass and the peak memory
PyTorch allocated during it beyond the weights.

  python3 scripts/bench/rrdbnet_torch.py [--tiles 256,512] [--runs 10] [--compile [--compile-mode max-autotune]] [--dtypes fp16]

fp32 runs with TF32 off (as headroom's fp32 path computes); fp16 with the model and input in half.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "golden"))
from make_golden import RRDBNet  # noqa: E402


def bench(model, tile, dtype, runs):
    x = torch.rand(1, 3, tile, tile, device="cuda", dtype=dtype).to(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        times = []
        for _ in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(x)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        peak = torch.cuda.max_memory_allocated() - base
    times.sort()
    return times[len(times) // 2], peak, weights


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiles", default="256,512")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode: default, max-autotune, ...")
    ap.add_argument("--dtypes", default="fp32,fp16")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(2026)
    base = RRDBNet(scale=4, num_feat=64, num_block=23, num_grow_ch=32).cuda().eval()
    modes = [("eager", False)] + ([("compile", True)] if args.compile else [])
    wanted = args.dtypes.split(",")
    for dtype_name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        if dtype_name not in wanted:
            continue
        model = base.to(dtype).to(memory_format=torch.channels_last)
        for mode, comp in modes:
            m = torch.compile(model, mode=args.compile_mode) if comp else model
            for tile in [int(t) for t in args.tiles.split(",")]:
                t0 = time.time()
                ms, peak, weights = bench(m, tile, dtype, args.runs)
                print(json.dumps({"impl": "pytorch " + torch.__version__, "mode": mode + ("" if not comp or args.compile_mode == "default" else " " + args.compile_mode), "dtype": dtype_name, "tile": tile,
                                  "median_ms": round(ms, 3), "peak_activation_bytes": peak, "weight_bytes": weights,
                                  "wall_s": round(time.time() - t0, 1), "gpu": torch.cuda.get_device_name()}), flush=True)


if __name__ == "__main__":
    main()
