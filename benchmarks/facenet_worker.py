"""Times facenet-pytorch's own MTCNN.detect on frames saved as .npy (run by bench_mtcnn.py in the side
environment where facenet-pytorch imports: torch 2.14.1 + torchvision 0.29.1). Prints one JSON line."""
import json
import sys
import time

import numpy as np
import torch


def main(frames_path, threads, device, batch, repeats):
    from facenet_pytorch import MTCNN

    torch.set_num_threads(threads)
    frames = np.load(frames_path)
    mtcnn = MTCNN(keep_all=True, device=device)
    chunks = [frames[i:i + batch] for i in range(0, len(frames), batch)]
    mtcnn.detect(chunks[0] if batch > 1 else chunks[0][0])  # warm-up
    best = best_cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for chunk in chunks:
            mtcnn.detect(chunk if batch > 1 else chunk[0])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    # cpu_fps: frames per CPU-second of all its threads, steadier than wall time on a shared machine
    print(json.dumps({"fps": len(frames) / best, "cpu_fps": len(frames) / best_cpu, "torch": torch.__version__}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
