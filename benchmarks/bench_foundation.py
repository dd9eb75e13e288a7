"""Foundation figures: install time/size, FER2013 ingest, DCNN training speed plain vs NSL, memory.

    python benchmarks/bench_foundation.py                      # ingest + speed + memory
    python benchmarks/bench_foundation.py --install            # also time `bash install.sh` into a new venv
    python benchmarks/bench_foundation.py --data ../shared/data/fer2013 --steps 30

Ingest is timed warm (second read). Training speed is images/s at batch 50 over --steps steps
after warm-up; GFLOP/s = MACs x 6 x images/s (forward 2 FLOPs per MAC, backward twice that),
counting a plain model's work for NSL too, so NSL's GFLOP/s shows useful work only. The memory
figure is the peak resident memory of a child process that loads the full data set, builds the
full train/test pipelines, trains NSL for --steps steps and evaluates on the full test split.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import fer_keras  # noqa: E402,F401

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fer2013"


def bench_install() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        subprocess.run(["bash", str(ROOT / "install.sh"), f"{tmp}/venv"], check=True, stdout=subprocess.DEVNULL)
        seconds = time.time() - start
        size = int(subprocess.run(["du", "-sb", f"{tmp}/venv"], capture_output=True, text=True).stdout.split()[0])
    return {"install_seconds": round(seconds, 1), "venv_mb": round(size / 2**20)}


def bench_ingest(path: Path) -> dict:
    from fer_keras.data import load_fer2013, read_fer2013_csv, write_fer2013_csv

    load_fer2013(path)  # warm the file cache
    start = time.time()
    data = load_fer2013(path)
    folder_s = time.time() - start
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_fer2013_csv(data, Path(tmp) / "fer2013.csv")
        read_fer2013_csv(csv)
        start = time.time()
        again = read_fer2013_csv(csv)
        csv_s = time.time() - start
        assert (again.images == data.images).all()
        csv_mb = csv.stat().st_size / 2**20
    return {"images": len(data), "folder_seconds": round(folder_s, 2), "csv_seconds": round(csv_s, 2),
            "csv_mb": round(csv_mb)}


def bench_training(steps: int, jit: bool) -> dict:
    import numpy as np
    import tensorflow as tf

    from fer_keras.data import FaceData
    from fer_keras.data.pipeline import as_xy, make_dataset
    from fer_keras.models import build_model
    from fer_keras.nsl import wrap_adversarial
    from fer_keras.profiler import count_macs
    from fer_keras.training import compile_model

    batch = 50
    rng = np.random.default_rng(0)
    data = FaceData(rng.integers(0, 256, (batch * 8, 48, 48, 1), dtype=np.uint8), rng.integers(0, 7, batch * 8))
    ds = make_dataset(data, (48, 48, 1), batch, training=True).repeat()
    macs = count_macs(build_model("dcnn"))
    out = {"dcnn_macs": macs}
    for adversarial in (False, True):
        model = build_model("dcnn")
        if adversarial:
            model = wrap_adversarial(model)
        compile_model(model, "adam", 1e-3, jit_compile=jit)
        train = ds if adversarial else as_xy(ds)
        model.fit(train, epochs=1, steps_per_epoch=3, verbose=0)  # trace + warm up
        start = time.time()
        model.fit(train, epochs=1, steps_per_epoch=steps, verbose=0)
        ips = steps * batch / (time.time() - start)
        key = "nsl" if adversarial else "plain"
        out[f"{key}_images_per_s"] = round(ips, 1)
        out[f"{key}_gflops"] = round(macs * 6 * ips / 1e9, 1)
        tf.keras.backend.clear_session()
    out["nsl_cost_x"] = round(out["plain_images_per_s"] / out["nsl_images_per_s"], 2)
    return out


def bench_models(names: list[str], steps: int, batch: int = 64) -> dict:
    """Plain training images/s of each model (48x48x1, batch ``batch``), in one process, so the
    ratios are measured under the same load."""
    import numpy as np
    import tensorflow as tf

    from fer_keras.models import build_model
    from fer_keras.profiler import count_macs
    from fer_keras.training import compile_model

    rng = np.random.default_rng(0)
    x = rng.random((batch, 48, 48, 1), dtype=np.float32)
    y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, batch)]
    out = {}
    for name in names:
        model = compile_model(build_model(name, (48, 48, 1), 7))
        for _ in range(2):  # trace + warm up
            model.train_on_batch(x, y)
        start = time.time()
        for _ in range(steps):
            model.train_on_batch(x, y)
        ips = steps * batch / (time.time() - start)
        out[name] = {"params": model.count_params(), "macs": count_macs(model), "images_per_s": round(ips, 1)}
        tf.keras.backend.clear_session()
    first = out[names[0]]["images_per_s"]
    for name in names:
        out[name][f"speed_vs_{names[0]}"] = round(out[name]["images_per_s"] / first, 2)
    return out


def _peak_rss_kib() -> int:
    """This process's own peak resident memory (KiB). /proc's VmHWM belongs to the current address
    space; ru_maxrss also keeps the high-water mark of the parent it was forked from, across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(path: str, steps: int) -> None:
    """Runs in a child process: a full-data NSL run shortened to ``steps`` training steps."""
    from fer_keras.config import DataConfig
    from fer_keras.data.pipeline import make_dataset
    from fer_keras.data.prepare import prepare_data
    from fer_keras.models import build_model
    from fer_keras.nsl import wrap_adversarial
    from fer_keras.training import compile_model

    parts = prepare_data(DataConfig(path=path), log=lambda *a: None)
    common = dict(input_shape=(48, 48, 1), batch_size=50)
    train = make_dataset(parts["train"], training=True, **common)
    test = make_dataset(parts["test"], **common)
    model = compile_model(wrap_adversarial(build_model("dcnn")))
    model.fit(train, epochs=1, steps_per_epoch=steps, verbose=0)
    model.evaluate(test, verbose=0)
    peak = _peak_rss_kib() / 2**20  # KiB -> GiB
    print(json.dumps({"train_images": len(parts["train"]), "test_images": len(parts["test"]),
                      "peak_rss_gb": round(peak, 2)}))


def bench_memory(path: Path, steps: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--memory-child", str(path), "--steps", str(steps)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])  # the child's own peak, not the fork's


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="FER2013 folder or CSV (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (default: %(default)s)")
    parser.add_argument("--jit", action="store_true", help="also time XLA-compiled training")
    parser.add_argument("--install", action="store_true", help="time `bash install.sh` into a new venv")
    parser.add_argument("--compare-models", default=None, metavar="A,B", help="only time plain training of "
                        "these models (e.g. dcnn,vgg) in one process and print their speed ratios")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child, args.steps)

    print(f"machine: {os.cpu_count()} CPUs, TensorFlow {__import__('tensorflow').__version__}")
    if args.compare_models:
        names = [n.strip() for n in args.compare_models.split(",") if n.strip()]
        print("training (plain, batch 64, 48x48x1):", bench_models(names, args.steps))
        return
    if args.install:
        print("install:", bench_install())
    data = Path(args.data)
    if data.exists():
        print("ingest:", bench_ingest(data))
    else:
        print(f"ingest: skipped, {data} not found (pass --data)")
    print("training (batch 50, 48x48x1 DCNN):", bench_training(args.steps, jit=False))
    if args.jit:
        print("training with XLA jit_compile:", bench_training(args.steps, jit=True))
    if data.exists():
        print("memory of a full-data NSL run:", bench_memory(data, args.steps))


if __name__ == "__main__":
    main()
