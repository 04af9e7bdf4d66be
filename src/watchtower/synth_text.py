"""Texts of synthetic posts: complaint, praise and neutral templates with their labels.

Part of the synthetic stream (`watchtower.synth`): templates per brand domain (airline, telecom,
shop) with random fill-ins, so that texts vary but each carries a known sentiment label.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

MOODS = ("negative", "neutral", "positive")

_DOMAIN_OF = {"united": "air", "delta": "air", "acme_telecom": "telecom", "shopfast": "shop"}
_DOMAINS = ("air", "telecom", "shop")
_ISSUES = {
    "air": ("lost my bag", "cancelled my flight", "delayed my flight {n} hours",
            "left us on the tarmac for {n} hours", "bumped me off an overbooked flight",
            "broke my suitcase", "rebooked me {n} days later"),
    "telecom": ("cut my internet since this morning", "dropped {n} calls today",
                "charged me twice this month", "left my whole street offline for {n} hours",
                "throttled my data to nothing", "cancelled my plan without asking"),
    "shop": ("never delivered my order", "still owes me a refund after {n} weeks",
             "marked my package delivered but nothing is here", "sent the wrong item {n} times",
             "cancelled my order without telling me", "charged me for an order I never got"),
}  # fmt: skip
_PRAISE = {
    "air": ("the crew upgraded me for free", "the pilot held the plane for my connection",
            "found my lost bag in 2 hours", "smoothest flight ever",
            "a gate agent saved my whole trip"),
    "telecom": ("fixed my internet in {n} minutes", "the new plan saves me ${n} a month",
                "support was actually great today", "5G is blazing fast here"),
    "shop": ("my order came a day early", "refunded me in minutes",
             "replaced my broken blender for free", "best deals this season"),
}  # fmt: skip
_QUESTIONS = {
    "air": ("what's the baggage allowance on basic economy?", "can I bring my dog in the cabin?",
            "is the {n}pm flight to Denver on time?", "is there wifi on international flights?"),
    "telecom": ("is there 5G coverage in Austin?", "how do I port my number?",
                "when does the new plan start?"),
    "shop": ("do you ship to Canada?", "when does the sale end?",
             "can I change my delivery address?"),
}  # fmt: skip
_TOPICS = {
    "air": ("new baggage fees", "the spring schedule", "a new route to Lisbon"),
    "telecom": ("price changes", "a network upgrade", "new 5G plans"),
    "shop": ("holiday shipping", "a new return policy", "a summer sale"),
}
_OUTAGES = {
    "air": ("app and website are down, can't check in", "check-in kiosks are down",
            "booking site only shows errors"),
    "telecom": ("no signal at all", "internet is down", "can't make any calls"),
    "shop": ("site won't load", "checkout is broken", "app crashes on payment"),
}  # fmt: skip
_COMPLAINT_FORMS = ("{b} {issue}{again}{extra}. {tail}", "{tail}. {b} {issue}{again}{extra}",
                    "seriously? {b} {issue}{again}{extra}, {tail}")  # fmt: skip
_AGAIN = ("", "", " AGAIN", " again", " for the {ord} time")
_EXTRA = ("", "", ", {n} hours on hold", ", nobody answers the phone",
          ", the chat bot is useless", ", no refund, no apology")  # fmt: skip
_TAILS = ("worst service ever", "never again", "absolutely ridiculous", "so done with this",
          "#fail", "do better", "unacceptable", "what a joke")  # fmt: skip
_PRAISE_FORMS = ("shoutout to {b}: {praise}", "{b} {praise}, thank you!",
                 "huge thanks to {b}, {praise}", "love {b}! {praise}")  # fmt: skip
_NEUTRAL_FORMS = ("{b} {question}", "just got an email from {b} about {topic}",
                  "{b} announced {topic} today", "reading about {b} and {topic}")  # fmt: skip
_OUTAGE_FORMS = ("is {b} down for everyone or just me? {outage}", "{b} {outage} since {since}",
                 "{b} outage again?? {outage}", "{outage}. come on {b}, fix it")  # fmt: skip
_REPLIES = {
    "negative": ("same here, {b} did this to me last week", "this is unacceptable {b}",
                 "{b} fix this", "happened to me too. never again", "wow, that's awful",
                 "{b} why is nobody answering?", "{n} hours and counting, terrible",
                 "I switched after the same thing. worst company"),
    "neutral": ("did they ever reply?", "which one was it?", "DM them, that worked for me",
                "following", "any update?", "where was this?"),
    "positive": ("love this!", "same, great service every time", "that's awesome",
                 "{b} rocks", "this made my day", "wholesome. thank you {b}"),
}  # fmt: skip
# Which mood a reply has, given the thread's mood: threads are not unanimous.
_REPLYMOODS = {"negative": (0.65, 0.3, 0.05), "neutral": (0.2, 0.6, 0.2),
                "positive": (0.05, 0.25, 0.7)}  # fmt: skip
_CARE = ("We're sorry to hear this. Please DM us your {ref} so we can help. ^{initials}",
         "Thanks for reaching out, we're on it. Can you DM us the details? ^{initials}",
         )  # fmt: skip
_HANDLE_PARTS = (("sunny", "blue", "quiet", "happy", "lazy", "wild", "urban", "tiny", "salty",
                  "night", "cosmic", "retro"),
                 ("traveler", "fox", "coder", "mom", "dad", "panda", "runner", "chef", "gamer",
                  "owl", "nomad", "writer"))  # fmt: skip


class Texts:
    """Post texts from templates, with the sentiment label each template carries."""

    def __init__(self, rng: random.Random, brands: Sequence[str]) -> None:
        self.rng = rng
        # Brands beyond the known four borrow a domain, in turn.
        self.domain = {
            brand: _DOMAIN_OF.get(brand, _DOMAINS[index % len(_DOMAINS)])
            for index, brand in enumerate(brands)
        }

    def root(self, brand: str, mood: str) -> tuple[str, str]:
        if mood == "negative":
            return self.complaint(brand), "negative"
        rng, domain = self.rng, self.domain[brand]
        if mood == "positive":
            form = rng.choice(_PRAISE_FORMS)
            return self._fill(form, brand, praise=rng.choice(_PRAISE[domain])), "positive"
        form = rng.choice(_NEUTRAL_FORMS)
        question, topic = rng.choice(_QUESTIONS[domain]), rng.choice(_TOPICS[domain])
        return self._fill(form, brand, question=question, topic=topic), "neutral"

    def complaint(self, brand: str) -> str:
        rng = self.rng
        form = rng.choice(_COMPLAINT_FORMS)
        parts = {"issue": rng.choice(_ISSUES[self.domain[brand]]), "again": rng.choice(_AGAIN)}
        parts |= {"extra": rng.choice(_EXTRA), "tail": rng.choice(_TAILS)}
        return self._fill(self._fill(form, brand, **parts), brand)  # parts hold {n} and {ord}

    def reply(self, brand: str, thread_mood: str) -> tuple[str, str]:
        mood = self.rng.choices(MOODS, _REPLYMOODS[thread_mood])[0]
        if mood == "negative" and self.rng.random() < 0.3:
            return self.complaint(brand), mood  # "same here" with the full story
        return self._fill(self.rng.choice(_REPLIES[mood]), brand), mood

    def outage(self, brand: str, since: str) -> str:
        """A complaint about an outage that began at `since` ("HH:MM")."""
        rng = self.rng
        form, outage = rng.choice(_OUTAGE_FORMS), rng.choice(_OUTAGES[self.domain[brand]])
        return self._fill(form, brand, outage=outage, since=since)

    def care_reply(self) -> str:
        rng = self.rng
        initials = rng.choice("ABCDEFGHJKLMNPRSTW") + rng.choice("ABCDEFGHJKLMNPRSTW")
        ref = rng.choice(("booking reference", "account number", "order number"))
        return rng.choice(_CARE).format(ref=ref, initials=initials)

    def handle(self) -> str:
        rng = self.rng
        first, second = rng.choice(_HANDLE_PARTS[0]), rng.choice(_HANDLE_PARTS[1])
        return f"{first}_{second}{rng.randrange(10_000)}"

    def _fill(self, form: str, brand: str, **parts: str) -> str:
        number = self.rng.randrange(2, 10)
        return form.format(b=f"@{brand}", n=number, ord=f"{number}th", **parts)
