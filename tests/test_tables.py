"""Aggregation of hand-made sweeps (metrics.json trees in tmp_path) into tables."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from liafnet import report
from liafnet.cli import tables as tables_cli
from liafnet.config import sweep_grid
from liafnet.report import (
    PAPER_UNKNOWN, TableSpec, TableSpecError, aggregate, build_table, collect_runs, latex_escape,
)
from tests.helpers import MODELS, NAMES, REPO, cli, gesture_spec, write_run


def md_rows(text: str) -> dict[str, list[str]]:
    """Markdown table body keyed by the first cell."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "sweep"
    for seed, acc in enumerate([0.90, 0.92, 0.94]):
        write_run(root, f"job{seed}", model="liaf", seed=seed, **{"test/acc": acc})
    write_run(root, "a/b/deep", model="lif", seed=0, **{"test/acc": 0.915})  # nested anywhere
    write_run(root, "lstm0", model="lstm", seed=0, **{"test/acc": 0.80})
    write_run(root, "lstm1", model="lstm", seed=1, **{"test/acc": 0.84})
    write_run(root, "lstm2", model="lstm", seed=2, status="failed", error="RuntimeError: out of memory",
              **{"test/acc": None})
    write_run(root, "gru0", model="gru", seed=0, status="failed", error="ValueError: bad\nlast line")
    return root


def test_mean_std_n_paper_and_diff(sweep, tmp_path):
    _, paths = build_table(gesture_spec(), sweep, tmp_path / "out", plots=False)
    rows = md_rows(paths["md"].read_text())
    assert rows["LIAF-Net"]["ours"] == "92.0 ± 2.0"  # sample std of 90, 92, 94 is 2.0
    assert rows["LIAF-Net"]["n"] == "3"
    assert rows["LIAF-Net"]["paper"] == "97.6"
    assert rows["LIAF-Net"]["ours − paper"] == "-5.6"
    assert rows["LIF-SNN"]["ours"] == "91.5"  # n = 1: the value alone
    assert rows["LIF-SNN"]["paper"] == PAPER_UNKNOWN
    assert rows["LIF-SNN"]["ours − paper"] == ""
    assert rows["LIF-SNN"]["runs"] == "1 ok, 2 missing"
    assert rows["GRU"]["paper"] == PAPER_UNKNOWN  # absent from the paper file: unknown, never invented


