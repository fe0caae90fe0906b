"""The user docs stay true: every `wanmodels` command they show exists with the options they use,
the CI recipes and the API example run against the test Hub, and the API reference names only
parameters, fields and exceptions the code has."""

from __future__ import annotations

import builtins
import functools
import inspect
import itertools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import wanmodels
from tests.support.cli import Cli, cli_env
from tests.support.docs import FENCE, fences, read_doc
from tests.support.hubserver import HubServer
from tests.support.paths import DOCS, REPO_ROOT
from tests.support.repos import add_repos, comfy_repo
from wanmodels import errors
from wanmodels.inputs.presets import list_presets, open_manifest, preset_path
from wanmodels.layout import WORK_DIR
from wanmodels.progress import ProgressSink
from wanmodels.sources.base import ByteSource

CHECKED_DOCS = ("ci.md", "troubleshooting.md", "scaling.md", "api.md", "manifest.md", "comfyui.md")
API_FUNCTIONS = (
    "load_manifest",
    "open_manifest",
    "plan",
    "download",
    "verify",
    "repair",
    "prune",
    "lock",
    "publish",
)
PRESET_LOCK = "models/.wanmodels/locks/wan2.1-i2v.lock"  # a preset's pin lives in its root
CI_LOCK = "wanmodels.lock"  # the CI recipes commit a manifest made with `wanmodels init`

_INLINE = re.compile(r"`([^`\n]+)`")
_ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# `wanmodels` as a command word: not part of a path (`.wanmodels/`) or a pip requirement (`wanmodels @`).
_COMMAND = re.compile(r"(?<![\w./@-])wanmodels(?=[ \t]+[-a-z])")
_SHELL_END = re.compile(r"\s#|;|&&|\|\||\||`|\)|>|<")
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
_SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&"}


def shown_commands(text: str) -> list[str]:
    """Every `wanmodels ...` command in the non-Python code blocks and inline code of a doc."""
    found: list[str] = []
    for lang, body in fences(text):
        if lang in ("python", "py", "json"):
            continue
        for line in body.splitlines():
            for match in _COMMAND.finditer(line):
                rest = line[match.start() :]
                cut = _SHELL_END.search(rest)
                found.append((rest[: cut.start()] if cut else rest).strip())
    for span in _INLINE.findall(FENCE.sub("", text)):
        words = span.split()
        while words and _ENV_ASSIGN.match(words[0]):
            words.pop(0)
        if len(words) >= 2 and words[0] == "wanmodels" and re.match(r"[-a-z]", words[1]):
            found.append(" ".join(words))
    return found


@functools.cache
def help_text(*command: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "wanmodels", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, f"wanmodels {' '.join(command)} --help failed: {proc.stderr}"
    return proc.stdout


def subcommands() -> set[str]:
    listing = help_text().split("Commands:", 1)[1]
    return set(re.findall(r"^  ([a-z][\w-]*)\s", listing, re.MULTILINE))


def unknown_options(command: str) -> list[str]:
    """What in `command` (a `wanmodels ...` line) the CLI does not have; empty when it is all real."""
    words = shlex.split(command)
    assert words[0] == "wanmodels", command
    args = words[1:]
    problems: list[str] = []
    if args and not args[0].startswith("-"):
        sub = args.pop(0)
        if sub not in subcommands():
            return [f"no subcommand {sub!r}"]
        known = set(_OPTION.findall(help_text(sub)))
    else:
        known = set(_OPTION.findall(help_text()))
    for arg in args:
        if arg.startswith("-") and arg != "-":
            option = arg.split("=", 1)[0]
            if option not in known:
                problems.append(f"no option {option!r}")
    return problems


@pytest.mark.parametrize("doc", CHECKED_DOCS)
def test_every_command_shown_in_the_docs_exists(doc: str) -> None:
    commands = shown_commands(read_doc(doc))
    assert commands, f"docs/{doc} shows no wanmodels command"
    bad = {cmd: problems for cmd in commands if (problems := unknown_options(cmd))}
    assert not bad, f"docs/{doc} shows commands the CLI lacks: {bad}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", CHECKED_DOCS)
