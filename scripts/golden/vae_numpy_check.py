#!/usr/bin/env python3
"""A float64 numpy AutoencoderKL decoder (diffusers' semantics, as vae_reference.py), for where there is
no PyTorch. The PyTorch goldens' VAEs have one channel count throughout; real ones change channels
between levels (conv_shortcut, LDM nin_shortcut) and have several channels per group, and this checks
those.

  python3 scripts/golden/vae_numpy_check.py DIR [LATENT_SIZE]   # full-size SDXL-shaped VAE (channels
        128/256/512/512, 2 resnets per level; CH=32,64 LAYERS=1 in the environment for another):
        seeded DIR/vae.safetensors, DIR/latent.npy ([1, 4, h, w]) and DIR/ref.npy ([1, H, W, 3] in 0..1)
  ./headroom decode DIR/latent.npy -o DIR/hr.npy --model DIR/vae.safetensors --vae-family sdxl --device cpu
  python3 scripts/golden/vae_numpy_check.py --compare DIR       # difference in 8-bit LSB
  python3 scripts/golden/vae_numpy_check.py --golden OUTDIR     # the vae-cs fixtures of GoldenVaeTest:
        channels 32/64, one resnet per level (2 in the decoder), LDM keys; latent and raw decoder output
        as .hrt (make_golden.py's format: magic "HRGT", version, rank, dims, float32 data; NHWC)

Weights are seeded normals scaled by 1/sqrt(fan-in) (norms 1 + 0.2 N and 0.2 N), stored as fp16; the
reference computes in float64 from the fp16-rounded values.
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vae_keys import to_ldm  # noqa: E402

G, EPS = 32, 1e-6


def make_weights(channels, layers, latent, seed):
    """Decoder (and post_quant_conv) weights by diffusers name, fp16."""
    rng = np.random.default_rng(seed)
    w = {}

    def param(name, shape, norm=False):
        if norm:
            a = (1.0 if name.endswith("weight") else 0.0) + 0.2 * rng.standard_normal(shape)
        else:
            fan = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            a = rng.standard_normal(shape) / np.sqrt(fan)
        w[name] = a.astype(np.float16)

    def conv(n, cin, cout, k):
        param(n + ".weight", (cout, cin, k, k))
        param(n + ".bias", (cout,))

    def norm(n, c):
        param(n + ".weight", (c,), True)
        param(n + ".bias", (c,), True)

    def resnet(n, cin, cout):
        norm(n + ".norm1", cin)
        conv(n + ".conv1", cin, cout, 3)
        norm(n + ".norm2", cout)
        conv(n + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(n + ".conv_shortcut", cin, cout, 1)

    rev = list(reversed(channels))
    conv("post_quant_conv", latent, latent, 1)
    conv("decoder.conv_in", latent, rev[0], 3)
    resnet("decoder.mid_block.resnets.0", rev[0], rev[0])
    norm("decoder.mid_block.attentions.0.group_norm", rev[0])
    for p in ("to_q", "to_k", "to_v", "to_out.0"):
        param("decoder.mid_block.attentions.0.%s.weight" % p, (rev[0], rev[0]))
        param("decoder.mid_block.attentions.0.%s.bias" % p, (rev[0],))
    resnet("decoder.mid_block.resnets.1", rev[0], rev[0])
    prev = rev[0]
    for i, c in enumerate(rev):
        for j in range(layers + 1):
            resnet("decoder.up_blocks.%d.resnets.%d" % (i, j), prev, c)
            prev = c
        if i < len(rev) - 1:
            conv("decoder.up_blocks.%d.upsamplers.0.conv" % i, c, c, 3)
    norm("decoder.conv_norm_out", channels[0])
    conv("decoder.conv_out", channels[0], 3, 3)
    return w, rng


def decode(W, z, levels, layers):
    """z (C, h, w) float64, the decoder's input; returns (3, H, W)."""
    w = lambda n: W[n].astype(np.float64)

    def conv(x, n):
        k, b = w(n + ".weight"), w(n + ".bias")
        if k.shape[2] == 1:
            return np.einsum("oc,chw->ohw", k[:, :, 0, 0], x) + b[:, None, None]
        win = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (1, 1), (1, 1))), (3, 3), axis=(1, 2))
        return np.einsum("chwij,ocij->ohw", win, k, optimize=True) + b[:, None, None]

    def gn(x, n):
        g = x.reshape(G, -1)
        y = ((g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, keepdims=True) + EPS)).reshape(x.shape)
        return y * w(n + ".weight")[:, None, None] + w(n + ".bias")[:, None, None]

    silu = lambda x: x / (1 + np.exp(-x))

    def resnet(x, n):
        h = conv(silu(gn(x, n + ".norm1")), n + ".conv1")
        h = conv(silu(gn(h, n + ".norm2")), n + ".conv2")
        return (conv(x, n + ".conv_shortcut") if n + ".conv_shortcut.weight" in W else x) + h

    def attention(x, n):
        c = x.shape[0]
        t = gn(x, n + ".group_norm").reshape(c, -1).T
        lin = lambda a, p: a @ w(n + "." + p + ".weight").T + w(n + "." + p + ".bias")
        q, k, v = lin(t, "to_q"), lin(t, "to_k"), lin(t, "to_v")
        s = q @ k.T / np.sqrt(c)
        s = np.exp(s - s.max(1, keepdims=True))
        s /= s.sum(1, keepdims=True)
        return lin(s @ v, "to_out.0").T.reshape(x.shape) + x

    x = conv(conv(z, "post_quant_conv"), "decoder.conv_in")
    x = resnet(attention(resnet(x, "decoder.mid_block.resnets.0"), "decoder.mid_block.attentions.0"), "decoder.mid_block.resnets.1")
    for i in range(levels):
        for j in range(layers + 1):
            x = resnet(x, "decoder.up_blocks.%d.resnets.%d" % (i, j))
        if i < levels - 1:
            x = conv(x.repeat(2, 1).repeat(2, 2), "decoder.up_blocks.%d.upsamplers.0.conv" % i)
    return conv(silu(gn(x, "decoder.conv_norm_out")), "decoder.conv_out")


