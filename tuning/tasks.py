"""The five few-shot tasks (Black-Box Tuning's templates and label words), plus user-defined tasks.

A task knows its template (``<P>`` marks where the prompt tokens go, ``<mask>``
the masked-LM position, ``{text}`` / ``{s1}`` / ``{s2}`` the example's
texts), its label words (masked-LM head) and anchor texts (embedding head),
its metric, and where its files are and how they are laid out.

Two-sentence tasks (MRPC, RTE) default to the sentence-pair head on
sentence-embedding models: each sentence is encoded on its own with the
prompt (``pair_template``), the score is the cosine of the two embeddings,
and ``pair_class`` is the class that high similarity means (paraphrase,
entailment).  Anchor texts stay for ``--head anchor``.  A new task
is a small JSON file (``load_task``) with the same fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .data import Columns, DataError, few_shot, read_examples

BUILTIN = "builtin"
"""The data-folder value that selects the built-in offline sentences (``tuning/builtin``)."""
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"


HEADS = ("anchor", "pair", "mlm")
"""The scoring heads: anchor texts per class or the sentence-pair cosine (``nn.heads``, for
sentence-embedding models like MiniLM), or the masked-LM logits of the label words at the
template's <mask> (``encoder.mlm_logits``, for checkpoints with a masked-LM head)."""


@dataclass(frozen=True)
class Task:
    name: str
    template: str
    label_words: tuple
    anchors: tuple
    metric: Literal["accuracy", "f1"] = "accuracy"
    columns: Columns = Columns(texts=(("sentence", "text"),), label=("label",))
    label_map: dict = field(default_factory=lambda: {"0": 0, "1": 1})
    folder: str = ""                       # under <data>/k-shot/
    test_file: str = "test.tsv"
    test_columns: Columns | None = None    # when the test file is laid out differently
    builtin: str = ""                      # file in tuning/builtin with data for this task, if any
    head: Literal["anchor", "pair", "mlm"] = "anchor"   # the head this task uses by default
    pair_template: str = "<P> . {text}"    # pair head: one sentence after the prompt
    pair_class: int = 0                    # pair head: the class that high similarity means

    @property
    def num_labels(self) -> int:
        return len(self.label_words)

    def __post_init__(self):
        if len(self.anchors) != len(self.label_words):
            raise ValueError(f"task {self.name}: {len(self.anchors)} anchors for {len(self.label_words)} classes")
        if sorted(set(self.label_map.values())) != list(range(len(self.label_words))):
            raise ValueError(f"task {self.name}: label_map values must be 0..{len(self.label_words) - 1}")
        if "<P>" not in self.template:
            raise ValueError(f"task {self.name}: the template has no <P> (prompt) placeholder")
        if self.head not in HEADS:
            raise ValueError(f"task {self.name}: head must be one of {HEADS}, got {self.head!r}")
        if self.head == "pair":
            self.check_pair()
        if self.head == "mlm":
            self.check_mlm()

    def check_pair(self) -> None:
        """The pair head needs two classes, two texts per example and a one-sentence template."""
        if self.num_labels != 2 or self.pair_class not in (0, 1):
            raise ValueError(f"task {self.name}: the pair head needs two classes and pair_class 0 or 1 "
                             f"(got {self.num_labels} classes, pair_class {self.pair_class!r})")
        if len(self.columns.texts) != 2:
            raise ValueError(f"task {self.name}: the pair head needs two text columns per example")
        if "<P>" not in self.pair_template or "{text}" not in self.pair_template:
            raise ValueError(f"task {self.name}: pair_template needs <P> and {{text}}, got {self.pair_template!r}")

    def check_mlm(self) -> None:
        """The masked-LM head needs one <mask> in the template (its logits there score the label words)."""
        if self.template.count("<mask>") != 1:
            raise ValueError(f"task {self.name}: the masked-LM head needs exactly one <mask> in the template, "
                             f"got {self.template!r}")

    def fill(self, texts: tuple) -> str:
        """The template with the example's texts (the <P> and <mask> markers stay)."""
        names = ("text",) if len(texts) == 1 else ("s1", "s2")
        return self.template.format(**dict(zip(names, texts)))

    def fill_side(self, text: str) -> str:
        """The pair head's template with one sentence."""
        return self.pair_template.format(text=text)

    def split_path(self, data_dir, split: str, part: Literal["train", "dev"]) -> Path:
        return Path(data_dir) / "k-shot" / self.folder / split / f"{part}.tsv"

    def load(self, data_dir, split: str = "16-13", part: str = "train") -> list:
        """Examples of a few-shot split ("train", "dev") or of the test set ("test").

        ``data_dir`` "builtin" reads the built-in offline sentences (see ``builtin_split``)."""
        if str(data_dir) == BUILTIN:
            return self.builtin_split(split, part)
        if part == "test":
            path = Path(data_dir) / "k-shot" / self.folder / self.test_file
            return read_examples(path, self.test_columns or self.columns, self.label_map)
        return read_examples(self.split_path(data_dir, split, part), self.columns, self.label_map)

    def builtin_split(self, split: str, part: str) -> list:
        """Split "K-S" of the built-in data: K train examples per class drawn with seed S,
        K dev examples per class from the rest with seed S + 1, the rest is the test set."""
        if not self.builtin:
            raise DataError(f"task {self.name}: the built-in data ({BUILTIN_DIR}) has only binary sentiment "
                            f"sentences (tasks sst2, yelp); give --data DIR or $SECPTUNE_DATA")
        try:
            k, seed = (int(v) for v in split.split("-"))
        except ValueError:
            raise DataError(f"split {split!r}: expected K-SEED, e.g. 16-13") from None
        pool = read_examples(BUILTIN_DIR / f"{self.builtin}.jsonl", Columns((("text",),), ("label",)),
                             {"0": 0, "1": 1})
        train = few_shot(pool, k, seed, self.num_labels)
        taken = set(train)
        rest = [e for e in pool if e not in taken]          # duplicates of a train sentence go too
        dev = few_shot(rest, k, seed + 1, self.num_labels)
        if part == "train":
            return train
        if part == "dev":
            return dev
        if part == "test":
            taken = set(dev)
            return [e for e in rest if e not in taken]
        raise ValueError(f"part must be train, dev or test, got {part!r}")