def test_fences_are_closed_and_links_resolve(doc: str) -> None:
    text = read_doc(doc)
    fence_lines = re.findall(r"^```.*$", text, re.MULTILINE)
    assert len(fence_lines) == 2 * len(fences(text)), f"docs/{doc} has an unclosed or malformed fence"
    prose = FENCE.sub("", text)
    for target, anchor in re.findall(r"\]\(([\w./-]*\.md|)(?:#([\w-]+))?\)", prose):
        path = DOCS / (target or doc)
        assert path.is_file(), f"docs/{doc} links to missing {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text(encoding="utf-8")), re.M)
            assert anchor in {_slug(h) for h in headings}, f"docs/{doc}: no #{anchor} in {path.name}"


def test_the_command_checker_rejects_what_the_cli_lacks() -> None:
    assert unknown_options("wanmodels download --frozen --json --root /x -m wan2.1-i2v") == []
    assert unknown_options("wanmodels download --no-such-flag") == ["no option '--no-such-flag'"]
    assert unknown_options("wanmodels status --full") == ["no option '--full'"]
    assert unknown_options("wanmodels fetch") == ["no subcommand 'fetch'"]
    text = "```bash\nHF_HUB_OFFLINE=1 wanmodels verify --full  # note\npip install wanmodels\n```\n"
    text += 'Run `wanmodels status --json`, not `<root>/.wanmodels/lock` or "wanmodels @ git+x".\n'
    assert shown_commands(text) == ["wanmodels verify --full", "wanmodels status --json"]


# --- docs/ci.md --------------------------------------------------------------------------------


def _literal_env(mapping: Any) -> dict[str, str]:
    """Environment a recipe sets with plain values (secrets and expressions are left out)."""
    if not isinstance(mapping, dict):
        return {}
    return {str(k): str(v) for k, v in mapping.items() if "$" not in str(v)}


def _recipe_command(line: str) -> tuple[dict[str, str], str] | None:
    """(env, command) when a shell line runs wanmodels, possibly after `VAR=value` words."""
    words = shlex.split(line)
    env: dict[str, str] = {}
    while words and _ENV_ASSIGN.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or words[0] != "wanmodels":
        return None
    operators = _SHELL_OPERATORS.intersection(words)
    assert not operators, f"keep recipe lines that run wanmodels plain: {line!r}"
    return env, shlex.join(words)


def ci_recipes() -> dict[str, dict[str, Any]]:
    """Each YAML recipe of docs/ci.md: its parsed document and the wanmodels lines it runs."""
    recipes: dict[str, dict[str, Any]] = {}
    for _, body in fences(read_doc("ci.md"), "yaml", "yml"):
        doc = yaml.safe_load(body)
        runs: list[tuple[dict[str, str], str]] = []
        if "jobs" in doc:
            kind = "github"
            for job in doc["jobs"].values():
                for step in job.get("steps", []):
                    env = _literal_env(job.get("env")) | _literal_env(step.get("env"))
                    for line in str(step.get("run", "")).splitlines():
                        if (found := _recipe_command(line)) is not None:
                            runs.append((env | found[0], found[1]))
        else:
            kind = "gitlab"
            for job in doc.values():
                if isinstance(job, dict) and "script" in job:
                    for line in job["script"]:
                        if (found := _recipe_command(line)) is not None:
                            runs.append((_literal_env(job.get("variables")) | found[0], found[1]))
        recipes[kind] = {"doc": doc, "runs": runs}
    return recipes


def test_ci_recipes_cache_the_models_folder_on_the_lockfile_hash() -> None:
    recipes = ci_recipes()
    assert set(recipes) == {"github", "gitlab"}
    github = recipes["github"]["doc"]
    caches = [
        step["with"]
        for job in github["jobs"].values()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith("actions/cache@")
    ]
    assert caches, "the GitHub recipe has no actions/cache step"
    assert all(c["path"] == "models" for c in caches)
    assert all(f"hashFiles('{CI_LOCK}')" in c["key"] for c in caches)
    assert any("secrets.HF_TOKEN" in str(job.get("env")) for job in github["jobs"].values())
    gitlab_jobs = recipes["gitlab"]["doc"].values()
    gitlab_caches = [job["cache"] for job in gitlab_jobs if isinstance(job, dict) and "cache" in job]
    assert gitlab_caches, "the GitLab recipe has no cache"
    for cache in gitlab_caches:
        assert cache["key"]["files"] == [CI_LOCK]
        assert cache["paths"] == ["models/"]
    for kind, recipe in recipes.items():
        commands = [cmd for _, cmd in recipe["runs"]]
        assert "wanmodels download --frozen --json" in commands, kind
        assert "wanmodels verify" in commands, kind
        assert commands.index("wanmodels verify") > commands.index("wanmodels download --frozen --json")


