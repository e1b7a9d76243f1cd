"""``evaluate --episodes`` against WFDB's own ``epicmp``, record by record.

For every built-in model: ``afdetect scan DATA --annotations afd`` writes the detection as
WFDB rhythm annotations; WFDB's ``epicmp -r REC -a atr afd -A -`` (matrix output: counts
and durations to the millisecond) scores each record; the per-record tallies are pooled
as WFDB's ``sumstats`` pools them (gross) and averaged over the records where defined;
``afdetect evaluate --episodes --json`` computes the same from its own scan. Every figure
must agree to 0.01 percentage points, and every episode count exactly, for ``-f 0``,
``-f 0 -x`` and ``epicmp``'s default learning period (``-f 5:0``). ``sumstats`` run on
``epicmp -l`` output is printed beside the gross figures (it rounds to whole percent).

epicmp is built from the WFDB Software Package source (github.com/bemoody/wfdb), which
this repository does not contain: pass a checkout or unpacked release with
``--wfdb-source`` (it is copied to ``BUILD/wfdb-10.7.0`` and built there with
``./configure --without-netfiles --without-flac --without-xview && make install``), or a
folder holding an already built ``epicmp`` with ``--wfdb-bin``.

    python benchmarks/epicmp_check.py --data DATA/mitdb --wfdb-source wfdb [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from provenance import command_line

from afdetect.atomic import write_json_atomic

RESULTS = Path(__file__).parent / "results"
MODELS = ("compressed", "compressed-4kb", "compressed-rr", "float")
# (label, epicmp options, afdetect evaluate options)
VARIANTS: tuple[tuple[str, list[str], list[str]], ...] = (
    ("-f 0", ["-f", "0"], ["--compare-from", "0"]),
    ("-f 0 -x", ["-f", "0", "-x"], ["--compare-from", "0", "--exclude-flutter"]),
    ("default (-f 5:0)", [], ["--compare-from", "300"]))
KEYS = ("episode_sensitivity", "episode_ppv", "duration_sensitivity", "duration_ppv")
TOLERANCE_PP = 0.01


def build_epicmp(source: Path, build: Path) -> Path:
    """Build WFDB from ``source`` under ``build``; returns the folder holding ``epicmp``."""
    prefix = build / "install"
    if (prefix / "bin" / "epicmp").exists():
        return prefix / "bin"
    tree = build / "wfdb-10.7.0"
    if not tree.exists():
        shutil.copytree(source, tree, ignore=shutil.ignore_patterns(".git"))
    for step in (["./configure", f"--prefix={prefix}", "--without-netfiles",
                  "--without-flac", "--without-xview"], ["make", "install"]):
        subprocess.run(step, cwd=tree, check=True, stdout=subprocess.DEVNULL)
    return prefix / "bin"


def wfdb_env(bin_dir: Path) -> dict[str, str]:
    lib = [str(bin_dir.parent / d) for d in ("lib", "lib64")]
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "LD_LIBRARY_PATH": os.pathsep.join([*lib, os.environ.get("LD_LIBRARY_PATH", "")])}


def seconds(text: str) -> float:
    """epicmp's time ``[[H:]M:]S.mmm`` in seconds."""
    value = 0.0
    for part in text.split(":"):
        value = value * 60 + float(part)
    return value


PAIR = re.compile(r"^\s*(Episode sensitivity|Episode positive predictivity|Duration "
                  r"sensitivity|Duration positive predictivity):.*\((\S+)/(\S+)\)\s*$")
FIELDS = {"Episode sensitivity": ("ref_matched", "ref_episodes"),
          "Episode positive predictivity": ("det_matched", "det_episodes"),
          "Duration sensitivity": ("ref_overlap_s", "ref_duration_s"),
          "Duration positive predictivity": ("det_overlap_s", "det_duration_s")}


def run_epicmp(env: dict[str, str], folder: Path, record: str, options: list[str]
               ) -> dict[str, float]:
    """One record's tallies from epicmp's matrix output."""
    out = subprocess.run(["epicmp", "-r", record, "-a", "atr", "afd", *options, "-A", "-"],
                         cwd=folder, env=env, capture_output=True, text=True, check=True).stdout
    tallies: dict[str, float] = {}
    for line in out.splitlines():
        if match := PAIR.match(line):
            num, den = FIELDS[match.group(1)]
            to = int if num.endswith("matched") else seconds
            tallies[num], tallies[den] = to(match.group(2)), to(match.group(3))
    if len(tallies) != 8:
        raise RuntimeError(f"epicmp {record}: unexpected output\n{out}")
    return tallies


def sumstats(env: dict[str, str], folder: Path, records: list[str], options: list[str]
             ) -> list[str]:
    """``sumstats`` of ``epicmp -l`` over ``records``: its Gross and Average lines."""
    table = folder / "epicmp-lines.txt"
    table.unlink(missing_ok=True)
    for record in records:
        subprocess.run(["epicmp", "-r", record, "-a", "atr", "afd", *options, "-l", "-A",
                        str(table)], cwd=folder, env=env, capture_output=True, check=True)
    out = subprocess.run(["sumstats", str(table)], cwd=folder, env=env, capture_output=True,
                         text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.startswith(("Gross", "Average"))]