def test_smoke_tables_say_so_and_drop_the_difference_to_the_paper(sweep, tmp_path):
    table, paths = build_table(gesture_spec(smoke=True), sweep, tmp_path / "out", plots=False)
    text = paths["md"].read_text()
    assert text.startswith("# SMOKE RUN on dvs_gesture data, not comparable with the paper: Gesture test accuracy (%)")
    rows = md_rows(text)
    assert rows["LIAF-Net"]["paper"] == "97.6" and "ours − paper" not in rows["LIAF-Net"]
    assert "Smoke run: tiny data" in text
    liaf = next(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert liaf["paper"] == "97.6" and liaf["diff"] == ""


def test_failed_runs_are_counted_not_averaged(sweep, tmp_path):
    table, paths = build_table(gesture_spec(), sweep, tmp_path / "out", plots=False)
    lstm = table.cell("lstm")
    assert lstm.values == pytest.approx([80.0, 84.0]) and lstm.n_failed == 1
    text = paths["md"].read_text()
    rows = md_rows(text)
    assert rows["LSTM"]["ours"] == "82.0 ± 2.8"
    assert rows["LSTM"]["runs"] == "2 ok, 1 failed"
    assert rows["GRU"]["ours"] == "failed" and rows["GRU"]["runs"] == "1 failed, 2 missing"
    assert "lstm2: failed: RuntimeError: out of memory" in text
    assert "gru0: failed: last line" in text


def test_missing_cells_from_the_grid(sweep, tmp_path):
    table, paths = build_table(gesture_spec(), sweep, tmp_path / "out", plots=False)
    assert table.rows == MODELS  # order from the spec, not the filesystem
    rows = md_rows(paths["md"].read_text())
    for name in ("ConvLSTM", "Conv3D"):
        assert rows[name]["ours"] == "missing"
        assert rows[name]["runs"] == "3 missing"
        assert rows[name]["params"] == ""


def test_unfinished_and_unreadable_runs(tmp_path):
    root = tmp_path / "sweep"
    write_run(root, "killed", model="liaf", status="running", **{"test/acc": None})
    corrupt = root / "half"
    corrupt.mkdir()
    (corrupt / "metrics.json").write_text('{"model": "lif", "status"')  # killed mid-write
    (root / "no_metrics" / ".hydra").mkdir(parents=True)  # started, killed before metrics.json
    table, paths = build_table(gesture_spec(grid={"model": ["liaf", "lif"]}), root, tmp_path / "out",
                               plots=False)
    assert table.cell("liaf").state == report.UNFINISHED
    assert table.cell("lif").state == report.MISSING  # the unreadable file has no model to place it
    text = paths["md"].read_text()
    assert "killed: unfinished: status running" in text
    assert "unreadable, not placed in the table: half" in text


def test_duplicates_are_flagged(tmp_path):
    root = tmp_path / "sweep"
    write_run(root, "local/run", model="liaf", seed=0, **{"test/acc": 0.9})
    write_run(root, "slurm/run", model="liaf", seed=0, **{"test/acc": 0.8})
    write_run(root, "other", model="liaf", seed=1, **{"test/acc": 0.9})
    with pytest.warns(UserWarning, match="duplicate runs"):
        table, paths = build_table(gesture_spec(grid={"model": ["liaf"]}), root, tmp_path / "out",
                                   plots=False)
    assert table.cell("liaf").n_duplicates == 1
    assert table.duplicates == [(("liaf", "dvs_gesture", "0"), ["local/run", "slurm/run"])]
    text = paths["md"].read_text()
    assert "duplicate runs (model=liaf, data=dvs_gesture, seed=0), all counted: local/run, slurm/run" in text
    assert md_rows(text)["LIAF-Net"]["runs"] == "3 ok, 1 duplicate"


def test_folder_names_are_never_parsed(tmp_path):
    root = tmp_path / "sweep"
    write_run(root, "model=lstm,seed=9", model="liaf", seed=0, **{"test/acc": 0.5})
    table = aggregate(TableSpec.from_dict(gesture_spec()), collect_runs(root))
    assert table.cell("liaf").values == [50.0]
    assert table.cell("lstm").n == 0


def test_keys_fall_back_to_hydra_files(tmp_path):
    """Keys the run record lacks (``data.task``, group choices): the job's .hydra files supply them."""
    root = tmp_path / "sweep"
    run_dir = write_run(root, "job", seed=0, **{"test/acc": 0.75})
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
        {"data": {"task": 3, "name": "babi"}, "model": {"family": "gru", "hidden": 50},
         "paths": {"run_dir": "${hydra:runtime.output_dir}"}}))
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(
        {"hydra": {"runtime": {"choices": {"model": "gru", "data": "babi", "trainer": "debug"}}}}))
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
        {"data": {"task": 3, "name": "babi"}, "model": {"family": "gru", "hidden": 50},
         "trainer": {"max_epochs": 1}, "paths": {"run_dir": "${hydra:runtime.output_dir}"}}))
    run = collect_runs(root)[0]
    assert run.lookup("data.task") == 3
    assert run.lookup("trainer") == "debug"  # the group choice, not the trainer's config node
    assert run.lookup("paths.run_dir") is None  # unresolvable outside the run: absent
    assert run.lookup("model.hidden") == 50


def test_config_in_metrics_json_is_used(tmp_path):
    root = tmp_path / "sweep"
    write_run(root, "job", config={"data": {"task": 7, "spec": {"time_steps": "${data.task}"}}})
    run = collect_runs(root)[0]
    assert run.lookup("data.task") == 7
    assert run.lookup("data.spec.time_steps") == 7  # interpolations resolve within the config


