"""The documentation's command lines against the real command line.

Every ``posetrack ...`` line in a fenced block of README.md and docs/**/*.md is parsed by the real
click commands (an unknown option, a refused choice or a bad value fails here, without running a
model); each command page's *Tested example* is either run here, on small files made in the test,
or names the test that runs it, whose source must use the example's options; the API reference
names every public name; and the reference's griffe extension fences doctests as code.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import posetrack_cli
from posetrack_cli.cli import main

from helpers import walkers, write_checkpoint, write_video

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])
# The pages that hold one command each (docs/commands/index.md is the table of them).
COMMAND_PAGES = sorted(p for p in (DOCS / "commands").glob("*.md") if p.name != "index.md")
# Fences whose lines are shell lines, or a terminal's text (lines starting "$ " or "posetrack ").
SHELL_FENCES = {"", "bash", "sh", "shell", "console", "text"}
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
TEST_REFERENCE = re.compile(r"tests/(test_\w+\.py)::(\w+)")


def fenced_blocks(text: str) -> Iterator[tuple[str, list[str]]]:
    """Each fenced block of Markdown text: (info string, its lines)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        block: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("```"):
            block.append(lines[i].strip())
            i += 1
        yield opening.group(2), block
        i += 1


def command_lines(lines: list[str]) -> Iterator[list[str]]:
    """The ``posetrack`` invocations of shell lines, as argument lists without ``posetrack``:
    continuation lines joined, comments dropped, a ``$ `` prompt removed, and each part of a
    ``&&`` / ``|`` / ``;`` chain taken on its own."""
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line
        else:
            joined.append(line.removeprefix("$ "))
    for line in joined:
        if not line.startswith(("posetrack ", "ffmpeg ", "<")) and " posetrack " not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        part: list[str] = []
        for token in [*lexer, ";"]:
            if token in {"&&", "|", ";", "||"}:
                if part and part[0] == "posetrack":
                    yield part[1:]
                part = []
            else:
                part.append(token)


def page_commands(path: Path) -> list[list[str]]:
    return [args for info, lines in fenced_blocks(path.read_text()) if info in SHELL_FENCES
            for args in command_lines(lines)]


def example_section(path: Path) -> tuple[str, list[list[str]]]:
    """The text and the command lines of a page's "## Tested example" section."""
    text = path.read_text()
    start = text.find("## Tested example")
    assert start >= 0, f"{path.relative_to(ROOT)} has no '## Tested example' section"
    end = text.find("\n## ", start + 1)
    section = text[start:] if end < 0 else text[start:end]
    commands = [args for info, lines in fenced_blocks(section) if info in SHELL_FENCES
                for args in command_lines(lines)]
    assert commands, f"{path.relative_to(ROOT)}: its tested example has no posetrack command line"
    return section, commands


def all_commands(group: click.Group, ctx: click.Context) -> Iterator[click.Command]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield command
        if isinstance(command, click.Group):
            yield from all_commands(command, click.Context(command, parent=ctx, info_name=name))


