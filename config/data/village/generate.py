"""Regenerate the village-economy CSV files (deterministic: same seed, same rows).

    python config/data/village/generate.py            # write the CSVs
    python config/data/village/generate.py --check    # exit 1 if they differ from the script

The CSVs are committed; this script documents where they came from. Changing it changes the
answers of the ``village`` suite, whose tests will then say which tasks to update.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 1203
HAMLETS = ("Millbrook", "Ashgrove", "Stonebridge", "Fernhollow")
CROPS = ("barley", "wheat", "oats", "rye", "turnips")
ANIMALS = ("sheep", "goats", "cattle", "pigs")
GANGS = ("Red Hoods", "Crowmen", "Ditch Wolves")
CAPTURED = (4, 9, 11)  # bandit ids the king's men have caught
SEASONS = ("spring", "summer", "autumn", "winter")
FIRST = ["Alda", "Bram", "Cedric", "Dunya", "Edda", "Fenn", "Gisla", "Hobb", "Ilse", "Jory", "Katrin", "Lorn", "Maud", "Nils", "Odo", "Petra", "Quill", "Rosa", "Sten", "Tova", "Ulric", "Vera", "Wat", "Yrsa", "Zeb", "Agna", "Bertil", "Cora", "Dag", "Elin", "Frode", "Greta", "Halm", "Ivo", "Jutta", "Kell", "Linnea", "Merek", "Nora", "Osk"]
LAST = ["Thatcher", "Miller", "Cooper", "Fletcher", "Shepherd", "Tanner", "Weaver", "Carter", "Baker", "Brewer", "Mason", "Hayward", "Reeve", "Smith", "Wainwright"]
BANDITS = ["Scar Tobin", "Quick Hesk", "Mother Grell", "Old Fang", "Wren the Knife", "Black Ody", "Sly Marten", "Pike", "Greasy Col", "Tall Ansel", "Moll Ashby", "Ratface Jon"]
MERCHANTS = (
    ("Ilario Vance", "Port Sallow", "salt and spices"),
    ("Berthe Okonna", "Greywater", "cloth"),
    ("Tomas Rill", "Kestrel Ford", "tools"),
    ("Hanne Stoor", "Highmarch", "wool and hides"),
    ("Yusuf Demir", "Port Sallow", "grain"),
    ("Wilma Achter", "Greywater", "livestock"),
)
TRADE_ITEMS = {
    "barley": 3,
    "wheat": 4,
    "oats": 2,
    "wool": 6,
    "cheese": 5,
    "hides": 7,
    "salt": 9,
    "cloth": 12,
    "plough": 40,
    "lamb": 15,
}


def people(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct names in a seeded random order (never set order: it varies by run)."""
    names: set[str] = set()
    while len(names) < count:
        names.add(f"{rng.choice(FIRST)} {rng.choice(LAST)}")
    keys = {name: rng.random() for name in sorted(names)}
    return sorted(keys, key=keys.__getitem__)


def build(rng: random.Random) -> dict[str, list[dict[str, object]]]:
    names = people(rng, 34)
    farmers = [
        {
            "farmer_id": i,
            "name": names[i - 1],
            "hamlet": rng.choice(HAMLETS),
            "crop": rng.choice(CROPS),
            "acres": rng.randint(4, 40),
        }
        for i in range(1, 21)
    ]
    for f in farmers:
        f["harvest_bushels"] = int(f["acres"]) * rng.randint(8, 16)
    herders = [
        {
            "herder_id": i,
            "name": names[20 + i - 1],
            "hamlet": rng.choice(HAMLETS),
            "animal": rng.choice(ANIMALS),
            "head": rng.randint(6, 90),
        }
        for i in range(1, 15)
    ]
    bandits = [
        {
            "bandit_id": i,
            "name": name,
            "gang": GANGS[(i - 1) % 3],
            "bounty_coins": rng.randint(2, 30) * 5,
            "captured": i in CAPTURED,
        }
        for i, name in enumerate(BANDITS, 1)
    ]
    raids = []
    day = dt.date(1203, 1, 1)
    for i in range(1, 26):
        day += dt.timedelta(days=rng.randint(5, 20))
        raids.append(
            {
                "raid_id": i,
                "gang": rng.choice(GANGS),
                "hamlet": rng.choice(HAMLETS),
                "raid_date": day.isoformat(),
                "loot_coins": rng.randint(3, 60),
                "animals_taken": rng.choice((0, 0, 1, 2, 3, 5, 8)),
            }
        )
    taxes = []
    for kind, rows, key in (("farmer", farmers, "farmer_id"), ("herder", herders, "herder_id")):
        for row in rows:
            for season in SEASONS:
                base = (
                    int(row["harvest_bushels"]) // 40 if kind == "farmer" else int(row["head"]) // 6
                )
                taxes.append(
                    {
                        "payer_kind": kind,
                        "payer_id": row[key],
                        "season": season,
                        "year": 1203,
                        "amount_coins": max(1, base + rng.randint(0, 4)),
                        "paid": rng.random() < 0.85,
                    }
                )
    for i, row in enumerate(taxes, 1):
        row["tax_id"] = i
    merchants = [
        {"merchant_id": i, "name": n, "home_town": t, "goods": g}
        for i, (n, t, g) in enumerate(MERCHANTS, 1)
    ]
    trades = []
    day = dt.date(1203, 2, 1)
    for i in range(1, 41):
        day += dt.timedelta(days=rng.randint(1, 8))
        item = rng.choice(sorted(TRADE_ITEMS))
        trades.append(
            {
                "trade_id": i,
                "merchant_id": rng.randint(1, len(merchants)),
                "trade_date": day.isoformat(),
                "item": item,
                "quantity": rng.randint(1, 30) if TRADE_ITEMS[item] < 30 else rng.randint(1, 3),
                "unit_price_coins": TRADE_ITEMS[item] + rng.randint(-1, 2),
                "direction": rng.choice(("bought", "sold")),
            }
        )
    return {
        "farmers": farmers,
        "herders": herders,
        "bandits": bandits,
        "raids": raids,
        "taxes": taxes,
        "merchants": merchants,
        "trades": trades,
    }


COLUMNS = {
    "farmers": ["farmer_id", "name", "hamlet", "crop", "acres", "harvest_bushels"],
    "herders": ["herder_id", "name", "hamlet", "animal", "head"],
    "bandits": ["bandit_id", "name", "gang", "bounty_coins", "captured"],
    "raids": ["raid_id", "gang", "hamlet", "raid_date", "loot_coins", "animals_taken"],
    "taxes": ["tax_id", "payer_kind", "payer_id", "season", "year", "amount_coins", "paid"],
    "merchants": ["merchant_id", "name", "home_town", "goods"],
    "trades": [
        "trade_id",
        "merchant_id",
        "trade_date",
        "item",
        "quantity",
        "unit_price_coins",
        "direction",
    ],
}


def render(tables: dict[str, list[dict[str, object]]]) -> dict[str, str]:
    """The CSV text of each table."""
    texts = {}
    for table, rows in tables.items():
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS[table], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()}
            )
        texts[table] = out.getvalue()
    return texts


def main(argv: list[str]) -> int:
    """Write the CSVs; with ``--check``, only report (exit 1) whether they are up to date."""
    texts = render(build(random.Random(SEED)))
    if "--check" in argv:
        stale = [t for t, text in texts.items() if (HERE / f"{t}.csv").read_text() != text]
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for table, text in texts.items():
        (HERE / f"{table}.csv").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