def babi_like(root: Path) -> dict:
    """Tasks x models, two reference columns, mean and passed rows, summed time per task."""
    accs = {("1", "lstm"): [0.50, 0.52], ("1", "liaf"): [0.96], ("2", "lstm"): [0.30], ("2", "liaf"): [0.97]}
    for (task, model), values in accs.items():
        for seed, acc in enumerate(values):
            write_run(root, f"{task}-{model}-{seed}", model=model, data="babi", seed=seed,
                      train_time_s=10.0, config={"data": {"task": int(task)}}, **{"test/acc": acc})
    write_run(root, "3-lstm-0", model="lstm", data="babi", seed=0, status="failed", error="boom",
              config={"data": {"task": 3}})
    return {
        "name": "babi", "title": "bAbI 1k: test accuracy (%)",
        "rows": {"key": "data.task", "label": "task", "order": [1, 2, 3], "names": {1: "1 single fact"}},
        "columns": {"key": "model", "order": ["lstm", "gru", "liaf"], "names": {"lstm": "LSTM", "liaf": "LIAF"}},
        "grid": {"data.task": [1, 2, 3], "model": ["lstm", "liaf"]},
        "paper": {"values": {1: {"liaf": {"value": None, "source": "unknown"}}},
                  "references": [{"name": "FB LSTM", "source": "Weston et al. 2015",
                                  "values": {1: 50, 2: 20, 3: 20}}]},
        "fields": [{"key": "train_time_s", "name": "time per task", "format": "seconds", "agg": "sum"}],
        "summary": {"mean": True, "pass_threshold": 95},
    }


def test_wide_layout_with_references_and_summary_rows(tmp_path):
    root = tmp_path / "sweep"
    spec = babi_like(root)
    table, paths = build_table(spec, root, tmp_path / "out", plots=False)
    assert table.cols == ["lstm", "liaf"]  # gru: in the order but not in the grid
    rows = md_rows(paths["md"].read_text())
    assert rows["1 single fact"]["LSTM"] == "51.0 ± 1.4 (n=2)"
    assert rows["1 single fact"]["LIAF"] == "96.0 (n=1)"  # n shown also for a single run
    assert rows["3"]["LSTM"] == "1 failed"
    assert rows["3"]["LIAF"] == "missing"
    assert rows["1 single fact"]["LIAF (paper)"] == PAPER_UNKNOWN
    assert "LIAF − paper" not in rows["1 single fact"]  # no known paper value: no difference column
    assert rows["2"]["FB LSTM"] == "20.0"
    assert rows["1 single fact"]["time per task"] == "30 s"  # summed over the row's three runs
    assert rows["mean"]["LSTM"] == "40.5 (2/3 rows)"  # (51 + 30) / 2
    assert rows["mean"]["LIAF"] == "96.5 (2/3 rows)"
    assert rows["mean"]["FB LSTM"] == "30.0"
    assert rows["mean"]["LIAF (paper)"] == PAPER_UNKNOWN
    assert rows["passed (≥ 95%)"]["LIAF"] == "2/3"
    assert rows["passed (≥ 95%)"]["LSTM"] == "0/3"
    assert rows["passed (≥ 95%)"]["FB LSTM"] == "0/3"


def test_a_column_can_expect_fewer_seeds_than_the_grid(tmp_path):
    """``columns.seeds`` (bAbI's extras, run at one seed beside three): that column's cells count
    missing runs against its own seeds, the others against the grid's."""
    root = tmp_path / "sweep"
    spec = babi_like(root)
    spec["grid"]["seed"] = [0, 1]
    spec["columns"]["seeds"] = {"liaf": [0]}
    _, paths = build_table(spec, root, tmp_path / "out", plots=False)
    rows = md_rows(paths["md"].read_text())
    assert rows["1 single fact"]["LIAF"] == "96.0 (n=1)" and rows["3"]["LIAF"] == "missing"
    assert rows["2"]["LSTM"] == "30.0 (n=1, 1 missing)" and rows["3"]["LSTM"] == "1 failed, 1 missing"
    with pytest.raises(TableSpecError, match=r"rows.seeds: seeds per value are for columns only"):
        TableSpec.from_dict({**spec, "rows": {**spec["rows"], "seeds": {1: [0]}}})
    with pytest.raises(TableSpecError, match=r"columns.seeds: expected a mapping of value -> list of seeds"):
        TableSpec.from_dict({**spec, "columns": {**spec["columns"], "seeds": {"liaf": 0}}})


