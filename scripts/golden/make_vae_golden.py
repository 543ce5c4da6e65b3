#!/usr/bin/env python3
"""Seeded small VAEs in each key layout and PyTorch golden outputs for headroom's VAE tests.

Run on a machine with PyTorch:  python3 scripts/golden/make_vae_golden.py OUTDIR
The architecture is scripts/golden/vae_reference.py (plain PyTorch, diffusers' module names).
Weights are stored in fp16 to keep the fixtures small; the goldens are computed from those
fp16-rounded weights in float64 on the CPU (explicit softmax), stored as float32 .hrt files
(see make_golden.py: magic "HRGT", version, rank, dims, float32 data; images NHWC).

Cases (channels 32/32/32, one resnet per down block, so three levels: x4):
  vae-sd.diffusers.safetensors      4 latent channels with quant convs, diffusers keys
  vae-sd.sdxl-checkpoint.safetensors the same VAE in a whole-checkpoint layout: LDM keys under
                                    first_stage_model., beside stand-in UNet and text-encoder tensors
  vae-flux.ae.safetensors           16 latent channels, no quant convs, FLUX ae.safetensors keys
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import VERSION, write_hrt, write_safetensors  # noqa: E402
from vae_reference import Attention, AutoencoderKL, randomize, to_ldm  # noqa: E402

CHANNELS = (32, 32, 32)
LAYERS = 1


def fp16_rounded(vae):
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
    return vae


def main(out):
    os.makedirs(out, exist_ok=True)
    Attention.sdpa = False
    g = torch.Generator().manual_seed(20261130)
    # odd, non-square latent and image sizes: a transposed axis or a lost border shows up
    image = torch.rand(1, 3, 28, 20, generator=g) * 2 - 1
    write_hrt(os.path.join(out, "vae-image-28x20.hrt"), image.permute(0, 2, 3, 1))
    for name, latent, quant, seed in (("vae-sd", 4, True, 1), ("vae-flux", 16, False, 2)):
        vae = fp16_rounded(randomize(AutoencoderKL(CHANNELS, LAYERS, latent, quant), seed)).eval()
        sd = {k: v.clone() for k, v in vae.state_dict().items()}
        z = torch.randn(1, latent, 7, 5, generator=g)
        m = vae.double()
        with torch.no_grad():
            decoded = m.decode(z.double())
            moments = m.encode(image.double())
        write_hrt(os.path.join(out, name + ".latent.hrt"), z.permute(0, 2, 3, 1))
        write_hrt(os.path.join(out, name + ".decoded.hrt"), decoded.permute(0, 2, 3, 1))
        write_hrt(os.path.join(out, name + ".moments.hrt"), moments.permute(0, 2, 3, 1))
        if name == "vae-sd":
            write_safetensors(os.path.join(out, name + ".diffusers.safetensors"), sd, torch.float16)
            ckpt = to_ldm(sd, len(CHANNELS), "first_stage_model.")
            # stand-ins for the rest of an SDXL single-file checkpoint, which must not be read as VAE
            ckpt["model.diffusion_model.input_blocks.0.0.weight"] = torch.randn(8, 4, 3, 3, generator=g)
            ckpt["conditioner.embedders.0.transformer.text_model.encoder.layers.0.mlp.fc1.weight"] = torch.randn(8, 8, generator=g)
            write_safetensors(os.path.join(out, name + ".sdxl-checkpoint.safetensors"), ckpt, torch.float16)
        else:
            write_safetensors(os.path.join(out, name + ".ae.safetensors"), to_ldm(sd, len(CHANNELS)), torch.float16)
        print(name, "params", sum(v.numel() for v in sd.values()), "decoded", tuple(decoded.shape),
              "range %.3f..%.3f" % (decoded.min().item(), decoded.max().item()), "moments", tuple(moments.shape))
    with open(os.path.join(out, "VAE-VERSION"), "w") as f:
        f.write("%d\nmade by scripts/golden/make_vae_golden.py with torch %s\n" % (VERSION, torch.__version__))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "golden")
