VENV ?= .venv
PY := $(VENV)/bin/python
THREADS ?= 2

.PHONY: setup demo test test-slow test-all bench clean spb suite-standin
setup:
	@bash scripts/setup_env.sh $(VENV)

# The main job on the embedded demo clip: writes runs/demo/demo.mp4 and runs/demo/demo.mp4.events.jsonl
demo: setup
	$(PY) cctv_mask_detector.py --demo --output_path runs/demo/demo.mp4

# The fast tier (a few minutes on 2 cores). The data-heavy tests are marked slow: `make test-all` runs both.
test: setup
	$(PY) -m pytest -q -m "not slow" tests

# pytest exits 5 when no test is selected: not a failure here.
test-slow: setup
	$(PY) -m pytest -q -m slow tests || [ $$? -eq 5 ]

test-all: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) benchmarks/bench_mtcnn.py --threads $(THREADS)

clean:
	rm -rf runs .pytest_cache

# Side environment for timing facenet-pytorch itself (it needs torchvision, which needs torch 2.14.1).
bench-env:
	test -x .venv-facenet/bin/python || python3 -m venv .venv-facenet
	.venv-facenet/bin/pip -q install torch==2.14.1 torchvision==0.29.1 numpy Pillow requests tqdm
	.venv-facenet/bin/pip -q install --no-deps facenet-pytorch==2.6.0

# The venv's spb with credentials checked first and the download folder made: make spb ARGS="download -p P -d suite_download -y"
spb:
	$(PY) -m cctv.suite_cli $(ARGS)

# A loopback stand-in of the Suite for trying the labeling round trip offline (prints what to run next)
suite-standin:
	$(PY) -m cctv.suite_standin --project $(or $(PROJECT),cctv-mask-detector)
