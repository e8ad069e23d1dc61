"""The command line is generated from the configs: every option that sets an InferenceConfig or
StreamConfig field is that field's `--name`, and given options override the command's defaults
only (numpy only: no model is loaded)."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

import pytest

from amodal_ros.cli.main import COMMANDS, build_parser, command
from amodal_ros.cli.options import add_arguments, from_namespace
from amodal_ros.core.config import InferenceConfig, StreamConfig


def group_fields(args_cls):
    """{group name: (config class, selected field names)} of a command's Args."""
    import typing

    hints = typing.get_type_hints(args_cls)
    out = {}
    for f in fields(args_cls):
        if f.metadata.get("group"):
            config_cls = f.metadata.get("overrides") or hints[f.name]
            only, exclude = f.metadata["only"], f.metadata["exclude"]
            names = [
                cf.name
                for cf in fields(config_cls)
                if (not only or cf.name in only) and cf.name not in exclude
            ]
            out[f.name] = (config_cls, names)
    return out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_config_option_is_its_field_and_nothing_else_sets_a_config(name):
    args_cls = command(name).Args
    parser = argparse.ArgumentParser()
    add_arguments(parser, args_cls)
    by_dest = {}
    for action in parser._actions:
        by_dest.setdefault(action.dest, []).extend(action.option_strings)
    for group, (config_cls, names) in group_fields(args_cls).items():
        meta = {f.name: f.metadata for f in fields(config_cls)}
        kinds = {f.name: type(f.default) for f in fields(config_cls)}
        for field_name in names:
            options = by_dest.pop(f"{group}.{field_name}")
            flag = "--" + field_name.replace("_", "-")
            expected = [flag, *meta[field_name]["flags"]]
            if kinds[field_name] is bool:  # --x and --no-x
                expected.insert(1, "--no-" + flag[2:])
            assert options == expected, (name, field_name)
        for short in getattr(config_cls, "CLI_SHORTHANDS", {}):
            by_dest.pop(f"{group}.{short}", None)
    # what is left are the command's own options: none of them writes into a config
    config_names = {f.name for cls in (InferenceConfig, StreamConfig) for f in fields(cls)}
    leftover = {d for d in by_dest if d != "help"}
    assert not leftover & config_names, (name, leftover & config_names)