_PAIR = Columns(texts=(("sentence1",), ("sentence2",)), label=("label",))

TASKS = {
    "sst2": Task("sst2", "<P> . {text} . It was <mask> .", ("bad", "great"),
                 ("It was bad.", "It was great."), folder="SST-2", builtin="uci-imdb"),
    "yelp": Task("yelp", "<P> . {text} . It was <mask> .", ("bad", "great"),
                 ("It was bad.", "It was great."), folder="yelp-2", test_file="test.txt", builtin="uci-yelp",
                 columns=Columns(texts=(("text", "sentence"),), label=("label",))),
    "agnews": Task("agnews", "<P> . <mask> News: {text}", ("World", "Sports", "Business", "Tech"),
                   ("World news.", "Sports news.", "Business news.", "Technology news."),
                   folder="agnews", columns=Columns(texts=(("text", "sentence"),), label=("label",)),
                   label_map={"0": 0, "1": 1, "2": 2, "3": 3}),
    "mrpc": Task("mrpc", "<P> . {s1} ? <mask> , {s2}", ("No", "Yes"),
                 ("The two sentences mean different things.", "The two sentences mean the same thing."),
                 metric="f1", folder="MRPC", head="pair", pair_class=1,
                 columns=Columns(texts=(("#1 String",), ("#2 String",)), label=("Quality",))),
    "rte": Task("rte", "<P> . {s1} ? <mask> , {s2}", ("Yes", "No"),
                ("The second sentence follows from the first.", "The second sentence does not follow from the first."),
                folder="RTE", columns=_PAIR, label_map={"entailment": 0, "not_entailment": 1},
                head="pair", pair_class=0),
}


def load_task(path) -> Task:
    """A user-defined task from JSON: name, template, label_words, anchors, metric,
    text_columns (list of lists of accepted names), label_column (list), label_map;
    optionally head ("anchor", "pair" or "mlm"), pair_template, pair_class."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: cannot read the task file ({e})") from None
    for key in ("name", "template", "label_words", "anchors"):
        if key not in raw:
            raise DataError(f"{path}: field {key!r} is missing")
    labels = raw.get("label_map") or {str(i): i for i in range(len(raw["label_words"]))}
    cols = Columns(
        texts=tuple(tuple(c) for c in raw.get("text_columns", [["sentence", "text"]])),
        label=tuple(raw.get("label_column", ["label"])),
    )
    try:
        return Task(raw["name"], raw["template"], tuple(raw["label_words"]), tuple(raw["anchors"]),
                    metric=raw.get("metric", "accuracy"), columns=cols, label_map=dict(labels),
                    head=raw.get("head", "anchor"), pair_template=raw.get("pair_template", "<P> . {text}"),
                    pair_class=raw.get("pair_class", 0))
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
