#!/usr/bin/env python3
"""Emulates attention's fp16 rounding in numpy (no GPU): normalised probabilities stored in fp16 (VaeKernels before
0246381) against exp(s - max) in fp16 with fp32 row sums (flash-style), for 16 queries of 64 channels over 16,384 to
262,144 keys with scores ~N(0,1). Prints relative errors against float64. python3 scripts/bench/attention_fp16_emulation.py
"""
import numpy as np
rng = np.random.default_rng(1)
C = 64
for N in (16384, 65536, 262144):
    q = rng.standard_normal((16, C)); k = rng.standard_normal((N, C)); v = rng.standard_normal((N, C))
    q16, k16, v16 = (a.astype(np.float16).astype(np.float64) for a in (q, k, v))
    s = q16 @ k16.T / np.sqrt(C)
    m = s.max(1, keepdims=True); e = np.exp(s - m); l = e.sum(1, keepdims=True)
    exact = (e / l) @ v16
    p16 = (e / l).astype(np.float32).astype(np.float16).astype(np.float64)        # normalised probabilities stored fp16 (headroom now)
    now = p16 @ v16
    e16 = e.astype(np.float32).astype(np.float16).astype(np.float64)              # exp(s - max) stored fp16, sums fp32 (flash-style)
    fix = (e16 @ v16) / l
    rel = lambda a: np.abs(a - exact).max() / np.abs(exact).max()
    bias = lambda a: np.mean(a - exact) / np.abs(exact).mean()
    print("N=%6d  mean p %.2e  normalised fp16 P: max rel err %.2e, mean |err|/mean |out| %.2e;  exp(s-max) fp16 + fp32 sum: max rel err %.2e, mean %.2e"
          % (N, (e / l).mean(), rel(now), np.abs(now - exact).mean() / np.abs(exact).mean(), rel(fix), np.abs(fix - exact).mean() / np.abs(exact).mean()))
