"""Every example in README.md and docs/ is real: complete rule files pass the checker,
case files pass `alertd test` against the rule file shown before them, fragments parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alertd.config import load_config
from alertd.config.nodes import Mapping, parse_yaml
from alertd.ruletest import load_cases, report, run_case

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ENV = {"ELEMENT_API_KEY": "k-123", "NAVIXY_HASH": "0123456789abcdef0123456789abcdef",
       "SMTP_PASSWORD": "pw", "SMTP_USER": "alerts", "SLACK_WEBHOOK": "T000/B000/XXXX",
       "TELEGRAM_TOKEN": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
       "TELEGRAM_CHAT": "12345678", "ALERTD_TOKEN": "a-long-secret-for-the-page"}
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            found.append((page.relative_to(ROOT).as_posix(), line, match.group(1)))
    return found


BLOCKS = blocks()


def kind(text: str) -> str:
    root = parse_yaml(text, "x", ENV, [], strict=False)
    keys = set(root.items) if isinstance(root, Mapping) else set()
    if {"sources", "rules"} <= keys:
        return "config"
    return "cases" if "cases" in keys else "fragment"


def test_the_docs_have_examples() -> None:
    kinds = [kind(text) for _, _, text in BLOCKS]
    assert kinds.count("config") >= 3 and "fragment" in kinds


@pytest.mark.parametrize("page,line,text", BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_example(page: str, line: int, text: str, tmp_path: Path) -> None:
    problems: list = []
    parse_yaml(text, f"{page}:{line}", ENV, problems, strict=False)
    assert problems == [], f"{page}:{line} is not valid YAML"
    what = kind(text)
    if what == "config":
        path = tmp_path / "rules.yaml"
        path.write_text(text)
        load_config(path, ENV)  # raises, with every located problem, if invalid
    elif what == "cases":
        before = [b for b in BLOCKS if b[0] == page and b[1] < line and kind(b[2]) == "config"]
        assert before, f"{page}:{line}: a case file needs a rule file shown before it"
        rules = tmp_path / "rules.yaml"
        rules.write_text(before[-1][2])
        cases = tmp_path / "cases.yaml"
        cases.write_text(text)
        config = load_config(rules, ENV, strict=False)
        for case in load_cases(str(cases), config):
            outcome = run_case(case, config)
            assert outcome.passed, "\n".join(report(outcome))


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    text = FENCE.sub("", page.read_text())
    broken = [target for target in LINK.findall(text)
              if "://" not in target and not target.startswith(("#", "mailto:"))
              and not (page.parent / target.split("#", 1)[0]).resolve().exists()]
    assert broken == []
    assert "../shared" not in page.read_text()  # nothing outside the repository


CONSOLE = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_readme_commands_run_against_the_readme_files(tmp_path: Path) -> None:
    """Every `alertd check|test` command the README shows runs, on the rule and case files
    it shows, with the exit status and first output line it shows."""
    import os
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    blocks = [t for p, _, t in BLOCKS if p == "README.md"]
    (tmp_path / "rules.yaml").write_text(next(b for b in blocks if kind(b) == "config"))
    (tmp_path / "cases.yaml").write_text(next(b for b in blocks if kind(b) == "cases"))
    ran = 0
    for block in CONSOLE.findall(text):
        lines = block.splitlines()
        for number, line in enumerate(lines):
            command = re.match(r"^\$ (?:(\w+)=\S+ )?alertd (check|test) (.*)$", line)
            if not command:
                continue
            env = {k: v for k, v in os.environ.items() if k not in ENV}
            if command.group(1):
                env[command.group(1)] = ENV[command.group(1)]
            env["PYTHONPATH"] = str(ROOT)
            done = subprocess.run([sys.executable, "-m", "alertd", command.group(2),
                                   *command.group(3).split()], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{line}\n{done.stderr}"
            assert done.stdout.splitlines()[0] == lines[number + 1], line
            ran += 1
    assert ran >= 2


def test_the_documented_unit_is_deploy_alertd_service() -> None:
    unit = (ROOT / "deploy/alertd.service").read_text()
    assert f"```ini\n{unit}```" in (ROOT / "docs/operations.md").read_text()
