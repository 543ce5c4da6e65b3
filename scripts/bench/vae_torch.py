#!/usr/bin/env python3
"""The PyTorch side of headroom's VAE decode benchmark (run on the GPU machine).

  python3 scripts/bench/vae_torch.py --family sdxl --sizes 1024,2048 --runs 5 --compile [--compile-sizes 1024] --out DIR
      [--no-eager] [--wait-file F] [--profile]

Builds the full-size AutoencoderKL of the family (SDXL: 4 latent channels with quant convs; FLUX:
16 without) from scripts/golden/vae_reference.py with seeded weights, writes them to
DIR/vae-FAMILY.safetensors (fp16, diffusers keys) and a seeded latent per size to
DIR/latent-FAMILY-SIZE.npy ([1, C, h, w] float32), then decodes in fp16 on the GPU with attention
through F.scaled_dot_product_attention (as diffusers runs it), eagerly and with torch.compile,
and prints one JSON line per (mode, size): median and min time over --runs after warm-up, and the
peak of torch.cuda.max_memory_allocated (weights included). The first decode's image is saved as
DIR/torch-FAMILY-SIZE.npy ([1, H, W, 3] in 0..1) for comparison with headroom's.

torch.compile compiles each size on its own (dynamic=False): a second size would otherwise be
recompiled with dynamic shapes, whose kernels are not the ones a user's fixed-size decode gets.
--wait-file F (with --compile): compile and warm every size first, then wait until F exists before
timing, so the compiling (CPU) can overlap other work on the machine while the timing runs alone.
--profile: one more decode per (mode, size) under torch.profiler, and a JSON line of the device
time per kind of kernel (convolution, group_norm, silu, upsample, attention, layout, other) with the
slowest kernels, to set beside headroom's `decode --profile`.
"""
import argparse
import json
import os
import sys
import time
from collections import defaultdict

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
from make_golden import write_safetensors  # noqa: E402
from vae_reference import AutoencoderKL, randomize  # noqa: E402

FAMILIES = {"sdxl": (4, True, 0.13025, 0.0), "flux": (16, False, 0.3611, 0.1159)}


