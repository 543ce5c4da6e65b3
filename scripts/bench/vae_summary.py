#!/usr/bin/env python3
"""Prints the figures of a scripts/device-vae-x2 call from its logs folder, compactly (a device call returns only
the last 12,000 characters of its output): per case headroom's forward median and peak beside PyTorch eager's and
torch.compile's, as ratios (the issue's goals: time <= 0.7x compile's, peak <= 0.5x eager's), the per-op profiles,
the LSB comparisons and the GPU tests' verdicts.

  python3 scripts/bench/vae_summary.py LOGS
"""
import glob
import json
import os
import re
import sys

L = sys.argv[1]


def jsonl(path):
    rows = []
    for f in glob.glob(path):
        for line in open(f, errors="replace"):
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def hr(path):
    try:
        text = open(path, errors="replace").read()
        d = json.loads(text[text.index("{"):text.rindex("}") + 1])
        return d, (d.get("images") or [{}])[0]
    except Exception as e:  # noqa: BLE001
        return None, {"error": "%s: %s" % (os.path.basename(path), str(e)[:120])}


# GPU 1's eager SDXL runs first: GPU 0's (run only for the weights and latents it needs) shared its GPU with the tests
torch_rows = jsonl(L + "/g1/torch-*.jsonl") + jsonl(L + "/g0/torch-*.jsonl") + jsonl(L + "/compile-*.jsonl")


def torch(family, mode, size):
    for r in torch_rows:
        if r.get("family") == family and r.get("mode") == mode and r.get("size") == size:
            return r
    return {}


def short(d):
    return json.dumps(d, separators=(",", ":"))[:400] if d else "-"


print("== figures (ms are forward passes on the device, medians; peaks allocated bytes) ==")
for family, size, files in (("sdxl", 1024, sorted(glob.glob(L + "/g1/hr-sdxl-1024*.json"), key=len)),
                            ("sdxl", 2048, sorted(glob.glob(L + "/g1/hr-sdxl-2048*.json"), key=len)),
                            ("flux", 2048, sorted(glob.glob(L + "/g0/hr-flux-2048*.json"), key=len))):
    e, c = torch(family, "eager", size), torch(family, "compile", size)
    print("%s %d: torch eager %s ms, peak %s; torch.compile %s ms, peak %s" % (
        family, size, e.get("median_ms"), e.get("peak_bytes"), c.get("median_ms"), c.get("peak_bytes")))
    for f in files:
        d, r = hr(f)
        name = os.path.basename(f)[:-5]
        if d is None or "forward_seconds_median" not in r:
            print("  %s: no figures (%s)" % (name, r.get("error", "no forward_seconds_median")))
            continue
        ms = r["forward_seconds_median"] * 1000
        peak = r.get("allocated_peak_bytes")
        vs_c = "%.3fx compile" % (ms / c["median_ms"]) if c.get("median_ms") else "compile n/a"
        vs_e = "%.3fx eager's peak" % (peak / e["peak_bytes"]) if e.get("peak_bytes") and peak else "eager n/a"
        print("  %s: %.2f ms (%s), peak %s (%s); each %s; e2e %s" % (
            name, ms, vs_c, peak, vs_e, [round(x * 1000, 1) for x in r.get("forward_seconds_each", [])],
            [round(x * 1000, 1) for x in (r.get("decode_seconds_each") or [])][-3:]))
        print("    profile %s ms %s" % (r.get("profile_ms"), short(r.get("profile_ms_by_op"))))
        print("    attention_chunk_rows %s conv_timing_ms %s strategies %s" % (
            d.get("attention_chunk_rows"), d.get("conv_timing_ms"), d.get("conv_strategies")))
    for mode, row in (("eager", e), ("compile", c)):
        if row.get("profile_ms_by_kind"):
            print("  torch %s profile %s ms %s" % (mode, row.get("profile_ms"), short(row["profile_ms_by_kind"])))
            print("    slowest %s" % short(row.get("slowest_kernels_ms")))
        if row.get("profile_error"):
            print("  torch %s profile error %s" % (mode, row["profile_error"]))

print("== 4096 under --vram-budget 8GiB vs whole ==")
for f in ("hr-4096-tiled", "hr-4096-whole"):
    d, r = hr("%s/g0/%s.json" % (L, f))
    print("  %s: %s s, peak %s, mode %s %s" % (f, r.get("decode_seconds"), r.get("allocated_peak_bytes"), r.get("mode"), r.get("error", "")))
for f in glob.glob(L + "/g0/compare-4096.txt"):
    print("  " + open(f).read().strip())

print("== LSB ==")
for f in sorted(glob.glob(L + "/g*/compare.txt")):
    for line in open(f):
        if "n/a" not in line:
            print("  " + line.rstrip()[:300])

print("== GPU tests ==")
for f in sorted(glob.glob(L + "/gpu-tests-*.txt")):
    text = open(f, errors="replace").read()
    counts = re.findall(r"\[\s*(\d+) tests (successful|failed|skipped|aborted)\s*\]", text)
    print("  %s: %s" % (os.path.basename(f), ", ".join("%s %s" % c for c in counts) or "no summary (cut off?)"))
    for line in text.splitlines():
        if re.search(r"(✘|Exception|AssertionFailed|expected:)", line):
            print("    " + line.strip()[:240])

print("== steps ==")
for f in [L + "/steps.txt"] + sorted(glob.glob(L + "/g*/steps.txt")):
    if os.path.exists(f):
        print("  %s: %s" % (f[len(L) + 1:], " | ".join(x.strip() for x in open(f))[:600]))
