"""The README's "Use it on your model" example runs as written, on 2 ranks."""

import os
import re

from tests.horovod_harness import REPO_ROOT, run_ranks


def _readme_example() -> str:
    with open(os.path.join(REPO_ROOT, "README.md")) as readme:
        text = readme.read()
    match = re.search(r"<!-- example:start -->\s*```python\n(.*?)```\s*<!-- example:end -->",
                      text, re.S)
    assert match, "README.md lost its example markers"
    return match.group(1)


def run_readme_example() -> None:
    """Rank body: executes the example's code."""
    exec(compile(_readme_example(), "README.md example", "exec"), {"__name__": "__main__"})


def test_readme_example_trains_on_two_ranks():
    output = run_ranks(2, run_readme_example, timeout_s=300)
    assert "rank 0 sent" in output  # CommBytesLogger's per-step report
    held = [int(n) for n in re.findall(r"rank \d: (\d+) embedding rows held here", output)]
    assert len(held) == 2 and all(n > 0 for n in held)
