"""VAE key layouts, without torch (used by vae_reference.py and vae_numpy_check.py): tensors may be
torch tensors or numpy arrays."""


def to_ldm(sd, levels, prefix=""):
    """diffusers keys to the original LDM layout (and FLUX ae.safetensors), attention as 1x1 convs."""
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        n = k
        if parts[0] in ("encoder", "decoder"):
            comp, rest = parts[0], parts[1:]
            if rest[0] == "conv_norm_out":
                rest = ["norm_out"] + rest[1:]
            elif rest[0] == "mid_block":
                if rest[1] == "resnets":
                    rest = ["mid", "block_%d" % (int(rest[2]) + 1)] + rest[3:]
                else:  # attentions.0.<name>
                    name = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}[rest[3]]
                    tail = rest[5:] if rest[3] == "to_out" else rest[4:]
                    rest = ["mid", "attn_1", name] + tail
                    if name != "norm" and tail[-1] == "weight":
                        v = v[:, :, None, None]
            elif rest[0] in ("down_blocks", "up_blocks"):
                i = int(rest[1])
                level = i if rest[0] == "down_blocks" else levels - 1 - i
                word = "down" if rest[0] == "down_blocks" else "up"
                if rest[2] == "resnets":
                    sub = rest[4:]
                    if sub[0] == "conv_shortcut":
                        sub = ["nin_shortcut"] + sub[1:]
                    rest = [word, str(level), "block", rest[3]] + sub
                else:  # downsamplers.0.conv / upsamplers.0.conv
                    rest = [word, str(level), "downsample" if word == "down" else "upsample"] + rest[4:]
            n = ".".join([comp] + rest)
        out[prefix + n] = v
    return out