def test_the_whole_parser_builds_without_conflicts():
    parser = build_parser()
    assert parser.parse_args(["demo"]).command == "demo"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_prints_every_help_text_as_written(name, capsys):
    """argparse formats help with %: a '6-19 % slower' in a field's help must print as such."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([name, "--help"])
    out = capsys.readouterr().out
    assert "'option_strings'" not in out and "%%" not in out
    if name == "eval":
        assert "6-19 % slower per step" in " ".join(out.split())


def test_given_options_override_the_command_defaults_only():
    module = command("replay")
    parser = argparse.ArgumentParser()
    add_arguments(parser, module.Args)
    args = from_namespace(module.Args, parser.parse_args(["bag", "--out", "o", "--steps", "4"]))
    assert args.inference == InferenceConfig(num_steps=4)  # the model still sizes the rest
    assert args.stream.publish_frames == "new" and args.stream.checkpoint == "embedded"
    args = from_namespace(
        module.Args,
        parser.parse_args(
            ["bag", "--out", "o", "--guidance", "2.5", "--min-guidance", "1.0", "--no-progress"]
        ),
    )
    # the shorthand sets both ends of the ramp, unless one is given itself
    assert (args.inference.min_guidance, args.inference.max_guidance) == (1.0, 2.5)
    assert args.progress is False


def test_bad_values_are_refused_by_the_config_naming_the_field():
    module = command("replay")
    parser = argparse.ArgumentParser()
    add_arguments(parser, module.Args)
    with pytest.raises(ValueError, match="num_steps must be in"):
        from_namespace(module.Args, parser.parse_args(["bag", "--out", "o", "--steps", "0"]))
    with pytest.raises(SystemExit):  # choices are checked by argparse itself
        parser.parse_args(["bag", "--out", "o", "--publish-frames", "sometimes"])


@pytest.mark.parametrize(
    "name, argv, message",
    [
        ("bench", ["--windows", "0"], "--windows must be >= 1, got 0"),
        (
            "replay-many",
            ["b", "--out", "o", "--cpus-per-bag", "0"],
            "--cpus-per-bag must be >= 0.1",
        ),
        (
            "infer",
            ["--frames", "f", "--masks", "m", "--out", "o", "--video-fps", "0"],
            "--video-fps",
        ),
        (  # a NaN compares False with both ends: in no range
            "infer",
            ["--frames", "f", "--masks", "m", "--out", "o", "--video-fps", "nan"],
            "--video-fps must be a finite number, got nan",
        ),
        (  # an open range ends where the node's parameter does (an OverflowError traceback)
            "infer",
            ["--frames", "f", "--masks", "m", "--out", "o", "--num-frames", "10" * 12],
            r"num_frames must be in \[1, 2147483647\], got 1010",
        ),
        ("bench", ["--windows", str(2**31)], r"windows must be in \[1, 2147483647\]"),
        ("bench", ["--seed", str(2**63)], r"seed must be in \[0, 9223372036854775807\]"),
        ("bench", ["--scene-seed", "-1"], "--scene-seed must be >= 0, got -1"),  # numpy's words
        # a scene too large for memory, and a frame period past any int: tracebacks
        ("demo-bag", ["b", "--image-width", "100000"], r"--image-width must be in \[16, 4096\]"),
        ("synth", ["o", "--image-height", "5000"], r"--image-height must be in \[16, 4096\]"),
        ("eval", ["--out", "o", "--clip-height", "5000"], r"--clip-height must be in \[16, 4096"),
        ("demo-bag", ["b", "--camera-fps", "1e-300"], r"--camera-fps must be in \[0.01, 1000.0\]"),
        (  # a working size of 65536: a cv2.error traceback at the first window
            "infer",
            ["--frames", "f", "--masks", "m", "--out", "o", "--height", "65536"],
            r"height must be in \[0, 4096\], got 65536",
        ),
    ],
)
def test_a_command_option_out_of_its_declared_range_is_refused_before_any_work(
    name, argv, message
):
    # before: the commands ran, then divided by zero
    module = command(name)
    parser = argparse.ArgumentParser()
    add_arguments(parser, module.Args)
    with pytest.raises(ValueError, match=message):
        from_namespace(module.Args, parser.parse_args(argv))


def test_bad_input_of_every_kind_is_one_line_and_exit_code_2(tmp_path, capsys):
    from amodal_ros.cli.main import main

    (tmp_path / "bad.yaml").write_text("steps: [1, 2\n")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "good.yaml").write_text("steps: 1\n")
    cases = [
        (["train", str(tmp_path / "bad.yaml")], "expected ',' or ']'"),  # YAML that won't parse
        (  # a --set value that won't parse (PyYAML's six lines)
            ["train", str(tmp_path / "good.yaml"), "--set", "lr=[1"],
            "--set 'lr=[1': the value is no YAML value (line 1, column 3: expected ',' or ']'",
        ),
        (["synth", str(tmp_path / "a_file")], "a_file is a file; synth writes clip folders"),
    ]
    # an output beneath a file: found once the work was done (a raw "[Errno 20] Not a
    # directory" after a whole benchmark or replay), now before any work
    under, bag = tmp_path / "a_file" / "sub", tmp_path / "bag"
    bag.mkdir()
    cases += [
        (argv, f"{flag} {under} cannot be made: {tmp_path / 'a_file'} is a file, not a folder")
        for argv, flag in (
            (["synth", str(under)], "OUT"),
            (["train", str(tmp_path / "good.yaml"), "--out", str(under)], "--out"),
            (["bench", "--out", str(under)], "--out"),
            (["demo", "--out", str(under)], "--out"),
            (
                ["replay", str(bag), "--out", str(tmp_path / "o"), "--video", str(under)],
                "--video",
            ),
        )
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"amodal-ros {argv[0]}: error:" in err and message in err
        assert "Traceback" not in err
        if argv[0] == "train":  # nothing else is printed before it
            assert err.count("\n") == 1, err


def test_a_mistyped_flag_is_named_with_the_closest_one_not_taken_for_a_prefix(capsys):
    """`--ouput x` was reported as '--out is required', `--chekpoint` with the top-level usage
    and no suggestion, and `--ou x` silently read as --out."""
    from amodal_ros.cli.main import main

    for typo, meant in (("--ouput", "--out"), ("--chekpoint", "--checkpoint"), ("--ou", "--out")):
        with pytest.raises(SystemExit) as stop:
            main(["replay", "demo_bag", typo, "x"])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert f"amodal-ros replay: error: unknown option {typo} (did you mean {meant}?" in err
    with pytest.raises(SystemExit):  # `=` forms too
        main(["replay", "demo_bag", "--out", "x", "--strid=3"])
    assert "unknown option --strid (did you mean --stride?" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # train's --set elsewhere: not "did you mean --preset?"
        main(["infer", "--set", "stride=3"])
    assert "infer has no --set: each setting is its own option" in capsys.readouterr().err
    for flag in ("--verbose", "-v"):  # amodal-ros's own, not the command's
        with pytest.raises(SystemExit):
            main(["demo", flag])
        assert f"{flag} goes before the command: amodal-ros {flag} demo" in capsys.readouterr().err


def test_a_required_option_choices_and_a_config_files_default_read_as_such(capsys):
    """`replay` without --out stops at parsing (it failed building the command's arguments);
    an option of few values shows them; a switch whose default is the config file's does not
    say 'default: off'."""
    from amodal_ros.cli.main import build_parser, main

    with pytest.raises(SystemExit) as stop:
        main(["replay", "demo_bag"])
    assert stop.value.code == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err
    for argv in (["replay", "--help"], ["train", "--help"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
    replay_help, train_help = capsys.readouterr().out.split("usage: amodal-ros train")
    assert "--storage {sqlite3,mcap}" in replay_help
    progress = re.search(r"--progress, --no-progress\s+(.*?)(?:\n  -|\Z)", train_help, re.S)[1]
    assert " ".join(progress.split()) == "progress bar (default: the config's, else on)"


def test_help_texts_keep_whole_sentences_and_usage_lines(capsys):
    from amodal_ros.cli.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "train, distill, bench, build-engines." in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        build_parser().parse_args(["infer", "--help"])
    text = capsys.readouterr().out
    assert "--depth clip/depth \\\n        [--checkpoint" in text  # continuation lines kept
    assert "Shared by the node and `amodal-ros replay`" in " ".join(text.split())


def test_list_options_collect_every_value():
    module = command("train")
    parser = argparse.ArgumentParser()
    add_arguments(parser, module.Args)
    ns = parser.parse_args(["cfg.yaml", "--set", "lr=1e-4", "--set", "steps=5"])
    assert from_namespace(module.Args, ns).set == ["lr=1e-4", "steps=5"]
    # one value a --set: the config after it was taken for a second value ("CONFIG required")
    args = from_namespace(module.Args, parser.parse_args(["--set", "lr=1e-4", "cfg.yaml"]))
    assert (args.set, args.config) == (["lr=1e-4"], Path("cfg.yaml"))
    bench = argparse.ArgumentParser()
    add_arguments(bench, command("bench").Args)
    ns = bench.parse_args(["--skip", "reference", "default", "--skip", "floor"])
    assert from_namespace(command("bench").Args, ns).skip == ["reference", "default", "floor"]


def test_a_wrong_value_is_one_line_not_the_usage(capsys):
    from amodal_ros.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(["infer", "--frames", "f", "--masks", "m", "--out", "o", "--stride", "abc"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "amodal-ros infer: error: argument --stride: invalid int value: 'abc' "
        "(--help lists the options)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [["eval", "--out", ""], ["synth", ""], ["replay", "bag", "--out", "o", "--video", ""]],
)
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(
    argv, capsys, tmp_path, monkeypatch
):
    """Path('') is '.': `eval --out ''` and `synth ''` wrote into the current folder."""
    from amodal_ros.cli.main import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert ": empty path: name a file or folder (--help lists the options)\n" in err, err
    assert not any(tmp_path.iterdir())


def test_eval_offers_no_warm_start_it_could_not_use(capsys):
    """eval runs one window a clip, so an object's last window never starts its next: its
    `--warm-start` was accepted and did nothing."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--out", "x", "--warm-start", "0.5"])
    assert "--warm-start" in capsys.readouterr().err
    assert build_parser().parse_args(["bench", "--warm-start", "0.5"])
