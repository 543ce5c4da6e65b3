#!/usr/bin/env python3
"""The whole-job reference for `headroom upscale` on big images: a plain PyTorch script in the style of
Real-ESRGAN's inference_realesrgan.py (RealESRGANer.tile_process): PIL reads the image, tiles of 512
input pixels with a 10-pixel pad run RRDBNet x4 (23 blocks, 64 features, growth 32, seeded random
weights: the architecture of scripts/golden/make_golden.py) in fp16 on the GPU, each tile's centre goes
into a full-size output tensor on the GPU, which is then clamped, rounded to uint8 on the host and
written as PNG with OpenCV (as Real-ESRGAN does; PIL with compress_level=1, OpenCV's default speed,
where OpenCV is missing). Prints one JSON line: seconds per phase, the first tile's time, the writer.

  python3 scripts/bench/realesrgan_style.py IN.png OUT.png [--tile 512] [--pad 10] [--scale 4]

Wrap it in /usr/bin/time -v for the peak host memory.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "golden"))
from make_golden import RRDBNet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--pad", type=int, default=10)
    ap.add_argument("--scale", type=int, default=4)
    args = ap.parse_args()
    t0 = time.perf_counter()
    torch.manual_seed(2026)
    model = RRDBNet(scale=args.scale, num_feat=64, num_block=23, num_grow_ch=32).cuda().eval().half()
    torch.cuda.synchronize()
    t_model = time.perf_counter()
    img = np.asarray(Image.open(args.input).convert("RGB")).astype(np.float32) / 255.0
    x = torch.from_numpy(np.transpose(img, (2, 0, 1))).unsqueeze(0).cuda().half()
    t_read = time.perf_counter()
    _, _, h, w = x.shape
    s, tile, pad = args.scale, args.tile, args.pad
    out = x.new_zeros((1, 3, h * s, w * s))
    first = None
    with torch.no_grad():
        for ty in range(math.ceil(h / tile)):
            for tx in range(math.ceil(w / tile)):
                t_tile = time.perf_counter()
                x0, y0 = tx * tile, ty * tile
                x1, y1 = min(x0 + tile, w), min(y0 + tile, h)
                px0, py0, px1, py1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)
                y = model(x[:, :, py0:py1, px0:px1])
                ox0, oy0 = (x0 - px0) * s, (y0 - py0) * s
                out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = y[:, :, oy0:oy0 + (y1 - y0) * s, ox0:ox0 + (x1 - x0) * s]
                if first is None:
                    torch.cuda.synchronize()
                    first = time.perf_counter() - t_tile
    torch.cuda.synchronize()
    t_gpu = time.perf_counter()
    arr = out.squeeze(0).float().clamp_(0, 1).cpu().numpy()
    arr = (np.transpose(arr, (1, 2, 0)) * 255.0).round().astype(np.uint8)
    t_host = time.perf_counter()
    try:
        import cv2
        cv2.imwrite(args.output, arr[:, :, ::-1])
        writer = "opencv " + cv2.__version__
    except ImportError:
        Image.fromarray(arr).save(args.output, compress_level=1)
        writer = "PIL compress_level=1 (no OpenCV here)"
    t_write = time.perf_counter()
    print(json.dumps({"input": args.input, "size": [w, h], "tile": tile, "pad": pad, "writer": writer,
                      "model_s": round(t_model - t0, 3), "read_s": round(t_read - t_model, 3),
                      "first_tile_s": round(first, 3), "gpu_tiles_s": round(t_gpu - t_read, 3),
                      "to_host_uint8_s": round(t_host - t_gpu, 3), "write_s": round(t_write - t_host, 3),
                      "image_s": round(t_write - t_model, 3), "total_s": round(t_write - t0, 3),
                      "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                      "output_bytes": os.path.getsize(args.output)}))


if __name__ == "__main__":
    main()