def test_summary_fields_give_each_column_a_mean_over_its_rows(tmp_path):
    """``summary.fields`` (the bAbI tables' peak training accuracy): per column, the mean over rows of
    the key's per-cell mean over seeds, scaled like the metric; rows without a finished run are left
    out and counted; other columns stay blank."""
    root = tmp_path / "sweep"
    spec = babi_like(root)
    train = {("1", "lstm", 0): 0.6, ("1", "lstm", 1): 0.8, ("2", "lstm", 0): 0.4, ("1", "liaf", 0): 1.0}
    for (task, model, seed), acc in train.items():
        metrics = root / f"{task}-{model}-{seed}" / "metrics.json"
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "train_acc_max": acc}))
    spec["summary"]["fields"] = {"train_acc_max": "peak training accuracy"}
    _, paths = build_table(spec, root, tmp_path / "out", plots=False)
    line = md_rows(paths["md"].read_text())["peak training accuracy (mean)"]
    assert line["LSTM"] == "55.0 (2/3 rows)"  # task 1: (60 + 80) / 2 = 70; task 2: 40; (70 + 40) / 2
    assert line["LIAF"] == "100.0 (1/3 rows)"  # task 2's LIAF run recorded no training accuracy
    assert line["FB LSTM"] == "" and line["LIAF (paper)"] == ""
    with pytest.raises(TableSpecError, match="summary.fields: expected a mapping"):
        TableSpec.from_dict({**spec, "summary": {"fields": ["train_acc_max"]}})


def test_claim_check_compares_the_column_means(tmp_path):
    spec = {"name": "babi", "rows": {"key": "data.task", "order": [1, 2]},
            "columns": {"key": "model", "order": ["liaf", "lstm", "gru"]},
            "claim": {"text": "comparable", "column": "liaf", "against": ["lstm", "gru"], "tolerance": 3}}
    root = tmp_path / "sweep"
    accs = {"liaf": (0.50, 0.60), "lstm": (0.52, 0.60), "gru": (0.56, 0.62)}  # means 55, 56, 59
    for model, (a1, a2) in accs.items():
        for task, acc in ((1, a1), (2, a2)):
            write_run(root, f"{model}{task}", model=model, data="babi", config={"data": {"task": task}},
                      **{"test/acc": acc})
    table, paths = build_table(spec, root, tmp_path / "out", plots=False)
    line = report.claim_check(table)
    assert line == ("Claim check (comparable): liaf 55.0 vs gru 59.0, the better of lstm and gru: "
                    "-4.0 points (allowed: -3), **NOT met**.")
    assert line in paths["md"].read_text()
    write_run(root, "liaf1b", model="liaf", data="babi", seed=1, config={"data": {"task": 1}},
              **{"test/acc": 0.70})  # task 1 mean (50 + 70) / 2 = 60: LIAF mean 60 vs GRU 59
    assert report.claim_check(build_table(spec, root, tmp_path / "out", plots=False)[0]).endswith(
        "+1.0 points (allowed: -3), **met**.")
    (root / "gru2" / "metrics.json").unlink()
    assert "not checked, gru lack results" in report.claim_check(
        build_table(spec, root, tmp_path / "out", plots=False)[0])
    with pytest.raises(TableSpecError, match=r"\['rnn'\] are not columns"):
        TableSpec.from_dict({**spec, "claim": {**spec["claim"], "against": ["rnn"]}})


def test_latex_output(sweep, tmp_path):
    spec = gesture_spec(rows={"key": "model", "label": "model_name", "order": MODELS,
                              "names": {"liaf": "LIAF_Net 100%"}})
    _, paths = build_table(spec, sweep, tmp_path / "out", plots=False)
    tex = paths["tex"].read_text()
    assert r"\begin{tabular}" in tex and r"\end{tabular}" in tex
    assert r"LIAF\_Net 100\%" in tex and r"model\_name" in tex
    assert r"$92.0 \pm 2.0$" in tex
    assert r"ours $-$ paper" in tex
    assert latex_escape(r"a_b & c$ {x} #1 ~ ^ \ ") == \
        r"a\_b \& c\$ \{x\} \#1 \textasciitilde{} \textasciicircum{} \textbackslash{} "


