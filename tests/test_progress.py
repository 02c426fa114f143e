"""Training progress: plain lines (no carriage returns) when stderr is not a terminal, a bar when it is."""
import io

from ezrobot.progress import Progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(total=1000, initial=0, resumed=False, stream=stream, interval_s=0.0)
    for step in (100, 200, 300):
        progress.tick(step, step // 2, 9.5)
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("ezrobot: train 300/1000 env steps, upd 150")
    assert "eval 9.5" in lines[-1]


def test_plain_lines_follow_the_interval_unless_forced():
    stream = io.StringIO()
    progress = Progress(total=10, initial=5, resumed=True, stream=stream, interval_s=3600.0)
    progress.tick(6, 1, None)
    assert stream.getvalue() == ""
    progress.tick(7, 2, None, force=True)
    assert stream.getvalue().splitlines() == [stream.getvalue().strip()]
    assert stream.getvalue().startswith("ezrobot: resumed 7/10 env steps") and "eval -" in stream.getvalue()


def test_a_terminal_gets_the_bar():
    stream = _Tty()
    progress = Progress(total=100, initial=0, resumed=False, stream=stream)
    progress.tick(50, 3, 1.0)
    progress.close()
    assert "\r" in stream.getvalue() and "env step" in stream.getvalue()