def write_safetensors(path, tensors):
    header, off, blobs = {}, 0, []
    for k in sorted(tensors):
        b = np.ascontiguousarray(tensors[k]).tobytes()
        header[k] = {"dtype": "F16", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hj = json.dumps(header).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


def write_hrt(path, a):
    a = np.ascontiguousarray(a, dtype="<f4")
    with open(path, "wb") as f:
        f.write(b"HRGT" + struct.pack("<II", 1, a.ndim) + struct.pack("<%dI" % a.ndim, *a.shape) + a.tobytes())


def main(args):
    if args[0] == "--compare":
        x, y = np.load(args[1] + "/hr.npy"), np.load(args[1] + "/ref.npy")
        d = np.abs(np.round(x * 255) - np.round(y * 255))
        print("headroom vs float64 numpy: max %d LSB, mean %.4f LSB; max float difference %.3g" % (d.max(), d.mean(), np.abs(x - y).max()))
    elif args[0] == "--golden":
        out = args[1]
        W, rng = make_weights((32, 64), 1, 4, 20261130)
        z = rng.standard_normal((1, 5, 7, 4)).astype(np.float32)   # NHWC, odd and not square
        img = decode(W, z[0].transpose(2, 0, 1).astype(np.float64), 2, 1)
        write_safetensors(out + "/vae-cs.ldm.safetensors", to_ldm(W, 2))
        write_hrt(out + "/vae-cs.latent.hrt", z)
        write_hrt(out + "/vae-cs.decoded.hrt", img.transpose(1, 2, 0)[None])
        print("vae-cs: decoded", img.shape, "range %.3f..%.3f" % (img.min(), img.max()))
    else:
        out, h = args[0], int(args[1]) if len(args) > 1 else 8
        channels = tuple(int(c) for c in os.environ.get("CH", "128,256,512,512").split(","))
        layers = int(os.environ.get("LAYERS", "2"))
        W, rng = make_weights(channels, layers, 4, 2026)
        write_safetensors(out + "/vae.safetensors", W)
        lat = rng.standard_normal((1, 4, h, h)).astype(np.float32)
        np.save(out + "/latent.npy", lat)
        img = decode(W, lat[0].astype(np.float64) / 0.13025, len(channels), layers)   # SDXL's scaling
        np.save(out + "/ref.npy", np.clip((img.transpose(1, 2, 0)[None] + 1) / 2, 0, 1).astype(np.float32))
        print("reference decoded", img.shape, "range %.3f..%.3f" % (img.min(), img.max()))


if __name__ == "__main__":
    main(sys.argv[1:])