def test_csv_output(sweep, tmp_path):
    _, paths = build_table(gesture_spec(), sweep, tmp_path / "out", plots=False)
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(paths["csv"].read_text()))}
    assert list(rows) == MODELS
    assert float(rows["liaf"]["mean"]) == pytest.approx(92.0)
    assert float(rows["liaf"]["std"]) == pytest.approx(2.0)
    assert rows["liaf"]["n"] == "3" and float(rows["liaf"]["diff"]) == pytest.approx(-5.6)
    assert rows["liaf"]["paper_source"] == "third-party table"
    assert float(rows["liaf"]["params"]) == 2_322_891
    assert rows["lstm"]["failed"] == "1" and rows["conv3d"]["missing"] == "3"
    assert rows["conv3d"]["mean"] == "" and rows["lif"]["paper"] == ""


def test_idempotent_and_atomic(sweep, tmp_path):
    out = tmp_path / "out"
    _, first = build_table(gesture_spec(), sweep, out, plots=False)
    before = {k: p.read_bytes() for k, p in first.items()}
    _, second = build_table(gesture_spec(), sweep, out, plots=False)
    assert {k: p.read_bytes() for k, p in second.items()} == before
    assert sorted(p.name for p in out.iterdir()) == ["gesture.csv", "gesture.md", "gesture.tex"]


def test_partial_sweep_then_more_runs(tmp_path):
    root, out = tmp_path / "sweep", tmp_path / "out"
    build_table(gesture_spec(), root, out, plots=False)  # nothing run yet
    rows = md_rows((out / "gesture.md").read_text())
    assert all(rows[NAMES[m]]["ours"] == "missing" for m in MODELS)
    write_run(root, "first", model="conv3d", seed=0, **{"test/acc": 0.6})
    build_table(gesture_spec(), root, out, plots=False)
    rows = md_rows((out / "gesture.md").read_text())
    assert rows["Conv3D"]["ours"] == "60.0" and rows["Conv3D"]["runs"] == "1 ok, 2 missing"


def test_runs_outside_the_grid_are_shown_and_noted(tmp_path):
    root = tmp_path / "sweep"
    write_run(root, "x", model="transformer", seed=0, **{"test/acc": 0.5})
    table, paths = build_table(gesture_spec(grid={"model": ["liaf"], "seed": [0]}), root, tmp_path / "out",
                               plots=False)
    assert table.rows == ["liaf", "transformer"]
    assert "transformer: runs outside the sweep grid (1)" in paths["md"].read_text()


