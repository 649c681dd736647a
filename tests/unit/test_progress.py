"""Progress of long steps lands in the step's log (milestones, or a tqdm bar with run.progress), not the console."""

import logging

import pytest

from tdann import progress


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="tdann.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "tdann.progress"]


def test_milestones_log_each_tenth_once(lines):
    with progress.Progress(200, "responses", "input", enabled=False) as bar:
        for _ in range(40):
            bar.update(5)
    got = lines()
    assert len(got) == 10 and got[0].startswith("responses: 20/200 input (10%)") and "(100%)" in got[-1]


def test_a_resumed_job_does_not_repeat_passed_milestones(lines):
    with progress.Progress(100, "train", "step", enabled=False, initial=55) as bar:
        for _ in range(9):
            bar.update(5)
    got = lines()
    assert [g.split(" (")[1].split(")")[0] for g in got] == ["60%", "70%", "80%", "90%", "100%"]


def test_a_jump_over_several_milestones_logs_one_line(lines):
    with progress.Progress(100, "train", "step", enabled=False) as bar:
        bar.update(35)
        bar.update(65)
    assert [g.split(" (")[1].split(")")[0] for g in lines()] == ["35%", "100%"]


def test_the_bar_writes_into_the_log_when_enabled(lines, capsys):
    with progress.Progress(3, "screen", "input", enabled=True, interval=0) as bar:
        for _ in range(3):
            bar.update()
    got = lines()
    assert got and "screen" in got[-1] and "3/3" in got[-1]
    assert "screen" not in capsys.readouterr().err  # nothing on the console


def test_the_default_follows_configure(lines):
    progress.configure(True)
    try:
        with progress.Progress(2, "x", enabled=None, interval=0) as bar:
            bar.update(2)
        assert any("2/2" in g and "|" in g for g in lines())  # a bar, not a milestone line
    finally:
        progress.configure(False)


def test_no_total_no_milestones(lines):
    with progress.Progress(None, "stream", enabled=False) as bar:
        bar.update(10)
    assert lines() == []
