"""How long a corpus scan takes on 10,000 files, against opening every file with soundfile.

Issue 2 asked that scanning 10,000 files takes under 10 s on 2 cores, issue 18 under 2 s for the
whole ``serlib scan`` command (without ``--check-audio``), and that the ``--check-audio`` throughput
be reported. This script writes N tiny CREMA-D-named WAV files (one file encoded once, its bytes
copied), then times, in the same run:

1. ``load_corpus("cremad", folder)``: file names plus the first 64 bytes of each file;
2. ``serlib scan --corpus cremad --root FOLDER --json`` as a fresh process (imports included),
   beside a fresh process that only imports what the scan imports (its fixed start-up cost);
3. the obvious alternative loader: the same scan with ``soundfile.info`` (libsndfile opens and
   parses each file) in place of the 64-byte check, and ``soundfile.info`` alone on every file;
4. reading all the audio of every file with ``soundfile.read``;
5. ``load_corpus("cremad", folder, check_audio=True)``: the scan plus decoding every clip and
   checking it for silence, clipping, NaN and length (what ``serlib scan --check-audio`` does).

The files are CREMA-D's ``AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav`` (16 kHz), each name a
distinct utterance: 91 actors x 12 sentences x 6 emotions x 4 levels allow 26,208. (RAVDESS, used
until issue 18, has only 1,440 distinct speech names; copies of them are now counted once, as
duplicates.) The files are freshly written, so they are in the page cache: this measures the scan's
own cost, not the disk's.

Run: ``.venv/bin/python benchmarks/bench_scan.py [--files 10000] [--repeat 3]``; results are
recorded in ``benchmarks/RESULTS_scan.md``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf

from serlib.config import serlib_home
from serlib.corpora import CorpusScan, base, load_corpus

SAMPLE_RATE = 16000
SECONDS = 0.05
CORPUS = "cremad"
SENTENCES = ("DFA", "IEO", "IOM", "ITH", "ITS", "IWL", "IWW", "MTI", "TAI", "TIE", "TSI", "WSI")
EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
LEVELS = ("LO", "MD", "HI", "XX")


def cremad_stems(n_files: int) -> list[str]:
    """``n_files`` distinct CREMA-D names, every actor and emotion represented early on."""
    combinations = itertools.product(LEVELS, SENTENCES, EMOTIONS, range(1001, 1092))
    stems = [
        f"{actor}_{sentence}_{emotion}_{level}" for level, sentence, emotion, actor in combinations
    ]
    if n_files > len(stems):
        raise ValueError(f"at most {len(stems)} distinct CREMA-D names, asked for {n_files}")
    return stems[:n_files]


def tiny_wav(seconds: float = SECONDS) -> bytes:
    """A 16 kHz 16-bit tone, encoded once; every benchmark file is a copy of these bytes."""
    time_axis = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    samples = (0.3 * np.sin(2 * np.pi * 220 * time_axis)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_corpus(root: Path, n_files: int, seconds: float = SECONDS) -> list[Path]:
    """Write ``n_files`` valid CREMA-D-named WAVs under ``root / "AudioWAV"``; return their paths."""
    payload = tiny_wav(seconds)
    folder = root / "AudioWAV"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.wav" for stem in cremad_stems(n_files)]
    for path in paths:
        path.write_bytes(payload)
    return paths


def timed(function: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    """Wall-clock seconds of ``repeat`` calls, and the last call's result."""
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def run_python(arguments: list[str]) -> str:
    """Run ``python ARGS`` in a fresh process and return its stdout (exit 0 required)."""
    completed = subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def info_problem(path: str | Path) -> str | None:
    """The alternative per-file check: let libsndfile open the file and parse its header."""
    try:
        return None if sf.info(str(path)).frames > 0 else "zero-length audio"
    except (RuntimeError, sf.LibsndfileError) as error:
        return f"corrupt or unsupported audio ({error})"


def load_corpus_with_soundfile_info(root: Path) -> CorpusScan:
    """``load_corpus`` as it would be if it checked each file with soundfile.info."""
    with mock.patch.object(base, "sniff_problem", info_problem):
        return load_corpus(CORPUS, root)


def info_all(paths: list[Path]) -> int:
    """The alternative scan: let libsndfile open and parse every file's header."""
    return sum(sf.info(str(path)).frames > 0 for path in paths)


def read_all(paths: list[Path]) -> int:
    """The slowest alternative: decode every file's audio."""
    return sum(len(sf.read(str(path), dtype="float32")[0]) > 0 for path in paths)