@pytest.fixture
def parse(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Parses an argument list with the real commands: types, choices, ranges, callbacks and
    required parameters as for a user. Paths are not required to exist (the examples name the
    user's files); every other check stays."""
    root = click.Context(main, info_name="posetrack")
    for command in all_commands(main, root):
        for param in command.params:
            if isinstance(param.type, click.Path) and param.type.exists:
                monkeypatch.setattr(param.type, "exists", False)

    def parse(args: list[str]) -> click.Context:
        group: click.Command = main
        ctx = root
        rest = list(args)
        while isinstance(group, click.Group):
            assert rest, "a group without a command"
            command = group.get_command(ctx, rest[0])
            assert command is not None, f"no command {rest[0]!r}"
            if isinstance(command, click.Group):
                ctx = click.Context(command, parent=ctx, info_name=rest[0])
                group, rest = command, rest[1:]
                continue
            return command.make_context(rest[0], rest[1:], parent=ctx)
        raise AssertionError("unreachable")

    yield parse


def test_every_documented_command_line_parses(parse) -> None:  # noqa: ANN001
    seen = set()
    for page in PAGES:
        for args in page_commands(page):
            seen.add(args[0])
            try:
                parse(args)
            except click.ClickException as exc:
                pytest.fail(f"{page.relative_to(ROOT)}: posetrack {shlex.join(args)}: {exc.format_message()}")
    assert seen == set(main.list_commands(click.Context(main)))  # every command's examples were found


def test_a_wrong_example_would_fail(parse) -> None:  # noqa: ANN001
    """The check above catches what a stale page would say."""
    for bad in (["run", "clip.mp4", "--no-such-option"], ["run", "clip.mp4", "--preset", "fastest"],
                ["track", "r.json", "--video", "v.mp4", "--similarity", "cosine"],
                ["run", "clip.mp4", "--det-threshold", "1.5"], ["export", "a.json", "--format", "csv"],
                ["weights", "frobnicate"]):
        with pytest.raises((click.ClickException, AssertionError)):
            parse(bad)


def test_every_command_has_a_page_with_a_tested_example() -> None:
    """One page per command, linked from the commands table; each page's tested example is run by
    this file or names the test that runs it."""
    names = set(main.list_commands(click.Context(main)))
    assert {p.stem for p in COMMAND_PAGES} == names
    index = (DOCS / "commands" / "index.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in names:
        assert f"]({name}.md)" in index and f"](docs/commands/{name}.md)" in readme, name
    for page in [*COMMAND_PAGES, DOCS / "live.md", DOCS / "ray.md"]:
        section, commands = example_section(page)
        references = TEST_REFERENCE.findall(section)
        ran_here = [args for args in commands if shlex.join(args) in RUN_HERE]
        if ran_here:
            assert "tests/test_docs.py" in section, page.name
            continue
        assert references, f"{page.name}: its tested example is neither run here nor names its test"
        for file_name, test_name in references:
            source = (ROOT / "tests" / file_name).read_text()
            assert f"def {test_name}(" in source, f"{page.name}: no test {file_name}::{test_name}"
            options = {token for args in commands for token in args if token.startswith("--")}
            missing = {option for option in options if f'"{option}"' not in source}
            assert not missing, f"{page.name}: {file_name} never passes {sorted(missing)}"


def test_every_page_names_its_tests_truly() -> None:
    for page in PAGES:
        for file_name, test_name in TEST_REFERENCE.findall(page.read_text()):
            assert f"def {test_name}(" in (ROOT / "tests" / file_name).read_text(), (page.name, test_name)


def test_the_api_reference_names_every_public_name() -> None:
    reference = (DOCS / "api.md").read_text()
    documented = set(re.findall(r"^::: posetrack_cli\.(\w+)$", reference, re.MULTILINE))
    assert documented == set(posetrack_cli.__all__) - {"__version__"}


def test_the_reference_renders_doctests_as_code() -> None:
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("griffe_examples", DOCS / "griffe_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "Adds:\n\n    >>> 1 + 1\n    2\n\nDone."
    assert module.fence_doctests(text) == "Adds:\n\n    ```pycon\n    >>> 1 + 1\n    2\n    ```\n\nDone."
    assert module.fence_doctests("No doctest [0, 1].") == "No doctest [0, 1]."
    skipped = ">>> tracker = VideoTracker.load()  # doctest: +SKIP"
    assert module.fence_doctests(skipped) == "```pycon\n>>> tracker = VideoTracker.load()\n```"
    assert module.code_for_roles("see :meth:`load` and :class:`~posetrack_cli.Poses`") == (
        "see `load` and `posetrack_cli.Poses`")


# The tested examples this file runs, exactly as the pages give them, in order (each later one reads
# what an earlier one wrote).
RUN_HERE = [
    "weights inspect my_checkpoint.pth",
    "weights list --json",
    "run clip.mp4 --detections boxes.json --pose-weights my_finetuned.pth --runtime torch",
    "track results.json --video clip.mp4",
    "export posetrack-out/clip.json",
    "report posetrack-out/clip.json",
    "evaluate run_a/clip.json run_b/clip.json",
]


def test_the_tested_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages' own command lines, run in a folder holding the files they name: a 6-frame video
    of two walkers, a box file, small random-initialised ResNet-18 pose checkpoints (one in the
    MSRA release's layout, one as `posetrack train` writes it, at 64x64)."""
    pytest.importorskip("matplotlib")
    import torch

    from posetrack_cli.core.keypoints import COCO_KEYPOINTS
    from posetrack_cli.models.checkpoints import save_msra_checkpoint
    from posetrack_cli.models.pose_resnet import pose_resnet
    from posetrack_cli.training.initialise import TRAINING_NORM
    from posetrack_cli.training.loop import posetrack_metadata

    documented = {shlex.join(args) for page in PAGES for args in page_commands(page)}
    for line in RUN_HERE:
        assert line in documented, f"no page gives: posetrack {line}"

    monkeypatch.chdir(tmp_path)
    write_video(tmp_path / "clip.mp4", walkers())
    boxes = [{"image_id": t, "category_id": 1, "bbox": [30.0 + 10 * t, 15.0, 60.0, 130.0], "score": 0.9}
             for t in range(6)]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    network = pose_resnet(depth=18)
    torch.nn.init.constant_(network.final_layer.bias, 0.5)  # random weights, every joint above 0.4 (helpers)
    write_checkpoint(network, tmp_path / "my_checkpoint.pth", "msra")
    # As `posetrack train` writes its final.pth, at a small input size that keeps the run to seconds.
    save_msra_checkpoint(network, tmp_path / "my_finetuned.pth",
                         posetrack=posetrack_metadata((64, 64), COCO_KEYPOINTS, TRAINING_NORM))

    def run(line: str) -> str:
        result = CliRunner().invoke(main, shlex.split(line))
        assert result.exit_code == 0, f"posetrack {line}:\n{result.output}"
        return result.stdout

    inspect, listing = run(RUN_HERE[0]), run(RUN_HERE[1])
    assert "ResNet-18" in inspect and "msra" in inspect
    assert any(f["name"] == "pose_resnet50_256x192" for f in json.loads(listing)["files"])

    run(RUN_HERE[2])
    track_file = tmp_path / "posetrack-out" / "clip.json"
    document = json.loads(track_file.read_text())
    assert len(document["images"]) == 6 and document["annotations"]

    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                "keypoint_scores": a["keypoint_scores"], "score": a["score"], "bbox": a["bbox"]}
               for a in document["annotations"]]
    (tmp_path / "results.json").write_text(json.dumps(results))
    run(RUN_HERE[3])
    assert json.loads((tmp_path / "posetrack-out" / "clip.tracks.json").read_text())["annotations"]

    run(RUN_HERE[4])
    for exported in ("posetrack18/clip.json", "coco/clip.json", "mot/clip.txt"):
        assert (tmp_path / "posetrack-out" / exported).stat().st_size > 0, exported

    run(RUN_HERE[5])
    assert (tmp_path / "posetrack-out" / "clip.report.html").stat().st_size > 0

    for folder in ("run_a", "run_b"):
        (tmp_path / folder).mkdir()
        shutil.copy(track_file, tmp_path / folder / "clip.json")
    scores = run(RUN_HERE[6])
    assert re.search(r"^\s*100\.0\s", scores, re.MULTILINE), scores  # a run against itself: MOTA 100


# The README's measured figures, each with the line of benchmarks/README.md it rounds.
README_FIGURES = {
    "44 / 100 ms a frame": [r"^street\s+realtime\s+openvino int8\s+([\d.]+)",
                           r"^street 2x2 realtime\s+openvino int8\s+([\d.]+)"],
    "87 / 80 ms a frame": [r"^street\s+peer openvino 384x640 \*\s+ultralytics openvino fp32\s+([\d.]+)",
                           r"^street 2x2 peer openvino 384x640 \*\s+ultralytics openvino fp32\s+([\d.]+)"],
    "934 / 2,078 ms a frame": [r"^street\s+fast\s+openvino int8\s+([\d.]+)",
                               r"^street 2x2 fast\s+openvino int8\s+([\d.]+)"],
    "159 / 140 / 63 ms": [r"^ResNet-50 torch fp32\s+([\d.]+)", r"^ResNet-50 openvino fp32\s+([\d.]+)",
                          r"^ResNet-50 openvino int8\s+([\d.]+)"],
    "1.2 / 1.8 ms a frame": [r"^\s+20 paper \(TrackerConfig\.paper\(\)\)\s+([\d.]+)",
                             r"^\s+20 \+ torso colours \(default\)\s+([\d.]+)"],
    "40 / 165": [r"^\| posetrack defaults\s+\|\s+(\d+) \|\s+[\d.]+ \|\s+[\d.]+ \|\s+\d+ / 270",
                 r"^\| bytetrack\s+\|\s+(\d+) \|\s+[\d.]+ \|\s+[\d.]+ \|\s+- \|"],
    "3.7 / 3.8 s": [r"^\| realtime \| warm \| \d+ \| ([\d.]+)", r"^\| fast \| warm \| \d+ \| ([\d.]+)"],
}


def test_the_readmes_figures_are_the_benchmarks() -> None:
    """Each figure of the README's measured table rounds the number of benchmarks/README.md it comes
    from, so a re-measured table makes this fail rather than leave the README behind."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Measured figures"):]
    table = table[:table.index("\n## ")]
    rows = [row for row in table.splitlines() if row.startswith("| ") and "---" not in row][1:]
    assert sorted(row.rsplit("|", 2)[1].strip() for row in rows) == sorted(README_FIGURES)
    benchmarks = (ROOT / "benchmarks" / "README.md").read_text()
    for cell, patterns in README_FIGURES.items():
        figures = re.findall(r"\d[\d,]*(?:\.\d+)?", cell)
        assert len(figures) == len(patterns), cell
        for figure, pattern in zip(figures, patterns):
            found = re.findall(pattern, benchmarks, re.MULTILINE)
            assert len(found) == 1, f"benchmarks/README.md has {len(found)} lines like {pattern!r}"
            decimals = len(figure.partition(".")[2])  # rounded half up, as a reader rounds 3.65 to 3.7
            rounded = Decimal(found[0]).quantize(Decimal(10) ** -decimals, rounding=ROUND_HALF_UP)
            assert rounded == Decimal(figure.replace(",", "")), (cell, figure, found[0])


def test_the_readme_is_a_front_door() -> None:
    """Small; the CPU-only PyTorch line before the install a newcomer runs; the test command that
    .ci/run reads, building the docs strictly; every relative link there."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 15 * 1024
    assert readme.index("download.pytorch.org/whl/cpu") < readme.index("python -m pip install -e . && posetrack run")
    ci = readme.split("<!-- ci:test -->\n", 1)[1]
    command = ci.split("```bash\n", 1)[1].split("\n```", 1)[0]
    assert "mkdocs build --strict" in command and '-m "not slow"' in command and "[test," in command
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), target