def test_ci_recipes_run_against_the_test_hub(cli: Cli, workdir: Path) -> None:
    """A new user's checkout: the one-time set-up (the first shell block: init, lock), then every
    wanmodels line of the recipes, in order, then the other stand-alone commands of docs/ci.md
    (offline after a cache hit, the upstream check)."""
    blocks = [
        [found for line in body.splitlines() if line.strip() and (found := _recipe_command(line)) is not None]
        for _, body in fences(read_doc("ci.md"), "bash", "sh", "shell")
    ]
    setup, rest = blocks[0], [run for block in blocks[1:] for run in block]
    assert [cmd.split()[1] for _, cmd in setup] == ["init", "lock"], setup
    runs = setup + [run for recipe in ci_recipes().values() for run in recipe["runs"]] + rest
    assert any(env.get("HF_HUB_OFFLINE") == "1" for env, _ in runs), "no offline run after a cache hit"

    for env, command in runs:
        args = shlex.split(command)[1:]
        run = cli(*args, **env)
        if args[0] == "lock" and not (workdir / CI_LOCK).exists():
            raise AssertionError(f"{command} did not write {CI_LOCK} beside wanmodels.yaml")
        assert run.returncode == 0, f"{env} {command}: exit {run.returncode}\n{run.stderr}"
        if "--json" in args:
            doc = run.json()
            assert doc["status"] == "ok", doc
            if args[0] == "download":
                assert Path(doc["root"]) == (workdir / "models").resolve()  # the folder the recipes cache
        helped = cli(args[0], "--help")
        assert helped.returncode == 0, helped.stderr
        assert unknown_options(command) == [], command


# --- docs/api.md --------------------------------------------------------------------------------


def _api_example() -> str:
    blocks = [body for _, body in fences(read_doc("api.md"), "python", "py")]
    assert blocks, "docs/api.md has no python block"
    return "\n\n".join(blocks)


def test_api_example_runs_against_the_test_hub(hub: HubServer, workdir: Path) -> None:
    code = _api_example()
    for name in API_FUNCTIONS:
        assert re.search(rf"\b{name}\b", code), name

    def run() -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=workdir,
            env=cli_env(hub),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    first = run()
    lock = json.loads((workdir / PRESET_LOCK).read_text(encoding="utf-8"))
    sizes = {m["name"]: [f["size"] for f in m["files"]] for m in lock["models"]}
    total = sum(sum(s) for s in sizes.values())
    count = sum(len(s) for s in sizes.values())
    assert first[0] == f"to fetch: {total} bytes in {count} files"
    for name, files in sizes.items():
        assert f"{name}: {len(files)} files, {sum(files)} bytes fetched" in first
    assert first[-2:] == ["download: ok", "verified: True"]
    assert (workdir / "models" / "sd-vae" / "config.json").is_file()

    second = run()
    assert second[0] == "to fetch: 0 bytes in 0 files"
    assert second[-2:] == ["download: ok", "verified: True"]


def test_api_signatures_match_the_code() -> None:
    text = read_doc("api.md")
    documented = dict(re.findall(r"^`(\w+)(\(.*\)(?: -> .+)?)`$", text, re.MULTILINE))
    assert set(documented) >= set(API_FUNCTIONS)
    for name, signature in documented.items():
        actual = str(inspect.signature(getattr(wanmodels, name))).replace("'", "")
        assert signature == actual, f"docs/api.md documents {name}{signature}, the code has {name}{actual}"


_API_MODULES = (
    "inputs.manifest",
    "ops.publish",
    "planning.plan",
    "results",
    "repos",
    "sources.base",
    "ops.download",
    "ops.verify",
    "sources.pins",
    "inputs.lockfile",
    "config",
)


def _api_class(name: str) -> type:
    import importlib

    for module in _API_MODULES:
        found = getattr(importlib.import_module(f"wanmodels.{module}"), name, None)
        if inspect.isclass(found):
            return found
    raise AssertionError(f"docs/api.md documents a class {name!r} that no wanmodels module has")


