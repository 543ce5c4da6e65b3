"""A float64 numpy AutoencoderKL decoder (diffusers' semantics, as vae_reference.py) to check headroom's
decode of a full-size SDXL-shaped VAE (channels 128/256/512/512, 2 resnets per level: channel changes,
conv_shortcut, several channels per group, none of which the small golden VAEs have) where there is
no torch, e.g. on the CPU machine:

  python3 scripts/golden/vae_numpy_check.py DIR [LATENT_SIZE]      # seeded vae.safetensors, latent.npy, ref.npy
  ./headroom decode DIR/latent.npy -o DIR/hr.npy --model DIR/vae.safetensors --vae-family sdxl --device cpu
  python3 scripts/golden/vae_numpy_check.py --compare DIR          # difference in 8-bit LSB

CH=32,64 LAYERS=1 in the environment picks another shape. Weights are seeded normals stored as fp16,
the latent a seeded [1, 4, h, w] float32 array; the reference image is [1, H, W, 3] in 0..1.
"""
import json, struct, sys
import numpy as np

G, EPS = 32, 1e-6
rng = np.random.default_rng(2026)
W = {}

def param(name, shape, norm=False):
    if norm:
        base = 1.0 if name.endswith("weight") else 0.0
        a = base + 0.2 * rng.standard_normal(shape)
    else:
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        a = rng.standard_normal(shape) / np.sqrt(fan)
    W[name] = a.astype(np.float16)
    return W[name].astype(np.float64)

def conv_p(n, cin, cout, k): param(n + ".weight", (cout, cin, k, k)); param(n + ".bias", (cout,))
def norm_p(n, c): param(n + ".weight", (c,), True); param(n + ".bias", (c,), True)
def lin_p(n, c): param(n + ".weight", (c, c)); param(n + ".bias", (c,))
def resnet_p(n, cin, cout):
    norm_p(n + ".norm1", cin); conv_p(n + ".conv1", cin, cout, 3); norm_p(n + ".norm2", cout); conv_p(n + ".conv2", cout, cout, 3)
    if cin != cout: conv_p(n + ".conv_shortcut", cin, cout, 1)

import os
CH = tuple(int(c) for c in os.environ.get("CH", "128,256,512,512").split(","))
LAYERS, LAT = int(os.environ.get("LAYERS", "2")), 4
rev = list(reversed(CH))
conv_p("post_quant_conv", LAT, LAT, 1)
conv_p("decoder.conv_in", LAT, rev[0], 3)
resnet_p("decoder.mid_block.resnets.0", rev[0], rev[0])
norm_p("decoder.mid_block.attentions.0.group_norm", rev[0])
for p in ("to_q", "to_k", "to_v", "to_out.0"): lin_p("decoder.mid_block.attentions.0." + p, rev[0])
resnet_p("decoder.mid_block.resnets.1", rev[0], rev[0])
prev = rev[0]
for i, c in enumerate(rev):
    for j in range(LAYERS + 1):
        resnet_p("decoder.up_blocks.%d.resnets.%d" % (i, j), prev, c); prev = c
    if i < len(rev) - 1: conv_p("decoder.up_blocks.%d.upsamplers.0.conv" % i, c, c, 3)
norm_p("decoder.conv_norm_out", CH[0]); conv_p("decoder.conv_out", CH[0], 3, 3)

def w(n): return W[n].astype(np.float64)

def conv(x, n, k):
    wt, b = w(n + ".weight"), w(n + ".bias")          # x (C,H,Wd)
    if k == 1: return np.einsum("oc,chw->ohw", wt[:, :, 0, 0], x) + b[:, None, None]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))   # C,H,W,3,3
    return np.einsum("chwij,ocij->ohw", win, wt, optimize=True) + b[:, None, None]

def gn(x, n):
    c, h, wd = x.shape
    g = x.reshape(G, -1); m = g.mean(1, keepdims=True); v = g.var(1, keepdims=True)
    y = ((g - m) / np.sqrt(v + EPS)).reshape(c, h, wd)
    return y * w(n + ".weight")[:, None, None] + w(n + ".bias")[:, None, None]

silu = lambda x: x / (1 + np.exp(-x))

def resnet(x, n):
    h = conv(silu(gn(x, n + ".norm1")), n + ".conv1", 3)
    h = conv(silu(gn(h, n + ".norm2")), n + ".conv2", 3)
    return (conv(x, n + ".conv_shortcut", 1) if n + ".conv_shortcut.weight" in W else x) + h

def attn(x, n):
    c, h, wd = x.shape
    t = gn(x, n + ".group_norm").reshape(c, -1).T
    lin = lambda a, p: a @ w(n + "." + p + ".weight").T + w(n + "." + p + ".bias")
    q, k, v = lin(t, "to_q"), lin(t, "to_k"), lin(t, "to_v")
    s = q @ k.T / np.sqrt(c); s = np.exp(s - s.max(1, keepdims=True)); s /= s.sum(1, keepdims=True)
    return lin(s @ v, "to_out.0").T.reshape(c, h, wd) + x

def decode(z):
    x = conv(z, "post_quant_conv", 1)
    x = conv(x, "decoder.conv_in", 3)
    x = resnet(x, "decoder.mid_block.resnets.0"); x = attn(x, "decoder.mid_block.attentions.0"); x = resnet(x, "decoder.mid_block.resnets.1")
    for i in range(len(rev)):
        for j in range(LAYERS + 1): x = resnet(x, "decoder.up_blocks.%d.resnets.%d" % (i, j))
        if i < len(rev) - 1: x = conv(x.repeat(2, 1).repeat(2, 2), "decoder.up_blocks.%d.upsamplers.0.conv" % i, 3)
    return conv(silu(gn(x, "decoder.conv_norm_out")), "decoder.conv_out", 3)

if sys.argv[1] == "--compare":
    x, y = np.load(sys.argv[2] + "/hr.npy"), np.load(sys.argv[2] + "/ref.npy")
    d = np.abs(np.round(x * 255) - np.round(y * 255))
    print("headroom vs float64 numpy: max %d LSB, mean %.4f LSB; max float difference %.3g" % (d.max(), d.mean(), np.abs(x - y).max()))
    sys.exit(0)
out = sys.argv[1]
header, off, blobs = {}, 0, []
for k in sorted(W):
    b = W[k].tobytes(); header[k] = {"dtype": "F16", "shape": list(W[k].shape), "data_offsets": [off, off + len(b)]}; off += len(b); blobs.append(b)
hj = json.dumps(header).encode(); hj += b" " * ((8 - len(hj) % 8) % 8)
with open(out + "/vae.safetensors", "wb") as f: f.write(struct.pack("<Q", len(hj))); f.write(hj); [f.write(b) for b in blobs]
h = int(sys.argv[2]) if len(sys.argv) > 2 else 8
lat = rng.standard_normal((1, LAT, h, h)).astype(np.float32)
np.save(out + "/latent.npy", lat)
img = decode(lat[0].astype(np.float64) / 0.13025)
np.save(out + "/ref-raw.npy", img)
np.save(out + "/ref.npy", np.clip((img.transpose(1, 2, 0)[None] + 1) / 2, 0, 1).astype(np.float32))
print("reference decoded", img.shape, "range", img.min(), img.max())