def describe(name: str, seconds: list[float], n_files: int, reference: float | None) -> str:
    """One result line: best and median time, files per second, and the ratio to the reference."""
    best = min(seconds)
    line = f"{name:<34} best {best:7.3f} s  median {statistics.median(seconds):7.3f} s"
    line += f"  {n_files / best:9.0f} files/s"
    if reference is not None:
        line += f"  {best / reference:5.1f}x load_corpus"
    return line


def benchmark(
    root: Path, n_files: int, repeat: int, with_cli: bool, seconds: float, with_check: bool = True
) -> dict:
    """Write the corpus under ``root``, time every way of scanning it, and print the results."""
    start = time.perf_counter()
    paths = write_corpus(root, n_files, seconds)
    write_seconds = time.perf_counter() - start
    print(f"wrote {n_files} files of {paths[0].stat().st_size} bytes in {write_seconds:.2f} s")

    results: dict = {"files": n_files}
    scan_seconds, scan = timed(lambda: load_corpus(CORPUS, root), repeat)
    if len(scan) != n_files or scan.skipped:
        raise RuntimeError(f"load_corpus found {len(scan)} files, skipped {len(scan.skipped)}")
    results["load_corpus_n"] = len(scan)
    results["load_corpus_s"] = scan_seconds
    reference = min(scan_seconds)
    print(describe("load_corpus (names + 64 bytes)", scan_seconds, n_files, None))

    if with_cli:
        arguments = ["scan", "--corpus", CORPUS, "--root", str(root), "--json"]
        cli_seconds, stdout = timed(lambda: run_python(["-m", "serlib", *arguments]), repeat)
        results["cli_n"] = json.loads(stdout)["n"]
        if results["cli_n"] != n_files:
            raise RuntimeError(f"serlib scan found {results['cli_n']} files")
        results["cli_s"] = cli_seconds
        imports = ["-c", "import serlib.cli, serlib.corpora, serlib.labels"]
        startup_seconds, _ = timed(lambda: run_python(imports), repeat)
        results["startup_s"] = startup_seconds
        print(describe("serlib scan --json (process)", cli_seconds, n_files, reference))
        print(describe("  of which imports (fresh process)", startup_seconds, n_files, reference))

    alternative_seconds, alternative = timed(lambda: load_corpus_with_soundfile_info(root), repeat)
    if len(alternative) != n_files:
        raise RuntimeError(f"the soundfile.info scan found {len(alternative)} files")
    results["load_corpus_soundfile_info_s"] = alternative_seconds
    print(describe("same scan, soundfile.info per file", alternative_seconds, n_files, reference))
    info_seconds, _ = timed(lambda: info_all(paths), repeat)
    read_seconds, _ = timed(lambda: read_all(paths), repeat)
    results["soundfile_info_s"] = info_seconds
    results["soundfile_read_s"] = read_seconds
    print(describe("soundfile.info on every file", info_seconds, n_files, reference))
    print(describe("soundfile.read on every file", read_seconds, n_files, reference))
    if not with_check:
        return results

    def checked_scan() -> CorpusScan:
        return load_corpus(CORPUS, root, check_audio=True, progress=False)

    check_seconds, checked = timed(checked_scan, repeat)
    if len(checked) != n_files:
        raise RuntimeError(f"the checked scan kept {len(checked)} of {n_files} files")
    results["check_audio_s"] = check_seconds
    megabytes = sum(path.stat().st_size for path in paths) / 1e6
    line = describe("load_corpus(check_audio=True)", check_seconds, n_files, reference)
    print(f"{line}  {megabytes / min(check_seconds):6.1f} MB/s")
    return results


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="how many files to scan")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each method")
    parser.add_argument("--folder", help="write here (kept); default: a temporary folder")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="length of each file")
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line runs")
    parser.add_argument(
        "--no-check-audio",
        action="store_true",
        help="skip the check_audio scan (for serlib versions before issue 18, which lack it)",
    )
    args = parser.parse_args(argv)
    if args.files < 1 or args.repeat < 1 or args.seconds <= 0:
        parser.error("--files and --repeat must be at least 1 and --seconds positive")

    print(f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    options = (args.files, args.repeat, not args.no_cli, args.seconds, not args.no_check_audio)
    if args.folder:
        return benchmark(Path(args.folder) / "CREMA-D", *options)
    serlib_home().mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench_scan_", dir=serlib_home()))
    try:
        return benchmark(folder / "CREMA-D", *options)
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