def pooled(per_record: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Gross (pooled tallies) and average (mean of the defined per-record ratios)."""
    pairs = {"episode_sensitivity": ("ref_matched", "ref_episodes"),
             "episode_ppv": ("det_matched", "det_episodes"),
             "duration_sensitivity": ("ref_overlap_s", "ref_duration_s"),
             "duration_ppv": ("det_overlap_s", "det_duration_s")}
    gross: dict[str, float | None] = {}
    average: dict[str, float | None] = {}
    for key, (num, den) in pairs.items():
        total = sum(t[den] for t in per_record.values())
        gross[key] = sum(t[num] for t in per_record.values()) / total if total else None
        ratios = [t[num] / t[den] for t in per_record.values() if t[den]]
        average[key] = sum(ratios) / len(ratios) if ratios else None
    return {"gross": gross, "average": average}


def afdetect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "afdetect.cli", *args], capture_output=True,
                          text=True, check=True)


def check_model(model: str, data: Path, env: dict[str, str], work: Path) -> dict:
    folder = work / model
    folder.mkdir()
    afdetect("scan", str(data), "--model", model, "--annotations", "afd",
             "--annotations-dir", str(folder), "--json")
    records = sorted(p.stem for p in data.glob("*.hea"))
    for record in records:  # epicmp reads the header and both annotation files from one place
        for ext in ("hea", "atr"):
            (folder / f"{record}.{ext}").symlink_to((data / f"{record}.{ext}").resolve())
    out: dict = {}
    for label, epicmp_options, evaluate_options in VARIANTS:
        ours = json.loads(afdetect("evaluate", "--episodes", "--data", str(data), "--model",
                                   model, "--json", *evaluate_options).stdout)
        theirs = {r: run_epicmp(env, folder, r, epicmp_options) for r in records}
        reference = pooled(theirs)
        worst = 0.0
        count_mismatches = []
        for record, t in theirs.items():
            mine = ours["records"][record]
            fs = mine["fs"]
            mine_tallies = {
                "ref_matched": mine["ref_matched"],
                "ref_episodes": mine["ref_matched"] + mine["ref_missed"],
                "det_matched": mine["det_matched"],
                "det_episodes": mine["det_matched"] + mine["det_false"],
                "ref_overlap_s": mine["ref_overlap"] / fs,
                "ref_duration_s": mine["ref_duration"] / fs,
                "det_overlap_s": mine["det_overlap"] / fs,
                "det_duration_s": mine["det_duration"] / fs}
            for key in ("ref_matched", "ref_episodes", "det_matched", "det_episodes"):
                if mine_tallies[key] != t[key]:
                    count_mismatches.append(f"{record} {key}: {mine_tallies[key]} != {t[key]}")
            for key in ("ref_overlap_s", "ref_duration_s", "det_overlap_s", "det_duration_s"):
                if abs(mine_tallies[key] - t[key]) > 0.0015:  # epicmp prints milliseconds
                    count_mismatches.append(f"{record} {key}: {mine_tallies[key]:.4f} s != "
                                            f"{t[key]:.3f} s")
        for kind in ("gross", "average"):
            for key in KEYS:
                a, b = ours[kind][key], reference[kind][key]
                if (a is None) != (b is None):
                    worst = float("inf")
                elif a is not None and b is not None:
                    worst = max(worst, 100 * abs(a - b))
        agree = worst <= TOLERANCE_PP and not count_mismatches
        out[label] = {"afdetect": {k: ours[k] for k in ("gross", "average")},
                      "epicmp": reference,
                      "sumstats": sumstats(env, folder, records, epicmp_options),
                      "largest_difference_pp": worst, "mismatches": count_mismatches,
                      "agree": agree}
        print(f"{model:15s} {label:17s} " + " ".join(
            f"{k} {ours['gross'][k]:.4f}/{reference['gross'][k]:.4f}" for k in KEYS)
            + f" | largest difference {worst:.5f} pp, {len(count_mismatches)} record "
              f"mismatches: {'AGREE' if agree else 'DIFFER'}", flush=True)
        for line in out[label]["sumstats"]:
            print(f"{'':33s}sumstats {line}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="MIT-BIH style folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wfdb-source", type=Path, help="WFDB Software Package source tree")
    source.add_argument("--wfdb-bin", type=Path, help="folder holding a built epicmp")
    parser.add_argument("--build", type=Path, default=Path("runs/wfdb"),
                        help="where to build WFDB (default runs/wfdb)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--json", type=Path, help="results file "
                        "(default benchmarks/results/epicmp_check.json)")
    args = parser.parse_args()
    bin_dir = (args.wfdb_bin if args.wfdb_bin else
               build_epicmp(args.wfdb_source.resolve(), args.build.resolve()))
    env = wfdb_env(bin_dir.resolve())
    result: dict = {"command": command_line(), "tolerance_pp": TOLERANCE_PP, "models": {}}
    with tempfile.TemporaryDirectory(prefix="epicmp-check-") as tmp:
        for model in args.models:
            result["models"][model] = check_model(model, args.data.resolve(), env, Path(tmp))
    result["agree"] = all(v["agree"] for m in result["models"].values() for v in m.values())
    write_json_atomic(args.json or RESULTS / "epicmp_check.json", result, indent=2)
    print("all figures agree" if result["agree"] else "SOME FIGURES DIFFER")
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
