"""Runs after pytest in the playwright job: copies what the run wrote into the job's copy of the
tree (coverage.xml, .coverage, screenshots, storage-state files, ...) to the report folder, so
the report can link it. The checkout itself was never touched: the job has its own copy.

usage: harvest.py TREE MARKER DEST LIST
Files modified after MARKER (created just before pytest started) are copied from TREE to DEST,
keeping their relative paths; LIST gets {"files": [{"path", "size", "skipped"?}]}.
"""

import json
import os
import shutil
import stat
import sys

SKIP_DIRS = {".pytest_cache", "__pycache__", "node_modules", ".git"}
MAX_FILE = 50 * 1024 * 1024
MAX_TOTAL = 200 * 1024 * 1024


def main(tree: str, marker: str, dest: str, listing: str) -> None:
    since = os.stat(marker).st_mtime_ns
    files, total = [], 0
    for dirpath, dirs, names in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_mtime_ns <= since:
                continue
            rel = os.path.relpath(path, tree)
            entry = {"path": rel, "size": st.st_size}
            if st.st_size > MAX_FILE or total + st.st_size > MAX_TOTAL:
                entry["skipped"] = "larger than the report keeps (50 MiB a file, 200 MiB in all)"
            else:
                target = os.path.join(dest, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(path, target)
                total += st.st_size
            files.append(entry)
    with open(listing, "w", encoding="utf-8") as f:
        json.dump({"files": files}, f)


if __name__ == "__main__":
    main(*sys.argv[1:5])
