"""Realistic but fake personal data and free text (emails, phones, devices, IPs, messages).

Each user's personal data is derived from (seed, user index), so it is never stored and
is identical every time the user's record is re-sent.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from dataclasses import dataclass

FIRST_NAMES = (
    "James", "Mary", "Wei", "Yuki", "Sofia", "Lucas", "Amara", "Mateo", "Chloé", "José",
    "Hana", "Omar", "Priya", "Liam", "Noah", "Emma", "Olivia", "Ahmed", "Fatima", "Minh",
    "Siti", "Kenji", "Jiwoo", "Carlos", "Ana", "Ivan", "Elena", "Tunde", "Chinedu", "Zoë",
    "Björn", "Aylin", "Rahul", "Mei", "Diego", "Léa", "Sven", "Nadia", "Kofi", "Ines",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Müller", "Tanaka", "Kim", "Nguyen", "Silva", "García", "Rossi", "Dubois",
    "Okafor", "Patel", "Chen", "Wang", "Lee", "Johnson", "Brown", "Schmidt", "Sato",
    "Santos", "Yılmaz", "Khan", "Cohen", "Novak", "Jensen", "OBrien", "Park", "Tan",
    "Fischer", "Moreau", "Costa", "Haddad", "Ivanova", "Mensah", "Reyes", "Lim",
)  # fmt: skip
DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "inbox.example.net")
# Fictional or reserved number ranges per country calling code.
PHONE_PATTERNS = {
    "US": "+1 202-555-01{d2}",
    "CA": "+1 416-555-01{d2}",
    "GB": "+44 7700 900{d3}",
    "AU": "+61 491 570 {d3}",
    "DE": "+49 1512 3456{d3}",
    "FR": "+33 6 12 34 {d2} {d2b}",
    "JP": "+81 90-1234-{d4}",
    "SG": "+65 9123 {d4}",
}
CALLING_CODES = {
    "ES": "34", "IT": "39", "NL": "31", "KR": "82", "HK": "852", "BR": "55", "IN": "91",
    "TR": "90", "VN": "84", "PH": "63", "NG": "234", "AE": "971",
}  # fmt: skip
IP_FIRST_OCTETS = (31, 46, 77, 81, 85, 92, 103, 112, 118, 175, 177, 185, 197, 203)


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    phone: str | None
    device_id: str
    ip: str


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def phone_number(rnd: random.Random, country: str) -> str:
    pattern = PHONE_PATTERNS.get(country)
    if pattern is None:
        code = CALLING_CODES.get(country, "44")
        return f"+{code} {rnd.randint(100, 999)} {rnd.randint(100, 999)} {rnd.randint(1000, 9999)}"
    return pattern.format(
        d2=f"{rnd.randint(0, 99):02d}",
        d2b=f"{rnd.randint(0, 99):02d}",
        d3=f"{rnd.randint(0, 999):03d}",
        d4=f"{rnd.randint(0, 9999):04d}",
    )


def email_address(rnd: random.Random, first: str, last: str) -> str:
    style = rnd.randrange(4)
    f, la = _ascii(first), _ascii(last)
    local = (
        f"{f}.{la}",
        f"{f}{la}{rnd.randint(1, 99)}",
        f"{f[0]}{la}{rnd.randint(70, 2005)}",
        f"{la}_{f}",
    )[style]
    return f"{local}@{rnd.choice(DOMAINS)}"


def person(seed: int, index: int, country: str) -> Person:
    rnd = random.Random(seed * 10_000_019 + index)
    first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
    phone = phone_number(rnd, country) if rnd.random() < 0.8 else None
    device = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    ip = ".".join(
        str(x)
        for x in (
            rnd.choice(IP_FIRST_OCTETS),
            rnd.randint(0, 255),
            rnd.randint(0, 255),
            rnd.randint(1, 254),
        )
    )
    return Person(f"{first} {last}", email_address(rnd, first, last), phone, device, ip)


TICKET_TEXTS: dict[str, tuple[tuple[str, str], ...]] = {
    "deposit_withdrawal": (
        (
            "Deposit not credited",
            "I sent {amount} {asset} {hours} hours ago and it is still not credited.",
        ),
        (
            "Withdrawal stuck",
            "My withdrawal has been pending since yesterday, can you check? It is urgent.",
        ),
        (
            "Wrong network deposit",
            "I think I used the wrong network for my {asset} deposit, is it recoverable?",
        ),
    ),
    "trading": (
        (
            "Order not filled",
            "My limit order on {product} was not filled although the price crossed it.",
        ),
        (
            "Liquidated unfairly",
            "I was liquidated on {product} during a wick. Please review my position.",
        ),
        (
            "Cannot place orders",
            "The order button is greyed out on {product}, I can't trade at all.",
        ),
    ),
    "kyc": (
        ("KYC rejected", "My ID verification was rejected but the photo is clear. Why?"),
        (
            "Verification taking long",
            "Submitted my documents {hours} hours ago, still under review.",
        ),
    ),
    "fees": (
        ("Fee too high", "I was charged more than the advertised fee on {product}."),
        ("Missing rebate", "The fee discount was not applied to my trades last week."),
    ),
    "app_bug": (
        (
            "App crashes",
            "The app crashes every time I open the {product} chart. iOS latest version.",
        ),
        ("Blank screen", "After the update the portfolio page is blank."),
        ("Login loop", "The app keeps logging me out and asking for 2FA again and again."),
    ),
    "campaign": (
        ("Bonus not received", "I completed the requirements of the promotion but got no reward."),
        (
            "Competition ranking",
            "My volume is not reflected in the trading competition leaderboard.",
        ),
    ),
    "account_security": (
        (
            "Suspicious login",
            "I got a login alert from a device I don't recognise. Please freeze my account.",
        ),
        ("Reset 2FA", "Lost my phone, need to reset two-factor authentication."),
    ),
    "other": (
        ("Question", "How do I download my transaction history for taxes?"),
        ("Feature request", "Please add more fiat currencies for withdrawals."),
    ),
}
CONTACT_SENTENCES = (
    " You can reach me at {email}.",
    " Please reply to {email} rather than the app.",
    " Call me on {phone} if needed.",
    " My number is {phone}, email {email}.",
)
SURVEY_COMMENTS_GOOD = (
    "Great app, fast execution.",
    "Love the low fees.",
    "Support solved my issue quickly.",
    "Easy to use, good liquidity.",
    "The new savings product is great.",
)
SURVEY_COMMENTS_BAD = (
    "The app was down when I needed it most.",
    "Withdrawals are too slow.",
    "Fees are higher than competitors.",
    "Support took days to answer.",
    "Lost money during the outage, very disappointed.",
)


def with_contact(rnd: random.Random, text: str, p: Person) -> str:
    """Sometimes append the writer's email or phone, as real customers do."""
    if rnd.random() < 0.45:
        sentence = rnd.choice(CONTACT_SENTENCES)
        if "{phone}" in sentence and p.phone is None:
            sentence = CONTACT_SENTENCES[0]
        text += sentence.format(email=p.email, phone=p.phone)
    return text
