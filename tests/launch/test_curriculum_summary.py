"""The curriculum run's human summary: a rich table on a terminal, plain lines in a log.

A terminal is a real pseudo-terminal here (``pty.openpty``); a log is a pipe or a file. Both
show the same facts; the plain one never imports rich (a batch job's output, read with grep).
"""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import textwrap

from ddai.launch.tasks.curriculum import render_summary

SUMMARY = {
    "out_dir": "/runs/[r1]/curriculum",
    "buckets": {"A": 1763, "B": 2651, "0": 564, "no_score": 0, "unmatched": 1689},
    "train_bucket": "A",
    "files": {"A": "curriculum_bucket_a.parquet", "B": "curriculum_bucket_b.parquet", "0": "curriculum_bucket_0.parquet",
              "no_score": "curriculum_bucket_no_score.parquet", "unmatched": "unmatched.parquet"},
    "match": {"matched_rows": 4978, "unmatched_rows": 1689, "groups_without_row": 4353, "ambiguous_groups": 2,
              "ambiguous_rows": 1},
    "duplicates": 4978,
    "read": {"records": 361600, "malformed": 3},
    "steps_per_epoch": 27,
    "dropped": 35,
}


def test_a_log_gets_plain_aligned_lines():
    out = io.StringIO()
    render_summary(SUMMARY, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "curriculum → /runs/[r1]/curriculum"
    assert lines[1].split() == ["bucket", "rows", "file"]
    assert lines[2].split() == ["A", "(train)", "1763", "curriculum_bucket_a.parquet"]
    assert lines[4].split() == ["0", "564", "curriculum_bucket_0.parquet"]
    assert len({line.index("curriculum_bucket") for line in lines[2:6]}) == 1      # one column for the files
    assert "ambiguous groups 2 (rows 1)" in lines[7] and "rows with several groups 4978" in lines[7]
    assert lines[8] == "read 361600 records, 3 malformed skipped · 27 steps/epoch"
    assert lines[9].startswith("warning: verl will drop the last 35 prompts")
    assert not any(ch in out.getvalue() for ch in "┃━│")


def test_no_warning_line_when_nothing_is_dropped():
    out = io.StringIO()
    render_summary({**SUMMARY, "dropped": 0}, out)
    assert "warning" not in out.getvalue()


def test_a_terminal_gets_the_rich_table():
    master, slave = pty.openpty()
    try:
        with open(slave, "w", encoding="utf-8") as tty:       # closing it ends what the master reads
            render_summary(SUMMARY, tty)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:                                    # Linux: EIO once the other side is closed
                break
            if not chunk:
                break
            seen += chunk
        text = seen.decode("utf-8", "replace")
    finally:
        os.close(master)
    assert "┃" in text and "bucket" in text and "1763" in text and "A (train)" in text
    assert "/runs/[r1]/curriculum" in text                     # brackets shown, not taken for markup
    assert "\x1b[" in text                                     # styled: the warning is coloured


def test_the_plain_summary_does_not_import_rich():
    script = textwrap.dedent(f"""
        import json, sys
        from ddai.launch.tasks.curriculum import render_summary
        render_summary(json.loads({json.dumps(json.dumps(SUMMARY))}))
        print(sorted(m for m in sys.modules if m == "rich" or m.startswith("rich.")))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    assert "matched rows 4978" in res.stderr                   # stderr is a pipe here: the plain lines
