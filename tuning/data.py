"""Labelled examples from the formats real users have, with errors that name file and line.

Readers: TSV with a header (GLUE style, with or without a UTF-8 byte-order
mark, no quoting), ``LABEL TEXT`` lines, CSV with a header, JSON Lines.
Column names are given per task with alternatives (the shared AG News splits
say ``text`` where its test file says ``sentence``).  Texts have literal
``\\n`` sequences (Yelp) turned into spaces.  ``few_shot`` samples k
examples per class with a seed, for users who bring a full training set.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data file the loader cannot use; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Example:
    texts: tuple          # one text, or two for sentence-pair tasks
    label: int


@dataclass(frozen=True)
class Columns:
    """Where a format keeps its fields: each entry lists accepted header names."""

    texts: tuple          # e.g. (("sentence", "text"),) or (("sentence1",), ("sentence2",))
    label: tuple          # e.g. ("label",)


def _clean(text: str) -> str:
    return " ".join(text.replace("\\n", " ").split())


def _read_text(path: Path) -> str:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not UTF-8 ({e.reason} at byte {e.start})") from None


def _label(value: str, label_map: dict, path, line: int) -> int:
    key = value.strip()
    if key not in label_map:
        known = ", ".join(sorted(label_map))
        raise DataError(f"{path}: line {line}: unknown label {value!r} (expected one of {known})")
    return label_map[key]


def _pick(header: list, names: tuple, path, what: str) -> int:
    for n in names:
        if n in header:
            return header.index(n)
    raise DataError(f"{path}: line 1: no {what} column (looked for {' or '.join(map(repr, names))}; "
                    f"header has {', '.join(map(repr, header))})")


def _rows_to_examples(rows, header, columns: Columns, label_map: dict, path, first_line: int) -> list:
    text_idx = [_pick(header, names, path, "text") for names in columns.texts]
    label_idx = _pick(header, columns.label, path, "label")
    out = []
    for offset, row in enumerate(rows):
        line = first_line + offset
        if not row or all(not c.strip() for c in row):
            continue
        need = max(text_idx + [label_idx])
        if len(row) <= need:
            raise DataError(f"{path}: line {line}: {len(row)} fields, expected at least {need + 1}")
        texts = tuple(_clean(row[i]) for i in text_idx)
        for i, t in zip(text_idx, texts):
            if not t:
                raise DataError(f"{path}: line {line}: empty text in column {header[i]!r}")
        out.append(Example(texts, _label(row[label_idx], label_map, path, line)))
    if not out:
        raise DataError(f"{path}: no examples")
    return out


def read_tsv(path, columns: Columns, label_map: dict) -> list:
    """A tab-separated file with a header row; fields are not quoted (GLUE)."""
    text = _read_text(path)
    rows = list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise DataError(f"{path}: empty file")
    return _rows_to_examples(rows[1:], [h.strip() for h in rows[0]], columns, label_map, path, 2)


def read_csv(path, columns: Columns, label_map: dict) -> list:
    """A comma-separated file with a header row (standard CSV quoting)."""
    text = _read_text(path)
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise DataError(f"{path}: empty file")
    return _rows_to_examples(rows[1:], [h.strip() for h in rows[0]], columns, label_map, path, 2)


def read_jsonl(path, columns: Columns, label_map: dict) -> list:
    """One JSON object per line, with the named fields."""
    text = _read_text(path)
    rows, header = [], None
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {line_no}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {line_no}: expected a JSON object")
        header = header or sorted({k for names in columns.texts for k in names} | set(columns.label))
        rows.append((line_no, obj))
    if not rows:
        raise DataError(f"{path}: no examples")
    out = []
    for line_no, obj in rows:
        texts = []
        for names in columns.texts:
            key = next((n for n in names if n in obj), None)
            if key is None:
                raise DataError(f"{path}: line {line_no}: no field {' or '.join(map(repr, names))}")
            t = _clean(str(obj[key]))
            if not t:
                raise DataError(f"{path}: line {line_no}: empty text in field {key!r}")
            texts.append(t)
        key = next((n for n in columns.label if n in obj), None)
        if key is None:
            raise DataError(f"{path}: line {line_no}: no field {' or '.join(map(repr, columns.label))}")
        out.append(Example(tuple(texts), _label(str(obj[key]), label_map, path, line_no)))
    return out


def read_label_text_lines(path, label_map: dict) -> list:
    """One example per line: ``LABEL TEXT``, split at the first space."""
    text = _read_text(path)
    out = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        label, _, body = line.partition(" ")
        body = _clean(body)
        if not body:
            raise DataError(f"{path}: line {line_no}: empty text")
        out.append(Example((body,), _label(label, label_map, path, line_no)))
    if not out:
        raise DataError(f"{path}: no examples")
    return out


def read_examples(path, columns: Columns, label_map: dict) -> list:
    """By extension: .tsv, .csv, .jsonl / .json (JSON Lines), .txt (``LABEL TEXT`` lines)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return read_tsv(path, columns, label_map)
    if suffix == ".csv":
        return read_csv(path, columns, label_map)
    if suffix in (".jsonl", ".json"):
        return read_jsonl(path, columns, label_map)
    if suffix == ".txt":
        return read_label_text_lines(path, label_map)
    raise DataError(f"{path}: unknown format {suffix!r} (tsv, csv, jsonl, txt)")


def few_shot(examples: list, k: int, seed: int, num_labels: int) -> list:
    """k examples per class, drawn without replacement with ``seed``, in class order."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(num_labels):
        pool = [e for e in examples if e.label == c]
        if len(pool) < k:
            raise DataError(f"class {c} has {len(pool)} examples, fewer than k = {k}")
        idx = rng.choice(len(pool), size=k, replace=False)
        out += [pool[i] for i in sorted(idx)]
    return out
