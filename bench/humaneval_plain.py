"""Qwen2.5-Coder-0.5B on HumanEval with a plain chat prompt, beside the harness's own result.

Is our harness (the react-tools scaffold, its system prompt, the 384-token cap) what keeps the
embedded Qwen below its published HumanEval pass@1? This asks the same problems with no
scaffold at all: the model's own chat template, its default system prompt, the user turn
``Complete the following python code:`` followed by the problem, temperature 0, 768 tokens.
The first ```python block of the reply (else the whole reply) is run with the problem's
tests in a subprocess (20 s). The harness's outcome for each problem is read from the
committed results of ``bench/benchmarks_full.py`` (the current react-tools hash). Not a test.

Last line: ``humaneval_plain: P/N plain vs H/N harness``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchmarks_full import RESULTS, scaffold_hash
from shardscope.scaffolds.backends.local_weights import resolve, weights_spec
from shardscope.scaffolds.backends.registry import load_catalog
from shardscope.scaffolds.tasks.humaneval import data_file

MODEL = "qwen2.5-coder-0.5b-instruct"
SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
_BLOCK = re.compile(r"```(?:python)?\n(.*?)```", re.S)


def harness_outcomes(results: Path) -> dict[str, str]:
    """Per HumanEval task id, the harness's recorded outcome for Qwen under the current hash."""
    current = scaffold_hash()
    out = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if (row["model"], row["suite"], row["scaffold_hash"]) == (MODEL, "humaneval", current):
            out[row["task_id"]] = row["outcome"]
    return out


def passes(problem: dict[str, str], reply: str) -> bool:
    blocks = _BLOCK.findall(reply)
    code = blocks[0] if blocks else reply
    head = "" if f"def {problem['entry_point']}" in code else problem["prompt"] + "\n"
    program = f"{head}{code}\n\n{problem['test']}\ncheck({problem['entry_point']})\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "solution.py"
        path.write_text(program, encoding="utf-8")
        try:
            done = subprocess.run([sys.executable, str(path)], capture_output=True, timeout=20,
                                  cwd=tmp)
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=768)
    args = parser.parse_args()
    import llama_cpp

    harness = harness_outcomes(args.results)
    if not harness:
        raise SystemExit(f"no HumanEval results for {MODEL} under the current hash in {args.results}")
    with gzip.open(data_file(), "rt", encoding="utf-8") as source:
        problems = {p["task_id"].replace("/", "-"): p for p in map(json.loads, source)
                    if p["task_id"].replace("/", "-") in harness}
    llm = llama_cpp.Llama(model_path=str(resolve(weights_spec(load_catalog(None).get(MODEL)))),
                          n_ctx=4096, n_threads=args.threads, verbose=False)
    plain = 0
    for task_id in sorted(harness):
        started = time.perf_counter()
        reply = llm.create_chat_completion(
            messages=[{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": "Complete the following python code:\n"
                       + problems[task_id]["prompt"]}],
            temperature=0, max_tokens=args.max_tokens)
        ok = passes(problems[task_id], reply["choices"][0]["message"]["content"])
        plain += ok
        print(f"{task_id:14s} plain {'pass' if ok else 'fail'}  harness {harness[task_id]:8s} "
              f"{reply['usage']['completion_tokens']:4d} tokens {time.perf_counter() - started:5.1f} s",
              flush=True)
    ran = sum(outcome == "success" for outcome in harness.values())
    print(f"humaneval_plain: {plain}/{len(harness)} plain vs {ran}/{len(harness)} harness")
    return 0


if __name__ == "__main__":
    sys.exit(main())