@pytest.mark.parametrize("spec, message", [
    ({"name": "t"}, "missing required key 'rows'"),
    ({"name": "t", "rows": {"key": "model"}, "colums": {}}, "unknown keys ['colums']"),
    ({"name": "t", "rows": {"key": "model"}, "paper": "no_such_paper"}, "no_such_paper.yaml does not exist"),
    ({"name": "t", "rows": {"key": "model"}, "fields": [{"key": "params", "format": "hex"}]}, "format"),
    ({"name": "t", "rows": {"key": "model"}, "grid": {"seed": 3}}, "grid.seed: expected a list"),
    ({"name": "t", "rows": {"key": "model"}, "plots": ["pie"]}, "plots: unknown ['pie']"),
    ({"name": "t", "rows": {"key": "model"}, "smoke": "yes"}, "smoke: expected true or false"),
])
def test_bad_specs_name_the_key(spec, message, tmp_path):
    with pytest.raises(TableSpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TableSpec.from_dict(spec, paper_dir=tmp_path)


def test_bad_paper_entry_names_the_file(tmp_path, sweep):
    (tmp_path / "p.yaml").write_text("values:\n  liaf: 97.6\n")
    spec = TableSpec.from_dict({"name": "t", "rows": {"key": "model"}, "paper": "p"}, paper_dir=tmp_path)
    with pytest.raises(TableSpecError, match=r"paper file 'p', entry 'liaf'.*value"):
        aggregate(spec, collect_runs(sweep)) and build_table(spec, sweep, tmp_path / "out", plots=False)


def test_sweep_grid_follows_the_basic_sweeper():
    params = {"model": "liaf,lif,lstm", "seed": "0,1,2"}
    grid = sweep_grid(params, ["table=gesture", "seed=0", "data.task=1,2", "+extra=range(2)"])
    assert grid["model"] == ["liaf", "lif", "lstm"]
    assert grid["seed"] == [0]  # the command line beats hydra.sweeper.params
    assert grid["data.task"] == [1, 2]
    assert grid["table"] == ["gesture"]
    assert grid["extra"] == [0, 1]


# ----------------------------------------------------------------------------- shipped configs

PAPER_EXPECTED = {"gesture": {"liaf": 97.6}, "cifar10_dvs": {"liaf": 70.4}, "mnist_dvs": {}}


@pytest.mark.parametrize("name", sorted(PAPER_EXPECTED))
def test_shipped_tables_and_paper_files(name):
    """Paper values as paper.md §6 says (all others null, each with a source); the table's grid
    matches its rows, and the spec validates against its paper file."""
    paper = yaml.safe_load((REPO / "src" / "liafnet" / "conf" / "paper" / f"{name}.yaml").read_text())
    for model, entry in paper["values"].items():
        assert entry["value"] == PAPER_EXPECTED[name].get(model), model
        assert entry["source"], model
    config = yaml.safe_load((REPO / "src" / "liafnet" / "conf" / "table" / f"{name}.yaml").read_text())
    assert (REPO / "src" / "liafnet" / "conf" / "table" / f"{name}.yaml").read_text().startswith("# @package _global_")
    assert config["hydra"]["mode"] == "MULTIRUN"
    assert config["hydra"]["sweep"]["subdir"] == "${liafnet.run_name:${hydra.overrides.task}}"  # tests/test_rundirs.py
    assert config["hydra"]["sweep"]["dir"] == f"${{paths.output_dir}}/sweeps/{name}"
    grid = sweep_grid(config["hydra"]["sweeper"]["params"], [])
    assert grid == {"model": MODELS, "seed": [0, 1, 2]}
    spec = TableSpec.from_dict(config["table_spec"], paper_dir=REPO / "src" / "liafnet" / "conf" / "paper", grid=grid)
    assert spec.name == name and list(spec.rows.order) == MODELS
    assert spec.paper_entry("liaf", None)[0] == PAPER_EXPECTED[name].get("liaf")
    # Both evaluation protocols, labelled; the title leaves T to the runs (issue 15).
    assert [(p.metric, p.name) for p in spec.protocols] == [
        ("test/acc", "ours (val-chosen)"), ("test/acc_authors", "authors' protocol")]
    assert "{data.time_steps}" in spec.title


def test_efficiency_paper_file_is_all_unknown():
    paper = yaml.safe_load((REPO / "src" / "liafnet" / "conf" / "paper" / "efficiency.yaml").read_text())
    entries = [entry for metric in ("params", "ops") for per_model in paper[metric].values()
               for entry in per_model.values()]
    assert len(entries) == 2 * (6 * 3 + 3)
    assert all(e["value"] is None and e["source"] for e in entries)


# ----------------------------------------------------------------------------- command line


def test_command_line_composes_the_table_config(tmp_path, capsys):
    """``python -m liafnet.tables table=gesture model=liaf,lif seed=0``: the sweep dir and the grid
    come from the table config and the same overrides as the sweep."""
    sweep = tmp_path / "sweeps" / "gesture"
    write_run(sweep, "cell", model="liaf", seed=0, **{"test/acc": 0.95})
    args = ["table=gesture", "model=liaf,lif", "seed=0", f"paths.output_dir={tmp_path}", "--no-plots"]
    assert tables_cli.main(args) == 0
    rows = md_rows((tmp_path / "tables" / "gesture.md").read_text())
    assert list(rows) == ["LIAF-Net", "LIF-SNN"]  # the command line's grid, not the config's six models
    assert rows["LIAF-Net"]["ours (val-chosen)"] == "95.0" and rows["LIAF-Net"]["runs"] == "1 ok"
    assert rows["LIF-SNN"]["runs"] == "1 missing"  # seed=0: one seed expected
    assert rows["LIAF-Net"]["paper"] == "97.6"  # from the shipped paper file
    assert "1 with results, 0 failed, 1 missing" in capsys.readouterr().out


def test_command_line_requires_a_table():
    with pytest.raises(SystemExit):
        tables_cli.main(["seed=0"])


# ----------------------------------------------------------------------------- end to end

# As `make tables-smoke`: the table's recipe on its tiny stand-in (2 iterations, T = 4).
SMOKE = ["seed=0", "logger=csv", "trainer=debug", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "+standin=gesture_tiny"]


@pytest.mark.slow
def test_table_sweep_end_to_end(tmp_path, data_dir):
    """A two-model grid of the gesture table on its tiny stand-in: sweep, then aggregate with the same
    overrides; one cell per model, each with a number, plots beside the table."""
    args = ["table=gesture", "model=liaf,conv3d", f"paths.output_dir={tmp_path}", f"paths.data_dir={data_dir}",
            *SMOKE]
    train = cli(["train.py"], args)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    aggregate = cli(["-m", "liafnet.tables"], args)
    assert aggregate.returncode == 0, aggregate.stderr[-3000:]
    rows = md_rows((tmp_path / "tables" / "gesture.md").read_text())
    assert list(rows) == ["LIAF-Net", "Conv3D"]  # the grid of the command line, in the spec's order
    for name in rows:
        assert rows[name]["runs"] == "1 ok" and float(rows[name]["ours (val-chosen)"]) >= 0
        assert "authors' protocol" in rows[name]  # the second protocol has its labelled column
    assert rows["LIAF-Net"]["paper"] == "97.6" and rows["Conv3D"]["paper"] == PAPER_UNKNOWN
    # The title states the stand-in and the T that ran (the tiny stand-in's 4), not the paper's 60.
    title = (tmp_path / "tables" / "gesture.md").read_text().splitlines()[0]
    assert title.startswith("# SMOKE RUN") and "DVS128 Gesture STAND-IN (synthetic events; T = 4): " in title
    for png in ("gesture_acc_vs_params.png", "gesture_curves.png", "gesture_frames.png"):
        assert (tmp_path / "tables" / png).stat().st_size > 1000


@pytest.mark.slow
def test_killed_cell_shows_in_the_table(tmp_path, data_dir):
    """SIGKILL a running cell: its metrics.json still says running, and the table says so."""
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import subprocess_env

    args = ["table=gesture", "model=liaf", f"paths.output_dir={tmp_path}", f"paths.data_dir={data_dir}",
            *SMOKE, "trainer.max_steps=100000", "trainer.limit_train_batches=null"]
    job = subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, env=subprocess_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list((tmp_path / "sweeps" / "standin_gesture").rglob("metrics.json")):
            assert job.poll() is None and time.monotonic() < deadline, "the job ended or never started"
            time.sleep(0.5)
        time.sleep(2)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    aggregate = cli(["-m", "liafnet.tables"], [*args, "--no-plots"])
    assert aggregate.returncode == 0, aggregate.stderr[-3000:]
    rows = md_rows((tmp_path / "tables" / "gesture.md").read_text())
    assert rows["LIAF-Net"]["ours (val-chosen)"] == "unfinished" and rows["LIAF-Net"]["runs"] == "1 unfinished"


# ----------------------------------------------------------------------------- protocols, recipe, title

PROTOCOLS = [
    {"metric": "test/acc", "name": "ours (val-chosen)", "note": "checkpoint chosen on validation"},
    {"metric": "test/acc_authors", "name": "authors' protocol", "note": "best test accuracy during training"},
]


def test_both_protocols_labelled_and_missing_ones_not_invented(tmp_path):
    """The primary and the authors' protocol each get a labelled column; a run that did not record
    the authors' metric shows "not available" (or is left out of n), and the paper difference uses
    the protocol the paper followed."""
    root = tmp_path / "sweep"
    write_run(root, "a", model="liaf", seed=0, **{"test/acc": 0.90, "test/acc_authors": 0.95})
    write_run(root, "b", model="liaf", seed=1, **{"test/acc": 0.92, "test/acc_authors": 0.97})
    write_run(root, "c", model="liaf", seed=2, **{"test/acc": 0.94})  # older run: no authors' metric
    write_run(root, "d", model="lif", seed=0, **{"test/acc": 0.80})
    spec = gesture_spec(protocols=PROTOCOLS, paper_protocol="test/acc_authors",
                        recipe="Recipe: authors' Gesture recipe (Adam lr 1e-2,\n  batch 32); source: example_gesture_scnn.py",
                        fields=[{"key": "test/acc_authors", "name": "authors' (%)", "format": "percent"}])
    table, paths = build_table(spec, root, tmp_path / "out", plots=False)
    text = paths["md"].read_text()
    rows = md_rows(text)
    assert rows["LIAF-Net"]["ours (val-chosen)"] == "92.0 ± 2.0"
    assert rows["LIAF-Net"]["authors' protocol"] == "96.0 ± 1.4 (n=2 of 3)"
    assert rows["LIF-SNN"]["authors' protocol"] == PAPER_UNKNOWN
    assert rows["Conv3D"]["authors' protocol"] == PAPER_UNKNOWN
    assert rows["LIAF-Net"]["authors' protocol − paper"] == "-1.6"  # 96.0 - 97.6, like with like
    assert text.splitlines()[2] == ("Recipe: authors' Gesture recipe (Adam lr 1e-2, batch 32); "
                                    "source: example_gesture_scnn.py")  # as written, on one line
    assert rows["LIF-SNN"]["authors' (%)"] == "" and rows["LIAF-Net"]["authors' (%)"] == "96.0"  # percent field
    assert "authors' protocol: test/acc_authors × 100 (best test accuracy during training)" in text
    assert "ours (val-chosen): test/acc × 100 (checkpoint chosen on validation)" in text
    tex = paths["tex"].read_text()
    assert "% Recipe: authors' Gesture recipe" in tex and "authors' protocol" in tex
    liaf = next(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert float(liaf["test/acc_authors_mean"]) == pytest.approx(96.0) and liaf["test/acc_authors_n"] == "2"
    assert float(liaf["diff"]) == pytest.approx(-1.6)


def test_title_states_what_the_runs_ran(tmp_path):
    """``{data.time_steps}`` in a title is filled from the runs' recorded configs: a smoke run
    at T = 4 says T = 4, never the paper's T; no runs yet says "not available"."""
    root = tmp_path / "sweep"
    spec = gesture_spec(smoke=True, title="DVS128 Gesture (T = {data.time_steps}): test accuracy (%)")
    build_table(spec, root, tmp_path / "out", plots=False)
    assert (tmp_path / "out" / "gesture.md").read_text().startswith(
        f"# SMOKE RUN on {PAPER_UNKNOWN} data, not comparable with the paper: DVS128 Gesture (T = {PAPER_UNKNOWN})")
    write_run(root, "a", model="liaf", data="synthetic", config={"data": {"time_steps": 4}})
    write_run(root, "b", model="lif", data="synthetic", config={"data": {"time_steps": 4}})
    table, paths = build_table(spec, root, tmp_path / "out", plots=False)
    assert table.title == ("SMOKE RUN on synthetic data, not comparable with the paper: DVS128 Gesture (T = 4): "
                           "test accuracy (%)")
    assert paths["md"].read_text().startswith(f"# {table.title}\n")
    assert paths["tex"].read_text().startswith(f"% {table.title}\n")


@pytest.mark.parametrize("extra, message", [
    ({"protocols": []}, "protocols: expected a non-empty list"),
    ({"protocols": [{"metric": "test/acc"}]}, r"protocols\[0\]: missing required key 'name'"),
    ({"protocols": PROTOCOLS, "metric": "val/acc"}, "metric: 'val/acc' differs from the first"),
    ({"protocols": PROTOCOLS, "paper_protocol": "test/acc_best"}, "paper_protocol: 'test/acc_best' is not"),
    ({"recipe": ["Adam"]}, "recipe: expected one line of text"),
])
def test_bad_protocols_and_recipe_name_the_key(extra, message):
    with pytest.raises(TableSpecError, match=message):
        TableSpec.from_dict(gesture_spec(**extra))
