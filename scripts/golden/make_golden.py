#!/usr/bin/env python3
"""Makes small seeded checkpoints and PyTorch golden outputs for headroom's model tests.

Run on a machine with PyTorch (the GPU machine has it):  python3 scripts/golden/make_golden.py OUTDIR
Writes, for each case, the checkpoint(s), the input and PyTorch's output. The architectures are
written out here from their published definitions (BasicSR's RRDBNet and SRVGGNetCompact), so
this script needs nothing but torch. Outputs are computed on the CPU in float64 and stored as
float32: the reference is the exact function, and headroom's fp32 result is held to 1e-4 of it.

Tensor files (.hrt): magic b"HRGT", uint32 version (1), uint32 rank, uint32 dims[rank],
then float32 little-endian data, row-major. Images are NHWC.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

VERSION = 1


class ResidualDenseBlock(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(nf, gc)
        self.rdb2 = ResidualDenseBlock(nf, gc)
        self.rdb3 = ResidualDenseBlock(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """BasicSR's RRDBNet: scale 4 as is; scale 2 and 1 pixel-unshuffle the input first."""

    def __init__(self, num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super().__init__()
        self.scale = scale
        if scale == 2:
            num_in_ch *= 4
        elif scale == 1:
            num_in_ch *= 16
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        if self.scale == 2:
            feat = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            feat = F.pixel_unshuffle(x, 4)
        else:
            feat = x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


class SRVGGNetCompact(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4):
        super().__init__()
        self.upscale = upscale
        body = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)]
        for _ in range(num_conv):
            body += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)]
        body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(body)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = F.pixel_shuffle(out, self.upscale)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def write_hrt(path, t):
    t = t.detach().to(torch.float32).contiguous().cpu()
    with open(path, "wb") as f:
        f.write(b"HRGT")
        f.write(struct.pack("<II", VERSION, t.dim()))
        f.write(struct.pack("<%dI" % t.dim(), *t.shape))
        f.write(t.numpy().astype("<f4").tobytes())


def write_safetensors(path, sd, dtype):
    """The safetensors layout, written by hand so the script needs only torch."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        v = v.detach().to(dtype).contiguous().cpu()
        raw = v.view(torch.uint8).numpy().tobytes() if dtype == torch.bfloat16 else v.numpy().tobytes()
        header[k] = {"dtype": names[dtype], "shape": list(v.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def old_esrgan_keys(sd, nb):
    """BasicSR names to the original ESRGAN repository's (RRDB_ESRGAN_x4.pth style)."""
    out = {}
    fixed = {"conv_first": "model.0", "conv_body": "model.1.sub.%d" % nb, "conv_up1": "model.3",
             "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    for k, v in sd.items():
        stem, param = k.rsplit(".", 1)
        if stem in fixed:
            out[fixed[stem] + "." + param] = v
        else:  # body.B.rdbR.convC
            _, b, r, c = stem.split(".")
            out["model.1.sub.%s.RDB%s.%s.0.%s" % (b, r[3:], c, param)] = v
    return out


def reference(model, x):
    m = model.double().eval()
    with torch.no_grad():
        return m(x.double().permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20261122)
    # non-square on purpose: a transposed axis shows up as a failure
    x = torch.rand(1, 20, 28, 3)
    write_hrt(os.path.join(out, "input-20x28.hrt"), x)

    cases = {
        "rrdbnet-x4": (RRDBNet(scale=4, num_feat=16, num_block=2, num_grow_ch=8), 2),
        "rrdbnet-x2": (RRDBNet(scale=2, num_feat=16, num_block=1, num_grow_ch=8), 1),
        "srvgg-x4": (SRVGGNetCompact(num_feat=16, num_conv=4, upscale=4), None),
    }
    for name, (model, nb) in cases.items():
        # PyTorch's default init makes near-silent nets; widen the weights so every layer matters
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if p.dim() == 4:
                    p.mul_(2.0)
                elif pname.endswith("bias"):
                    p.add_(torch.randn_like(p) * 0.05)
                else:  # PReLU slopes: one per channel, all different
                    p.copy_(torch.rand_like(p) * 0.5)
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        y = reference(model, x)
        write_hrt(os.path.join(out, name + ".out.hrt"), y)
        # Real-ESRGAN releases wrap the weights in params_ema
        torch.save({"params_ema": sd}, os.path.join(out, name + ".pth"))
        write_safetensors(os.path.join(out, name + ".fp16.safetensors"), sd, torch.float16)
        if name == "rrdbnet-x4":
            torch.save(old_esrgan_keys(sd, nb), os.path.join(out, name + ".esrgan-keys.pth"))
            write_safetensors(os.path.join(out, name + ".safetensors"), sd, torch.float32)
            write_safetensors(os.path.join(out, name + ".bf16.safetensors"), sd, torch.bfloat16)
        # outputs of the half-precision files, for their own (looser) check
        half = {k: v.to(torch.float16).to(torch.float64) for k, v in sd.items()}
        model.load_state_dict({k: v.to(torch.float32) for k, v in half.items()})
        write_hrt(os.path.join(out, name + ".fp16-weights.out.hrt"), reference(model, x))
        print(name, "params", sum(v.numel() for v in sd.values()), "out", tuple(y.shape),
              "range %.3f..%.3f" % (y.min().item(), y.max().item()))
    with open(os.path.join(out, "VERSION"), "w") as f:
        f.write("%d\nmade by scripts/golden/make_golden.py with torch %s\n" % (VERSION, torch.__version__))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "golden")
