"""Every Python code block in the README and the guides runs as written, or is marked as needing Azure.

A block marked as needing an Azure account (an RST ``:caption:`` or a first line starting with
"Needs an Azure account") is compiled, so it is at least valid Python; every other block runs in a
fresh interpreter from the repository's root, as a reader would paste it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "Needs an Azure account"


@dataclass(frozen=True)
class Block:
    where: str
    code: str
    needs_azure: bool


def _markdown_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, re.M | re.S):
        code = match.group(1)
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(f"{path.name}:{line}", code, code.lstrip().startswith(f"# {MARK}")))
    return blocks


def _rst_blocks(path: Path) -> list[Block]:
    lines = path.read_text().split("\n")
    blocks = []
    for index, line in enumerate(lines):
        if line.strip() != ".. code-block:: python":
            continue
        indent = len(line) - len(line.lstrip())
        body, needs_azure, cursor = [], False, index + 1
        while cursor < len(lines) and lines[cursor].strip().startswith(":"):  # the directive's options
            needs_azure |= lines[cursor].strip().startswith(f":caption: {MARK}")
            cursor += 1
        for text in lines[cursor:]:
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            body.append(text)
        code = "\n".join(text[indent + 3 :] for text in body).strip("\n") + "\n"
        blocks.append(Block(f"{path.relative_to(ROOT)}:{index + 1}", code, needs_azure))
    return blocks


def _all_blocks() -> list[Block]:
    blocks = _markdown_blocks(ROOT / "README.md")
    for path in sorted((ROOT / "docs").glob("*.rst")):
        blocks += _rst_blocks(path)
    return blocks


BLOCKS = _all_blocks()


def test_the_docs_have_blocks_of_both_kinds() -> None:
    assert any(block.needs_azure for block in BLOCKS)
    assert sum(not block.needs_azure for block in BLOCKS) >= 3


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.needs_azure], ids=lambda b: b.where)
def test_a_block_that_needs_azure_is_valid_python(block: Block) -> None:
    compile(block.code, block.where, "exec")


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.needs_azure], ids=lambda b: b.where)
def test_a_block_runs_as_written(block: Block) -> None:
    completed = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", block.code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, f"{block.where} failed:\n{completed.stderr}"
    assert "Warning" not in completed.stderr, completed.stderr  # unclosed sessions and the like


def _commands(text: str, fence: str) -> list[str]:
    """The lines of every shell block in ``text`` that install or run something."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith(fence)]


def test_the_quick_start_gives_the_readmes_two_commands_as_the_readme_gives_them() -> None:
    readme = _commands((ROOT / "README.md").read_text(), "python -m pip install -e")
    quickstart = _commands((ROOT / "docs" / "quickstart.rst").read_text(), "python -m pip install -e")
    assert readme[:2] == [
        'python -m pip install -e ".[demo]" && python -m bgrefresh_policy',
        'python -m pip install -e ".[test]" && python -m pytest',
    ]
    assert set(readme[:2]) <= set(quickstart)


def test_the_troubleshooting_page_names_every_logger_that_logs() -> None:
    package = ROOT / "bgrefresh_policy"
    logging_modules = {
        "bgrefresh_policy." + ".".join(path.relative_to(package).with_suffix("").parts)
        for path in package.rglob("*.py")
        if re.search(r"_LOGGER\.(debug|info|warning|error|exception)\(", path.read_text())
    }
    named = set(re.findall(r"``(bgrefresh_policy\.[\w.]+)``", (ROOT / "docs" / "troubleshooting.rst").read_text()))
    assert logging_modules <= named


def test_the_testing_pages_example_passes_as_a_users_pytest_file() -> None:
    # Strict mode: a user's project need not set pytest-asyncio's asyncio_mode = auto, as this one does.
    example = ROOT / "docs" / "examples" / "test_my_service.py"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-o", "asyncio_mode=strict", str(example)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "4 passed" in completed.stdout


def test_the_observing_example_runs_on_public_names_only() -> None:
    example = ROOT / "docs" / "examples" / "observe.py"
    assert "bgrefresh_policy._" not in example.read_text()
    completed = subprocess.run(
        [sys.executable, "-W", "error", str(example)], cwd=example.parent, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    events = re.findall(r"^event: (inline|background) (\w+) in", completed.stdout, re.M)
    assert events == [("inline", "new_token"), ("background", "new_token")]
    assert '"name": "bgrefresh_policy.refresh_token"' in completed.stdout
