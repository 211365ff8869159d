"""The report in a real browser (headless Chromium, Debian's package): it loads from disk with no console
message, the plots and the alerts table are in the page, and a screenshot is left in
runs/report_browser/report.png for a person to open."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

from cctv.report import write_report
from report_runs import footage_frame, write_run

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "runs" / "report_browser" / "report.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-dev-shm-usage"]  # containers often have a small /dev/shm


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium; installed with apt-get where missing and we are root, else the test skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and can't be here (needs root and apt-get): "
                    "apt-get install chromium to run the browser test")
    done = subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
                          shell=True, capture_output=True, text=True, timeout=1200)
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"chromium could not be installed (apt-get exit {done.returncode}: "
                    f"{(done.stderr or done.stdout).strip().splitlines()[-1:]})")
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory, request):
    """Two cameras' runs with real footage frames as snapshots, reported as the facility manager gets it."""
    shared = request.getfixturevalue("shared_dir") if (ROOT.parent / "shared" / "data").is_dir() else None
    folder = tmp_path_factory.mktemp("browser")
    frame = footage_frame(shared)
    write_run(folder / "runs", "entrance.mp4", "entrance", alerts=(30, 200), snapshot_image=frame)
    write_run(folder / "runs", "backdoor.mp4", "backdoor", alerts=(50,), snapshot_image=frame, people=False)
    out = folder / "report.html"
    write_report([folder / "runs"], out)
    return out


def browse(chromium, page, tmp_path, *args):
    done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--v=0", *args, page.as_uri()], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_the_report_loads_in_a_browser_with_its_plots_and_alerts(chromium, report, tmp_path):
    done = browse(chromium, report, tmp_path, "--dump-dom")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], f"console messages: {console}"
    dom = done.stdout
    assert len(re.findall(r'<svg id="ratio-plot"', dom)) == 2 and len(re.findall(r'<svg id="people-plot"', dom)) == 2
    assert len(re.findall(r'<table class="alerts">', dom)) == 2 and 'id="alert-2"' in dom
    images = re.findall(r'<img[^>]* src="([^"]{0,40})', dom)
    assert len(images) == 6 and all(src.startswith("data:image/jpeg;base64,") for src in images)


def test_a_screenshot_for_a_person_to_open(chromium, report, tmp_path):
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    # every tile painted before the shot (else parts of a tall page can come out blank)
    browse(chromium, report, tmp_path, f"--screenshot={SCREENSHOT}", "--window-size=1280,2400",
           "--run-all-compositor-stages-before-draw", "--virtual-time-budget=3000")
    image = cv2.imread(str(SCREENSHOT))
    assert image is not None and image.shape[:2] == (2400, 1280)
    assert image[:80].mean() < 90 and image.std() > 30  # the dark header, and a page with content below it
