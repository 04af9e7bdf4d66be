"""One alert transition as a short chat/pager message: a title line and a markdown body.

The body answers what on-call asks first: why did it fire, how fast is the thread growing, how
angry is it, who amplifies it, and where is it. It stays short (a few hundred characters per
post) so it reads in a chat window and fits pager payload limits.

Brand, thread and episode ids, handles, post texts and URLs come from producers and through them
from the public, so each is shown as inert text (the rest is ours: numbers, config names):

- One line (``alert.one_line``): controls, separators and other whitespace become single spaces,
  invisible format characters (bidi overrides, zero-width spaces) are dropped. A value cannot
  start a line, so line-start syntax (``#``, ``>``, ``-``, ``1.``, table rows) never applies.
- Markdown: notify.py hands apprise the title and body as MARKDOWN (unless the service shows
  plain text, below), which apprise sends as is (Discord, Mattermost), turns into HTML
  (Python-Markdown: raw HTML passes) or into Slack mrkdwn. So a value is escaped as CommonMark
  inline text: a backslash before each character that can start markup in mid-line,
  ``\\ ` * ~ | [ ] < >``, ``&`` of an entity, and ``_`` unless it sits between letters or
  digits (intraword, never emphasis: ``acme_telecom`` stays as is). Escaping ``< >`` also stops
  ``<!here>``, ``<@U1>``, ``<url|text>`` and HTML; with ``[ ]`` escaped, ``( )`` and ``!`` are
  plain text.
- Mentions: every ``@`` of such a value before a letter, digit, ``_``, ``*``, ``!`` or ``&`` is
  followed by a zero-width space (U+200B): invisible, and no chat takes ``@alice`` or ``@here``
  for a mention then, of one person or of a channel (Slack, Mattermost, Rocket.Chat, Discord,
  Telegram, Zulip's ``@**name**``, ``<@U1>``, ``<@&role>``). The handle shown before a post is
  the author's, so its ``@`` too. Only the ``@<start epoch>`` that ends an episode id stays as it
  is: ours, digits only, and people copy the id to ack the episode.
- A URL becomes a link only when it is a plain http(s) URL with a host and no user part, of
  URL characters only; anything else is withheld (the message says so).
An id inside a code span needs no escaping there (no markup in code), unless it holds a backtick.

Matrix also notifies whoever's display name or user name a message merely contains (its legacy
push rules, which apprise's events do not opt out of): no escaping stops that.

``Message.as_text()`` is the message for a service that shows plain text (SMS, pagers, apprise
URLs with ``?format=text``; notify.py picks per URL): this Markdown undone, without backslashes,
``**`` or link syntax, links as bare URLs. The outbox stores the Markdown only, so ``plain``
reads the text back from it, undoing exactly what render() writes. It stays inert where a
service renders markup all the same: mentions stay broken, and a zero-width space follows a
value's ``<`` (no ``<!here>``, ``<url|text>``, HTML tag or autolink) and a value's ``]`` before
``(`` (no link or image). Emphasis or code spans of a post can still show there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from watchtower.alerting.alert import AlertTransition, one_line

# apprise NotifyType values; plain strings so this module (and the outbox) stay apprise-free.
FAILURE = "failure"
WARNING = "warning"
SUCCESS = "success"

SNIPPET_CHARS = 140  # of each top post's text
HEADLINE_CHARS = 80  # of the thread's headline in the title: a pager's or a lock screen's line
MAX_POSTS = 3

_MARKUP = re.compile(r"[\\`*~|\[\]<>]|&(?=#?[0-9A-Za-z]{1,32};)|(?<![^\W_])_|_(?![^\W_])")
_ZWSP = "\u200b"  # zero-width space: breaks a mention, invisible
# An @ that can start a mention: @alice, @here, @123, Zulip's @**name** and @*group*, Discord's
# <@!id> and <@&role>.
_MENTION = re.compile(r"@(?=[\w*!&])")
# render()'s Markdown, token by token, for ``plain``: what inert() escaped, a code span, one of
# our links, our ** and _ emphasis (a post's * is always escaped, and so is its _ but between
# letters or digits).
_OURS = re.compile(
    r"\\(?P<escaped>.)|`(?P<code>[^`]*)`|\[[^\[\]\\`]*\]\((?P<url>[^()\s]*)\)"
    r"|\*+|(?<![^\W_])_|_(?![^\W_])"
)
_URL = re.compile(r"https?://[-A-Za-z0-9._~:/?#@!$&'()*+,;=%]+", re.IGNORECASE)
_WITHHELD = "(link withheld: not a plain http(s) URL)"


@dataclass(frozen=True)
class Message:
    title: str
    body: str  # markdown
    notify_type: str  # failure | warning | success (apprise NotifyType values)

    def as_text(self) -> Message:
        """The same message as plain text, for a service that shows no Markdown."""
        return Message(plain(self.title), plain(self.body), self.notify_type)


def render(transition: AlertTransition, top_level: str = "critical") -> Message:
    """The message for one transition; ``top_level`` (the highest configured level) pages."""
    t = transition
    if t.state == "resolved":
        title = _title(t, f"resolved after {resolved_minutes(t):.0f} min")
        return Message(title, _resolved(t), SUCCESS)
    kind = FAILURE if t.level == top_level else WARNING
    if _is_storm(t):  # the numbers that make it a storm, not a score
        e = t.explanation
        doing = "still going" if t.repeat else "firing"
        what = (
            f"{doing}: {_num(e, 'threads'):.0f} separate complaints in "
            f"{_num(e, 'bucket_min'):.0f} min vs {_num(e, 'forecast'):.1f} expected"
        )
        return Message(_title(t, what), _firing(t), kind)
    # a reminder may come after the episode stepped down a level (it says nothing then): it is
    # still open, not necessarily still growing
    doing = "still firing" if t.repeat else "escalating"
    return Message(_title(t, f"{doing} (score {t.score:.2f})"), _firing(t), kind)


def _is_storm(t: AlertTransition) -> bool:
    """A brand's complaint storm (decide/storms.py), not one thread's escalation."""
    return t.explanation.get("kind") == "storm"


def resolved_minutes(t: AlertTransition) -> float:
    """How long the episode lasted: its id is ``<thread>@<start epoch>`` (decide/levels.py)."""
    started = t.extra.get("episode_started")
    if not isinstance(started, int | float):
        _, _, tail = t.episode_id.rpartition("@")
        started = int(tail) if tail.isdigit() else t.at - 60 * _num(t.explanation, "age_min")
    return max(0.0, (t.at - started) / 60)


def _title(t: AlertTransition, what: str) -> str:
    label = "RESOLVED" if t.state == "resolved" else t.level.upper()
    brand = f"{inert(t.brand)}: " if t.brand else ""
    if _is_storm(t):
        return f"[{label}] {brand}complaint storm {what}"
    headline = _snippet(t.headline, HEADLINE_CHARS)
    about = f': "{inert(headline)}"' if headline else ""
    return f"[{label}] {brand}thread {inert(t.thread_id)} {what}{about}"


def _firing(t: AlertTransition) -> str:
    e = t.explanation
    lines = [f"**Why:** {t.why}"]
    lines += [f"- {reason}" for reason in e.get("crossed", [])]
    lines += ["", *_stats(e, t.sparkline), *_posts(t.top_mentions), *_footer(t)]
    return "\n".join(lines)


def _resolved(t: AlertTransition) -> str:
    e = t.explanation
    lines = [
        f"**Resolved** after {resolved_minutes(t):.0f} min ({t.level} at the end): {t.why}",
        "",
        *_stats(e, t.sparkline),
        *_footer(t),
    ]
    return "\n".join(lines)


def _stats(e: dict[str, Any], spark: str) -> list[str]:
    return [
        f"**Growth:** `{spark}` {_num(e, 'rate_per_min'):.1f}/min, "
        f"acceleration x{_num(e, 'acceleration'):.1f}, "
        f"{_num(e, 'count'):.0f} mentions in {_num(e, 'age_min'):.0f} min",
        f"**Anger:** {_num(e, 'negativity'):.0%} negative · "
        f"**Authors:** {_num(e, 'authors'):.0f} · "
        f"**Reach:** max {followers(int(_num(e, 'max_followers')))} followers",
    ]


def _posts(posts: list[dict[str, Any]]) -> list[str]:
    if not posts:
        return []
    lines = ["", "**Top posts:**"]
    for i, post in enumerate(posts[:MAX_POSTS], 1):
        text = _snippet(str(post.get("text") or ""), SNIPPET_CHARS)
        handle = inert(f"@{post.get('handle') or '?'}")
        count = followers(int(post.get("followers") or 0))
        lines.append(f'{i}. {handle} ({count} followers): "{inert(text)}"{_post_link(post)}')
    return lines


def _snippet(text: str, limit: int) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _post_link(post: dict[str, Any]) -> str:
    url = post.get("url")
    if not url:
        return ""
    target = link_target(url)
    return f" [link]({target})" if target else " (link withheld)"


def _footer(t: AlertTransition) -> list[str]:
    target = link_target(t.url)
    where = f"[open thread]({target})" if target else _WITHHELD if t.url else "(no link)"
    return ["", f"**Thread:** {where} · episode {_episode(t.episode_id)} #{t.sequence}"]


def inert(value: str) -> str:
    """A mention-controlled ``value`` as markdown that shows as one line of itself, no markup."""
    return _MARKUP.sub(r"\\\g<0>", _unmention(one_line(value)))


def link_target(url: object) -> str | None:
    """``url`` as a markdown link destination if it is a plain http(s) URL, else None."""
    if not isinstance(url, str) or not _URL.fullmatch(url):
        return None
    parts = urlsplit(url)
    if not parts.hostname or parts.username is not None:  # https://x.com@evil.example/
        return None
    return url.replace("(", "%28").replace(")", "%29")  # a ")" would end the destination


def _episode(episode_id: str) -> str:
    """The id as inline code (monospaced, to copy and ack), or as inert text if it has a `.

    Its ``@<start epoch>`` ending is ours and stays as it is; the thread id before it is not.
    """
    text = one_line(episode_id)
    thread, at, started = text.rpartition("@")
    if not (at and started.isascii() and started.isdigit()):
        thread, at, started = text, "", ""
    if "`" in text or not text:
        return f"{inert(thread)}{at}{started}"
    return f"`{_unmention(thread)}{at}{started}`"


def _unmention(text: str) -> str:
    return _MENTION.sub("@" + _ZWSP, text)


def plain(markdown: str) -> str:
    """A title or body render() wrote, as plain text: inert values unescaped, our markup gone."""
    return _OURS.sub(_plain_token, markdown)


def _plain_token(match: re.Match[str]) -> str:
    escaped, code, url = match["escaped"], match["code"], match["url"]
    if escaped == "<" or (escaped == "]" and match.string.startswith("(", match.end())):
        return escaped + _ZWSP
    if escaped is not None:
        return escaped
    if code is not None:  # the sparkline, or an episode id: a value, to keep inert
        return code.replace("<", "<" + _ZWSP).replace("](", "]" + _ZWSP + "(")
    return url or ""  # a link as its bare URL; emphasis markers go


def followers(n: int) -> str:
    """Follower counts as people say them: 950, 12.3k, 1.2M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.1f}k"
    return str(n)


def _num(e: dict[str, Any], name: str) -> float:
    value = e.get(name)
    return float(value) if isinstance(value, int | float) else 0.0
