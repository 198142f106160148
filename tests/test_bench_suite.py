"""Smoke test of the benchmark suite (benchmarks/suite.py): its quick mode on gpuad and NumPy alone (no peers
needed) runs, checks gpuad against central differences, and writes its Markdown and JSON reports."""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_suite_quick_runs(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--quick", "--workloads", "W1,W5,W7",
           "--systems", "gpuad,numpy", "--out", str(tmp_path), "--no-plots", "--min-reps", "1", "--max-reps", "2"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    (md,) = tmp_path.glob("suite_cpu_quick_*.md")
    (js,) = tmp_path.glob("suite_cpu_quick_*.json")
    text = md.read_text()
    assert "| W1 | n=4096 | grad |" in text and "gpuad's CPU targets" in text
    data = json.loads(js.read_text())
    got = {(r["workload"], r["system"], r["mode"]) for r in data["results"] if "median_s" in r}
    assert {("W1", "gpuad", "d"), ("W1", "numpy", "f"), ("W5", "gpuad", "d"), ("W7", "gpuad", "d")} <= got
    assert all(ok for ok, _ in data["fd_checks"].values()), data["fd_checks"]
