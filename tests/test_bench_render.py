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
