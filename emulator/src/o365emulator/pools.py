"""Seeded pools of addresses, subjects and IPs that generated message-trace rows draw from."""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = (
    "adele",
    "alex",
    "allan",
    "amara",
    "ben",
    "bianca",
    "carlos",
    "chen",
    "christie",
    "dana",
    "debra",
    "diego",
    "elena",
    "emily",
    "enrico",
    "fatima",
    "grady",
    "hana",
    "henrietta",
    "isaiah",
    "ivan",
    "jamal",
    "joni",
    "jose",
    "kenji",
    "lee",
    "lidia",
    "lynne",
    "megan",
    "miriam",
    "nestor",
    "nora",
    "olga",
    "omar",
    "patti",
    "pradeep",
    "quinn",
    "raul",
    "rosa",
    "sakura",
    "sam",
    "sofia",
    "tomas",
    "uma",
    "vanessa",
    "wei",
    "xavier",
    "yara",
    "zoe",
)
LAST_NAMES = (
    "adams",
    "bauer",
    "costa",
    "dubois",
    "evans",
    "fischer",
    "garcia",
    "holt",
    "ito",
    "jensen",
    "khan",
    "larsen",
    "moreau",
    "nakamura",
    "okafor",
    "patel",
    "quintero",
    "rossi",
    "schmidt",
    "tanaka",
    "ueda",
    "vargas",
    "wilber",
    "xu",
    "young",
    "zimmerman",
    "brown",
    "lopez",
    "nguyen",
    "silva",
    "kowalski",
    "novak",
    "haddad",
    "murphy",
    "olsen",
    "reyes",
)
EXTERNAL_DOMAINS = (
    "fabrikam.com",
    "northwindtraders.com",
    "adatum.com",
    "tailspintoys.com",
    "wingtiptoys.com",
    "litwareinc.com",
    "woodgrovebank.com",
    "proseware.com",
    "relecloud.com",
    "example.org",
    "alpineskihouse.com",
    "blueyonderairlines.com",
    "coho.example",
    "lucernepublishing.com",
)
SERVICE_LOCALS = ("noreply", "billing", "support", "newsletter", "alerts", "hr", "it-helpdesk")

SUBJECT_TEMPLATES = (
    "Quarterly Report Q{n}",
    "Weekly digest #{n}",
    "Invoice {n}",
    "RE: Project Phoenix update",
    "FW: Meeting notes {n}",
    "Your order {n} has shipped",
    "Password expiry notice",
    "Action required: review document {n}",
    "Team lunch on Friday",
    "Budget {n} draft",
    "Security alert for your account",
    "Welcome aboard!",
    "Contract renewal {n}",
    "Out of office: re: {n}",
    "Daily standup",
    "Travel itinerary {n}",
    "Payroll statement",
    "[EXTERNAL] Partnership proposal",
    "Shared file: roadmap-{n}.xlsx",
    "Ticket #{n} resolved",
)
UNICODE_SUBJECTS = (
    "Réunion trimestrielle — ordre du jour",
    "Überprüfung der Rechnung Nr. {n}",
    "会議の議事録 {n}",
    "Отчёт за квартал {n}",
    "📦 Your parcel {n} is on its way",
    "Informe de ventas año {n}",
    "Ελέγξτε το έγγραφο {n}",
    "مراجعة العقد {n}",
)
NEWLINE_SUBJECTS = (
    "Invoice {n}\r\nPlease pay",
    "Line one\nline two {n}",
    "Status:\tpending\nref {n}",
)


@dataclass(frozen=True)
class Pools:
    """Pools for one tenant; every list index is stable for the tenant's dataset.

    Attributes:
        addresses: All e-mail addresses, sorted, so index order equals string order.
        internal: Indexes into ``addresses`` of the tenant's own mailboxes.
        external: Indexes into ``addresses`` of outside correspondents.
        address_domain: Domain part of each address (same index).
        subjects: Subject lines (some non-ASCII, a few with embedded newlines).
        ips: IP addresses; index 0 is the empty string used for inbound ``toIP``.
        inbound_ips: Indexes of internet senders' IPs.
        client_ips: Indexes of the tenant's submitting clients' IPs.
        to_ip: Per address, the ``ips`` index a message to it is sent to: 0 (``""``) for the
            tenant's own mailboxes, the IP of the outside domain's MX host otherwise.
    """

    addresses: list[str]
    internal: list[int]
    external: list[int]
    address_domain: list[str]
    subjects: list[str]
    ips: list[str]
    inbound_ips: list[int]
    client_ips: list[int]
    to_ip: list[int]


def _people(rng: random.Random, domains: tuple[str, ...], count: int) -> set[str]:
    out: set[str] = set()
    while len(out) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        suffix = "" if rng.random() < 0.7 else str(rng.randint(2, 99))
        out.add(f"{first}.{last}{suffix}@{rng.choice(domains)}")
    return out


def _subjects(rng: random.Random, count: int) -> list[str]:
    out: list[str] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.08:
            template = rng.choice(UNICODE_SUBJECTS)
        elif roll < 0.10:
            template = rng.choice(NEWLINE_SUBJECTS)
        else:
            template = rng.choice(SUBJECT_TEMPLATES)
        out.append(template.replace("{n}", str(rng.randint(1, 99999))))
    return out


def _ips(rng: random.Random, prefixes: tuple[str, ...], count: int) -> list[str]:
    return [
        f"{rng.choice(prefixes)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(count)
    ]


def build_pools(rng: random.Random, domain: str, rows: int) -> Pools:
    """Draw the pools for a tenant with ``rows`` rows (pool sizes grow with volume)."""
    internal_count = max(20, min(3000, rows // 40))
    external_count = max(20, min(5000, rows // 25))
    internal = _people(rng, (domain,), internal_count)
    outside = tuple(d for d in EXTERNAL_DOMAINS if d != domain)
    external = _people(rng, outside, external_count)
    external |= {f"{local}@{d}" for local in SERVICE_LOCALS for d in outside[:4]}
    external -= internal
    addresses = sorted(internal | external)
    internal_idx = [i for i, a in enumerate(addresses) if a in internal]
    external_idx = [i for i, a in enumerate(addresses) if a not in internal]
    ips = ["", *_ips(rng, ("40.107", "52.100", "209.85", "198.51"), 300)]
    inbound_end = len(ips)
    ips += _ips(rng, ("10.20", "10.30", "172.16"), 100)
    client_end = len(ips)
    ips += _ips(rng, ("104.47", "203.0", "192.0"), 100)
    mx = {d: rng.randrange(client_end, len(ips)) for d in outside}
    return Pools(
        addresses=addresses,
        internal=internal_idx,
        external=external_idx,
        address_domain=[a.rsplit("@", 1)[1] for a in addresses],
        subjects=_subjects(rng, 500),
        ips=ips,
        inbound_ips=list(range(1, inbound_end)),
        client_ips=list(range(inbound_end, client_end)),
        to_ip=[0 if a in internal else mx[a.rsplit("@", 1)[1]] for a in addresses],
    )
