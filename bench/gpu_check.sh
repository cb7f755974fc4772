#!/usr/bin/env bash
# GPU check (issue 14, part 3): run by hand on a machine with an NVIDIA GPU and photoseek[gpu,torch].
#
#   bash bench/gpu_check.sh [WORK_DIR]        # default WORK_DIR: a new temporary folder
#
# 1. fails at once, in one line, if onnxruntime cannot drive CUDA (the same check `--device cuda` makes);
# 2. exports a full-size random-weight ViT-B-32 and an FP16 copy of its image tower (inputs and
#    outputs stay float32, so the loader and the catalog see no difference);
# 3. model-only images/s (pre-decoded COCO photos, batch 32) on the CPU, on CUDA in FP32 and in FP16,
#    and the cosine between the CPU and each GPU embedding of the same photos (goal >= 0.999 in FP16);
# 4. the whole pipeline: `photoseek index --device cuda` over the coco-mini photos, images/s
#    (second run with --rebuild, so CUDA start-up is not counted).
# Photos: $PHOTOSEEK_SHARED_DATA/coco-mini, else ../shared/data/coco-mini beside the checkout.
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${PHOTOSEEK_SHARED_DATA:-$HERE/../shared/data}"
PHOTOS="$DATA/coco-mini"
WORK="${1:-$(mktemp -d -t photoseek-gpu-XXXX)}"
[ -d "$PHOTOS" ] || { echo "No photos in $PHOTOS: set PHOTOSEEK_SHARED_DATA." >&2; exit 1; }
mkdir -p "$WORK"
echo "work dir: $WORK   photos: $PHOTOS   load: $(cut -d' ' -f1-3 /proc/loadavg)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

photoseek models list --device cuda --json >/dev/null   # exits 1 with what to install when CUDA is missing

MODEL="$WORK/b32"
[ -d "$MODEL" ] || photoseek models export ViT-B-32 --random-weights --out "$MODEL"

python - "$MODEL" "$PHOTOS" <<'EOF'
"""Model-only throughput and CPU/GPU agreement, FP32 and FP16, on the same pre-decoded photos."""
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16
from PIL import Image

from photoseek.models import load_clip

model_dir, photos = Path(sys.argv[1]), Path(sys.argv[2])
fp16_dir = model_dir.with_name(model_dir.name + "-fp16")
if not fp16_dir.exists():
    shutil.copytree(model_dir, fp16_dir)
    config = json.loads((fp16_dir / "config.json").read_text())
    config["model_id"] = f"{config.get('model_id', model_dir.name)}-fp16"  # other embeddings, other id
    (fp16_dir / "config.json").write_text(json.dumps(config, indent=2))
    visual = onnx.load((model_dir / "visual/model.onnx").as_posix())
    onnx.save(convert_float_to_float16(visual, keep_io_types=True), (fp16_dir / "visual/model.onnx").as_posix())

cpu = load_clip(path=model_dir, device="cpu")
files = sorted(photos.rglob("*.jpg"))
with_pixels = []
for f in files:
    with Image.open(f) as im:
        with_pixels.append(cpu.preprocess(im.convert("RGB")))
pixels = np.stack(with_pixels)


def timed(model, rounds=3):
    model.encode_pixels(pixels[:32])  # warm-up: session start, CUDA kernels, arena
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        out = model.encode_pixels(pixels)
        best = min(best, time.perf_counter() - start)
    return out, len(pixels) / best


reference, cpu_rate = timed(cpu, rounds=1)
print(f"model only, {len(pixels)} photos, batch 32: CPU {cpu_rate:.1f} images/s")
for label, path in (("CUDA FP32", model_dir), ("CUDA FP16", fp16_dir)):
    gpu = load_clip(path=path, device="cuda")
    embeddings, rate = timed(gpu)
    cosines = np.sum(embeddings * reference, axis=1)
    print(
        f"model only: {label} {rate:.1f} images/s ({rate / cpu_rate:.1f}x CPU) on {gpu.providers()[0]}; "
        f"cosine to CPU min {cosines.min():.5f} mean {cosines.mean():.5f}"
    )
EOF

count=$(find "$PHOTOS" -name '*.jpg' | wc -l)
DB="$WORK/gpu.db"
photoseek index "$PHOTOS" --db "$DB" --model-path "$MODEL" --device cuda --json >/dev/null
start=$(date +%s.%N)
photoseek index "$PHOTOS" --db "$DB" --model-path "$MODEL" --device cuda --rebuild --json \
  | python -c 'import json,sys; print("index ran on", json.load(sys.stdin)["providers"])'
end=$(date +%s.%N)
python -c "print(f'whole pipeline (photoseek index --device cuda, FP32): {$count / ($end - $start):.1f} images/s over $count photos')"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
