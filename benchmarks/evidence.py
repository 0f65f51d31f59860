"""docs/evidence.md: generator {none, hdml, gca} x metric loss {npair, multi_similarity,
proxy_anchor}, Recall@1 and MAP@R, mean ± sd over seeds, and the paired (same-seed)
difference of each generator from ``none``.

    nice -n 10 python benchmarks/evidence.py --regime scratch --out runs/evidence
    nice -n 10 python benchmarks/evidence.py --regime pretrained --out runs/evidence

The pretrained regime first writes the glyphs set (``benchmarks/glyphs.py``) into
``OUT/glyphs`` when it is not there, and the doc records that set's SHA-256.

Each regime is one ``gcahng ablate`` run (resumable: re-run the same command to continue);
the doc gets every regime whose results exist under ``--out``, each with the command that
made it. ``--epochs``/``--seeds``/``--set`` shrink it (the tests run it on tiny settings).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

GRID = ["--grid", "generator=none,hdml,gca", "--grid", "metric_loss=npair,multi_similarity,proxy_anchor"]
HERE = Path(__file__).resolve().parent
GLYPHS = "glyphs"  # folder under --out holding the generated glyphs set
REGIMES: dict[str, list[str]] = {
    # the digits default network (preset configs/digits.yaml), from scratch, on the schedule it ran with
    "scratch": ["digits", "--config", "benchmarks/configs/digits_evidence.yaml"],
    # efficientnet_lite0 with ImageNet weights, fine-tuned on the glyphs set ({out}: --out)
    "pretrained": ["cub200", "--set", "data_root={out}/" + GLYPHS, "--config", "benchmarks/configs/glyphs_lite0.yaml"],
}
DOC = HERE.parent / "docs" / "evidence.md"
METRICS = ("recall@1", "map@r")
#: The doc's hand-written findings follow this line; regenerating the tables keeps them.
FINDINGS = "<!-- findings: written by hand from the tables above; benchmarks/evidence.py keeps this part -->"


def _uses_glyphs(regime: str) -> bool:
    return "data_root={out}/" + GLYPHS in REGIMES[regime]


def _glyphs_module():
    spec = importlib.util.spec_from_file_location("glyphs", HERE / "glyphs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ablate_command(regime: str, out: Path, seeds: int, extra: list[str]) -> list[str]:
    dataset = [arg.replace("{out}", str(out)) for arg in REGIMES[regime]]
    return [sys.executable, "-m", "gcahng.cli.main", "ablate", *dataset, *GRID, "--seeds", str(seeds),
            "--out", str(out / regime), "--no-progress", *extra]


def _shown(arg: str) -> str:
    """``arg`` with the checkout's absolute path taken out (the doc's commands run from the checkout)."""
    return arg.replace(str(HERE.parent) + "/", "")


def _pct(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.1f}" if len(values) < 2 else f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}"


def regime_section(regime: str, results: dict, command: str) -> list[str]:
    """The mean ± sd table and the paired differences from ``generator=none``, by seed."""
    cells = {(c["values"]["generator"], c["values"]["metric_loss"]): c for c in results["cells"]}
    losses = list(dict.fromkeys(loss for _, loss in cells))
    generators = list(dict.fromkeys(g for g, _ in cells))
    lines = [f"## Regime: {regime}", "", "```", command, "```", "",
             "| metric loss | generator | Recall@1 | MAP@R | seeds |", "|---|---|---|---|---|"]
    for loss in losses:
        for gen in generators:
            cell = cells[(gen, loss)]
            lines.append(f"| {loss} | {gen} | {_pct(cell['recall@1']['per_seed'])} | "
                         f"{_pct(cell['map@r']['per_seed'])} | {len(cell['runs'])} |")
    lines += ["", "Paired by seed: generator minus `none` with the same loss and seed (MAP@R points; "
              "mean ± sd of the per-seed differences, and how many seeds it helped).", "",
              "| metric loss | generator | ΔMAP@R | helped |", "|---|---|---|---|"]
    for loss in losses:
        none_runs = cells[("none", loss)]["runs"] if ("none", loss) in cells else []
        base = {r["seed"]: r["metrics"]["map@r"] for r in none_runs}
        for gen in generators:
            if gen == "none" or not base:
                continue
            diffs = [r["metrics"]["map@r"] - base[r["seed"]] for r in cells[(gen, loss)]["runs"] if r["seed"] in base]
            lines.append(f"| {loss} | {gen} | {_pct(diffs)} | {sum(d > 0 for d in diffs)}/{len(diffs)} |")
    return lines + [""]


def write_doc(out: Path, commands: dict[str, str], doc: Path) -> None:
    lines = ["# Evidence: what generated hard negatives buy", "",
             "Produced by `benchmarks/evidence.py` (its docstring has the command). Recall@1 and MAP@R "
             "on the unseen test classes, in %, mean ± sample sd over seeds.", ""]
    for regime in REGIMES:
        path = out / regime / "results.json"
        if path.is_file():
            lines += regime_section(regime, json.loads(path.read_text()), commands.get(regime, "(see results.json)"))
            manifest = out / GLYPHS / "glyphs_manifest.json"
            if _uses_glyphs(regime) and manifest.is_file():
                facts = json.loads(manifest.read_text(encoding="utf-8"))
                versions = ", ".join(f"{name} {version}" for name, version in facts["versions"].items())
                lines += [f"Data: `python benchmarks/glyphs.py --out {_shown(str(out / GLYPHS))}`, {facts['images']} "
                          f"images, SHA-256 `{facts['sha256']}` with {versions}.", ""]
        else:
            lines += [f"## Regime: {regime}", "", "Not run yet; to run it (27 runs):", "", "```",
                      f"nice -n 10 python benchmarks/evidence.py --regime {regime} --out runs/evidence", "```", ""]
    findings = doc.read_text(encoding="utf-8").partition(FINDINGS)[1:] if doc.is_file() else ()
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines) + "".join(findings), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regime", choices=sorted(REGIMES), action="append", help="default: all")
    parser.add_argument("--out", type=Path, required=True, help="folder of the ablation runs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--glyph-images", type=int, default=30, help="images per glyph class (tests: fewer)")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more `gcahng ablate` options")
    args = parser.parse_args(argv)
    extra = [a for a in args.extra if a != "--"]
    args.out = args.out.resolve()  # the runs start in the checkout (the regimes name its config files)
    commands = {}
    for regime in args.regime or list(REGIMES):
        if _uses_glyphs(regime) and not (args.out / GLYPHS).exists():
            _glyphs_module().generate(args.out / GLYPHS, args.glyph_images)
        command = ablate_command(regime, args.out, args.seeds, extra)
        commands[regime] = shlex.join(["gcahng", *(_shown(arg) for arg in command[3:])])
        subprocess.run(command, check=True, cwd=HERE.parent)
    write_doc(args.out, commands, args.doc)
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
