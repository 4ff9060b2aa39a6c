"""module_utils/marketplace_metrics: the Prometheus text format and its arithmetic, shared by app_metrics,
metrics_window and the checks role's filters.

data/metrics_backend_{1,2}.txt are two real answers of the reference stack's /metrics (through nginx), taken
from one backend process with six GET /api/health and one scrape between them.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import tests.helpers.modules  # noqa: F401  (makes module_utils/ importable as ansible.module_utils.*)

mm = importlib.import_module("ansible.module_utils.marketplace_metrics")
bucket_deltas, finite_number, histogram_quantile = mm.bucket_deltas, mm.finite_number, mm.histogram_quantile
identity, parse_samples, query_result_value = mm.identity, mm.parse_samples, mm.query_result_value
request_deltas, select_series, went_backwards = mm.request_deltas, mm.select_series, mm.went_backwards

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
BEFORE = (DATA / "metrics_backend_1.txt").read_text()
AFTER = (DATA / "metrics_backend_2.txt").read_text()
NAMES = {"http_requests_total", "http_request_duration_seconds_bucket"}
INF = float("inf")


def test_parses_the_real_answer():
    samples = parse_samples(BEFORE)
    assert len(samples) == len([line for line in BEFORE.splitlines() if line and not line.startswith("#")])
    assert ("http_requests_total", {"method": "GET", "route": "/api/health", "status": "200"}, 11.0) in samples
    assert ("app_info", {"version": "1.0.0"}, 1.0) in samples
    # Every histogram series: cumulative buckets ending in +Inf, which equals its _count.
    counts = {lab["route"]: v for n, lab, v in samples if n == "http_request_duration_seconds_count"}
    for route, count in counts.items():
        buckets = [(float(lab["le"]), v) for n, lab, v in samples
                   if n == "http_request_duration_seconds_bucket" and lab["route"] == route]
        assert buckets[-1] == (INF, count)
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert identity(samples) == {"start_time": 1795990787.0, "version": "1.0.0"}


@pytest.mark.parametrize(("written", "value"), [
    (r'"/a\"b"', '/a"b'),          # escaped quote
    (r'"C:\\temp"', "C:\\temp"),    # escaped backslash
    (r'"two\nlines"', "two\nlines"),  # escaped newline
    (r'"bs\\n"', "bs\\n"),          # an escaped backslash followed by n is no newline
    (r'"tab\t"', "tab\\t"),         # not an escape of the format: kept as written
    (r'"a}b,c=\"d\""', 'a}b,c="d"'),  # braces, commas and equals signs inside a value
    ('""', ""),
])
def test_label_values_are_unescaped_once(written, value):
    assert parse_samples('x{route=%s,status="500"} 1' % written) == [("x", {"route": value, "status": "500"}, 1.0)]


def test_lines_values_and_timestamps():
    text = "\n".join([
        "# HELP x help text", "# TYPE x counter", "", "bad line", "x 1 2 3", "9x 1", 'x{a="b"}1',
        "x 1", "  x 2  ", "x 3 1700000000000", "x 4 -5", "x 5 1700000000.5",  # timestamps are ignored
        'x{ a = "b" , c="d" } 6', "x{} 7", "x 1_000",
        "x NaN", "x +Inf", "x -Inf",
    ])
    samples = parse_samples(text)
    assert [v for _, _, v in samples[:8]] == [1, 2, 3, 4, 5, 6, 7, 1000]
    assert samples[5] == ("x", {"a": "b", "c": "d"}, 6.0)
    assert [str(v) for _, _, v in samples[8:]] == ["nan", "inf", "-inf"]
    assert [v for _, _, v in parse_samples(text, finite_only=True)] == [1, 2, 3, 4, 5, 6, 7, 1000]
    assert parse_samples("") == [] and parse_samples(None) == []


def test_histogram_quantile_like_prometheus():
    # 100 observations: 50 <= 0.1 s, 90 <= 0.5 s, 100 <= 1 s.
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, INF: 100.0}
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)  # the lowest bucket starts at 0
    # The same as pairs in any order, or with the bounds as the text format writes them.
    assert histogram_quantile(0.95, list(reversed(buckets.items()))) == pytest.approx(0.75)
    assert histogram_quantile(0.95, {"0.1": 50, "0.5": 90, "1": 100, "+Inf": 100}) == pytest.approx(0.75)
    # A rank in +Inf: the highest finite bound.
    assert histogram_quantile(0.99, {0.1: 1.0, 0.5: 2.0, INF: 10.0}) == 0.5
    # No observations, no buckets.
    assert histogram_quantile(0.95, {0.1: 0.0, INF: 0.0}) is None
    assert histogram_quantile(0.95, {}) is None and histogram_quantile(0.95, []) is None


def test_histogram_quantile_without_a_bound_to_give():
    only_inf = {INF: 5.0}
    assert histogram_quantile(0.5, only_inf) == 0.0  # app_metrics and the health filters
    assert histogram_quantile(0.5, only_inf, none_if_unbounded=True) is None  # metrics_window: unknown
    beyond = {1.0: 10.0, 2.0: 10.0}
    assert histogram_quantile(1.5, beyond) == 2.0
    assert histogram_quantile(1.5, beyond, none_if_unbounded=True) is None
    # Where a bound exists both give the same answer.
    assert histogram_quantile(0.99, {1.0: 1.0, INF: 2.0}, none_if_unbounded=True) == 1.0


def test_the_window_between_two_real_answers():
    first, second = parse_samples(BEFORE), parse_samples(AFTER)
    assert identity(first) == identity(second)
    before, after = select_series(first, NAMES), select_series(second, NAMES)
    assert not went_backwards(before, after)
    assert request_deltas(before, after, "http_requests_total") == {"200": 7}  # 6 health checks + 1 scrape
    assert request_deltas(before, after, "http_requests_total", ["/metrics"]) == {"200": 6}
    buckets = bucket_deltas(before, after, "http_request_duration_seconds", ["/metrics"])
    assert buckets[0.005] == 6.0 and buckets[INF] == 6.0 and len(buckets) == 12
    # All six within the first bucket (0, 5 ms]: rank 5.7 of 6.
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.005 * 5.7 / 6)
    # Series of excluded routes are not selected at all.
    assert not [k for k in select_series(first, NAMES, {"/metrics"}) if 'route=/metrics' in k]


def test_another_process_and_counters_going_backwards():
    first = parse_samples(AFTER)
    restarted = parse_samples(BEFORE.replace("process_start_time_seconds 1795990787", "process_start_time_seconds 2"))
    assert identity(first) != identity(restarted)
    before, after = select_series(first, NAMES), select_series(restarted, NAMES)
    assert went_backwards(before, after) and not went_backwards(after, before)
    # A series that is new in the second answer counts from zero; one that went down counts nothing.
    new = select_series(parse_samples('http_requests_total{route="/api/x",status="503"} 2\n'), NAMES)
    assert request_deltas({}, new, "http_requests_total") == {"503": 2}
    assert request_deltas(before, after, "http_requests_total") == {}
    assert set(bucket_deltas(before, after, "http_request_duration_seconds").values()) == {0.0}
    assert min(bucket_deltas(before, after, "http_request_duration_seconds", floor_at_zero=False).values()) < 0
    # Status from `code` when there is no `status` label.
    coded = select_series(parse_samples('http_requests_total{code="502"} 4\n'), NAMES)
    assert request_deltas({}, coded, "http_requests_total") == {"502": 4}


def test_identity_needs_one_of_start_time_and_version():
    assert identity(parse_samples("x 1\n")) is None
    assert identity(parse_samples('app_info{version="2.0"} 1\n')) == {"start_time": None, "version": "2.0"}


def test_numbers_and_query_answers():
    assert finite_number("0.25") == 0.25 and finite_number(3) == 3.0
    assert [finite_number(v) for v in (None, True, "abc", "NaN", "+Inf", float("-inf"), [1])] == [None] * 7
    assert query_result_value({"metric": {}, "value": [1700000000.1, "12.5"]}) == 12.5
    for odd in ({"value": [1, "NaN"]}, {"metric": {}}, {"value": []}, {"value": None}, "text", None):
        assert query_result_value(odd) is None


def test_the_filter_plugin_uses_this_file():
    """The controller-side filters load module_utils/marketplace_metrics.py itself (not a copy)."""
    spec = importlib.util.spec_from_file_location(
        "marketplace_checks_for_test", ROOT / "roles" / "checks" / "filter_plugins" / "marketplace_checks.py")
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    assert Path(mc._metrics.__file__).resolve() == ROOT / "module_utils" / "marketplace_metrics.py"
    assert mc.histogram_quantile is mc._metrics.histogram_quantile


def _adhoc_window(plugin_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    expr = ("{{ lookup('ansible.builtin.file', '%s') | health_metrics_window(lookup('ansible.builtin.file', '%s')) }}"
            % (DATA / "metrics_backend_1.txt", DATA / "metrics_backend_2.txt"))
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-m", "ansible.builtin.debug", "-a", "msg=" + expr],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FILTER_PLUGINS": str(plugin_dir),
             "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", **env})


def _window_of(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "ansible").exists(), reason="needs the project's venv")
def test_ansible_loads_the_filters_on_the_controller(tmp_path):
    # Where ansible.module_utils is ansible-core's own package (a fresh ansible process).
    window = _window_of(_adhoc_window(ROOT / "roles" / "checks" / "filter_plugins", {}))
    assert window["comparable"] and window["requests"] == 6
    assert window["p95_seconds"] == pytest.approx(0.00475, abs=1e-4)
    # The plugin away from the repository: found through the module_utils paths ansible.cfg configures.
    shutil.copy(ROOT / "roles" / "checks" / "filter_plugins" / "marketplace_checks.py", tmp_path)
    assert _window_of(_adhoc_window(tmp_path, {})) == window
    # Nowhere to find module_utils/marketplace_controller.py (the controller's one loader of module_utils): the
    # filters do not load, and ansible says which file is missing.
    failed = _adhoc_window(tmp_path, {"ANSIBLE_MODULE_UTILS": str(tmp_path)})
    assert failed.returncode != 0 and "marketplace_controller.py" in failed.stdout + failed.stderr


