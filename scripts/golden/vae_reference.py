"""A plain-PyTorch AutoencoderKL (the SD 1.x / SDXL / SD3 / FLUX VAE), module names as diffusers'.

Written from diffusers' published definitions (AutoencoderKL, Encoder, Decoder, UNetMidBlock2D,
DownEncoderBlock2D, UpDecoderBlock2D, ResnetBlock2D, Attention with one head, Upsample2D,
Downsample2D) so that golden outputs need nothing but torch; state_dict() keys are diffusers'.
`to_ldm` renames them to the original LDM / ComfyUI / FLUX ae.safetensors layout (attention as
1x1 convolutions), the inverse of diffusers' ldm_vae conversion.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from vae_keys import to_ldm  # noqa: F401  (re-exported: make_vae_golden.py imports it from here)

GROUPS = 32
EPS = 1e-6


class Resnet(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, cin, eps=EPS)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = nn.GroupNorm(GROUPS, cout, eps=EPS)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):
    """One head over every spatial position, with a residual, as the VAE mid block has it."""

    sdpa = True  # F.scaled_dot_product_attention, as diffusers runs it; False: explicit softmax (for float64 goldens)

    def __init__(self, c):
        super().__init__()
        self.group_norm = nn.GroupNorm(GROUPS, c, eps=EPS)
        self.to_q = nn.Linear(c, c)
        self.to_k = nn.Linear(c, c)
        self.to_v = nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x).view(b, c, h * w).transpose(1, 2)  # (b, positions, c)
        q, k, v = self.to_q(t), self.to_k(t), self.to_v(t)
        if Attention.sdpa:
            a = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        else:
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1) @ v
        a = self.to_out[0](a).transpose(1, 2).reshape(b, c, h, w)
        return a + x


class Mid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.resnets = nn.ModuleList([Resnet(c, c), Resnet(c, c)])
        self.attentions = nn.ModuleList([Attention(c)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class ConvHolder(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride, 1 if stride == 1 else 0)


class Encoder(nn.Module):
    def __init__(self, channels, layers, latent):
        super().__init__()
        self.conv_in = nn.Conv2d(3, channels[0], 3, 1, 1)
        self.down_blocks = nn.ModuleList()
        prev = channels[0]
        for i, c in enumerate(channels):
            blk = nn.Module()
            blk.resnets = nn.ModuleList()
            for j in range(layers):
                blk.resnets.append(Resnet(prev, c))
                prev = c
            if i < len(channels) - 1:
                blk.downsamplers = nn.ModuleList([ConvHolder(c, 2)])
            self.down_blocks.append(blk)
        self.mid_block = Mid(channels[-1])
        self.conv_norm_out = nn.GroupNorm(GROUPS, channels[-1], eps=EPS)
        self.conv_out = nn.Conv2d(channels[-1], 2 * latent, 3, 1, 1)

    def forward(self, x):
        x = self.conv_in(x)
        for blk in self.down_blocks:
            for r in blk.resnets:
                x = r(x)
            if hasattr(blk, "downsamplers"):
                x = blk.downsamplers[0].conv(F.pad(x, (0, 1, 0, 1)))  # Downsample2D: pad right and bottom, stride 2
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, channels, layers, latent):
        super().__init__()
        rev = list(reversed(channels))
        self.conv_in = nn.Conv2d(latent, rev[0], 3, 1, 1)
        self.mid_block = Mid(rev[0])
        self.up_blocks = nn.ModuleList()
        prev = rev[0]
        for i, c in enumerate(rev):
            blk = nn.Module()
            blk.resnets = nn.ModuleList()
            for j in range(layers + 1):
                blk.resnets.append(Resnet(prev, c))
                prev = c
            if i < len(rev) - 1:
                blk.upsamplers = nn.ModuleList([ConvHolder(c, 1)])
            self.up_blocks.append(blk)
        self.conv_norm_out = nn.GroupNorm(GROUPS, channels[0], eps=EPS)
        self.conv_out = nn.Conv2d(channels[0], 3, 3, 1, 1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for blk in self.up_blocks:
            for r in blk.resnets:
                x = r(x)
            if hasattr(blk, "upsamplers"):
                x = blk.upsamplers[0].conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, channels=(128, 256, 512, 512), layers=2, latent=4, quant=True):
        super().__init__()
        self.encoder = Encoder(channels, layers, latent)
        self.decoder = Decoder(channels, layers, latent)
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1) if quant else None
        self.post_quant_conv = nn.Conv2d(latent, latent, 1) if quant else None
        self.levels = len(channels)

    def encode(self, x):
        """Moments (mean and log-variance), as diffusers' DiagonalGaussianDistribution takes them."""
        m = self.encoder(x)
        return self.quant_conv(m) if self.quant_conv is not None else m

    def decode(self, z):
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)


def randomize(vae, seed):
    """Seeded weights; GroupNorm's gamma and beta away from 1 and 0 so that they matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if ".group_norm." in name or ".norm" in name or "conv_norm_out" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
    return vae
