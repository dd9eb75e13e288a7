"""`fer-keras beam` (Apache Beam, DirectRunner) against `fer-keras predict` on the same folder of images.

    python benchmarks/bench_beam.py                                   # 1,000 FER2013 PublicTest faces, --detector none
    python benchmarks/bench_beam.py --images 2000 --model fer2013-ghostface
    python benchmarks/bench_beam.py --beam-options "" \
        --beam-options "--direct_num_workers 2 --direct_running_mode multi_processing"

A seeded sample of ``--images`` files from ``--source`` (default ``../shared/data/fer2013/test``, the
Kaggle folders' 48x48 JPEGs) is copied into a temporary folder; each command runs on it as a user
runs it (a new process: Python, TensorFlow and the model load included) with the same model,
detector and batch size. Printed per command: wall seconds, images/s, the CPU share it got (user +
system CPU seconds of the process and its children / wall seconds; 200 % = both cores of a 2-core
machine) and the same for a one-image run (the fixed start-up cost), whence the marginal images/s.
Then the check: the same files, statuses and faces, and the largest difference of any probability
between predict's predictions.json and Beam's JSON lines (both rounded to 5 decimals).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "test"
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}


def sample(source: Path, count: int, seed: int, into: Path) -> int:
    """Copy a seeded sample of ``count`` images below ``source`` into ``into`` (sub-folders kept)."""
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        sys.exit(f"{source}: no images (pass --source a folder of images)")
    chosen = random.Random(seed).sample(files, min(count, len(files)))
    for file in chosen:
        target = into / file.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return len(chosen)


def timed(argv: list[str]) -> dict:
    """Run ``argv``; wall seconds and CPU seconds (user + system of the children), or exit on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed:\n{done.stderr[-2000:]}")
    return {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def predict_faces(out: Path) -> dict:
    """{(file, face index): record} from predictions.json (a file without a face: index None)."""
    faces = {}
    for item in json.loads((out / "predictions.json").read_text())["items"]:
        for i, face in enumerate(item["faces"]):
            faces[(item["file"], i)] = {"status": item["status"], **face}
        if not item["faces"]:
            faces[(item["file"], None)] = {"status": item["status"]}
    return faces


def beam_faces(prefix: Path) -> dict:
    faces = {}
    for shard in sorted(prefix.parent.glob(prefix.name + "-*-of-*.jsonl")):
        for line in shard.read_text().splitlines():
            record = json.loads(line)
            faces[(record["file"], record.get("face"))] = record
    return faces


def compare(expected: dict, got: dict) -> str:
    if expected.keys() != got.keys():
        missing, extra = sorted(expected.keys() - got.keys(), key=str), sorted(got.keys() - expected.keys(), key=str)
        return f"DIFFERENT faces: {len(missing)} only in predict (e.g. {missing[:2]}), {len(extra)} only in Beam " \
               f"(e.g. {extra[:2]})"
    differ = [k for k in expected if (expected[k]["status"], expected[k].get("box"), expected[k].get("label"))
              != (got[k]["status"], got[k].get("box"), got[k].get("label"))]
    largest = max((abs(p - got[k]["probabilities"][c]) for k, v in expected.items()
                   for c, p in v.get("probabilities", {}).items()), default=0.0)
    return (f"{'same' if not differ else f'{len(differ)} DIFFERENT'} statuses, boxes and labels for {len(expected)} "
            f"faces/files; largest probability difference {largest:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SHARED_TEST, help="folder of images (default: %(default)s)")
    parser.add_argument("--images", type=int, default=1000, help="images sampled from it (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="fer2013-dcnn", help="any --model of fer-keras (default: %(default)s)")
    parser.add_argument("--detector", default="none", help="none for face crops such as FER2013's (default: "
                        "%(default)s)")
    parser.add_argument("--batch-size", default="64")
    parser.add_argument("--beam-options", action="append", default=None, metavar="TEXT", help="Beam options of one "
                        "Beam run, e.g. \"--direct_num_workers 2 --direct_running_mode multi_processing\"; repeat for "
                        "more runs (default: one run with none, the in-process DirectRunner)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "fer_keras"]
    common = ["--model", args.model, "--detector", args.detector, "--batch-size", args.batch_size]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start (other jobs count in it)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        count = sample(args.source, args.images, args.seed, tmp / "images")
        sample(tmp / "images", 1, args.seed, tmp / "one")
        print(f"{count} images from {args.source} (seed {args.seed}), model {args.model}, detector {args.detector}, "
              f"batch size {args.batch_size}\n")
        runs = {"fer-keras predict": lambda folder, out: [*cli, "predict", str(folder), *common, "--out", str(out),
                                                          "--no-annotate"]}
        for options in args.beam_options or [""]:
            name = "fer-keras beam" + (f" {options}" if options else " (DirectRunner, in-process)")
            runs[name] = lambda folder, out, options=options: [*cli, "beam", str(folder), *common, "--out",
                                                               str(out) + "/", *shlex.split(options)]
        print("| command | wall s | images/s | CPU share | 1-image run: wall s | marginal images/s |\n"
              "|---|---|---|---|---|---|")
        outputs = {}
        for i, (name, argv) in enumerate(runs.items()):
            one = timed(argv(tmp / "one", tmp / f"one{i}"))
            full = timed(argv(tmp / "images", tmp / f"out{i}"))
            outputs[name] = tmp / f"out{i}"
            marginal = (count - 1) / (full["wall"] - one["wall"]) if full["wall"] > one["wall"] else float("nan")
            print(f"| {name} | {full['wall']:.1f} | {count / full['wall']:.0f} | "
                  f"{100 * full['cpu'] / full['wall']:.0f} % | {one['wall']:.1f} | {marginal:.0f} |")
        expected = predict_faces(outputs["fer-keras predict"])
        print()
        for name, out in outputs.items():
            if name != "fer-keras predict":
                print(f"{name} vs predict: {compare(expected, beam_faces(out / 'faces'))}")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
