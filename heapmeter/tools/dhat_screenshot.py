#!/usr/bin/env python3
"""Open a dhat-heap.json in Valgrind's own viewer (dh_view.html) in headless Chromium and save a
screenshot: proof that the viewer accepts the file, and a picture of what it shows.

    python3 heapmeter/tools/dhat_screenshot.py dhat-heap.json dhat.png [--viewer DIR]

dh_view.html loads a profile only through a file input, so this writes a wrapper page beside a
copy of dh_view.js/.css that hands the JSON to that input (a DataTransfer of one File) and calls
the viewer's own loader (`loadFile`), exactly as the "Load…" button does. Needs `chromium` and
Debian's `valgrind` package (/usr/libexec/valgrind/dh_view.*). Exits non-zero if either is
missing or the viewer reports an error in the page title.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WRAPPER = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="UTF-8">
    <link rel="stylesheet" href="dh_view.css">
    <script src="dh_view.js"></script>
  </head>
  <body onload="onLoad(); feed()"></body>
  <script>
    const NAME = %s;
    const TEXT = %s;
    function feed() {
      const dt = new DataTransfer();
      dt.items.add(new File([TEXT], NAME, {type: "application/json"}));
      gInput.files = dt.files;
      loadFile();
    }
  </script>
</html>
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--viewer", type=Path, default=Path("/usr/libexec/valgrind"))
    ap.add_argument("--size", default="1400,2000", help="window WIDTH,HEIGHT")
    a = ap.parse_args()

    text = a.profile.read_text()
    json.loads(text)  # fail early, with Python's message, on a file that is not JSON
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        sys.exit("no chromium on PATH (apt-get install chromium)")
    if not (a.viewer / "dh_view.js").exists():
        sys.exit(f"no dh_view.js in {a.viewer} (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for f in ("dh_view.js", "dh_view.css"):
            shutil.copy(a.viewer / f, d / f)
        page = d / "view.html"
        page.write_text(WRAPPER % (json.dumps(a.profile.name), json.dumps(text)))
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu",
                  "--allow-file-access-from-files", "--virtual-time-budget=5000"]
        subprocess.run(common + [f"--window-size={a.size}", f"--screenshot={a.png.resolve()}",
                                 page.as_uri()], check=True, capture_output=True)
        dom = subprocess.run(common + ["--dump-dom", page.as_uri()], check=True,
                             capture_output=True, text=True).stdout
    if "Error loading file" in dom or 'class="error"' in dom:
        sys.exit(f"dh_view.html rejected {a.profile}: see {a.png}")
    if "Times:" not in dom and "Total:" not in dom:
        sys.exit(f"dh_view.html showed no profile for {a.profile}: see {a.png}")
    print(f"{a.profile} opened in dh_view.html: {a.png}")


if __name__ == "__main__":
    main()
