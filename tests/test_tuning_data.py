"""Task definitions, data readers (real files and bad ones) and metrics."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from secptune.tuning.data import Columns, DataError, Example, few_shot, read_examples
from secptune.tuning.metrics import accuracy, f1, score
from secptune.tuning.tasks import TASKS, load_task

DATA = Path(os.environ.get("SECPTUNE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
needs_data = pytest.mark.skipif(not (DATA / "k-shot").is_dir(),
                                reason=f"shared data folder not found at {DATA} (set SECPTUNE_DATA)")

TEST_ROWS = {"sst2": 872, "yelp": 1000, "agnews": 7600, "mrpc": 408, "rte": 277}


@needs_data
@pytest.mark.parametrize("name", sorted(TASKS))
def test_real_splits_and_test_sets_load(name):
    task = TASKS[name]
    for split in ("16-13", "16-21", "16-42"):
        for part in ("train", "dev"):
            ex = task.load(DATA, split, part)
            counts = np.bincount([e.label for e in ex], minlength=task.num_labels)
            assert list(counts) == [16] * task.num_labels, (split, part)
            assert all(len(e.texts) == (2 if name in ("mrpc", "rte") else 1) for e in ex)
            assert all("\\n" not in t for e in ex for t in e.texts)   # Yelp's literal \n are gone
    test = task.load(DATA, part="test")
    assert len(test) == TEST_ROWS[name]
    assert set(e.label for e in test) == set(range(task.num_labels))


def test_templates_and_task_files(tmp_path):
    assert TASKS["sst2"].fill(("a fine film",)) == "<P> . a fine film . It was <mask> ."
    assert TASKS["rte"].fill(("s one", "s two")) == "<P> . s one ? <mask> , s two"
    spec = {"name": "toxic", "template": "<P> {text} <mask>", "label_words": ["fine", "toxic"],
            "anchors": ["This is fine.", "This is toxic."], "text_columns": [["comment"]],
            "label_column": ["is_toxic"], "label_map": {"no": 0, "yes": 1}}
    f = tmp_path / "task.json"
    f.write_text(json.dumps(spec))
    task = load_task(f)
    data = tmp_path / "d.jsonl"
    data.write_text('{"comment": "hello", "is_toxic": "no"}\n{"comment": "go away", "is_toxic": "yes"}\n')
    assert read_examples(data, task.columns, task.label_map) == [Example(("hello",), 0), Example(("go away",), 1)]
    spec.pop("anchors")
    f.write_text(json.dumps(spec))
    with pytest.raises(DataError, match="field 'anchors' is missing"):
        load_task(f)


COLS = Columns(texts=(("sentence",),), label=("label",))
LABELS = {"0": 0, "1": 1}


@pytest.mark.parametrize("content,message", [
    ("text\tlabel\nhello\t1\n", r"line 1: no text column \(looked for 'sentence'"),
    ("sentence\tlabel\nhello\t7\n", r"line 2: unknown label '7'"),
    ("sentence\tlabel\nhello\t1\n \t0\n", r"line 3: empty text in column 'sentence'"),
    ("sentence\tlabel\nhello\n", r"line 2: 1 fields, expected at least 2"),
])
def test_bad_tsv_files_name_file_line_and_problem(tmp_path, content, message):
    f = tmp_path / "bad.tsv"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_examples(f, COLS, LABELS)


def test_encoding_bom_csv_and_label_text_lines(tmp_path):
    bad = tmp_path / "latin.tsv"
    bad.write_bytes("sentence\tlabel\nok\t1\ncaf\xe9\t0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.tsv: line 3: not UTF-8"):
        read_examples(bad, COLS, LABELS)
    bom = tmp_path / "bom.tsv"
    bom.write_bytes("\ufeffsentence\tlabel\nhi\t1\n".encode("utf-8"))
    assert read_examples(bom, COLS, LABELS) == [Example(("hi",), 1)]
    csv_file = tmp_path / "d.csv"
    csv_file.write_text('sentence,label\n"a, quoted, text",0\n')
    assert read_examples(csv_file, COLS, LABELS) == [Example(("a, quoted, text",), 0)]
    lines = tmp_path / "t.txt"
    lines.write_text("1 good food . \\n\\nwill return\n0 bad\n")
    assert read_examples(lines, COLS, LABELS) == [Example(("good food . will return",), 1), Example(("bad",), 0)]
    with pytest.raises(DataError, match="unknown format"):
        read_examples(tmp_path / "x.parquet", COLS, LABELS)
    with pytest.raises(DataError, match="file not found"):
        read_examples(tmp_path / "missing.tsv", COLS, LABELS)


def test_few_shot_sampling_is_seeded_and_balanced():
    ex = [Example((f"t{i}",), i % 3) for i in range(60)]
    a, b = few_shot(ex, 4, seed=13, num_labels=3), few_shot(ex, 4, seed=13, num_labels=3)
    assert a == b and a != few_shot(ex, 4, seed=21, num_labels=3)
    assert [e.label for e in a] == [0] * 4 + [1] * 4 + [2] * 4
    with pytest.raises(DataError, match="class 0 has 20 examples, fewer than k = 30"):
        few_shot(ex, 30, seed=0, num_labels=3)


def test_metrics():
    assert accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)
    assert f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert f1([0, 0], [1, 1]) == 0.0
    assert score("f1", [1], [1]) == 1.0
    with pytest.raises(ValueError, match="unknown metric"):
        score("auc", [1], [1])
    with pytest.raises(ValueError, match="predictions for"):
        accuracy([1, 0], [1])


def test_builtin_data_splits_are_disjoint_balanced_and_seeded():
    from secptune.tuning.tasks import BUILTIN, BUILTIN_DIR

    for name, file in (("sst2", "uci-imdb"), ("yelp", "uci-yelp")):
        task = TASKS[name]
        pool = read_examples(BUILTIN_DIR / f"{file}.jsonl", Columns((("text",),), ("label",)), {"0": 0, "1": 1})
        assert len(pool) == 1000 and sum(e.label for e in pool) == 500
        train, dev, test = (task.load(BUILTIN, "16-13", part) for part in ("train", "dev", "test"))
        assert len(train) == len(dev) == 32
        assert [e.label for e in train].count(1) == 16 and [e.label for e in dev].count(0) == 16
        assert not (set(train) & set(dev)) and not (set(train + dev) & set(test))
        assert len(test) == sum(e not in set(train + dev) for e in pool) >= 900
        assert train == task.load(BUILTIN, "16-13", "train") and train != task.load(BUILTIN, "16-21", "train")


def test_builtin_data_refuses_other_tasks_and_bad_splits():
    from secptune.tuning.tasks import BUILTIN

    with pytest.raises(DataError, match="only binary sentiment"):
        TASKS["rte"].load(BUILTIN, "16-13", "train")
    with pytest.raises(DataError, match="K-SEED"):
        TASKS["sst2"].load(BUILTIN, "sixteen", "train")