def timed(fn, runs):
    ts = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        ts.append(start.elapsed_time(end))
    ts.sort()
    return ts[len(ts) // 2], ts[0]


def kind(name):
    """The kind of op a CUDA kernel (eager's, cuDNN's or an Inductor-fused Triton one) belongs to, by its name."""
    n = name.lower()
    if "group_norm" in n or "groupnorm" in n or "var_mean" in n or "rowwisemoments" in n or "computefusedparams" in n:
        return "group_norm(+silu)" if "silu" in n else "group_norm"
    if "upsample" in n or "nearest" in n:
        return "upsample"
    if "silu" in n:
        return "silu"
    if "fmha" in n or "flash" in n or "attention" in n or "softmax" in n or "attn" in n:
        return "attention"
    if "fprop" in n or "conv" in n or "implicit_gemm" in n or "cudnn" in n or "xmma" in n and "gemm" not in n:
        return "convolution"
    if "gemm" in n or "cutlass" in n or "bmm" in n:
        return "gemm (attention)"
    if "nchwtonhwc" in n or "nhwctonchw" in n or "transpose" in n or "permute" in n or "copy" in n:
        return "layout"
    return "other"


def profile(fn, z):
    """Device time per kind of kernel over one decode, and the 8 slowest kernels (ms)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof
    with torch.no_grad(), prof(activities=[ProfilerActivity.CUDA]) as p:
        fn(z)
        torch.cuda.synchronize()
    by_kind, by_kernel = defaultdict(float), defaultdict(float)
    for e in p.events():
        if getattr(e, "device_type", None) is not None and str(e.device_type).endswith("CUDA"):
            ms = e.device_time_total / 1000.0 if hasattr(e, "device_time_total") else e.cuda_time_total / 1000.0
            by_kind[kind(e.name)] += ms
            by_kernel[e.name[:90]] += ms
    total = sum(by_kind.values())
    return {"profile_ms": round(total, 2), "profile_ms_by_kind": {k: round(v, 2) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "slowest_kernels_ms": {k: round(v, 2) for k, v in sorted(by_kernel.items(), key=lambda kv: -kv[1])[:8]}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="sdxl", choices=sorted(FAMILIES))
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--compile-sizes", default="", help="with --compile: only these sizes (default: all of --sizes)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--fp32-reference", action="store_true", help="also decode each size in fp32 (no timing): DIR/torch32-FAMILY-SIZE.npy, to tell fp16 rounding apart")
    ap.add_argument("--latent-only", default="", help="sizes to write latents for without timing them (e.g. 4096)")
    ap.add_argument("--no-eager", action="store_true", help="with --compile: time torch.compile alone (eager timed elsewhere)")
    ap.add_argument("--wait-file", default="", help="with --compile: warm every size, then wait for this file before timing")
    ap.add_argument("--profile", action="store_true", help="one more decode per (mode, size) under torch.profiler: device ms per kind of kernel")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    latent, quant, scaling, shift = FAMILIES[a.family]
    vae = randomize(AutoencoderKL((128, 256, 512, 512), 2, latent, quant), 2026).eval()
    write_safetensors(os.path.join(a.out, "vae-%s.safetensors" % a.family), vae.state_dict(), torch.float16)
    vae = vae.half().cuda()
    sizes = [int(s) for s in a.sizes.split(",") if s]
    extra = [int(s) for s in a.latent_only.split(",") if s]
    g = torch.Generator().manual_seed(7)
    lat = {}
    for s in sizes + extra:
        lat[s] = torch.randn(1, latent, s // 8, s // 8, generator=g)  # scaled latents of unit variance, as a sampler ends with
        np.save(os.path.join(a.out, "latent-%s-%d.npy" % (a.family, s)), lat[s].numpy().astype(np.float32))
    modes = [] if a.no_eager and a.compile else [("eager", vae.decode)]
    if a.compile:
        modes.append(("compile", torch.compile(vae.decode, dynamic=False)))
    compiled = [int(s) for s in a.compile_sizes.split(",") if s] or sizes
    first_s = {}

    def first(mode, fn, s, z):
        with torch.no_grad():
            t0 = time.time()
            out = fn(z)
            torch.cuda.synchronize()
            first_s[(mode, s)] = time.time() - t0
            if mode == "eager":
                img = ((out.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
                np.save(os.path.join(a.out, "torch-%s-%d.npy" % (a.family, s)), img)
            del out
            fn(z)
            torch.cuda.synchronize()

    if a.wait_file and a.compile:
        for s in compiled:
            first("compile", modes[-1][1], s, (lat[s] / scaling + shift).half().cuda())
            torch.cuda.empty_cache()
        print(json.dumps({"family": a.family, "compiled": compiled, "compile_first_s": {str(k[1]): round(v, 1) for k, v in first_s.items()},
                          "waiting_for": a.wait_file}), flush=True)
        while not os.path.exists(a.wait_file):
            time.sleep(0.2)
    for mode, fn in modes:
        for s in (compiled if mode == "compile" else sizes):
            z = (lat[s] / scaling + shift).half().cuda()
            if (mode, s) not in first_s:
                first(mode, fn, s, z)
            with torch.no_grad():
                torch.cuda.reset_peak_memory_stats()
                med, best = timed(lambda: fn(z), a.runs)
                peak = torch.cuda.max_memory_allocated()
            line = {"family": a.family, "mode": mode, "size": s, "first_s": round(first_s[(mode, s)], 3), "median_ms": round(med, 2),
                    "min_ms": round(best, 2), "peak_bytes": peak, "peak_gib": round(peak / 2**30, 3),
                    "weights_bytes": sum(p.numel() * 2 for p in vae.parameters()), "torch": torch.__version__}
            if a.profile:
                try:
                    line.update(profile(fn, z))
                except Exception as e:  # the profile is an extra: a failure must not lose the timing
                    line["profile_error"] = repr(e)[:200]
            print(json.dumps(line), flush=True)
            torch.cuda.empty_cache()


    if a.fp32_reference:
        vae32 = vae.float()
        for s in sizes:
            with torch.no_grad():
                img = ((vae32.decode((lat[s] / scaling + shift).float().cuda()).float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
            np.save(os.path.join(a.out, "torch32-%s-%d.npy" % (a.family, s)), img)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
