#!/usr/bin/env python3
"""The PyTorch side of headroom's VAE decode benchmark (run on the GPU machine).

  python3 scripts/bench/vae_torch.py --family sdxl --sizes 1024,2048 --runs 5 --compile [--compile-sizes 1024] --out DIR

Builds the full-size AutoencoderKL of the family (SDXL: 4 latent channels with quant convs; FLUX:
16 without) from scripts/golden/vae_reference.py with seeded weights, writes them to
DIR/vae-FAMILY.safetensors (fp16, diffusers keys) and a seeded latent per size to
DIR/latent-FAMILY-SIZE.npy ([1, C, h, w] float32), then decodes in fp16 on the GPU with attention
through F.scaled_dot_product_attention (as diffusers runs it), eagerly and with torch.compile,
and prints one JSON line per (mode, size): median and min time over --runs after warm-up, and the
peak of torch.cuda.max_memory_allocated (weights included). The first decode's image is saved as
DIR/torch-FAMILY-SIZE.npy ([1, H, W, 3] in 0..1) for comparison with headroom's.
"""
import argparse
import json
import os
import sys
import time

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
    modes = [("eager", vae.decode)]
    if a.compile:
        modes.append(("compile", torch.compile(vae.decode)))
    compiled = [int(s) for s in a.compile_sizes.split(",") if s] or sizes
    for mode, fn in modes:
        for s in (compiled if mode == "compile" else sizes):
            z = (lat[s] / scaling + shift).half().cuda()
            with torch.no_grad():
                t0 = time.time()
                first = fn(z)
                torch.cuda.synchronize()
                first_s = time.time() - t0
                if mode == "eager":
                    img = ((first.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
                    np.save(os.path.join(a.out, "torch-%s-%d.npy" % (a.family, s)), img)
                del first
                fn(z)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                med, best = timed(lambda: fn(z), a.runs)
                peak = torch.cuda.max_memory_allocated()
            print(json.dumps({"family": a.family, "mode": mode, "size": s, "first_s": round(first_s, 3), "median_ms": round(med, 2),
                              "min_ms": round(best, 2), "peak_bytes": peak, "peak_gib": round(peak / 2**30, 3),
                              "weights_bytes": sum(p.numel() * 2 for p in vae.parameters()), "torch": torch.__version__}), flush=True)
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
