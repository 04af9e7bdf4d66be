"""``watchtower backtest``: how early and how precisely watchtower flags real cascades that go
big, next to the ElastAlert2 rules people write today (issue 4)."""

from watchtower.backtest.command import add_backtest_command

__all__ = ["add_backtest_command"]