def _table_first_column(section: str) -> list[str]:
    rows = re.findall(r"^\|([^|\n]+)\|", section, re.MULTILINE)
    return [
        cell for cell in rows if "---" not in cell and cell.strip() not in ("field", "method", "exception")
    ]


def test_api_result_fields_exist() -> None:
    sections = re.split(r"^##+ ", read_doc("api.md"), flags=re.MULTILINE)[1:]
    checked = 0
    for section in sections:
        title = section.splitlines()[0].strip()
        match = re.fullmatch(r"`([A-Z]\w*)`", title)
        if match is None:
            continue
        cls = _api_class(match.group(1))
        for cell in _table_first_column(section):
            for field in re.findall(r"`(\w+)(?:\(\))?`", cell):
                assert hasattr(cls, field), f"docs/api.md: {cls.__name__} has no {field!r}"
                checked += 1
    assert checked >= 50


def test_api_exception_table_matches_the_hierarchy() -> None:
    section = read_doc("api.md").split("## Exceptions", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)`( \*)? \| ([^|]+) \| (\d+) \|", section, re.MULTILINE)
    documented = {name for name, *_ in rows}
    real = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.WanmodelsError)
    }
    assert documented == real
    for name, star, parents, code in rows:
        cls = getattr(errors, name)
        assert cls.exit_code == int(code), name
        for parent in re.findall(r"`(\w+)`", parents):
            base = getattr(errors, parent, None) or getattr(builtins, parent)
            assert issubclass(cls, base), f"{name} is not a {parent}"
        assert (getattr(wanmodels, name, None) is cls) == bool(star), f"{name}: export marker is wrong"


@pytest.mark.parametrize(
    ("heading", "protocol"), [("Progress sinks", ProgressSink), ("Byte sources", ByteSource)]
)
def test_api_protocol_tables_list_every_method(heading: str, protocol: type) -> None:
    section = read_doc("api.md").split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for cell in _table_first_column(section):
        documented.update(re.findall(r"`(\w+)\(", cell))
    methods = {name for name in vars(protocol) if not name.startswith("_")}
    assert documented == methods


# --- docs/troubleshooting.md, docs/scaling.md ---------------------------------------------------


def test_troubleshooting_covers_the_seed_problems_and_ours() -> None:
    text = read_doc("troubleshooting.md")
    headings = " ".join(re.findall(r"^## (.+)$", text, re.MULTILINE))
    for topic in (
        "Model not found",
        "Out of memory",
        "Slow model loading",
        "Download timeout",
        "Corrupted downloads",
        "Gated",
        "401",
        "Disk full",
        "Another process holds the root",
        "wrong ComfyUI folder",
        "blongsta/wan2.1-i2v",
        "mirrors",
    ):
        assert topic in headings, topic
    commands = shown_commands(text)
    for fix in (
        "wanmodels verify --full",
        "wanmodels download --repair",
        "wanmodels status",
        "wanmodels download --no-wait",
    ):
        assert fix in commands, fix
    assert any("--timeout" in cmd for cmd in commands)
    assert "HF_ENDPOINT=" in text


def test_docs_name_the_real_work_folder() -> None:
    for doc in ("troubleshooting.md", "scaling.md"):
        assert f"<root>/{WORK_DIR}/lock" in read_doc(doc), doc
    assert f"<root>/{WORK_DIR}/partial/" in read_doc("troubleshooting.md")


# --- docs/manifest.md: Presets ------------------------------------------------------------------


def _presets_section() -> str:
    return read_doc("manifest.md").split("\n## Presets\n", 1)[1]


def test_every_preset_is_documented_with_its_folders() -> None:
    section = _presets_section()
    for preset in list_presets():
        assert f"### `{preset}`" in section, f"preset {preset} has no section in docs/manifest.md"
        row = re.search(rf"^\| `{re.escape(preset)}` \|.*$", section, re.MULTILINE)
        assert row is not None, f"preset {preset} is missing from the table"
        path = preset_path(preset)
        assert path is not None
        raw_root = yaml.safe_load(path.read_text(encoding="utf-8")).get("root", "./models")
        assert f"`{raw_root.rstrip('/')}/" in row.group(0), preset
        for spec in open_manifest(preset).models:  # an alias: its preset with its options fixed
            assert f"{spec.folder}/" in row.group(0), f"{preset}: folder {spec.folder} not in its row"


def test_the_documented_720p_comfyui_edit_plans_cleanly(cli: Cli, hub: HubServer, workdir: Path) -> None:
    add_repos(hub, comfy_repo())
    snippets = [body for _, body in fences(_presets_section(), "yaml") if body.startswith("  - name:")]
    assert len(snippets) == 1
    made = cli("init", "--preset", "wan2.1-comfyui")
    assert made.returncode == 0, made.stderr
    manifest = workdir / "wanmodels.yaml"
    text = manifest.read_text(encoding="utf-8")
    start = text.index("  - name:")
    end = text.index("\n\n", start) + 1
    manifest.write_text(text[:start] + snippets[0] + text[end:], encoding="utf-8")
    run = cli("download", "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    paths = {f["path"] for m in run.json()["models"] for f in m["files"]}
    assert "diffusion_models/wan2.1_i2v_720p_14B_fp8_scaled.safetensors" in paths
    assert not any("480p" in p for p in paths)


def _pytest_commands() -> list[tuple[str, list[str]]]:
    """(where, arguments) of every `pytest` command the READMEs, the docs and CI run."""
    found = []
    sources = [
        REPO_ROOT / "README.md",
        REPO_ROOT / "tests" / "README.md",
        REPO_ROOT / ".ci" / "run",
        *sorted(DOCS.glob("*.md")),
    ]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".md":  # code blocks line by line, and inline code
            spans = [line for _, body in fences(text) for line in body.splitlines()]
            spans += _INLINE.findall(FENCE.sub("", text))
        else:
            spans = text.splitlines()
        # A command is the words from `pytest` up to a shell operator.
        for span in spans:
            if "-m pytest" not in span and not span.lstrip().startswith("pytest"):
                continue
            words = shlex.split(span.split("#", 1)[0])
            start = words.index("pytest") + 1
            args: list[str] = []
            for word in words[start:]:
                if word in _SHELL_OPERATORS:
                    break
                args.append(word)
            found.append((f"{path.name}: {span.strip()}", args))
    return found


def _marker_expression(args: list[str], default: str) -> str:
    """The `-m` expression pytest applies: the command line's last `-m`, else the addopts' one."""
    expression = default
    for i, arg in enumerate(args):
        if arg == "-m" and i + 1 < len(args):
            expression = args[i + 1]
        elif arg.startswith("-m") and len(arg) > 2:
            expression = arg[2:]
    return expression


def test_every_documented_test_command_keeps_the_network_tests_out() -> None:
    """A `-m` on the command line replaces pyproject's `-m 'not network'`, so each documented
    expression must exclude `network` itself (or the real-Hub tests run, and fail offline)."""
    from _pytest.mark.expression import Expression

    # tomllib is 3.11+; the one line is enough (the test below fails if it moves).
    found = re.search(r'^addopts = "(.*)"$', (REPO_ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert found, "pyproject.toml has no addopts line"
    addopts = shlex.split(found.group(1))
    default = _marker_expression(addopts, "")
    assert default, "pyproject's addopts must deselect the network tests with -m"
    commands = _pytest_commands()
    assert any("not slow" in " ".join(args) for _, args in commands), "the README's fast-test command is gone"
    for marks in ({"network"}, {"network", "slow"}):
        assert not Expression.compile(default).evaluate(lambda name, **_: name in marks)  # noqa: B023
        for where, args in commands:
            expression = _marker_expression(args, default)
            runs = Expression.compile(expression).evaluate(lambda name, **_: name in marks)  # noqa: B023
            assert not runs, f"{where} runs the network tests (-m {expression!r})"


def test_every_documented_test_command_names_paths_that_exist() -> None:
    """A test file or folder a doc says to run is still there, under that name (the suite's
    folders are tests/README.md's: a file moved out of a flat tests/ leaves no command behind)."""
    takes_value = {"-n", "-m", "-k", "-p", "-o", "--dist", "--maxfail", "--durations"}
    commands = _pytest_commands()
    assert any(arg.startswith("tests/") for _, args in commands for arg in args), "no command names a path"
    missing = [
        f"{where}: {arg}"
        for where, args in commands
        for before, arg in zip(["", *args], args, strict=False)
        if not arg.startswith("-") and before not in takes_value
        if not (REPO_ROOT / arg.split("::")[0]).exists()
    ]
    assert missing == []


def _download_pairs(text: str) -> list[tuple[list[str], list[str]]]:
    """(dry run, real run) for each `download --dry-run` followed by a real `download` in one block."""
    pairs = []
    for lang, body in fences(text):
        if lang in ("python", "py", "json", "yaml"):
            continue
        commands = [shlex.split(c) for c in shown_commands(f"```\n{body}```\n")]
        downloads = [c for c in commands if c[1:2] == ["download"]]
        for first, second in itertools.pairwise(downloads):
            if "--dry-run" in first and "--dry-run" not in second:
                pairs.append((first, second))
    return pairs


def _where(argv: list[str]) -> tuple[str | None, str | None]:
    """The `-m` and `--root` of a command line."""

    def value(*names: str) -> str | None:
        found = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in names]
        return found[-1] if found else None

    return value("-m", "--manifest"), value("--root")


@pytest.mark.parametrize("doc", [*CHECKED_DOCS, "cli.md", "../README.md"])
def test_a_documented_dry_run_looks_at_the_root_the_next_download_fills(doc: str) -> None:
    for dry, real in _download_pairs(read_doc(doc)):
        assert _where(dry) == _where(real), f"docs/{doc}: `{shlex.join(dry)}` then `{shlex.join(real)}`"


def test_every_top_level_manifest_key_is_documented() -> None:
    from wanmodels.inputs.manifest import _TOP_KEYS

    fence = fences(read_doc("manifest.md"), "yaml")[0][1]
    documented = {line.split(":", 1)[0] for line in fence.splitlines() if re.match(r"^[a-z]\w*:", line)}
    assert documented == set(_TOP_KEYS)
    for preset in list_presets():
        path = preset_path(preset)
        assert path is not None
        assert set(yaml.safe_load(path.read_text(encoding="utf-8"))) <= documented, preset


def test_the_api_docs_state_the_default_settings() -> None:
    from wanmodels.config import DEFAULT_TIMEOUT, DEFAULT_WORKERS

    text = read_doc("api.md")
    stated = re.search(r"`Settings\(\)`: (\d+) workers[^,]*, a (\d+) s read timeout", text)
    assert stated, "docs/api.md no longer states Settings()'s defaults"
    assert (int(stated.group(1)), float(stated.group(2))) == (DEFAULT_WORKERS, DEFAULT_TIMEOUT)


def test_root_help_says_what_root_does_for_each_command() -> None:
    assert "Put models here" in help_text("download")
    for command in ("verify", "status", "list"):
        assert "Put models here" not in help_text(command), command
    lock = " ".join(help_text("lock").split())
    assert "Put models here" not in lock and "lockfile" in lock and "nothing is fetched" in lock


def _cli_sections() -> dict[str, str]:
    """docs/cli.md's section for each command (`## \\`wanmodels NAME ...\\``), by the command's name."""
    sections = re.split(r"^## `wanmodels ", read_doc("cli.md"), flags=re.MULTILINE)[1:]
    return {part.split(None, 1)[0].rstrip("`"): part.split("\n## ", 1)[0] for part in sections}


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_the_cli_reference_documents_every_option_of_every_command(command: str) -> None:
    """The reverse of `test_every_command_shown_in_the_docs_exists`: what `--help` offers, the
    command's section of docs/cli.md names (its option table, or its text)."""
    sections = _cli_sections()
    assert command in sections, f"docs/cli.md has no section for `wanmodels {command}`"
    documented = set(_OPTION.findall(sections[command]))
    # One option per line of the help's option list, with its aliases (`-m, --manifest PATH`).
    options = [
        set(_OPTION.findall(line.strip().split("  ")[0]))
        for line in help_text(command).split("Options:", 1)[1].splitlines()
        if line.lstrip().startswith("-")
    ]
    missing = sorted(
        min(names) for names in options if names and not names & documented and "--help" not in names
    )
    assert not missing, f"docs/cli.md: the section of `wanmodels {command}` does not name {missing}"
